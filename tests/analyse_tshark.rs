//! Our statistics against tshark's on every real capture with IP traffic:
//! `-z endpoints,ip` / `endpoints,ipv6` (packets, bytes, tx/rx), `-z conv,ip` /
//! `conv,ipv6` (frames per pair and direction), and `-z io,stat,N` (frames and bytes
//! per interval: 1 s, or longer for a capture spanning more than [`MAX_INTERVALS`]
//! seconds). A mismatch fails with the file, the address and both numbers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use netdigest::analyse::{self, Talker};
use netdigest::convert::{ConvertOptions, convert};

/// Files where tshark and we count differently on purpose, per statistic, with the reason.
/// Each entry is checked to still differ, so a stale exception fails the test.
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "tcpdump__timestamp_invalid_micro.pcap",
        "io,stat,1",
        "frame 3's microsecond field is 2^31: Wireshark 4.0 computes its time in 32 bits and gets it wrong, we carry it into the seconds",
    ),
    (
        "tcpdump__ip6_frag_asan.pcap",
        "endpoints,ipv6",
        "the IPv6 header is cut by the snaplen: tshark's IPv6 tap never runs for it, we count the addresses the header holds",
    ),
    (
        "tcpdump__ip6_frag_asan.pcap",
        "conv,ipv6",
        "as endpoints,ipv6",
    ),
    (
        "tcpdump__ipv6hdr-heapoverflow.pcap",
        "endpoints,ipv6",
        "the IPv6 header is cut by the snaplen: tshark's IPv6 tap never runs for it, we count the addresses the header holds",
    ),
    (
        "tcpdump__ipv6hdr-heapoverflow.pcap",
        "conv,ipv6",
        "as endpoints,ipv6",
    ),
    (
        "nDPI__dns_fragmented.pcap",
        "endpoints,ipv6",
        "fragmented IPv6 datagrams (frames 5/6, 8/9, ...): tshark's IPv6 tap runs only in the frame that completes the reassembly (with reassembly off, only in the first fragment), so its IPv6 statistics miss the other fragments; its IPv4 tap counts every fragment, and we count every frame for both versions",
    ),
    (
        "nDPI__dns_fragmented.pcap",
        "conv,ipv6",
        "as endpoints,ipv6",
    ),
    (
        "suricata-verify__output-eve-ftp-data_input.pcap",
        "endpoints,ip",
        "Teredo frames 91, 93, 536, 540, 959, 961: a frame has one address pair, the inner IPv6 packet's (tshark's Source/Destination, counted as IPv6 by both); tshark's IPv4 tap counts the outer IPv4 header as well",
    ),
    (
        "suricata-verify__output-eve-ftp-data_input.pcap",
        "conv,ip",
        "as endpoints,ip",
    ),
];

fn exception(file: &str, stat: &str) -> Option<&'static str> {
    EXCEPTIONS
        .iter()
        .find(|e| e.0 == file && e.1 == stat)
        .map(|e| e.2)
}

/// Parses `tshark -q -z endpoints,ip[v6]`: address -> counts.
fn tshark_endpoints(out: &str) -> BTreeMap<String, Talker> {
    let mut m = BTreeMap::new();
    let mut in_table = false;
    for line in out.lines() {
        if line.contains("| Packets") || line.contains("|  Packets") {
            in_table = true;
            continue;
        }
        if line.starts_with("====") {
            in_table = false;
            continue;
        }
        if !in_table {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 {
            continue;
        }
        let n = |i: usize| {
            f[i].parse::<u64>()
                .unwrap_or_else(|_| panic!("number in {line:?}"))
        };
        m.insert(
            f[0].to_string(),
            Talker {
                addr: f[0].to_string(),
                packets: n(1),
                bytes: n(2),
                tx_packets: n(3),
                tx_bytes: n(4),
                rx_packets: n(5),
                rx_bytes: n(6),
                name: None,
            },
        );
    }
    m
}

/// Parses `tshark -q -z conv,ip[v6]`: unordered pair -> (total frames, frames one way).
fn tshark_conv(out: &str) -> BTreeMap<(String, String), (u64, u64, u64)> {
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let Some((a, rest)) = line.split_once("<->") else {
            continue;
        };
        let a = a.trim().to_string();
        let f: Vec<&str> = rest.split_whitespace().collect();
        // b, then for <-, ->, total: frames, bytes, unit.
        let b = f[0].to_string();
        let nums: Vec<u64> = f[1..]
            .iter()
            .filter_map(|x| x.parse::<u64>().ok())
            .collect();
        let (to_a, to_b, total) = (nums[0], nums[2], nums[4]);
        // "<-" counts frames from B to A, "->" from A to B.
        let (x, y, ab, ba) = if a < b {
            (a, b, to_b, to_a)
        } else {
            (b, a, to_a, to_b)
        };
        m.insert((x, y), (total, ab, ba));
    }
    m
}

/// tshark prints every interval of `-z io,stat,N`, empty ones too: at 1 s, a capture
/// spanning years (merged captures) prints over a hundred million lines (gigabytes, and
/// tshark may then be killed for its memory). The interval grows (1 s, 1 min, 1 h,
/// 1 day) until the capture spans at most this many intervals.
const MAX_INTERVALS: i64 = 100_000;

/// The io,stat interval in seconds for a capture spanning `span_s` seconds.
fn io_interval(span_s: i64) -> i64 {
    [1, 60, 3600, 86_400]
        .into_iter()
        .find(|i| span_s / i < MAX_INTERVALS)
        .unwrap_or(86_400 * 365)
}

/// Parses `tshark -q -z io,stat,N`: interval start (seconds) -> (frames, bytes).
fn tshark_io(out: &str) -> BTreeMap<i64, (u64, u64)> {
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let Some((start, rest)) = line.trim_start_matches('|').split_once("<>") else {
            continue;
        };
        let Ok(start) = start.trim().parse::<f64>() else {
            continue;
        };
        let f: Vec<u64> = rest
            .split('|')
            .skip(1)
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        if f.len() >= 2 && f[0] > 0 {
            #[allow(clippy::cast_possible_truncation)]
            m.insert(start.round() as i64, (f[0], f[1]));
        }
    }
    m
}

#[test]
fn statistics_equal_tshark_on_real_captures() {
    if !common::have_tshark() {
        return;
    }
    let files = common::corpus("real");
    if files.is_empty() {
        return;
    }
    let dir = common::tmpdir("stats");
    let mut failures = Vec::new();
    let mut checked = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let fs = f.to_str().unwrap();
        let pq = dir.join(format!("{name}.parquet"));
        let converted = convert(
            std::slice::from_ref(f),
            &ConvertOptions {
                parquet: Some(pq.clone()),
                ..Default::default()
            },
        );
        // Our seconds from the first to the last frame decide tshark's interval.
        let span_s = converted.as_ref().map_or(0, |_| {
            analyse::io_stat(&pq, 1_000_000_000)
                .unwrap()
                .last()
                .map_or(0, |b| b.0)
        });
        let interval = io_interval(span_s);
        let io_arg = format!("io,stat,{interval}");
        let out = common::tshark(&[
            "-q",
            "-r",
            fs,
            "-z",
            "endpoints,ip",
            "-z",
            "endpoints,ipv6",
            "-z",
            "conv,ip",
            "-z",
            "conv,ipv6",
            "-z",
            &io_arg,
        ]);
        if !out.status.success() {
            continue;
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if converted.is_err() {
            failures.push(format!("{name}: tshark reads it, we cannot"));
            continue;
        }
        let sections: Vec<&str> = text.split("================================================================================\n").collect();
        let section = |title: &str| {
            sections
                .iter()
                .find(|s| s.starts_with(title))
                .copied()
                .unwrap_or("")
        };
        let mut file_fail = Vec::new();
        for (v, title, stat) in [
            (4u8, "IPv4 Endpoints", "endpoints,ip"),
            (6, "IPv6 Endpoints", "endpoints,ipv6"),
        ] {
            let theirs = tshark_endpoints(section(title));
            let ours = analyse::endpoints(&pq, v).unwrap();
            let diff = compare_maps(&ours, &theirs);
            check(&name, stat, diff, &mut file_fail);
        }
        for (v, title, stat) in [
            (4u8, "IPv4 Conversations", "conv,ip"),
            (6, "IPv6 Conversations", "conv,ipv6"),
        ] {
            let theirs = tshark_conv(section(title));
            let ours: BTreeMap<(String, String), (u64, u64, u64)> =
                analyse::all_conversations(&pq, v)
                    .unwrap()
                    .into_iter()
                    .map(|c| ((c.a, c.b), (c.packets, c.packets_a_to_b, c.packets_b_to_a)))
                    .collect();
            check(&name, stat, compare_maps(&ours, &theirs), &mut file_fail);
        }
        // tshark prints no interval rows at all for a capture of zero duration.
        if text.contains("| Duration: 0.000 secs") {
            eprintln!(
                "{name}: io,stat not compared: tshark prints no intervals for a zero-length capture"
            );
        } else {
            let theirs = tshark_io(&text);
            let ours: BTreeMap<i64, (u64, u64)> = analyse::io_stat(&pq, interval * 1_000_000_000)
                .unwrap()
                .into_iter()
                .map(|(i, p, b)| (i * interval, (p, b)))
                .collect();
            check(&name, &io_arg, compare_maps(&ours, &theirs), &mut file_fail);
        }
        if file_fail.is_empty() {
            checked += 1;
        }
        failures.extend(file_fail);
    }
    eprintln!("{checked} real captures: endpoints, conversations and io,stat equal tshark's");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 40, "only {checked} files compared");
}

fn compare_maps<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    ours: &BTreeMap<K, V>,
    theirs: &BTreeMap<K, V>,
) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in theirs {
        match ours.get(k) {
            Some(o) if o == v => {}
            o => d.push(format!("{k:?}: ours {o:?}, tshark {v:?}")),
        }
    }
    for (k, v) in ours {
        if !theirs.contains_key(k) {
            d.push(format!("{k:?}: ours {v:?}, tshark none"));
        }
    }
    d
}

fn check(file: &str, stat: &str, diff: Vec<String>, failures: &mut Vec<String>) {
    match (exception(file, stat), diff.is_empty()) {
        (None, true) => {}
        (None, false) => failures.extend(
            diff.into_iter()
                .take(5)
                .map(|d| format!("{file} {stat}: {d}")),
        ),
        (Some(reason), false) => eprintln!("{file} {stat}: differs as expected ({reason})"),
        (Some(_), true) => failures.push(format!("{file} {stat}: exception no longer needed")),
    }
}

#[test]
fn parsers_read_tshark_layouts() {
    let ep = "                       |  Packets  | |  Bytes  | | Tx Packets | | Tx Bytes | | Rx Packets | | Rx Bytes |\n192.168.1.11                   2           364          1              98           1             266   \n";
    let m = tshark_endpoints(ep);
    assert_eq!(m["192.168.1.11"].rx_bytes, 266);
    let conv = "192.168.1.11         <-> 209.87.249.18              1 266 bytes       1 98 bytes        2 364 bytes     0.000000000         0.1303\n";
    let c = tshark_conv(conv);
    assert_eq!(
        c[&("192.168.1.11".to_string(), "209.87.249.18".to_string())],
        (2, 1, 1)
    );
}

//! Hostile nights: what one misbehaving LAN device can send in seconds must not blow up
//! the analysis or the morning message. The test writes each capture itself, runs
//! `netdigest run` (with a state directory, so devices.parquet is written too) and
//! checks the process's peak resident memory (the kernel's VmHWM, polled from outside
//! while it runs and reported by the process at exit), the message's size against the
//! mail budget, and that the report names the flood or the scan.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::BufWriter;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{bin, tmpdir};

/// Peak resident memory allowed for `run` on these nights: the nightly unit's
/// `MemoryMax=` (src/units.rs NIGHTLY_MEMORY_MAX, 1536M).
const MAX_RSS_KB: u64 = 1536 * 1024;
/// The mail size budget: `mail.max_size_mb`'s default, 25 (decimal) MB.
const MAIL_BUDGET_BYTES: u64 = 25_000_000;

/// A TCP SYN (Ethernet, IPv4, 20-byte TCP header) from `smac`/`src` to `dst`.
fn syn(smac: [u8; 6], src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(54);
    f.extend_from_slice(&[0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01]);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [
        0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, src[0], src[1], src[2], src[3], dst[0], dst[1],
        dst[2], dst[3],
    ];
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let checksum = !u16::try_from(sum).unwrap();
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
    f
}

/// Writes `n` frames made by `frame(i)`, 1 ms apart from 2025-12-02 21:00 UTC.
fn write_capture(path: &Path, n: u64, frame: impl Fn(u64) -> Vec<u8>) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = pcapfmt::PcapWriter::new(
        BufWriter::new(file),
        pcapfmt::LinkType::ETHERNET,
        65535,
        false,
    )
    .unwrap();
    let t0: i64 = 1_764_709_200_000_000_000;
    for i in 0..n {
        let data = frame(i);
        let ts = t0 + i64::try_from(i).unwrap() * 1_000_000;
        w.write_packet(ts, &data, u32::try_from(data.len()).unwrap())
            .unwrap();
    }
    w.into_inner().unwrap();
}

/// `VmHWM` (kB) from a /proc status text.
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `netdigest -v run` on `pcap` into `out`: its stderr and its peak RSS in kB (the
/// larger of the VmHWM polled every 5 ms and the one it logs at exit).
fn run_measured(pcap: &Path, out: &Path, state: &Path) -> (String, u64) {
    let mut child = bin()
        .args(["-v", "run", "--no-progress", "--pcap"])
        .arg(pcap)
        .arg("--out")
        .arg(out)
        .arg("--state")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let mut polled = 0;
    let exit = loop {
        if let Some(kb) = std::fs::read_to_string(&status_file)
            .ok()
            .as_deref()
            .and_then(vm_hwm)
        {
            polled = polled.max(kb);
        }
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let err = reader.join().unwrap();
    assert!(exit.success(), "netdigest run failed: {err}");
    let logged = err
        .lines()
        .find_map(|l| {
            l.split("peak_rss_kb=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no peak_rss_kb in the log: {err}"));
    (err, polled.max(logged))
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// Checks the message and the devices file of a finished run, and prints its figures.
fn check_message(out: &Path, state: &Path, what: &str, rss_kb: u64) -> String {
    let report = out.join("report");
    let (eml, html) = (
        size(&report.join("report.eml")),
        size(&report.join("email.html")),
    );
    println!(
        "{what}: peak RSS {} MB, report.eml {eml} B, email.html {html} B",
        rss_kb / 1024
    );
    assert!(rss_kb < MAX_RSS_KB, "{what}: peak RSS {rss_kb} kB");
    assert!(eml < MAIL_BUDGET_BYTES, "{what}: report.eml is {eml} bytes");
    // devices.parquet records at most report.max_rows (100) devices per night.
    assert!(
        size(&state.join("nights/devices.parquet")) < 64 * 1024,
        "{what}: devices.parquet"
    );
    // So does baseline.json (names per device: findings.baseline_names).
    let baseline = size(&netdigest::layout::baseline_file(state));
    assert!(
        baseline > 0 && baseline < 512 * 1024,
        "{what}: baseline.json {baseline} B"
    );
    std::fs::read_to_string(report.join("email.txt")).unwrap()
}

/// A million TCP SYNs, each from its own spoofed 10.x source with its own made-up
/// (locally administered) MAC.
#[test]
fn spoofed_source_flood_stays_bounded() {
    const N: u64 = 1_000_000;
    let dir = tmpdir("hostile-flood");
    let pcap = dir.join("flood.pcap");
    // Odd multipliers: bijections on 24 and 40 bits, so every source and MAC is distinct.
    let src = |i: u64| (i.wrapping_mul(0x9e_3779) + 12_345) & 0xff_ffff;
    let mac = |i: u64| (i.wrapping_mul(0x7f4a_7c15) + 99) & 0xff_ffff_ffff;
    write_capture(&pcap, N, |i| {
        let s = src(i).to_be_bytes();
        let m = mac(i).to_be_bytes();
        let sport = u16::try_from(1024 + i % 60_000).unwrap();
        syn(
            [0x02, m[3], m[4], m[5], m[6], m[7]],
            [10, s[5], s[6], s[7]],
            [192, 168, 1, 10],
            sport,
            80,
        )
    });
    let (out, state) = (dir.join("night"), dir.join("state"));
    let (_, rss) = run_measured(&pcap, &out, &state);
    let text = check_message(&out, &state, "flood", rss);
    // More addresses than ids: no roll-up (analysis grouped the packets).
    assert!(!out.join("rollup.parquet").exists());
    let s = summary(&out);
    let flood = &s["floods"][0];
    assert_eq!(flood["kind"], "sources", "{flood}");
    assert_eq!(flood["sources"], N, "{flood}");
    assert_eq!(flood["macs"], N, "{flood}");
    assert_eq!(flood["local_macs"], N, "{flood}");
    let devices = s["devices"]["devices"].as_array().unwrap().len() as u64;
    assert_eq!(devices, 100, "report.max_rows devices listed");
    assert_eq!(s["omitted"]["devices"].as_u64().unwrap() + devices, N);
    assert_eq!(s["totals"]["hosts"], N + 1);
    assert!(s["talkers_by_bytes"].as_array().unwrap().len() <= 10);
    assert!(
        text.contains("Spoofed-source flood: 1,000,000 distinct local source addresses"),
        "{text}"
    );
    assert!(text.contains("999,900 more devices"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One source to 300,000 pseudo-random destinations and ports.
#[test]
fn single_source_scan_stays_bounded() {
    const N: u64 = 300_000;
    let dir = tmpdir("hostile-scan");
    let pcap = dir.join("scan.pcap");
    let target = |i: u64| {
        let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
        let d = (x & 0xff_ffff).to_be_bytes();
        let port = u16::try_from((x >> 32) % 65_535 + 1).unwrap();
        ([10, d[5], d[6], d[7]], port)
    };
    let mut dsts = HashSet::new();
    let mut ports = HashSet::new();
    for i in 0..N {
        let (d, p) = target(i);
        dsts.insert(d);
        // The service port of a packet: the lower of its two ports (source 40000).
        ports.insert(p.min(40_000));
    }
    write_capture(&pcap, N, |i| {
        let (d, p) = target(i);
        syn([0x02, 0, 0, 0, 0, 0x66], [192, 168, 1, 66], d, 40_000, p)
    });
    let (out, state) = (dir.join("night"), dir.join("state"));
    let (_, rss) = run_measured(&pcap, &out, &state);
    let text = check_message(&out, &state, "scan", rss);
    let s = summary(&out);
    let scan = &s["floods"][0];
    assert_eq!(scan["kind"], "scan", "{scan}");
    assert_eq!(scan["src"], "192.168.1.66");
    assert_eq!(scan["destinations"], dsts.len() as u64);
    assert_eq!(scan["ports"], ports.len() as u64);
    assert_eq!(scan["top_macs"], serde_json::json!(["02:00:00:00:00:66"]));
    assert!(
        text.contains(&format!(
            "Scan: device 00:00:66 (192.168.1.66) reached {} addresses",
            netdigest::report::thousands(dsts.len() as u64)
        )),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

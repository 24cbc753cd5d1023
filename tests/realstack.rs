//! False positives on real network stacks: nights made by `../shared/tools/make-night-traffic.sh`
//! (Linux hosts in network namespaces the script creates: DHCP, DNS to dnsmasq, HTTP,
//! iperf3, pings v4/v6, fragments, ARP/NDP, captured with tcpdump) go through
//! `pipeline::run` with a state directory, one night a day, until the baseline has
//! learnt and beyond. None of them may give a finding above the lowest rank; the count
//! per kind is printed (`--nocapture`).
//!
//! The script compresses a whole night into seconds (its scale 1 is 3.3 M packets in
//! five minutes), so this is also the case of a busy, quick night: its DNS lookups come
//! hundreds a second from each host, a burst by count, but answered with addresses.
//! A few captures are made and each is replayed on several days (its timestamps moved to
//! 23:00 UTC of that day), so the baseline sees real traffic that varies from night to
//! night without the test making ten captures.
//!
//! Needs root and the script's tools (scripts/install-deps installs them); without them,
//! or without `../shared`, a skip with the reason, and a failure under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{have_tool, shared_dir, tmpdir};
use netdigest::analyse::findings::LOWEST_RANK;
use netdigest::capfile::CaptureReader;
use netdigest::config::Config;
use netdigest::layout;
use netdigest::pipeline::{RunOptions, run};

/// Distinct captures made (each about 20 s of real traffic at [`SCALE`]).
const CAPTURES: usize = 3;
/// Nights run: the baseline's 7 learning nights and 3 judged against it.
const NIGHTS: usize = 10;
/// The script's scale: about 100,000 packets a capture.
const SCALE: &str = "0.03";
/// 2024-11-01 23:00 UTC, the first night's first packet.
const FIRST_NIGHT_NS: i64 = 1_730_502_000 * 1_000_000_000;
const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// The script's tools: (program, Debian package, whether it answers `--version`).
const TOOLS: [(&str, &str, bool); 7] = [
    ("dnsmasq", "dnsmasq", true),
    ("iperf3", "iperf3", true),
    ("curl", "curl", true),
    ("ethtool", "ethtool", true),
    ("tcpdump", "tcpdump", true),
    ("dig", "dnsutils", false),
    ("dhclient", "isc-dhcp-client", false),
];

fn ready() -> Option<PathBuf> {
    let script = shared_dir()?.join("tools/make-night-traffic.sh");
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !script.is_file() {
        assert!(!ci, "CI=true but {} is missing", script.display());
        eprintln!("SKIP: {} not found", script.display());
        return None;
    }
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if uid.trim_ascii() != b"0" {
        assert!(
            !ci,
            "CI=true but not root: the script makes network namespaces"
        );
        eprintln!("SKIP: not root (the script makes network namespaces)");
        return None;
    }
    for (program, package, version) in TOOLS {
        let ok = if version {
            have_tool(program, package)
        } else {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found || !ci,
                "CI=true but {program} is not installed (Debian package {package})"
            );
            if !found {
                eprintln!("SKIP: {program} not installed (Debian package {package})");
            }
            found
        };
        if !ok {
            return None;
        }
    }
    Some(script)
}

/// Copies `from` with every timestamp moved so that the first packet is at `first_ns`.
fn replay_at(from: &Path, to: &Path, first_ns: i64) {
    let mut r = CaptureReader::open(from).unwrap();
    let mut w = None;
    let mut shift = 0;
    while let Some(f) = r.next_frame().unwrap() {
        let w = w.get_or_insert_with(|| {
            shift = first_ns - f.ts_ns;
            let file = std::io::BufWriter::new(std::fs::File::create(to).unwrap());
            pcapfmt::PcapWriter::new(file, f.link, 262_144, true).unwrap()
        });
        w.write_packet(f.ts_ns + shift, f.data, f.wire_len).unwrap();
    }
    w.expect("a capture with packets").into_inner().unwrap();
}

#[test]
fn real_stack_nights_give_no_finding_above_the_lowest_rank() {
    let Some(script) = ready() else { return };
    let dir = tmpdir("realstack");
    let captures: Vec<PathBuf> = (0..CAPTURES)
        .map(|i| {
            let out = dir.join(format!("capture-{i}.pcap"));
            let o = Command::new("bash")
                .arg(&script)
                .arg(&out)
                .arg(SCALE)
                .output()
                .unwrap();
            assert!(
                o.status.success() && out.is_file(),
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            out
        })
        .collect();
    let state = dir.join("state");
    let cfg = Config::default();
    let opts = RunOptions {
        state_dir: Some(state.clone()),
        ..RunOptions::default()
    };
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut above = Vec::new();
    let mut last_baseline = None;
    for i in 0..NIGHTS {
        let first = FIRST_NIGHT_NS + i64::try_from(i).unwrap() * DAY_NS;
        let pcap = dir.join("night.pcap");
        replay_at(&captures[i % CAPTURES], &pcap, first);
        let day = chrono::DateTime::from_timestamp_nanos(first).date_naive();
        let night = layout::nights_dir(&state).join(layout::night_name(day));
        let s = run(std::slice::from_ref(&pcap), &night, &cfg, &opts)
            .unwrap()
            .summary;
        for f in &s.findings {
            *per_kind.entry(f.kind.clone()).or_default() += 1;
            if f.rank > LOWEST_RANK {
                above.push(format!(
                    "night {}: {} ({}) {}",
                    i + 1,
                    f.kind,
                    f.rank,
                    f.sentence
                ));
            }
        }
        last_baseline = Some(s.baseline);
    }
    eprintln!("{NIGHTS} real-stack nights, findings per kind (all ranks): {per_kind:?}");
    assert!(
        above.is_empty(),
        "findings above the lowest rank:\n{}",
        above.join("\n")
    );
    // The last nights were judged against a learnt baseline, not still learning.
    let b = last_baseline
        .flatten()
        .expect("a baseline on the last night");
    assert!(!b.learning, "{b:?}");
    // The ordinary lookups were seen (and kept low), so the finders did look.
    assert!(
        per_kind.get("dns-burst").copied().unwrap_or(0) > 0,
        "{per_kind:?}"
    );
}

//! The roll-up convert writes beside the packets (`rollup.parquet`): analysis that
//! reads it gives the very summary it gives by grouping every packet, on a synthetic
//! night (several intervals and zones, including ones the roll-up cannot serve) and on
//! every real capture; with limits small enough that convert writes its maps out many
//! times; and a roll-up that is not the packets' own is never read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use netdigest::analyse::{AnalyseOptions, analyse};
use netdigest::config::Zone;
use netdigest::convert::{ConvertOptions, RollupLimits, convert};

/// Limits that make convert write its maps out every few packets.
const TINY: RollupLimits = RollupLimits {
    keys: 7,
    exchanges: 3,
};

/// Converts `inputs` into `dir/packets.parquet`, with `dir/rollup.parquet` when
/// `limits` is given.
fn convert_into(inputs: &[PathBuf], dir: &Path, limits: Option<RollupLimits>) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    convert(
        inputs,
        &ConvertOptions {
            parquet: Some(dir.join("packets.parquet")),
            rollup: limits.map(|_| dir.join("rollup.parquet")),
            rollup_limits: limits.unwrap_or_default(),
            ..Default::default()
        },
    )
    .is_ok()
}

fn summary(dir: &Path, opts: &AnalyseOptions) -> serde_json::Value {
    serde_json::to_value(analyse(&dir.join("packets.parquet"), opts).unwrap()).unwrap()
}

/// The rows of each table in a roll-up, by table number.
fn tables(dir: &Path) -> Vec<u32> {
    use polars::prelude::*;
    let df = LazyFrame::scan_parquet(
        PlRefPath::try_from_path(&dir.join("rollup.parquet")).unwrap(),
        ScanArgsParquet::default(),
    )
    .unwrap()
    .collect()
    .unwrap();
    let mut n = vec![0; 5];
    for t in df
        .column("table")
        .unwrap()
        .u8()
        .unwrap()
        .into_no_null_iter()
    {
        n[usize::from(t)] += 1;
    }
    n
}

/// Whether `netdigest analyse` read the roll-up (its debug line says so).
fn analyse_used_rollup(dir: &Path) -> bool {
    let out = common::bin()
        .env("NETDIGEST_LOG", "debug")
        .args(["analyse", "-q", "--night-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("analyse: queries"))
        .unwrap_or_else(|| panic!("no queries line: {err}"));
    line.contains("rollup=true")
}

fn zone(name: &str) -> Zone {
    Zone::Named(name.parse().unwrap())
}

#[test]
fn synthetic_night_same_summary_with_and_without_rollup() {
    let dir = common::tmpdir("rollup-synth");
    let pcap = dir.join("night.pcap");
    common::sample(&pcap, 60_000, 1);
    let input = [pcap];
    let (scan, full, tiny) = (dir.join("scan"), dir.join("full"), dir.join("tiny"));
    assert!(convert_into(&input, &scan, None));
    assert!(convert_into(&input, &full, Some(RollupLimits::default())));
    assert!(convert_into(&input, &tiny, Some(TINY)));
    assert!(!scan.join("rollup.parquet").exists());
    // Held to the end: exchanges summed per initiator. Written out: exchanges.
    let (f, t) = (tables(&full), tables(&tiny));
    assert!(f[0] > 100 && f[1] == 0 && f[2] > 0 && f[3] > 0, "{f:?}");
    assert!(t[0] > f[0] && t[1] > 0 && t[3] == 0, "{t:?}");
    assert!(analyse_used_rollup(&full) && analyse_used_rollup(&tiny));
    assert!(!analyse_used_rollup(&scan));

    // Intervals and zones: 10 min in UTC, 5 min at UTC+5:45, 1 h in New York, and two
    // the roll-up cannot serve (7 min; 1 min) that fall back to the packets.
    let cases = [
        (600, zone("UTC")),
        (300, zone("Asia/Kathmandu")),
        (3600, zone("America/New_York")),
        (420, zone("Europe/Paris")),
        (60, zone("Australia/Eucla")),
    ];
    for (interval_s, zone) in cases {
        let opts = AnalyseOptions {
            interval_s,
            zone,
            ..AnalyseOptions::default()
        };
        let want = summary(&scan, &opts);
        assert!(want["totals"]["packets"].as_u64().unwrap() > 50_000);
        assert!(!want["pings"].as_array().unwrap().is_empty());
        assert!(!want["timeline"]["bins"].as_array().unwrap().is_empty());
        for d in [&full, &tiny] {
            assert_eq!(
                summary(d, &opts),
                want,
                "{} differs at {interval_s} s",
                d.display()
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A roll-up left by another conversion (same directory, other packets) is not read.
#[test]
fn stale_rollup_is_ignored() {
    let dir = common::tmpdir("rollup-stale");
    let (a, b) = (dir.join("a.pcap"), dir.join("b.pcap"));
    common::sample(&a, 20_000, 1);
    common::sample(&b, 20_000, 2);
    let night = dir.join("night");
    // As a user runs it: `convert --rollup`.
    std::fs::create_dir_all(&night).unwrap();
    let out = common::bin()
        .arg("convert")
        .arg(&a)
        .arg("-o")
        .arg(night.join("packets.parquet"))
        .arg("--rollup")
        .arg(night.join("rollup.parquet"))
        .args(["--no-progress", "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(analyse_used_rollup(&night));
    let with_a = std::fs::read(night.join("rollup.parquet")).unwrap();
    // b's packets over a's, without a roll-up: a's stays behind.
    assert!(convert_into(std::slice::from_ref(&b), &night, None));
    assert_eq!(std::fs::read(night.join("rollup.parquet")).unwrap(), with_a);
    assert!(!analyse_used_rollup(&night));
    let scan = dir.join("scan");
    assert!(convert_into(&[b], &scan, None));
    let opts = AnalyseOptions::default();
    assert_eq!(summary(&night, &opts), summary(&scan, &opts));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every real capture: the roll-up (held whole, and written out every few keys) gives
/// the summary the packets give.
#[test]
fn real_captures_same_summary_with_and_without_rollup() {
    let files = common::corpus("real");
    if files.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but ../shared/corpus/real is missing"
        );
        eprintln!("SKIP: ../shared/corpus/real is missing");
        return;
    }
    let dir = common::tmpdir("rollup-real");
    let opts = AnalyseOptions {
        zone: zone("UTC"),
        ..AnalyseOptions::default()
    };
    let mut compared = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::slice::from_ref(f);
        let (scan, full, tiny) = (
            dir.join(format!("{name}.scan")),
            dir.join(format!("{name}.full")),
            dir.join(format!("{name}.tiny")),
        );
        if !convert_into(input, &scan, None) {
            continue;
        }
        assert!(convert_into(input, &full, Some(RollupLimits::default())));
        assert!(convert_into(input, &tiny, Some(TINY)));
        let want = summary(&scan, &opts);
        for d in [&full, &tiny] {
            assert!(analyse_used_rollup(d), "{name}: {} not read", d.display());
            assert_eq!(summary(d, &opts), want, "{name}: {} differs", d.display());
        }
        compared += 1;
        for d in [&scan, &full, &tiny] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
    eprintln!("{compared} real captures: the same summary with and without the roll-up");
    assert!(compared > files.len() / 2, "{compared} of {}", files.len());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `analyse --report` (one process, the chart renderers started while the night is
/// analysed, as nightly runs it) writes the report `analyse` then `report` write.
#[test]
fn analyse_with_report_is_analyse_then_report() {
    let dir = common::tmpdir("rollup-analyse-report");
    let pcap = dir.join("night.pcap");
    common::sample(&pcap, 20_000, 1);
    let (two, one) = (dir.join("two"), dir.join("one"));
    for d in [&two, &one] {
        assert!(convert_into(
            std::slice::from_ref(&pcap),
            d,
            Some(RollupLimits::default())
        ));
    }
    let night = |args: &[&str], d: &Path| {
        let out = common::bin().args(args).arg(d).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    night(&["analyse", "--night-dir"], &two);
    night(&["report", "--night-dir"], &two);
    let said = night(&["analyse", "--report", "--night-dir"], &one);
    assert!(said.contains("message: "), "{said}");
    let report = |d: &Path, f: &str| std::fs::read(d.join("report").join(f)).unwrap();
    for f in [
        "email.txt",
        "email.html",
        "index.html",
        "charts/pings.jpg",
        "charts/timeline.jpg",
    ] {
        assert!(report(&one, f) == report(&two, f), "{f} differs");
    }
    assert!(one.join("report/report.eml").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

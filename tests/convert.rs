//! `netdigest convert` end to end: self-made captures, real captures against tshark,
//! broken inputs, atomic outputs, and the CSV read back by polars.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{corpus, run, stderr, tmpdir};
use polars::prelude::*;
use synth::NightSpec;

fn read_parquet(p: &Path) -> DataFrame {
    let f = std::fs::File::open(p).unwrap();
    ParquetReader::new(f).finish().unwrap()
}

fn read_csv(p: &Path) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .try_into_reader_with_file_path(Some(p.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap()
}

fn sample(dir: &Path, packets: u64) -> (PathBuf, synth::GroundTruth) {
    let p = dir.join("night.pcap");
    let spec = NightSpec {
        packets,
        ..NightSpec::demo()
    };
    let truth = synth::write_night_file(&p, &spec).unwrap();
    (p, truth)
}

#[test]
fn parquet_has_documented_schema_and_counts() {
    let dir = tmpdir("schema");
    let (pcap, truth) = sample(&dir, 5_000);
    let pq = to_parquet(&pcap, &dir.join("p.parquet"));
    let df = read_parquet(&pq);
    assert_eq!(df.height() as u64, truth.frames);
    let schema = df.schema();
    let dtype = |c: &str| {
        schema
            .get(c)
            .cloned()
            .unwrap_or_else(|| panic!("column {c} missing"))
    };
    assert_eq!(dtype("frame"), DataType::UInt64);
    assert_eq!(
        dtype("ts"),
        DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC))
    );
    assert_eq!(dtype("interface"), DataType::UInt16);
    assert_eq!(dtype("wire_len"), DataType::UInt32);
    assert_eq!(dtype("cap_len"), DataType::UInt32);
    assert_eq!(dtype("vlan"), DataType::UInt16);
    assert_eq!(dtype("ether_type"), DataType::UInt16);
    assert_eq!(dtype("ip_version"), DataType::UInt8);
    assert_eq!(dtype("src"), DataType::String);
    assert_eq!(dtype("dst"), DataType::String);
    assert_eq!(dtype("src_mac"), DataType::String);
    assert_eq!(dtype("ttl"), DataType::UInt8);
    assert_eq!(dtype("ip_proto"), DataType::UInt8);
    assert!(
        matches!(dtype("protocol"), DataType::Categorical(..)),
        "{:?}",
        dtype("protocol")
    );
    assert_eq!(dtype("src_port"), DataType::UInt16);
    assert_eq!(dtype("tcp_flags"), DataType::UInt8);
    assert_eq!(dtype("tcp_seq"), DataType::UInt32);
    assert_eq!(dtype("icmp_type"), DataType::UInt8);
    assert_eq!(dtype("icmp_id"), DataType::UInt16);
    assert_eq!(dtype("fragment"), DataType::Boolean);
    assert_eq!(dtype("truncated"), DataType::Boolean);
    assert_eq!(dtype("decode_error"), DataType::String);

    // Frame numbers are 1..=N, bytes add up, and the pings per source match the ground truth.
    let frames = df.column("frame").unwrap().u64().unwrap();
    assert_eq!(frames.get(0), Some(1));
    assert_eq!(frames.get(df.height() - 1), Some(truth.frames));
    let bytes: u64 = df
        .column("wire_len")
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .flatten()
        .map(u64::from)
        .sum();
    assert_eq!(bytes, truth.bytes);
    let pings = df
        .clone()
        .lazy()
        .filter(
            (col("protocol")
                .cast(DataType::String)
                .eq(lit("ICMP"))
                .and(col("icmp_type").eq(lit(8u8))))
            .or(col("protocol")
                .cast(DataType::String)
                .eq(lit("ICMPv6"))
                .and(col("icmp_type").eq(lit(128u8)))),
        )
        .group_by([col("src")])
        .agg([len().alias("n")])
        .collect()
        .unwrap();
    let got: BTreeMap<String, u64> = pings
        .column("src")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .zip(pings.column("n").unwrap().u32().unwrap().iter())
        .map(|(s, n)| (s.unwrap().to_string(), u64::from(n.unwrap())))
        .collect();
    let want: BTreeMap<String, u64> = truth
        .echo_requests_by_src
        .iter()
        .map(|(a, n)| (a.to_string(), *n))
        .collect();
    assert_eq!(got, want);
    assert!(!want.is_empty());
}

#[test]
fn csv_has_seed_header_and_reads_back() {
    let dir = tmpdir("csv");
    let (pcap, truth) = sample(&dir, 3_000);
    let csv = dir.join("p.csv");
    let o = run(&[
        "convert",
        pcap.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().next(), Some(netdigest::convert::CSV_HEADER));
    let df = read_csv(&csv);
    assert_eq!(df.height() as u64, truth.frames);
    assert_eq!(df.get_column_names().len(), 9);
    // Per-source packet counts from the CSV's Source column equal the generator's.
    let mut by_src: BTreeMap<String, u64> = BTreeMap::new();
    for s in df
        .column("_ws.col.Source")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
    {
        *by_src.entry(s.to_string()).or_default() += 1;
    }
    assert_eq!(by_src, truth.packets_by_src);
    // Time starts at zero and never goes backwards in a generated night.
    let t = df.column("_ws.col.Time").unwrap().f64().unwrap();
    assert_eq!(t.get(0), Some(0.0));
}

#[test]
fn csv_matches_tshark_columns_on_sample() {
    if !common::have_tshark() {
        return;
    }
    let dir = tmpdir("csv-tshark");
    let (pcap, _) = sample(&dir, 2_000);
    let csv = dir.join("p.csv");
    let o = run(&[
        "convert",
        pcap.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ts = common::tshark(&[
        "-r",
        pcap.to_str().unwrap(),
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "occurrence=f",
        "-e",
        "frame.number",
        "-e",
        "_ws.col.Time",
        "-e",
        "_ws.col.Source",
        "-e",
        "_ws.col.Destination",
        "-e",
        "_ws.col.Length",
        "-e",
        "tcp.seq",
        "-e",
        "ip.ttl",
    ]);
    assert!(ts.status.success());
    let theirs: Vec<Vec<String>> = String::from_utf8_lossy(&ts.stdout)
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    let df = read_csv(&csv);
    assert_eq!(df.height(), theirs.len());
    let col = |c: &str| df.column(c).unwrap().cast(&DataType::String).unwrap();
    let (frame, src, dst, len, seq, ttl) = (
        col("frame.number"),
        col("_ws.col.Source"),
        col("_ws.col.Destination"),
        col("_ws.col.Length"),
        col("tcp.seq"),
        col("ip.ttl"),
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let raw_times: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    for (i, t) in theirs.iter().enumerate() {
        let get = |s: &Column| s.str().unwrap().get(i).unwrap_or("").to_string();
        let ours = [
            get(&frame),
            raw_times[i].to_string(),
            get(&src),
            get(&dst),
            get(&len),
            get(&seq),
            get(&ttl),
        ];
        assert_eq!(
            ours.as_slice(),
            t.as_slice(),
            "frame {}: ours vs tshark",
            i + 1
        );
    }
}

#[test]
fn real_captures_row_count_equals_tshark() {
    if !common::have_tshark() {
        return;
    }
    let files = corpus("real");
    if files.is_empty() {
        return;
    }
    let dir = tmpdir("real");
    let mut checked = 0;
    for f in &files {
        let pq = dir.join("r.parquet");
        let _ = std::fs::remove_file(&pq);
        let o = run(&[
            "convert",
            f.to_str().unwrap(),
            "-o",
            pq.to_str().unwrap(),
            "--no-progress",
        ]);
        let code = o.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "{}: exit {code:?} (panic?): {}",
            f.display(),
            stderr(&o)
        );
        match common::tshark_frames(f) {
            Some(n) => {
                assert!(
                    pq.exists(),
                    "{}: tshark reads {n} frames but we wrote nothing: {}",
                    f.display(),
                    stderr(&o)
                );
                let df = read_parquet(&pq);
                assert_eq!(
                    df.height() as u64,
                    n,
                    "{}: rows vs tshark frames",
                    f.display()
                );
                checked += 1;
            }
            None => {
                // tshark refuses it: we must say why in one line naming the file.
                if code == Some(1) {
                    let e = stderr(&o);
                    assert!(
                        e.contains(f.file_name().unwrap().to_str().unwrap()),
                        "{}: {e}",
                        f.display()
                    );
                }
            }
        }
    }
    eprintln!("{checked} real captures: Parquet rows equal tshark's frame count");
    assert!(checked > 50);
}

/// What we do with each broken input: exit code and packets converted.
const BAD: &[(&str, i32, Option<u64>)] = &[
    ("empty.pcap", 1, None),
    ("garbage-4k.bin", 1, None),
    ("pcap-bad-magic.pcap", 1, None),
    ("pcap-bad-version-9.9.pcap", 0, Some(2)),
    ("pcap-caplen-262145.pcap", 1, Some(0)),
    ("pcap-caplen-gt-origlen.pcap", 0, Some(2)),
    ("pcap-header-only-0pkts.pcap", 0, Some(0)),
    ("pcap-runt-5-byte-frame.pcap", 0, Some(1)),
    ("pcap-trailing-garbage.pcap", 0, Some(2)),
    ("pcap-trunc-global-header-10B.pcap", 1, None),
    ("pcap-trunc-mid-first-packet.pcap", 0, Some(0)),
    ("pcap-trunc-record-header.pcap", 0, Some(0)),
    ("pcap-unknown-linktype-65000.pcap", 0, Some(2)),
    ("pcap-usec-2000000.pcap", 0, Some(2)),
    ("pcap-zero-caplen.pcap", 0, Some(2)),
    ("pcapng-bad-block-len-8.pcapng", 1, Some(0)),
    ("pcapng-bad-block-len-not4.pcapng", 1, Some(0)),
    ("pcapng-bad-byte-order-magic.pcapng", 1, None),
    ("pcapng-block-len-trailer-mismatch.pcapng", 1, Some(0)),
    ("pcapng-no-idb.pcapng", 1, Some(0)),
    ("pcapng-trunc-mid-block.pcapng", 0, Some(0)),
    ("pcapng-trunc-mid-shb.pcapng", 1, None),
    ("text-file.csv", 1, None),
];

#[test]
fn bad_inputs_get_one_clear_line() {
    let files = corpus("bad");
    if files.is_empty() {
        return;
    }
    let dir = tmpdir("bad");
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let &(_, want_code, want_rows) = BAD
            .iter()
            .find(|b| b.0 == name)
            .unwrap_or_else(|| panic!("{name}: not in the BAD table"));
        let pq = dir.join(format!("{name}.parquet"));
        let o = run(&[
            "convert",
            f.to_str().unwrap(),
            "-o",
            pq.to_str().unwrap(),
            "--log-format",
            "text",
        ]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(want_code), "{name}: {e}");
        assert!(!e.contains("panicked"), "{name}: {e}");
        if want_code == 1 {
            let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("netdigest: ")).collect();
            assert_eq!(lines.len(), 1, "{name}: one error line: {e}");
            assert!(lines[0].contains(name), "{name}: error names the file: {e}");
        }
        match want_rows {
            None => assert!(!pq.exists(), "{name}: no output for an unreadable file"),
            Some(n) => assert_eq!(read_parquet(&pq).height() as u64, n, "{name}: rows: {e}"),
        }
    }
}

#[test]
fn truncated_tail_keeps_complete_packets_and_warns() {
    let dir = tmpdir("trunc");
    let (pcap, truth) = sample(&dir, 500);
    let bytes = std::fs::read(&pcap).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let pq = dir.join("cut.parquet");
    let o = run(&[
        "convert",
        cut.to_str().unwrap(),
        "-o",
        pq.to_str().unwrap(),
        "--log-format",
        "text",
    ]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("cut.pcap") && e.contains("lost"),
        "warning names file and loss: {e}"
    );
    assert_eq!(read_parquet(&pq).height() as u64, truth.frames - 1);
}

#[test]
fn corrupt_middle_keeps_packets_before_and_fails() {
    let dir = tmpdir("corrupt");
    let (pcap, _) = sample(&dir, 500);
    let mut bytes = std::fs::read(&pcap).unwrap();
    // Walk 100 records, then give the 101st an impossible caplen.
    let mut off = 24usize;
    for _ in 0..100 {
        let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + caplen;
    }
    bytes[off + 8..off + 12].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let bad = dir.join("bad.pcap");
    std::fs::write(&bad, &bytes).unwrap();
    let pq = dir.join("bad.parquet");
    let o = run(&["convert", bad.to_str().unwrap(), "-o", pq.to_str().unwrap()]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("bad.pcap"), "{e}");
    assert_eq!(
        read_parquet(&pq).height(),
        100,
        "the packets before the damage are kept"
    );
}

#[test]
fn missing_directory_empty_and_unreadable_inputs() {
    let dir = tmpdir("paths");
    let out = dir.join("o.parquet");
    let out_s = out.to_str().unwrap();
    let missing = dir.join("nope.pcap");
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    for (input, want) in [
        (missing.to_str().unwrap(), "nope.pcap"),
        (dir.to_str().unwrap(), "directory"),
        (empty.to_str().unwrap(), "empty"),
    ] {
        let o = run(&["convert", input, "-o", out_s]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{input}: {e}");
        assert_eq!(e.lines().count(), 1, "{input}: one line: {e}");
        assert!(e.contains(want) && e.contains(input), "{input}: {e}");
        assert!(!out.exists(), "{input}: no output left behind");
    }
}

#[test]
fn unreadable_input_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmpdir("unreadable");
    let (pcap, _) = sample(&dir, 10);
    std::fs::set_permissions(&pcap, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = dir.join("o.parquet");
    let mut cmd = common::bin();
    // root reads anything: drop to nobody for this check.
    if nix_is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_netdigest"),
        ]);
        c.env("NETDIGEST_CONFIG", "/nonexistent");
        cmd = c;
    }
    let o = cmd
        .args([
            "convert",
            pcap.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("night.pcap") && e.to_lowercase().contains("permission denied"),
        "{e}"
    );
    assert!(!out.exists());
}

fn nix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn failed_output_leaves_nothing_half_written() {
    let dir = tmpdir("atomic");
    let (pcap, _) = sample(&dir, 200);
    let pq = dir.join("o.parquet");
    // The CSV cannot be created: the run fails and no Parquet appears either.
    let o = run(&[
        "convert",
        pcap.to_str().unwrap(),
        "-o",
        pq.to_str().unwrap(),
        "--csv",
        "/nonexistent/dir/o.csv",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/dir/o.csv"));
    assert!(!pq.exists());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary files left"
    );
}

#[test]
fn several_files_are_one_capture() {
    let dir = tmpdir("multi");
    let (pcap, truth) = sample(&dir, 1_000);
    let pq = dir.join("o.parquet");
    let o = run(&[
        "convert",
        pcap.to_str().unwrap(),
        pcap.to_str().unwrap(),
        "-o",
        pq.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let df = read_parquet(&pq);
    assert_eq!(df.height() as u64, 2 * truth.frames);
    let frames = df.column("frame").unwrap().u64().unwrap();
    assert_eq!(
        frames.get(df.height() - 1),
        Some(2 * truth.frames),
        "frame numbers carry on"
    );
}

#[test]
fn config_commands() {
    let dir = tmpdir("config");
    let cfg = dir.join("nd.toml");
    std::fs::write(&cfg, "[capture]\ninterface = \"eth0\"\n").unwrap();
    let o = common::bin()
        .env("NETDIGEST_CONFIG", &cfg)
        .env("NETDIGEST_MAIL__PASSWORD", "hunter2 secret")
        .env("NETDIGEST_REPORT__TOP_N", "5")
        .arg("print-config")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !out.contains("hunter2") && !stderr(&o).contains("hunter2"),
        "{out}"
    );
    let line = |k: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{k} =")))
            .unwrap_or_else(|| panic!("{k}: {out}"))
            .to_string()
    };
    assert!(
        line("capture.interface").contains("\"eth0\"")
            && line("capture.interface").contains("file "),
        "{out}"
    );
    assert!(
        line("report.top_n").contains("env NETDIGEST_REPORT__TOP_N"),
        "{out}"
    );
    assert!(line("capture.start").contains("default"), "{out}");

    let o = common::bin()
        .env("NETDIGEST_CONFIG", &cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(&cfg, "[capture]\nintreface = \"eth0\"\n").unwrap();
    let o = common::bin()
        .env("NETDIGEST_CONFIG", &cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("intreface"), "{}", stderr(&o));
}

#[test]
fn doctor_and_mail_without_mail_config() {
    let dir = tmpdir("doctor");
    let state = dir.join("state");
    let o = common::bin()
        .env("NETDIGEST_STATE__DIR", &state)
        .arg("doctor")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(
        out.contains("ok    config") && out.contains("is writable") && out.contains("skip  mail"),
        "{out}"
    );
    // A state directory that cannot be created is a failed check, exit 1.
    let o = common::bin()
        .env("NETDIGEST_STATE__DIR", "/proc/netdigest-nope")
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // `mail` with no recipients configured: a config error naming the key, exit 2.
    let o = common::bin()
        .env("NETDIGEST_STATE__DIR", &state)
        .arg("mail")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("mail."), "{}", stderr(&o));
}

#[test]
fn csv_reads_back_with_pandas() {
    // Debian's python3-pandas (scripts/install-deps) is for /usr/bin/python3.
    let py = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import pandas"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(py) = py else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but pandas is not installed"
        );
        eprintln!("SKIP: pandas not installed");
        return;
    };
    let dir = tmpdir("pandas");
    let (pcap, truth) = sample(&dir, 4_000);
    let csv = dir.join("p.csv");
    let o = run(&[
        "convert",
        pcap.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The seed's own read: pd.read_csv with default settings, then the Source column.
    let script = "import sys, pandas as pd\ndf = pd.read_csv(sys.argv[1])\nprint(len(df), df['_ws.col.Source'].notna().sum(), df['_ws.col.Info'].str.contains(',').sum())";
    let out = std::process::Command::new(py)
        .args(["-c", script, csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(nums[0], truth.frames, "every row reads back");
    assert!(
        nums[2] > 0,
        "some Info fields hold commas (quoted), and pandas still reads them"
    );
}

/// `netdigest convert PCAP -o OUT`, which must succeed; returns OUT.
fn to_parquet(pcap: &Path, out: &Path) -> PathBuf {
    let o = run(&[
        "convert",
        pcap.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    out.to_path_buf()
}

/// The footer's key-value entries of a Parquet file, read with the Parquet library
/// directly (not through netdigest).
fn footer(p: &Path) -> BTreeMap<String, String> {
    let mut f = std::fs::File::open(p).unwrap();
    let meta = polars_parquet::read::read_metadata(&mut f).unwrap();
    meta.key_value_metadata
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| Some((kv.key, kv.value?)))
        .collect()
}

fn table(footer: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    let v = footer
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in the footer"));
    v.split('\n').map(str::to_string).collect()
}

/// Row `i`'s text of an id column through the table (`None` for "no address").
fn through_table(df: &DataFrame, id_col: &str, table: &[String]) -> Vec<Option<String>> {
    let ids = df.column(id_col).unwrap().cast(&DataType::UInt32).unwrap();
    ids.u32()
        .unwrap()
        .iter()
        .map(|id| {
            let id = id.expect("id columns have no nulls");
            (id != u32::from(netdigest::convert::NO_ID)).then(|| table[id as usize].clone())
        })
        .collect()
}

fn texts(df: &DataFrame, c: &str) -> Vec<Option<String>> {
    let s = df.column(c).unwrap().cast(&DataType::String).unwrap();
    s.str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

#[test]
fn address_and_protocol_ids_match_the_text_columns() {
    let dir = tmpdir("ids");
    let (pcap, _) = sample(&dir, 6_000);
    let pq = to_parquet(&pcap, &dir.join("p.parquet"));
    let kv = footer(&pq);
    let addresses = table(&kv, netdigest::convert::ADDRESSES_KEY);
    let protocols = table(&kv, netdigest::convert::PROTOCOLS_KEY);
    let distinct = |t: &[String]| t.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(distinct(&addresses), addresses.len(), "one id per address");
    assert_eq!(distinct(&protocols), protocols.len(), "one id per protocol");
    let df = read_parquet(&pq);
    for (id_col, text_col) in [
        ("src_id", "src"),
        ("dst_id", "dst"),
        ("src_mac_id", "src_mac"),
    ] {
        assert_eq!(df.column(id_col).unwrap().dtype(), &DataType::UInt16);
        let got = through_table(&df, id_col, &addresses);
        let want = texts(&df, text_col);
        assert!(want.iter().any(Option::is_some), "{text_col}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g, w,
                "row {i}: {id_col} through the table against {text_col}"
            );
        }
    }
    assert_eq!(df.column("protocol_id").unwrap().dtype(), &DataType::UInt8);
    let got = through_table(&df, "protocol_id", &protocols);
    assert_eq!(got, texts(&df, "protocol"));
}

/// A night with more distinct addresses than there are ids: the file has no address
/// table, the text columns are still right (also in the row group where the ids ran out),
/// and analysis reads them instead.
#[test]
fn more_addresses_than_ids_falls_back_to_text() {
    let dir = tmpdir("ids-overflow");
    let pcap = dir.join("n.pcap");
    let n: u32 = 70_000;
    let src = |i: u32| std::net::Ipv4Addr::from(0x0a00_0000 + i);
    let gw = std::net::Ipv4Addr::new(192, 168, 1, 1);
    let echo =
        |from: std::net::Ipv4Addr, to: std::net::Ipv4Addr, reply: bool| {
            let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4(from.octets(), to.octets(), 64);
            let b = if reply {
                b.icmpv4_echo_reply(7, 1)
            } else {
                b.icmpv4_echo_request(7, 1)
            };
            let mut data = Vec::new();
            b.write(&mut data, &[0u8; 8]).unwrap();
            data
        };
    let t0 = 1_731_704_400_000_000_000i64;
    let mut frames = Vec::new();
    for i in 0..n {
        let ts = t0 + i64::from(i) * 1_000_000;
        frames.push((ts, echo(src(i), gw, false)));
        // Every other request is answered.
        if i % 2 == 0 {
            frames.push((ts + 500, echo(gw, src(i), true)));
        }
    }
    common::write_pcap(&pcap, &frames);
    let frames = frames.len() as u64;

    let pq = to_parquet(&pcap, &dir.join("p.parquet"));
    assert!(
        !footer(&pq).contains_key(netdigest::convert::ADDRESSES_KEY),
        "no address table when the ids ran out"
    );
    let df = read_parquet(&pq);
    assert_eq!(df.height() as u64, frames);
    let got = texts(&df, "src");
    let mut want = Vec::new();
    for i in 0..n {
        want.push(Some(src(i).to_string()));
        if i % 2 == 0 {
            want.push(Some(gw.to_string()));
        }
    }
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "row {i}");
    }

    // Every source listed (report.max_rows raised to all of them).
    let all = netdigest::analyse::AnalyseOptions {
        max_rows: n as usize,
        ..Default::default()
    };
    let s = netdigest::analyse::analyse(&pq, &all).unwrap();
    assert_eq!(s.totals.packets, frames);
    assert_eq!(s.pings.len(), n as usize, "one row per source");
    assert!(s.pings.iter().all(|p| p.requests == 1));
    assert_eq!(
        s.pings.iter().map(|p| p.replies).sum::<u64>(),
        u64::from(n / 2)
    );
    assert_eq!(
        s.pings.iter().map(|p| p.unanswered).sum::<u64>(),
        u64::from(n / 2)
    );
    let p = s.pings.iter().find(|p| p.src == "10.0.0.3").unwrap();
    assert_eq!((p.replies, p.unanswered), (0, 1));
    // Request 68,000 (10.1.9.160), long after the ids ran out, was answered.
    let p = s.pings.iter().find(|p| p.src == "10.1.9.160").unwrap();
    assert_eq!((p.replies, p.unanswered), (1, 0));
    // At the default cap the rest are counted, not listed.
    let capped =
        netdigest::analyse::analyse(&pq, &netdigest::analyse::AnalyseOptions::default()).unwrap();
    assert_eq!(capped.pings.len(), 100);
    assert_eq!(capped.omitted.ping_sources, u64::from(n) - 100);
}

/// Analysis through the id columns and through the text columns (the same packets
/// written without the footer tables) gives the same summary.
#[test]
fn analysis_through_ids_equals_analysis_through_text() {
    let dir = tmpdir("ids-text");
    let (pcap, _) = sample(&dir, 20_000);
    let pq = to_parquet(&pcap, &dir.join("p.parquet"));
    assert!(footer(&pq).contains_key(netdigest::convert::ADDRESSES_KEY));
    let plain = dir.join("plain.parquet");
    let mut df = read_parquet(&pq);
    ParquetWriter::new(std::fs::File::create(&plain).unwrap())
        .finish(&mut df)
        .unwrap();
    assert!(!footer(&plain).contains_key(netdigest::convert::ADDRESSES_KEY));
    let opts = netdigest::analyse::AnalyseOptions {
        zone: netdigest::config::Zone::Named(chrono_tz::Europe::Berlin),
        ..Default::default()
    };
    let a = netdigest::analyse::analyse(&pq, &opts).unwrap();
    let b = netdigest::analyse::analyse(&plain, &opts).unwrap();
    assert!(!a.pings.is_empty() && !a.conversations.is_empty() && !a.arp.is_empty());
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        serde_json::to_value(&b).unwrap()
    );
}

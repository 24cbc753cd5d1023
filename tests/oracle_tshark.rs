//! Oracle: our reader + decoder + relative-sequence tracker against `tshark -n`, frame by
//! frame, on every real capture in `shared/corpus/real` that tshark reads.
//!
//! Compared per frame: frame number, Source, Destination, frame length, TTL (IPv4) or
//! hop limit (IPv6) of the outermost IP header, relative TCP sequence number, source and
//! destination port (TCP, UDP, SCTP), ICMP/ICMPv6 type.
//!
//! Baseline: tshark with IP reassembly off (`ip.defragment`/`ipv6.defragment` FALSE),
//! because we decode each frame on its own, as tshark then does: the first fragment
//! shows its transport header, later fragments none. Its "N/A" placeholder (raw and PPP
//! link layers without addresses) compares equal to an absent address.
//!
//! Legitimate differences are listed in [`EXCEPTIONS`], by file, field and frames; each
//! one must still be needed (the test fails when a listed frame no longer differs).
//!
//! The shared directory is `NETDIGEST_SHARED`, else `CARGO_MANIFEST_DIR/../shared`.
//! Missing (or tshark missing): a failure under `CI=true`, else a skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use netdigest::capfile::CaptureReader;
use netdigest::decode::{self, FrameMeta, TcpSeqTracker};

/// (file, field, frames, reason): fields where tshark and we legitimately differ in those
/// frames of that file. Each listed frame must still differ there.
const EXCEPTIONS: &[(&str, &str, &[u64], &str)] = &[
    (
        "zeek__icmp_icmp-destunreach-udp.pcap",
        "src_port",
        &[1],
        "ICMP error quoting a UDP datagram: tshark's udp.srcport is the quoted datagram's; \
         the record's ports are the frame's own and ICMP has none",
    ),
    (
        "zeek__icmp_icmp-destunreach-udp.pcap",
        "dst_port",
        &[1],
        "ICMP error quoting a UDP datagram: tshark's udp.dstport is the quoted datagram's",
    ),
    (
        "zeek__icmp_icmp6-toobig.pcap",
        "src_port",
        &[1],
        "ICMPv6 Packet Too Big quoting a UDP datagram: tshark's udp.srcport is the quoted one's",
    ),
    (
        "zeek__icmp_icmp6-toobig.pcap",
        "dst_port",
        &[1],
        "ICMPv6 Packet Too Big quoting a UDP datagram: tshark's udp.dstport is the quoted one's",
    ),
    (
        "nDPI__iphone.pcap",
        "src_port",
        &[193, 194, 196, 197, 263],
        "ICMP port unreachable quoting a DNS response: tshark's udp.srcport is the quoted \
         datagram's; the record's ports are the frame's own and ICMP has none",
    ),
    (
        "nDPI__iphone.pcap",
        "dst_port",
        &[193, 194, 196, 197, 263],
        "ICMP port unreachable quoting a DNS response: tshark's udp.dstport is the quoted \
         datagram's",
    ),
    (
        "suricata-verify__output-eve-ftp-data_input.pcap",
        "src_port",
        &[91, 93, 536, 540, 959, 961],
        "Teredo carrying ICMPv6: tshark's udp.srcport is the tunnel's outer UDP header's; \
         the record shows the inner IPv6 packet (addresses, protocol), and ICMPv6 has no ports",
    ),
    (
        "suricata-verify__output-eve-ftp-data_input.pcap",
        "dst_port",
        &[91, 93, 536, 540, 959, 961],
        "Teredo carrying ICMPv6: tshark's udp.dstport is the tunnel's outer UDP header's",
    ),
];

const FIELDS: &[&str] = &[
    "frame.number",
    "_ws.col.Source",
    "_ws.col.Destination",
    "frame.len",
    "ip.ttl",
    "ipv6.hlim",
    "tcp.seq",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "sctp.srcport",
    "sctp.dstport",
    "icmp.type",
    "icmpv6.type",
];

fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NETDIGEST_SHARED").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
        PathBuf::from,
    );
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !dir.join("corpus/real").is_dir() {
        assert!(
            !ci,
            "CI=true but {} is missing: the tshark oracle needs shared/corpus/real \
             (set NETDIGEST_SHARED or put shared/ beside the repository)",
            dir.join("corpus/real").display()
        );
        eprintln!(
            "SKIP oracle_tshark: {} not found (set NETDIGEST_SHARED)",
            dir.join("corpus/real").display()
        );
        return None;
    }
    let tshark = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !tshark {
        assert!(
            !ci,
            "CI=true but tshark is not installed: the oracle needs it"
        );
        eprintln!("SKIP oracle_tshark: tshark not installed");
        return None;
    }
    Some(dir)
}

/// tshark's rows for a file, or None when tshark does not read it.
fn tshark_rows(file: &Path) -> Option<Vec<Vec<String>>> {
    let mut cmd = Command::new("tshark");
    // -n: never name resolution (it would send DNS queries).
    cmd.args(["-n", "-r"]).arg(file).args([
        "-o",
        "ip.defragment:FALSE",
        "-o",
        "ipv6.defragment:FALSE",
        "-T",
        "fields",
        "-E",
        "occurrence=f",
        "-E",
        "separator=/t",
    ]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("running tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    if !out.status.success() && rows.is_empty() {
        return None;
    }
    Some(rows)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// First non-empty of tshark's columns.
fn first_of<'a>(row: &'a [String], idx: &[usize]) -> &'a str {
    idx.iter()
        .map(|&i| row.get(i).map_or("", String::as_str))
        .find(|s| !s.is_empty())
        .unwrap_or("")
}

#[derive(Default)]
struct FileResult {
    frames: usize,
    matched: usize,
    excepted: usize,
}

#[test]
fn oracle_tshark() {
    let Some(shared) = shared_dir() else { return };
    let corpus = shared.join("corpus/real");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e != "tsv" && e != "md"))
        .collect();
    files.sort();

    let col = |name: &str| FIELDS.iter().position(|f| *f == name).unwrap();
    let (c_frame, c_src, c_dst, c_len) = (
        col("frame.number"),
        col("_ws.col.Source"),
        col("_ws.col.Destination"),
        col("frame.len"),
    );
    let (c_ttl, c_hlim, c_seq) = (col("ip.ttl"), col("ipv6.hlim"), col("tcp.seq"));
    let sports = [col("tcp.srcport"), col("udp.srcport"), col("sctp.srcport")];
    let dports = [col("tcp.dstport"), col("udp.dstport"), col("sctp.dstport")];
    let icmps = [col("icmp.type"), col("icmpv6.type")];

    let mut failures: Vec<String> = Vec::new();
    // (file, field) -> frames that differed there (tolerated by an exception)
    let mut used: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    let (mut n_files, mut n_frames, mut n_matched) = (0usize, 0usize, 0usize);

    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(rows) = tshark_rows(path) else {
            println!("{name}: not read by tshark, skipped");
            continue;
        };
        let mut reader = match CaptureReader::open(path) {
            Ok(r) => r,
            Err(e) => {
                if rows.is_empty() {
                    println!("{name}: 0/0 frames matched (no frames; our reader: {e})");
                    n_files += 1;
                } else {
                    failures.push(format!(
                        "{name}: tshark reads {} frames, we cannot open it: {e}",
                        rows.len()
                    ));
                }
                continue;
            }
        };
        n_files += 1;
        let mut tracker = TcpSeqTracker::new();
        let mut res = FileResult::default();
        let mut frame_no = 0u64;
        for row in &rows {
            let frame = match reader.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => {
                    failures.push(format!(
                        "{name}: tshark shows frame {}, our reader ended after {frame_no}",
                        row[c_frame]
                    ));
                    break;
                }
                Err(e) => {
                    failures.push(format!(
                        "{name}: tshark shows frame {}, our reader failed after {frame_no}: {e}",
                        row[c_frame]
                    ));
                    break;
                }
            };
            frame_no += 1;
            let meta = FrameMeta {
                frame: frame_no,
                ts_ns: frame.ts_ns,
                interface: frame.interface,
                wire_len: frame.wire_len,
            };
            let rec = decode::decode(meta, frame.data, frame.link);
            let rel = tracker.relative(&rec);
            let na = |s: &str| {
                if s == "N/A" {
                    String::new()
                } else {
                    s.to_string()
                }
            };
            let ttl_t = match rec.ip_version {
                Some(6) => row[c_hlim].clone(),
                Some(_) => row[c_ttl].clone(),
                None => first_of(row, &[c_ttl, c_hlim]).to_string(),
            };
            let checks: [(&str, String, String); 9] = [
                ("frame", rec.frame.to_string(), row[c_frame].clone()),
                ("src", opt(rec.src), na(&row[c_src])),
                ("dst", opt(rec.dst), na(&row[c_dst])),
                ("wire_len", rec.wire_len.to_string(), row[c_len].clone()),
                ("ttl", opt(rec.ttl), ttl_t),
                ("tcp_seq", opt(rel), row[c_seq].clone()),
                (
                    "src_port",
                    opt(rec.src_port),
                    first_of(row, &sports).to_string(),
                ),
                (
                    "dst_port",
                    opt(rec.dst_port),
                    first_of(row, &dports).to_string(),
                ),
                (
                    "icmp_type",
                    opt(rec.icmp_type),
                    first_of(row, &icmps).to_string(),
                ),
            ];
            res.frames += 1;
            let mut all = true;
            let mut excepted = false;
            for (field, ours, theirs) in checks {
                if ours == theirs {
                    continue;
                }
                all = false;
                if let Some(&(f, fl, _, _)) = EXCEPTIONS.iter().find(|(f, fl, frames, _)| {
                    *f == name && *fl == field && frames.contains(&frame_no)
                }) {
                    used.entry((f, fl)).or_default().push(frame_no);
                    excepted = true;
                } else {
                    failures.push(format!(
                        "{name} frame {frame_no}: {field}: ours {ours:?}, tshark {theirs:?}"
                    ));
                }
            }
            if all {
                res.matched += 1;
            } else if excepted {
                res.excepted += 1;
            }
        }
        println!(
            "{name}: {}/{} frames matched{}",
            res.matched,
            res.frames,
            if res.excepted > 0 {
                format!(" ({} differ by a listed exception)", res.excepted)
            } else {
                String::new()
            }
        );
        n_frames += res.frames;
        n_matched += res.matched;
    }
    println!("oracle: {n_files} files, {n_frames} frames compared, {n_matched} matched exactly");
    for (file, field, frames, reason) in EXCEPTIONS {
        let seen = used.get(&(*file, *field)).map_or(&[][..], Vec::as_slice);
        let stale: Vec<&u64> = frames.iter().filter(|f| !seen.contains(f)).collect();
        if stale.is_empty() {
            println!("exception {file} {field}: frames {frames:?} ({reason})");
        } else {
            failures.push(format!(
                "exception ({file}, {field}) no longer differs in frames {stale:?}: \
                 remove them ({reason})"
            ));
        }
    }
    if !failures.is_empty() {
        let shown = failures.len().min(400);
        panic!(
            "{} mismatches:\n{}{}",
            failures.len(),
            failures[..shown].join("\n"),
            if failures.len() > shown { "\n..." } else { "" }
        );
    }
}

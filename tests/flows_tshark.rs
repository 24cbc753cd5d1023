//! Oracle for connections (issue 15): for every real capture in `shared/corpus/real`,
//! the connections [`netdigest::flows::FlowTable`] builds must be tshark's TCP and UDP
//! conversations, `tshark -n -q -z conv,tcp -z conv,udp`, wherever our idle timeout does
//! not split one.
//!
//! Our side reads each file as convert does: netdigest's reader and decoder, one
//! [`FlowTable`] with the default [`FlowLimits`], its rows from
//! [`FlowTable::finish_frame`]. A frame belongs to the connection of its 5-tuple that
//! began last at or before it (connections of one 5-tuple follow each other).
//!
//! tshark's side, one run per file with the same preferences as `oracle_tshark` (IP
//! reassembly off, `ip.defragment`/`ipv6.defragment` FALSE, so frames map 1:1: a later
//! fragment has no ports on either side):
//!
//! - per frame (`-T fields`): its number, `frame.time_epoch`, `frame.len`,
//!   `frame.protocols` and every occurrence of the IP addresses, TCP/UDP ports and
//!   `tcp.stream`/`udp.stream`. Walking `frame.protocols` gives each transport layer
//!   its addresses (the nearest IP layer before it), ports and stream. A layer after an
//!   `icmp`/`icmpv6` layer is the datagram an ICMP error quotes: tshark gives it a stream
//!   index but does not count it in its conversation table (checked below), and neither
//!   do we (for us the frame is ICMP). A frame may carry several layers (a UDP tunnel:
//!   tshark counts the outer and the inner conversation); ours is the layer with our
//!   5-tuple.
//! - aggregated per (protocol, stream): frames and exact bytes each way (A = the first
//!   frame's source, as tshark's table), first frame, earliest and latest timestamp.
//!   tshark 4.0's conversation tables are per stream (`tcp.stream` splits a reused
//!   5-tuple on a new SYN), so this aggregation is checked against the tables: every row
//!   of `-z conv,tcp`/`conv,udp` (frames each way, bytes each way, exact below 10 kB and
//!   as tshark rounds above, relative start, duration) must be one aggregated stream and
//!   every stream one row.
//!
//! Compared, per tshark conversation: the frames that make it up must be the frames of
//! exactly one of our connections (the same split on a new SYN); then frames and bytes
//! each way, first and last timestamp, and the table's relative start and duration as
//! tshark prints them. Where our idle timeout (or the table's bound) ends a connection
//! that goes on later, tshark has one conversation and we several: those are counted as
//! idle-split and only their sums (frames and bytes each way) compared.
//!
//! Legitimate differences are listed in [`EXCEPTIONS`] by file, what differs and frames
//! (a conversation is named by its first frame), with a reason; each listed frame must
//! still differ.
//!
//! `cargo test --release --test flows_tshark -- --nocapture` prints a table of counts
//! per file and per file group (ours / tshark / matched / idle-split / excepted).
//!
//! The shared directory is `NETDIGEST_SHARED`, else `CARGO_MANIFEST_DIR/../shared`.
//! Missing (or tshark missing): a failure under `CI=true`, else a skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use netdigest::decode;
use netdigest::flows::{self, FlowLimits, FlowTable};
use polars::prelude::*;

/// (file, what, frames, reason): differences that are legitimate. `what` is
/// `ours-only` / `tshark-only` (frames one side puts in a conversation and the other
/// does not; a conversation only tshark has is named by its first frame), `split` /
/// `merge` (we split a tshark conversation other than by idle time / tshark split one
/// of ours), or a compared value (`frames`, `bytes`, `first`, `last`, `start`,
/// `duration`) of the conversation that begins at that frame. Each listed frame must
/// still differ.
const EXCEPTIONS: &[(&str, &str, &[u64], &str)] = &[
    (
        "suricata-verify__output-eve-ftp-data_input.pcap",
        "tshark-only",
        &[91],
        "Teredo: tshark counts the tunnel's outer UDP conversation (client port 59085 <-> \
         the Teredo server's 3544, 6 frames); our records carry the inner IPv6 packet, \
         ICMPv6 router solicitations/advertisements without ports, so no connection (we \
         key on the innermost header)",
    ),
    (
        "zeek__ipv4_fragmented-syn.pcap",
        "table",
        &[1],
        "a SYN in the first fragment of a fragmented datagram whose TCP options run past \
         it: tshark gives the frame a tcp.stream but its TCP dissector stops with an \
         exception before the tap, so its table has no row; our decoder reads the ports \
         and flags of the header's fixed part and counts the attempt (compared with the \
         stream's frames: they match)",
    ),
    (
        "tcpdump__timestamp_invalid_nano.pcap",
        "table",
        &[0, 1],
        "invalid timestamps (fraction >= 10^9 ns): tshark keeps the out-of-range fraction \
         and prints frame 3 at a negative epoch, its table from a relative time its own \
         frames do not give; our reader's times differ (carried into seconds), so times \
         cannot be compared here. Frames and bytes each way match",
    ),
    (
        "tcpdump__timestamp_invalid_nano.pcap",
        "first",
        &[1],
        "invalid timestamps: tshark's frame 3 is at a negative epoch (see its table entry)",
    ),
    (
        "tcpdump__timestamp_invalid_nano.pcap",
        "last",
        &[1],
        "invalid timestamps: tshark's frame 2 is 1418145370 s + 10^9 ns (see its table entry)",
    ),
];

/// One side of a conversation: address as tshark shows it, port.
type End = (String, u16);

// ---------------------------------------------------------------- our side

#[derive(Debug, Clone)]
struct Ours {
    proto: u8,
    orig: End,
    resp: End,
    first_frame: u64,
    first_ns: i64,
    last_ns: i64,
    pkts: [u64; 2],
    bytes: [u64; 2],
    state: Option<String>,
    end: String,
}

/// A 5-tuple without direction.
type Tuple = (u8, End, End);

fn tuple(proto: u8, a: End, b: End) -> Tuple {
    if a <= b { (proto, a, b) } else { (proto, b, a) }
}

struct OurSide {
    conns: Vec<Ours>,
    /// frame -> index in `conns`.
    frame_conn: BTreeMap<u64, usize>,
    /// The first frame's timestamp: tshark's relative times count from it.
    first_ts: Option<i64>,
}

fn col_u64(df: &DataFrame, c: &str) -> Vec<u64> {
    df.column(c)
        .unwrap()
        .cast(&DataType::UInt64)
        .unwrap()
        .u64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

fn col_i64(df: &DataFrame, c: &str) -> Vec<i64> {
    df.column(c)
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

fn col_str(df: &DataFrame, c: &str) -> Vec<Option<String>> {
    df.column(c)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

/// Our connections, as convert builds them; an error when our reader cannot open the file.
fn ours(file: &Path) -> Result<OurSide, String> {
    let mut table = FlowTable::new(FlowLimits::default());
    // frame -> its 5-tuple, for frames that are part of a connection.
    let mut tuples: Vec<(u64, Tuple)> = Vec::new();
    let mut first_ts = None;
    common::for_each_decoded(file, |rec, _| {
        first_ts.get_or_insert(rec.ts_ns);
        table.observe(rec).unwrap();
        if let (Some(p @ (6 | 17)), Some(s), Some(d), Some(sp), Some(dp)) = (
            rec.ip_proto,
            rec.src.filter(|a| !matches!(a, decode::Addr::Mac(_))),
            rec.dst.filter(|a| !matches!(a, decode::Addr::Mac(_))),
            rec.src_port,
            rec.dst_port,
        ) {
            tuples.push((
                rec.frame,
                tuple(p, (s.to_string(), sp), (d.to_string(), dp)),
            ));
        }
    })?;
    let df = table.finish_frame().unwrap();
    let proto = col_u64(&df, flows::PROTO);
    let oa = col_str(&df, flows::ORIG_ADDR);
    let op = col_u64(&df, flows::ORIG_PORT);
    let ra = col_str(&df, flows::RESP_ADDR);
    let rp = col_u64(&df, flows::RESP_PORT);
    let ff = col_u64(&df, flows::FIRST_FRAME);
    let fts = col_i64(&df, flows::FIRST_TS);
    let lts = col_i64(&df, flows::LAST_TS);
    let (opk, rpk) = (
        col_u64(&df, flows::ORIG_PKTS),
        col_u64(&df, flows::RESP_PKTS),
    );
    let (ob, rb) = (
        col_u64(&df, flows::ORIG_BYTES),
        col_u64(&df, flows::RESP_BYTES),
    );
    let state = col_str(&df, flows::STATE);
    let end = col_str(&df, flows::END);
    let mut conns = Vec::new();
    for i in 0..df.height() {
        conns.push(Ours {
            proto: u8::try_from(proto[i]).unwrap(),
            orig: (oa[i].clone().unwrap(), u16::try_from(op[i]).unwrap()),
            resp: (ra[i].clone().unwrap(), u16::try_from(rp[i]).unwrap()),
            first_frame: ff[i],
            first_ns: fts[i],
            last_ns: lts[i],
            pkts: [opk[i], rpk[i]],
            bytes: [ob[i], rb[i]],
            state: state[i].clone(),
            end: end[i].clone().unwrap_or_default(),
        });
    }
    // Connections of one 5-tuple by first frame: a frame is in the last begun at or
    // before it.
    let mut by_tuple: BTreeMap<Tuple, Vec<(u64, usize)>> = BTreeMap::new();
    for (i, c) in conns.iter().enumerate() {
        by_tuple
            .entry(tuple(c.proto, c.orig.clone(), c.resp.clone()))
            .or_default()
            .push((c.first_frame, i));
    }
    for v in by_tuple.values_mut() {
        v.sort_unstable();
    }
    let mut frame_conn = BTreeMap::new();
    for (frame, t) in tuples {
        let v = by_tuple
            .get(&t)
            .unwrap_or_else(|| panic!("frame {frame}: no connection of ours for {t:?}"));
        let k = v.partition_point(|(f, _)| *f <= frame);
        assert!(k > 0, "frame {frame} before its connection began");
        frame_conn.insert(frame, v[k - 1].1);
    }
    Ok(OurSide {
        conns,
        frame_conn,
        first_ts,
    })
}

// ---------------------------------------------------------------- tshark's side

/// One TCP/UDP layer of a frame, as tshark dissects it.
#[derive(Debug, Clone)]
struct Layer {
    proto: u8,
    stream: u64,
    src: End,
    dst: End,
}

#[derive(Debug)]
struct TFrame {
    no: u64,
    ts_ns: i64,
    len: u64,
    /// Layers counted in tshark's conversation tables.
    layers: Vec<Layer>,
}

/// One of tshark's conversations, aggregated from its frames.
#[derive(Debug, Clone)]
struct Conv {
    proto: u8,
    /// A: the first frame's source (as tshark's table), B its destination.
    a: End,
    b: End,
    first_frame: u64,
    /// Frames and bytes A->B, B->A.
    frames: [u64; 2],
    bytes: [u64; 2],
    min_ns: i64,
    max_ns: i64,
}

/// A row of tshark's conversation table.
#[derive(Debug, Clone)]
struct Row {
    proto: u8,
    a: End,
    b: End,
    /// Frames and bytes ("1234 bytes", "41 kB") A->B, B->A.
    frames: [u64; 2],
    bytes: [String; 2],
    start: String,
    duration: String,
}

struct TsharkSide {
    frames: Vec<TFrame>,
    rows: Vec<Row>,
}

const FIELDS: &[&str] = &[
    "frame.number",
    "frame.time_epoch",
    "frame.len",
    "frame.protocols",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.stream",
    "udp.srcport",
    "udp.dstport",
    "udp.stream",
];

/// tshark's frames and conversation tables; None when tshark does not read the file.
fn tshark(file: &Path) -> Option<TsharkSide> {
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
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-E",
        "separator=/t",
        "-z",
        "conv,tcp",
        "-z",
        "conv,udp",
    ]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("running tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let (fields, tables) = if text.starts_with("====") {
        ("", &text[..])
    } else {
        match text.find("\n====") {
            Some(i) => text.split_at(i + 1),
            None => (&text[..], ""),
        }
    };
    if !out.status.success() && tables.is_empty() {
        return None;
    }
    let frames = fields.lines().map(parse_frame).collect();
    Some(TsharkSide {
        frames,
        rows: parse_tables(tables),
    })
}

/// "1371506308.699407000" -> ns. tshark prints an out-of-range fraction (a capture's
/// invalid timestamp) as it holds it, "1418145370.1000000000": nanoseconds, all digits.
fn epoch_ns(s: &str) -> i64 {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    let ns = secs.parse::<i64>().unwrap() * 1_000_000_000 + frac.parse::<i64>().unwrap();
    if neg { -ns } else { ns }
}

fn parse_frame(line: &str) -> TFrame {
    let cols: Vec<&str> = line.split('\t').collect();
    let col = |name: &str| -> Vec<&str> {
        let i = FIELDS.iter().position(|f| *f == name).unwrap();
        cols.get(i)
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').collect())
            .unwrap_or_default()
    };
    let no = col("frame.number")[0]
        .parse()
        .unwrap_or_else(|e| panic!("tshark's line {line:?}: {e}"));
    let ts_ns = epoch_ns(col("frame.time_epoch")[0]);
    let len = col("frame.len")[0].parse().unwrap();
    let protocols = col("frame.protocols")
        .first()
        .map(|p| p.split(':').map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    // Walk the layers, taking each field's occurrences in order.
    let mut next: BTreeMap<&str, usize> = BTreeMap::new();
    let mut take = |name: &'static str| -> Option<String> {
        let i = next.entry(name).or_default();
        let v = col(name).get(*i).map(|s| (*s).to_string());
        *i += 1;
        v
    };
    let mut addrs: Option<(String, String)> = None;
    let mut in_error = false;
    let mut layers = Vec::new();
    for p in &protocols {
        match p.as_str() {
            "ip" => addrs = take("ip.src").zip(take("ip.dst")),
            "ipv6" => addrs = take("ipv6.src").zip(take("ipv6.dst")),
            "icmp" | "icmpv6" => in_error = true,
            "tcp" | "udp" => {
                let (proto, sp, dp, st) = if p == "tcp" {
                    (6, "tcp.srcport", "tcp.dstport", "tcp.stream")
                } else {
                    (17, "udp.srcport", "udp.dstport", "udp.stream")
                };
                let (sp, dp, st) = (take(sp), take(dp), take(st));
                // A datagram quoted by an ICMP error is not counted in the tables.
                if in_error {
                    continue;
                }
                if let (Some((s, d)), Some(sp), Some(dp), Some(st)) = (addrs.clone(), sp, dp, st) {
                    layers.push(Layer {
                        proto,
                        stream: st.parse().unwrap(),
                        src: (s, sp.parse().unwrap()),
                        dst: (d, dp.parse().unwrap()),
                    });
                }
            }
            _ => {}
        }
    }
    TFrame {
        no,
        ts_ns,
        len,
        layers,
    }
}

fn split_end(s: &str) -> End {
    let (a, p) = s.rsplit_once(':').unwrap();
    (a.to_string(), p.parse().unwrap())
}

/// The rows of `-z conv,tcp` and `-z conv,udp`.
fn parse_tables(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut proto = 0u8;
    for line in text.lines() {
        if line.starts_with("TCP Conversations") {
            proto = 6;
            continue;
        }
        if line.starts_with("UDP Conversations") {
            proto = 17;
            continue;
        }
        let t: Vec<&str> = line.split_whitespace().collect();
        if proto == 0 || t.len() != 14 || t[1] != "<->" {
            continue;
        }
        // A <-> B, then "<-" (B->A) frames bytes unit, "->" (A->B) frames bytes unit,
        // total frames bytes unit, relative start, duration.
        let bytes = |i: usize| format!("{} {}", t[i], t[i + 1]);
        rows.push(Row {
            proto,
            a: split_end(t[0]),
            b: split_end(t[2]),
            frames: [t[6].parse().unwrap(), t[3].parse().unwrap()],
            bytes: [bytes(7), bytes(4)],
            start: t[12].to_string(),
            duration: t[13].to_string(),
        });
    }
    rows
}

/// Bytes as tshark's conversation table prints them (format_size, SI prefixes).
fn tshark_size(n: u64) -> String {
    let units = ["kB", "MB", "GB", "TB", "PB"];
    let mut shown = String::new();
    for (i, u) in units.iter().enumerate().rev() {
        let p = 1000u64.pow(u32::try_from(i).unwrap() + 1);
        if n / p >= 10 {
            shown = format!("{} {u}", n / p);
            break;
        }
    }
    if shown.is_empty() {
        format!("{n} bytes")
    } else {
        shown
    }
}

/// nstime_to_sec: a time in seconds as tshark computes it.
fn to_sec(ns: i64) -> f64 {
    let s = ns.div_euclid(1_000_000_000);
    let n = ns.rem_euclid(1_000_000_000);
    #[allow(clippy::cast_precision_loss)]
    let v = s as f64 + n as f64 / 1e9;
    v
}

/// Seconds as tshark prints a time.
fn secs(ns: i64, decimals: usize) -> String {
    format!("{:.decimals$}", to_sec(ns))
}

/// A conversation's duration as tshark's table prints it: the difference of its
/// relative start and stop, each in seconds (tap-iousers.c).
fn duration(first_ns: i64, last_ns: i64, t0: i64) -> String {
    format!("{:.4}", to_sec(last_ns - t0) - to_sec(first_ns - t0))
}

fn aggregate(frames: &[TFrame]) -> BTreeMap<(u8, u64), Conv> {
    let mut convs: BTreeMap<(u8, u64), Conv> = BTreeMap::new();
    for f in frames {
        for l in &f.layers {
            let c = convs.entry((l.proto, l.stream)).or_insert_with(|| Conv {
                proto: l.proto,
                a: l.src.clone(),
                b: l.dst.clone(),
                first_frame: f.no,
                frames: [0; 2],
                bytes: [0; 2],
                min_ns: f.ts_ns,
                max_ns: f.ts_ns,
            });
            let d = usize::from(l.src != c.a || (c.a == c.b && l.dst != c.b));
            c.frames[d] += 1;
            c.bytes[d] += f.len;
            c.min_ns = c.min_ns.min(f.ts_ns);
            c.max_ns = c.max_ns.max(f.ts_ns);
        }
    }
    convs
}

// ---------------------------------------------------------------- the test

#[derive(Default, Clone, Copy)]
struct Counts {
    ours: usize,
    tshark: usize,
    matched: usize,
    idle_split: usize,
    excepted: usize,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.ours += o.ours;
        self.tshark += o.tshark;
        self.matched += o.matched;
        self.idle_split += o.idle_split;
        self.excepted += o.excepted;
    }
}

/// tshark's (protocol, stream index).
type StreamId = (u8, u64);

/// What names a row of tshark's table: protocol, A, B, relative start as printed.
type RowKey = (u8, End, End, String);

/// A difference found in one file: (what, frame, text).
type Diff = (&'static str, u64, String);

fn show_end(e: &End) -> String {
    format!("{}:{}", e.0, e.1)
}

/// The idle time after which our table ends a connection that ended with `end`: a
/// closed one (FIN both ways, RST) lingers only briefly.
fn idle_ns(proto: u8, end: &str) -> i64 {
    let l = FlowLimits::default();
    let s = if end == "fin" || end == "rst" {
        l.closed_linger_s
    } else if proto == 6 {
        l.tcp_idle_s
    } else {
        l.udp_idle_s
    };
    i64::from(s) * 1_000_000_000
}

/// Compares one file; returns its counts and differences.
fn compare(o: &OurSide, t: &TsharkSide) -> (Counts, Vec<Diff>) {
    let mut diffs: Vec<Diff> = Vec::new();
    let convs = aggregate(&t.frames);
    let mut counts = Counts {
        ours: o.conns.len(),
        tshark: t.rows.len(),
        ..Counts::default()
    };
    let t0 = o.first_ts.unwrap_or(0);

    // The aggregation is tshark's table: every row one stream, every stream one row.
    let mut row_of: BTreeMap<(u8, u64), &Row> = BTreeMap::new();
    let mut by_row: BTreeMap<RowKey, Vec<StreamId>> = BTreeMap::new();
    for (k, c) in &convs {
        let start = secs(c.min_ns - t0, 9);
        by_row
            .entry((c.proto, c.a.clone(), c.b.clone(), start))
            .or_default()
            .push(*k);
    }
    for r in &t.rows {
        let key = (r.proto, r.a.clone(), r.b.clone(), r.start.clone());
        let Some(k) = by_row.get_mut(&key).and_then(Vec::pop) else {
            diffs.push((
                "table",
                0,
                format!(
                    "tshark's table has {} <-> {} from {} that its frames do not make",
                    show_end(&r.a),
                    show_end(&r.b),
                    r.start
                ),
            ));
            continue;
        };
        let c = &convs[&k];
        let bytes = [tshark_size(c.bytes[0]), tshark_size(c.bytes[1])];
        let dur = duration(c.min_ns, c.max_ns, t0);
        if c.frames != r.frames || bytes != r.bytes || dur != r.duration {
            diffs.push((
                "table",
                c.first_frame,
                format!(
                    "tshark's table: frames {:?} bytes {:?} duration {}; its frames: {:?} {bytes:?} {dur}",
                    r.frames, r.bytes, r.duration, c.frames
                ),
            ));
        }
        row_of.insert(k, r);
    }
    for (k, c) in &convs {
        if !row_of.contains_key(k) {
            diffs.push((
                "table",
                c.first_frame,
                format!(
                    "stream {k:?} {} <-> {} not in tshark's table",
                    show_end(&c.a),
                    show_end(&c.b)
                ),
            ));
        }
    }

    // Conversations whose table row and frames disagree are not counted as matched.
    let table_diffs: BTreeSet<u64> = diffs.iter().map(|d| d.1).collect();

    // Frame by frame: which of our connections and which tshark conversation.
    let mut ours_of: BTreeMap<(u8, u64), BTreeSet<usize>> = BTreeMap::new();
    let mut theirs_of: BTreeMap<usize, BTreeSet<(u8, u64)>> = BTreeMap::new();
    // tshark conversation -> its frames we do not count in it
    let mut tshark_only: BTreeMap<(u8, u64), Vec<u64>> = BTreeMap::new();
    for f in &t.frames {
        let mine = o.frame_conn.get(&f.no).copied();
        let mut paired = false;
        for l in &f.layers {
            let k = (l.proto, l.stream);
            let same = mine.is_some_and(|i| {
                let c = &o.conns[i];
                c.proto == l.proto
                    && ((c.orig == l.src && c.resp == l.dst)
                        || (c.orig == l.dst && c.resp == l.src))
            });
            if same && !paired {
                paired = true;
                let i = mine.unwrap();
                ours_of.entry(k).or_default().insert(i);
                theirs_of.entry(i).or_default().insert(k);
            } else {
                tshark_only.entry(k).or_default().push(f.no);
            }
        }
        if let (Some(i), false) = (mine, paired) {
            let c = &o.conns[i];
            let layers: Vec<String> = f
                .layers
                .iter()
                .map(|l| {
                    format!(
                        "{} {} -> {} stream {}",
                        l.proto,
                        show_end(&l.src),
                        show_end(&l.dst),
                        l.stream
                    )
                })
                .collect();
            diffs.push((
                "ours-only",
                f.no,
                format!(
                    "ours: {} {} <-> {} (from frame {}); tshark: [{}]",
                    c.proto,
                    show_end(&c.orig),
                    show_end(&c.resp),
                    c.first_frame,
                    layers.join(", ")
                ),
            ));
        }
    }
    for (k, frames) in &tshark_only {
        let c = &convs[k];
        let whole = !ours_of.contains_key(k);
        let shown: Vec<u64> = if whole {
            vec![c.first_frame]
        } else {
            frames.clone()
        };
        for no in shown {
            diffs.push((
                "tshark-only",
                no,
                format!(
                    "tshark: {} {} <-> {} ({} frames{}); ours: none",
                    c.proto,
                    show_end(&c.a),
                    show_end(&c.b),
                    c.frames[0] + c.frames[1],
                    if whole {
                        " from this one, all only tshark's"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }

    // Conversation by conversation.
    for (k, mine) in &ours_of {
        let c = &convs[k];
        let pieces: Vec<&Ours> = mine.iter().map(|&i| &o.conns[i]).collect();
        // tshark split one of ours (its other parts are reported with that conversation).
        for &i in mine {
            if let Some(ts) = theirs_of.get(&i)
                && ts.len() > 1
                && ts.iter().next() == Some(k)
            {
                let firsts: Vec<u64> = ts.iter().map(|k| convs[k].first_frame).collect();
                diffs.push((
                    "merge",
                    o.conns[i].first_frame,
                    format!(
                        "ours: one connection {} <-> {}; tshark: {} conversations from frames {firsts:?}",
                        show_end(&o.conns[i].orig),
                        show_end(&o.conns[i].resp),
                        ts.len()
                    ),
                ));
            }
        }
        let exclusive = mine.iter().all(|i| theirs_of[i].len() == 1);
        if !exclusive {
            continue;
        }
        // Directions: ours [orig, resp] as tshark's [A->B, B->A].
        let along = |x: &Ours, v: [u64; 2]| if x.orig == c.a { v } else { [v[1], v[0]] };
        if pieces.len() > 1 {
            let mut all_idle = true;
            for w in pieces.windows(2) {
                let gap = w[1].first_ns - w[0].last_ns;
                let idle = gap >= idle_ns(c.proto, &w[0].end);
                if !idle {
                    all_idle = false;
                    diffs.push((
                        "split",
                        w[1].first_frame,
                        format!(
                            "ours: a new connection after {} s (previous: {:?}, end {}); tshark: \
                             one conversation from frame {}",
                            secs(gap, 6),
                            w[0].state,
                            w[0].end,
                            c.first_frame
                        ),
                    ));
                }
            }
            let mut frames = [0; 2];
            let mut bytes = [0; 2];
            for p in &pieces {
                let (f, b) = (along(p, p.pkts), along(p, p.bytes));
                for d in 0..2 {
                    frames[d] += f[d];
                    bytes[d] += b[d];
                }
            }
            if frames != c.frames || bytes != c.bytes {
                diffs.push((
                    "sum",
                    c.first_frame,
                    format!(
                        "ours, summed over {} connections: frames {frames:?} bytes {bytes:?}; \
                         tshark: frames {:?} bytes {:?}",
                        pieces.len(),
                        c.frames,
                        c.bytes
                    ),
                ));
            } else if all_idle {
                counts.idle_split += 1;
            }
            continue;
        }
        let x = pieces[0];
        let before = diffs.len();
        let mut check = |what: &'static str, ours: String, theirs: String| {
            if ours != theirs {
                diffs.push((
                    what,
                    x.first_frame,
                    format!(
                        "{} {} <-> {}: ours {ours}, tshark {theirs}",
                        c.proto,
                        show_end(&x.orig),
                        show_end(&x.resp)
                    ),
                ));
            }
        };
        check(
            "first_frame",
            x.first_frame.to_string(),
            c.first_frame.to_string(),
        );
        check(
            "frames",
            format!("{:?}", along(x, x.pkts)),
            format!("{:?}", c.frames),
        );
        check(
            "bytes",
            format!("{:?}", along(x, x.bytes)),
            format!("{:?}", c.bytes),
        );
        check("first", x.first_ns.to_string(), c.min_ns.to_string());
        check("last", x.last_ns.to_string(), c.max_ns.to_string());
        if let Some(r) = row_of.get(k) {
            check("start", secs(x.first_ns - t0, 9), r.start.clone());
            check(
                "duration",
                duration(x.first_ns, x.last_ns, t0),
                r.duration.clone(),
            );
            let b = along(x, x.bytes);
            check(
                "table-bytes",
                format!("{:?}", [tshark_size(b[0]), tshark_size(b[1])]),
                format!("{:?}", r.bytes),
            );
        }
        if diffs.len() == before && !table_diffs.contains(&c.first_frame) {
            counts.matched += 1;
        }
    }
    (counts, diffs)
}

fn group(file: &str) -> &str {
    file.split_once("__").map_or(file, |(g, _)| g)
}

#[test]
fn flows_tshark() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    if !common::have_tshark() {
        return;
    }
    let files = common::corpus("real");
    assert!(!files.is_empty(), "no captures in {}", shared.display());

    let mut failures: Vec<String> = Vec::new();
    let mut table: Vec<(String, Counts)> = Vec::new();
    let mut groups: BTreeMap<String, Counts> = BTreeMap::new();
    // (file, what) -> frames that differed (tolerated by an exception)
    let mut used: BTreeMap<(&str, &str), BTreeSet<u64>> = BTreeMap::new();

    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file.ends_with(".md") {
            continue;
        }
        let Some(t) = tshark(path) else {
            println!("{file}: not read by tshark, skipped");
            continue;
        };
        let o = match ours(path) {
            Ok(o) => o,
            Err(e) => {
                if !t.rows.is_empty() {
                    failures.push(format!(
                        "{file}: tshark shows {} conversations, our reader cannot open it: {e}",
                        t.rows.len()
                    ));
                }
                continue;
            }
        };
        let (mut counts, diffs) = compare(&o, &t);
        let mut excepted: BTreeSet<u64> = BTreeSet::new();
        for (what, frame, text) in diffs {
            if let Some(&(f, w, _, _)) = EXCEPTIONS
                .iter()
                .find(|(f, w, frames, _)| *f == file && *w == what && frames.contains(&frame))
            {
                used.entry((f, w)).or_default().insert(frame);
                // Frame 0: a table row without frames, counted with its stream.
                if frame != 0 {
                    excepted.insert(frame);
                }
                continue;
            }
            failures.push(format!("{file} frame {frame}: {what}: {text}"));
        }
        // Conversations (by first frame) with an excepted difference.
        counts.excepted = excepted.len();
        groups
            .entry(group(&file).to_string())
            .or_default()
            .add(counts);
        table.push((file, counts));
    }

    let header = |first: &str| {
        println!(
            "\n{first:<62} {:>6} {:>6} {:>7} {:>10} {:>8}",
            "ours", "tshark", "matched", "idle-split", "excepted"
        );
    };
    let line = |name: &str, c: &Counts| {
        println!(
            "{name:<62} {:>6} {:>6} {:>7} {:>10} {:>8}",
            c.ours, c.tshark, c.matched, c.idle_split, c.excepted
        );
    };
    header("file");
    for (file, c) in &table {
        if c.ours + c.tshark > 0 {
            line(file, c);
        }
    }
    header("group");
    let mut total = Counts::default();
    for (g, c) in &groups {
        line(g, c);
        total.add(*c);
    }
    line("all", &total);
    assert!(
        total.tshark > 0 && total.matched > 0,
        "tshark shows no conversations in the corpus: the oracle would pass vacuously"
    );

    for (file, what, frames, reason) in EXCEPTIONS {
        let seen = used.get(&(*file, *what)).cloned().unwrap_or_default();
        let stale: Vec<&u64> = frames.iter().filter(|f| !seen.contains(f)).collect();
        if stale.is_empty() {
            println!("exception {file} {what}: frames {frames:?} ({reason})");
        } else {
            failures.push(format!(
                "exception ({file}, {what}) no longer differs in frames {stale:?}: remove them \
                 ({reason})"
            ));
        }
    }

    if !failures.is_empty() {
        let shown = failures.len().min(300);
        panic!(
            "{} mismatches:\n{}{}",
            failures.len(),
            failures[..shown].join("\n"),
            if failures.len() > shown { "\n..." } else { "" }
        );
    }
}

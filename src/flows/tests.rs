#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::PacketBuilder;

use super::parquet::write_mac;
use super::*;
use crate::decode::{FrameMeta, decode};
use crate::linktype::LinkType;

const A: [u8; 4] = [192, 168, 1, 10];
const B: [u8; 4] = [198, 51, 100, 7];
const MA: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const MB: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

struct Night {
    frame: u64,
    table: FlowTable,
}

impl Night {
    fn new(limits: FlowLimits) -> Self {
        Self {
            frame: 0,
            table: FlowTable::new(limits),
        }
    }

    fn push(&mut self, at_s: f64, data: &[u8]) {
        self.frame += 1;
        #[allow(clippy::cast_possible_truncation)]
        let meta = FrameMeta {
            frame: self.frame,
            ts_ns: (at_s * 1e9) as i64,
            interface: 0,
            wire_len: u32::try_from(data.len()).unwrap(),
        };
        let rec = decode(meta, data, LinkType::ETHERNET);
        self.table.observe(&rec).unwrap();
    }

    /// A TCP segment from A:sp to B:dp (`up`) or back, with `flags` and `len` payload bytes.
    #[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)]
    fn tcp(&mut self, at_s: f64, up: bool, sp: u16, dp: u16, flags: u8, len: usize) {
        let (sm, dm, s, d, p, q) = if up {
            (MA, MB, A, B, sp, dp)
        } else {
            (MB, MA, B, A, dp, sp)
        };
        let mut b = PacketBuilder::ethernet2(sm, dm)
            .ipv4(s, d, 64)
            .tcp(p, q, 1000, 64240);
        if flags & SYN != 0 {
            b = b.syn();
        }
        if flags & ACK != 0 {
            b = b.ack(1);
        }
        if flags & FIN != 0 {
            b = b.fin();
        }
        if flags & RST != 0 {
            b = b.rst();
        }
        let payload = vec![0u8; len];
        let mut out = Vec::new();
        b.write(&mut out, &payload).unwrap();
        self.push(at_s, &out);
    }

    fn udp(&mut self, at_s: f64, up: bool, sp: u16, dp: u16, len: usize) {
        let (sm, dm, s, d, p, q) = if up {
            (MA, MB, A, B, sp, dp)
        } else {
            (MB, MA, B, A, dp, sp)
        };
        let b = PacketBuilder::ethernet2(sm, dm).ipv4(s, d, 64).udp(p, q);
        let mut out = Vec::new();
        b.write(&mut out, &vec![0u8; len]).unwrap();
        self.push(at_s, &out);
    }

    fn done(self) -> DataFrame {
        self.table.finish_frame().unwrap()
    }
}

fn col_u64(df: &DataFrame, c: &str) -> Vec<u64> {
    crate::dataframe::u64s(df, c).unwrap()
}

fn col_str(df: &DataFrame, c: &str) -> Vec<Option<String>> {
    crate::dataframe::opt_strs(df, c).unwrap()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn handshake_data_and_fin_make_one_closed_connection() {
    let mut n = Night::new(FlowLimits::default());
    n.tcp(0.0, true, 40000, 443, SYN, 0);
    n.tcp(0.01, false, 40000, 443, SYN | ACK, 0);
    n.tcp(0.02, true, 40000, 443, ACK, 0);
    n.tcp(0.03, true, 40000, 443, ACK, 100);
    n.tcp(0.04, false, 40000, 443, ACK, 1000);
    n.tcp(0.05, true, 40000, 443, FIN | ACK, 0);
    n.tcp(0.06, false, 40000, 443, FIN | ACK, 0);
    n.tcp(0.07, true, 40000, 443, ACK, 0);
    let df = n.done();
    assert_eq!(df.height(), 1);
    assert_eq!(col_str(&df, ORIG_ADDR), [s("192.168.1.10")]);
    assert_eq!(col_u64(&df, ORIG_PORT), [40000]);
    assert_eq!(col_str(&df, RESP_ADDR), [s("198.51.100.7")]);
    assert_eq!(col_u64(&df, ORIG_PKTS), [5]);
    assert_eq!(col_u64(&df, RESP_PKTS), [3]);
    assert_eq!(col_u64(&df, ORIG_PAYLOAD), [100]);
    assert_eq!(col_u64(&df, RESP_PAYLOAD), [1000]);
    // Frame bytes: 54 per empty segment (Ethernet 14 + IPv4 20 + TCP 20) plus payload.
    assert_eq!(col_u64(&df, ORIG_BYTES), [5 * 54 + 100]);
    assert_eq!(col_u64(&df, RESP_BYTES), [3 * 54 + 1000]);
    assert_eq!(col_str(&df, STATE), [s("closed")]);
    assert_eq!(col_str(&df, END), [s("fin")]);
    assert_eq!(col_str(&df, ORIG_MAC), [s("02:00:00:00:00:0a")]);
    assert_eq!(col_str(&df, RESP_MAC), [s("02:00:00:00:00:0b")]);
}

#[test]
fn a_new_syn_after_close_starts_the_next_connection() {
    let mut n = Night::new(FlowLimits::default());
    for round in 0..3 {
        let t = f64::from(round) * 5.0;
        n.tcp(t, true, 40000, 80, SYN, 0);
        n.tcp(t + 0.01, false, 40000, 80, SYN | ACK, 0);
        n.tcp(t + 0.02, true, 40000, 80, RST, 0);
    }
    let df = n.done();
    assert_eq!(df.height(), 3);
    assert_eq!(col_u64(&df, FIRST_FRAME), [1, 4, 7]);
    assert_eq!(col_str(&df, END), vec![s("rst"); 3]);
    assert_eq!(col_str(&df, STATE), vec![s("closed"); 3]);
}

#[test]
fn unanswered_and_refused_syns() {
    let mut n = Night::new(FlowLimits::default());
    n.tcp(0.0, true, 40001, 22, SYN, 0);
    n.tcp(1.0, true, 40001, 22, SYN, 0);
    n.tcp(2.0, true, 40002, 23, SYN, 0);
    n.tcp(2.001, false, 40002, 23, RST | ACK, 0);
    n.tcp(3.0, true, 40003, 25, ACK, 10);
    let df = n.done();
    let state = col_str(&df, STATE);
    assert_eq!(state, [s("attempted"), s("rejected"), s("partial")]);
    assert_eq!(col_u64(&df, ORIG_PKTS), [2, 1, 1]);
}

#[test]
fn a_syn_ack_seen_first_names_its_destination_the_originator() {
    let mut n = Night::new(FlowLimits::default());
    n.tcp(0.0, false, 40000, 443, SYN | ACK, 0);
    n.tcp(0.01, true, 40000, 443, ACK, 0);
    let df = n.done();
    assert_eq!(col_str(&df, ORIG_ADDR), [s("192.168.1.10")]);
    assert_eq!(col_u64(&df, ORIG_PKTS), [1]);
    assert_eq!(col_u64(&df, RESP_PKTS), [1]);
}

#[test]
fn idle_time_splits_a_udp_conversation() {
    let limits = FlowLimits {
        udp_idle_s: 60,
        ..FlowLimits::default()
    };
    let mut n = Night::new(limits);
    n.udp(0.0, true, 5000, 123, 48);
    n.udp(0.1, false, 5000, 123, 48);
    n.udp(59.0, true, 5000, 123, 48);
    // 61 s of silence: the next datagram is a new conversation.
    n.udp(120.0, true, 5000, 123, 48);
    let df = n.done();
    assert_eq!(df.height(), 2);
    assert_eq!(col_u64(&df, ORIG_PKTS), [2, 1]);
    assert_eq!(col_u64(&df, RESP_PKTS), [1, 0]);
    assert_eq!(col_str(&df, END), [s("idle"), s("capture-end")]);
    assert_eq!(col_str(&df, STATE), [None, None]);
}

#[test]
fn the_table_stays_bounded_and_loses_no_packet() {
    let limits = FlowLimits {
        max_active: 4,
        ..FlowLimits::default()
    };
    let mut n = Night::new(limits);
    for i in 0..100u16 {
        n.udp(f64::from(i) * 0.01, true, 10_000 + i, 53, 30);
        assert!(n.table.open() <= 4);
    }
    // The oldest conversation comes back after it was evicted: a new row.
    n.udp(2.0, true, 10_000, 53, 30);
    let evicted = n.table.evicted;
    let df = n.done();
    assert_eq!(evicted, 97);
    assert_eq!(df.height(), 101);
    assert_eq!(col_u64(&df, ORIG_PKTS).iter().sum::<u64>(), 101);
    let ends = col_str(&df, END);
    assert_eq!(
        ends.iter()
            .filter(|e| e.as_deref() == Some("evicted"))
            .count(),
        97
    );
}

#[test]
fn the_file_holds_what_the_table_ended() {
    let dir = std::env::temp_dir().join(format!("netdigest-flows-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("flows.parquet");
    let mut t = FlowTable::to_file(&path, FlowLimits::default()).unwrap();
    let mut n = Night::new(FlowLimits::default());
    n.udp(0.0, true, 5353, 5353, 100);
    n.tcp(1.0, true, 40000, 80, SYN, 0);
    std::mem::swap(&mut t, &mut n.table);
    // Replay the same frames into the file-backed table.
    let mut m = Night { frame: 0, table: t };
    m.udp(0.0, true, 5353, 5353, 100);
    m.tcp(1.0, true, 40000, 80, SYN, 0);
    assert!(!path.exists(), "the file appears only when finished");
    let done = m.table.finish().unwrap();
    assert_eq!(done.written, 2);
    let from_file = read(&path).unwrap();
    assert!(from_file.equals_missing(&n.done()));
    assert_eq!(read(&dir.join("absent.parquet")).unwrap().height(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_frame_stamped_before_the_first_moves_the_start() {
    // As in zeek's ipv6-http-atomic-frag.pcap: the SYN+ACK is captured before the SYN
    // but stamped 30 µs after it. The connection spans the earliest to the latest
    // timestamp (tshark's conversation start and duration), its first frame stays the
    // first captured.
    let mut n = Night::new(FlowLimits::default());
    n.tcp(10.000_030, false, 36951, 80, SYN | ACK, 0);
    n.tcp(10.0, true, 36951, 80, SYN, 0);
    n.tcp(10.5, true, 36951, 80, ACK, 0);
    let df = n.done();
    assert_eq!(df.height(), 1);
    assert_eq!(col_u64(&df, FIRST_FRAME), [1]);
    let ts = |c: &str| {
        df.column(c)
            .unwrap()
            .cast(&DataType::Int64)
            .unwrap()
            .i64()
            .unwrap()
            .get(0)
            .unwrap()
    };
    assert_eq!(ts(FIRST_TS), 10_000_000_000);
    assert_eq!(ts(LAST_TS), 10_500_000_000);
    assert_eq!(col_str(&df, ORIG_ADDR), [s("192.168.1.10")]);
}

#[test]
fn addresses_are_written_as_their_display() {
    let mut x: u32 = 0x9e37_79b9;
    let mut v4 = vec![0u32, u32::MAX, 0x0a00_6409, 0x6464_6464, 0x0909_0909];
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v4.push(x);
    }
    for v in v4 {
        let a = Ipv4Addr::from(v);
        let mut out = String::new();
        Endpoint::new(Addr::V4(a), 1).unwrap().write_addr(&mut out);
        assert_eq!(out, Addr::V4(a).to_string());
        let m = [
            (v >> 24) as u8,
            (v >> 16) as u8,
            (v >> 8) as u8,
            v as u8,
            0x0f,
            0xa0,
        ];
        let mut out = String::new();
        write_mac(&mut out, m);
        assert_eq!(out, Addr::Mac(m).to_string());
    }
    for s in [
        "::",
        "fe80::1",
        "2001:db8::ff00:42:8329",
        "::ffff:192.0.2.1",
    ] {
        let a: Ipv6Addr = s.parse().unwrap();
        let mut out = String::new();
        Endpoint::new(Addr::V6(a), 1).unwrap().write_addr(&mut out);
        assert_eq!(out, Addr::V6(a).to_string());
    }
    assert!(Endpoint::new(Addr::Mac([0; 6]), 1).is_none());
}

#[test]
fn a_connection_to_itself_counts_every_packet_one_way() {
    // Same address and port on both sides: one side, as before the key was packed.
    let mut n = Night::new(FlowLimits::default());
    let frame = || {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(MA, MA)
            .ipv4(A, A, 64)
            .udp(5000, 5000)
            .write(&mut out, &[0u8; 4])
            .unwrap();
        out
    };
    n.push(0.0, &frame());
    n.push(0.1, &frame());
    let df = n.done();
    assert_eq!(col_u64(&df, ORIG_PKTS), [2]);
    assert_eq!(col_u64(&df, RESP_PKTS), [0]);
}

//! The matching rules on nights these tests make: frames built with etherparse, written
//! as a pcap, converted to packets.parquet as `netdigest convert` does, and a
//! names.parquet written beside it with [`NameStore::add`]; then the whole analysis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::PathBuf;

use names::{Kind, Name};

use super::clean_name;
use crate::analyse::{AnalyseOptions, DeviceRemotes, Summary, analyse};
use crate::convert::{ConvertOptions, convert};
use crate::namestore::NameStore;

/// 2024-11-19T23:00:00Z.
const T0: i64 = 1_732_057_200_000_000_000;
const MIN: i64 = 60_000_000_000;

const ROUTER: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const A_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const B_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];
const C_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0c];
const A: &str = "192.168.1.10";
const B: &str = "192.168.1.11";
const C: &str = "192.168.1.12";
const CDN: &str = "198.51.100.7";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A night being made: frames and names.
struct Night {
    frames: Vec<(i64, Vec<u8>)>,
    names: NameStore,
}

impl Night {
    fn new() -> Self {
        Night {
            frames: Vec::new(),
            names: NameStore::new(),
        }
    }

    /// `n` TCP segments of `len` payload bytes from `src` (MAC `smac`) to `dst`, and as
    /// many back (from the router's MAC), starting at `ts`.
    fn talk(&mut self, ts: i64, smac: [u8; 6], src: &str, dst: &str, n: usize, len: usize) {
        for i in 0..n {
            let t = ts + i64::try_from(i).unwrap() * 1_000_000;
            self.frames
                .push((t, tcp(smac, ROUTER, src, dst, 50_000, 443, len)));
            self.frames
                .push((t + 500_000, tcp(ROUTER, smac, dst, src, 443, 50_000, len)));
        }
    }

    fn name(&mut self, ts: i64, kind: Kind, name: &str, addr: &str, mac: [u8; 6], client: &str) {
        self.names.add(
            Name {
                kind,
                name: name.to_string(),
                addr: Some(ip(addr)),
                client_mac: Some(mac),
                client_ip: Some(ip(client)),
                ttl: (kind == Kind::DnsAnswer).then_some(300),
            },
            ts,
            0,
        );
    }

    /// Writes the pcap, converts it, writes names.parquet and analyses the night.
    fn analyse(self, test: &str) -> Summary {
        self.analyse_with(test, &AnalyseOptions::default())
    }

    fn analyse_with(mut self, test: &str, opts: &AnalyseOptions) -> Summary {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("netdigest-remotes-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        self.frames.sort_by_key(|f| f.0);
        let pcap = dir.join("n.pcap");
        let mut w = pcapfmt::PcapWriter::new(
            std::io::BufWriter::new(std::fs::File::create(&pcap).unwrap()),
            pcapfmt::LinkType::ETHERNET,
            65535,
            true,
        )
        .unwrap();
        for (ts, f) in &self.frames {
            w.write_packet(*ts, f, u32::try_from(f.len()).unwrap())
                .unwrap();
        }
        w.into_inner().unwrap();
        let parquet = dir.join("packets.parquet");
        convert(
            &[pcap],
            &ConvertOptions {
                parquet: Some(parquet.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        self.names.write(&dir.join("names.parquet")).unwrap();
        let s = analyse(&parquet, opts).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        s
    }
}

fn tcp(
    smac: [u8; 6],
    dmac: [u8; 6],
    src: &str,
    dst: &str,
    sp: u16,
    dp: u16,
    len: usize,
) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(smac, dmac);
    let b = match (ip(src), ip(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let b = b.tcp(sp, dp, 1, 65_535).ack(1);
    let mut out = Vec::new();
    b.write(&mut out, &vec![0u8; len]).unwrap();
    out
}

/// The name shown for `b` in the conversation between `a` and `b`, as `a` saw it.
fn conv_name(s: &Summary, a: &str, b: &str) -> Option<String> {
    let c = s
        .conversations
        .iter()
        .find(|c| (c.a == a && c.b == b) || (c.a == b && c.b == a))
        .unwrap_or_else(|| panic!("no conversation {a} {b}: {:?}", s.conversations));
    if c.a == a {
        c.b_name.clone()
    } else {
        c.a_name.clone()
    }
}

fn device<'a>(s: &'a Summary, mac: &str) -> &'a DeviceRemotes {
    s.talked_to
        .iter()
        .find(|d| d.device == mac)
        .unwrap_or_else(|| panic!("no device {mac}: {:?}", s.talked_to))
}

/// (name or address, bytes) of what `mac` talked to.
fn talked(s: &Summary, mac: &str) -> Vec<(String, u64)> {
    device(s, mac)
        .remotes
        .iter()
        .map(|r| (r.name.clone().unwrap_or_else(|| r.addr.clone()), r.bytes))
        .collect()
}

#[test]
fn an_sni_the_client_sent_beats_the_dns_name_it_asked_for() {
    let mut n = Night::new();
    n.name(T0, Kind::DnsAnswer, "cdn-alias.example.net", CDN, A_MAC, A);
    n.name(T0 + MIN, Kind::TlsSni, "video.example.com", CDN, A_MAC, A);
    n.talk(T0 + MIN, A_MAC, A, CDN, 20, 400);
    let s = n.analyse("sni");
    assert_eq!(conv_name(&s, A, CDN).as_deref(), Some("video.example.com"));
    let t = s.talkers_by_bytes.iter().find(|t| t.addr == CDN).unwrap();
    assert_eq!(t.name.as_deref(), Some("video.example.com"));
    let me = device(&s, "02:00:00:00:00:0a");
    assert_eq!(me.ips, [A]);
    assert_eq!(me.remotes.len(), 1);
    assert_eq!(me.remotes[0].name.as_deref(), Some("video.example.com"));
    assert_eq!(me.remotes[0].addr, CDN);
    assert_eq!(me.remotes[0].bytes, me.bytes, "both directions");
    assert_eq!(me.remotes[0].packets, 40);
}

#[test]
fn two_clients_see_a_cdn_address_by_the_names_they_asked_for() {
    let mut n = Night::new();
    n.name(T0, Kind::DnsAnswer, "a.example.com", CDN, A_MAC, A);
    n.name(T0, Kind::DnsAnswer, "b.example.org", CDN, B_MAC, B);
    n.talk(T0 + MIN, A_MAC, A, CDN, 30, 500);
    n.talk(T0 + MIN, B_MAC, B, CDN, 10, 500);
    let s = n.analyse("per-client");
    assert_eq!(conv_name(&s, A, CDN).as_deref(), Some("a.example.com"));
    assert_eq!(conv_name(&s, B, CDN).as_deref(), Some("b.example.org"));
    assert_eq!(talked(&s, "02:00:00:00:00:0a")[0].0, "a.example.com");
    assert_eq!(talked(&s, "02:00:00:00:00:0b")[0].0, "b.example.org");
    // The talkers table has one name per address: the one with the most bytes.
    let t = s.talkers_by_bytes.iter().find(|t| t.addr == CDN).unwrap();
    assert_eq!(t.name.as_deref(), Some("a.example.com"));
    // The CDN is not a device; the router's MAC sends for it but is no device either.
    assert_eq!(s.talked_to.len(), 2, "{:?}", s.talked_to);
}

#[test]
fn another_clients_name_else_the_address() {
    let mut n = Night::new();
    n.name(T0, Kind::DnsAnswer, "shared.example.com", CDN, A_MAC, A);
    n.talk(T0 + MIN, A_MAC, A, CDN, 5, 100);
    n.talk(T0 + MIN, C_MAC, C, CDN, 20, 100);
    n.talk(T0 + MIN, C_MAC, C, "203.0.113.9", 10, 100);
    let s = n.analyse("global");
    assert_eq!(conv_name(&s, C, CDN).as_deref(), Some("shared.example.com"));
    assert_eq!(conv_name(&s, C, "203.0.113.9"), None);
    let got = talked(&s, "02:00:00:00:00:0c");
    assert_eq!(got[0].0, "shared.example.com");
    assert_eq!(got[1].0, "203.0.113.9", "unnamed: its address");
    assert_eq!(device(&s, "02:00:00:00:00:0c").remotes[1].name, None);
}

#[test]
fn a_cdn_address_is_named_by_the_latest_answer_before_each_slot() {
    // A asked for early.example at 23:00 and late.example at 23:30, both answered by
    // the same CDN address; its traffic in the 23:00 slot is early.example's and in the
    // 23:30 slot late.example's.
    let mut n = Night::new();
    n.name(T0, Kind::DnsAnswer, "early.example.com", CDN, A_MAC, A);
    n.name(
        T0 + 30 * MIN,
        Kind::DnsAnswer,
        "late.example.com",
        CDN,
        A_MAC,
        A,
    );
    n.talk(T0 + MIN, A_MAC, A, CDN, 10, 1000);
    n.talk(T0 + 31 * MIN, A_MAC, A, CDN, 30, 1000);
    let s = n.analyse("time");
    let got = talked(&s, "02:00:00:00:00:0a");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "late.example.com");
    assert_eq!(got[1].0, "early.example.com");
    assert_eq!(got[0].1, 3 * got[1].1, "{got:?}");
    // The pair overall: the name with the most bytes.
    assert_eq!(conv_name(&s, A, CDN).as_deref(), Some("late.example.com"));
}

#[test]
fn a_dual_stack_device_is_matched_by_its_mac() {
    // The AAAA answer came over IPv4; the connection went over IPv6 from the same MAC.
    let (a6, cdn6) = ("2001:db8:1::10", "2001:db8:ff::7");
    let mut n = Night::new();
    n.name(T0, Kind::DnsAnswer, "v6.example.com", cdn6, A_MAC, A);
    n.talk(T0 + MIN, A_MAC, a6, cdn6, 10, 100);
    n.talk(T0 + MIN, A_MAC, A, "203.0.113.9", 5, 100);
    let s = n.analyse("dual-stack");
    assert_eq!(conv_name(&s, a6, cdn6).as_deref(), Some("v6.example.com"));
    let d = device(&s, "02:00:00:00:00:0a");
    assert_eq!(
        d.ips,
        [a6, A],
        "one device, both addresses, most bytes first"
    );
    assert_eq!(d.remotes[0].name.as_deref(), Some("v6.example.com"));
}

#[test]
fn names_under_one_name_add_up_and_the_lists_are_cut() {
    let mut n = Night::new();
    for i in 1..=3 {
        let addr = format!("198.51.100.{i}");
        n.name(T0, Kind::DnsAnswer, "many.example.com", &addr, A_MAC, A);
        n.talk(T0 + MIN, A_MAC, A, &addr, 5 * i, 100);
    }
    for i in 0..4 {
        n.talk(T0 + MIN, A_MAC, A, &format!("203.0.113.{}", 10 + i), 1, 100);
    }
    n.talk(T0 + MIN, B_MAC, B, "203.0.113.50", 1, 100);
    let s = n.analyse("sum");
    let d = device(&s, "02:00:00:00:00:0a");
    let many = &d.remotes[0];
    assert_eq!(many.name.as_deref(), Some("many.example.com"));
    assert_eq!((many.addrs, many.packets), (3, 60));
    assert_eq!(many.addr, "198.51.100.3", "the address with the most bytes");
    assert_eq!(d.remotes.len(), 5);

    // Cut to 2 devices of 3, 2 rows each of 3.
    let mut n = Night::new();
    for i in 0..3u8 {
        let mac = [2, 0, 0, 0, 1, i];
        let src = format!("192.168.1.{}", 100 + i);
        for j in 0..3u8 {
            let k = 1 + usize::from(i) * 3 + usize::from(j);
            n.talk(T0, mac, &src, &format!("203.0.113.{j}"), k, 100);
        }
    }
    let s = n.analyse_with(
        "cut",
        &AnalyseOptions {
            max_rows: 2,
            ..AnalyseOptions::default()
        },
    );
    assert_eq!(s.talked_to.len(), 2);
    assert_eq!(s.omitted.talked_to, 1);
    let d = &s.talked_to[0];
    assert_eq!(d.device, "02:00:00:00:01:02", "most bytes first");
    assert_eq!(d.remotes.len(), 2);
    assert_eq!(
        (d.remotes[0].addr.as_str(), d.remotes[0].packets),
        ("203.0.113.2", 18)
    );
    assert_eq!(d.more, 1);
    assert_eq!(
        d.more_bytes,
        d.bytes - d.remotes.iter().map(|r| r.bytes).sum::<u64>()
    );
    assert!(d.more_bytes > 0);
}

#[test]
fn shown_names_are_cleaned() {
    assert_eq!(
        clean_name("ok.example.com").as_deref(),
        Some("ok.example.com")
    );
    assert_eq!(
        clean_name("a\u{0}b\u{202e}c\n.example\u{7f}.com").as_deref(),
        Some("abc.example.com")
    );
    assert_eq!(clean_name(" \u{1b} "), None);
    let long = "x".repeat(10_000);
    let c = clean_name(&long).unwrap();
    assert_eq!(c.len(), 63, "one label: at most 63 bytes");
    let many = vec!["y".repeat(60); 10].join(".");
    let c = clean_name(&many).unwrap();
    assert!(c.len() <= 253 && c.starts_with("yyy"), "{}", c.len());
    let wide = "é".repeat(200);
    assert!(clean_name(&wide).unwrap().len() <= 63);
}

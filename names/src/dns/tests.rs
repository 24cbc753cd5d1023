use super::*;
use crate::Transport;

/// Builds DNS messages for tests, names uncompressed unless written by hand.
pub(crate) struct Builder {
    pub(crate) bytes: Vec<u8>,
}

pub(crate) fn encode_name(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        v.push(u8::try_from(label.len()).unwrap_or(63));
        v.extend_from_slice(label.as_bytes());
    }
    v.push(0);
    v
}

impl Builder {
    pub(crate) fn new(flags: u16, counts: [u16; 4]) -> Self {
        let mut bytes = vec![0x12, 0x34];
        bytes.extend_from_slice(&flags.to_be_bytes());
        for c in counts {
            bytes.extend_from_slice(&c.to_be_bytes());
        }
        Self { bytes }
    }

    pub(crate) fn question(mut self, name: &str, qtype: u16) -> Self {
        self.bytes.extend(encode_name(name));
        self.bytes.extend_from_slice(&qtype.to_be_bytes());
        self.bytes.extend_from_slice(&1u16.to_be_bytes());
        self
    }

    pub(crate) fn rr_raw(mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
        self.bytes.extend_from_slice(owner);
        self.bytes.extend_from_slice(&rtype.to_be_bytes());
        self.bytes.extend_from_slice(&1u16.to_be_bytes());
        self.bytes.extend_from_slice(&ttl.to_be_bytes());
        let len = u16::try_from(rdata.len()).unwrap_or(u16::MAX);
        self.bytes.extend_from_slice(&len.to_be_bytes());
        self.bytes.extend_from_slice(rdata);
        self
    }

    pub(crate) fn rr(self, owner: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
        self.rr_raw(&encode_name(owner), rtype, ttl, rdata)
    }
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

pub(crate) fn packet(payload: &[u8], sport: u16, dport: u16, tcp: bool) -> Packet<'_> {
    Packet {
        ts_ns: 0,
        src_mac: Some(MAC_A),
        dst_mac: Some(MAC_B),
        src: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)),
        dst: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)),
        src_port: sport,
        dst_port: dport,
        transport: if tcp {
            Transport::Tcp {
                seq: 1,
                flags: 0x18,
            }
        } else {
            Transport::Udp
        },
        payload,
    }
}

fn run(payload: &[u8], sport: u16, dport: u16) -> Vec<Name> {
    let mut out = Vec::new();
    datagram(&packet(payload, sport, dport, false), &mut out);
    out
}

fn names(out: &[Name]) -> Vec<(Kind, String, Option<IpAddr>)> {
    out.iter()
        .map(|n| (n.kind, n.name.clone(), n.addr))
        .collect()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

/// www.example.com CNAME edge.example.net CNAME e1.cdn.test A 93.184.216.34, with
/// compression pointers, plus an unrelated A (glue) in the additional section.
fn cname_response() -> Vec<u8> {
    let mut b = Builder::new(0x8180, [1, 3, 0, 1]).question("www.Example.com", RrType::A as u16);
    // The question name is at offset 12.
    b = b.rr_raw(
        &[0xc0, 12],
        RrType::Cname as u16,
        300,
        &encode_name("edge.example.net"),
    );
    let edge_at = u8::try_from(b.bytes.len() - encode_name("edge.example.net").len()).unwrap_or(0);
    b = b.rr_raw(
        &[0xc0, edge_at],
        RrType::Cname as u16,
        60,
        &encode_name("e1.cdn.test"),
    );
    let e1_at = u8::try_from(b.bytes.len() - encode_name("e1.cdn.test").len()).unwrap_or(0);
    b = b.rr_raw(&[0xc0, e1_at], RrType::A as u16, 20, &[93, 184, 216, 34]);
    b = b.rr("ns1.cdn.test", RrType::A as u16, 3600, &[198, 51, 100, 1]);
    b.bytes
}

#[test]
fn dns_answer_follows_cname_chain() {
    let out = run(&cname_response(), 53, 40000);
    assert_eq!(
        names(&out),
        vec![
            (
                Kind::DnsAnswer,
                "www.Example.com".into(),
                v4(93, 184, 216, 34)
            ),
            (Kind::DnsAnswer, "ns1.cdn.test".into(), v4(198, 51, 100, 1)),
        ]
    );
    let first = out.first().cloned();
    assert_eq!(first.as_ref().and_then(|n| n.ttl), Some(20));
    // The client is the response's destination.
    assert_eq!(first.as_ref().and_then(|n| n.client_mac), Some(MAC_B));
    assert_eq!(first.and_then(|n| n.client_ip), v4(192, 168, 1, 20));
}

#[test]
fn dns_query_and_unrelated_ports_give_nothing() {
    let q = Builder::new(0x0100, [1, 0, 0, 0]).question("example.com", RrType::A as u16);
    assert!(run(&q.bytes, 40000, 53).is_empty());
    // A response-shaped query to 53: QR=0 means nothing is read.
    let mut resp = cname_response();
    if let Some(b) = resp.get_mut(2) {
        *b &= 0x7f;
    }
    assert!(run(&resp, 40000, 53).is_empty());
}

#[test]
fn dns_aaaa_and_trailing_garbage() {
    let mut b = Builder::new(0x8180, [1, 1, 0, 0])
        .question("v6.test", RrType::Aaaa as u16)
        .rr(
            "v6.test",
            RrType::Aaaa as u16,
            5,
            &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        )
        .bytes;
    b.extend_from_slice(b"\xde\xad\xbe\xef garbage");
    let out = run(&b, 53, 1234);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out.first().and_then(|n| n.addr),
        "2001:db8::1".parse::<IpAddr>().ok()
    );
}

#[test]
fn dns_truncated_additional_keeps_answers() {
    let full = cname_response();
    // Cut inside the last (additional) record: the answer is still read.
    let cut = full.get(..full.len() - 2).unwrap_or_default();
    assert_eq!(
        names(&run(cut, 53, 40000)),
        vec![(
            Kind::DnsAnswer,
            "www.Example.com".into(),
            v4(93, 184, 216, 34)
        )]
    );
}

#[test]
fn every_prefix_is_safe() {
    let messages = [cname_response(), mdns_announcement(), llmnr_response()];
    for msg in &messages {
        for port in [53, 5353, 5355] {
            for n in 0..=msg.len() {
                let prefix = msg.get(..n).unwrap_or_default();
                let _ = run(prefix, port, port);
                let mut framed = u16::try_from(n).unwrap_or(0).to_be_bytes().to_vec();
                framed.extend_from_slice(prefix);
                let mut out = Vec::new();
                tcp_segment(&packet(&framed, port, 40000, true), &mut out);
            }
        }
    }
}

#[test]
fn mutated_and_random_payloads_are_safe() {
    // Every byte of valid messages set to values that matter to the walker.
    for msg in [cname_response(), mdns_announcement()] {
        for i in 0..msg.len() {
            for v in [0x00, 0x01, 0x3f, 0x40, 0xc0, 0xff] {
                let mut m = msg.clone();
                if let Some(b) = m.get_mut(i) {
                    *b = v;
                }
                for port in [53, 5353, 5355] {
                    let _ = run(&m, port, port);
                }
            }
        }
    }
    // Random payloads through the whole extractor, on every UDP port this crate
    // reads and on TCP 53 and 80 (a fixed-seed xorshift, no dependency).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ex = crate::Extractor::new();
    let mut out = Vec::new();
    for _ in 0..3000 {
        let len = usize::try_from(next() % 600).unwrap_or(0);
        let bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        for (port, tcp) in [
            (53, false),
            (5353, false),
            (5355, false),
            (137, false),
            (67, false),
            (547, false),
            (1900, false),
            (53, true),
            (80, true),
        ] {
            ex.packet(&packet(&bytes, port, 40000, tcp), &mut out);
        }
    }
    assert!(out.len() < 3000 * 9 * crate::sanitize::MAX_PER_PACKET);
}

#[test]
fn pointer_loops_and_forward_pointers_end() {
    // Question name is a pointer to itself; then one to the next byte and back.
    let mut m = Builder::new(0x8400, [1, 1, 0, 0]).bytes;
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert!(run(&m, 5353, 5353).is_empty());
    let mut m = Builder::new(0x8400, [0, 1, 0, 0]).bytes;
    m.extend_from_slice(&[0xc0, 14, 0xc0, 12]);
    m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
    assert!(run(&m, 5353, 5353).is_empty());
    // Reserved label types (0x40, 0x80) end the name.
    let mut m = Builder::new(0x8400, [0, 1, 0, 0]).bytes;
    m.extend_from_slice(&[0x41, b'x', 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
    assert!(run(&m, 5353, 5353).is_empty());
}

#[test]
fn cname_loop_is_bounded() {
    let b = Builder::new(0x8180, [1, 3, 0, 0])
        .question("a.test", RrType::A as u16)
        .rr("a.test", RrType::Cname as u16, 1, &encode_name("b.test"))
        .rr("b.test", RrType::Cname as u16, 1, &encode_name("a.test"))
        .rr("b.test", RrType::A as u16, 1, &[10, 0, 0, 1]);
    assert_eq!(
        names(&run(&b.bytes, 53, 1)),
        vec![(Kind::DnsAnswer, "a.test".into(), v4(10, 0, 0, 1))]
    );
}

#[test]
fn tcp_messages_in_one_segment() {
    let one = cname_response();
    let mut seg = Vec::new();
    for _ in 0..2 {
        seg.extend_from_slice(&u16::try_from(one.len()).unwrap_or(0).to_be_bytes());
        seg.extend_from_slice(&one);
    }
    // A third message cut by the segment's end is not read.
    seg.extend_from_slice(&[0x01, 0x00, 0x12]);
    let mut out = Vec::new();
    tcp_segment(&packet(&seg, 53, 40000, true), &mut out);
    // The two messages are the same: duplicates within a packet are dropped.
    assert_eq!(out.len(), 2);
}

#[test]
fn hostile_dns_answer_name() {
    let evil = "\u{202E}<script>\"><img onerror=x>";
    let mut owner = vec![u8::try_from(evil.len()).unwrap_or(0)];
    owner.extend_from_slice(evil.as_bytes());
    owner.extend_from_slice(&[3, b'c', 0, b'm', 3, b'\xff', b'x', b'y', 0]);
    let mut b =
        Builder::new(0x8180, [0, 2, 0, 0]).rr_raw(&owner, RrType::A as u16, 1, &[1, 2, 3, 4]);
    // Maximum-length name: four 63-byte labels.
    let long = format!("{0}.{0}.{0}.{0}", "x".repeat(63));
    b = b.rr(&long, RrType::A as u16, 1, &[5, 6, 7, 8]);
    let out = run(&b.bytes, 53, 1);
    assert_eq!(
        out.first().map(|n| n.name.as_str()),
        Some("<script>\"><img onerror=x>.cm.\u{FFFD}xy")
    );
    assert_eq!(
        out.get(1).map(|n| n.name.len()),
        Some(crate::sanitize::MAX_NAME)
    );
}

fn mdns_announcement() -> Vec<u8> {
    let instance = "Kitchen TV._googlecast._tcp.local";
    let mut txt = Vec::new();
    for s in ["id=abc", "md=Chromecast Ultra", "FN=Kitchen TV", "rs="] {
        txt.push(u8::try_from(s.len()).unwrap_or(0));
        txt.extend_from_slice(s.as_bytes());
    }
    let mut srv = vec![0, 0, 0, 0, 0x1f, 0x49];
    srv.extend(encode_name("kitchen-tv.local"));
    Builder::new(0x8400, [0, 4, 0, 2])
        .rr(
            "_googlecast._tcp.local",
            RrType::Ptr as u16,
            120,
            &encode_name(instance),
        )
        .rr(instance, RrType::Srv as u16, 120, &srv)
        .rr(instance, RrType::Txt as u16, 4500, &txt)
        .rr(
            "kitchen-tv.local",
            RrType::A as u16,
            120,
            &[192, 168, 1, 10],
        )
        .rr(
            "_services._dns-sd._udp.local",
            RrType::Ptr as u16,
            4500,
            &encode_name("_googlecast._tcp.local"),
        )
        .rr(
            "10.1.168.192.in-addr.arpa",
            RrType::Ptr as u16,
            120,
            &encode_name("kitchen-tv.local"),
        )
        .bytes
}

#[test]
fn mdns_announcement_names() {
    let out = run(&mdns_announcement(), 5353, 5353);
    assert_eq!(
        names(&out),
        vec![
            (Kind::MdnsService, "Kitchen TV".into(), None),
            (Kind::MdnsModel, "Chromecast Ultra".into(), None),
            (Kind::MdnsFriendly, "Kitchen TV".into(), None),
            (Kind::Mdns, "kitchen-tv.local".into(), v4(192, 168, 1, 10)),
        ]
    );
    assert!(out.iter().all(|n| n.client_mac == Some(MAC_A)));
    assert_eq!(out.last().and_then(|n| n.ttl), Some(120));
}

#[test]
fn mdns_query_known_answers_are_not_the_askers() {
    let q = Builder::new(0x0000, [1, 1, 1, 0])
        .question("_googlecast._tcp.local", RrType::Ptr as u16)
        .rr(
            "_googlecast._tcp.local",
            RrType::Ptr as u16,
            120,
            &encode_name("Other TV._googlecast._tcp.local"),
        )
        .rr("my-phone.local", RrType::A as u16, 120, &[192, 168, 1, 10]);
    assert_eq!(
        names(&run(&q.bytes, 5353, 5353)),
        vec![(Kind::Mdns, "my-phone.local".into(), v4(192, 168, 1, 10))]
    );
}

#[test]
fn mdns_cache_flush_and_hostile_names() {
    let evil = "evil\u{202E}\0<script>.local";
    let mut b = Builder::new(0x8400, [0, 1, 0, 0]).rr(evil, RrType::A as u16, 1, &[1, 1, 1, 1]);
    // Set the cache-flush bit on the class.
    let class_at = b.bytes.len() - 4 - 2 - 4 - 2;
    if let Some(c) = b.bytes.get_mut(class_at) {
        *c = 0x80;
    }
    let out = run(&b.bytes, 5353, 5353);
    assert_eq!(
        out.first().map(|n| n.name.as_str()),
        Some("evil<script>.local")
    );
    // A TXT fn= of invalid UTF-8 and a huge value.
    let mut txt = vec![6];
    txt.extend_from_slice(b"fn=\xff\xfe\x00");
    txt.push(255);
    txt.extend_from_slice(b"md=");
    txt.extend_from_slice(&[b'M'; 252]);
    let b = Builder::new(0x8400, [0, 1, 0, 0]).rr("x._ipp._tcp.local", RrType::Txt as u16, 1, &txt);
    let out = run(&b.bytes, 5353, 5353);
    assert_eq!(
        names(&out),
        vec![
            (Kind::MdnsService, "x".into(), None),
            (Kind::MdnsFriendly, "\u{FFFD}\u{FFFD}".into(), None),
            (Kind::MdnsModel, "M".repeat(63), None),
        ]
    );
}

#[test]
fn mdns_device_info_model() {
    let txt = b"\x0emodel=iMac11,3\x0cosxvers=10.13";
    let b = Builder::new(0x8400, [0, 1, 0, 0]).rr(
        "Luca\u{2019}s iMac._device-info._tcp.local",
        RrType::Txt as u16,
        4500,
        txt,
    );
    assert_eq!(
        names(&run(&b.bytes, 5353, 5353)),
        vec![
            (Kind::MdnsService, "Luca\u{2019}s iMac".into(), None),
            (Kind::MdnsModel, "iMac11,3".into(), None),
        ]
    );
}

#[test]
fn many_records_are_capped() {
    let mut b = Builder::new(0x8400, [0, 300, 0, 0]);
    for i in 0..300u16 {
        b = b.rr(&format!("h{i}.local"), RrType::A as u16, 1, &[10, 0, 0, 1]);
    }
    assert_eq!(
        run(&b.bytes, 5353, 5353).len(),
        crate::sanitize::MAX_PER_PACKET
    );
    // Header counts far beyond the data: the walk ends with the data.
    let b = Builder::new(0x8400, [0xffff, 0xffff, 0xffff, 0xffff]);
    assert!(run(&b.bytes, 5353, 5353).is_empty());
}

fn llmnr_response() -> Vec<u8> {
    Builder::new(0x8000, [1, 1, 0, 0])
        .question("DESKTOP-1", RrType::A as u16)
        .rr("DESKTOP-1", RrType::A as u16, 30, &[192, 168, 1, 10])
        .bytes
}

#[test]
fn llmnr_responses_only() {
    assert_eq!(
        names(&run(&llmnr_response(), 5355, 50000)),
        vec![(Kind::Llmnr, "DESKTOP-1".into(), v4(192, 168, 1, 10))]
    );
    let q = Builder::new(0x0000, [1, 0, 0, 0]).question("DESKTOP-1", RrType::A as u16);
    assert!(run(&q.bytes, 50000, 5355).is_empty());
}

#[test]
fn uncompressed_partial_names() {
    assert_eq!(
        read_uncompressed(b"\x04host\x03lan\x00").bytes(),
        b"host.lan"
    );
    assert_eq!(read_uncompressed(b"\x04host").bytes(), b"host");
    assert_eq!(read_uncompressed(b"\x04host\x09lan").bytes(), b"host");
    assert_eq!(read_uncompressed(b"\xc0\x0c").bytes(), b"");
}

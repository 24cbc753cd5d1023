//! DNS answers (port 53, UDP and TCP), mDNS (5353) and LLMNR (5355).
//!
//! A small tolerant walker over the DNS wire format, written here rather than taken from
//! a crate (see Cargo.toml): it reads record after record and stops at the first one
//! that is cut or malformed, keeping what came before, as tshark does with a truncated
//! capture or trailing garbage. Names are decoded into a fixed buffer on the stack, so
//! a packet that yields no name allocates nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::sanitize::{Client, Emitter};
use crate::{Kind, Name, Packet};

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_PTR: u16 = 12;
const TYPE_TXT: u16 = 16;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;

/// Longest name on the wire (RFC 1035), as text without the trailing dot.
const NAME_BUF: usize = 255;
/// Compression pointers followed in one name: only backward pointers are meaningful,
/// but a bound is simpler to check than a direction and stops every loop.
const MAX_JUMPS: usize = 32;
/// CNAME hops followed from the question name.
const MAX_CHAIN: usize = 8;

/// One DNS, mDNS or LLMNR datagram.
pub(crate) fn datagram(p: &Packet<'_>, out: &mut Vec<Name>) {
    let mut e = Emitter::new(out);
    message(p, p.payload, &mut e);
}

/// One TCP segment to or from port 53 (2-byte length prefix, messages within the segment).
/// Only messages wholly inside this segment are read: no reassembly across segments (a
/// segment that continues an earlier message would be read as garbage otherwise).
pub(crate) fn tcp_segment(p: &Packet<'_>, out: &mut Vec<Name>) {
    let mut e = Emitter::new(out);
    let mut rest = p.payload;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let Some((msg, after)) = tail.split_at_checked(len) else {
            return;
        };
        message(p, msg, &mut e);
        if e.full() {
            return;
        }
        rest = after;
    }
}

fn message(p: &Packet<'_>, msg: &[u8], e: &mut Emitter<'_>) {
    let port = |n: u16| p.src_port == n || p.dst_port == n;
    let Some(m) = Message::parse(msg) else { return };
    if port(53) {
        if m.response() {
            dns_response(p, &m, e);
        }
    } else if port(5353) {
        mdns(p, &m, e);
    } else if port(5355) && m.response() {
        for rr in m.records() {
            if rr.section == Section::Answer
                && let Some(addr) = rr.address()
            {
                let client = Client::source(p);
                e.push(
                    Kind::Llmnr,
                    rr.owner.bytes(),
                    Some(addr),
                    client,
                    Some(rr.ttl),
                );
            }
        }
    }
}

/// A DNS response: every A/AAAA, named by the question when its owner is the question
/// or on the question's CNAME chain, else by its own owner (glue, or answers a resolver
/// added for other names: tshark's `dns.a` lists those too). The client is the
/// response's destination, the device that asked.
fn dns_response(p: &Packet<'_>, m: &Message<'_>, e: &mut Emitter<'_>) {
    let client = Client::destination(p);
    let chain = m.question.map(|q| cname_chain(m, q));
    for rr in m.records() {
        let Some(addr) = rr.address() else { continue };
        let on_chain = chain
            .as_ref()
            .is_some_and(|c| c.names().iter().any(|n| n.eq_ignore_case(&rr.owner)));
        let name = match m.question {
            Some(q) if on_chain => q,
            _ => rr.owner,
        };
        e.push(
            Kind::DnsAnswer,
            name.bytes(),
            Some(addr),
            client,
            Some(rr.ttl),
        );
        if e.full() {
            return;
        }
    }
}

/// The question name and the CNAME targets that follow from it in the answer section.
struct Chain {
    names: [WireName; MAX_CHAIN + 1],
    len: usize,
}

impl Chain {
    fn names(&self) -> &[WireName] {
        self.names.get(..self.len).unwrap_or_default()
    }
}

fn cname_chain(m: &Message<'_>, question: WireName) -> Chain {
    let mut chain = Chain {
        names: [WireName::EMPTY; MAX_CHAIN + 1],
        len: 1,
    };
    chain.names[0] = question;
    let mut current = question;
    while chain.len <= MAX_CHAIN {
        let next = m.records().find_map(|rr| {
            (rr.section == Section::Answer
                && rr.rtype == TYPE_CNAME
                && rr.owner.eq_ignore_case(&current))
            .then(|| read_name(m.msg, rr.rdata_at).map(|(n, _)| n))
            .flatten()
        });
        let Some(next) = next else { break };
        // A loop (a -> b -> a) ends here rather than filling the chain.
        if chain.names().iter().any(|n| n.eq_ignore_case(&next)) {
            break;
        }
        if let Some(slot) = chain.names.get_mut(chain.len) {
            *slot = next;
        }
        chain.len += 1;
        current = next;
    }
    chain
}

/// mDNS: what a device announces about itself. Responses (and announcements): every
/// section. TXT `fn=` is the friendly name, `md=` (Google Cast and others) and
/// `model=` (Apple's `_device-info._tcp`) the model. Queries: only the authority section, where a probing device proposes its
/// own records; a query's answer section holds known answers, records the asker has
/// cached about *other* devices, so they are not attributed to it.
fn mdns(p: &Packet<'_>, m: &Message<'_>, e: &mut Emitter<'_>) {
    let client = Client::source(p);
    let response = m.response();
    for rr in m.records() {
        if e.full() {
            return;
        }
        if !response && rr.section != Section::Authority {
            continue;
        }
        let ttl = Some(rr.ttl);
        match rr.rtype {
            TYPE_A | TYPE_AAAA => {
                if let Some(addr) = rr.address() {
                    e.push(Kind::Mdns, rr.owner.bytes(), Some(addr), client, ttl);
                }
            }
            TYPE_PTR => {
                if let Some((target, _)) = read_name(m.msg, rr.rdata_at)
                    && let Some(instance) = target.instance()
                {
                    e.push(Kind::MdnsService, instance, None, client, ttl);
                }
            }
            TYPE_SRV => {
                if let Some(instance) = rr.owner.instance() {
                    e.push(Kind::MdnsService, instance, None, client, ttl);
                }
            }
            TYPE_TXT => {
                if let Some(instance) = rr.owner.instance() {
                    e.push(Kind::MdnsService, instance, None, client, ttl);
                }
                txt(rr.rdata, |key, value| {
                    let kind = if key.eq_ignore_ascii_case(b"fn") {
                        Kind::MdnsFriendly
                    } else if key.eq_ignore_ascii_case(b"md") || key.eq_ignore_ascii_case(b"model")
                    {
                        Kind::MdnsModel
                    } else {
                        return;
                    };
                    e.push(kind, value, None, client, ttl);
                });
            }
            _ => {}
        }
    }
}

/// Calls `f(key, value)` for each `key=value` string of a TXT record's data.
fn txt(mut data: &[u8], mut f: impl FnMut(&[u8], &[u8])) {
    while let [len, rest @ ..] = data {
        let Some((string, after)) = rest.split_at_checked(usize::from(*len)) else {
            return;
        };
        if let Some(eq) = string.iter().position(|&b| b == b'=') {
            let (key, value) = string.split_at(eq);
            f(key, value.get(1..).unwrap_or_default());
        }
        data = after;
    }
}

/// A DNS message's header and question, with its records to walk.
struct Message<'a> {
    msg: &'a [u8],
    flags: u16,
    counts: [u16; 3],
    /// The first question's name.
    question: Option<WireName>,
    /// Where the answer section starts.
    records_at: usize,
}

impl<'a> Message<'a> {
    /// None when the header or the questions are cut or malformed.
    fn parse(msg: &'a [u8]) -> Option<Self> {
        let header = msg.get(..12)?;
        let word = |i: usize| {
            header
                .get(i..i + 2)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
        };
        let mut pos = 12;
        let mut question = None;
        for _ in 0..word(4) {
            let (name, after) = read_name(msg, pos)?;
            // QTYPE and QCLASS.
            msg.get(after..after + 4)?;
            question.get_or_insert(name);
            pos = after + 4;
        }
        Some(Self {
            msg,
            flags: word(2),
            counts: [word(6), word(8), word(10)],
            question,
            records_at: pos,
        })
    }

    fn response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    fn records(&self) -> Records<'a> {
        Records {
            msg: self.msg,
            pos: self.records_at,
            section: 0,
            left: self.counts,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Answer,
    Authority,
    Additional,
}

/// One resource record.
struct Record<'a> {
    section: Section,
    owner: WireName,
    rtype: u16,
    ttl: u32,
    /// The record's data, and where it starts in the message (names in it may point back).
    rdata: &'a [u8],
    rdata_at: usize,
}

impl Record<'_> {
    /// The address of an A or AAAA record of the Internet class (mDNS's cache-flush bit
    /// aside) with data of the right length.
    fn address(&self) -> Option<IpAddr> {
        match self.rtype {
            TYPE_A => <[u8; 4]>::try_from(self.rdata)
                .ok()
                .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            TYPE_AAAA => <[u8; 16]>::try_from(self.rdata)
                .ok()
                .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            _ => None,
        }
    }
}

/// The records of all three sections, in order; ends at the first cut or malformed one.
struct Records<'a> {
    msg: &'a [u8],
    pos: usize,
    section: usize,
    left: [u16; 3],
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        loop {
            let left = self.left.get_mut(self.section)?;
            if *left == 0 {
                self.section += 1;
                continue;
            }
            *left -= 1;
            break;
        }
        let section = match self.section {
            0 => Section::Answer,
            1 => Section::Authority,
            _ => Section::Additional,
        };
        let parsed = (|| {
            let (owner, after) = read_name(self.msg, self.pos)?;
            let fixed = self.msg.get(after..after + 10)?;
            let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
            let class = u16::from_be_bytes([fixed[2], fixed[3]]) & 0x7fff;
            let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
            let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
            let rdata_at = after + 10;
            let rdata = self.msg.get(rdata_at..rdata_at + rdlen)?;
            Some((owner, rtype, class, ttl, rdata, rdata_at))
        })();
        let Some((owner, rtype, class, ttl, rdata, rdata_at)) = parsed else {
            // Cut or malformed: nothing after it can be found.
            self.left = [0; 3];
            return None;
        };
        self.pos = rdata_at + rdata.len();
        Some(Record {
            section,
            owner,
            // Only the Internet class carries addresses; other classes read as no type.
            rtype: if class == 1 { rtype } else { 0 },
            ttl,
            rdata,
            rdata_at,
        })
    }
}

/// A domain name as text: labels joined by dots, no trailing dot, in a fixed buffer.
/// Label bytes are kept as they are (case, and any byte at all: [`crate::sanitize`]
/// cleans the name before it leaves the crate).
#[derive(Clone, Copy)]
pub(crate) struct WireName {
    buf: [u8; NAME_BUF],
    len: usize,
    /// Length of the first label (an mDNS service instance may contain dots).
    first: usize,
    labels: usize,
}

impl WireName {
    const EMPTY: WireName = WireName {
        buf: [0; NAME_BUF],
        len: 0,
        first: 0,
        labels: 0,
    };

    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Appends a label; what does not fit in [`NAME_BUF`] is dropped.
    fn push_label(&mut self, label: &[u8]) {
        let dot = usize::from(self.labels > 0);
        let room = NAME_BUF.saturating_sub(self.len + dot);
        if room == 0 {
            return;
        }
        let take = label.len().min(room);
        if dot == 1
            && let Some(b) = self.buf.get_mut(self.len)
        {
            *b = b'.';
        }
        let at = self.len + dot;
        if let (Some(dst), Some(src)) = (self.buf.get_mut(at..at + take), label.get(..take)) {
            dst.copy_from_slice(src);
        }
        if self.labels == 0 {
            self.first = take;
        }
        self.len = at + take;
        self.labels += 1;
    }

    fn eq_ignore_case(&self, other: &WireName) -> bool {
        self.bytes().eq_ignore_ascii_case(other.bytes())
    }

    /// The instance label of a DNS-SD service instance name
    /// (`Kitchen TV._googlecast._tcp.local` -> `Kitchen TV`).
    fn instance(&self) -> Option<&[u8]> {
        let bytes = self.bytes();
        let instance = bytes.get(..self.first)?;
        let rest = bytes.get(self.first + 1..)?;
        let mut labels = rest.split(|&b| b == b'.');
        let service = labels.next()?;
        let proto = labels.next()?;
        labels.next()?; // the domain
        (service.first() == Some(&b'_')
            && (proto.eq_ignore_ascii_case(b"_tcp") || proto.eq_ignore_ascii_case(b"_udp")))
        .then_some(instance)
    }
}

/// Reads the (possibly compressed) name at `pos` of `msg`; returns it with the position
/// just after it. None when it is cut, uses a reserved label type or loops.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(WireName, usize)> {
    let mut name = WireName::EMPTY;
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some((name, end.unwrap_or(pos + 1))),
            0x00 => {
                let label = msg.get(pos + 1..pos + 1 + usize::from(len))?;
                name.push_label(label);
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let low = *msg.get(pos + 1)?;
                end.get_or_insert(pos + 2);
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return None;
                }
                pos = (usize::from(len & 0x3f) << 8) | usize::from(low);
            }
            _ => return None,
        }
    }
}

/// An uncompressed name that fills `data` (DHCP's client FQDN options): labels until a
/// zero label or the end of the data (a partial name has no zero label). Stops at
/// anything that is not a plain label.
pub(crate) fn read_uncompressed(mut data: &[u8]) -> WireName {
    let mut name = WireName::EMPTY;
    while let [len, rest @ ..] = data {
        if *len == 0 || *len & 0xc0 != 0 {
            break;
        }
        let Some((label, after)) = rest.split_at_checked(usize::from(*len)) else {
            break;
        };
        name.push_label(label);
        data = after;
    }
    name
}

#[cfg(test)]
pub(crate) mod tests {
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
        let mut b = Builder::new(0x8180, [1, 3, 0, 1]).question("www.Example.com", TYPE_A);
        // The question name is at offset 12.
        b = b.rr_raw(
            &[0xc0, 12],
            TYPE_CNAME,
            300,
            &encode_name("edge.example.net"),
        );
        let edge_at =
            u8::try_from(b.bytes.len() - encode_name("edge.example.net").len()).unwrap_or(0);
        b = b.rr_raw(
            &[0xc0, edge_at],
            TYPE_CNAME,
            60,
            &encode_name("e1.cdn.test"),
        );
        let e1_at = u8::try_from(b.bytes.len() - encode_name("e1.cdn.test").len()).unwrap_or(0);
        b = b.rr_raw(&[0xc0, e1_at], TYPE_A, 20, &[93, 184, 216, 34]);
        b = b.rr("ns1.cdn.test", TYPE_A, 3600, &[198, 51, 100, 1]);
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
        let q = Builder::new(0x0100, [1, 0, 0, 0]).question("example.com", TYPE_A);
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
            .question("v6.test", TYPE_AAAA)
            .rr(
                "v6.test",
                TYPE_AAAA,
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
            .question("a.test", TYPE_A)
            .rr("a.test", TYPE_CNAME, 1, &encode_name("b.test"))
            .rr("b.test", TYPE_CNAME, 1, &encode_name("a.test"))
            .rr("b.test", TYPE_A, 1, &[10, 0, 0, 1]);
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
        let mut b = Builder::new(0x8180, [0, 2, 0, 0]).rr_raw(&owner, TYPE_A, 1, &[1, 2, 3, 4]);
        // Maximum-length name: four 63-byte labels.
        let long = format!("{0}.{0}.{0}.{0}", "x".repeat(63));
        b = b.rr(&long, TYPE_A, 1, &[5, 6, 7, 8]);
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
                TYPE_PTR,
                120,
                &encode_name(instance),
            )
            .rr(instance, TYPE_SRV, 120, &srv)
            .rr(instance, TYPE_TXT, 4500, &txt)
            .rr("kitchen-tv.local", TYPE_A, 120, &[192, 168, 1, 10])
            .rr(
                "_services._dns-sd._udp.local",
                TYPE_PTR,
                4500,
                &encode_name("_googlecast._tcp.local"),
            )
            .rr(
                "10.1.168.192.in-addr.arpa",
                TYPE_PTR,
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
            .question("_googlecast._tcp.local", TYPE_PTR)
            .rr(
                "_googlecast._tcp.local",
                TYPE_PTR,
                120,
                &encode_name("Other TV._googlecast._tcp.local"),
            )
            .rr("my-phone.local", TYPE_A, 120, &[192, 168, 1, 10]);
        assert_eq!(
            names(&run(&q.bytes, 5353, 5353)),
            vec![(Kind::Mdns, "my-phone.local".into(), v4(192, 168, 1, 10))]
        );
    }

    #[test]
    fn mdns_cache_flush_and_hostile_names() {
        let evil = "evil\u{202E}\0<script>.local";
        let mut b = Builder::new(0x8400, [0, 1, 0, 0]).rr(evil, TYPE_A, 1, &[1, 1, 1, 1]);
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
        let b = Builder::new(0x8400, [0, 1, 0, 0]).rr("x._ipp._tcp.local", TYPE_TXT, 1, &txt);
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
            TYPE_TXT,
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
            b = b.rr(&format!("h{i}.local"), TYPE_A, 1, &[10, 0, 0, 1]);
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
            .question("DESKTOP-1", TYPE_A)
            .rr("DESKTOP-1", TYPE_A, 30, &[192, 168, 1, 10])
            .bytes
    }

    #[test]
    fn llmnr_responses_only() {
        assert_eq!(
            names(&run(&llmnr_response(), 5355, 50000)),
            vec![(Kind::Llmnr, "DESKTOP-1".into(), v4(192, 168, 1, 10))]
        );
        let q = Builder::new(0x0000, [1, 0, 0, 0]).question("DESKTOP-1", TYPE_A);
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
}

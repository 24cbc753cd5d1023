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

/// The record types read here, by their type codes (RFC 1035, 2782, 3596); records of
/// any other type are walked over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
enum RrType {
    A = 1,
    Cname = 5,
    Ptr = 12,
    Txt = 16,
    Aaaa = 28,
    Srv = 33,
}

impl RrType {
    const READ: [RrType; 6] = [
        RrType::A,
        RrType::Cname,
        RrType::Ptr,
        RrType::Txt,
        RrType::Aaaa,
        RrType::Srv,
    ];

    /// The type of a record with type `code` in class `class`: only the Internet class
    /// carries addresses and names we read (mDNS's cache-flush bit already cleared).
    fn of(code: u16, class: u16) -> Option<RrType> {
        if class != 1 {
            return None;
        }
        Self::READ.into_iter().find(|t| *t as u16 == code)
    }
}

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
                && rr.rtype == Some(RrType::Cname)
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
            Some(RrType::A | RrType::Aaaa) => {
                if let Some(addr) = rr.address() {
                    e.push(Kind::Mdns, rr.owner.bytes(), Some(addr), client, ttl);
                }
            }
            Some(RrType::Ptr) => {
                if let Some((target, _)) = read_name(m.msg, rr.rdata_at)
                    && let Some(instance) = target.instance()
                {
                    e.push(Kind::MdnsService, instance, None, client, ttl);
                }
            }
            Some(RrType::Srv) => {
                if let Some(instance) = rr.owner.instance() {
                    e.push(Kind::MdnsService, instance, None, client, ttl);
                }
            }
            Some(RrType::Txt) => {
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
    /// None for a type not read here, or a class other than the Internet's.
    rtype: Option<RrType>,
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
            Some(RrType::A) => <[u8; 4]>::try_from(self.rdata)
                .ok()
                .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            Some(RrType::Aaaa) => <[u8; 16]>::try_from(self.rdata)
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
            rtype: RrType::of(rtype, class),
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
pub(crate) mod tests;

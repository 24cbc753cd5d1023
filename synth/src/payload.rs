//! Application payload builders: random bytes from the pool, TLS records, SSH packets,
//! DNS and mDNS messages, NTP timestamps, DHCP messages, RFC 3339 times.
//!
//! Invariants: pure functions of their arguments (and the random draws they are handed);
//! every length field matches the bytes written.

use crate::cast::Ip;
use crate::rng::Rng;

pub(crate) fn extend_random(buf: &mut Vec<u8>, pool: &[u8], rng: &mut Rng, mut n: usize) {
    while n > 0 {
        let take = n.min(pool.len() / 2);
        let off = rng.below((pool.len() - take) as u64) as usize;
        buf.extend_from_slice(&pool[off..off + take]);
        n -= take;
    }
}

/// TLS 1.2/1.3 application data records totalling exactly `total` bytes (at least 6).
pub(crate) fn tls_content(buf: &mut Vec<u8>, pool: &[u8], rng: &mut Rng, total: usize) {
    buf.clear();
    let mut left = total.max(6);
    while left > 0 {
        let mut body = (left - 5).min(16_384 + 17);
        // Never leave a tail too short for a record of its own.
        if left - 5 - body < 6 && left - 5 - body > 0 {
            body = left - 5;
        }
        buf.extend_from_slice(&[0x17, 0x03, 0x03]);
        buf.extend_from_slice(&(body as u16).to_be_bytes());
        extend_random(buf, pool, rng, body);
        left -= 5 + body;
    }
}

/// SSH traffic after key exchange: encrypted length, payload and tag (chacha20-poly1305).
pub(crate) fn ssh_content(buf: &mut Vec<u8>, pool: &[u8], rng: &mut Rng, total: usize) {
    buf.clear();
    extend_random(buf, pool, rng, total.max(36).next_multiple_of(8) + 4 + 16);
}

pub(crate) fn ssh_string(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
    buf.extend_from_slice(s);
}

/// An unencrypted SSH binary packet (block size 8, zero padding).
pub(crate) fn ssh_packet(buf: &mut Vec<u8>, payload: &[u8]) {
    let mut pad = 8 - (5 + payload.len()) % 8;
    if pad < 4 {
        pad += 8;
    }
    buf.extend_from_slice(&((1 + payload.len() + pad) as u32).to_be_bytes());
    buf.push(pad as u8);
    buf.extend_from_slice(payload);
    buf.resize(buf.len() + pad, 0);
}

fn dns_name(buf: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        buf.push(label.len() as u8);
        buf.extend_from_slice(label.as_bytes());
    }
    buf.push(0);
}

/// A DNS query (or its response with at most one answer).
pub(crate) fn dns_message(
    buf: &mut Vec<u8>,
    id: u16,
    response: bool,
    name: &str,
    qtype: u16,
    answer: Option<(Ip, u32)>,
) {
    buf.extend_from_slice(&id.to_be_bytes());
    buf.extend_from_slice(&(if response { 0x8180u16 } else { 0x0100 }).to_be_bytes());
    buf.extend_from_slice(&1u16.to_be_bytes());
    buf.extend_from_slice(&u16::from(answer.is_some()).to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]);
    dns_name(buf, name);
    buf.extend_from_slice(&qtype.to_be_bytes());
    buf.extend_from_slice(&1u16.to_be_bytes());
    if let Some((ip, ttl)) = answer {
        buf.extend_from_slice(&[0xc0, 0x0c]);
        let (ty, rdata): (u16, &[u8]) = match &ip {
            Ip::V4(a) => (1, a),
            Ip::V6(a) => (28, a),
        };
        buf.extend_from_slice(&ty.to_be_bytes());
        buf.extend_from_slice(&1u16.to_be_bytes());
        buf.extend_from_slice(&ttl.to_be_bytes());
        buf.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        buf.extend_from_slice(rdata);
    }
}

pub(crate) fn mdns_query(buf: &mut Vec<u8>, service: &str) {
    buf.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    dns_name(buf, service);
    buf.extend_from_slice(&12u16.to_be_bytes()); // PTR
    buf.extend_from_slice(&1u16.to_be_bytes());
}

pub(crate) fn mdns_answer(buf: &mut Vec<u8>, service: &str, instance: &str) {
    buf.extend_from_slice(&[0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    dns_name(buf, service);
    buf.extend_from_slice(&12u16.to_be_bytes());
    buf.extend_from_slice(&1u16.to_be_bytes());
    buf.extend_from_slice(&120u32.to_be_bytes());
    let rdlen = 1 + instance.len() + 2;
    buf.extend_from_slice(&(rdlen as u16).to_be_bytes());
    buf.push(instance.len() as u8);
    buf.extend_from_slice(instance.as_bytes());
    buf.extend_from_slice(&[0xc0, 0x0c]);
}

/// `2024-11-15T21:00:00Z` for seconds since the epoch.
pub(crate) fn rfc3339(secs: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

pub(crate) fn ntp_ts(out: &mut [u8], unix_us: u64) {
    let secs = (unix_us / 1_000_000 + 2_208_988_800) as u32;
    let frac = (((unix_us % 1_000_000) << 32) / 1_000_000) as u32;
    out[..4].copy_from_slice(&secs.to_be_bytes());
    out[4..8].copy_from_slice(&frac.to_be_bytes());
}

/// What a DHCP client says about itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DhcpId<'a> {
    pub(crate) mac: [u8; 6],
    /// The address it asks for (option 50) and gets (yiaddr).
    pub(crate) addr: [u8; 4],
    pub(crate) host: &'a [u8],
    /// Option 60, or empty.
    pub(crate) vendor: &'a [u8],
    pub(crate) client_id: &'a [u8],
}

/// A DHCP option; a value over 255 bytes is split into several options of the same code,
/// which the reader concatenates (RFC 3396).
fn dhcp_option(buf: &mut Vec<u8>, code: u8, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    for chunk in value.chunks(255) {
        buf.push(code);
        buf.push(chunk.len() as u8);
        buf.extend_from_slice(chunk);
    }
}

/// The DHCP lease time the router gives.
pub(crate) const LEASE_S: u32 = 86_400;

/// A DHCP message: 1 discover, 2 offer, 3 request, 5 ack. Client messages carry the
/// client id (61), requested address (50), host name (12), vendor class (60).
pub(crate) fn dhcp(buf: &mut Vec<u8>, msg: u8, xid: u32, id: &DhcpId<'_>, server: [u8; 4]) {
    let reply = msg == 2 || msg == 5;
    buf.extend_from_slice(&[if reply { 2 } else { 1 }, 1, 6, 0]);
    buf.extend_from_slice(&xid.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0x80, 0]); // secs, broadcast flag
    buf.extend_from_slice(&[0; 4]); // ciaddr
    buf.extend_from_slice(if reply { &id.addr } else { &[0; 4] }); // yiaddr
    buf.extend_from_slice(&[0; 8]); // siaddr, giaddr
    buf.extend_from_slice(&id.mac);
    buf.extend_from_slice(&[0; 10 + 64 + 128]);
    buf.extend_from_slice(&[0x63, 0x82, 0x53, 0x63]);
    buf.extend_from_slice(&[53, 1, msg]);
    if reply {
        buf.extend_from_slice(&[54, 4]);
        buf.extend_from_slice(&server);
        buf.extend_from_slice(&[51, 4]);
        buf.extend_from_slice(&LEASE_S.to_be_bytes());
        buf.extend_from_slice(&[1, 4, 255, 255, 255, 0, 3, 4]);
        buf.extend_from_slice(&server);
        buf.extend_from_slice(&[6, 4]);
        buf.extend_from_slice(&server);
    } else {
        dhcp_option(buf, 61, id.client_id);
        dhcp_option(buf, 50, &id.addr);
        if msg == 3 {
            dhcp_option(buf, 54, &server);
        }
        dhcp_option(buf, 12, id.host);
        dhcp_option(buf, 60, id.vendor);
        buf.extend_from_slice(&[55, 6, 1, 3, 6, 15, 28, 51]);
    }
    buf.push(255);
    if buf.len() < 300 {
        buf.resize(300, 0);
    }
}

/// A name in DNS wire form, uncompressed: labels split at `.` (each cut to 63 bytes),
/// any bytes inside a label written as they are.
pub(crate) fn dns_name_bytes(buf: &mut Vec<u8>, name: &[u8]) {
    for label in name.split(|&b| b == b'.').filter(|l| !l.is_empty()) {
        let label = &label[..label.len().min(63)];
        buf.push(label.len() as u8);
        buf.extend_from_slice(label);
    }
    buf.push(0);
}

/// The data of one resource record.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rdata<'a> {
    /// A or AAAA.
    Addr(Ip),
    /// CNAME (5) or PTR (12) to this name.
    Name(u16, &'a [u8]),
    /// SRV: port and target.
    Srv(u16, &'a [u8]),
    /// TXT strings (each cut to 255 bytes).
    Txt(&'a [&'a [u8]]),
    /// NetBIOS NB: flags and address.
    Nb(u16, [u8; 4]),
}

/// One resource record (owner name, class with the mDNS cache-flush bit if wanted, TTL).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rr<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) class: u16,
    pub(crate) ttl: u32,
    pub(crate) data: Rdata<'a>,
}

/// A DNS, mDNS or LLMNR message: header (id, flags), questions (name, type), answers.
pub(crate) fn dns_packet<'a>(
    buf: &mut Vec<u8>,
    id: u16,
    flags: u16,
    questions: &[(&'a [u8], u16)],
    answers: &[Rr<'a>],
) {
    let start = buf.len();
    let mut seen = Names {
        start,
        at: Vec::new(),
    };
    buf.extend_from_slice(&id.to_be_bytes());
    buf.extend_from_slice(&flags.to_be_bytes());
    buf.extend_from_slice(&(questions.len() as u16).to_be_bytes());
    buf.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]);
    for (name, ty) in questions {
        seen.name(buf, name);
        buf.extend_from_slice(&ty.to_be_bytes());
        buf.extend_from_slice(&1u16.to_be_bytes());
    }
    for rr in answers {
        rr_bytes(buf, rr, &mut seen);
    }
}

/// Whole names already written in a message and where, for compression pointers.
struct Names<'a> {
    start: usize,
    at: Vec<(&'a [u8], usize)>,
}

impl<'a> Names<'a> {
    /// Writes `name`, or a pointer to where the same name was written before.
    fn name(&mut self, buf: &mut Vec<u8>, name: &'a [u8]) {
        if let Some(&(_, off)) = self.at.iter().find(|(n, _)| *n == name) {
            buf.extend_from_slice(&(0xc000 | off as u16).to_be_bytes());
            return;
        }
        let off = buf.len() - self.start;
        if off < 0x3fff {
            self.at.push((name, off));
        }
        dns_name_bytes(buf, name);
    }
}

fn rr_bytes<'a>(buf: &mut Vec<u8>, rr: &Rr<'a>, seen: &mut Names<'a>) {
    seen.name(buf, rr.name);
    let ty: u16 = match rr.data {
        Rdata::Addr(Ip::V4(_)) => 1,
        Rdata::Addr(Ip::V6(_)) => 28,
        Rdata::Name(t, _) => t,
        Rdata::Srv(..) => 33,
        Rdata::Txt(_) => 16,
        Rdata::Nb(..) => 32,
    };
    buf.extend_from_slice(&ty.to_be_bytes());
    buf.extend_from_slice(&rr.class.to_be_bytes());
    buf.extend_from_slice(&rr.ttl.to_be_bytes());
    let at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    match rr.data {
        Rdata::Addr(Ip::V4(a)) => buf.extend_from_slice(&a),
        Rdata::Addr(Ip::V6(a)) => buf.extend_from_slice(&a),
        Rdata::Name(_, n) => seen.name(buf, n),
        Rdata::Srv(port, target) => {
            buf.extend_from_slice(&[0, 0, 0, 0]);
            buf.extend_from_slice(&port.to_be_bytes());
            seen.name(buf, target);
        }
        Rdata::Txt(strings) => {
            for t in strings {
                let t = &t[..t.len().min(255)];
                buf.push(t.len() as u8);
                buf.extend_from_slice(t);
            }
        }
        Rdata::Nb(flags, a) => {
            buf.extend_from_slice(&flags.to_be_bytes());
            buf.extend_from_slice(&a);
        }
    }
    let len = (buf.len() - at - 2).min(0xffff) as u16;
    buf[at..at + 2].copy_from_slice(&len.to_be_bytes());
}

/// A NetBIOS name in first-level encoding (RFC 1001 section 14.1): padded with spaces to
/// 15 bytes, upper case, `suffix` as the 16th, each byte as two letters `A` + nibble;
/// returned as one 32-byte label (`dns_name_bytes` writes it with its length).
pub(crate) fn netbios_name(name: &str, suffix: u8) -> Vec<u8> {
    let mut raw = [b' '; 16];
    for (r, b) in raw.iter_mut().zip(name.bytes().take(15)) {
        *r = b.to_ascii_uppercase();
    }
    raw[15] = suffix;
    raw.iter()
        .flat_map(|b| [b'A' + (b >> 4), b'A' + (b & 0x0f)])
        .collect()
}

//! Application payload builders: random bytes from the pool, TLS records, SSH packets,
//! DNS and mDNS messages, NTP timestamps, DHCP messages, RFC 3339 times.
//!
//! Invariants: pure functions of their arguments (and the random draws they are handed);
//! every length field matches the bytes written.

use crate::cast::{Dev, Ip};
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

/// A DHCP message: 1 discover, 2 offer, 3 request, 5 ack.
pub(crate) fn dhcp(buf: &mut Vec<u8>, msg: u8, xid: u32, dev: &Dev, server: [u8; 4]) {
    let reply = msg == 2 || msg == 5;
    buf.extend_from_slice(&[if reply { 2 } else { 1 }, 1, 6, 0]);
    buf.extend_from_slice(&xid.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0x80, 0]); // secs, broadcast flag
    buf.extend_from_slice(&[0; 4]); // ciaddr
    buf.extend_from_slice(if reply { &dev.v4 } else { &[0; 4] }); // yiaddr
    buf.extend_from_slice(&[0; 8]); // siaddr, giaddr
    buf.extend_from_slice(&dev.mac);
    buf.extend_from_slice(&[0; 10 + 64 + 128]);
    buf.extend_from_slice(&[0x63, 0x82, 0x53, 0x63]);
    buf.extend_from_slice(&[53, 1, msg]);
    if reply {
        buf.extend_from_slice(&[54, 4]);
        buf.extend_from_slice(&server);
        buf.extend_from_slice(&[51, 4]);
        buf.extend_from_slice(&86_400u32.to_be_bytes());
        buf.extend_from_slice(&[1, 4, 255, 255, 255, 0, 3, 4]);
        buf.extend_from_slice(&server);
        buf.extend_from_slice(&[6, 4]);
        buf.extend_from_slice(&server);
    } else {
        buf.extend_from_slice(&[61, 7, 1]);
        buf.extend_from_slice(&dev.mac);
        if msg == 3 {
            buf.extend_from_slice(&[50, 4]);
            buf.extend_from_slice(&dev.v4);
            buf.extend_from_slice(&[54, 4]);
            buf.extend_from_slice(&server);
        }
        buf.extend_from_slice(&[12, dev.name.len() as u8]);
        buf.extend_from_slice(dev.name.as_bytes());
        buf.extend_from_slice(&[55, 6, 1, 3, 6, 15, 28, 51]);
    }
    buf.push(255);
    if buf.len() < 300 {
        buf.resize(300, 0);
    }
}

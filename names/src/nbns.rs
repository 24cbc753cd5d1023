//! NetBIOS name service (UDP 137, RFC 1002).
//!
//! Written by hand: the format is DNS-like with one fixed-size "first-level encoded"
//! label, and no maintained crate reads it. Device names come from name registrations
//! and refreshes (requests carrying an NB record in the additional section) and from
//! positive responses (NB records in the answer section). Only unique names (G bit 0)
//! with the workstation (0x00) or server (0x20) suffix are kept: group names are
//! workgroups and domains, 0x1B/0x1D unique names are domain/browser roles, and 0x03
//! (messenger) is registered for logged-on user names as well as the computer's.

use std::net::{IpAddr, Ipv4Addr};

use crate::sanitize::{Client, Emitter};
use crate::{Kind, Name, Packet};

const TYPE_NB: u16 = 0x20;
/// Compression pointers followed to reach a name's encoded label.
const MAX_JUMPS: usize = 8;

pub(crate) fn datagram(p: &Packet<'_>, out: &mut Vec<Name>) {
    let msg = p.payload;
    let Some(header) = msg.get(..12) else { return };
    let word = |i: usize| {
        header
            .get(i..i + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    };
    let flags = word(2);
    let response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    let rcode = flags & 0xf;
    // Which section holds the device's own NB records.
    let wanted = match (response, opcode) {
        (true, _) if rcode == 0 => 0,
        // Registration, refresh (8 and 9), multi-homed registration.
        (false, 5 | 8 | 9 | 15) => 2,
        _ => return,
    };

    let mut pos = 12;
    for _ in 0..word(4) {
        let Some(after) = skip_name(msg, pos) else {
            return;
        };
        pos = after + 4;
    }
    let counts = [word(6), word(8), word(10)];
    let client = Client::source(p);
    let mut e = Emitter::new(out);
    for (section, count) in counts.into_iter().enumerate() {
        for _ in 0..count {
            if e.full() {
                return;
            }
            let Some(after) = skip_name(msg, pos) else {
                return;
            };
            let Some(fixed) = msg.get(after..after + 10) else {
                return;
            };
            let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
            let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
            let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
            let Some(rdata) = msg.get(after + 10..after + 10 + rdlen) else {
                return;
            };
            let owner = pos;
            pos = after + 10 + rdlen;
            if section != wanted || rtype != TYPE_NB {
                continue;
            }
            let Some((name, suffix)) = netbios_name(msg, owner) else {
                continue;
            };
            if !matches!(suffix, 0x00 | 0x20) {
                continue;
            }
            // NB_FLAGS (G bit first) and NB_ADDRESS, once per address of the name.
            for entry in rdata.chunks_exact(6) {
                if let [f, _, a, b, c, d] = entry
                    && f & 0x80 == 0
                {
                    let addr = IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d));
                    e.push(Kind::Nbns, name.as_slice(), Some(addr), client, Some(ttl));
                }
            }
        }
    }
}

/// The position just after the (possibly compressed) name at `pos`.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(pos + 1),
            0x00 => {
                msg.get(pos + 1..pos + 1 + usize::from(len))?;
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                msg.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// A NetBIOS name of at most 15 bytes, trailing spaces trimmed, on the stack.
#[derive(Clone, Copy)]
struct NbName {
    bytes: [u8; 15],
    len: usize,
}

impl NbName {
    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// The name at `pos` (following pointers) decoded from its first-level encoding (32
/// letters `A`-`P`, a nibble each), with its suffix (the 16th byte). None unless the
/// first label is exactly such an encoding.
fn netbios_name(msg: &[u8], mut pos: usize) -> Option<(NbName, u8)> {
    for _ in 0..=MAX_JUMPS {
        let len = *msg.get(pos)?;
        if len & 0xc0 == 0xc0 {
            let low = *msg.get(pos + 1)?;
            pos = (usize::from(len & 0x3f) << 8) | usize::from(low);
            continue;
        }
        if len != 32 {
            return None;
        }
        let encoded = msg.get(pos + 1..pos + 33)?;
        let mut raw = [0u8; 16];
        for (byte, pair) in raw.iter_mut().zip(encoded.chunks_exact(2)) {
            let [hi, lo] = pair else { return None };
            let nibble = |c: u8| (b'A'..=b'P').contains(&c).then(|| c - b'A');
            *byte = (nibble(*hi)? << 4) | nibble(*lo)?;
        }
        let [name @ .., suffix] = raw;
        let mut nb = NbName {
            bytes: [0; 15],
            len: 15,
        };
        nb.bytes.copy_from_slice(&name);
        while nb.len > 0 && matches!(nb.bytes.get(nb.len - 1), Some(b' ' | 0)) {
            nb.len -= 1;
        }
        return Some((nb, suffix));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tests::packet;

    fn encode(name: &[u8], suffix: u8) -> Vec<u8> {
        let mut raw = [b' '; 16];
        for (r, n) in raw.iter_mut().zip(name) {
            *r = *n;
        }
        raw[15] = suffix;
        let mut v = vec![32];
        for b in raw {
            v.push(b'A' + (b >> 4));
            v.push(b'A' + (b & 0xf));
        }
        v.push(0);
        v
    }

    /// A registration request: question NAME<suffix>, additional NB record pointing at it.
    fn registration(name: &[u8], suffix: u8, nb_flags: u8) -> Vec<u8> {
        let mut m = vec![0x80, 0x01, 0x29, 0x10, 0, 1, 0, 0, 0, 0, 0, 1];
        m.extend(encode(name, suffix));
        m.extend_from_slice(&[0, 0x20, 0, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 0x20, 0, 1, 0, 4, 0x93, 0xe0, 0, 6]);
        m.extend_from_slice(&[nb_flags, 0, 192, 168, 239, 129]);
        m
    }

    fn run(m: &[u8]) -> Vec<Name> {
        let mut out = Vec::new();
        datagram(&packet(m, 137, 137, false), &mut out);
        out
    }

    #[test]
    fn registration_unique_names_only() {
        let out = run(&registration(b"MDJR98", 0x00, 0x00));
        assert_eq!(out.len(), 1);
        let n = out.first().cloned();
        assert_eq!(n.as_ref().map(|n| n.name.as_str()), Some("MDJR98"));
        assert_eq!(n.as_ref().map(|n| n.kind), Some(Kind::Nbns));
        assert_eq!(
            n.as_ref().and_then(|n| n.addr),
            Some(IpAddr::V4(Ipv4Addr::new(192, 168, 239, 129)))
        );
        assert_eq!(n.and_then(|n| n.ttl), Some(300_000));
        assert_eq!(run(&registration(b"MDJR98", 0x20, 0x60)).len(), 1);
        // Group name, messenger suffix, browser election: nothing.
        assert!(run(&registration(b"WORKGROUP", 0x00, 0x80)).is_empty());
        assert!(run(&registration(b"MDJR98", 0x03, 0x00)).is_empty());
        assert!(run(&registration(b"WORKGROUP", 0x1e, 0x80)).is_empty());
    }

    #[test]
    fn query_gives_nothing_positive_response_does() {
        let mut q = vec![0x80, 0x02, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend(encode(b"FILESERVER", 0x20));
        q.extend_from_slice(&[0, 0x20, 0, 1]);
        assert!(run(&q).is_empty());

        let mut r = vec![0x80, 0x02, 0x85, 0x00, 0, 0, 0, 1, 0, 0, 0, 0];
        r.extend(encode(b"FILESERVER", 0x20));
        r.extend_from_slice(&[0, 0x20, 0, 1, 0, 0, 0, 60, 0, 12]);
        r.extend_from_slice(&[0, 0, 10, 0, 0, 5, 0x20, 0, 10, 0, 0, 6]);
        let out = run(&r);
        let got: Vec<_> = out.iter().map(|n| (n.name.as_str(), n.addr)).collect();
        assert_eq!(
            got,
            vec![
                ("FILESERVER", Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)))),
                ("FILESERVER", Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 6)))),
            ]
        );
        // A negative response (rcode 3) gives nothing.
        if let Some(b) = r.get_mut(3) {
            *b = 0x03;
        }
        assert!(run(&r).is_empty());
    }

    #[test]
    fn every_prefix_and_hostile_names() {
        let m = registration(b"MDJR98", 0, 0);
        for n in 0..=m.len() {
            let _ = run(m.get(..n).unwrap_or_default());
        }
        let out = run(&registration(b"<img\xe2\x80\xae\x00\x1b>", 0, 0));
        assert_eq!(out.first().map(|n| n.name.as_str()), Some("<img>"));
        let out = run(&registration(b"\xff\xfe", 0, 0));
        assert_eq!(
            out.first().map(|n| n.name.as_str()),
            Some("\u{FFFD}\u{FFFD}")
        );
        // Letters outside A-P, a label of the wrong length, a pointer loop.
        let mut bad = registration(b"X", 0, 0);
        if let Some(b) = bad.get_mut(13) {
            *b = b'Z';
        }
        assert!(run(&bad).is_empty());
        let mut looped = vec![0x80, 0x01, 0x29, 0x10, 0, 0, 0, 0, 0, 0, 0, 1];
        looped.extend_from_slice(&[0xc0, 12, 0, 0x20, 0, 1, 0, 0, 0, 1, 0, 6, 0, 0, 1, 2, 3, 4]);
        assert!(run(&looped).is_empty());
    }
}

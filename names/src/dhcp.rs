//! DHCPv4 (UDP 67/68) and DHCPv6 (UDP 546/547).
//!
//! Both are type-length-value walks over a few options, written here rather than with
//! `dhcproto` (see Cargo.toml): options are read one at a time and the walk stops at the
//! first cut one, so a truncated capture or one malformed option still gives the host
//! name that came before it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dns::read_uncompressed;
use crate::sanitize::{Client, Emitter};
use crate::{Kind, Name, Packet};

/// BOOTP's fixed part, before the magic cookie.
const BOOTP_FIXED: usize = 236;
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// Client identifiers longer than this are cut (as hex they would pass the name limit).
const MAX_CLIENT_ID: usize = 126;
/// Relay-forward/relay-reply messages unwrapped to reach the client's message.
const MAX_RELAY_DEPTH: usize = 8;

pub(crate) fn v4(p: &Packet<'_>, out: &mut Vec<Name>) {
    let msg = p.payload;
    let (Some(fixed), Some(options)) = (msg.get(..BOOTP_FIXED), msg.get(BOOTP_FIXED + 4..)) else {
        return;
    };
    let op = fixed.first().copied();
    if !matches!(op, Some(1 | 2)) || msg.get(BOOTP_FIXED..BOOTP_FIXED + 4) != Some(&MAGIC[..]) {
        return;
    }
    let ip_at = |at: usize| {
        fixed
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(Ipv4Addr::from)
            .filter(|a| !a.is_unspecified())
    };
    // chaddr is a MAC only for Ethernet (htype 1) with a 6-byte hlen.
    let mac = (fixed.get(1..3) == Some(&[1, 6][..]))
        .then(|| fixed.get(28..34).and_then(|b| <[u8; 6]>::try_from(b).ok()))
        .flatten();
    let (ciaddr, yiaddr) = (ip_at(12), ip_at(16));

    let mut requested = None;
    let mut found: [Option<&[u8]>; 4] = [None; 4]; // 12, 81, 60, 61
    for (code, data) in options_v4(options) {
        match code {
            12 => found[0] = Some(data),
            81 => found[1] = Some(data),
            60 => found[2] = Some(data),
            61 => found[3] = Some(data),
            50 => {
                requested = <[u8; 4]>::try_from(data)
                    .ok()
                    .map(Ipv4Addr::from)
                    .filter(|a| !a.is_unspecified());
            }
            _ => {}
        }
    }
    let addr = yiaddr.or(requested).or(ciaddr).map(IpAddr::V4);
    // The device's own address is the one it is given or asks for.
    let client = Client { mac, ip: addr };
    let mut e = Emitter::new(out);
    let [hostname, fqdn, vendor, client_id] = found;
    if let Some(h) = hostname {
        e.push(Kind::DhcpHostname, h, addr, client, None);
    }
    if let Some(f) = fqdn {
        fqdn_v4(f, |name| e.push(Kind::DhcpFqdn, name, addr, client, None));
    }
    if let Some(v) = vendor {
        e.push(Kind::DhcpVendor, v, addr, client, None);
    }
    if let Some(id) = client_id {
        let mut hex = [0u8; 2 * MAX_CLIENT_ID];
        let n = hex_lower(id.get(..MAX_CLIENT_ID).unwrap_or(id), &mut hex);
        e.push(
            Kind::DhcpClientId,
            hex.get(..n).unwrap_or_default(),
            addr,
            client,
            None,
        );
    }
}

/// DHCPv4 options as (code, data), until the end option or the first cut option.
fn options_v4(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        loop {
            match data {
                [0, rest @ ..] => data = rest,
                [255, ..] | [] | [_] => return None,
                [code, len, rest @ ..] => {
                    let (value, after) = rest.split_at_checked(usize::from(*len))?;
                    data = after;
                    return Some((*code, value));
                }
            }
        }
    })
}

/// Option 81 (RFC 4702): flags, two obsolete rcode bytes, then the domain name, wire
/// encoded when the E flag (0x04) is set, else ASCII.
fn fqdn_v4(data: &[u8], mut f: impl FnMut(&[u8])) {
    let Some((flags, name)) = data.split_first() else {
        return;
    };
    let name = name.get(2..).unwrap_or_default();
    if flags & 0x04 != 0 {
        f(read_uncompressed(name).bytes());
    } else {
        f(name.strip_suffix(b".").unwrap_or(name));
    }
}

/// Writes `bytes` as lower-case hex into `out`; returns the length written.
fn hex_lower(bytes: &[u8], out: &mut [u8]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n = 0;
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        if let [hi, lo] = pair {
            *hi = HEX[usize::from(b >> 4)];
            *lo = HEX[usize::from(b & 0xf)];
            n += 2;
        }
    }
    n
}

pub(crate) fn v6(p: &Packet<'_>, out: &mut Vec<Name>) {
    // Unwrap relay messages (12 relay-forward, 13 relay-reply) to the client's message;
    // the innermost relay's peer address is the client's.
    let mut msg = p.payload;
    let mut peer = None;
    for _ in 0..MAX_RELAY_DEPTH {
        match msg.first() {
            Some(12 | 13) => {
                let Some(opts) = msg.get(34..) else { return };
                peer = msg
                    .get(18..34)
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    .map(|a| IpAddr::V6(Ipv6Addr::from(a)));
                let Some((_, inner)) = options_v6(opts).find(|(code, _)| *code == 9) else {
                    return;
                };
                msg = inner;
            }
            Some(_) => break,
            None => return,
        }
    }
    let Some((&kind, rest)) = msg.split_first() else {
        return;
    };
    if matches!(kind, 12 | 13) {
        return; // nested deeper than MAX_RELAY_DEPTH
    }
    let Some(options) = rest.get(3..) else { return };

    // Messages a server sends (advertise 2, reply 7, reconfigure 10) go to the client.
    let from_server = matches!(kind, 2 | 7 | 10);
    let on_wire = if from_server {
        Client::destination(p)
    } else {
        Client::source(p)
    };
    let mut fqdn = None;
    let mut duid_mac = None;
    let mut ia_addr = None;
    for (code, data) in options_v6(options) {
        match code {
            1 => duid_mac = duid_mac.or_else(|| mac_of_duid(data)),
            3 => ia_addr = ia_addr.or_else(|| ia_na_address(data)),
            39 => fqdn = fqdn.or(Some(data)),
            _ => {}
        }
    }
    let Some(fqdn) = fqdn else { return };
    // Flags byte, then the name (wire encoded, maybe partial).
    let name = read_uncompressed(fqdn.get(1..).unwrap_or_default());
    let client = Client {
        mac: duid_mac.or(if peer.is_some() { None } else { on_wire.mac }),
        ip: peer.or(on_wire.ip),
    };
    let mut e = Emitter::new(out);
    e.push(Kind::Dhcpv6Fqdn, name.bytes(), ia_addr, client, None);
}

/// DHCPv6 options as (code, data), until the first cut option.
fn options_v6(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let [c0, c1, l0, l1, rest @ ..] = data else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let (value, after) = rest.split_at_checked(len)?;
        data = after;
        Some((u16::from_be_bytes([*c0, *c1]), value))
    })
}

/// The MAC in a DUID-LLT (type 1) or DUID-LL (type 3) with hardware type 1 (Ethernet).
fn mac_of_duid(duid: &[u8]) -> Option<[u8; 6]> {
    let lladdr = match duid {
        [0, 1, 0, 1, _, _, _, _, rest @ ..] | [0, 3, 0, 1, rest @ ..] => rest,
        _ => return None,
    };
    <[u8; 6]>::try_from(lladdr).ok()
}

/// The first IA Address (option 5) inside an IA_NA (IAID, T1, T2, then options).
fn ia_na_address(ia_na: &[u8]) -> Option<IpAddr> {
    let (_, data) = options_v6(ia_na.get(12..)?).find(|(code, _)| *code == 5)?;
    let addr = <[u8; 16]>::try_from(data.get(..16)?).ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(addr)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tests::packet;

    fn bootp(op: u8, ciaddr: [u8; 4], yiaddr: [u8; 4], options: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; BOOTP_FIXED];
        m[0] = op;
        m[1] = 1;
        m[2] = 6;
        m[12..16].copy_from_slice(&ciaddr);
        m[16..20].copy_from_slice(&yiaddr);
        m[28..34].copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        m.extend_from_slice(&MAGIC);
        m.extend_from_slice(options);
        m.push(255);
        m
    }

    fn opt(code: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![code, u8::try_from(data.len()).unwrap_or(255)];
        v.extend_from_slice(data);
        v
    }

    fn run4(m: &[u8]) -> Vec<Name> {
        let mut out = Vec::new();
        v4(&packet(m, 68, 67, false), &mut out);
        out
    }

    fn request() -> Vec<u8> {
        let mut o = opt(53, &[3]);
        o.extend(opt(50, &[192, 168, 1, 50]));
        o.extend(opt(12, b"my-laptop"));
        o.extend(opt(81, b"\x04\x00\x00\x09my-laptop\x04home\x00"));
        o.extend(opt(60, b"MSFT 5.0"));
        o.extend(opt(61, &[1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]));
        bootp(1, [0; 4], [0; 4], &o)
    }

    #[test]
    fn v4_request_names() {
        let out = run4(&request());
        let got: Vec<_> = out.iter().map(|n| (n.kind, n.name.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Kind::DhcpHostname, "my-laptop"),
                (Kind::DhcpFqdn, "my-laptop.home"),
                (Kind::DhcpVendor, "MSFT 5.0"),
                (Kind::DhcpClientId, "01aabbccddeeff"),
            ]
        );
        let want_addr = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 50)));
        assert!(
            out.iter().all(|n| n.addr == want_addr
                && n.client_mac == Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]))
        );
    }

    #[test]
    fn v4_addresses_in_order() {
        let host = opt(12, b"h");
        let addr = |m: &[u8]| run4(m).first().and_then(|n| n.addr);
        // yiaddr first (an ACK), then the requested address, then ciaddr.
        let mut o = opt(50, &[10, 0, 0, 2]);
        o.extend_from_slice(&host);
        let ack = bootp(2, [10, 0, 0, 3], [10, 0, 0, 1], &o);
        assert_eq!(addr(&ack), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        let req = bootp(1, [10, 0, 0, 3], [0; 4], &o);
        assert_eq!(addr(&req), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
        let renew = bootp(1, [10, 0, 0, 3], [0; 4], &host);
        assert_eq!(addr(&renew), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3))));
        let discover = bootp(1, [0; 4], [0; 4], &host);
        assert_eq!(addr(&discover), None);
    }

    #[test]
    fn v4_fqdn_ascii_and_no_ethernet_chaddr() {
        let mut m = bootp(
            1,
            [0; 4],
            [0; 4],
            &opt(81, b"\x01\x00\x00host.example.org."),
        );
        m[1] = 6; // IEEE 802: chaddr is not read as a MAC
        let out = run4(&m);
        assert_eq!(
            out.first().map(|n| n.name.as_str()),
            Some("host.example.org")
        );
        assert_eq!(out.first().and_then(|n| n.client_mac), None);
    }

    #[test]
    fn v4_hostile_hostname() {
        for (raw, want) in [
            (
                &b"<script>alert(1)</script>"[..],
                Some("<script>alert(1)</script>"),
            ),
            (b"\"><img onerror=x>", Some("\"><img onerror=x>")),
            ("pc\u{202E}gnp.exe".as_bytes(), Some("pcgnp.exe")),
            (b"a\0b\x1b", Some("ab")),
            (b"\xff\xfe", Some("\u{FFFD}\u{FFFD}")),
            (b"\0\0", None),
        ] {
            let out = run4(&bootp(1, [0; 4], [0; 4], &opt(12, raw)));
            assert_eq!(out.first().map(|n| n.name.as_str()), want, "{raw:?}");
        }
        // A 10 kB host name cannot fit one option; many options of 255 bytes each, the
        // last one wins, capped at a label's length.
        let mut o = Vec::new();
        for _ in 0..40 {
            o.extend(opt(12, &[b'A'; 255]));
        }
        let out = run4(&bootp(1, [0; 4], [0; 4], &o));
        assert_eq!(out.first().map(|n| n.name.len()), Some(63));
    }

    #[test]
    fn v4_every_prefix_and_junk() {
        let m = request();
        for n in 0..=m.len() {
            let _ = run4(m.get(..n).unwrap_or_default());
        }
        // A cut option list keeps the options before the cut.
        let cut = m.get(..m.len() - 5).unwrap_or_default();
        assert_eq!(run4(cut).len(), 3);
        // Wrong cookie, wrong op.
        let mut bad = request();
        bad[BOOTP_FIXED] = 0;
        assert!(run4(&bad).is_empty());
        let mut bad = request();
        bad[0] = 3;
        assert!(run4(&bad).is_empty());
    }

    fn v6_option(code: u16, data: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend_from_slice(&u16::try_from(data.len()).unwrap_or(0).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    fn solicit() -> Vec<u8> {
        let mut m = vec![1, 0xab, 0xcd, 0xef];
        // DUID-LLT, Ethernet.
        m.extend(v6_option(
            1,
            &[0, 1, 0, 1, 1, 2, 3, 4, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55],
        ));
        let mut ia = vec![0; 12];
        let mut iaaddr = "2001:db8::42"
            .parse::<Ipv6Addr>()
            .map(|a| a.octets().to_vec())
            .unwrap_or_default();
        iaaddr.extend_from_slice(&[0; 8]);
        ia.extend(v6_option(5, &iaaddr));
        m.extend(v6_option(3, &ia));
        m.extend(v6_option(39, b"\x01\x06phone1\x04home\x00"));
        m
    }

    fn run6(m: &[u8], sport: u16, dport: u16) -> Vec<Name> {
        let mut out = Vec::new();
        v6(&packet(m, sport, dport, false), &mut out);
        out
    }

    #[test]
    fn v6_fqdn_duid_and_address() {
        let out = run6(&solicit(), 546, 547);
        assert_eq!(out.len(), 1);
        let n = out.first().cloned();
        assert_eq!(n.as_ref().map(|n| n.name.as_str()), Some("phone1.home"));
        assert_eq!(n.as_ref().map(|n| n.kind), Some(Kind::Dhcpv6Fqdn));
        assert_eq!(
            n.as_ref().and_then(|n| n.client_mac),
            Some([2, 0x11, 0x22, 0x33, 0x44, 0x55])
        );
        assert_eq!(n.as_ref().and_then(|n| n.addr), "2001:db8::42".parse().ok());
        assert_eq!(
            n.and_then(|n| n.client_ip),
            packet(&[], 0, 0, false).src.into()
        );
    }

    #[test]
    fn v6_reply_goes_to_destination_and_relays_unwrap() {
        let mut reply = solicit();
        reply[0] = 7;
        // Without a DUID, the client is the reply's destination.
        let no_duid: Vec<u8> = {
            let mut m = reply.get(..4).unwrap_or_default().to_vec();
            m.extend(v6_option(39, b"\x00\x06phone1\x00"));
            m
        };
        let out = run6(&no_duid, 547, 546);
        let dst = packet(&[], 0, 0, false);
        assert_eq!(out.first().and_then(|n| n.client_mac), dst.dst_mac);
        assert_eq!(out.first().and_then(|n| n.client_ip), Some(dst.dst));

        // relay-forward(relay-forward(solicit)): the peer address names the client.
        let peer: Ipv6Addr = "fe80::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let wrap = |inner: &[u8]| {
            let mut m = vec![12, 0];
            m.extend_from_slice(&[0; 16]);
            m.extend_from_slice(&peer.octets());
            m.extend(v6_option(9, inner));
            m
        };
        let relayed = wrap(&wrap(&solicit()));
        let out = run6(&relayed, 547, 547);
        assert_eq!(out.first().map(|n| n.name.as_str()), Some("phone1.home"));
        assert_eq!(
            out.first().and_then(|n| n.client_ip),
            Some(IpAddr::V6(peer))
        );
        // Too deep: nothing.
        let mut deep = solicit();
        for _ in 0..=MAX_RELAY_DEPTH {
            deep = wrap(&deep);
        }
        assert!(run6(&deep, 547, 547).is_empty());
    }

    #[test]
    fn v6_every_prefix_and_hostile() {
        let m = solicit();
        for n in 0..=m.len() {
            let _ = run6(m.get(..n).unwrap_or_default(), 546, 547);
        }
        let mut m = vec![1, 0, 0, 0];
        m.extend(v6_option(
            39,
            b"\x00\x18\xe2\x80\xaeevil<script>\x00\xff\"><img>\x00",
        ));
        let out = run6(&m, 546, 547);
        assert_eq!(
            out.first().map(|n| n.name.as_str()),
            Some("evil<script>\u{FFFD}\"><img>")
        );
    }
}

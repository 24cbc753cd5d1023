//! Any bytes as a run of packets to and from a few hosts, on the ports the names
//! extractor reads (and others, for TLS, QUIC and HTTP): it must never panic, and every
//! name it gives must be what `sanitize::name` leaves unchanged, at most
//! `MAX_PER_PACKET` a packet.
//!
//! Each packet is `[flags, port, len (2 bytes, big-endian), payload[len]...]`: flags bit 0 TCP (else UDP),
//! bit 1 IPv6, bit 2 the reply direction, bits 3-5 which client; for TCP the next four
//! bytes of the input are the sequence number. A short last packet takes what is left.
#![no_main]
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use names::sanitize::{MAX_NAME, MAX_PER_PACKET, name};
use names::{Extractor, Packet, Transport};

const PORTS: [u16; 16] = [
    53, 5353, 5355, 137, 67, 68, 546, 547, 1900, 443, 80, 8080, 853, 4433, 8443, 1234,
];

fuzz_target!(|data: &[u8]| {
    let mut ex = Extractor::new();
    let mut out = Vec::new();
    let mut rest = data;
    let mut ts_ns = 0i64;
    while let [flags, port, len_hi, len_lo, tail @ ..] = rest {
        let tcp = flags & 1 != 0;
        let (seq, tail) = match (tcp, tail) {
            (true, [a, b, c, d, t @ ..]) => (u32::from_be_bytes([*a, *b, *c, *d]), t),
            (true, _) => return,
            (false, t) => (0, t),
        };
        let n = usize::from(u16::from_be_bytes([*len_hi, *len_lo])).min(tail.len());
        let (payload, next) = tail.split_at(n);
        rest = next;
        let client = (flags >> 3) & 7;
        let (client_ip, server_ip) = if flags & 2 != 0 {
            (
                IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(client) + 1)),
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::new(192, 168, 1, client + 1)),
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            )
        };
        let service = PORTS[usize::from(*port) % PORTS.len()];
        let client_port = 40_000 + u16::from(*port);
        let (src, dst, src_port, dst_port) = if flags & 4 != 0 {
            (server_ip, client_ip, service, client_port)
        } else {
            (client_ip, server_ip, client_port, service)
        };
        ts_ns += 1_000_000;
        let p = Packet {
            ts_ns,
            src_mac: Some([2, 0, 0, 0, 0, client]),
            dst_mac: None,
            src,
            dst,
            src_port,
            dst_port,
            transport: if tcp { Transport::Tcp { seq, flags: *flags } } else { Transport::Udp },
            payload,
        };
        let before = out.len();
        ex.packet(&p, &mut out);
        assert!(out.len() - before <= MAX_PER_PACKET, "{} names from one packet", out.len() - before);
        for got in &out[before..] {
            assert!(!got.name.is_empty() && got.name.len() <= MAX_NAME, "{:?}", got.name);
            assert_eq!(name(got.name.as_bytes()).as_deref(), Some(got.name.as_str()), "not sanitized");
        }
        out.clear();
    }
});

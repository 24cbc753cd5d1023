//! Address pairs, endpoints and conversations of the whole cube as Rust rows, for the
//! comparison with tshark's statistics (`tshark`), and service names. The report's
//! sections are rolled up in polars (`rollup`).

use std::collections::BTreeMap;

use super::cube::CubeRow;
use super::{Conversation, Talker};

/// Packets and bytes per direction of every IP address pair, from the cube: talkers,
/// hosts and conversations are derived from it.
#[derive(Debug, Clone)]
pub(super) struct Pair {
    pub(super) src: String,
    pub(super) dst: String,
    pub(super) version: u8,
    pub(super) packets: u64,
    pub(super) bytes: u64,
}

pub(super) fn pairs(cube: &[CubeRow]) -> Vec<Pair> {
    let mut by: BTreeMap<(&str, &str), Pair> = BTreeMap::new();
    for r in cube {
        if let (Some(src), Some(dst), Some(v)) = (&r.src, &r.dst, r.ip_version) {
            let p = by.entry((src, dst)).or_insert_with(|| Pair {
                src: src.clone(),
                dst: dst.clone(),
                // The addresses' family: a tunnel's inner packet (IPv6 in Teredo or
                // 6in4) is of another version than the outermost header.
                version: match src.parse::<std::net::IpAddr>() {
                    Ok(std::net::IpAddr::V4(_)) => 4,
                    Ok(std::net::IpAddr::V6(_)) => 6,
                    Err(_) => v,
                },
                packets: 0,
                bytes: 0,
            });
            p.packets += r.packets;
            p.bytes += r.bytes;
        }
    }
    by.into_values().collect()
}

/// Per-address counts over the pairs of one IP version (4 or 6), or both (`None`).
pub(super) fn endpoint_rows(pairs: &[Pair], version: Option<u8>) -> Vec<Talker> {
    let mut by: BTreeMap<&str, Talker> = BTreeMap::new();
    for p in pairs
        .iter()
        .filter(|p| version.is_none_or(|v| p.version == v))
    {
        let tx = by.entry(&p.src).or_default();
        tx.tx_packets += p.packets;
        tx.tx_bytes += p.bytes;
        let rx = by.entry(&p.dst).or_default();
        rx.rx_packets += p.packets;
        rx.rx_bytes += p.bytes;
    }
    by.into_iter()
        .map(|(addr, t)| Talker {
            addr: addr.to_string(),
            packets: t.tx_packets + t.rx_packets,
            bytes: t.tx_bytes + t.rx_bytes,
            ..t
        })
        .collect()
}

/// Address pairs (as tshark's `-z conv,ip` and `conv,ipv6` together, or one version),
/// most bytes first. `a` is the smaller address as text.
pub(super) fn conversations(pairs: &[Pair], version: Option<u8>) -> Vec<Conversation> {
    let mut by: BTreeMap<(&str, &str), Conversation> = BTreeMap::new();
    for p in pairs
        .iter()
        .filter(|p| version.is_none_or(|v| p.version == v))
    {
        let forward = p.src < p.dst;
        let key = if forward {
            (p.src.as_str(), p.dst.as_str())
        } else {
            (p.dst.as_str(), p.src.as_str())
        };
        let c = by.entry(key).or_default();
        c.packets += p.packets;
        c.bytes += p.bytes;
        if forward {
            c.packets_a_to_b += p.packets;
            c.bytes_a_to_b += p.bytes;
        } else {
            c.packets_b_to_a += p.packets;
            c.bytes_b_to_a += p.bytes;
        }
    }
    let mut rows: Vec<Conversation> = by
        .into_iter()
        .map(|((a, b), c)| Conversation {
            a: a.to_string(),
            b: b.to_string(),
            ..c
        })
        .collect();
    rows.sort_by(|x, y| {
        y.bytes
            .cmp(&x.bytes)
            .then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
    });
    rows
}

/// The usual name of a service port (empty when it has none).
pub(super) fn service_name(proto: &str, port: u16) -> &'static str {
    match (proto, port) {
        (_, 53) => "dns",
        ("UDP", 67 | 68) => "dhcp",
        ("UDP", 123) => "ntp",
        ("UDP", 137 | 138) | ("TCP", 139) => "netbios",
        ("TCP", 22) => "ssh",
        ("TCP", 25 | 587 | 465) => "smtp",
        ("TCP", 80 | 8080) => "http",
        ("TCP" | "UDP", 443) => "https",
        ("TCP", 445) => "smb",
        ("TCP", 993) => "imaps",
        ("UDP", 1900) => "ssdp",
        ("UDP", 5353) => "mdns",
        ("UDP", 546 | 547) => "dhcpv6",
        ("TCP", 8883 | 1883) => "mqtt",
        _ => "",
    }
}

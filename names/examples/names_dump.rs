//! Prints the names `names::Extractor` reads from a capture, one line per name:
//! `frame<TAB>kind<TAB>name<TAB>client<TAB>addr`. A minimal reader for checking by hand
//! against tshark: classic pcap and pcapng, Ethernet (with VLAN tags), IPv4 and IPv6
//! (no fragments), TCP and UDP.
//!
//! `cargo run -p names --example names_dump -- FILE`

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use names::{Extractor, Packet, Transport};

fn field<const N: usize>(b: &[u8], i: usize) -> Option<[u8; N]> {
    b.get(i..i + N)?.try_into().ok()
}

fn u16_at(b: &[u8], i: usize, le: bool) -> Option<u16> {
    field(b, i).map(if le {
        u16::from_le_bytes
    } else {
        u16::from_be_bytes
    })
}

fn u32_at(b: &[u8], i: usize, le: bool) -> Option<u32> {
    field(b, i).map(if le {
        u32::from_le_bytes
    } else {
        u32::from_be_bytes
    })
}

/// The link-layer frames of a capture, in order: (link type, frame).
fn frames(file: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let magic = u32_at(file, 0, true).unwrap_or(0);
    if magic == 0x0a0d_0d0a {
        // pcapng
        let mut pos = 0;
        let mut le = true;
        let mut links = Vec::new();
        while let (Some(ty), Some(_)) = (u32_at(file, pos, le), u32_at(file, pos + 4, le)) {
            if ty == 0x0a0d_0d0a {
                le = u32_at(file, pos + 8, true) == Some(0x1a2b_3c4d);
                links.clear();
            }
            let Some(len) = u32_at(file, pos + 4, le).map(|l| l as usize) else {
                break;
            };
            if len < 12 {
                break;
            }
            let Some(block) = file.get(pos..pos + len) else {
                break;
            };
            match ty {
                1 => links.push(u32::from(u16_at(block, 8, le).unwrap_or(0))),
                6 => {
                    let iface = u32_at(block, 8, le).unwrap_or(0) as usize;
                    let cap = u32_at(block, 20, le).unwrap_or(0) as usize;
                    if let Some(d) = block.get(28..28 + cap) {
                        out.push((links.get(iface).copied().unwrap_or(1), d.to_vec()));
                    }
                }
                3 => {
                    let d = block.get(12..len - 4).unwrap_or_default();
                    out.push((links.first().copied().unwrap_or(1), d.to_vec()));
                }
                _ => {}
            }
            pos += len;
        }
    } else {
        let le = match magic {
            0xa1b2_c3d4 | 0xa1b2_3c4d => true,
            0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
            _ => return out,
        };
        let link = u32_at(file, 20, le).unwrap_or(1);
        let mut pos = 24;
        while let Some(cap) = u32_at(file, pos + 8, le) {
            let cap = cap as usize;
            let Some(d) = file.get(pos + 16..pos + 16 + cap) else {
                break;
            };
            out.push((link, d.to_vec()));
            pos += 16 + cap;
        }
    }
    out
}

/// Where a frame's IP header starts and its ethertype, with the MACs where the link has
/// them: (source MAC, destination MAC, ethertype, offset of the IP header).
type Link = (Option<[u8; 6]>, Option<[u8; 6]>, u16, usize);

fn link_layer(link: u32, f: &[u8]) -> Option<Link> {
    match link {
        1 => {
            let mac = |o: usize| -> Option<[u8; 6]> { f.get(o..o + 6)?.try_into().ok() };
            let mut off = 12;
            let mut ethertype = u16_at(f, off, false).unwrap_or(0);
            while ethertype == 0x8100 || ethertype == 0x88a8 {
                off += 4;
                ethertype = u16_at(f, off, false).unwrap_or(0);
            }
            Some((mac(6), mac(0), ethertype, off + 2))
        }
        113 => Some((None, None, u16_at(f, 14, false).unwrap_or(0), 16)),
        276 => Some((None, None, u16_at(f, 0, false).unwrap_or(0), 20)),
        101 | 228 | 229 => {
            let v = f.first().map_or(0, |b| b >> 4);
            Some((None, None, if v == 6 { 0x86dd } else { 0x0800 }, 0))
        }
        _ => None,
    }
}

/// The IP header at `ip`: (source, destination, protocol, what it carries).
fn ip_layer(f: &[u8], ethertype: u16, ip: usize) -> Option<(IpAddr, IpAddr, u8, &[u8])> {
    match ethertype {
        0x0800 => {
            let h = f.get(ip..ip + 20)?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let total = usize::from(u16_at(h, 2, false).unwrap_or(0));
            let s = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
            let d = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
            let end = (ip + total).min(f.len());
            let l4 = f.get(ip + ihl..end)?;
            Some((IpAddr::V4(s), IpAddr::V4(d), h[9], l4))
        }
        0x86dd => {
            let h = f.get(ip..ip + 40)?;
            let plen = usize::from(u16_at(h, 4, false).unwrap_or(0));
            let s: [u8; 16] = h[8..24].try_into().unwrap_or_default();
            let d: [u8; 16] = h[24..40].try_into().unwrap_or_default();
            let end = (ip + 40 + plen).min(f.len());
            let l4 = f.get(ip + 40..end)?;
            Some((
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                h[6],
                l4,
            ))
        }
        _ => None,
    }
}

/// The TCP or UDP header at the start of `l4`, and its payload.
fn transport_layer(proto: u8, l4: &[u8]) -> Option<(Transport, &[u8])> {
    match proto {
        6 => {
            let doff = l4.get(12).map(|b| usize::from(b >> 4) * 4)?;
            let seq = u32_at(l4, 4, false).unwrap_or(0);
            let flags = l4.get(13).copied().unwrap_or(0);
            Some((
                Transport::Tcp { seq, flags },
                l4.get(doff..).unwrap_or_default(),
            ))
        }
        17 => Some((Transport::Udp, l4.get(8..).unwrap_or_default())),
        _ => None,
    }
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: names_dump FILE");
        std::process::exit(2);
    };
    let file = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    let mut x = Extractor::new();
    for (i, (link, f)) in frames(&file).iter().enumerate() {
        let Some((src_mac, dst_mac, ethertype, ip)) = link_layer(*link, f) else {
            continue;
        };
        let Some((src, dst, proto, l4)) = ip_layer(f, ethertype, ip) else {
            continue;
        };
        let Some((transport, payload)) = transport_layer(proto, l4) else {
            continue;
        };
        let p = Packet {
            ts_ns: 0,
            src_mac,
            dst_mac,
            src,
            dst,
            src_port: u16_at(l4, 0, false).unwrap_or(0),
            dst_port: u16_at(l4, 2, false).unwrap_or(0),
            transport,
            payload,
        };
        let mut out = Vec::new();
        x.packet(&p, &mut out);
        for n in out {
            let client = n.client_ip.map(|a| a.to_string()).unwrap_or_default();
            let addr = n.addr.map(|a| a.to_string()).unwrap_or_default();
            println!(
                "{}\t{}\t{}\t{client}\t{addr}",
                i + 1,
                n.kind.as_str(),
                n.name
            );
        }
    }
}

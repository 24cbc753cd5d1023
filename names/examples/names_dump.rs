//! Prints the names in a classic pcap file (Ethernet link type), one per line with its
//! frame number, to compare by hand with `tshark -n`. Usage: names_dump FILE.pcap

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use names::{Extractor, Packet, Transport};

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_default();
    let data = std::fs::read(path)?;
    let Some(magic) = data.get(..4) else {
        return Ok(());
    };
    let le = matches!(magic, [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]);
    let u32_at = |b: &[u8], i: usize| {
        b.get(i..i + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map_or(0, |a| {
                if le {
                    u32::from_le_bytes(a)
                } else {
                    u32::from_be_bytes(a)
                }
            })
    };
    let mut pos = 24;
    let mut frame = 0u32;
    let mut x = Extractor::new();
    let mut out = Vec::new();
    while let Some(rec) = data.get(pos..pos + 16) {
        let caplen = usize::try_from(u32_at(rec, 8)).unwrap_or(0);
        let Some(bytes) = data.get(pos + 16..pos + 16 + caplen) else {
            break;
        };
        pos += 16 + caplen;
        frame += 1;
        out.clear();
        if let Some(p) = decode(bytes) {
            x.packet(&p, &mut out);
        }
        for n in &out {
            println!(
                "{frame}\t{}\t{}\t{}\t{}",
                n.kind.as_str(),
                n.name,
                n.addr.map(|a| a.to_string()).unwrap_or_default(),
                n.client_ip.map(|a| a.to_string()).unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn decode(f: &[u8]) -> Option<Packet<'_>> {
    let mac = |i: usize| f.get(i..i + 6).and_then(|s| <[u8; 6]>::try_from(s).ok());
    let (dst_mac, src_mac) = (mac(0), mac(6));
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes(f.get(off..off + 2)?.try_into().ok()?);
    while ethertype == 0x8100 {
        off += 4;
        ethertype = u16::from_be_bytes(f.get(off..off + 2)?.try_into().ok()?);
    }
    let ip = f.get(off + 2..)?;
    let (src, dst, proto, l4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes(ip.get(2..4)?.try_into().ok()?));
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            let frag = u16::from_be_bytes(ip.get(6..8)?.try_into().ok()?) & 0x1fff;
            if frag != 0 {
                return None;
            }
            let end = total.min(ip.len());
            (
                IpAddr::V4(Ipv4Addr::from(src)),
                IpAddr::V4(Ipv4Addr::from(dst)),
                *ip.get(9)?,
                ip.get(ihl..end)?,
            )
        }
        0x86dd => {
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let plen = usize::from(u16::from_be_bytes(ip.get(4..6)?.try_into().ok()?));
            let end = (40 + plen).min(ip.len());
            (
                IpAddr::V6(Ipv6Addr::from(src)),
                IpAddr::V6(Ipv6Addr::from(dst)),
                *ip.get(6)?,
                ip.get(40..end)?,
            )
        }
        _ => return None,
    };
    let port = |i: usize| l4.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (src_port, dst_port) = (port(0)?, port(2)?);
    let (transport, payload) = match proto {
        17 => (Transport::Udp, l4.get(8..)?),
        6 => {
            let hl = usize::from(l4.get(12)? >> 4) * 4;
            (
                Transport::Tcp {
                    seq: u32::from_be_bytes(l4.get(4..8)?.try_into().ok()?),
                    flags: *l4.get(13)?,
                },
                l4.get(hl..)?,
            )
        }
        _ => return None,
    };
    Some(Packet {
        ts_ns: 0,
        src_mac,
        dst_mac,
        src,
        dst,
        src_port,
        dst_port,
        transport,
        payload,
    })
}

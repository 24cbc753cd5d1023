//! tshark-style presentation: addresses and a short Info column.

use std::fmt::{self, Write as _};
use std::net::Ipv6Addr;

use super::PacketRecord;

/// A MAC address as tshark prints it with `-n`: lowercase, colon-separated.
pub(super) fn fmt_mac(f: &mut fmt::Formatter<'_>, m: &[u8; 6]) -> fmt::Result {
    write!(
        f,
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// An IPv6 address as tshark prints it (glibc `inet_ntop`): RFC 5952 compression of the
/// longest run of two or more zero groups (the first on a tie), lowercase hex, and the
/// dotted-quad tail for IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible
/// (`::a.b.c.d`) addresses.
pub(super) fn fmt_ipv6(f: &mut fmt::Formatter<'_>, a: &Ipv6Addr) -> fmt::Result {
    let w = a.segments();
    // Longest run of zero words.
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let start = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_start = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_len = 0;
    }
    let mut i = 0;
    while i < 8 {
        if best_len > 0 && i == best_start {
            if i == 0 {
                f.write_char(':')?;
            }
            f.write_char(':')?;
            i += best_len;
            continue;
        }
        if i == 6 && best_start == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            let o = a.octets();
            return write!(f, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
        }
        write!(f, "{:x}", w[i])?;
        if i < 7 {
            f.write_char(':')?;
        }
        i += 1;
    }
    Ok(())
}

/// TCP flag names in tshark's order.
const TCP_FLAGS: [(u8, &str); 8] = [
    (0x01, "FIN"),
    (0x02, "SYN"),
    (0x04, "RST"),
    (0x08, "PSH"),
    (0x10, "ACK"),
    (0x20, "URG"),
    (0x40, "ECE"),
    (0x80, "CWR"),
];

/// A short Info column in tshark's spirit, e.g. `51234 → 80 [SYN] Seq=0 Win=64240 Len=0`,
/// `Echo (ping) request  id=0x0001, seq=1/256, ttl=64`, `Who has 192.168.1.1? Tell
/// 192.168.1.2`. `rel_seq` is [`super::TcpSeqTracker::relative`]'s answer; without it
/// the absolute sequence number is shown. The acknowledgment number needs the tracker
/// too: see [`info_with_ack`]; this form leaves `Ack=` out.
#[must_use]
pub fn info(rec: &PacketRecord, rel_seq: Option<u32>) -> String {
    info_with_ack(rec, rel_seq, None)
}

/// [`info`] with the relative acknowledgment number
/// ([`super::TcpSeqTracker::last_relative_ack`]) shown as `Ack=` when the ACK flag is set.
#[must_use]
pub fn info_with_ack(rec: &PacketRecord, rel_seq: Option<u32>, rel_ack: Option<u32>) -> String {
    let mut s = String::new();
    let _ = write_info(&mut s, rec, rel_seq, rel_ack);
    s
}

fn write_info(
    s: &mut String,
    r: &PacketRecord,
    rel_seq: Option<u32>,
    rel_ack: Option<u32>,
) -> fmt::Result {
    match r.protocol {
        "TCP" => {
            if let (Some(sp), Some(dp)) = (r.src_port, r.dst_port) {
                write!(s, "{sp} → {dp}")?;
            }
            if let Some(fl) = r.tcp_flags {
                s.push_str(" [");
                let mut first = true;
                for (bit, name) in TCP_FLAGS {
                    if fl & bit != 0 {
                        if !first {
                            s.push_str(", ");
                        }
                        s.push_str(name);
                        first = false;
                    }
                }
                if first {
                    s.push_str("<None>");
                }
                s.push(']');
                if let Some(seq) = rel_seq.or(r.tcp_seq) {
                    write!(s, " Seq={seq}")?;
                }
                if fl & 0x10 != 0
                    && let Some(ack) = rel_ack
                {
                    write!(s, " Ack={ack}")?;
                }
                if let Some(w) = r.tcp_window {
                    write!(s, " Win={w}")?;
                }
                if let Some(l) = r.payload_len {
                    write!(s, " Len={l}")?;
                }
            }
        }
        "UDP" | "UDPlite" => {
            if let (Some(sp), Some(dp)) = (r.src_port, r.dst_port) {
                write!(s, "{sp} → {dp}")?;
                if let Some(l) = r.payload_len {
                    write!(s, " Len={l}")?;
                }
            }
        }
        "SCTP" | "DCCP" => {
            if let (Some(sp), Some(dp)) = (r.src_port, r.dst_port) {
                write!(s, "{sp} → {dp}")?;
            }
        }
        "ICMP" => icmp_info(s, r)?,
        "ICMPv6" => icmpv6_info(s, r)?,
        "ARP" | "RARP" | "InARP" => arp_info(s, r)?,
        "IPv4" | "IPv6" if r.fragment && r.src_port.is_none() => {
            if let Some(p) = r.ip_proto {
                write!(s, "Fragmented IP protocol (proto={} {p})", ip_proto_name(p))?;
            }
        }
        "IPv4" | "IPv6" => {
            if let Some(p) = r.ip_proto {
                write!(s, "{} ({p})", ip_proto_name(p))?;
            }
        }
        _ => {
            if let Some(e) = &r.decode_error {
                s.push_str(e);
            } else if let Some(t) = r.ether_type
                && r.protocol == "Ethernet"
            {
                write!(s, "Ethernet II, type 0x{t:04x}")?;
            }
        }
    }
    Ok(())
}

fn icmp_info(s: &mut String, r: &PacketRecord) -> fmt::Result {
    let Some(t) = r.icmp_type else { return Ok(()) };
    let code = r.icmp_code.unwrap_or(0);
    match t {
        0 | 8 => {
            // tshark pads both to the same width.
            s.push_str(if t == 8 {
                "Echo (ping) request  "
            } else {
                "Echo (ping) reply    "
            });
            if let (Some(id), Some(seq)) = (r.icmp_id, r.icmp_seq) {
                write!(s, "id=0x{id:04x}, seq={seq}/{}", seq.swap_bytes())?;
                if let Some(ttl) = r.ttl {
                    write!(s, ", ttl={ttl}")?;
                }
            } else {
                s.truncate(s.trim_end().len());
            }
        }
        3 => {
            let what = match code {
                0 => "Network unreachable",
                1 => "Host unreachable",
                2 => "Protocol unreachable",
                3 => "Port unreachable",
                4 => "Fragmentation needed",
                5 => "Source route failed",
                6 => "Destination network unknown",
                7 => "Destination host unknown",
                9 => "Network administratively prohibited",
                10 => "Host administratively prohibited",
                13 => "Communication administratively filtered",
                _ => "",
            };
            if what.is_empty() {
                write!(s, "Destination unreachable (code {code})")?;
            } else {
                write!(s, "Destination unreachable ({what})")?;
            }
        }
        4 => s.push_str("Source quench (flow control)"),
        5 => s.push_str("Redirect"),
        9 => s.push_str("Router advertisement"),
        10 => s.push_str("Router solicitation"),
        11 => s.push_str(if code == 1 {
            "Time-to-live exceeded (Fragment reassembly time exceeded)"
        } else {
            "Time-to-live exceeded (Time to live exceeded in transit)"
        }),
        12 => s.push_str("Parameter problem"),
        13 => s.push_str("Timestamp request"),
        14 => s.push_str("Timestamp reply"),
        _ => s.push_str("Unknown ICMP (obsolete or malformed?)"),
    }
    Ok(())
}

fn icmpv6_info(s: &mut String, r: &PacketRecord) -> fmt::Result {
    let Some(t) = r.icmp_type else { return Ok(()) };
    let name = match t {
        1 => "Destination Unreachable",
        2 => "Packet Too Big",
        3 => "Time Exceeded",
        4 => "Parameter Problem",
        128 => "Echo (ping) request",
        129 => "Echo (ping) reply",
        130 => "Multicast Listener Query",
        131 => "Multicast Listener Report",
        132 => "Multicast Listener Done",
        133 => "Router Solicitation",
        134 => "Router Advertisement",
        135 => "Neighbor Solicitation",
        136 => "Neighbor Advertisement",
        137 => "Redirect",
        143 => "Multicast Listener Report Message v2",
        _ => "Unknown ICMPv6",
    };
    s.push_str(name);
    if let (true, Some(id), Some(seq)) = (matches!(t, 128 | 129), r.icmp_id, r.icmp_seq) {
        write!(s, " id=0x{id:04x}, seq={seq}")?;
        if let Some(h) = r.ttl {
            write!(s, ", hop limit={h}")?;
        }
    }
    Ok(())
}

struct Mac([u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_mac(f, &self.0)
    }
}

fn arp_info(s: &mut String, r: &PacketRecord) -> fmt::Result {
    let (spa, tpa) = (r.arp_sender_ip, r.arp_target_ip);
    match (r.arp_op, spa, tpa) {
        (Some(op @ (1 | 2)), Some(spa), Some(tpa)) if spa == tpa => {
            let kind = if op == 1 { "Request" } else { "Reply" };
            write!(s, "Gratuitous ARP for {spa} ({kind})")
        }
        (Some(1), Some(spa), Some(tpa)) if spa.is_unspecified() => {
            write!(s, "Who has {tpa}? (ARP Probe)")
        }
        (Some(1), Some(spa), Some(tpa)) => write!(s, "Who has {tpa}? Tell {spa}"),
        (Some(2), Some(spa), _) => match r.arp_sender_mac {
            Some(m) => write!(s, "{spa} is at {}", Mac(m)),
            None => write!(s, "{spa} is at (hardware address not shown)"),
        },
        (Some(3), _, _) => match (r.arp_target_mac, r.arp_sender_mac) {
            (Some(t), Some(sm)) => write!(s, "Who is {}? Tell {}", Mac(t), Mac(sm)),
            _ => s.write_str("RARP request"),
        },
        (Some(4), _, Some(tpa)) => match r.arp_target_mac {
            Some(t) => write!(s, "{} is at {tpa}", Mac(t)),
            None => s.write_str("RARP reply"),
        },
        (Some(op), _, _) => write!(s, "{} (opcode {op})", r.protocol),
        (None, _, _) => s.write_str(r.protocol),
    }
}

/// tshark's short names of IP protocol numbers (`ipprotostr`) for the Info column.
fn ip_proto_name(p: u8) -> &'static str {
    match p {
        0 => "IPv6 Hop-by-Hop Option",
        1 => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        6 => "TCP",
        17 => "UDP",
        41 => "IPv6",
        43 => "IPv6 Routing",
        44 => "IPv6 Fragment",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        58 => "ICMPv6",
        59 => "IPv6 No Next Header",
        60 => "IPv6 Destination Options",
        89 => "OSPF IGP",
        103 => "PIM",
        112 => "VRRP",
        132 => "SCTP",
        136 => "UDPLite",
        _ => "Unknown",
    }
}

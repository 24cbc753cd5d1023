//! The layer above IP: TCP, UDP and UDP-Lite (ports, flags, tshark's `Len=`), ICMP and
//! ICMPv6 (type, code, echo id/sequence), SCTP/DCCP ports, and the tunnels that go back
//! down a layer (IP-in-IP, 6in4, GRE, IPv4 AH, Teredo). Payload lengths come from the
//! headers bounded by the reported length, and are `None` where tshark cannot know them.
//! A tunnel's inner layers replace the transport fields of the outer ones, so ports,
//! payload length and protocol always belong to one (the innermost) header.

use super::{Cx, IpHint};

/// Teredo's UDP port (RFC 4380), the one tshark's Teredo dissector is registered on.
const TEREDO_PORT: u16 = 3544;

/// Whether a UDP datagram with these ports is taken for Teredo. tshark's UDP dissector
/// tries the lower port's dissector first (port 0 is ignored), so a well-known port
/// below Teredo's (DNS, NTP, ...) keeps its own protocol; a lower registered port
/// (1024-3543) is not told apart from a client's port, which can be any.
fn teredo_ports(src: u16, dst: u16) -> bool {
    let other = match (src, dst) {
        (TEREDO_PORT, other) | (other, TEREDO_PORT) => other,
        _ => return false,
    };
    other == 0 || other >= 1024
}

impl Cx<'_> {
    /// The layer above IP. `end` is the reported end of the IP payload; `fragmented`:
    /// this is the first of several fragments (its length says nothing of the
    /// transport segment's).
    pub(super) fn transport(&mut self, proto: u8, off: usize, end: usize, fragmented: bool) {
        self.r.ip_proto = Some(proto);
        let rep = end.saturating_sub(off);
        match proto {
            6 => self.tcp(off, rep, fragmented),
            17 => self.udp(off, rep, fragmented, "UDP"),
            136 => self.udp(off, rep, fragmented, "UDPlite"),
            1 => self.icmp(off, false),
            58 => self.icmp(off, true),
            4 | 41 => {
                // IP-in-IP / 6in4 (tshark's "ip" dissector takes either version).
                let v = if proto == 4 { IpHint::V4 } else { IpHint::V6 };
                self.ip(off, end, v);
            }
            47 => self.gre(off, end),
            51 => {
                // IPv4 AH: skip it, as tshark shows what it protects.
                self.r.protocol = "AH";
                let (Some(nh), Some(l)) = (self.u8_at(off), self.u8_at(off + 1)) else {
                    self.cut("AH", 12, off);
                    return;
                };
                let len = (usize::from(l) + 2) * 4;
                if self.avail(off) < len {
                    self.cut("AH", len, off);
                    return;
                }
                if self.enter() {
                    self.transport(nh, off + len, end, fragmented);
                }
            }
            132 | 33 => {
                self.r.protocol = if proto == 132 { "SCTP" } else { "DCCP" };
                self.ports(off);
            }
            2 => self.r.protocol = "IGMP",
            50 => self.r.protocol = "ESP",
            89 => self.r.protocol = "OSPF",
            103 => self.r.protocol = "PIM",
            112 => self.r.protocol = "VRRP",
            _ => {}
        }
    }

    fn ports(&mut self, off: usize) -> bool {
        let (Some(s), Some(d)) = (self.u16_at(off), self.u16_at(off + 2)) else {
            return false;
        };
        self.r.src_port = Some(s);
        self.r.dst_port = Some(d);
        true
    }

    fn tcp(&mut self, off: usize, rep: usize, fragmented: bool) {
        self.r.protocol = "TCP";
        if !self.ports(off) {
            self.cut("TCP", 20, off);
            return;
        }
        self.r.tcp_seq = self.u32_at(off + 4);
        self.r.tcp_ack = self.u32_at(off + 8);
        let off_flags = self.u16_at(off + 12);
        self.r.tcp_flags = off_flags.map(|v| (v & 0xff) as u8);
        self.r.tcp_window = self.u16_at(off + 14);
        let Some(off_flags) = off_flags else {
            self.cut("TCP", 20, off);
            return;
        };
        let hlen = usize::from(off_flags >> 12) * 4;
        if !fragmented && rep >= hlen {
            self.r.payload_len = u32::try_from(rep - hlen).ok();
        }
        if hlen < 20 {
            self.error(|| format!("TCP header: bogus header length ({hlen}, must be at least 20)"));
            return;
        }
        if self.avail(off) < hlen {
            self.cut("TCP", hlen, off);
        } else {
            self.r.payload_off = u32::try_from(off + hlen).ok();
        }
    }

    fn udp(&mut self, off: usize, rep: usize, fragmented: bool, name: &'static str) {
        self.r.protocol = name;
        if !self.ports(off) {
            self.cut(name, 8, off);
            return;
        }
        let Some(ulen) = self.u16_at(off + 4) else {
            self.cut(name, 8, off);
            return;
        };
        let ulen = usize::from(ulen);
        self.r.payload_len = if name == "UDPlite" {
            rep.checked_sub(8)
        } else if ulen == 0 && !fragmented {
            // Jumbogram (IPv6) or bogus: tshark uses the IP payload length.
            rep.checked_sub(8)
        } else if ulen >= 8 && (fragmented || ulen <= rep) {
            Some(ulen - 8)
        } else {
            None
        }
        .and_then(|l| u32::try_from(l).ok());
        if self.avail(off) < 8 {
            self.cut(name, 8, off);
            return;
        }
        self.r.payload_off = u32::try_from(off + 8).ok();
        let teredo = matches!(
            (self.r.src_port, self.r.dst_port),
            (Some(s), Some(d)) if teredo_ports(s, d)
        );
        if name == "UDP" && teredo {
            // The datagram ends where its length says, if that is within the IP payload.
            let end = if (8..=rep).contains(&ulen) {
                off + ulen
            } else {
                off + rep
            };
            self.teredo(off + 8, end);
        }
    }

    /// Teredo (RFC 4380): IPv6 in UDP, after an optional authentication indicator (type
    /// 1: 4 bytes, client id, authentication value, 8-byte nonce, confirmation byte) and
    /// an optional origin indication (type 0, 8 bytes), read as tshark's Teredo dissector
    /// reads them. tshark hands whatever follows to IPv6; here a payload that does not
    /// start with an IPv6 version nibble (not Teredo after all, or cut by the capture)
    /// stays plain UDP.
    fn teredo(&mut self, off: usize, end: usize) {
        let mut o = off;
        if self.u16_at(o) == Some(1) {
            let (Some(id_len), Some(auth_len)) = (self.u8_at(o + 2), self.u8_at(o + 3)) else {
                return;
            };
            o += 4 + usize::from(id_len) + usize::from(auth_len) + 9;
        }
        if self.u16_at(o) == Some(0) {
            o += 8;
        }
        if o >= end || self.u8_at(o).is_none_or(|b| b >> 4 != 6) || !self.enter() {
            return;
        }
        // The inner packet's layers replace the tunnel's UDP fields.
        self.r.src_port = None;
        self.r.dst_port = None;
        self.r.payload_len = None;
        self.r.payload_off = None;
        self.ip(o, end, IpHint::V6);
    }

    fn icmp(&mut self, off: usize, v6: bool) {
        self.r.protocol = if v6 { "ICMPv6" } else { "ICMP" };
        let Some(t) = self.u8_at(off) else {
            self.cut(self.r.protocol, 4, off);
            return;
        };
        self.r.icmp_type = Some(t);
        self.r.icmp_code = self.u8_at(off + 1);
        let echo = if v6 {
            matches!(t, 128 | 129)
        } else {
            matches!(t, 0 | 8)
        };
        if echo {
            self.r.icmp_id = self.u16_at(off + 4);
            self.r.icmp_seq = self.u16_at(off + 6);
        }
        let need = if echo { 8 } else { 4 };
        if self.avail(off) < need {
            self.cut(self.r.protocol, need, off);
        }
    }

    /// GRE (RFC 2784/2890) and enhanced GRE (PPTP, version 1).
    fn gre(&mut self, off: usize, end: usize) {
        self.r.protocol = "GRE";
        let (Some(flags), Some(ptype)) = (self.u16_at(off), self.u16_at(off + 2)) else {
            self.cut("GRE", 4, off);
            return;
        };
        if flags & 0x4000 != 0 {
            // Source routing present (RFC 1701): not decoded.
            return;
        }
        let version = flags & 0x7;
        let mut hlen = 4usize;
        if flags & 0x8000 != 0 {
            hlen += 4; // checksum + reserved
        }
        if flags & 0x2000 != 0 {
            hlen += 4; // key (v1: payload length + call id)
        }
        if flags & 0x1000 != 0 {
            hlen += 4; // sequence number
        }
        if version == 1 && flags & 0x0080 != 0 {
            hlen += 4; // acknowledgment number
        }
        if self.avail(off) < hlen {
            self.cut("GRE", hlen, off);
            return;
        }
        let inner = off + hlen;
        if self.avail(inner) == 0 || !self.enter() {
            return;
        }
        match ptype {
            0x880b => self.ppp(inner, end, false),
            0x0800 => self.ip(inner, end, IpHint::V4),
            0x86dd => self.ip(inner, end, IpHint::V6),
            0x6558 => self.ethernet(inner, end),
            _ => {}
        }
    }
}

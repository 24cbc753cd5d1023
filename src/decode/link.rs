//! Link layers: the header of each supported link type ([`decode`](super::decode)
//! dispatches here), Ethernet and the ethertypes after it (VLAN and VN-tags, MPLS,
//! PPPoE), IEEE 802.2 LLC/SNAP, PPP, Linux cooked captures, NFLOG, radiotap/802.11,
//! FDDI and IP over InfiniBand. The first link header sets `src_mac`/`dst_mac`; an
//! ethertype is recorded only until an IP header has been seen.

use super::{Cx, IpHint, MAX_DEPTH};

impl Cx<'_> {
    pub(super) fn ethernet(&mut self, off: usize, end: usize) {
        self.r.protocol = "Ethernet";
        if self.avail(off) < 14 {
            self.r.truncated = true;
            let have = self.avail(off);
            self.error(|| format!("frame too short for Ethernet ({have} bytes)"));
            return;
        }
        let dst = self.mac_at(off);
        let src = self.mac_at(off + 6);
        self.link_addrs(src, dst);
        let t = self.u16_at(off + 12).unwrap_or(0);
        if t <= 1500 {
            // IEEE 802.3 length field: LLC follows, bounded by the length.
            let llc_end = end.min(off + 14 + usize::from(t));
            self.llc(off + 14, llc_end);
        } else {
            self.ethertype(t, off + 14, end);
        }
    }

    fn ethertype(&mut self, t: u16, off: usize, end: usize) {
        if !self.enter() {
            return;
        }
        self.set_ether_type(t);
        match t {
            0x8100 | 0x88a8 | 0x9100 | 0x9200 => {
                self.r.protocol = "802.1Q";
                let (Some(tci), Some(next)) = (self.u16_at(off), self.u16_at(off + 2)) else {
                    self.cut("VLAN", 4, off);
                    return;
                };
                if self.r.vlan.is_none() && self.r.ip_version.is_none() {
                    self.r.vlan = Some(tci & 0x0fff);
                }
                self.ethertype(next, off + 4, end);
            }
            0x8926 => {
                self.r.protocol = "VNTag";
                let Some(next) = self.u16_at(off + 4) else {
                    self.cut("VN-Tag", 6, off);
                    return;
                };
                self.ethertype(next, off + 6, end);
            }
            0x0800 => self.ip(off, end, IpHint::V4),
            0x86dd => self.ip(off, end, IpHint::V6),
            0x0806 | 0x8035 => self.arp(off, t == 0x8035),
            0x8847 | 0x8848 => self.mpls(off, end),
            0x8863 => self.r.protocol = "PPPoED",
            0x8864 => self.pppoe_session(off, end),
            0x6558 => self.ethernet(off, end),
            0x88cc => self.r.protocol = "LLDP",
            0x888e => self.r.protocol = "EAPOL",
            0x88e5 => self.r.protocol = "MACsec",
            0x88f7 => self.r.protocol = "PTPv2",
            0x0842 => self.r.protocol = "WOL",
            0x893a => self.r.protocol = "IEEE1905",
            0x8137 => self.r.protocol = "IPX",
            0x809b => self.r.protocol = "DDP",
            _ => self.r.protocol = "Ethernet",
        }
    }

    /// IEEE 802.2 LLC (and SNAP) from `off`.
    fn llc(&mut self, off: usize, end: usize) {
        self.r.protocol = "LLC";
        if self.u16_at(off) == Some(0xffff) {
            // Novell "raw" 802.3: IPX without LLC.
            self.r.protocol = "IPX";
            return;
        }
        let (Some(dsap), Some(ssap), Some(ctrl)) =
            (self.u8_at(off), self.u8_at(off + 1), self.u8_at(off + 2))
        else {
            self.cut("LLC", 3, off);
            return;
        };
        if dsap == 0xaa && ssap == 0xaa && ctrl == 0x03 {
            let (Some(oui_hi), Some(oui_lo), Some(pid)) = (
                self.u8_at(off + 3),
                self.u16_at(off + 4),
                self.u16_at(off + 6),
            ) else {
                self.cut("SNAP", 8, off);
                return;
            };
            if oui_hi == 0 && (oui_lo == 0 || oui_lo == 0x00f8) {
                self.ethertype(pid, off + 8, end);
            }
            return;
        }
        self.r.protocol = match dsap {
            0x42 => "STP",
            0xe0 => "IPX",
            0xf0 => "NetBIOS",
            0xfe => "OSI",
            _ => "LLC",
        };
    }

    fn mpls(&mut self, mut off: usize, end: usize) {
        self.r.protocol = "MPLS";
        for _ in 0..MAX_DEPTH {
            let Some(entry) = self.u32_at(off) else {
                self.cut("MPLS", 4, off);
                return;
            };
            off += 4;
            if entry & 0x100 != 0 {
                // Bottom of stack: tshark guesses the payload from the first nibble.
                match self.u8_at(off).map(|b| b >> 4) {
                    Some(4) => self.ip(off, end, IpHint::Any),
                    Some(6) => self.ip(off, end, IpHint::Any),
                    _ => {}
                }
                return;
            }
        }
        self.error(|| "MPLS label stack too deep".to_string());
    }

    fn pppoe_session(&mut self, off: usize, end: usize) {
        self.r.protocol = "PPPoES";
        let Some(len) = self.u16_at(off + 4) else {
            self.cut("PPPoE", 6, off);
            return;
        };
        let end = end.min(off + 6 + usize::from(len));
        self.ppp(off + 6, end, false);
    }

    /// PPP from `off`: optional address/control (0xff 0x03), protocol (1 byte when
    /// compressed).
    pub(super) fn ppp(&mut self, off: usize, end: usize, link: bool) {
        self.r.protocol = "PPP";
        let mut o = off;
        if link && self.u8_at(o) == Some(0xff) {
            o += 2; // address and control (tshark does not check the control byte)
        } else if !link && self.u16_at(o) == Some(0xff03) {
            o += 2;
        }
        let Some(first) = self.u8_at(o) else {
            self.cut("PPP", o + 2 - off, off);
            return;
        };
        let proto = if first & 1 == 1 {
            o += 1;
            u16::from(first)
        } else {
            let Some(p) = self.u16_at(o) else {
                self.cut("PPP", o + 2 - off, off);
                return;
            };
            o += 2;
            p
        };
        match proto {
            0x0021 => {
                if link {
                    self.set_ether_type(0x0800);
                }
                self.ip(o, end, IpHint::V4);
            }
            0x0057 => {
                if link {
                    self.set_ether_type(0x86dd);
                }
                self.ip(o, end, IpHint::V6);
            }
            0xc021 => self.r.protocol = "PPP LCP",
            0x8021 => self.r.protocol = "PPP IPCP",
            0x8057 => self.r.protocol = "PPP IPV6CP",
            0xc023 => self.r.protocol = "PPP PAP",
            0xc223 => self.r.protocol = "PPP CHAP",
            0x80fd => self.r.protocol = "PPP CCP",
            0x00fd => self.r.protocol = "PPP Comp",
            _ => {}
        }
    }

    /// BSD loopback: a 4-byte address family (host byte order for NULL, big-endian for
    /// LOOP).
    pub(super) fn null(&mut self, end: usize, big_endian: bool) {
        self.r.protocol = "NULL";
        let Some(b) = self.d.get(0..4) else {
            self.cut("loopback", 4, 0);
            return;
        };
        if !big_endian && b[0] == 0xff && b[1] == 0x03 {
            // PPP-over-loopback oddity tshark also accepts.
            self.ppp(0, end, true);
            return;
        }
        let family = if big_endian {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            // tshark: if the upper 16 bits are not zero the value is byte-swapped.
            let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if le & 0xffff_0000 != 0 {
                le.swap_bytes()
            } else {
                le
            }
        };
        match family {
            2 => {
                self.set_ether_type(0x0800);
                self.ip(4, end, IpHint::V4);
            }
            24 | 28 | 30 => {
                self.set_ether_type(0x86dd);
                self.ip(4, end, IpHint::V6);
            }
            f if f > 1500 => {
                // Some systems put an ethertype there.
                self.ethertype(u16::try_from(f).unwrap_or(0), 4, end);
            }
            f => self.error(|| format!("unknown loopback address family {f}")),
        }
    }

    /// Raw IP link types (no link header).
    pub(super) fn raw(&mut self, off: usize, end: usize, hint: IpHint) {
        self.r.protocol = "Raw";
        match self.u8_at(off).map(|b| b >> 4) {
            Some(4) if hint != IpHint::V6 => self.set_ether_type(0x0800),
            Some(6) => self.set_ether_type(0x86dd),
            _ => {}
        }
        self.ip(off, end, hint);
    }

    /// Linux cooked capture v1: 16-byte header.
    pub(super) fn sll(&mut self, end: usize) {
        self.r.protocol = "SLL";
        let (Some(hatype), Some(halen), Some(proto)) =
            (self.u16_at(2), self.u16_at(4), self.u16_at(14))
        else {
            self.cut("Linux cooked (SLL)", 16, 0);
            return;
        };
        let src = if halen == 6 { self.mac_at(6) } else { None };
        self.link_addrs(src, None);
        self.sll_payload(hatype, proto, 16, end);
    }

    /// Linux cooked capture v2: 20-byte header.
    pub(super) fn sll2(&mut self, end: usize) {
        self.r.protocol = "SLL";
        let (Some(proto), Some(hatype), Some(halen)) =
            (self.u16_at(0), self.u16_at(8), self.u8_at(11))
        else {
            self.cut("Linux cooked (SLL2)", 20, 0);
            return;
        };
        if self.avail(0) < 20 {
            self.cut("Linux cooked (SLL2)", 20, 0);
            return;
        }
        let src = if halen == 6 { self.mac_at(12) } else { None };
        self.link_addrs(src, None);
        self.sll_payload(hatype, proto, 20, end);
    }

    fn sll_payload(&mut self, hatype: u16, proto: u16, off: usize, end: usize) {
        // For ARPHRD_IPGRE (778) the protocol is a GRE payload type: ethertype values.
        const ARPHRD_NETLINK: u16 = 824;
        match (hatype, proto) {
            (ARPHRD_NETLINK, _) => self.r.protocol = "Netlink",
            (_, 0x0004) => self.llc(off, end),
            (_, 0x0001) => self.r.protocol = "IPX",
            (_, p) if p > 1500 => self.ethertype(p, off, end),
            _ => {}
        }
    }

    /// Linux NFLOG: 4-byte header then TLVs (host byte order); payload is TLV type 9.
    pub(super) fn nflog(&mut self, end: usize) {
        self.r.protocol = "NFLOG";
        let Some(family) = self.u8_at(0) else {
            self.cut("NFLOG", 4, 0);
            return;
        };
        let mut off = 4usize;
        let mut little: Option<bool> = None;
        let mut hw_proto: Option<u16> = None;
        while let (Some(a), Some(b)) = (self.d.get(off..off + 2), self.d.get(off + 2..off + 4)) {
            let le = *little.get_or_insert_with(|| {
                let le = u16::from_le_bytes([a[0], a[1]]);
                let be = u16::from_be_bytes([a[0], a[1]]);
                le <= be
            });
            let rd = |x: &[u8]| {
                if le {
                    u16::from_le_bytes([x[0], x[1]])
                } else {
                    u16::from_be_bytes([x[0], x[1]])
                }
            };
            let len = usize::from(rd(a));
            let typ = rd(b) & 0x7fff;
            if len < 4 {
                self.error(|| format!("NFLOG TLV length {len} is too short"));
                return;
            }
            let value = off + 4;
            let value_end = off + len;
            match typ {
                1 => hw_proto = self.u16_at(value),
                9 => {
                    let end = end.min(value_end);
                    match family {
                        2 => {
                            self.set_ether_type(0x0800);
                            self.ip(value, end, IpHint::V4);
                        }
                        10 => {
                            self.set_ether_type(0x86dd);
                            self.ip(value, end, IpHint::V6);
                        }
                        _ => match hw_proto {
                            Some(p) if p > 1500 => self.ethertype(p, value, end),
                            _ => self.error(|| format!("NFLOG family {family} not decoded")),
                        },
                    }
                    return;
                }
                _ => {}
            }
            // TLVs are padded to 4 bytes.
            off = off.saturating_add(len.saturating_add(3) & !3);
        }
        if self.avail(off) > 0 {
            self.cut("NFLOG TLV", 4, off);
        }
    }

    /// Radiotap + IEEE 802.11: data frames with LLC/SNAP are decoded further.
    pub(super) fn radiotap(&mut self, end: usize) {
        self.r.protocol = "802.11";
        let Some(b) = self.d.get(2..4) else {
            self.cut("radiotap", 8, 0);
            return;
        };
        let rt_len = usize::from(u16::from_le_bytes([b[0], b[1]]));
        if rt_len < 8 {
            self.error(|| format!("radiotap length {rt_len} is too short"));
            return;
        }
        self.ieee80211(rt_len, end);
    }

    fn ieee80211(&mut self, off: usize, end: usize) {
        let (Some(fc0), Some(fc1)) = (self.u8_at(off), self.u8_at(off + 1)) else {
            self.cut("802.11", 10, off);
            return;
        };
        let ftype = (fc0 >> 2) & 3;
        let subtype = fc0 >> 4;
        let to_ds = fc1 & 0x01 != 0;
        let from_ds = fc1 & 0x02 != 0;
        let a1 = self.mac_at(off + 4);
        let a2 = self.mac_at(off + 10);
        let a3 = self.mac_at(off + 16);
        match ftype {
            0 => self.link_addrs(a2, a1),
            1 => {
                // Control frames: RA, and TA for those that carry one.
                let ta = matches!(subtype, 8 | 9 | 10 | 11 | 14 | 15)
                    .then_some(a2)
                    .flatten();
                self.link_addrs(ta, a1);
            }
            2 => {
                let a4 = self.mac_at(off + 24);
                let (sa, da) = match (to_ds, from_ds) {
                    (false, false) => (a2, a1),
                    (true, false) => (a2, a3),
                    (false, true) => (a3, a1),
                    (true, true) => (a4, a3),
                };
                self.link_addrs(sa, da);
                let mut hdr = 24usize;
                if to_ds && from_ds {
                    hdr += 6;
                }
                let qos = subtype & 0x8 != 0;
                if qos {
                    hdr += 2;
                    if fc1 & 0x80 != 0 {
                        hdr += 4; // HT control
                    }
                }
                if self.avail(off) < hdr {
                    self.cut("802.11", hdr, off);
                    return;
                }
                if fc1 & 0x40 != 0 || subtype & 0x4 != 0 {
                    // Protected (encrypted) or no data.
                    return;
                }
                if qos && self.u8_at(off + hdr - 2).is_some_and(|q| q & 0x80 != 0) {
                    // A-MSDU: not decoded further.
                    return;
                }
                self.llc(off + hdr, end);
            }
            _ => {}
        }
    }

    /// FDDI: frame control, destination, source (bit-swapped as tshark shows them), LLC.
    pub(super) fn fddi(&mut self, end: usize) {
        self.r.protocol = "FDDI";
        let (Some(fc), Some(dst), Some(src)) = (self.u8_at(0), self.mac_at(1), self.mac_at(7))
        else {
            self.cut("FDDI", 13, 0);
            return;
        };
        let swap = |m: [u8; 6]| m.map(u8::reverse_bits);
        self.link_addrs(Some(swap(src)), Some(swap(dst)));
        if fc & 0x30 == 0x10 {
            self.llc(13, end);
        }
    }

    /// IP over InfiniBand (libpcap's 44-byte pseudo-header, type at offset 40).
    pub(super) fn ipoib(&mut self, end: usize) {
        self.r.protocol = "IPoIB";
        let Some(t) = self.u16_at(40) else {
            self.cut("IPoIB", 44, 0);
            return;
        };
        if self.avail(0) < 44 {
            self.cut("IPoIB", 44, 0);
            return;
        }
        self.ethertype(t, 44, end);
    }
}

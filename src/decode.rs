//! Frame decoding: captured bytes of one frame to a flat [`PacketRecord`].
//!
//! [`decode`] is pure (no I/O, no state), never panics, and allocates only for
//! `decode_error` texts on error paths. It walks the layers itself, with tshark's
//! rules (so the record matches what `tshark -n` shows for the same frame), and uses
//! `etherparse` header slices where they fit (IPv6 extension headers).
//!
//! tshark rules followed here:
//! - lengths come from the headers, bounded by the frame's length on the wire (not by
//!   the captured length), so snaplen-cut frames keep their `Len=`;
//! - a layer cut short still yields the fields it holds (ports of a TCP header cut
//!   after 4 bytes); `truncated` is set;
//! - Source/Destination are the innermost IP addresses (IP-in-IP, 6in4, GRE), else the
//!   link-layer addresses; the TTL is the first (outermost) IP header's;
//! - IPv4/IPv6 fragments are decoded per frame: the first fragment's transport header
//!   is read, later fragments have no ports (tshark with reassembly off);
//! - ICMP/ICMPv6 errors keep the outer addresses and the quoted packet is not decoded.
//!
//! [`info`] and [`Addr`]'s `Display` are the presentation helpers of the CSV writer;
//! [`TcpSeqTracker`] computes tshark's relative TCP sequence numbers.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::linktype::LinkType;

#[path = "decode/present.rs"]
mod present;
#[path = "decode/tcpseq.rs"]
mod tcpseq;

pub use present::{info, info_with_ack};
pub use tcpseq::TcpSeqTracker;

/// Per-frame facts from the capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    /// 1-based frame number.
    pub frame: u64,
    pub ts_ns: i64,
    pub interface: u32,
    pub wire_len: u32,
}

/// A network or link-layer address as tshark shows it in its Source/Destination columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Addr {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    Mac([u8; 6]),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::V4(a) => write!(f, "{a}"),
            Addr::V6(a) => present::fmt_ipv6(f, a),
            Addr::Mac(m) => present::fmt_mac(f, m),
        }
    }
}

/// One decoded frame, flat.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketRecord {
    pub frame: u64,
    pub ts_ns: i64,
    pub interface: u32,
    pub wire_len: u32,
    pub cap_len: u32,
    pub link: LinkType,
    /// Link-layer addresses of the outermost link header (Ethernet, SLL source, FDDI,
    /// 802.11 SA/DA).
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Outermost VLAN id (QinQ: the outer tag).
    pub vlan: Option<u16>,
    /// The ethertype after VLAN/VN-tags (or mapped from SLL/SLL2/NULL/PPP/raw IP).
    pub ether_type: Option<u16>,
    /// Version of the outermost IP header (the one `ttl` comes from).
    pub ip_version: Option<u8>,
    /// tshark's Source/Destination columns: innermost IP addresses, else link addresses.
    pub src: Option<Addr>,
    pub dst: Option<Addr>,
    /// TTL / hop limit of the outermost IP header (tshark's first `ip.ttl`/`ipv6.hlim`).
    pub ttl: Option<u8>,
    /// Upper-layer protocol number of the innermost IP header, after IPv6 extension
    /// headers and AH.
    pub ip_proto: Option<u8>,
    /// Transport/network protocol name as tshark names it ("TCP", "ARP", "IPv4", ...).
    pub protocol: &'static str,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// TCP flags, low 8 bits (CWR..FIN).
    pub tcp_flags: Option<u8>,
    /// Absolute sequence number as on the wire.
    pub tcp_seq: Option<u32>,
    pub tcp_ack: Option<u32>,
    /// Window field as on the wire (not scaled).
    pub tcp_window: Option<u16>,
    /// TCP/UDP payload length as the headers imply (tshark's `Len=`). None where tshark
    /// cannot know it (TCP in a first IP fragment, TCP header longer than the segment,
    /// bogus UDP length).
    pub payload_len: Option<u32>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    /// Echo request/reply identifier and sequence number (ICMP and ICMPv6).
    pub icmp_id: Option<u16>,
    pub icmp_seq: Option<u16>,
    pub arp_op: Option<u16>,
    pub arp_sender_ip: Option<Ipv4Addr>,
    pub arp_target_ip: Option<Ipv4Addr>,
    pub arp_sender_mac: Option<[u8; 6]>,
    pub arp_target_mac: Option<[u8; 6]>,
    /// IPv4 MF set or offset != 0, or an IPv6 fragment header present (any IP layer).
    pub fragment: bool,
    /// Captured shorter than on the wire, or a layer was cut short.
    pub truncated: bool,
    /// Why decoding stopped early, if it did.
    pub decode_error: Option<String>,
}

impl PacketRecord {
    fn frame_only(meta: FrameMeta, cap_len: u32, link: LinkType) -> Self {
        PacketRecord {
            frame: meta.frame,
            ts_ns: meta.ts_ns,
            interface: meta.interface,
            wire_len: meta.wire_len,
            cap_len,
            link,
            src_mac: None,
            dst_mac: None,
            vlan: None,
            ether_type: None,
            ip_version: None,
            src: None,
            dst: None,
            ttl: None,
            ip_proto: None,
            protocol: "Undecoded",
            src_port: None,
            dst_port: None,
            tcp_flags: None,
            tcp_seq: None,
            tcp_ack: None,
            tcp_window: None,
            payload_len: None,
            icmp_type: None,
            icmp_code: None,
            icmp_id: None,
            icmp_seq: None,
            arp_op: None,
            arp_sender_ip: None,
            arp_target_ip: None,
            arp_sender_mac: None,
            arp_target_mac: None,
            fragment: false,
            truncated: meta.wire_len > cap_len,
            decode_error: None,
        }
    }
}

/// PPP serial (PPP in HDLC-like framing): decoded like [`LinkType::PPP`].
const LINKTYPE_PPP_SERIAL: LinkType = LinkType(50);
/// FDDI (addresses bit-swapped, as tshark shows them for this link type).
const LINKTYPE_FDDI: LinkType = LinkType(10);
/// IP over InfiniBand with libpcap's 44-byte pseudo-header.
const LINKTYPE_IPOIB: LinkType = LinkType(242);

/// Link types [`decode`] understands; others become frame-level records with
/// `decode_error` "unsupported link type N" and protocol "Undecoded".
#[must_use]
pub fn is_supported_link(link: LinkType) -> bool {
    matches!(
        link,
        LinkType::NULL
            | LinkType::ETHERNET
            | LinkType::PPP
            | LinkType::RAW
            | LinkType::RAW_BSD12
            | LinkType::RAW_BSD14
            | LinkType::LOOP
            | LinkType::LINUX_SLL
            | LinkType::IEEE802_11_RADIOTAP
            | LinkType::IPV4
            | LinkType::IPV6
            | LinkType::NFLOG
            | LinkType::LINUX_SLL2
            | LINKTYPE_PPP_SERIAL
            | LINKTYPE_FDDI
            | LINKTYPE_IPOIB
    )
}

/// Decodes one frame. Pure: never panics, no I/O; allocates only for `decode_error`.
#[must_use]
pub fn decode(meta: FrameMeta, data: &[u8], link: LinkType) -> PacketRecord {
    let cap_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut cx = Cx {
        d: data,
        r: PacketRecord::frame_only(meta, cap_len, link),
        depth: 0,
    };
    // tshark's reported length: the frame's length on the wire (never less than captured).
    let end = usize::try_from(meta.wire_len)
        .unwrap_or(usize::MAX)
        .max(data.len());
    match link {
        LinkType::ETHERNET => cx.ethernet(0, end),
        LinkType::NULL => cx.null(end, false),
        LinkType::LOOP => cx.null(end, true),
        LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => cx.raw(0, end, IpHint::Any),
        LinkType::IPV4 => cx.raw(0, end, IpHint::V4),
        LinkType::IPV6 => cx.raw(0, end, IpHint::V6),
        LinkType::PPP | LINKTYPE_PPP_SERIAL => cx.ppp(0, end, true),
        LinkType::LINUX_SLL => cx.sll(end),
        LinkType::LINUX_SLL2 => cx.sll2(end),
        LinkType::NFLOG => cx.nflog(end),
        LinkType::IEEE802_11_RADIOTAP => cx.radiotap(end),
        LINKTYPE_FDDI => cx.fddi(end),
        LINKTYPE_IPOIB => cx.ipoib(end),
        LinkType(n) => {
            cx.r.decode_error = Some(format!("unsupported link type {n}"));
        }
    }
    cx.r
}

/// Which IP dissector a link layer hands to (as tshark's "ip", "ipv6", "raw").
#[derive(Clone, Copy, PartialEq, Eq)]
enum IpHint {
    /// IPv4 expected, IPv6 accepted (tshark's "ip" dissector).
    V4,
    /// IPv6 only; another version is bogus.
    V6,
    /// Either, by the version nibble.
    Any,
}

/// Nesting limit for encapsulations (VLAN stacks, tunnels).
const MAX_DEPTH: u8 = 16;

struct Cx<'a> {
    d: &'a [u8],
    r: PacketRecord,
    depth: u8,
}

impl Cx<'_> {
    fn u8_at(&self, off: usize) -> Option<u8> {
        self.d.get(off).copied()
    }

    fn u16_at(&self, off: usize) -> Option<u16> {
        let b = self.d.get(off..off.checked_add(2)?)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32_at(&self, off: usize) -> Option<u32> {
        let b = self.d.get(off..off.checked_add(4)?)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn mac_at(&self, off: usize) -> Option<[u8; 6]> {
        let b = self.d.get(off..off.checked_add(6)?)?;
        let mut m = [0u8; 6];
        m.copy_from_slice(b);
        Some(m)
    }

    fn v4_at(&self, off: usize) -> Option<Ipv4Addr> {
        self.u32_at(off).map(Ipv4Addr::from)
    }

    fn v6_at(&self, off: usize) -> Option<Ipv6Addr> {
        let b = self.d.get(off..off.checked_add(16)?)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Some(Ipv6Addr::from(a))
    }

    /// Captured bytes from `off` (0 past the end).
    fn avail(&self, off: usize) -> usize {
        self.d.len().saturating_sub(off)
    }

    /// Records a layer cut short by the capture.
    fn cut(&mut self, layer: &str, need: usize, off: usize) {
        self.r.truncated = true;
        if self.r.decode_error.is_none() {
            let have = self.avail(off);
            self.r.decode_error = Some(format!(
                "{layer} header cut short ({have} of {need} bytes captured)"
            ));
        }
    }

    fn error(&mut self, msg: impl FnOnce() -> String) {
        if self.r.decode_error.is_none() {
            self.r.decode_error = Some(msg());
        }
    }

    /// Enters one more encapsulation level; false (with an error) past [`MAX_DEPTH`].
    fn enter(&mut self) -> bool {
        if self.depth >= MAX_DEPTH {
            self.error(|| "too many nested encapsulations".to_string());
            return false;
        }
        self.depth += 1;
        true
    }

    /// Link-layer addresses: the first link header fills `src_mac`/`dst_mac`; every link
    /// header sets the columns (an inner IP header overrides them).
    fn link_addrs(&mut self, src: Option<[u8; 6]>, dst: Option<[u8; 6]>) {
        if self.r.src_mac.is_none() && self.r.dst_mac.is_none() {
            self.r.src_mac = src;
            self.r.dst_mac = dst;
        }
        self.r.src = src.map(Addr::Mac);
        self.r.dst = dst.map(Addr::Mac);
    }

    /// Ethertype of the link layer, only while no IP header has been seen (an ethertype
    /// inside a tunnel does not replace it).
    fn set_ether_type(&mut self, t: u16) {
        if self.r.ip_version.is_none() {
            self.r.ether_type = Some(t);
        }
    }

    // ---------------------------------------------------------------- link layers

    fn ethernet(&mut self, off: usize, end: usize) {
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
    fn ppp(&mut self, off: usize, end: usize, link: bool) {
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
    fn null(&mut self, end: usize, big_endian: bool) {
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
    fn raw(&mut self, off: usize, end: usize, hint: IpHint) {
        self.r.protocol = "Raw";
        match self.u8_at(off).map(|b| b >> 4) {
            Some(4) if hint != IpHint::V6 => self.set_ether_type(0x0800),
            Some(6) => self.set_ether_type(0x86dd),
            _ => {}
        }
        self.ip(off, end, hint);
    }

    /// Linux cooked capture v1: 16-byte header.
    fn sll(&mut self, end: usize) {
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
    fn sll2(&mut self, end: usize) {
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
    fn nflog(&mut self, end: usize) {
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
    fn radiotap(&mut self, end: usize) {
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
    fn fddi(&mut self, end: usize) {
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
    fn ipoib(&mut self, end: usize) {
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

    // ---------------------------------------------------------------- network layer

    fn arp(&mut self, off: usize, rarp: bool) {
        self.r.protocol = if rarp { "RARP" } else { "ARP" };
        let (Some(ptype), Some(hlen), Some(plen), Some(op)) = (
            self.u16_at(off + 2),
            self.u8_at(off + 4),
            self.u8_at(off + 5),
            self.u16_at(off + 6),
        ) else {
            self.cut("ARP", 8, off);
            return;
        };
        self.r.arp_op = Some(op);
        self.r.protocol = match op {
            3 | 4 => "RARP",
            8 | 9 => "InARP",
            _ if rarp => "RARP",
            _ => "ARP",
        };
        let (hl, pl) = (usize::from(hlen), usize::from(plen));
        let sha = off + 8;
        let spa = sha + hl;
        let tha = spa + pl;
        let tpa = tha + hl;
        if hl == 6 {
            self.r.arp_sender_mac = self.mac_at(sha);
            self.r.arp_target_mac = self.mac_at(tha);
        }
        if pl == 4 && ptype == 0x0800 {
            self.r.arp_sender_ip = self.v4_at(spa);
            self.r.arp_target_ip = self.v4_at(tpa);
        }
        if self.avail(off) < 8 + 2 * (hl + pl) {
            self.cut("ARP", 8 + 2 * (hl + pl), off);
        }
    }

    fn ip(&mut self, off: usize, end: usize, hint: IpHint) {
        let Some(b0) = self.u8_at(off) else {
            self.r.protocol = if hint == IpHint::V6 { "IPv6" } else { "IPv4" };
            self.cut("IP", 20, off);
            return;
        };
        match (b0 >> 4, hint) {
            (6, _) => self.ipv6(off, end),
            (4, IpHint::V4 | IpHint::Any) => self.ipv4(off, end),
            (v, IpHint::V6) => {
                self.r.protocol = "IPv6";
                self.error(|| format!("bogus IPv6 version ({v}, must be 6)"));
            }
            (v, _) => {
                if hint == IpHint::V4 {
                    self.r.protocol = "IPv4";
                }
                self.error(|| format!("bogus IP version ({v})"));
            }
        }
    }

    fn ipv4(&mut self, off: usize, end: usize) {
        if !self.enter() {
            return;
        }
        self.r.protocol = "IPv4";
        let b0 = self.u8_at(off).unwrap_or(0x45);
        let hlen = usize::from(b0 & 0x0f) * 4;
        if hlen < 20 {
            self.error(|| {
                format!("IPv4 header: bogus header length ({hlen}, must be at least 20)")
            });
            return;
        }
        let Some(total) = self.u16_at(off + 2) else {
            self.cut("IPv4", hlen, off);
            return;
        };
        let total = usize::from(total);
        let rep = end.saturating_sub(off);
        let ip_end = if total == 0 {
            // TSO: tshark takes the reported length.
            end
        } else if total < hlen {
            self.error(|| {
                format!("IPv4 header: bogus total length ({total}, less than header length {hlen})")
            });
            return;
        } else if total > rep {
            end
        } else {
            off + total
        };
        let outer = self.r.ip_version.is_none();
        if outer {
            self.r.ip_version = Some(4);
        }
        let frag = self.u16_at(off + 6);
        if let Some(ttl) = self.u8_at(off + 8)
            && outer
        {
            self.r.ttl = Some(ttl);
        }
        let proto = self.u8_at(off + 9);
        let (src, dst) = (self.v4_at(off + 12), self.v4_at(off + 16));
        if let Some(s) = src {
            self.r.src = Some(Addr::V4(s));
        }
        if let Some(d) = dst {
            self.r.dst = Some(Addr::V4(d));
        }
        self.r.ip_proto = proto;
        if self.avail(off) < hlen {
            self.cut("IPv4", hlen, off);
            return;
        }
        let (Some(frag), Some(proto)) = (frag, proto) else {
            return;
        };
        let more = frag & 0x2000 != 0;
        let offset = frag & 0x1fff;
        if more || offset != 0 {
            self.r.fragment = true;
        }
        if offset != 0 {
            // Not the first fragment: nothing above IP.
            return;
        }
        self.transport(proto, off + hlen, ip_end, more);
    }

    fn ipv6(&mut self, off: usize, end: usize) {
        use etherparse::{IpAuthHeaderSlice, Ipv6FragmentHeaderSlice, Ipv6RawExtHeaderSlice};
        if !self.enter() {
            return;
        }
        self.r.protocol = "IPv6";
        let outer = self.r.ip_version.is_none();
        if outer {
            self.r.ip_version = Some(6);
        }
        if let Some(h) = self.u8_at(off + 7)
            && outer
        {
            self.r.ttl = Some(h);
        }
        if let Some(s) = self.v6_at(off + 8) {
            self.r.src = Some(Addr::V6(s));
        }
        if let Some(d) = self.v6_at(off + 24) {
            self.r.dst = Some(Addr::V6(d));
        }
        let (Some(plen), Some(mut next)) = (self.u16_at(off + 4), self.u8_at(off + 6)) else {
            self.cut("IPv6", 40, off);
            return;
        };
        self.r.ip_proto = Some(next);
        if self.avail(off) < 40 {
            self.cut("IPv6", 40, off);
            return;
        }
        let ip_end = if plen == 0 {
            end
        } else {
            end.min(off + 40 + usize::from(plen))
        };
        // Extension headers, with etherparse's header slices; stop as tshark does after a
        // fragment header of a non-first fragment.
        let mut o = off + 40;
        let mut more_frags = false;
        loop {
            let rest = self
                .d
                .get(o..self.d.len().min(ip_end).max(o))
                .unwrap_or(&[]);
            let (len, nh) = match next {
                0 | 43 | 60 => match Ipv6RawExtHeaderSlice::from_slice(rest) {
                    Ok(h) => (h.slice().len(), h.next_header().0),
                    Err(_) => {
                        self.r.ip_proto = Some(next);
                        self.cut("IPv6 extension", 8, o);
                        return;
                    }
                },
                44 => match Ipv6FragmentHeaderSlice::from_slice(rest) {
                    Ok(h) => {
                        self.r.fragment = true;
                        let first = h.fragment_offset().value() == 0;
                        more_frags = h.more_fragments();
                        if !first {
                            self.r.ip_proto = Some(h.next_header().0);
                            return;
                        }
                        (h.slice().len(), h.next_header().0)
                    }
                    Err(_) => {
                        self.r.ip_proto = Some(next);
                        self.cut("IPv6 fragment", 8, o);
                        return;
                    }
                },
                51 => match IpAuthHeaderSlice::from_slice(rest) {
                    Ok(h) => (h.slice().len(), h.next_header().0),
                    Err(_) => {
                        self.r.ip_proto = Some(next);
                        self.cut("IPv6 authentication", 12, o);
                        return;
                    }
                },
                _ => break,
            };
            o += len;
            next = nh;
            self.r.ip_proto = Some(next);
        }
        self.transport(next, o, ip_end, more_frags);
    }

    /// The layer above IP. `end` is the reported end of the IP payload; `fragmented`:
    /// this is the first of several fragments (its length says nothing of the
    /// transport segment's).
    fn transport(&mut self, proto: u8, off: usize, end: usize, fragmented: bool) {
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
        }
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

#[cfg(test)]
#[path = "decode/tests.rs"]
mod tests;

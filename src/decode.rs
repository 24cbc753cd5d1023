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
//! - ICMP/ICMPv6 errors keep the outer addresses and the quoted packet is not decoded;
//! - Teredo (IPv6 in UDP, RFC 4380) is decoded where tshark's UDP dissector picks it:
//!   one port is 3544 and the other is not a well-known port (below 1024; tshark tries
//!   the lower port's dissector first), and the payload, after Teredo's optional
//!   authentication and origin indications, starts with an IPv6 header (tshark would
//!   show any other payload as a bogus IPv6 packet; it stays plain UDP here). The record
//!   then shows the inner IPv6 packet: its addresses, protocol, ports and ICMPv6 type;
//!   `ip_version` and the TTL stay the outer IPv4 header's.
//!
//! [`info`] and [`Addr`]'s `Display` are the presentation helpers of the CSV writer;
//! [`TcpSeqTracker`] computes tshark's relative TCP sequence numbers.
//!
//! Layout: this file holds the record types, [`decode`] (which picks the link layer)
//! and `Cx`, the walk's state with its bounds-checked readers; the layers are methods
//! of `Cx` in `link` (link-layer headers, ethertypes, LLC, PPP), `network` (ARP, IPv4,
//! IPv6 with its extension headers) and `transport` (TCP, UDP, ICMP, tunnels).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::linktype::LinkType;

// The submodules are named by path so that the fuzz crate, which includes this file
// by path, finds them too.
#[path = "decode/link.rs"]
mod link;
#[path = "decode/network.rs"]
mod network;
#[path = "decode/present.rs"]
mod present;
#[path = "decode/tcpseq.rs"]
mod tcpseq;
#[path = "decode/transport.rs"]
mod transport;

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
    /// Ports of the innermost transport header (a tunnel's inner packet replaces the
    /// outer UDP ports of Teredo).
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
    /// Where the TCP/UDP payload starts in the captured bytes (the innermost transport
    /// header's end), when the whole header was captured. The payload captured is
    /// `data[payload_off..]` up to `payload_len` bytes.
    pub payload_off: Option<u32>,
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
            payload_off: None,
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
}

#[cfg(test)]
#[path = "decode/tests.rs"]
mod tests;

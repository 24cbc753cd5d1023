//! Passive names from packets: what a home network's devices call themselves and the
//! names of the services they talk to, read from traffic already captured. Nothing here
//! sends a packet.
//!
//! [`Extractor::packet`] takes one transport payload with its addresses ([`Packet`]) and
//! appends the [`Name`]s it carries. Every name is hostile input (it comes from a LAN
//! device or a DNS server on the internet): [`sanitize::name`] removes control and
//! bidirectional-override characters, replaces invalid UTF-8 and caps lengths before a
//! name leaves this crate. State (TLS ClientHellos over several segments, QUIC Initials
//! over several packets) is bounded: a fixed number of pending flows, each with a fixed
//! number of bytes.
//!
//! Sources, by module: `dns` (DNS answers, mDNS, LLMNR), `nbns` (NetBIOS name service),
//! `dhcp` (DHCPv4 and DHCPv6), `ssdp` (SSDP/UPnP headers), `http` (HTTP Host), `tls`
//! (ClientHello SNI over TCP), `quic` (QUIC Initial SNI).

// Product code keeps its functions short (clippy's default: 100 lines); tests may
// spell out a long scenario.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

use std::net::IpAddr;

mod dhcp;
mod dns;
mod http;
mod nbns;
mod quic;
pub mod sanitize;
mod ssdp;
mod table;
mod tls;

/// What kind of name a [`Name`] is, and so where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// DHCPv4 option 12 (host name).
    DhcpHostname,
    /// DHCPv4 option 81 (client FQDN).
    DhcpFqdn,
    /// DHCPv4 option 60 (vendor class identifier).
    DhcpVendor,
    /// DHCPv4 option 61 (client identifier), as lower-case hex: links a randomised MAC
    /// to a device.
    DhcpClientId,
    /// DHCPv6 client FQDN (option 39).
    Dhcpv6Fqdn,
    /// An mDNS host name (`x.local`) with the address it announces.
    Mdns,
    /// An mDNS/DNS-SD service instance name (`Kitchen TV._googlecast._tcp.local`), as
    /// the instance label only.
    MdnsService,
    /// An mDNS TXT `fn=` (friendly name).
    MdnsFriendly,
    /// An mDNS TXT `md=` (model).
    MdnsModel,
    /// NetBIOS name service name.
    Nbns,
    /// LLMNR name.
    Llmnr,
    /// SSDP/UPnP `SERVER` header (a product description).
    Ssdp,
    /// A DNS answer: the name a client asked for and an address that came back (CNAME
    /// chains followed).
    DnsAnswer,
    /// TLS ClientHello server name over TCP.
    TlsSni,
    /// QUIC Initial ClientHello server name.
    QuicSni,
    /// HTTP/1.x Host header.
    HttpHost,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 16] = [
        Kind::DhcpHostname,
        Kind::DhcpFqdn,
        Kind::DhcpVendor,
        Kind::DhcpClientId,
        Kind::Dhcpv6Fqdn,
        Kind::Mdns,
        Kind::MdnsService,
        Kind::MdnsFriendly,
        Kind::MdnsModel,
        Kind::Nbns,
        Kind::Llmnr,
        Kind::Ssdp,
        Kind::DnsAnswer,
        Kind::TlsSni,
        Kind::QuicSni,
        Kind::HttpHost,
    ];

    /// The kind's name in names.parquet and summary.json.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DhcpHostname => "dhcp-hostname",
            Kind::DhcpFqdn => "dhcp-fqdn",
            Kind::DhcpVendor => "dhcp-vendor",
            Kind::DhcpClientId => "dhcp-client-id",
            Kind::Dhcpv6Fqdn => "dhcpv6-fqdn",
            Kind::Mdns => "mdns",
            Kind::MdnsService => "mdns-service",
            Kind::MdnsFriendly => "mdns-friendly",
            Kind::MdnsModel => "mdns-model",
            Kind::Nbns => "nbns",
            Kind::Llmnr => "llmnr",
            Kind::Ssdp => "ssdp",
            Kind::DnsAnswer => "dns-answer",
            Kind::TlsSni => "tls-sni",
            Kind::QuicSni => "quic-sni",
            Kind::HttpHost => "http-host",
        }
    }

    /// The kind named `s` (as [`Kind::as_str`] writes it).
    #[must_use]
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// True for the names a DHCP (v4 or v6) client sends: their `addr` is the address
    /// the server gave it.
    #[must_use]
    pub fn is_dhcp(self) -> bool {
        matches!(
            self,
            Kind::DhcpHostname
                | Kind::DhcpFqdn
                | Kind::DhcpVendor
                | Kind::DhcpClientId
                | Kind::Dhcpv6Fqdn
        )
    }

    /// True for names a device gives itself (device names), false for names of the
    /// remote services it talks to (DNS answers, SNI, HTTP Host).
    #[must_use]
    pub fn is_device_name(self) -> bool {
        !matches!(
            self,
            Kind::DnsAnswer | Kind::TlsSni | Kind::QuicSni | Kind::HttpHost
        )
    }
}

/// One name seen in one packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    pub kind: Kind,
    /// Sanitized ([`sanitize::name`]): no control or bidi characters, valid UTF-8,
    /// at most [`sanitize::MAX_NAME`] bytes. Never empty.
    pub name: String,
    /// The address the name names: a DNS answer's A/AAAA, the server of an SNI or Host,
    /// the address an mDNS/NBNS/LLMNR record announces, the address DHCP gave (yiaddr,
    /// requested address). None when the packet does not say.
    pub addr: Option<IpAddr>,
    /// The local device the name belongs to or was seen by: the client that asked (DNS
    /// answer: the response's destination; SNI/Host: the connection's source), the
    /// device that announced itself (mDNS, NBNS, LLMNR, SSDP: the source), DHCP's
    /// `chaddr`.
    pub client_mac: Option<[u8; 6]>,
    pub client_ip: Option<IpAddr>,
    /// Seconds the answer may be cached (DNS/mDNS/LLMNR/NBNS answers).
    pub ttl: Option<u32>,
}

/// The transport a payload came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP, with the segment's absolute sequence number and flags (low 8 bits).
    Tcp {
        seq: u32,
        flags: u8,
    },
    Udp,
}

/// One packet's transport payload and where it went.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub ts_ns: i64,
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
    /// The TCP/UDP payload as captured (it may be shorter than on the wire).
    pub payload: &'a [u8],
}

/// Reads names out of packets, one packet at a time, keeping only bounded state.
#[derive(Debug, Default)]
pub struct Extractor {
    tls: tls::Reassembly,
    quic: quic::Reassembly,
}

impl Extractor {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the names `p` carries to `out`. Never panics; malformed payloads add
    /// nothing. Cheap for packets that carry no name (a few comparisons).
    pub fn packet(&mut self, p: &Packet<'_>, out: &mut Vec<Name>) {
        if p.payload.is_empty() {
            return;
        }
        let port = |n: u16| p.src_port == n || p.dst_port == n;
        match p.transport {
            Transport::Udp => {
                if port(53) || port(5353) || port(5355) {
                    dns::datagram(p, out);
                } else if port(137) {
                    nbns::datagram(p, out);
                } else if port(67) || port(68) {
                    dhcp::v4(p, out);
                } else if port(546) || port(547) {
                    dhcp::v6(p, out);
                } else if port(1900) {
                    ssdp::datagram(p, out);
                } else {
                    self.quic.datagram(p, out);
                }
            }
            Transport::Tcp { .. } => {
                if port(53) {
                    dns::tcp_segment(p, out);
                } else if !self.tls.segment(p, out) {
                    http::segment(p, out);
                }
            }
        }
    }
}

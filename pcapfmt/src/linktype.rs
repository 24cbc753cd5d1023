//! Link-layer header types (LINKTYPE_* values from tcpdump.org), shared by the
//! file reader (which reports them), the decoder (which dispatches on them) and the
//! writers (which put one in the file header). netdigest re-exports it as
//! `netdigest::linktype`.

use std::fmt;

/// A LINKTYPE_* value as found in a pcap header or a pcapng Interface Description Block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: 4-byte address family in the host byte order of the capturing machine.
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const PPP: LinkType = LinkType(9);
    /// Raw IP (LINKTYPE_RAW). DLT_RAW is 12 or 14 on some BSDs; files may carry those too.
    pub const RAW: LinkType = LinkType(101);
    pub const RAW_BSD12: LinkType = LinkType(12);
    pub const RAW_BSD14: LinkType = LinkType(14);
    /// OpenBSD loopback: like NULL but the family is always big-endian.
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const NFLOG: LinkType = LinkType(239);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// Short name as libpcap's `pcap_datalink_val_to_name` prints it, or the number.
    #[must_use]
    pub fn name(self) -> String {
        match self {
            LinkType::NULL => "NULL".into(),
            LinkType::ETHERNET => "EN10MB".into(),
            LinkType::PPP => "PPP".into(),
            LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => "RAW".into(),
            LinkType::LOOP => "LOOP".into(),
            LinkType::LINUX_SLL => "LINUX_SLL".into(),
            LinkType::IEEE802_11_RADIOTAP => "IEEE802_11_RADIO".into(),
            LinkType::IPV4 => "IPV4".into(),
            LinkType::IPV6 => "IPV6".into(),
            LinkType::NFLOG => "NFLOG".into(),
            LinkType::LINUX_SLL2 => "LINUX_SLL2".into(),
            LinkType(n) => format!("linktype {n}"),
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

//! The cast of a night: the ten LAN devices (router, the capturing appliance, phones,
//! laptop, TV, printer, tablet, thermostat, smart plug), when they are on the network,
//! the documentation-range servers they talk to, and how addresses are formed.
//!
//! Invariants: LAN addresses are 192.168.1.0/24, fd00::/64 and fe80:: link-local
//! (from the MAC); outside addresses are documentation ranges only (203.0.113.0/24,
//! 198.51.100.0/24, 2001:db8::/32). Device and server indexes are the positions in
//! [`DEVICES`] and [`SERVERS`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::rng::Rng;

pub(crate) const ROUTER: usize = 0;
pub(crate) const PI: usize = 1;
pub(crate) const ANNA: usize = 2;
pub(crate) const BEN: usize = 3;
pub(crate) const LAPTOP: usize = 4;
pub(crate) const TV: usize = 5;
pub(crate) const PRINTER: usize = 6;
pub(crate) const TABLET: usize = 7;
pub(crate) const THERMO: usize = 8;
pub(crate) const PLUG: usize = 9;
/// The hostile-names device (only with [`crate::NightSpec::hostile_names`]).
pub(crate) const HOSTILE: usize = 10;

/// (name, also the DHCP host name; MAC; last IPv4 octet; has IPv6; IPv4 TTL)
#[rustfmt::skip]
pub(crate) const DEVICES: [(&str, [u8; 6], u8, bool, u8); 10] = [
    ("router",             [0xd8, 0x07, 0xb6, 0x4e, 0x21, 0x01],  1, true,   64),
    ("netdigest",          [0xdc, 0xa6, 0x32, 0x5d, 0x7e, 0x10], 10, true,   64),
    ("pixel-7",            [0x6a, 0x3f, 0x91, 0xc2, 0x07, 0x21], 21, true,   64),
    ("bens-iphone",        [0xae, 0x12, 0x7b, 0x40, 0x88, 0x22], 22, true,   64),
    ("LAPTOP-K7Q2M9",      [0xf4, 0x5c, 0x89, 0xaa, 0x30, 0x30], 30, true,  128),
    ("kitchen-tv",         [0x38, 0x8c, 0x50, 0x1e, 0x40, 0x40], 40, false,  64),
    ("brother-printer",    [0x00, 0x1b, 0xa9, 0x77, 0x50, 0x50], 50, true,   64),
    ("anna-tablet",        [0x5e, 0x21, 0xd0, 0x9a, 0x23, 0x23], 23, true,   64),
    ("hallway-thermostat", [0x18, 0xb4, 0x30, 0x61, 0x61, 0x61], 61, false,  64),
    ("smart-plug-6060",    [0x50, 0x02, 0x91, 0x60, 0x60, 0x60], 60, false, 255),
];

/// DHCP option 60 per device ("" for none), in [`DEVICES`] order.
pub(crate) const VENDOR_CLASS: [&str; 10] = [
    "",
    "dhcpcd-9.4.1:Linux-6.6.31+rpt-rpi-v8:aarch64:Raspberry Pi 4 Model B Rev 1.4",
    "android-dhcp-14",
    "",
    "MSFT 5.0",
    "android-dhcp-12",
    "",
    "android-dhcp-13",
    "udhcp 1.36.1",
    "udhcp 1.30.1",
];

/// The tablet's DHCP client id (RFC 4361: type 255, IAID, DUID-UUID), which it keeps
/// when it comes back with a new randomised MAC; the others send type 1 and their MAC.
pub(crate) const TABLET_CLIENT_ID: [u8; 23] = [
    0xff, 0x9a, 0x23, 0x23, 0x01, 0x00, 0x04, 0x7e, 0x3c, 0x1f, 0x52, 0x88, 0x0b, 0x4d, 0x6a, 0x9e,
    0x21, 0x5b, 0x70, 0xc4, 0x19, 0xd2, 0x23,
];

/// The hostile-names device: MAC (locally administered) and last IPv4 octet.
pub(crate) const HOSTILE_MAC: [u8; 6] = [0x02, 0x66, 0x6f, 0x73, 0x74, 0x66];
pub(crate) const HOSTILE_HOST: u8 = 66;

/// Window fraction at which a device first appears (DHCP join), or 0.
pub(crate) fn joins_at(d: usize) -> f64 {
    match d {
        BEN => 0.07,
        PLUG => 0.82,
        _ => 0.0,
    }
}

/// Whether a device is on the network and awake at window fraction `x`.
pub(crate) fn awake(d: usize, x: f64) -> bool {
    match d {
        LAPTOP => !(0.41..0.93).contains(&x),
        TV => x < 0.22,
        _ => x >= joins_at(d),
    }
}

/// A server's IPv6 address, `2001:db8:n::n` (documentation range; `n` repeats the
/// digits of its IPv4 address's last byte).
const fn doc_v6(n: u16) -> Option<[u16; 8]> {
    Some([0x2001, 0xdb8, n, 0, 0, 0, 0, n])
}

/// Documentation-range servers: (name, IPv4, IPv6 or none, TTL seen here)
pub(crate) type ServerRow = (&'static str, [u8; 4], Option<[u16; 8]>, u8);
pub(crate) const SERVERS: [ServerRow; 14] = [
    ("api.example.com", [203, 0, 113, 10], doc_v6(0x10), 56),
    ("cdn.example.net", [203, 0, 113, 25], doc_v6(0x25), 58),
    ("www.example.org", [198, 51, 100, 80], None, 52),
    ("updates.example.com", [198, 51, 100, 81], None, 52),
    ("git.example.net", [198, 51, 100, 22], doc_v6(0x22), 50),
    ("plug-cloud.example.com", [203, 0, 113, 80], None, 55),
    ("push.example.org", [203, 0, 113, 120], doc_v6(0x120), 57),
    ("thermo.example.com", [198, 51, 100, 5], None, 53),
    // Named by what each device asked for (see `named`): one CDN address behind two names.
    ("cdn.example-cdn.net", [198, 51, 100, 7], doc_v6(0x7), 54),
    (
        "video.example-stream.net",
        [203, 0, 113, 44],
        doc_v6(0x44),
        57,
    ),
    ("chat.example-messenger.org", [203, 0, 113, 77], None, 55),
    ("fw.printer-example.net", [198, 51, 100, 61], None, 51),
    ("games.example.org", [203, 0, 113, 90], doc_v6(0x90), 56),
    // Where the hostile names point.
    ("hostile.example", [192, 0, 2, 66], None, 60),
];
pub(crate) const S_API: usize = 0;
pub(crate) const S_CDN: usize = 1;
pub(crate) const S_WWW: usize = 2;
pub(crate) const S_UPDATES: usize = 3;
pub(crate) const S_GIT: usize = 4;
pub(crate) const S_PLUG: usize = 5;
pub(crate) const S_PUSH: usize = 6;
pub(crate) const S_THERMO: usize = 7;
pub(crate) const S_VENDOR_CDN: usize = 8;
pub(crate) const S_STREAM: usize = 9;
pub(crate) const S_CHAT: usize = 10;
pub(crate) const S_PRINTER_FW: usize = 11;
pub(crate) const S_GAMES: usize = 12;
pub(crate) const S_HOSTILE: usize = 13;

/// The appliance's internet reachability targets.
pub(crate) const PING4_TARGET: [u8; 4] = [198, 51, 100, 1];
pub(crate) const PING6_TARGET: [u16; 8] = [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1];

pub(crate) const BROADCAST_MAC: [u8; 6] = [0xff; 6];

pub(crate) fn v6(segs: [u16; 8]) -> [u8; 16] {
    Ipv6Addr::from(segs).octets()
}

pub(crate) fn ula(host: u8) -> [u8; 16] {
    // fd00::<host as written in decimal>, e.g. fd00::10 for 192.168.1.10.
    let h = u16::from(host / 10) * 16 + u16::from(host % 10);
    let h = if host >= 100 { u16::from(host) } else { h };
    v6([0xfd00, 0, 0, 0, 0, 0, 0, h])
}

pub(crate) fn link_local(mac: [u8; 6]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[8] = mac[0] ^ 0x02;
    a[9] = mac[1];
    a[10] = mac[2];
    a[11] = 0xff;
    a[12] = 0xfe;
    a[13] = mac[3];
    a[14] = mac[4];
    a[15] = mac[5];
    a
}

pub(crate) fn solicited_node(target: &[u8; 16]) -> ([u8; 16], [u8; 6]) {
    let ip = [
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, target[13], target[14], target[15],
    ];
    (ip, [0x33, 0x33, 0xff, target[13], target[14], target[15]])
}

/// `from` sending to the link-local IPv6 multicast group `ff02::<group>` (MAC
/// `33:33:00:00:00:<group>`): 1 all nodes, 2 all routers, 0xfb mDNS.
pub(crate) fn to_ipv6_group(from: Ep, group: u8) -> Ep {
    Ep {
        mac: [0x33, 0x33, 0, 0, 0, group],
        ip: Ip::V6(v6([0xff02, 0, 0, 0, 0, 0, 0, u16::from(group)])),
        ..from
    }
}

/// `from` sending to the IPv4 multicast group `group`, whose MAC is `01:00:5e` and the
/// group's low 23 bits (RFC 1112): 224.0.0.251 mDNS, 224.0.0.252 LLMNR, 239.255.255.250 SSDP.
pub(crate) fn to_ipv4_group(from: Ep, group: [u8; 4]) -> Ep {
    Ep {
        mac: [0x01, 0x00, 0x5e, group[1] & 0x7f, group[2], group[3]],
        ip: Ip::V4(group),
        ..from
    }
}

pub(crate) fn mac_text(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Ip {
    pub(crate) fn addr(self) -> IpAddr {
        match self {
            Ip::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
            Ip::V6(a) => IpAddr::V6(Ipv6Addr::from(a)),
        }
    }
}

/// One end of an exchange: what goes into the headers when it sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ep {
    pub(crate) mac: [u8; 6],
    pub(crate) ip: Ip,
    pub(crate) ttl: u8,
    /// Index into the source-label table (tshark's Source column for IP frames).
    pub(crate) key: u16,
    /// Index of the LAN device owning `mac` (for `hosts`).
    pub(crate) dev: usize,
    /// Short frames are padded to 60 bytes by the sender's NIC (not the appliance's
    /// own outgoing frames, which are captured before padding).
    pub(crate) pad: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fam {
    V4,
    Ula,
    Ll,
}

#[derive(Debug, Clone)]
pub(crate) struct Dev {
    pub(crate) mac: [u8; 6],
    pub(crate) v4: [u8; 4],
    pub(crate) ula: Option<[u8; 16]>,
    pub(crate) ll: Option<[u8; 16]>,
    pub(crate) ttl: u8,
    /// DHCP host name (option 12), vendor class (60, empty for none), client id (61).
    pub(crate) host: Vec<u8>,
    pub(crate) vendor: Vec<u8>,
    pub(crate) client_id: Vec<u8>,
    /// Every MAC it has used, the current one last.
    pub(crate) macs: Vec<[u8; 6]>,
    pub(crate) k_mac: u16,
    pub(crate) k_v4: u16,
    pub(crate) k_ula: u16,
    pub(crate) k_ll: u16,
    pub(crate) next_port: u16,
    pub(crate) ping_id: u16,
}

#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub(crate) name: &'static str,
    pub(crate) v4: [u8; 4],
    pub(crate) v6: Option<[u8; 16]>,
    pub(crate) ttl: u8,
    pub(crate) k_v4: u16,
    pub(crate) k_v6: u16,
}

/// The devices and servers of a night with their source labels: `labels[k]` is the
/// tshark Source column text that key `k` (in [`Dev`], [`Server`], [`Ep`]) stands for.
#[derive(Debug)]
pub(crate) struct Cast {
    pub(crate) devs: Vec<Dev>,
    pub(crate) servers: Vec<Server>,
    pub(crate) labels: Vec<String>,
    /// The keys of the addresses that belong to no device or server: the unspecified
    /// addresses (DHCP, DAD) and the ping targets.
    pub(crate) k_unspec4: u16,
    pub(crate) k_unspec6: u16,
    pub(crate) k_ping4: u16,
    pub(crate) k_ping6: u16,
}

impl Cast {
    /// Draws two numbers per device (first ephemeral port, first ping id), in
    /// [`DEVICES`] order, then for the hostile device when there is one.
    pub(crate) fn new(rng: &mut Rng, hostile: bool) -> Cast {
        let mut labels: Vec<String> = Vec::new();
        let mut label = |s: String| -> u16 {
            labels.push(s);
            (labels.len() - 1) as u16
        };
        let mut devs = Vec::new();
        let hostile_row = ("", HOSTILE_MAC, HOSTILE_HOST, false, 64);
        let rows = DEVICES
            .iter()
            .chain(std::iter::once(&hostile_row).filter(|_| hostile));
        for (i, &(name, mac, host, has6, ttl)) in rows.enumerate() {
            let v4 = [192, 168, 1, host];
            let (ula, ll) = if has6 {
                (Some(ula(host)), Some(link_local(mac)))
            } else {
                (None, None)
            };
            let k_mac = label(mac_text(&mac));
            let k_v4 = label(Ipv4Addr::from(v4).to_string());
            let k_ula = ula.map_or(u16::MAX, |a| label(Ipv6Addr::from(a).to_string()));
            let k_ll = ll.map_or(u16::MAX, |a| label(Ipv6Addr::from(a).to_string()));
            devs.push(Dev {
                mac,
                v4,
                ula,
                ll,
                ttl,
                host: name.as_bytes().to_vec(),
                vendor: VENDOR_CLASS
                    .get(i)
                    .map_or(&b""[..], |v| v.as_bytes())
                    .to_vec(),
                client_id: if i == TABLET {
                    TABLET_CLIENT_ID.to_vec()
                } else {
                    let mut id = vec![1];
                    id.extend_from_slice(&mac);
                    id
                },
                macs: vec![mac],
                k_mac,
                k_v4,
                k_ula,
                k_ll,
                next_port: 49152 + (rng.below(8000) as u16) + i as u16,
                ping_id: rng.u16(),
            });
        }
        let mut servers = Vec::new();
        for &(name, v4, v6s, ttl) in &SERVERS {
            let v6a = v6s.map(v6);
            let k_v4 = label(Ipv4Addr::from(v4).to_string());
            let k_v6 = v6a.map_or(u16::MAX, |a| label(Ipv6Addr::from(a).to_string()));
            servers.push(Server {
                name,
                v4,
                v6: v6a,
                ttl,
                k_v4,
                k_v6,
            });
        }
        Cast {
            k_unspec4: label(Ipv4Addr::UNSPECIFIED.to_string()),
            k_unspec6: label(Ipv6Addr::UNSPECIFIED.to_string()),
            k_ping4: label(Ipv4Addr::from(PING4_TARGET).to_string()),
            k_ping6: label(Ipv6Addr::from(PING6_TARGET).to_string()),
            devs,
            servers,
            labels,
        }
    }
}

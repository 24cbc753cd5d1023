//! Synthetic captures: a classic pcap writer and a deterministic generator of a
//! realistic home-network "night" (Ethernet, 22:00 to 06:00) with known ground truth.
//!
//! Used by `netdigest demo` and `netdigest sample` (no network, no privileges), by
//! tests that need a capture whose contents are known exactly, and by benchmarks
//! that need millions of packets quickly.
//!
//! # What a night contains
//! A home LAN, 192.168.1.0/24 and fd00::/64 (plus fe80:: link-local), with ten
//! devices: the router (192.168.1.1), the capturing appliance (192.168.1.10, the
//! [`GroundTruth::own_addresses`]), two phones (one comes home at about 22:35 and
//! joins with DHCP), a laptop (asleep from about 01:15 to 05:25), a TV (off at
//! about 23:45), a printer, a tablet, a thermostat and a smart plug that only
//! appears at about 04:35 (DHCP, ARP probes). Traffic: ICMP and ICMPv6 echo
//! (from the appliance to the router, the internet and the laptop, the latter
//! unanswered while the laptop sleeps, plus some lost internet pings; between
//! devices too), ARP who-has/is-at, IPv6 neighbour and router discovery, DNS to the
//! router followed by TCP sessions (handshake, data with correct seq/ack, FIN) to
//! ports 443 (TLS records), 80 (HTTP/1.1 with Content-Length) and 22 (SSH), mDNS,
//! NTP (the printer's tagged with 802.1Q VLAN 10), DHCP and IPv4 fragments (the
//! router's long syslog lines). Outside addresses are documentation ranges only
//! (203.0.113.0/24, 198.51.100.0/24, 2001:db8::/32); names are under example.*.
//!
//! Timestamps increase strictly and stay inside the window, with more traffic in
//! the evening and morning than at 3am. The same [`NightSpec`] always gives the
//! same bytes.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, EtherType, Ethernet2Header, IcmpEchoHeader,
    Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, IpFragOffset, IpNumber, Ipv4Header,
    Ipv6Header, SingleVlanHeader, TcpHeader, TcpOptionElement, UdpHeader, VlanId, VlanPcp,
};

use crate::linktype::LinkType;

// ---------------------------------------------------------------------------------------------
// pcap writer
// ---------------------------------------------------------------------------------------------

const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// A pcap (classic, microsecond or nanosecond, little-endian) writer. Used for
/// synthetic captures and by tests.
///
/// Frames longer than the snap length are cut to it (the record keeps the wire
/// length). Wrap a file in a [`BufWriter`]: every packet is two small writes.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
    snaplen: u32,
    nanos: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-byte global header (version 2.4, zone 0).
    ///
    /// # Errors
    /// `snaplen` is 0, or the write failed.
    pub fn new(mut w: W, link: LinkType, snaplen: u32, nanos: bool) -> io::Result<Self> {
        if snaplen == 0 {
            return Err(invalid("pcap snap length must be at least 1"));
        }
        let magic = if nanos {
            PCAP_MAGIC_NANOS
        } else {
            PCAP_MAGIC_MICROS
        };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone (8..12) and sigfigs (12..16) stay 0.
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&link.0.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w, snaplen, nanos })
    }

    /// Writes one record. `ts_ns` is nanoseconds since the epoch (UTC); with a
    /// microsecond file it is truncated to microseconds.
    ///
    /// # Errors
    /// The time is before 1970 or after 2106 (not representable), `wire_len` is
    /// smaller than `data`, or the write failed.
    pub fn write_packet(&mut self, ts_ns: i64, data: &[u8], wire_len: u32) -> io::Result<()> {
        let secs = u32::try_from(ts_ns.div_euclid(1_000_000_000))
            .map_err(|_| invalid("packet time not representable in pcap (1970..2106)"))?;
        let sub = ts_ns.rem_euclid(1_000_000_000);
        let frac = if self.nanos { sub } else { sub / 1000 };
        let len = u32::try_from(data.len()).map_err(|_| invalid("packet longer than 4 GiB"))?;
        if len > wire_len {
            return Err(invalid("packet data longer than its wire length"));
        }
        let cap = len.min(self.snaplen);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        // frac < 1e9 fits in u32.
        h[4..8].copy_from_slice(&(frac as u32).to_le_bytes());
        h[8..12].copy_from_slice(&cap.to_le_bytes());
        h[12..16].copy_from_slice(&wire_len.to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(&data[..cap as usize])
    }

    /// Flushes and returns the inner writer.
    ///
    /// # Errors
    /// The flush failed.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

fn build_err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(format!("building a synthetic packet: {e}"))
}

// ---------------------------------------------------------------------------------------------
// spec and ground truth
// ---------------------------------------------------------------------------------------------

/// What night to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NightSpec {
    /// Approximate total number of frames to write: generation stops at the first
    /// burst boundary at or past this number.
    pub packets: u64,
    /// Window start (e.g. 22:00 local of some date), in ns since the epoch, UTC.
    pub start_ts_ns: i64,
    /// Window length in seconds, e.g. 8 * 3600.
    pub duration_s: u64,
    pub seed: u64,
    /// Nanosecond timestamps (pcap magic `a1b23c4d`) instead of microseconds.
    pub nanos: bool,
}

impl NightSpec {
    /// About 20 000 packets from 22:00 to 06:00 (UTC+1, i.e. 21:00Z) on 2024-11-15,
    /// microsecond timestamps, a fixed seed.
    #[must_use]
    pub fn demo() -> Self {
        NightSpec {
            packets: 20_000,
            // 2024-11-15T21:00:00Z = 22:00 in Central Europe (winter time).
            start_ts_ns: 1_731_704_400 * 1_000_000_000,
            duration_s: 8 * 3600,
            seed: 0x6e65_7464_6967_6573,
            nanos: false,
        }
    }

    fn end_ts_ns(&self) -> i64 {
        let dur = i64::try_from(self.duration_s).unwrap_or(i64::MAX / 2_000_000_000);
        self.start_ts_ns
            .saturating_add(dur.saturating_mul(1_000_000_000))
    }
}

/// What a generated night contains, for comparison with what a reader finds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroundTruth {
    pub frames: u64,
    /// Sum of wire lengths (all frames are captured whole).
    pub bytes: u64,
    /// ICMP and ICMPv6 echo requests sent by each source address.
    pub echo_requests_by_src: BTreeMap<IpAddr, u64>,
    /// ICMP and ICMPv6 echo replies by destination address.
    pub echo_replies_by_dst: BTreeMap<IpAddr, u64>,
    /// Echo requests that got no reply, by source address.
    pub echo_unanswered_by_src: BTreeMap<IpAddr, u64>,
    /// The appliance's (the capturing Pi's) addresses.
    pub own_addresses: Vec<IpAddr>,
    /// Every LAN device (IP, MAC) that sent at least one frame, each address of it.
    pub hosts: Vec<(IpAddr, [u8; 6])>,
    /// Frames per tshark Source column text (`tshark -n`): the IP source, or the
    /// Ethernet source MAC (`aa:bb:...`) for ARP.
    pub packets_by_src: BTreeMap<String, u64>,
    /// Frames carrying an 802.1Q tag.
    pub vlan_frames: u64,
    /// IPv4 fragments (MF set or non-zero offset).
    pub ipv4_fragments: u64,
    /// TCP sessions (each with a full handshake and FIN close).
    pub tcp_sessions: u64,
}

/// Writes a night to `w` (buffer it yourself) and returns its ground truth.
///
/// # Errors
/// The spec is unusable (zero duration, a window outside 1970..2106, or more than
/// one packet per 16 µs of window on average), or a write failed.
pub fn write_night<W: Write>(w: W, spec: &NightSpec) -> io::Result<GroundTruth> {
    let out = PcapWriter::new(w, LinkType::ETHERNET, 262_144, spec.nanos)?;
    let mut g = Gen::new(out, spec)?;
    g.run()?;
    let (truth, out) = g.finish();
    out.into_inner()?;
    Ok(truth)
}

/// Writes a night to `path`, buffered, under a temporary name in the same
/// directory that is renamed over `path` only when complete.
///
/// # Errors
/// As [`write_night`], or the file could not be created, synced or renamed.
pub fn write_night_file(path: &Path, spec: &NightSpec) -> io::Result<GroundTruth> {
    let file = crate::fsutil::AtomicFile::create(path)?;
    let truth = {
        let buf = BufWriter::with_capacity(1 << 20, file.writer());
        write_night(buf, spec)?
    };
    file.commit()?;
    Ok(truth)
}

// ---------------------------------------------------------------------------------------------
// PRNG (splitmix64)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when n is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, permille: u64) -> bool {
        self.below(1000) < permille
    }
    fn u16(&mut self) -> u16 {
        self.next() as u16
    }
    fn u32(&mut self) -> u32 {
        self.next() as u32
    }
}

// ---------------------------------------------------------------------------------------------
// the cast: devices, servers, addresses
// ---------------------------------------------------------------------------------------------

const ROUTER: usize = 0;
const PI: usize = 1;
const ANNA: usize = 2;
const BEN: usize = 3;
const LAPTOP: usize = 4;
const TV: usize = 5;
const PRINTER: usize = 6;
const TABLET: usize = 7;
const THERMO: usize = 8;
const PLUG: usize = 9;

/// (name, also the DHCP host name; MAC; last IPv4 octet; has IPv6; IPv4 TTL)
const DEVICES: [(&str, [u8; 6], u8, bool, u8); 10] = [
    ("router", [0xd8, 0x07, 0xb6, 0x4e, 0x21, 0x01], 1, true, 64),
    (
        "netdigest",
        [0xdc, 0xa6, 0x32, 0x5d, 0x7e, 0x10],
        10,
        true,
        64,
    ),
    (
        "anna-phone",
        [0x6a, 0x3f, 0x91, 0xc2, 0x07, 0x21],
        21,
        true,
        64,
    ),
    (
        "ben-phone",
        [0xae, 0x12, 0x7b, 0x40, 0x88, 0x22],
        22,
        true,
        64,
    ),
    (
        "laptop",
        [0xf4, 0x5c, 0x89, 0xaa, 0x30, 0x30],
        30,
        true,
        128,
    ),
    (
        "living-room-tv",
        [0x38, 0x8c, 0x50, 0x1e, 0x40, 0x40],
        40,
        false,
        64,
    ),
    (
        "office-printer",
        [0x00, 0x1b, 0xa9, 0x77, 0x50, 0x50],
        50,
        true,
        64,
    ),
    ("tablet", [0x5e, 0x21, 0xd0, 0x9a, 0x23, 0x23], 23, true, 64),
    (
        "thermostat",
        [0x18, 0xb4, 0x30, 0x61, 0x61, 0x61],
        61,
        false,
        64,
    ),
    (
        "smart-plug",
        [0x50, 0x02, 0x91, 0x60, 0x60, 0x60],
        60,
        false,
        255,
    ),
];

/// Window fraction at which a device first appears (DHCP join), or 0.
fn joins_at(d: usize) -> f64 {
    match d {
        BEN => 0.07,
        PLUG => 0.82,
        _ => 0.0,
    }
}

/// Whether a device is on the network and awake at window fraction `x`.
fn awake(d: usize, x: f64) -> bool {
    match d {
        LAPTOP => !(0.41..0.93).contains(&x),
        TV => x < 0.22,
        _ => x >= joins_at(d),
    }
}

/// Documentation-range servers: (name, IPv4, IPv6 or none, TTL seen here)
type ServerRow = (&'static str, [u8; 4], Option<[u16; 8]>, u8);
const SERVERS: [ServerRow; 8] = [
    (
        "api.example.com",
        [203, 0, 113, 10],
        Some([0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 0x10]),
        56,
    ),
    (
        "cdn.example.net",
        [203, 0, 113, 25],
        Some([0x2001, 0xdb8, 0x25, 0, 0, 0, 0, 0x25]),
        58,
    ),
    ("www.example.org", [198, 51, 100, 80], None, 52),
    ("updates.example.com", [198, 51, 100, 81], None, 52),
    (
        "git.example.net",
        [198, 51, 100, 22],
        Some([0x2001, 0xdb8, 0x22, 0, 0, 0, 0, 0x22]),
        50,
    ),
    ("plug-cloud.example.com", [203, 0, 113, 80], None, 55),
    (
        "push.example.org",
        [203, 0, 113, 120],
        Some([0x2001, 0xdb8, 0x120, 0, 0, 0, 0, 0x120]),
        57,
    ),
    ("thermo.example.com", [198, 51, 100, 5], None, 53),
];
const S_API: usize = 0;
const S_CDN: usize = 1;
const S_WWW: usize = 2;
const S_UPDATES: usize = 3;
const S_GIT: usize = 4;
const S_PLUG: usize = 5;
const S_PUSH: usize = 6;
const S_THERMO: usize = 7;

/// The appliance's internet reachability targets.
const PING4_TARGET: [u8; 4] = [198, 51, 100, 1];
const PING6_TARGET: [u16; 8] = [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1];

const BROADCAST_MAC: [u8; 6] = [0xff; 6];

fn v6(segs: [u16; 8]) -> [u8; 16] {
    Ipv6Addr::from(segs).octets()
}

fn ula(host: u8) -> [u8; 16] {
    // fd00::<host as written in decimal>, e.g. fd00::10 for 192.168.1.10.
    let h = u16::from(host / 10) * 16 + u16::from(host % 10);
    let h = if host >= 100 { u16::from(host) } else { h };
    v6([0xfd00, 0, 0, 0, 0, 0, 0, h])
}

fn link_local(mac: [u8; 6]) -> [u8; 16] {
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

fn solicited_node(target: &[u8; 16]) -> ([u8; 16], [u8; 6]) {
    let ip = [
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, target[13], target[14], target[15],
    ];
    (ip, [0x33, 0x33, 0xff, target[13], target[14], target[15]])
}

fn mac_text(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Ip {
    fn addr(self) -> IpAddr {
        match self {
            Ip::V4(a) => IpAddr::V4(Ipv4Addr::from(a)),
            Ip::V6(a) => IpAddr::V6(Ipv6Addr::from(a)),
        }
    }
}

/// One end of an exchange: what goes into the headers when it sends.
#[derive(Debug, Clone, Copy)]
struct Ep {
    mac: [u8; 6],
    ip: Ip,
    ttl: u8,
    /// Index into the source-label table (tshark's Source column for IP frames).
    key: u16,
    /// Index of the LAN device owning `mac` (for `hosts`).
    dev: usize,
    /// Short frames are padded to 60 bytes by the sender's NIC (not the appliance's
    /// own outgoing frames, which are captured before padding).
    pad: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fam {
    V4,
    Ula,
    Ll,
}

#[derive(Debug, Clone)]
struct Dev {
    mac: [u8; 6],
    v4: [u8; 4],
    ula: Option<[u8; 16]>,
    ll: Option<[u8; 16]>,
    ttl: u8,
    name: &'static str,
    k_mac: u16,
    k_v4: u16,
    k_ula: u16,
    k_ll: u16,
    next_port: u16,
    ping_id: u16,
}

#[derive(Debug, Clone)]
struct Server {
    name: &'static str,
    v4: [u8; 4],
    v6: Option<[u8; 16]>,
    ttl: u8,
    k_v4: u16,
    k_v6: u16,
}

// ---------------------------------------------------------------------------------------------
// staging: the frames of one burst, before they get timestamps
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Staged {
    end: usize,
    delay_us: u64,
    key: u16,
    dev: usize,
}

#[derive(Debug, Default)]
struct Stage {
    bytes: Vec<u8>,
    frames: Vec<Staged>,
    ip_id: u16,
    vlan_frames: u64,
    fragments: u64,
}

const MIN_FRAME: usize = 60;

impl Stage {
    /// Writes Ethernet (with an 802.1Q tag when `vlan` is not 0), the IP header and
    /// the transport header with correct lengths and checksums, then `payload`.
    fn ip_frame(
        &mut self,
        src: &Ep,
        dst: &Ep,
        vlan: u16,
        l4: L4,
        payload: &[u8],
    ) -> io::Result<()> {
        let ether_type = match src.ip {
            Ip::V4(_) => EtherType::IPV4,
            Ip::V6(_) => EtherType::IPV6,
        };
        let b = &mut self.bytes;
        if vlan == 0 {
            b.extend_from_slice(
                &Ethernet2Header {
                    source: src.mac,
                    destination: dst.mac,
                    ether_type,
                }
                .to_bytes(),
            );
        } else {
            self.vlan_frames += 1;
            b.extend_from_slice(
                &Ethernet2Header {
                    source: src.mac,
                    destination: dst.mac,
                    ether_type: EtherType::VLAN_TAGGED_FRAME,
                }
                .to_bytes(),
            );
            b.extend_from_slice(
                &SingleVlanHeader {
                    pcp: VlanPcp::ZERO,
                    drop_eligible_indicator: false,
                    vlan_id: VlanId::try_new(vlan).map_err(build_err)?,
                    ether_type,
                }
                .to_bytes(),
            );
        }
        let (proto, l4_len) = match &l4 {
            L4::Tcp(t) => (IpNumber::TCP, t.header_len() + payload.len()),
            L4::Udp(..) => (IpNumber::UDP, UdpHeader::LEN + payload.len()),
            L4::Icmp4(_) => (IpNumber::ICMP, 8 + payload.len()),
            L4::Icmp6(_) => (IpNumber::IPV6_ICMP, 8 + payload.len()),
        };
        match (src.ip, dst.ip) {
            (Ip::V4(s), Ip::V4(d)) => {
                self.ip_id = self.ip_id.wrapping_add(1);
                let mut ip = Ipv4Header {
                    identification: self.ip_id,
                    time_to_live: src.ttl,
                    protocol: proto,
                    source: s,
                    destination: d,
                    ..Default::default()
                };
                ip.set_payload_len(l4_len).map_err(build_err)?;
                ip.header_checksum = ip.calc_header_checksum();
                b.extend_from_slice(&ip.to_bytes());
                match l4 {
                    L4::Tcp(mut t) => {
                        t.checksum = t.calc_checksum_ipv4(&ip, payload).map_err(build_err)?;
                        b.extend_from_slice(&t.to_bytes());
                    }
                    L4::Udp(sp, dp) => {
                        let u = UdpHeader::with_ipv4_checksum(sp, dp, &ip, payload)
                            .map_err(build_err)?;
                        b.extend_from_slice(&u.to_bytes());
                    }
                    L4::Icmp4(ty) => {
                        b.extend_from_slice(&Icmpv4Header::with_checksum(ty, payload).to_bytes())
                    }
                    L4::Icmp6(_) => return Err(build_err("ICMPv6 over IPv4")),
                }
            }
            (Ip::V6(s), Ip::V6(d)) => {
                let ip = Ipv6Header {
                    hop_limit: src.ttl,
                    next_header: proto,
                    payload_length: u16::try_from(l4_len).map_err(build_err)?,
                    source: s,
                    destination: d,
                    ..Default::default()
                };
                b.extend_from_slice(&ip.to_bytes());
                match l4 {
                    L4::Tcp(mut t) => {
                        t.checksum = t.calc_checksum_ipv6(&ip, payload).map_err(build_err)?;
                        b.extend_from_slice(&t.to_bytes());
                    }
                    L4::Udp(sp, dp) => {
                        let u = UdpHeader::with_ipv6_checksum(sp, dp, &ip, payload)
                            .map_err(build_err)?;
                        b.extend_from_slice(&u.to_bytes());
                    }
                    L4::Icmp6(ty) => {
                        let h =
                            Icmpv6Header::with_checksum(ty, s, d, payload).map_err(build_err)?;
                        b.extend_from_slice(&h.to_bytes());
                    }
                    L4::Icmp4(_) => return Err(build_err("ICMP over IPv6")),
                }
            }
            _ => return Err(build_err("mixed IPv4/IPv6 endpoints")),
        }
        b.extend_from_slice(payload);
        Ok(())
    }

    /// Records the frame just written (padding it if needed).
    fn done(&mut self, src: &Ep, delay_us: u64) {
        self.done_key(src, src.key, delay_us);
    }

    fn done_key(&mut self, src: &Ep, key: u16, delay_us: u64) {
        let start = self.frames.last().map_or(0, |f| f.end);
        if src.pad && self.bytes.len() - start < MIN_FRAME {
            self.bytes.resize(start + MIN_FRAME, 0);
        }
        self.frames.push(Staged {
            end: self.bytes.len(),
            delay_us,
            key,
            dev: src.dev,
        });
    }

    fn udp(
        &mut self,
        s: &Ep,
        d: &Ep,
        ports: (u16, u16),
        vlan: u16,
        payload: &[u8],
        delay: u64,
    ) -> io::Result<()> {
        self.ip_frame(s, d, vlan, L4::Udp(ports.0, ports.1), payload)?;
        self.done(s, delay);
        Ok(())
    }

    fn echo(
        &mut self,
        s: &Ep,
        d: &Ep,
        reply: bool,
        e: IcmpEchoHeader,
        payload: &[u8],
        delay: u64,
    ) -> io::Result<()> {
        let l4 = match (s.ip, reply) {
            (Ip::V4(_), false) => L4::Icmp4(Icmpv4Type::EchoRequest(e)),
            (Ip::V4(_), true) => L4::Icmp4(Icmpv4Type::EchoReply(e)),
            (Ip::V6(_), false) => L4::Icmp6(Icmpv6Type::EchoRequest(e)),
            (Ip::V6(_), true) => L4::Icmp6(Icmpv6Type::EchoReply(e)),
        };
        self.ip_frame(s, d, 0, l4, payload)?;
        self.done(s, delay);
        Ok(())
    }

    fn icmpv6(
        &mut self,
        s: &Ep,
        d: &Ep,
        ty: u8,
        b5to8: [u8; 4],
        payload: &[u8],
        delay: u64,
    ) -> io::Result<()> {
        let l4 = L4::Icmp6(Icmpv6Type::Unknown {
            type_u8: ty,
            code_u8: 0,
            bytes5to8: b5to8,
        });
        self.ip_frame(s, d, 0, l4, payload)?;
        self.done(s, delay);
        Ok(())
    }

    /// ARP: `sender` is (MAC, IP), `target` is (MAC, IP), `eth_dst` the frame destination.
    #[allow(clippy::too_many_arguments)]
    fn arp(
        &mut self,
        src: &Ep,
        eth_dst: [u8; 6],
        op: ArpOperation,
        sender_ip: [u8; 4],
        target_mac: [u8; 6],
        target_ip: [u8; 4],
        mac_key: u16,
        delay: u64,
    ) -> io::Result<()> {
        let pkt = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            op,
            &src.mac,
            &sender_ip,
            &target_mac,
            &target_ip,
        )
        .map_err(build_err)?;
        self.bytes.extend_from_slice(
            &Ethernet2Header {
                source: src.mac,
                destination: eth_dst,
                ether_type: EtherType::ARP,
            }
            .to_bytes(),
        );
        pkt.write(&mut self.bytes)?;
        self.done_key(src, mac_key, delay);
        Ok(())
    }

    /// An IPv4 UDP datagram split into fragments of at most `mtu_payload` bytes
    /// (a multiple of 8) of IP payload each.
    #[allow(clippy::too_many_arguments)]
    fn udp_fragmented(
        &mut self,
        s: &Ep,
        d: &Ep,
        ports: (u16, u16),
        payload: &[u8],
        mtu_payload: usize,
        scratch: &mut Vec<u8>,
        delay: u64,
    ) -> io::Result<()> {
        let (Ip::V4(src), Ip::V4(dst)) = (s.ip, d.ip) else {
            return Err(build_err("fragments are IPv4 only"));
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        let mut ip = Ipv4Header {
            identification: self.ip_id,
            dont_fragment: false,
            time_to_live: s.ttl,
            protocol: IpNumber::UDP,
            source: src,
            destination: dst,
            ..Default::default()
        };
        let udp =
            UdpHeader::with_ipv4_checksum(ports.0, ports.1, &ip, payload).map_err(build_err)?;
        scratch.clear();
        scratch.extend_from_slice(&udp.to_bytes());
        scratch.extend_from_slice(payload);
        let mut off = 0;
        while off < scratch.len() {
            let end = (off + mtu_payload).min(scratch.len());
            ip.more_fragments = end < scratch.len();
            ip.fragment_offset = IpFragOffset::try_new((off / 8) as u16).map_err(build_err)?;
            ip.set_payload_len(end - off).map_err(build_err)?;
            ip.header_checksum = ip.calc_header_checksum();
            Ethernet2Header {
                source: s.mac,
                destination: d.mac,
                ether_type: EtherType::IPV4,
            }
            .write(&mut self.bytes)?;
            ip.write(&mut self.bytes)?;
            self.bytes.extend_from_slice(&scratch[off..end]);
            self.done(s, if off == 0 { delay } else { 40 });
            self.fragments += 1;
            off = end;
        }
        Ok(())
    }
}

/// The transport header of an IP frame (checksum filled in when written).
#[derive(Debug, Clone)]
enum L4 {
    Tcp(TcpHeader),
    Udp(u16, u16),
    Icmp4(Icmpv4Type),
    Icmp6(Icmpv6Type),
}

const F_SYN: u8 = 1;
const F_ACK: u8 = 2;
const F_PSH: u8 = 4;
const F_FIN: u8 = 8;

/// A TCP connection being generated.
#[derive(Debug, Clone, Copy)]
struct Flow {
    c: Ep,
    s: Ep,
    cport: u16,
    sport: u16,
    /// Next sequence number to send, client and server.
    cseq: u32,
    sseq: u32,
    mss: usize,
}

// ---------------------------------------------------------------------------------------------
// time: packet index -> offset in the window, following a night-shaped intensity
// ---------------------------------------------------------------------------------------------

/// Relative traffic intensity at window fractions 0, 1/8, ..., 1 (22:00 .. 06:00).
const INTENSITY: [f64; 9] = [1.0, 0.85, 0.55, 0.3, 0.18, 0.14, 0.2, 0.45, 0.8];
/// How much people (not machines) use the network, same knots.
const HUMAN: [f64; 9] = [1.0, 0.8, 0.45, 0.15, 0.05, 0.03, 0.06, 0.35, 0.85];

fn knots(k: &[f64; 9], x: f64) -> f64 {
    let p = (x.clamp(0.0, 1.0)) * 8.0;
    let i = (p as usize).min(7);
    let f = p - i as f64;
    k[i] + (k[i + 1] - k[i]) * f
}

const INV_STEPS: usize = 4096;
/// Packets a burst may have at most (the time map keeps room for one after the last).
const MAX_BURST: u64 = 256;

/// `inv[i]` is the window offset (µs) by which a fraction `i / INV_STEPS` of all
/// traffic has been sent.
fn inverse_cdf(dur_us: u64) -> Vec<u64> {
    const G: usize = 1 << 16;
    let mut cum = Vec::with_capacity(G + 1);
    let mut acc = 0.0;
    cum.push(0.0);
    for g in 0..G {
        acc += knots(&INTENSITY, (g as f64 + 0.5) / G as f64);
        cum.push(acc);
    }
    let total = acc;
    let mut inv = Vec::with_capacity(INV_STEPS + 1);
    let mut g = 0;
    for i in 0..=INV_STEPS {
        let want = total * i as f64 / INV_STEPS as f64;
        while g < G - 1 && cum[g + 1] < want {
            g += 1;
        }
        let seg = cum[g + 1] - cum[g];
        let f = if seg > 0.0 {
            ((want - cum[g]) / seg).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let x = (g as f64 + f) / G as f64;
        inv.push(((x * dur_us as f64) as u64).min(dur_us));
    }
    inv
}

// ---------------------------------------------------------------------------------------------
// the generator
// ---------------------------------------------------------------------------------------------

const POOL_LEN: usize = 1 << 17;

struct Gen<W: Write> {
    out: PcapWriter<W>,
    rng: Rng,
    stage: Stage,
    /// Random bytes to slice payloads from.
    pool: Vec<u8>,
    pay_c: Vec<u8>,
    pay_s: Vec<u8>,
    scratch: Vec<u8>,
    devs: Vec<Dev>,
    servers: Vec<Server>,
    labels: Vec<String>,
    counts: Vec<u64>,
    dev_seen: Vec<bool>,
    k_unspec4: u16,
    k_unspec6: u16,
    k_ping4: u16,
    k_ping6: u16,
    joined: Vec<bool>,
    // time
    start_ns: i64,
    dur_us: u64,
    target: u64,
    inv: Vec<u64>,
    last_us: Option<u64>,
    /// Window offset (µs) of the burst being staged, and natural time within it.
    burst_us: u64,
    burst_cum_us: u64,
    /// Host header of the HTTP session being generated.
    http_host: &'static str,
    truth: GroundTruth,
}

impl<W: Write> Gen<W> {
    fn new(out: PcapWriter<W>, spec: &NightSpec) -> io::Result<Self> {
        if spec.duration_s == 0 {
            return Err(invalid("night duration must be at least 1 s"));
        }
        let dur_us = spec
            .duration_s
            .checked_mul(1_000_000)
            .ok_or_else(|| invalid("night duration too long"))?;
        if spec.packets.saturating_mul(16) > dur_us {
            return Err(invalid(
                "too many packets for the window (at most one per 16 µs)",
            ));
        }
        if spec.start_ts_ns < 0 || spec.end_ts_ns() / 1_000_000_000 > i64::from(u32::MAX) {
            return Err(invalid(
                "night window not representable in pcap (1970..2106)",
            ));
        }
        let mut rng = Rng(spec.seed ^ 0x5eed_0fa1_19e7);
        let mut pool = vec![0u8; POOL_LEN];
        for c in pool.chunks_mut(8) {
            let v = rng.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
        let mut labels: Vec<String> = Vec::new();
        let mut label = |s: String| -> u16 {
            labels.push(s);
            (labels.len() - 1) as u16
        };
        let mut devs = Vec::new();
        for (i, &(name, mac, host, has6, ttl)) in DEVICES.iter().enumerate() {
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
                name,
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
        let k_unspec4 = label(Ipv4Addr::UNSPECIFIED.to_string());
        let k_unspec6 = label(Ipv6Addr::UNSPECIFIED.to_string());
        let k_ping4 = label(Ipv4Addr::from(PING4_TARGET).to_string());
        let k_ping6 = label(Ipv6Addr::from(PING6_TARGET).to_string());
        let nlabels = labels.len();
        let own = &devs[PI];
        let mut own_addresses = vec![IpAddr::V4(Ipv4Addr::from(own.v4))];
        own_addresses.extend(
            own.ula
                .iter()
                .chain(own.ll.iter())
                .map(|a| IpAddr::V6(Ipv6Addr::from(*a))),
        );
        Ok(Gen {
            out,
            rng,
            stage: Stage {
                bytes: Vec::with_capacity(1 << 20),
                frames: Vec::with_capacity(MAX_BURST as usize),
                ..Default::default()
            },
            pool,
            pay_c: Vec::with_capacity(1 << 16),
            pay_s: Vec::with_capacity(1 << 18),
            scratch: Vec::with_capacity(4096),
            devs,
            servers,
            labels,
            counts: vec![0; nlabels],
            dev_seen: vec![false; DEVICES.len()],
            k_unspec4,
            k_unspec6,
            k_ping4,
            k_ping6,
            joined: vec![false; DEVICES.len()],
            start_ns: spec.start_ts_ns,
            dur_us,
            target: spec.packets,
            inv: inverse_cdf(dur_us),
            last_us: None,
            burst_us: 0,
            burst_cum_us: 0,
            http_host: "www.example.org",
            truth: GroundTruth {
                own_addresses,
                ..Default::default()
            },
        })
    }

    fn finish(self) -> (GroundTruth, PcapWriter<W>) {
        let mut t = self.truth;
        for (label, &n) in self.labels.iter().zip(&self.counts) {
            if n > 0 {
                *t.packets_by_src.entry(label.clone()).or_default() += n;
            }
        }
        for (d, seen) in self.devs.iter().zip(&self.dev_seen) {
            if *seen {
                t.hosts.push((IpAddr::V4(Ipv4Addr::from(d.v4)), d.mac));
                for a in d.ula.iter().chain(d.ll.iter()) {
                    t.hosts.push((IpAddr::V6(Ipv6Addr::from(*a)), d.mac));
                }
            }
        }
        t.vlan_frames = self.stage.vlan_frames;
        t.ipv4_fragments = self.stage.fragments;
        (t, self.out)
    }

    /// Window offset (µs) by which `m` packets have been sent.
    fn time_at(&self, m: u64) -> u64 {
        let d = u128::from(self.target + MAX_BURST);
        let pos = ((u128::from(m) * (INV_STEPS as u128)) << 16) / d;
        let i = ((pos >> 16) as usize).min(INV_STEPS);
        let f = (pos & 0xffff) as u64;
        if i >= INV_STEPS {
            return self.inv[INV_STEPS];
        }
        let (a, b) = (self.inv[i], self.inv[i + 1]);
        a + (((b - a) * f) >> 16)
    }

    fn run(&mut self) -> io::Result<()> {
        while self.truth.frames < self.target {
            let a = self.time_at(self.truth.frames);
            self.burst_us = a;
            self.burst_cum_us = 0;
            let x = a as f64 / self.dur_us as f64;
            self.burst(x)?;
            self.flush()?;
        }
        Ok(())
    }

    /// Gives the staged frames timestamps inside their share of the window and writes them.
    fn flush(&mut self) -> io::Result<()> {
        let k = self.stage.frames.len() as u64;
        if k == 0 {
            return Ok(());
        }
        if k > MAX_BURST {
            return Err(build_err("burst too long"));
        }
        let n = self.truth.frames;
        let a = self.time_at(n);
        let b = self.time_at(n + k).max(a + k);
        let span = b - a;
        let natural: u64 = self.stage.frames.iter().skip(1).map(|f| f.delay_us).sum();
        let room = span / 4 * 3;
        let (jitter, num, den) = if natural <= room {
            (self.rng.below((span - natural) / 2 + 1), 1u64, 1u64)
        } else {
            (0, room, natural)
        };
        let mut cum = 0u64;
        let mut start = 0usize;
        for (i, f) in self.stage.frames.iter().enumerate() {
            if i > 0 {
                cum += f.delay_us;
            }
            let off = (u128::from(cum) * u128::from(num) / u128::from(den)) as u64;
            let mut t = a + jitter + off;
            if let Some(last) = self.last_us {
                t = t.max(last + 1);
            }
            self.last_us = Some(t);
            let ns = self.start_ns + (t * 1000) as i64 + self.rng.below(1000) as i64;
            let data = &self.stage.bytes[start..f.end];
            let len = data.len() as u32;
            self.out.write_packet(ns, data, len)?;
            self.truth.frames += 1;
            self.truth.bytes += u64::from(len);
            if let Some(c) = self.counts.get_mut(usize::from(f.key)) {
                *c += 1;
            }
            if let Some(s) = self.dev_seen.get_mut(f.dev) {
                *s = true;
            }
            start = f.end;
        }
        self.stage.frames.clear();
        self.stage.bytes.clear();
        Ok(())
    }

    // ----- endpoints -----

    fn ep(&self, d: usize, fam: Fam) -> Ep {
        let dv = &self.devs[d];
        let (ip, key) = match fam {
            Fam::V4 => (Ip::V4(dv.v4), dv.k_v4),
            Fam::Ula => match dv.ula {
                Some(a) => (Ip::V6(a), dv.k_ula),
                None => (Ip::V4(dv.v4), dv.k_v4),
            },
            Fam::Ll => match dv.ll {
                Some(a) => (Ip::V6(a), dv.k_ll),
                None => (Ip::V4(dv.v4), dv.k_v4),
            },
        };
        Ep {
            mac: dv.mac,
            ip,
            ttl: if matches!(ip, Ip::V6(_)) && dv.ttl > 64 {
                64
            } else {
                dv.ttl
            },
            key,
            dev: d,
            pad: d != PI,
        }
    }

    fn server_ep(&self, s: usize, want_v6: bool) -> Ep {
        let sv = &self.servers[s];
        let (ip, key) = match (want_v6, sv.v6) {
            (true, Some(a)) => (Ip::V6(a), sv.k_v6),
            _ => (Ip::V4(sv.v4), sv.k_v4),
        };
        Ep {
            mac: self.devs[ROUTER].mac,
            ip,
            ttl: sv.ttl,
            key,
            dev: ROUTER,
            pad: true,
        }
    }

    fn has_v6(&self, d: usize) -> bool {
        self.devs[d].ula.is_some()
    }

    fn port(&mut self, d: usize) -> u16 {
        let p = self.devs[d].next_port;
        self.devs[d].next_port = if p >= 65000 {
            49152 + (p % 97)
        } else {
            p + 1 + self.rng.below(3) as u16
        };
        p
    }

    fn delay(&mut self, lo: u64, hi: u64) -> u64 {
        let d = self.rng.range(lo, hi);
        self.burst_cum_us += d;
        d
    }

    fn now_unix_us(&self) -> u64 {
        let base = u64::try_from(self.start_ns / 1000).unwrap_or(0);
        base + self.burst_us + self.burst_cum_us
    }

    // ----- bursts -----

    fn burst(&mut self, x: f64) -> io::Result<()> {
        for d in [BEN, PLUG] {
            if !self.joined[d] && x >= joins_at(d) {
                self.joined[d] = true;
                return self.join(d);
            }
        }
        let h = knots(&HUMAN, x);
        let laptop = if awake(LAPTOP, x) { 1.0 } else { 0.0 };
        let tv = if awake(TV, x) { 1.0 } else { 0.0 };
        let plug = if awake(PLUG, x) { 1.0 } else { 0.0 };
        let weights = [
            6.0,              // 0 appliance pings the router
            3.0,              // 1 appliance pings the internet
            1.5,              // 2 appliance pings the laptop
            0.6 + 1.5 * h,    // 3 device pings device
            3.0,              // 4 ICMPv6 echo from the appliance
            3.0,              // 5 neighbour discovery
            4.0,              // 6 ARP
            2.0 + 12.0 * h,   // 7 DNS then HTTPS
            4.0,              // 8 phone push keepalive (TLS)
            2.5 * tv,         // 9 TV streaming
            0.3 + 1.5 * h,    // 10 HTTP download
            2.5 * h * laptop, // 11 SSH
            2.0,              // 12 mDNS
            1.5,              // 13 NTP (printer tagged)
            0.25,             // 14 router syslog, fragmented
            2.0,              // 15 thermostat TLS
            2.0 * plug,       // 16 smart plug TLS
            0.2,              // 17 router advertisement
        ];
        let total: f64 = weights.iter().sum();
        let mut r = (self.rng.below(1 << 30) as f64 / (1u64 << 30) as f64) * total;
        let mut kind = weights.len() - 1;
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                kind = i;
                break;
            }
            r -= w;
        }
        match kind {
            0 => {
                let n = self.rng.range(1, 4);
                self.ping(PI, Fam::V4, Target::Dev(ROUTER), n, 0)
            }
            1 => {
                let n = self.rng.range(1, 5);
                self.ping(PI, Fam::V4, Target::Internet, n, 60)
            }
            2 => {
                let n = self.rng.range(1, 3);
                self.ping(PI, Fam::V4, Target::Dev(LAPTOP), n, 0)
            }
            3 => {
                let src = *[ANNA, TABLET, LAPTOP, BEN]
                    .get(self.rng.below(4) as usize)
                    .unwrap_or(&ANNA);
                let src = if awake(src, x) { src } else { ANNA };
                let dst = *[ROUTER, PRINTER, TV, PI]
                    .get(self.rng.below(4) as usize)
                    .unwrap_or(&ROUTER);
                let n = self.rng.range(2, 6);
                self.ping(src, Fam::V4, Target::Dev(dst), n, 0)
            }
            4 => {
                let n = self.rng.range(1, 3);
                match self.rng.below(3) {
                    0 => self.ping(PI, Fam::Ula, Target::Dev(ROUTER), n, 0),
                    1 => self.ping(PI, Fam::Ll, Target::Dev(ROUTER), n, 0),
                    _ => self.ping(PI, Fam::Ula, Target::Internet, n, 30),
                }
            }
            5 => self.neighbour(x),
            6 => self.arp_exchange(x),
            7 => self.browse(x),
            8 => {
                let d = if self.rng.chance(500) && awake(BEN, x) {
                    BEN
                } else {
                    ANNA
                };
                let fam = if self.rng.chance(600) {
                    Fam::Ula
                } else {
                    Fam::V4
                };
                let c = self.ep(d, fam);
                let s = self.server_ep(S_PUSH, matches!(c.ip, Ip::V6(_)));
                let resp = self.rng.range(60, 900) as usize;
                let req = self.rng.range(80, 400) as usize;
                self.tcp_session(c, s, 443, &[(req, resp)], 25_000)
            }
            9 => {
                let c = self.ep(TV, Fam::V4);
                let s = self.server_ep(S_CDN, false);
                let resp = self.rng.range(10_000, 45_000) as usize;
                let req = self.rng.range(300, 700) as usize;
                self.tcp_session(c, s, 443, &[(req, resp)], 12_000)
            }
            10 => self.http(x),
            11 => self.ssh(),
            12 => self.mdns(x),
            13 => self.ntp(),
            14 => self.syslog(),
            15 => {
                let c = self.ep(THERMO, Fam::V4);
                let s = self.server_ep(S_THERMO, false);
                let req = self.rng.range(120, 500) as usize;
                let resp = self.rng.range(40, 300) as usize;
                self.tcp_session(c, s, 443, &[(req, resp)], 40_000)
            }
            16 => {
                let c = self.ep(PLUG, Fam::V4);
                let s = self.server_ep(S_PLUG, false);
                let req = self.rng.range(60, 200) as usize;
                let resp = self.rng.range(30, 120) as usize;
                self.tcp_session(c, s, 443, &[(req, resp)], 60_000)
            }
            _ => self.router_advertisement(),
        }
    }

    // ----- ICMP echo -----

    fn ping(
        &mut self,
        src: usize,
        fam: Fam,
        to: Target,
        n: u64,
        loss_permille: u64,
    ) -> io::Result<()> {
        let x = self.burst_us as f64 / self.dur_us as f64;
        let s = self.ep(src, fam);
        let (d, answers) = match to {
            Target::Dev(d) => (self.ep(d, fam), awake(d, x)),
            Target::Internet => {
                let router_mac = self.devs[ROUTER].mac;
                let (ip, key, ttl) = match s.ip {
                    Ip::V4(_) => (Ip::V4(PING4_TARGET), self.k_ping4, 118),
                    Ip::V6(_) => (Ip::V6(v6(PING6_TARGET)), self.k_ping6, 58),
                };
                (
                    Ep {
                        mac: router_mac,
                        ip,
                        ttl,
                        key,
                        dev: ROUTER,
                        pad: true,
                    },
                    true,
                )
            }
        };
        let id = self.devs[src].ping_id;
        self.devs[src].ping_id = id.wrapping_add(1);
        let rtt = match to {
            Target::Internet => self.rng.range(9_000, 30_000),
            Target::Dev(_) => self.rng.range(300, 4_000),
        };
        for seq in 1..=n as u16 {
            let delay = if seq == 1 {
                0
            } else {
                self.delay(999_000, 1_001_000)
            };
            // iputils ping: 16-byte timeval then 0x10, 0x11, ...
            let now = self.now_unix_us();
            let mut p = [0u8; 56];
            p[0..8].copy_from_slice(&(now / 1_000_000).to_le_bytes());
            p[8..16].copy_from_slice(&(now % 1_000_000).to_le_bytes());
            for (i, b) in p.iter_mut().enumerate().skip(16) {
                *b = i as u8;
            }
            self.stage
                .echo(&s, &d, false, IcmpEchoHeader { id, seq }, &p, delay)?;
            *self
                .truth
                .echo_requests_by_src
                .entry(s.ip.addr())
                .or_default() += 1;
            if answers && !self.rng.chance(loss_permille) {
                let rd = self.delay(rtt / 2, rtt);
                self.stage
                    .echo(&d, &s, true, IcmpEchoHeader { id, seq }, &p, rd)?;
                *self
                    .truth
                    .echo_replies_by_dst
                    .entry(s.ip.addr())
                    .or_default() += 1;
            } else {
                *self
                    .truth
                    .echo_unanswered_by_src
                    .entry(s.ip.addr())
                    .or_default() += 1;
            }
        }
        Ok(())
    }

    // ----- link layer: ARP, NDP, DHCP -----

    fn arp_exchange(&mut self, x: f64) -> io::Result<()> {
        let others = [ANNA, BEN, LAPTOP, TV, PRINTER, TABLET, THERMO, PLUG, PI];
        let d = others[self.rng.below(others.len() as u64) as usize];
        let router = self.ep(ROUTER, Fam::V4);
        let (asker, target) = if self.rng.chance(500) || !awake(d, x) {
            (router, d)
        } else {
            (self.ep(d, Fam::V4), ROUTER)
        };
        let t = self.ep(target, Fam::V4);
        let Ip::V4(asker_ip) = asker.ip else {
            return Ok(());
        };
        let Ip::V4(target_ip) = t.ip else {
            return Ok(());
        };
        let ka = self.devs[asker.dev].k_mac;
        self.stage.arp(
            &asker,
            BROADCAST_MAC,
            ArpOperation::REQUEST,
            asker_ip,
            [0; 6],
            target_ip,
            ka,
            0,
        )?;
        if awake(target, x) {
            let kt = self.devs[target].k_mac;
            let delay = self.delay(200, 3_000);
            self.stage.arp(
                &t,
                asker.mac,
                ArpOperation::REPLY,
                target_ip,
                asker.mac,
                asker_ip,
                kt,
                delay,
            )?;
        } else {
            // Asked twice more, a second apart, never answered.
            for _ in 0..2 {
                let delay = self.delay(1_000_000, 1_000_500);
                self.stage.arp(
                    &asker,
                    BROADCAST_MAC,
                    ArpOperation::REQUEST,
                    asker_ip,
                    [0; 6],
                    target_ip,
                    ka,
                    delay,
                )?;
            }
        }
        Ok(())
    }

    fn neighbour(&mut self, x: f64) -> io::Result<()> {
        let v6devs = [PI, ANNA, BEN, LAPTOP, PRINTER, TABLET];
        let d = v6devs[self.rng.below(v6devs.len() as u64) as usize];
        let d = if awake(d, x) { d } else { PI };
        let fam = if self.rng.chance(500) {
            Fam::Ula
        } else {
            Fam::Ll
        };
        let (asker, target) = if self.rng.chance(500) {
            (d, ROUTER)
        } else {
            (ROUTER, d)
        };
        let a = self.ep(asker, fam);
        let t = self.ep(target, fam);
        let (Ip::V6(tip), Ip::V6(_)) = (t.ip, a.ip) else {
            return Ok(());
        };
        let (mc_ip, mc_mac) = solicited_node(&tip);
        let dst = Ep {
            mac: mc_mac,
            ip: Ip::V6(mc_ip),
            ..t
        };
        let a = Ep { ttl: 255, ..a };
        let t = Ep { ttl: 255, ..t };
        let mut p = [0u8; 24];
        p[..16].copy_from_slice(&tip);
        p[16] = 1; // source link-layer address
        p[17] = 1;
        p[18..24].copy_from_slice(&a.mac);
        self.stage.icmpv6(&a, &dst, 135, [0; 4], &p, 0)?;
        // Advertisement: solicited + override, target link-layer address.
        p[16] = 2;
        p[18..24].copy_from_slice(&t.mac);
        let delay = self.delay(150, 2_500);
        let flags = [if target == ROUTER { 0xe0 } else { 0x60 }, 0, 0, 0];
        self.stage.icmpv6(&t, &a, 136, flags, &p, delay)
    }

    fn router_advertisement(&mut self) -> io::Result<()> {
        let r = self.ep(ROUTER, Fam::Ll);
        let r = Ep { ttl: 255, ..r };
        let all = Ep {
            mac: [0x33, 0x33, 0, 0, 0, 1],
            ip: Ip::V6(v6([0xff02, 0, 0, 0, 0, 0, 0, 1])),
            ..r
        };
        self.router_advertisement_to(&r, &all, 0)
    }

    fn router_advertisement_to(&mut self, r: &Ep, dst: &Ep, delay: u64) -> io::Result<()> {
        // reachable time, retrans timer, SLLAO (8), prefix information (32).
        let mut p = [0u8; 48];
        p[8] = 1;
        p[9] = 1;
        p[10..16].copy_from_slice(&r.mac);
        p[16] = 3;
        p[17] = 4;
        p[18] = 64;
        p[19] = 0xc0; // on-link, autonomous
        p[20..24].copy_from_slice(&86_400u32.to_be_bytes());
        p[24..28].copy_from_slice(&14_400u32.to_be_bytes());
        p[32..48].copy_from_slice(&v6([0xfd00, 0, 0, 0, 0, 0, 0, 0]));
        // cur hop limit 64, no flags, router lifetime 1800 s
        self.stage
            .icmpv6(r, dst, 134, [64, 0, 0x07, 0x08], &p, delay)
    }

    fn join(&mut self, d: usize) -> io::Result<()> {
        let dev = self.devs[d].clone();
        let xid = self.rng.u32();
        let unspec = Ep {
            mac: dev.mac,
            ip: Ip::V4([0; 4]),
            ttl: 64,
            key: self.k_unspec4,
            dev: d,
            pad: true,
        };
        let bcast = Ep {
            mac: BROADCAST_MAC,
            ip: Ip::V4([255; 4]),
            ..unspec
        };
        let router = self.ep(ROUTER, Fam::V4);
        for (i, msg) in [1u8, 2, 3, 5].into_iter().enumerate() {
            self.scratch.clear();
            dhcp(&mut self.scratch, msg, xid, &dev, self.devs[ROUTER].v4);
            let delay = if i == 0 { 0 } else { self.delay(1_500, 6_000) };
            if msg == 1 || msg == 3 {
                self.stage
                    .udp(&unspec, &bcast, (68, 67), 0, &self.scratch, delay)?;
            } else {
                self.stage
                    .udp(&router, &bcast, (67, 68), 0, &self.scratch, delay)?;
            }
        }
        // ARP probes, then an announcement.
        let me = self.ep(d, Fam::V4);
        for i in 0..3 {
            let delay = self.delay(if i == 0 { 20_000 } else { 1_000_000 }, 1_900_000);
            self.stage.arp(
                &me,
                BROADCAST_MAC,
                ArpOperation::REQUEST,
                [0; 4],
                [0; 6],
                dev.v4,
                dev.k_mac,
                delay,
            )?;
        }
        let delay = self.delay(2_000_000, 2_100_000);
        self.stage.arp(
            &me,
            BROADCAST_MAC,
            ArpOperation::REQUEST,
            dev.v4,
            [0; 6],
            dev.v4,
            dev.k_mac,
            delay,
        )?;
        if let Some(ll) = dev.ll {
            // Duplicate address detection from ::, router solicitation, advertisement.
            let (mc_ip, mc_mac) = solicited_node(&ll);
            let src = Ep {
                mac: dev.mac,
                ip: Ip::V6([0; 16]),
                ttl: 255,
                key: self.k_unspec6,
                dev: d,
                pad: true,
            };
            let dst = Ep {
                mac: mc_mac,
                ip: Ip::V6(mc_ip),
                ..src
            };
            let delay = self.delay(50_000, 400_000);
            self.stage.icmpv6(&src, &dst, 135, [0; 4], &ll, delay)?;
            let me6 = Ep {
                ttl: 255,
                ..self.ep(d, Fam::Ll)
            };
            let routers = Ep {
                mac: [0x33, 0x33, 0, 0, 0, 2],
                ip: Ip::V6(v6([0xff02, 0, 0, 0, 0, 0, 0, 2])),
                ..me6
            };
            let mut p = [0u8; 8];
            p[0] = 1;
            p[1] = 1;
            p[2..8].copy_from_slice(&dev.mac);
            let delay = self.delay(1_000_000, 1_200_000);
            self.stage.icmpv6(&me6, &routers, 133, [0; 4], &p, delay)?;
            let r = Ep {
                ttl: 255,
                ..self.ep(ROUTER, Fam::Ll)
            };
            let all = Ep {
                mac: [0x33, 0x33, 0, 0, 0, 1],
                ip: Ip::V6(v6([0xff02, 0, 0, 0, 0, 0, 0, 1])),
                ..r
            };
            let delay = self.delay(2_000, 20_000);
            self.router_advertisement_to(&r, &all, delay)?;
        }
        Ok(())
    }

    // ----- DNS, mDNS, NTP, syslog -----

    /// A DNS lookup of `name` from `c` to the router; returns nothing, stages 2 frames.
    fn dns(&mut self, c: &Ep, name: &str, qtype: u16, answer: Option<Ip>) -> io::Result<()> {
        let r = self.ep(
            ROUTER,
            if matches!(c.ip, Ip::V6(_)) {
                Fam::Ula
            } else {
                Fam::V4
            },
        );
        let id = self.rng.u16();
        let port = self.port(c.dev);
        self.scratch.clear();
        dns_message(&mut self.scratch, id, false, name, qtype, None);
        let delay = self.delay(100, 2_000);
        self.stage.udp(c, &r, (port, 53), 0, &self.scratch, delay)?;
        self.scratch.clear();
        let ttl = 60 + self.rng.below(3000) as u32;
        dns_message(
            &mut self.scratch,
            id,
            true,
            name,
            qtype,
            answer.map(|a| (a, ttl)),
        );
        let delay = self.delay(400, 30_000);
        self.stage.udp(&r, c, (53, port), 0, &self.scratch, delay)
    }

    fn browse(&mut self, x: f64) -> io::Result<()> {
        let users = [ANNA, BEN, LAPTOP, TABLET, TV];
        let mut d = users[self.rng.below(users.len() as u64) as usize];
        if !awake(d, x) {
            d = ANNA;
        }
        let use6 = self.has_v6(d) && self.rng.chance(450);
        let c = self.ep(d, if use6 { Fam::Ula } else { Fam::V4 });
        let srv = if self.rng.chance(700) { S_API } else { S_CDN };
        let s = self.server_ep(srv, use6);
        let name = self.servers[srv].name;
        let (qtype, ans) = if use6 { (28, s.ip) } else { (1, s.ip) };
        self.dns(&c, name, qtype, Some(ans))?;
        if self.rng.chance(150) {
            // An HTTPS-record lookup with an empty answer, as phones do.
            self.dns(&c, name, 65, None)?;
        }
        let rounds = self.rng.range(1, 3) as usize;
        let mut rr = [(0usize, 0usize); 3];
        for r in rr.iter_mut().take(rounds) {
            *r = (
                self.rng.range(200, 1_800) as usize,
                if self.rng.chance(60) {
                    self.rng.range(8_000, 40_000) as usize
                } else {
                    self.rng.range(200, 4_000) as usize
                },
            );
        }
        let rtt = self.rng.range(8_000, 40_000);
        self.tcp_session(c, s, 443, &rr[..rounds], rtt)
    }

    fn http(&mut self, x: f64) -> io::Result<()> {
        let mut d = *[LAPTOP, PRINTER, TV, TABLET]
            .get(self.rng.below(4) as usize)
            .unwrap_or(&PRINTER);
        if !awake(d, x) {
            d = PRINTER;
        }
        let c = self.ep(d, Fam::V4);
        let srv = if self.rng.chance(500) {
            S_WWW
        } else {
            S_UPDATES
        };
        let s = self.server_ep(srv, false);
        let name = self.servers[srv].name;
        self.http_host = name;
        self.dns(&c, name, 1, Some(s.ip))?;
        let rounds = self.rng.range(1, 2) as usize;
        let mut rr = [(0usize, 0usize); 2];
        for r in rr.iter_mut().take(rounds) {
            *r = (0, self.rng.range(200, 12_000) as usize);
        }
        let rtt = self.rng.range(15_000, 45_000);
        self.tcp_session(c, s, 80, &rr[..rounds], rtt)
    }

    fn ssh(&mut self) -> io::Result<()> {
        let fam = if self.rng.chance(300) {
            Fam::Ula
        } else {
            Fam::V4
        };
        let c = self.ep(LAPTOP, fam);
        let s = if self.rng.chance(500) {
            self.ep(
                PI,
                if matches!(c.ip, Ip::V6(_)) {
                    Fam::Ula
                } else {
                    Fam::V4
                },
            )
        } else {
            self.server_ep(S_GIT, matches!(c.ip, Ip::V6(_)))
        };
        let rounds = self.rng.range(2, 8) as usize;
        let mut rr = [(0usize, 0usize); 8];
        for r in rr.iter_mut().take(rounds) {
            *r = (
                self.rng.range(36, 120) as usize,
                self.rng.range(36, 1_500) as usize,
            );
        }
        self.tcp_session(
            c,
            s,
            22,
            &rr[..rounds],
            if s.dev == PI { 1_500 } else { 20_000 },
        )
    }

    fn mdns(&mut self, x: f64) -> io::Result<()> {
        let mut q = *[ANNA, BEN, TABLET, LAPTOP]
            .get(self.rng.below(4) as usize)
            .unwrap_or(&ANNA);
        if !awake(q, x) {
            q = ANNA;
        }
        let (service, answerer, instance) = match self.rng.below(3) {
            0 => ("_googlecast._tcp.local", TV, "Living-Room-TV"),
            1 => ("_ipp._tcp.local", PRINTER, "Office-Printer"),
            _ => ("_airplay._tcp.local", usize::MAX, ""),
        };
        let use6 = self.rng.chance(300);
        let c = self.ep(q, if use6 { Fam::Ll } else { Fam::V4 });
        let group = if use6 {
            Ep {
                mac: [0x33, 0x33, 0, 0, 0, 0xfb],
                ip: Ip::V6(v6([0xff02, 0, 0, 0, 0, 0, 0, 0xfb])),
                ..c
            }
        } else {
            Ep {
                mac: [0x01, 0x00, 0x5e, 0, 0, 0xfb],
                ip: Ip::V4([224, 0, 0, 251]),
                ..c
            }
        };
        let c = Ep { ttl: 255, ..c };
        self.scratch.clear();
        mdns_query(&mut self.scratch, service);
        self.stage
            .udp(&c, &group, (5353, 5353), 0, &self.scratch, 0)?;
        if answerer != usize::MAX && awake(answerer, x) {
            let a = Ep {
                ttl: 255,
                ..self.ep(answerer, if use6 { Fam::Ll } else { Fam::V4 })
            };
            // The TV has no IPv6: it answers over IPv4 only.
            if use6 && matches!(a.ip, Ip::V4(_)) {
                return Ok(());
            }
            let group = Ep {
                key: a.key,
                dev: a.dev,
                ..group
            };
            self.scratch.clear();
            mdns_answer(&mut self.scratch, service, instance);
            let delay = self.delay(20_000, 120_000);
            self.stage
                .udp(&a, &group, (5353, 5353), 0, &self.scratch, delay)?;
        }
        Ok(())
    }

    fn ntp(&mut self) -> io::Result<()> {
        let d = *[PRINTER, PI, TABLET, THERMO]
            .get(self.rng.below(4) as usize)
            .unwrap_or(&PI);
        let vlan = if d == PRINTER { 10 } else { 0 };
        let c = self.ep(d, Fam::V4);
        let r = self.ep(ROUTER, Fam::V4);
        let now = self.now_unix_us();
        let mut p = [0u8; 48];
        p[0] = 0x23; // v4, client
        p[2] = 6;
        p[3] = 0xe9;
        ntp_ts(&mut p[40..48], now);
        let sport = if d == PI { 123 } else { self.port(d) };
        self.stage.udp(&c, &r, (sport, 123), vlan, &p, 0)?;
        let mut q = [0u8; 48];
        q[0] = 0x24; // v4, server
        q[1] = 2;
        q[2] = 6;
        q[3] = 0xe8;
        q[4..8].copy_from_slice(&0x0000_0400u32.to_be_bytes());
        q[8..12].copy_from_slice(&0x0000_0600u32.to_be_bytes());
        q[12..16].copy_from_slice(&[203, 0, 113, 123]);
        ntp_ts(&mut q[16..24], now.saturating_sub(512_000_000));
        q[24..32].copy_from_slice(&p[40..48]);
        let delay = self.delay(300, 2_000);
        ntp_ts(&mut q[32..40], now + delay / 2);
        ntp_ts(&mut q[40..48], now + delay / 2 + 20);
        self.stage.udp(&r, &c, (123, sport), vlan, &q, delay)
    }

    fn syslog(&mut self) -> io::Result<()> {
        let r = self.ep(ROUTER, Fam::V4);
        let pi = self.ep(PI, Fam::V4);
        self.scratch.clear();
        let stamp = rfc3339(self.now_unix_us() / 1_000_000);
        let line = format!(
            "<30>1 {stamp} router firewall - - - dropped {} probes, table dump:",
            self.rng.range(3, 90)
        );
        self.scratch.extend_from_slice(line.as_bytes());
        let len = self.rng.range(1_600, 4_200) as usize;
        while self.scratch.len() < len {
            let e = self.rng.below(256);
            let s = format!(
                " 203.0.113.{e}:{}>192.168.1.1:{}",
                self.rng.range(1024, 65535),
                self.rng.range(1, 1024)
            );
            self.scratch.extend_from_slice(s.as_bytes());
        }
        let payload = std::mem::take(&mut self.scratch);
        let mut frag = std::mem::take(&mut self.pay_c);
        let res = self
            .stage
            .udp_fragmented(&r, &pi, (514, 514), &payload, 1480, &mut frag, 0);
        self.scratch = payload;
        self.pay_c = frag;
        res
    }

    // ----- TCP -----

    /// A whole connection: handshake, `rounds` of (request bytes, response bytes),
    /// and a FIN close from the client. The content follows the port: TLS records
    /// (443), HTTP/1.1 (80), SSH (22).
    fn tcp_session(
        &mut self,
        c: Ep,
        s: Ep,
        port: u16,
        rounds: &[(usize, usize)],
        rtt: u64,
    ) -> io::Result<()> {
        let v6 = matches!(c.ip, Ip::V6(_));
        let mut f = Flow {
            c,
            s,
            cport: self.port(c.dev),
            sport: port,
            cseq: self.rng.u32(),
            sseq: self.rng.u32(),
            mss: if v6 { 1440 } else { 1460 },
        };
        self.truth.tcp_sessions += 1;
        // Keep the burst under MAX_BURST frames: about 1.5 frames per server segment.
        let budget_segments = 110usize;
        let (ci, si) = (f.cseq, f.sseq);
        self.seg_at(&mut f, true, F_SYN, 0, 0)?;
        let d = self.delay(rtt / 2, rtt);
        self.seg_at(&mut f, false, F_SYN | F_ACK, ci.wrapping_add(1), d)?;
        let d = self.delay(30, 200);
        self.seg_at(&mut f, true, F_ACK, si.wrapping_add(1), d)?;
        if port == 22 {
            // Banners: the server speaks first.
            self.pay_s.clear();
            self.pay_s
                .extend_from_slice(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
            let d = self.delay(500, 3_000);
            self.data(&mut f, false, d)?;
            self.pay_c.clear();
            self.pay_c.extend_from_slice(b"SSH-2.0-OpenSSH_9.6\r\n");
            let d = self.delay(100, 1_000);
            self.data(&mut f, true, d)?;
            self.ssh_kex(&mut f, rtt)?;
        }
        let mut used = 0usize;
        for (i, &(req, resp)) in rounds.iter().enumerate() {
            let room = budget_segments.saturating_sub(used);
            if room < 4 {
                break;
            }
            let resp = resp.min((room - 2) * f.mss);
            match port {
                80 => self.http_content(i, resp),
                22 => {
                    ssh_content(&mut self.pay_c, &self.pool, &mut self.rng, req);
                    ssh_content(&mut self.pay_s, &self.pool, &mut self.rng, resp);
                }
                _ => {
                    tls_content(&mut self.pay_c, &self.pool, &mut self.rng, req);
                    tls_content(&mut self.pay_s, &self.pool, &mut self.rng, resp);
                }
            }
            used += self.pay_s.len().div_ceil(f.mss) + self.pay_c.len().div_ceil(f.mss);
            let think = if i == 0 {
                self.delay(200, 5_000)
            } else {
                self.delay(50_000, 3_000_000)
            };
            self.data(&mut f, true, think)?;
            let d = self.delay(rtt / 2, rtt + 20_000);
            self.data(&mut f, false, d)?;
        }
        // Close: client FIN, server FIN, client ACK.
        let d = self.delay(1_000, 200_000);
        let ack = f.sseq;
        self.seg_at(&mut f, true, F_FIN | F_ACK, ack, d)?;
        f.cseq = f.cseq.wrapping_add(1);
        let d = self.delay(rtt / 2, rtt);
        let ack = f.cseq;
        self.seg_at(&mut f, false, F_FIN | F_ACK, ack, d)?;
        f.sseq = f.sseq.wrapping_add(1);
        let d = self.delay(30, 300);
        let ack = f.sseq;
        self.seg_at(&mut f, true, F_ACK, ack, d)
    }

    /// Key exchange in the clear (KEXINIT both ways, curve25519 ECDH, NEWKEYS), after
    /// which both directions are encrypted.
    fn ssh_kex(&mut self, f: &mut Flow, rtt: u64) -> io::Result<()> {
        for client in [true, false] {
            let mut p = vec![20u8];
            extend_random(&mut p, &self.pool, &mut self.rng, 16);
            let kex = if client {
                "curve25519-sha256,ext-info-c"
            } else {
                "curve25519-sha256"
            };
            for list in [
                kex,
                "ssh-rsa",
                "chacha20-poly1305@openssh.com",
                "chacha20-poly1305@openssh.com",
                "umac-64-etm@openssh.com",
                "umac-64-etm@openssh.com",
                "none",
                "none",
                "",
                "",
            ] {
                ssh_string(&mut p, list.as_bytes());
            }
            p.extend_from_slice(&[0, 0, 0, 0, 0]);
            let buf = if client {
                &mut self.pay_c
            } else {
                &mut self.pay_s
            };
            buf.clear();
            ssh_packet(buf, &p);
            let d = self.delay(200, 2_000);
            self.data(f, client, d)?;
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.pool[..32]);
        let mut p = vec![30u8];
        ssh_string(&mut p, &key);
        self.pay_c.clear();
        ssh_packet(&mut self.pay_c, &p);
        let d = self.delay(300, 3_000);
        self.data(f, true, d)?;
        // An RSA host key (e = 65537, 2048-bit n) and an ssh-rsa signature.
        let mpint = |v: &mut Vec<u8>, bytes: &[u8]| {
            let mut m = Vec::with_capacity(bytes.len() + 1);
            if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                m.push(0);
            }
            m.extend_from_slice(bytes);
            ssh_string(v, &m);
        };
        let mut blob = Vec::with_capacity(300);
        ssh_string(&mut blob, b"ssh-rsa");
        mpint(&mut blob, &[1, 0, 1]);
        let mut n = self.pool[1024..1280].to_vec();
        n[0] |= 0x80;
        mpint(&mut blob, &n);
        let mut sig = Vec::with_capacity(300);
        ssh_string(&mut sig, b"ssh-rsa");
        ssh_string(&mut sig, &self.pool[2048..2304]);
        let mut p = vec![31u8];
        ssh_string(&mut p, &blob);
        ssh_string(&mut p, &self.pool[256..288]);
        ssh_string(&mut p, &sig);
        self.pay_s.clear();
        ssh_packet(&mut self.pay_s, &p);
        ssh_packet(&mut self.pay_s, &[21]);
        let d = self.delay(rtt / 2, rtt + 3_000);
        self.data(f, false, d)?;
        self.pay_c.clear();
        ssh_packet(&mut self.pay_c, &[21]);
        let d = self.delay(100, 1_000);
        self.data(f, true, d)
    }

    fn http_content(&mut self, i: usize, body: usize) {
        let host = self.http_host;
        let paths = [
            "/index.html",
            "/firmware/latest.json",
            "/img/banner.jpg",
            "/v2/check",
            "/news",
        ];
        let path = paths[(i + self.rng.below(5) as usize) % paths.len()];
        self.pay_c.clear();
        let _ = write!(
            self.pay_c,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: netdigest-synth/1.0\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
        );
        self.pay_s.clear();
        let _ = write!(
            self.pay_s,
            "HTTP/1.1 200 OK\r\nServer: example\r\nContent-Type: application/octet-stream\r\nContent-Length: {body}\r\n\r\n"
        );
        extend_random(&mut self.pay_s, &self.pool, &mut self.rng, body);
    }

    /// Sends all of `pay_c` (client) or `pay_s` (server) as segments; the other side
    /// ACKs every second segment and the last.
    fn data(&mut self, f: &mut Flow, from_client: bool, first_delay: u64) -> io::Result<()> {
        let total = if from_client {
            self.pay_c.len()
        } else {
            self.pay_s.len()
        };
        let mut off = 0;
        let mut n = 0;
        while off < total {
            let len = (total - off).min(f.mss);
            let last = off + len == total;
            let delay = if n == 0 {
                first_delay
            } else {
                self.delay(30, 1_200)
            };
            let flags = F_ACK | if last { F_PSH } else { 0 };
            let (src, dst, sp, dp, seq, ack) = if from_client {
                (f.c, f.s, f.cport, f.sport, f.cseq, f.sseq)
            } else {
                (f.s, f.c, f.sport, f.cport, f.sseq, f.cseq)
            };
            let payload = if from_client {
                &self.pay_c[off..off + len]
            } else {
                &self.pay_s[off..off + len]
            };
            tcp_frame(
                &mut self.stage,
                &src,
                &dst,
                sp,
                dp,
                seq,
                ack,
                flags,
                payload,
                delay,
            )?;
            if from_client {
                f.cseq = f.cseq.wrapping_add(len as u32);
            } else {
                f.sseq = f.sseq.wrapping_add(len as u32);
            }
            off += len;
            n += 1;
            if n % 2 == 0 || last {
                let d = self.delay(20, 400);
                self.seg_at(
                    f,
                    !from_client,
                    F_ACK,
                    if from_client { f.cseq } else { f.sseq },
                    d,
                )?;
            }
        }
        Ok(())
    }

    /// A segment without payload from the client (or server), acknowledging `ack`.
    fn seg_at(
        &mut self,
        f: &mut Flow,
        from_client: bool,
        flags: u8,
        ack: u32,
        delay: u64,
    ) -> io::Result<()> {
        let (src, dst, sp, dp, seq) = if from_client {
            (f.c, f.s, f.cport, f.sport, f.cseq)
        } else {
            (f.s, f.c, f.sport, f.cport, f.sseq)
        };
        tcp_frame(
            &mut self.stage,
            &src,
            &dst,
            sp,
            dp,
            seq,
            ack,
            flags,
            &[],
            delay,
        )?;
        if flags & F_SYN != 0 {
            if from_client {
                f.cseq = f.cseq.wrapping_add(1);
            } else {
                f.sseq = f.sseq.wrapping_add(1);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Dev(usize),
    Internet,
}

#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    stage: &mut Stage,
    src: &Ep,
    dst: &Ep,
    sp: u16,
    dp: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
    delay: u64,
) -> io::Result<()> {
    // Windows as the SYNs announce them; later ones are scaled by 2^7.
    let window = match (flags & F_SYN != 0, src.dev == ROUTER) {
        (true, true) => 65_160,
        (true, false) => 64_240,
        (false, true) => 509,
        (false, false) => 502,
    };
    let mut t = TcpHeader::new(sp, dp, seq, window);
    t.syn = flags & F_SYN != 0;
    t.ack = flags & F_ACK != 0;
    t.psh = flags & F_PSH != 0;
    t.fin = flags & F_FIN != 0;
    if t.ack {
        t.acknowledgment_number = ack;
    }
    if t.syn {
        let mss = if matches!(src.ip, Ip::V6(_)) {
            1440
        } else {
            1460
        };
        t.set_options(&[
            TcpOptionElement::MaximumSegmentSize(mss),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .map_err(build_err)?;
    }
    stage.ip_frame(src, dst, 0, L4::Tcp(t), payload)?;
    stage.done(src, delay);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// payload builders
// ---------------------------------------------------------------------------------------------

fn extend_random(buf: &mut Vec<u8>, pool: &[u8], rng: &mut Rng, mut n: usize) {
    while n > 0 {
        let take = n.min(pool.len() / 2);
        let off = rng.below((pool.len() - take) as u64) as usize;
        buf.extend_from_slice(&pool[off..off + take]);
        n -= take;
    }
}

/// TLS 1.2/1.3 application data records totalling exactly `total` bytes (at least 6).
fn tls_content(buf: &mut Vec<u8>, pool: &[u8], rng: &mut Rng, total: usize) {
    buf.clear();
    let mut left = total.max(6);
    while left > 0 {
        let mut body = (left - 5).min(16_384 + 17);
        // Never leave a tail too short for a record of its own.
        if left - 5 - body < 6 && left - 5 - body > 0 {
            body = left - 5;
        }
        buf.extend_from_slice(&[0x17, 0x03, 0x03]);
        buf.extend_from_slice(&(body as u16).to_be_bytes());
        extend_random(buf, pool, rng, body);
        left -= 5 + body;
    }
}

/// SSH traffic after key exchange: encrypted length, payload and tag (chacha20-poly1305).
fn ssh_content(buf: &mut Vec<u8>, pool: &[u8], rng: &mut Rng, total: usize) {
    buf.clear();
    extend_random(buf, pool, rng, total.max(36).next_multiple_of(8) + 4 + 16);
}

fn ssh_string(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
    buf.extend_from_slice(s);
}

/// An unencrypted SSH binary packet (block size 8, zero padding).
fn ssh_packet(buf: &mut Vec<u8>, payload: &[u8]) {
    let mut pad = 8 - (5 + payload.len()) % 8;
    if pad < 4 {
        pad += 8;
    }
    buf.extend_from_slice(&((1 + payload.len() + pad) as u32).to_be_bytes());
    buf.push(pad as u8);
    buf.extend_from_slice(payload);
    buf.resize(buf.len() + pad, 0);
}

fn dns_name(buf: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        buf.push(label.len() as u8);
        buf.extend_from_slice(label.as_bytes());
    }
    buf.push(0);
}

/// A DNS query (or its response with at most one answer).
fn dns_message(
    buf: &mut Vec<u8>,
    id: u16,
    response: bool,
    name: &str,
    qtype: u16,
    answer: Option<(Ip, u32)>,
) {
    buf.extend_from_slice(&id.to_be_bytes());
    buf.extend_from_slice(&(if response { 0x8180u16 } else { 0x0100 }).to_be_bytes());
    buf.extend_from_slice(&1u16.to_be_bytes());
    buf.extend_from_slice(&u16::from(answer.is_some()).to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]);
    dns_name(buf, name);
    buf.extend_from_slice(&qtype.to_be_bytes());
    buf.extend_from_slice(&1u16.to_be_bytes());
    if let Some((ip, ttl)) = answer {
        buf.extend_from_slice(&[0xc0, 0x0c]);
        let (ty, rdata): (u16, &[u8]) = match &ip {
            Ip::V4(a) => (1, a),
            Ip::V6(a) => (28, a),
        };
        buf.extend_from_slice(&ty.to_be_bytes());
        buf.extend_from_slice(&1u16.to_be_bytes());
        buf.extend_from_slice(&ttl.to_be_bytes());
        buf.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        buf.extend_from_slice(rdata);
    }
}

fn mdns_query(buf: &mut Vec<u8>, service: &str) {
    buf.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    dns_name(buf, service);
    buf.extend_from_slice(&12u16.to_be_bytes()); // PTR
    buf.extend_from_slice(&1u16.to_be_bytes());
}

fn mdns_answer(buf: &mut Vec<u8>, service: &str, instance: &str) {
    buf.extend_from_slice(&[0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    dns_name(buf, service);
    buf.extend_from_slice(&12u16.to_be_bytes());
    buf.extend_from_slice(&1u16.to_be_bytes());
    buf.extend_from_slice(&120u32.to_be_bytes());
    let rdlen = 1 + instance.len() + 2;
    buf.extend_from_slice(&(rdlen as u16).to_be_bytes());
    buf.push(instance.len() as u8);
    buf.extend_from_slice(instance.as_bytes());
    buf.extend_from_slice(&[0xc0, 0x0c]);
}

/// `2024-11-15T21:00:00Z` for seconds since the epoch.
fn rfc3339(secs: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn ntp_ts(out: &mut [u8], unix_us: u64) {
    let secs = (unix_us / 1_000_000 + 2_208_988_800) as u32;
    let frac = (((unix_us % 1_000_000) << 32) / 1_000_000) as u32;
    out[..4].copy_from_slice(&secs.to_be_bytes());
    out[4..8].copy_from_slice(&frac.to_be_bytes());
}

/// A DHCP message: 1 discover, 2 offer, 3 request, 5 ack.
fn dhcp(buf: &mut Vec<u8>, msg: u8, xid: u32, dev: &Dev, server: [u8; 4]) {
    let reply = msg == 2 || msg == 5;
    buf.extend_from_slice(&[if reply { 2 } else { 1 }, 1, 6, 0]);
    buf.extend_from_slice(&xid.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0x80, 0]); // secs, broadcast flag
    buf.extend_from_slice(&[0; 4]); // ciaddr
    buf.extend_from_slice(if reply { &dev.v4 } else { &[0; 4] }); // yiaddr
    buf.extend_from_slice(&[0; 8]); // siaddr, giaddr
    buf.extend_from_slice(&dev.mac);
    buf.extend_from_slice(&[0; 10 + 64 + 128]);
    buf.extend_from_slice(&[0x63, 0x82, 0x53, 0x63]);
    buf.extend_from_slice(&[53, 1, msg]);
    if reply {
        buf.extend_from_slice(&[54, 4]);
        buf.extend_from_slice(&server);
        buf.extend_from_slice(&[51, 4]);
        buf.extend_from_slice(&86_400u32.to_be_bytes());
        buf.extend_from_slice(&[1, 4, 255, 255, 255, 0, 3, 4]);
        buf.extend_from_slice(&server);
        buf.extend_from_slice(&[6, 4]);
        buf.extend_from_slice(&server);
    } else {
        buf.extend_from_slice(&[61, 7, 1]);
        buf.extend_from_slice(&dev.mac);
        if msg == 3 {
            buf.extend_from_slice(&[50, 4]);
            buf.extend_from_slice(&dev.v4);
            buf.extend_from_slice(&[54, 4]);
            buf.extend_from_slice(&server);
        }
        buf.extend_from_slice(&[12, dev.name.len() as u8]);
        buf.extend_from_slice(dev.name.as_bytes());
        buf.extend_from_slice(&[55, 6, 1, 3, 6, 15, 28, 51]);
    }
    buf.push(255);
    if buf.len() < 300 {
        buf.resize(300, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::process::Command;

    /// Minimal pcap reader: (link type, nanos, [(ts_ns, data, wire_len)]).
    type Record = (i64, Vec<u8>, u32);

    fn parse(b: &[u8]) -> (u32, bool, Vec<Record>) {
        let u32at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let magic = u32at(0);
        let nanos = match magic {
            PCAP_MAGIC_MICROS => false,
            PCAP_MAGIC_NANOS => true,
            m => panic!("bad magic {m:08x}"),
        };
        assert_eq!(&b[4..8], &[2, 0, 4, 0]);
        let link = u32at(20);
        let mut out = Vec::new();
        let mut o = 24;
        while o < b.len() {
            assert!(o + 16 <= b.len(), "truncated record header at {o}");
            let secs = i64::from(u32at(o));
            let frac = i64::from(u32at(o + 4));
            let cap = u32at(o + 8) as usize;
            let wire = u32at(o + 12);
            let ts = secs * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
            o += 16;
            out.push((ts, b[o..o + cap].to_vec(), wire));
            o += cap;
        }
        assert_eq!(o, b.len());
        (link, nanos, out)
    }

    fn small(packets: u64, nanos: bool) -> NightSpec {
        NightSpec {
            packets,
            nanos,
            ..NightSpec::demo()
        }
    }

    #[test]
    fn pcap_writer_header_and_records() {
        let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 64, true).unwrap();
        w.write_packet(1_500_000_000_123_456_789, &[1u8; 100], 120)
            .unwrap();
        assert!(w.write_packet(-1, &[1], 1).is_err());
        assert!(w.write_packet(0, &[1, 2], 1).is_err());
        let b = w.into_inner().unwrap();
        let (link, nanos, recs) = parse(&b);
        assert_eq!((link, nanos), (1, true));
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].0, 1_500_000_000_123_456_789);
        assert_eq!(recs[0].1.len(), 64);
        assert_eq!(recs[0].2, 120);
        let mut w = PcapWriter::new(Vec::new(), LinkType::RAW, 65535, false).unwrap();
        w.write_packet(1_500_000_000_123_456_789, &[0x45; 20], 20)
            .unwrap();
        let (link, nanos, recs) = parse(&w.into_inner().unwrap());
        assert_eq!((link, nanos), (101, false));
        assert_eq!(recs[0].0, 1_500_000_000_123_456_000);
        assert!(PcapWriter::new(Vec::new(), LinkType::RAW, 0, false).is_err());
    }

    #[test]
    fn round_trip() {
        for nanos in [false, true] {
            let spec = small(3_000, nanos);
            let truth = write_night(Vec::new(), &spec).unwrap();
            let mut buf = Vec::new();
            let truth2 = write_night(&mut buf, &spec).unwrap();
            assert_eq!(truth, truth2);
            let (link, n, recs) = parse(&buf);
            assert_eq!((link, n), (1, nanos));
            assert_eq!(recs.len() as u64, truth.frames);
            assert!(truth.frames >= 3_000 && truth.frames < 3_000 + MAX_BURST);
            let bytes: u64 = recs.iter().map(|r| u64::from(r.2)).sum();
            assert_eq!(bytes, truth.bytes);
            assert!(
                recs.iter()
                    .all(|r| r.1.len() as u32 == r.2 && r.1.len() >= 42)
            );
            let (start, end) = (spec.start_ts_ns, spec.end_ts_ns());
            for w in recs.windows(2) {
                assert!(
                    w[0].0 < w[1].0,
                    "timestamps must increase: {} {}",
                    w[0].0,
                    w[1].0
                );
            }
            assert!(recs.iter().all(|r| r.0 >= start && r.0 < end));
            // The night is spread over the whole window, busier in the evening than at 3am.
            let hour = |h: i64| {
                recs.iter()
                    .filter(|r| (r.0 - start) / 3_600_000_000_000 == h)
                    .count()
            };
            assert!(hour(0) > 2 * hour(5), "{} vs {}", hour(0), hour(5));
            assert!(hour(7) > 0);
        }
    }

    #[test]
    fn ground_truth_is_plausible() {
        let t = write_night(std::io::sink(), &NightSpec::demo()).unwrap();
        assert!(t.frames >= 20_000);
        let own: Vec<String> = t.own_addresses.iter().map(ToString::to_string).collect();
        assert_eq!(own[0], "192.168.1.10");
        assert!(own.contains(&"fd00::10".to_string()));
        assert_eq!(
            t.hosts.iter().filter(|h| h.0.is_ipv4()).count(),
            DEVICES.len()
        );
        assert!(t.echo_requests_by_src[&"192.168.1.10".parse::<IpAddr>().unwrap()] > 50);
        assert!(t.echo_unanswered_by_src[&"192.168.1.10".parse::<IpAddr>().unwrap()] > 5);
        assert!(t.packets_by_src.contains_key("0.0.0.0"));
        assert!(t.packets_by_src.contains_key("::"));
        assert!(t.packets_by_src.contains_key(&mac_text(&DEVICES[PLUG].1)));
        assert!(t.vlan_frames > 0 && t.ipv4_fragments > 0 && t.tcp_sessions > 100);
        let sum: u64 = t.packets_by_src.values().sum();
        assert_eq!(sum, t.frames);
        for a in t.packets_by_src.keys() {
            if let Ok(ip) = a.parse::<IpAddr>() {
                let ok = match ip {
                    IpAddr::V4(v) => {
                        v.is_private()
                            || v.is_unspecified()
                            || [[203, 0, 113], [198, 51, 100]].contains(&[
                                v.octets()[0],
                                v.octets()[1],
                                v.octets()[2],
                            ])
                    }
                    IpAddr::V6(v) => {
                        let s = v.segments();
                        v.is_unspecified()
                            || s[0] == 0xfd00
                            || s[0] == 0xfe80
                            || (s[0] == 0x2001 && s[1] == 0xdb8)
                    }
                };
                assert!(ok, "address outside LAN/documentation ranges: {a}");
            }
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_731_704_400), "2024-11-15T21:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 86_399), "2000-02-29T23:59:59Z");
    }

    #[test]
    fn deterministic() {
        let spec = small(5_000, false);
        let mut a = Vec::new();
        let mut b = Vec::new();
        write_night(&mut a, &spec).unwrap();
        write_night(&mut b, &spec).unwrap();
        assert!(a == b);
        let mut c = Vec::new();
        write_night(&mut c, &NightSpec { seed: 7, ..spec }).unwrap();
        assert!(a != c);
    }

    #[test]
    fn rejects_unusable_specs() {
        let s = NightSpec::demo();
        assert!(
            write_night(
                Vec::new(),
                &NightSpec {
                    duration_s: 0,
                    ..s.clone()
                }
            )
            .is_err()
        );
        assert!(
            write_night(
                Vec::new(),
                &NightSpec {
                    packets: 10_000_000_000,
                    ..s.clone()
                }
            )
            .is_err()
        );
        assert!(
            write_night(
                Vec::new(),
                &NightSpec {
                    start_ts_ns: -5,
                    ..s
                }
            )
            .is_err()
        );
        let t = write_night(
            Vec::new(),
            &NightSpec {
                packets: 0,
                ..NightSpec::demo()
            },
        )
        .unwrap();
        assert_eq!(t.frames, 0);
    }

    fn tshark_available() -> bool {
        let ok = Command::new("tshark")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "tshark is required in CI"
            );
            eprintln!("skipped: tshark not installed");
        }
        ok
    }

    fn tshark(file: &Path, args: &[&str]) -> String {
        let o = Command::new("tshark")
            .arg("-n")
            .arg("-r")
            .arg(file)
            .args(args)
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "tshark {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn counts(text: &str) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for l in text.lines() {
            *m.entry(l.to_string()).or_default() += 1;
        }
        m
    }

    #[test]
    fn ground_truth_matches_tshark() {
        if !tshark_available() {
            return;
        }
        let dir = std::env::temp_dir();
        let f = dir.join(format!(
            "netdigest-synth-{}-{:?}.pcap",
            std::process::id(),
            std::thread::current().id()
        ));
        let truth = write_night_file(&f, &NightSpec::demo()).unwrap();
        let got = counts(&tshark(
            &f,
            &[
                "-Y",
                "icmp.type==8 || icmpv6.type==128",
                "-T",
                "fields",
                "-e",
                "_ws.col.Source",
            ],
        ));
        let want: BTreeMap<String, u64> = truth
            .echo_requests_by_src
            .iter()
            .map(|(a, n)| (a.to_string(), *n))
            .collect();
        assert_eq!(got, want);
        let got = counts(&tshark(
            &f,
            &[
                "-Y",
                "icmp.type==0 || icmpv6.type==129",
                "-T",
                "fields",
                "-e",
                "ip.dst",
                "-e",
                "ipv6.dst",
            ],
        ));
        let want: BTreeMap<String, u64> = truth
            .echo_replies_by_dst
            .iter()
            .map(|(a, n)| (a.to_string(), *n))
            .collect();
        let got: BTreeMap<String, u64> = got
            .into_iter()
            .map(|(k, v)| (k.trim().to_string(), v))
            .collect();
        assert_eq!(got, want);
        let got = counts(&tshark(&f, &["-T", "fields", "-e", "_ws.col.Source"]));
        assert_eq!(got, truth.packets_by_src);
        let bad = tshark(&f, &["-Y", "_ws.malformed || _ws.expert.severity >= error"]);
        assert!(bad.is_empty(), "malformed or erroneous packets:\n{bad}");
        let bad = tshark(
            &f,
            &[
                "-o",
                "ip.check_checksum:TRUE",
                "-o",
                "tcp.check_checksum:TRUE",
                "-o",
                "udp.check_checksum:TRUE",
                "-Y",
                "ip.checksum.status==Bad || tcp.checksum.status==Bad || udp.checksum.status==Bad \
                 || icmp.checksum.status==Bad || icmpv6.checksum.status==Bad",
            ],
        );
        assert!(bad.is_empty(), "bad checksums:\n{bad}");
        let n: u64 = tshark(&f, &["-Y", "vlan", "-T", "fields", "-e", "frame.number"])
            .lines()
            .count() as u64;
        assert_eq!(n, truth.vlan_frames);
        let n = tshark(
            &f,
            &[
                "-Y",
                "ip.flags.mf==1 || ip.frag_offset>0",
                "-T",
                "fields",
                "-e",
                "frame.number",
            ],
        )
        .lines()
        .count() as u64;
        assert_eq!(n, truth.ipv4_fragments);
        let n = tshark(
            &f,
            &[
                "-Y",
                "tcp.flags.syn==1 && tcp.flags.ack==0",
                "-T",
                "fields",
                "-e",
                "frame.number",
            ],
        )
        .lines()
        .count() as u64;
        assert_eq!(n, truth.tcp_sessions);
        std::fs::remove_file(&f).unwrap();
    }
}

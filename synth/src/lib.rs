//! synth: a deterministic generator of a realistic home-network "night" (Ethernet
//! pcap, 22:00 to 06:00) with known ground truth. The pcap writer it uses is
//! `pcapfmt`'s; this crate is not part of the netdigest library.
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
//! (203.0.113.0/24, 198.51.100.0/24, 2001:db8::/32; 192.0.2.0/24 in hostile mode); names
//! are example-style (example.*, tvvendor-example.com, example-cdn.net, ...).
//!
//! The names a real home network carries are planted at fixed points of the night, each
//! recorded in [`GroundTruth::names`] with the frame that carries it: DHCP DISCOVER/
//! REQUEST with host name (12), vendor class (60), client id (61) and requested address
//! (50), answered by OFFER/ACK, for every device but the router; the tablet comes back
//! at about 02:25 with a new randomised MAC but the same client id and host name
//! ([`GroundTruth::mac_changes`]); mDNS announcements (`<host>.local` A/AAAA, DNS-SD
//! `Kitchen TV._googlecast._tcp.local` and `Office Printer._ipp._tcp.local` with PTR,
//! SRV and TXT `fn=`/`md=`/`ty=`); NetBIOS name registration from the Windows laptop;
//! an LLMNR query and answer; SSDP NOTIFY with SERVER and USN from the TV; DNS lookups
//! (A, AAAA, CNAME chains such as `www.example-vendor.com` -> `cdn.example-cdn.net` ->
//! 198.51.100.7, which the TV reaches as `telemetry.tvvendor-example.com`) each followed
//! by a connection to the answer: TLS with a server name (the laptop's ClientHello
//! carries a post-quantum key share and spans two TCP segments), QUIC v1 Initials with
//! a server name (the phone's ClientHello spans two Initials), HTTP with a Host header.
//! [`NightSpec::hostile_names`] adds a device that plants [`hostile_names`] in DHCP,
//! mDNS, DNS answers, TLS and QUIC server names and HTTP Host.
//!
//! [`NightSpec::activities`] plants findings on top of the ordinary traffic (see
//! [`Activity`]): a beacon, its irregular control, a large upload at an unusual hour, a
//! new destination, a volume spike, a long connection, a DNS-tunnel-like burst, a device
//! that stops answering pings; [`GroundTruth::planted`] says what came out (device,
//! remote, every contact's time and sizes). Planting leaves the ordinary frames as they
//! are. [`night_sequence`] makes consecutive nights (other seeds, the same habits) with
//! activities on chosen nights, for baselines.
//!
//! Timestamps increase strictly and stay inside the window, with more traffic in
//! the evening and morning than at 3am. The same [`NightSpec`] always gives the
//! same bytes.
//!
//! # Modules
//! `night` (the generator: time, staging, the burst loop), `activity` (what can be
//! planted, its ground truth, sequences of nights), `plant` (planted activities as
//! state machines merged by time into the night), `kind` (the kinds of traffic,
//! their weights and how one is drawn), `named` (the names events and their ground
//! truth), `hello` (TLS ClientHello/ServerHello), `quic` (protected QUIC v1 Initials),
//! `link` (echo, ARP, neighbour discovery, DHCP),
//! `services` (DNS, mDNS, NTP, syslog, HTTP/SSH/TLS clients), `tcp` (sessions and
//! segments), `frames` (Ethernet/IP/transport headers of one burst), `payload`
//! (application bytes), `cast` (devices, servers, addresses), `clock` (the night's
//! traffic shape), `rng` (splitmix64).
//!
//! Invariant for every change: the random draws happen in a fixed order, so a change
//! that adds, drops or reorders a draw changes every byte after it.

// Product code keeps its functions short (clippy's default: 100 lines); tests may
// spell out a long scenario.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use pcapfmt::{LinkType, PcapWriter};

mod activity;
mod cast;
mod clock;
mod frames;
mod hello;
mod kind;
mod link;
mod named;
mod night;
mod payload;
mod plant;
mod quic;
mod rng;
mod services;
mod tcp;

pub use activity::{
    Activity, Awake, Beacon, Contact, Device, DnsTunnel, LongConnection, NewDestination, Nights,
    PlantedActivity, Transport, VolumeSpike, doc_address, every_activity, night_sequence,
    since_22h, usual_name,
};
use night::Gen;

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
    /// Adds a device (192.168.1.66, a locally administered MAC) whose DHCP host names,
    /// mDNS names, DNS answer names, TLS and QUIC server names and HTTP Host headers are
    /// hostile: markup, U+202E, NUL, a 10 kB name, invalid UTF-8 (see
    /// [`hostile_names`]). Its frames may break the protocols' rules on purpose. Off in
    /// [`NightSpec::demo`].
    pub hostile_names: bool,
    /// Findings to plant on top of the ordinary traffic (see [`Activity`]); none in
    /// [`NightSpec::demo`]. Each is deterministic per seed and leaves the ordinary frames
    /// as they are; [`GroundTruth::planted`] says what came out. Planted frames come on
    /// top of `packets`.
    pub activities: Vec<Activity>,
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
            hostile_names: false,
            activities: Vec::new(),
        }
    }

    pub(crate) fn end_ts_ns(&self) -> i64 {
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
    /// Every name the night carries, once per (kind, name, target, MAC, client, address),
    /// in order of first appearance: DHCP host names, vendor classes and client ids,
    /// mDNS host, service and TXT names, NetBIOS and LLMNR names, SSDP headers, DNS
    /// answers, TLS and QUIC server names, HTTP Host headers.
    pub names: Vec<PlantedName>,
    /// Devices that left and came back with a different (randomised) MAC, keeping their
    /// DHCP client id and host name.
    pub mac_changes: Vec<MacChange>,
    /// The identity of each LAN device that sent a frame (not the router): what it calls
    /// itself in DHCP and every MAC and address it used.
    pub devices: Vec<PlantedDevice>,
    /// What [`NightSpec::activities`] planted, in that order.
    pub planted: Vec<PlantedActivity>,
}

/// What kind of name a [`PlantedName`] is, i.e. where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NameKind {
    /// DHCPv4 option 12 in DISCOVER and REQUEST; `addr` is the address the device gets.
    DhcpHostname,
    /// DHCPv4 option 60.
    DhcpVendorClass,
    /// DHCPv4 option 61 (raw bytes, type byte first).
    DhcpClientId,
    /// An mDNS A/AAAA record: `name` is `<host>.local`, `addr` its address.
    MdnsHost,
    /// A DNS-SD service instance (PTR target, SRV/TXT owner), e.g.
    /// `Kitchen TV._googlecast._tcp.local`; `addr` the announcing device's address.
    MdnsService,
    /// The value of a TXT `fn=` (friendly name) string.
    MdnsFriendlyName,
    /// The value of a TXT `md=` (model) or `ty=` (printer type) string.
    MdnsModel,
    /// A unique NetBIOS name registered (without padding and suffix); `addr` its address.
    Nbns,
    /// An LLMNR answer's name; `addr` the answered address (the responder's).
    Llmnr,
    /// An SSDP `SERVER` header value.
    SsdpServer,
    /// An SSDP `USN` header value.
    SsdpUsn,
    /// A DNS answer: `name` is the name the client asked for, `addr` an A/AAAA address
    /// at the end of the answer, `target` the canonical name when reached through a
    /// CNAME; `mac`/`client` are the asking device's.
    DnsAnswer,
    /// A TLS ClientHello server name over TCP; `addr` the server's address.
    TlsSni,
    /// A QUIC v1 Initial's ClientHello server name; `addr` the server's address.
    QuicSni,
    /// An HTTP/1.1 request's Host header; `addr` the server's address.
    HttpHost,
}

impl NameKind {
    /// Short text for tables and test messages (`dhcp-hostname`, `tls-sni`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NameKind::DhcpHostname => "dhcp-hostname",
            NameKind::DhcpVendorClass => "dhcp-vendor",
            NameKind::DhcpClientId => "dhcp-client-id",
            NameKind::MdnsHost => "mdns-host",
            NameKind::MdnsService => "mdns-service",
            NameKind::MdnsFriendlyName => "mdns-fn",
            NameKind::MdnsModel => "mdns-model",
            NameKind::Nbns => "nbns",
            NameKind::Llmnr => "llmnr",
            NameKind::SsdpServer => "ssdp-server",
            NameKind::SsdpUsn => "ssdp-usn",
            NameKind::DnsAnswer => "dns-answer",
            NameKind::TlsSni => "tls-sni",
            NameKind::QuicSni => "quic-sni",
            NameKind::HttpHost => "http-host",
        }
    }
}

/// One name planted in the night (deduplicated: `count` is how often it was sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedName {
    pub kind: NameKind,
    /// The name's bytes as sent (DNS-style names with their labels joined by `.`); not
    /// UTF-8 for some hostile names.
    pub name: Vec<u8>,
    /// [`NameKind::DnsAnswer`] through a CNAME: the canonical name.
    pub target: Option<Vec<u8>>,
    /// The LAN device the name belongs to or was seen by (the sender of a DHCP, mDNS,
    /// NetBIOS, LLMNR or SSDP message; the client of a DNS lookup or connection).
    pub mac: [u8; 6],
    /// That device's address on the frame (None when it sent from 0.0.0.0).
    pub client: Option<IpAddr>,
    /// The address the name stands for (see [`NameKind`]).
    pub addr: Option<IpAddr>,
    /// DNS/mDNS/NetBIOS record TTL, DHCP lease time.
    pub ttl: Option<u32>,
    /// Planted by the hostile-names device.
    pub hostile: bool,
    /// Frame number (1-based, tshark's `frame.number`) of the first frame that carries
    /// it; for a ClientHello over several TCP segments or QUIC Initials, the last one
    /// (where tshark shows the reassembled message).
    pub first_frame: u64,
    pub first_ts_ns: i64,
    pub count: u64,
}

/// A device that came back with a new randomised MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacChange {
    pub old_mac: [u8; 6],
    pub new_mac: [u8; 6],
    /// DHCP option 61, unchanged.
    pub client_id: Vec<u8>,
    pub host_name: Vec<u8>,
    /// Frame number of the first frame with the new MAC.
    pub frame: u64,
}

/// A LAN device's identity as it presents itself in DHCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedDevice {
    /// DHCP option 12 (the last one it sent, for the hostile device).
    pub host_name: Vec<u8>,
    /// DHCP option 60, when it sends one.
    pub vendor_class: Option<Vec<u8>>,
    /// DHCP option 61.
    pub client_id: Vec<u8>,
    /// Every MAC it used, first to last.
    pub macs: Vec<[u8; 6]>,
    /// Every IPv4 and IPv6 address it used.
    pub addrs: Vec<IpAddr>,
    /// Its (first) MAC is locally administered (randomised).
    pub private_mac: bool,
    pub hostile: bool,
}

/// The names the hostile device uses, in this order: markup, an attribute break-out,
/// U+202E (right-to-left override), NUL, a name of about 10 kB (63-byte labels, far past
/// DNS's 255-byte limit), and invalid UTF-8.
#[must_use]
pub fn hostile_names() -> [Vec<u8>; 6] {
    let mut long = Vec::with_capacity(10_100);
    while long.len() < 10_000 {
        long.extend_from_slice(&[b'x'; 63]);
        long.push(b'.');
    }
    long.extend_from_slice(b"hostile.example");
    [
        b"<script>alert(1)</script>".to_vec(),
        b"\"><img src=x onerror=alert(1)>".to_vec(),
        "kitchen\u{202e}vt-nehctik".as_bytes().to_vec(),
        b"nul\0name".to_vec(),
        long,
        b"bad-\xff\xfe-\xc3\x28-name".to_vec(),
    ]
}

/// Writes a night to `w` (buffer it yourself) and returns its ground truth.
///
/// With a [`VolumeSpike`] planted, the night without activities is generated first (and
/// thrown away) to measure the devices' usual volume.
///
/// # Errors
/// The spec is unusable (zero duration, a window outside 1970..2106, more than one
/// packet per 16 µs of window on average, or a planted activity that does not fit in
/// the window), or a write failed.
pub fn write_night<W: Write>(w: W, spec: &NightSpec) -> io::Result<GroundTruth> {
    let normal = if spec
        .activities
        .iter()
        .any(|a| matches!(a, Activity::VolumeSpike(_)))
    {
        Some(device_bytes(spec)?)
    } else {
        None
    };
    let out = PcapWriter::new(w, LinkType::ETHERNET, 262_144, spec.nanos)?;
    let mut g = Gen::new(out, spec, normal.as_deref())?;
    g.run()?;
    let (truth, out) = g.finish();
    out.into_inner()?;
    Ok(truth)
}

/// Each device's bytes (frames with its MAC as source or destination) in `spec`'s night
/// without activities, by device index.
fn device_bytes(spec: &NightSpec) -> io::Result<Vec<u64>> {
    let plain = NightSpec {
        activities: Vec::new(),
        ..spec.clone()
    };
    let out = PcapWriter::new(io::sink(), LinkType::ETHERNET, 262_144, spec.nanos)?;
    let mut g = Gen::new(out, &plain, None)?;
    g.measure = Some(vec![0; g.cast.devs.len()]);
    g.run()?;
    Ok(g.measure.take().unwrap_or_default())
}

/// Writes a night to `path`, buffered, under a temporary name in the same
/// directory that is renamed over `path` only when complete.
///
/// # Errors
/// As [`write_night`], or the file could not be created, synced or renamed.
pub fn write_night_file(path: &Path, spec: &NightSpec) -> io::Result<GroundTruth> {
    let tmp = temporary_beside(path)?;
    let written = File::create(&tmp).and_then(|file| {
        let truth = write_night(BufWriter::with_capacity(1 << 20, &file), spec)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(truth)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// `.<name>.tmp-<pid>` in `path`'s directory (the netdigest library's atomic-file
/// naming, so a leftover is recognisably ours).
fn temporary_beside(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| invalid("no file name"))?
        .to_string_lossy();
    let tmp = format!(".{name}.tmp-{}", std::process::id());
    Ok(path.with_file_name(tmp))
}

pub(crate) fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

pub(crate) fn build_err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(format!("building a synthetic packet: {e}"))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_planted;

//! What can be planted in a night besides its ordinary traffic ([`Activity`]), what the
//! ground truth says about it afterwards ([`PlantedActivity`]), and sequences of nights
//! for learning a baseline ([`night_sequence`]).
//!
//! Invariants: planted traffic draws from its own random streams (one per activity,
//! from the seed and the activity's position), so planting changes no byte of the
//! ordinary frames (only where they fall in the file, and a timestamp by a microsecond
//! where two would collide); [`Activity::NoPingReplies`] removes echo replies without
//! changing any draw. Remote addresses are documentation ranges (192.0.2.0/24 unless
//! given), names are the caller's (use example-style ones).

use std::net::{IpAddr, Ipv4Addr};

use crate::NightSpec;
use crate::cast::DEVICES;

/// A LAN device of the generated night (see the crate documentation for its habits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Device {
    /// 192.168.1.1, `router`.
    Router,
    /// 192.168.1.10, `netdigest` (the capturing appliance).
    Appliance,
    /// 192.168.1.21, `pixel-7`.
    AnnaPhone,
    /// 192.168.1.22, `bens-iphone` (joins at about 22:35).
    BenPhone,
    /// 192.168.1.30, `LAPTOP-K7Q2M9` (asleep from about 01:15 to 05:25).
    Laptop,
    /// 192.168.1.40, `kitchen-tv` (off from about 23:45).
    Tv,
    /// 192.168.1.50, `brother-printer`.
    Printer,
    /// 192.168.1.23, `anna-tablet` (a new randomised MAC from about 02:25).
    Tablet,
    /// 192.168.1.61, `hallway-thermostat`.
    Thermostat,
    /// 192.168.1.60, `smart-plug-6060` (joins at about 04:35).
    SmartPlug,
}

impl Device {
    /// Every device, in the generator's order.
    pub const ALL: [Device; 10] = [
        Device::Router,
        Device::Appliance,
        Device::AnnaPhone,
        Device::BenPhone,
        Device::Laptop,
        Device::Tv,
        Device::Printer,
        Device::Tablet,
        Device::Thermostat,
        Device::SmartPlug,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Its DHCP host name.
    #[must_use]
    pub fn host_name(self) -> &'static str {
        DEVICES[self.index()].0
    }

    /// The MAC it starts the night with.
    #[must_use]
    pub fn mac(self) -> [u8; 6] {
        DEVICES[self.index()].1
    }

    #[must_use]
    pub fn ipv4(self) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 1, DEVICES[self.index()].2)
    }
}

/// How a planted device talks to its remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS over TCP 443, opening with a ClientHello that names the remote (SNI).
    Tls,
    /// TCP to this port, payload opaque bytes.
    Tcp(u16),
    /// UDP request and response to this port, payload opaque bytes.
    Udp(u16),
}

impl Transport {
    #[must_use]
    pub fn port(self) -> u16 {
        match self {
            Transport::Tls => 443,
            Transport::Tcp(p) | Transport::Udp(p) => p,
        }
    }
}

/// A device contacting one remote again and again. As [`Activity::Beacon`]: every
/// `period_s` seconds (each interval `period_s * (1 ± jitter)`, uniform) from a phase
/// drawn in the first period to the end of the window, each contact with almost the same
/// sizes (±2 %). As [`Activity::Irregular`] (the control): exponential intervals with
/// mean `period_s` and sizes uniform in 0.25..1.75 times the given ones.
///
/// Each contact is a short connection of its own: TCP (handshake, the request, the
/// response, FIN both ways; with [`Transport::Tls`] a ClientHello naming `name` and the
/// ServerHello first) or a UDP request and response. The device looks `name` up (DNS A to
/// the router, answered with `remote`) before its first contact and again before the
/// first contact after the answer's TTL ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    pub device: Device,
    pub name: String,
    pub remote: Ipv4Addr,
    pub transport: Transport,
    pub period_s: u32,
    /// Each interval is off the period by at most this fraction (per mille), uniformly.
    pub jitter_permille: u32,
    /// Application bytes of the request and of the response (with TLS: after the
    /// ClientHello and the ServerHello, as TLS records).
    pub up_bytes: u32,
    pub down_bytes: u32,
    pub dns_ttl_s: u32,
}

impl Beacon {
    /// Every `period_s` seconds over TLS to `name` (at [`doc_address`]`(name)`), 2 %
    /// jitter, 180 bytes up and 90 down, DNS TTL 300 s.
    #[must_use]
    pub fn new(device: Device, name: &str, period_s: u32) -> Beacon {
        Beacon {
            device,
            name: name.to_string(),
            remote: doc_address(name),
            transport: Transport::Tls,
            period_s,
            jitter_permille: 20,
            up_bytes: 180,
            down_bytes: 90,
            dns_ttl_s: 300,
        }
    }
}

/// A device sending a large volume in one burst: a DNS lookup of `name`, then one TLS
/// connection to `remote` that uploads `bytes` of application data at `rate` bytes/s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awake {
    pub device: Device,
    pub name: String,
    pub remote: Ipv4Addr,
    /// Seconds after the window start (see [`since_22h`]).
    pub start_s: u32,
    pub bytes: u64,
    pub rate: u64,
}

impl Awake {
    /// At `start_s`, `bytes` to `name` at 2 MB/s.
    #[must_use]
    pub fn new(device: Device, name: &str, start_s: u32, bytes: u64) -> Awake {
        Awake {
            device,
            name: name.to_string(),
            remote: doc_address(name),
            start_s,
            bytes,
            rate: 2_000_000,
        }
    }
}

/// A device contacting a name it has not contacted before: a DNS lookup, then `contacts`
/// connections (one a minute) with the given sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDestination {
    pub device: Device,
    pub name: String,
    pub remote: Ipv4Addr,
    pub transport: Transport,
    pub start_s: u32,
    pub contacts: u32,
    pub up_bytes: u32,
    pub down_bytes: u32,
}

impl NewDestination {
    /// One TLS connection at `start_s`, 600 bytes up, 40 000 down.
    #[must_use]
    pub fn new(device: Device, name: &str, start_s: u32) -> NewDestination {
        NewDestination {
            device,
            name: name.to_string(),
            remote: doc_address(name),
            transport: Transport::Tls,
            start_s,
            contacts: 1,
            up_bytes: 600,
            down_bytes: 40_000,
        }
    }
}

/// A device's bytes far above its usual: TLS downloads from the device's usual server
/// (by its usual name, see [`usual_name`]), spread evenly over `duration_s` from
/// `start_s`, adding `(multiplier_pct - 100) %` of the device's bytes in the same night
/// without any activity (measured: the generator runs that night first), so that the
/// device's total is about `multiplier_pct %` of its normal one. A device's bytes are the
/// wire bytes of the frames with its MAC as Ethernet source or destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpike {
    pub device: Device,
    pub multiplier_pct: u32,
    pub start_s: u32,
    pub duration_s: u32,
}

impl VolumeSpike {
    /// Ten times the usual volume, from 22:30 over half an hour.
    #[must_use]
    pub fn new(device: Device, multiplier_pct: u32) -> VolumeSpike {
        VolumeSpike {
            device,
            multiplier_pct,
            start_s: 1_800,
            duration_s: 1_800,
        }
    }
}

/// One TCP connection held open for `duration_s` (DNS lookup, handshake, TLS hello when
/// [`Transport::Tls`]), with a request/response exchange every `every_s` seconds (±1 %),
/// closed with FIN at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongConnection {
    pub device: Device,
    pub name: String,
    pub remote: Ipv4Addr,
    /// [`Transport::Tls`] or [`Transport::Tcp`].
    pub transport: Transport,
    pub start_s: u32,
    pub duration_s: u32,
    pub every_s: u32,
    pub up_bytes: u32,
    pub down_bytes: u32,
}

impl LongConnection {
    /// TLS from `start_s` for 90 minutes, 120 bytes up and 200 down every 5 minutes.
    #[must_use]
    pub fn new(device: Device, name: &str, start_s: u32) -> LongConnection {
        LongConnection {
            device,
            name: name.to_string(),
            remote: doc_address(name),
            transport: Transport::Tls,
            start_s,
            duration_s: 5_400,
            every_s: 300,
            up_bytes: 120,
            down_bytes: 200,
        }
    }
}

/// Many DNS TXT queries for unique random subdomains of `domain`
/// (`<base32 label>.<domain>`) to the router, evenly over `duration_s` (±20 % per
/// interval); each answered NXDOMAIN with probability `nxdomain_permille`, else with a
/// TXT record of random base32.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsTunnel {
    pub device: Device,
    pub domain: String,
    pub start_s: u32,
    pub duration_s: u32,
    pub queries: u32,
    pub nxdomain_permille: u32,
}

impl DnsTunnel {
    /// 400 queries in 2 minutes, 70 % NXDOMAIN.
    #[must_use]
    pub fn new(device: Device, domain: &str, start_s: u32) -> DnsTunnel {
        DnsTunnel {
            device,
            domain: domain.to_string(),
            start_s,
            duration_s: 120,
            queries: 400,
            nxdomain_permille: 700,
        }
    }
}

/// Something planted in a night (see [`NightSpec::activities`]). Planted traffic ignores
/// when the device is usually awake: that is the point of [`Activity::Awake`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// Periodic contacts (beaconing).
    Beacon(Beacon),
    /// The control for a beacon: same device, remote and mean interval, not periodic.
    Irregular(Beacon),
    /// A large volume at an unusual hour.
    Awake(Awake),
    NewDestination(NewDestination),
    VolumeSpike(VolumeSpike),
    LongConnection(LongConnection),
    DnsTunnel(DnsTunnel),
    /// The device does not answer echo requests tonight (its other traffic is unchanged;
    /// the requests the others send it stay, their replies are gone).
    NoPingReplies(Device),
}

impl Activity {
    #[must_use]
    pub fn device(&self) -> Device {
        match self {
            Activity::Beacon(b) | Activity::Irregular(b) => b.device,
            Activity::Awake(a) => a.device,
            Activity::NewDestination(n) => n.device,
            Activity::VolumeSpike(v) => v.device,
            Activity::LongConnection(l) => l.device,
            Activity::DnsTunnel(t) => t.device,
            Activity::NoPingReplies(d) => *d,
        }
    }

    /// Short text for tables and test messages (`beacon`, `irregular`, ...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Activity::Beacon(_) => "beacon",
            Activity::Irregular(_) => "irregular",
            Activity::Awake(_) => "awake",
            Activity::NewDestination(_) => "new-destination",
            Activity::VolumeSpike(_) => "volume-spike",
            Activity::LongConnection(_) => "long-connection",
            Activity::DnsTunnel(_) => "dns-tunnel",
            Activity::NoPingReplies(_) => "no-ping-replies",
        }
    }
}

/// What was planted, as it came out (in [`crate::GroundTruth::planted`], in the order of
/// [`NightSpec::activities`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedActivity {
    pub activity: Activity,
    pub host_name: String,
    /// The device's MAC on its first planted frame (the night's last one for
    /// [`Activity::NoPingReplies`]).
    pub mac: [u8; 6],
    /// The device's address (IPv4: planted traffic is IPv4).
    pub addr: IpAddr,
    /// The name contacted ([`Activity::DnsTunnel`]: the domain).
    pub remote_name: Option<String>,
    pub remote_addr: Option<IpAddr>,
    pub remote_port: Option<u16>,
    pub transport: Option<Transport>,
    /// First and last planted frame (0 when none).
    pub first_ts_ns: i64,
    pub last_ts_ns: i64,
    /// Connections (TCP), request/response pairs (UDP) or queries ([`DnsTunnel`]), in
    /// order; not the DNS lookups before them.
    pub contacts: Vec<Contact>,
    /// Frames and wire bytes of everything planted for it (DNS lookups included).
    pub frames: u64,
    pub bytes: u64,
    /// DNS queries it sent, and how many were answered NXDOMAIN.
    pub dns_queries: u64,
    pub dns_nxdomain: u64,
    /// [`DnsTunnel`]: every name queried (all different), in order.
    pub queried_names: Vec<String>,
    /// [`VolumeSpike`]: the device's bytes in the night without activities.
    pub normal_bytes: Option<u64>,
    /// [`Activity::NoPingReplies`]: echo requests to the device left unanswered because of
    /// it (requests while the device is away or asleep are unanswered anyway).
    pub unanswered_pings: u64,
}

/// One connection, UDP exchange or query of a [`PlantedActivity`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// Its first frame (the SYN, the UDP request or the query) and its last.
    pub start_ts_ns: i64,
    pub end_ts_ns: i64,
    pub client_port: u16,
    pub frames: u64,
    /// TCP or UDP payload bytes from the device and to it (TLS handshake included).
    pub up_bytes: u64,
    pub down_bytes: u64,
    /// Request/response exchanges after the handshake.
    pub exchanges: u32,
}

/// One activity of each kind, for demos and tests, on different devices so they do not
/// mix: the tablet beacons to `cdn-sync.example-beacon.net` every 5 minutes; Anna's phone
/// contacts `poll.example-irregular.net` irregularly (mean 5 minutes); the printer
/// uploads `awake_bytes` to `upload.example-print.net` at 03:10; the TV contacts
/// `new.example-destination.org` at 22:50; the laptop's volume is ten times its usual
/// from 22:30; the thermostat holds a connection to `stream.example-long.net` from 23:00
/// for 90 minutes; Ben's phone sends a DNS-tunnel-like burst under
/// `t.example-tunnel.net` at 00:30; the printer does not answer pings.
#[must_use]
pub fn every_activity(awake_bytes: u64) -> Vec<Activity> {
    vec![
        Activity::Beacon(Beacon::new(
            Device::Tablet,
            "cdn-sync.example-beacon.net",
            300,
        )),
        Activity::Irregular(Beacon::new(
            Device::AnnaPhone,
            "poll.example-irregular.net",
            300,
        )),
        Activity::Awake(Awake::new(
            Device::Printer,
            "upload.example-print.net",
            since_22h(3, 10),
            awake_bytes,
        )),
        Activity::NewDestination(NewDestination::new(
            Device::Tv,
            "new.example-destination.org",
            since_22h(22, 50),
        )),
        Activity::VolumeSpike(VolumeSpike::new(Device::Laptop, 1000)),
        Activity::LongConnection(LongConnection::new(
            Device::Thermostat,
            "stream.example-long.net",
            since_22h(23, 0),
        )),
        Activity::DnsTunnel(DnsTunnel::new(
            Device::BenPhone,
            "t.example-tunnel.net",
            since_22h(0, 30),
        )),
        Activity::NoPingReplies(Device::Printer),
    ]
}

/// A documentation address for a planted remote's name: 192.0.2.100 to 192.0.2.227,
/// from a hash of the name.
#[must_use]
pub fn doc_address(name: &str) -> Ipv4Addr {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    Ipv4Addr::new(192, 0, 2, 100 + (h % 128) as u8)
}

/// The name a device usually contacts (by DNS, then TLS or HTTP), which
/// [`VolumeSpike`] downloads from.
#[must_use]
pub fn usual_name(d: Device) -> &'static str {
    crate::cast::SERVERS[crate::plant::usual_server(d.index())].0
}

/// Seconds from the window start (22:00 local in [`NightSpec::demo`] and its sequences)
/// to `hour:minute` local, e.g. `since_22h(3, 10)` = 18 600.
#[must_use]
pub const fn since_22h(hour: u32, minute: u32) -> u32 {
    ((hour + 2) % 24) * 3600 + minute * 60
}

/// On which nights of a [`night_sequence`] an activity is planted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nights {
    /// Every night: part of the device's baseline.
    Every,
    Only(usize),
    /// From this night on.
    From(usize),
    List(Vec<usize>),
}

impl Nights {
    #[must_use]
    pub fn includes(&self, night: usize) -> bool {
        match self {
            Nights::Every => true,
            Nights::Only(n) => *n == night,
            Nights::From(n) => night >= *n,
            Nights::List(l) => l.contains(&night),
        }
    }
}

/// `nights` consecutive nights from `base`: night `i` starts `i` days after it, night 0
/// has its seed and the others seeds derived from it (so ordinary traffic differs while
/// every device keeps its habits: the same devices, usual destinations and hours), each
/// with `base`'s activities and those of `plan` whose [`Nights`] include it.
#[must_use]
pub fn night_sequence(
    base: &NightSpec,
    nights: usize,
    plan: &[(Nights, Activity)],
) -> Vec<NightSpec> {
    (0..nights)
        .map(|i| {
            let day = i64::try_from(i).unwrap_or(i64::MAX / 2) * 86_400 * 1_000_000_000;
            let mut spec = base.clone();
            spec.start_ts_ns = base.start_ts_ns.saturating_add(day);
            if i > 0 {
                let mut r =
                    crate::rng::Rng(base.seed ^ (i as u64).wrapping_mul(0x6a09_e667_f3bc_c909));
                spec.seed = r.next();
            }
            spec.activities.extend(
                plan.iter()
                    .filter(|(n, _)| n.includes(i))
                    .map(|(_, a)| a.clone()),
            );
            spec
        })
        .collect()
}

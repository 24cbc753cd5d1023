//! The kinds of traffic a burst can be, how much of each there is at a point of the
//! night ([`Kind::weight`]), how one is drawn ([`Kind::draw`]), and what each stages
//! ([`Gen::burst`]).
//!
//! Invariants: [`Kind::ALL`] is the drawing order (one draw walks it, subtracting
//! weights), so reordering it changes every night; a weight is 0 when its device is
//! away or asleep. Before any kind is drawn, a device whose join time has come joins
//! (DHCP, ARP probes, neighbour discovery) as the whole burst.

use std::io::{self, Write};

use crate::cast::{
    ANNA, BEN, Fam, Ip, LAPTOP, PI, PLUG, PRINTER, ROUTER, S_CDN, S_PLUG, S_PUSH, S_THERMO, TABLET,
    THERMO, TV, awake, joins_at,
};
use crate::clock::{HUMAN, knots};
use crate::link::Target;
use crate::night::Gen;
use crate::rng::Rng;

/// One kind of burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The appliance pings the router (1 to 4 echoes).
    PingRouter,
    /// The appliance pings the internet (1 to 5 echoes, some lost).
    PingInternet,
    /// The appliance pings the laptop (unanswered while it sleeps).
    PingLaptop,
    /// A phone, the tablet or the laptop pings another device.
    DevicePing,
    /// ICMPv6 echo from the appliance (router over ULA or link-local, or the internet).
    Ping6,
    /// IPv6 neighbour solicitation and advertisement.
    Neighbour,
    /// ARP who-has and is-at (or unanswered who-has).
    Arp,
    /// DNS then HTTPS from a person's device.
    Browse,
    /// A phone's push keepalive (TLS).
    PushKeepalive,
    /// The TV streaming (TLS), while it is on.
    TvStream,
    /// DNS then an HTTP/1.1 download.
    HttpDownload,
    /// An SSH session from the laptop, while it is awake.
    Ssh,
    /// An mDNS query and its answer.
    Mdns,
    /// NTP (the printer's tagged with VLAN 10).
    Ntp,
    /// A long router syslog line, in IPv4 fragments.
    Syslog,
    /// The thermostat's TLS check-in.
    ThermostatTls,
    /// The smart plug's TLS check-in, once it has joined.
    PlugTls,
    /// An unsolicited router advertisement.
    RouterAdvertisement,
}

/// What a point of the night is like, for the weights.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moment {
    /// How much people use the network (see [`HUMAN`]).
    human: f64,
    /// 1 when the device is on the network and awake, else 0.
    laptop: f64,
    tv: f64,
    plug: f64,
}

impl Moment {
    /// The moment at window fraction `x`.
    pub(crate) fn at(x: f64) -> Moment {
        let on = |d| if awake(d, x) { 1.0 } else { 0.0 };
        Moment {
            human: knots(&HUMAN, x),
            laptop: on(LAPTOP),
            tv: on(TV),
            plug: on(PLUG),
        }
    }
}

impl Kind {
    /// Every kind, in drawing order.
    pub(crate) const ALL: [Kind; 18] = [
        Kind::PingRouter,
        Kind::PingInternet,
        Kind::PingLaptop,
        Kind::DevicePing,
        Kind::Ping6,
        Kind::Neighbour,
        Kind::Arp,
        Kind::Browse,
        Kind::PushKeepalive,
        Kind::TvStream,
        Kind::HttpDownload,
        Kind::Ssh,
        Kind::Mdns,
        Kind::Ntp,
        Kind::Syslog,
        Kind::ThermostatTls,
        Kind::PlugTls,
        Kind::RouterAdvertisement,
    ];

    /// Relative frequency of this kind at moment `m`.
    pub(crate) fn weight(self, m: Moment) -> f64 {
        let h = m.human;
        match self {
            Kind::PingRouter => 6.0,
            Kind::PingInternet => 3.0,
            Kind::PingLaptop => 1.5,
            Kind::DevicePing => 0.6 + 1.5 * h,
            Kind::Ping6 => 3.0,
            Kind::Neighbour => 3.0,
            Kind::Arp => 4.0,
            Kind::Browse => 2.0 + 12.0 * h,
            Kind::PushKeepalive => 4.0,
            Kind::TvStream => 2.5 * m.tv,
            Kind::HttpDownload => 0.3 + 1.5 * h,
            Kind::Ssh => 2.5 * h * m.laptop,
            Kind::Mdns => 2.0,
            Kind::Ntp => 1.5,
            Kind::Syslog => 0.25,
            Kind::ThermostatTls => 2.0,
            Kind::PlugTls => 2.0 * m.plug,
            Kind::RouterAdvertisement => 0.2,
        }
    }

    /// Draws one kind with probability proportional to its weight at `m` (one draw:
    /// a uniform point in the total weight, located by walking [`Kind::ALL`]).
    pub(crate) fn draw(rng: &mut Rng, m: Moment) -> Kind {
        let weights = Kind::ALL.map(|k| k.weight(m));
        let total: f64 = weights.iter().sum();
        let mut r = (rng.below(1 << 30) as f64 / (1u64 << 30) as f64) * total;
        for (kind, w) in Kind::ALL.iter().zip(&weights) {
            if r < *w {
                return *kind;
            }
            r -= w;
        }
        Kind::RouterAdvertisement
    }
}

impl<W: Write> Gen<W> {
    /// Stages one burst at window fraction `x`: a join when one is due, else one drawn kind.
    pub(crate) fn burst(&mut self, x: f64) -> io::Result<()> {
        for d in [BEN, PLUG] {
            if !self.joined[d] && x >= joins_at(d) {
                self.joined[d] = true;
                return self.join(d);
            }
        }
        if let Some(&(at, event)) = self.events.get(self.next_event)
            && x >= at
        {
            self.next_event += 1;
            return self.named_event(event);
        }
        let kind = Kind::draw(&mut self.rng, Moment::at(x));
        self.stage_kind(kind, x)
    }

    fn stage_kind(&mut self, kind: Kind, x: f64) -> io::Result<()> {
        match kind {
            Kind::PingRouter => {
                let n = self.rng.range(1, 4);
                self.ping(PI, Fam::V4, Target::Dev(ROUTER), n, 0)
            }
            Kind::PingInternet => {
                let n = self.rng.range(1, 5);
                self.ping(PI, Fam::V4, Target::Internet, n, 60)
            }
            Kind::PingLaptop => {
                let n = self.rng.range(1, 3);
                self.ping(PI, Fam::V4, Target::Dev(LAPTOP), n, 0)
            }
            Kind::DevicePing => self.device_ping(x),
            Kind::Ping6 => {
                let n = self.rng.range(1, 3);
                match self.rng.below(3) {
                    0 => self.ping(PI, Fam::Ula, Target::Dev(ROUTER), n, 0),
                    1 => self.ping(PI, Fam::Ll, Target::Dev(ROUTER), n, 0),
                    _ => self.ping(PI, Fam::Ula, Target::Internet, n, 30),
                }
            }
            Kind::Neighbour => self.neighbour(x),
            Kind::Arp => self.arp_exchange(x),
            Kind::Browse => self.browse(x),
            Kind::PushKeepalive => self.push_keepalive(x),
            Kind::TvStream => self.tv_stream(),
            Kind::HttpDownload => self.http(x),
            Kind::Ssh => self.ssh(),
            Kind::Mdns => self.mdns(x),
            Kind::Ntp => self.ntp(),
            Kind::Syslog => self.syslog(),
            Kind::ThermostatTls => {
                self.tls_check_in(THERMO, S_THERMO, (120, 500), (40, 300), 40_000)
            }
            Kind::PlugTls => self.tls_check_in(PLUG, S_PLUG, (60, 200), (30, 120), 60_000),
            Kind::RouterAdvertisement => self.router_advertisement(0),
        }
    }

    fn device_ping(&mut self, x: f64) -> io::Result<()> {
        let src = self.rng.pick([ANNA, TABLET, LAPTOP, BEN]);
        let src = if awake(src, x) { src } else { ANNA };
        let dst = self.rng.pick([ROUTER, PRINTER, TV, PI]);
        let n = self.rng.range(2, 6);
        self.ping(src, Fam::V4, Target::Dev(dst), n, 0)
    }

    fn push_keepalive(&mut self, x: f64) -> io::Result<()> {
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

    fn tv_stream(&mut self) -> io::Result<()> {
        let c = self.ep(TV, Fam::V4);
        let s = self.server_ep(S_CDN, false);
        // The response size is drawn first.
        let resp = self.rng.range(10_000, 45_000) as usize;
        let req = self.rng.range(300, 700) as usize;
        self.tcp_session(c, s, 443, &[(req, resp)], 12_000)
    }

    /// Device `d`'s TLS check-in with its cloud server `srv` over IPv4: one request of
    /// `req` bytes and one response of `resp` bytes (inclusive ranges, drawn in that order).
    fn tls_check_in(
        &mut self,
        d: usize,
        srv: usize,
        req: (u64, u64),
        resp: (u64, u64),
        rtt: u64,
    ) -> io::Result<()> {
        let c = self.ep(d, Fam::V4);
        let s = self.server_ep(srv, false);
        let req = self.rng.range(req.0, req.1) as usize;
        let resp = self.rng.range(resp.0, resp.1) as usize;
        self.tcp_session(c, s, 443, &[(req, resp)], rtt)
    }
}

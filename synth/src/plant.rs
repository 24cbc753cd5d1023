//! Planted activities ([`crate::Activity`]): each one a small state machine that stages
//! one step at a time (a contact, a chunk of a transfer, a query) into a stage of its own
//! with planned timestamps; the generator merges those frames with the ordinary ones by
//! time as it writes them ([`Gen::planted_until`]).
//!
//! Invariants: every activity has its own random stream, its own ephemeral ports
//! (32768..49151, below the ordinary traffic's) and its own IPv4 ids, so the ordinary
//! frames are the same bytes with or without it; a step is staged only when its time has
//! come (so it sees the device's MAC of that moment); a step's frames are in time order
//! and the next step starts after its last frame; every frame falls inside the window
//! (checked when the spec is read, and again when a frame is written).

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use crate::activity::{Activity, Contact, DnsTunnel, LongConnection, PlantedActivity, Transport};
use crate::cast::{
    ANNA, BEN, Ep, Fam, Ip, LAPTOP, PLUG, PRINTER, ROUTER, S_API, S_CDN, S_PLUG, S_THERMO,
    S_UPDATES, TABLET, THERMO, TV,
};
use crate::frames::{F_ACK, F_FIN, F_PSH, F_SYN, Flow, Seg, Stage, tcp_frame};
use crate::hello::{Hello, pooled_client_hello, records, server_hello};
use crate::night::Gen;
use crate::payload::{Rdata, Rr, dns_packet, extend_random, tls_content};
use crate::rng::Rng;
use crate::{NameKind, NightSpec, invalid};

mod steps;

const NS: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const US: u64 = 1_000;
/// Segments a transfer step sends at most.
const CHUNK_SEGMENTS: usize = 64;
/// A volume spike's downloads: at most this much each, at this rate (bytes/s).
const SPIKE_DOWNLOAD: u64 = 4_000_000;
const SPIKE_RATE: u64 = 5_000_000;
/// Wire bytes per TCP payload byte of a bulk transfer: a 1514-byte frame per 1460 bytes
/// plus a 60-byte ACK every second frame.
const BULK_WIRE: (u64, u64) = (1_544, 1_460);

/// The server a device usually reaches by name (see [`crate::usual_name`]).
pub(crate) fn usual_server(d: usize) -> usize {
    match d {
        ANNA | BEN | LAPTOP | TABLET | TV => S_CDN,
        PRINTER | ROUTER => S_UPDATES,
        THERMO => S_THERMO,
        PLUG => S_PLUG,
        _ => S_API,
    }
}

/// A name to record in [`crate::GroundTruth::names`] once its frame has a number.
#[derive(Debug, Clone)]
struct PendingName {
    kind: NameKind,
    name: Vec<u8>,
    by: Ep,
    addr: Option<Ip>,
    ttl: Option<u32>,
}

/// What happens at a staged frame when it is written.
#[derive(Debug, Clone)]
enum Mark {
    /// The frame opens contact `.0` (counted from here on).
    Start(usize),
    /// The frame closes the contact open.
    End,
    Name(PendingName),
}

const MSS: usize = 1460;

/// The staged frames of one step with their planned times (ns into the window).
#[derive(Debug, Default)]
struct Out {
    stage: Stage,
    times: Vec<u64>,
    marks: Vec<(usize, Mark)>,
    /// The staging clock.
    t: u64,
    /// Written so far: frames, bytes, marks.
    pos: usize,
    bpos: usize,
    mpos: usize,
}

impl Out {
    fn reset(&mut self, t: u64) {
        self.stage.frames.clear();
        self.stage.bytes.clear();
        self.times.clear();
        self.marks.clear();
        self.pos = 0;
        self.bpos = 0;
        self.mpos = 0;
        self.t = t;
    }

    fn pending(&self) -> bool {
        self.pos < self.times.len()
    }

    fn tcp(&mut self, seg: &Seg, payload: &[u8]) -> io::Result<()> {
        tcp_frame(&mut self.stage, seg, payload, 0)?;
        self.times.push(self.t);
        Ok(())
    }

    fn udp(&mut self, s: &Ep, d: &Ep, ports: (u16, u16), payload: &[u8]) -> io::Result<()> {
        self.stage.udp(s, d, ports, 0, payload, 0)?;
        self.times.push(self.t);
        Ok(())
    }

    /// Marks the frame staged last.
    fn mark(&mut self, m: Mark) {
        let i = self.stage.frames.len().saturating_sub(1);
        self.marks.push((i, m));
    }
}

/// One planted activity while the night is written.
struct Act {
    spec: Activity,
    st: St,
}

/// An activity's state.
struct St {
    rng: Rng,
    dev: usize,
    /// The remote it talks to (none for the tunnel and the pings).
    remote: Option<Ep>,
    name: Vec<u8>,
    out: Out,
    /// Planned start of the next step (ns into the window); `u64::MAX` when done.
    next_ns: u64,
    /// The window's length in ns.
    end_ns: u64,
    /// Until when the last DNS answer is valid.
    dns_until: u64,
    port: u16,
    rtt: u64,
    flow: Option<Flow>,
    phase: u8,
    /// Bytes or exchanges left in the current phase; steps done.
    left: u64,
    done: u64,
    /// Payload of each spike download; the spacing of downloads or queries.
    chunk: u64,
    spacing: u64,
    /// Bytes left in the current transfer.
    bytes_left: u64,
    /// When the activity (or its connection) started, and when the current step did.
    base_ns: u64,
    step_ns: u64,
    /// The contact being staged, and the one being written.
    staging: usize,
    writing: Option<usize>,
    pay: Vec<u8>,
    truth: PlantedActivity,
}

/// The planted activities of a night.
pub(crate) struct Planter {
    acts: Vec<Act>,
}

/// Errors unless `start_s + len_s` (plus a margin) falls inside the window.
fn fits(spec: &NightSpec, what: &str, start_s: u64, len_s: u64) -> io::Result<()> {
    if start_s.saturating_add(len_s).saturating_add(5) > spec.duration_s {
        return Err(invalid(&format!(
            "planted {what} does not fit in the night's window"
        )));
    }
    Ok(())
}

/// Checks an activity's parameters, and that it fits in the window.
fn check(spec: &NightSpec, a: &Activity) -> io::Result<()> {
    let bad = |what: &str| Err(invalid(&format!("planted {}: {what}", a.kind())));
    // When it starts and how long it lasts, with a margin for its last exchange (s).
    let (start_s, span_s) = match a {
        Activity::Beacon(b) | Activity::Irregular(b) => {
            if b.period_s == 0 || b.jitter_permille > 1000 || b.name.is_empty() {
                return bad("period 0, jitter over 1000 per mille or no name");
            }
            (0, 70)
        }
        Activity::Awake(w) => {
            if w.rate < 1000 {
                return bad("rate under 1000 bytes/s");
            }
            (w.start_s, w.bytes / w.rate + 10)
        }
        Activity::NewDestination(n) => (n.start_s, u64::from(n.contacts) * 60 + 10),
        Activity::VolumeSpike(v) => {
            if v.multiplier_pct < 100 {
                return bad("multiplier under 100 %");
            }
            (v.start_s, u64::from(v.duration_s) + 10)
        }
        Activity::LongConnection(l) => {
            if l.every_s == 0 || l.duration_s <= l.every_s {
                return bad("exchanges every 0 s or not within the duration");
            }
            (l.start_s, u64::from(l.duration_s) + 5)
        }
        Activity::DnsTunnel(t) => {
            if t.queries == 0 || t.nxdomain_permille > 1000 || t.domain.is_empty() {
                return bad("no queries, NXDOMAIN over 1000 per mille or no domain");
            }
            (t.start_s, u64::from(t.duration_s) + 5)
        }
        Activity::NoPingReplies(_) => return Ok(()),
    };
    fits(spec, a.kind(), u64::from(start_s), span_s)
}

impl Planter {
    /// The activities of `spec` (none: `None`); `normal` is each device's bytes in the
    /// night without activities (for volume spikes).
    pub(crate) fn new<W: Write>(
        g: &mut Gen<W>,
        spec: &NightSpec,
        normal: Option<&[u64]>,
    ) -> io::Result<Option<Box<Planter>>> {
        if spec.activities.is_empty() {
            return Ok(None);
        }
        let end_ns = spec.duration_s.saturating_mul(NS);
        let mut acts = Vec::with_capacity(spec.activities.len());
        for (i, a) in spec.activities.iter().enumerate() {
            check(spec, a)?;
            let mut rng = Rng(spec.seed
                ^ 0x91a7_7ed0_ac71_0f17
                ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let dev = a.device().index();
            let (name, remote) = remote_of(g, a);
            let port = 32_768 + rng.below(12_000) as u16;
            let rtt = rng.range(12, 60) * MS;
            let d = &g.cast.devs[dev];
            let truth = PlantedActivity {
                activity: a.clone(),
                host_name: String::from_utf8_lossy(&d.host).into_owned(),
                mac: d.mac,
                addr: IpAddr::V4(Ipv4Addr::from(d.v4)),
                remote_name: (!name.is_empty()).then(|| String::from_utf8_lossy(&name).into()),
                remote_addr: remote.map(|r| r.ip.addr()),
                remote_port: transport_of(a).map(Transport::port),
                transport: transport_of(a),
                first_ts_ns: 0,
                last_ts_ns: 0,
                contacts: Vec::new(),
                frames: 0,
                bytes: 0,
                dns_queries: 0,
                dns_nxdomain: 0,
                queried_names: Vec::new(),
                normal_bytes: None,
                unanswered_pings: 0,
            };
            let mut st = St {
                rng,
                dev,
                remote,
                name,
                out: Out::default(),
                next_ns: u64::MAX,
                end_ns,
                dns_until: 0,
                port,
                rtt,
                flow: None,
                phase: 0,
                left: 0,
                done: 0,
                chunk: 0,
                spacing: 0,
                bytes_left: 0,
                base_ns: 0,
                step_ns: 0,
                staging: 0,
                writing: None,
                pay: Vec::new(),
                truth,
            };
            st.next_ns = st.first_step(a, normal);
            if let Activity::NoPingReplies(d) = a
                && let Some(q) = g.quiet.get_mut(d.index())
            {
                *q = true;
            }
            acts.push(Act {
                spec: a.clone(),
                st,
            });
        }
        Ok(Some(Box::new(Planter { acts })))
    }

    /// When the next planted frame is due (µs into the window; `u64::MAX`: none).
    pub(crate) fn next_us(&self) -> u64 {
        self.acts
            .iter()
            .map(|a| a.st.due_ns())
            .min()
            .map_or(u64::MAX, |t| if t == u64::MAX { t } else { t / US })
    }

    /// Writes every planted frame due at or before `t_us`, in time order.
    pub(crate) fn write_until<W: Write>(&mut self, g: &mut Gen<W>, t_us: u64) -> io::Result<()> {
        loop {
            let mut best: Option<(u64, usize)> = None;
            for (i, a) in self.acts.iter().enumerate() {
                let t = a.st.due_ns();
                if t != u64::MAX && best.is_none_or(|b| t < b.0) {
                    best = Some((t, i));
                }
            }
            let Some((t, i)) = best else {
                return Ok(());
            };
            if t / US > t_us {
                return Ok(());
            }
            let act = &mut self.acts[i];
            if act.st.out.pending() {
                act.st.write_frame(g)?;
            } else {
                act.st.step(g, &act.spec)?;
            }
        }
    }

    /// The ground truth, once everything is written.
    pub(crate) fn finish(
        self,
        devs: &[crate::cast::Dev],
        quiet_misses: &[u64],
    ) -> Vec<PlantedActivity> {
        self.acts
            .into_iter()
            .map(|a| {
                let mut t = a.st.truth;
                if let Activity::NoPingReplies(d) = a.spec {
                    t.unanswered_pings = quiet_misses.get(d.index()).copied().unwrap_or(0);
                    if let Some(dev) = devs.get(d.index()) {
                        t.mac = dev.mac;
                    }
                }
                t
            })
            .collect()
    }
}

/// The transport an activity uses, if it has one remote.
fn transport_of(a: &Activity) -> Option<Transport> {
    match a {
        Activity::Beacon(b) | Activity::Irregular(b) => Some(b.transport),
        Activity::Awake(_) | Activity::VolumeSpike(_) => Some(Transport::Tls),
        Activity::NewDestination(n) => Some(n.transport),
        Activity::LongConnection(l) => Some(l.transport),
        Activity::DnsTunnel(_) => Some(Transport::Udp(53)),
        Activity::NoPingReplies(_) => None,
    }
}

/// The name an activity looks up and the remote it then talks to.
fn remote_of<W: Write>(g: &mut Gen<W>, a: &Activity) -> (Vec<u8>, Option<Ep>) {
    let named = |g: &mut Gen<W>, name: &str, addr: Ipv4Addr| {
        let key = g.new_label(addr.to_string());
        let ep = Ep {
            mac: g.cast.devs[ROUTER].mac,
            ip: Ip::V4(addr.octets()),
            ttl: 52,
            key,
            dev: ROUTER,
            pad: true,
        };
        (name.as_bytes().to_vec(), Some(ep))
    };
    match a {
        Activity::Beacon(b) | Activity::Irregular(b) => named(g, &b.name, b.remote),
        Activity::Awake(w) => named(g, &w.name, w.remote),
        Activity::NewDestination(n) => named(g, &n.name, n.remote),
        Activity::LongConnection(l) => named(g, &l.name, l.remote),
        Activity::VolumeSpike(v) => {
            let s = usual_server(v.device.index());
            let ep = g.server_ep(s, false);
            (g.cast.servers[s].name.as_bytes().to_vec(), Some(ep))
        }
        Activity::DnsTunnel(t) => (t.domain.as_bytes().to_vec(), None),
        Activity::NoPingReplies(_) => (Vec::new(), None),
    }
}

/// `-ln(u)` for `u` uniform in (0, 1]: an exponential draw with mean 1, in basic
/// arithmetic only (the same bits on every platform).
fn exp1(rng: &mut Rng) -> f64 {
    let u = (rng.below(1 << 53) + 1) as f64 / (1u64 << 53) as f64;
    // u = m * 2^e with m in [1, 2): ln u = e ln 2 + 2 atanh((m - 1) / (m + 1)).
    let bits = u.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let (mut term, mut sum) = (z, 0.0);
    for k in 0..30 {
        sum += term / f64::from(2 * k + 1);
        term *= z2;
    }
    let ln = e as f64 * std::f64::consts::LN_2 + 2.0 * sum;
    -ln
}

/// `n` random lower-case base32 characters.
fn base32(rng: &mut Rng, out: &mut Vec<u8>, n: usize) {
    const ALPHA: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    for _ in 0..n {
        out.push(ALPHA[rng.below(32) as usize]);
    }
}

impl St {
    /// When its next frame is due (ns), `u64::MAX` when done.
    fn due_ns(&self) -> u64 {
        if self.out.pending() {
            self.out.times[self.out.pos]
        } else {
            self.next_ns
        }
    }

    /// Sets up the activity and returns when its first step is due.
    fn first_step(&mut self, a: &Activity, normal: Option<&[u64]>) -> u64 {
        match a {
            Activity::Beacon(b) | Activity::Irregular(b) => {
                let period = u64::from(b.period_s) * NS;
                (NS + self.rng.below(period)).min(self.end_ns)
            }
            Activity::Awake(w) => {
                self.bytes_left = w.bytes.max(6);
                u64::from(w.start_s) * NS
            }
            Activity::NewDestination(n) => {
                self.left = u64::from(n.contacts);
                if n.contacts == 0 {
                    return u64::MAX;
                }
                u64::from(n.start_s) * NS
            }
            Activity::VolumeSpike(v) => {
                let base = normal
                    .and_then(|n| n.get(v.device.index()))
                    .copied()
                    .unwrap_or(0);
                self.truth.normal_bytes = Some(base);
                let extra = base.saturating_mul(u64::from(v.multiplier_pct - 100)) / 100;
                let payload = extra.saturating_mul(BULK_WIRE.1) / BULK_WIRE.0;
                if payload < 1000 {
                    return u64::MAX;
                }
                let n = payload.div_ceil(SPIKE_DOWNLOAD);
                self.left = n;
                self.chunk = payload / n;
                self.bytes_left = self.chunk;
                self.spacing = u64::from(v.duration_s) * NS / n;
                self.base_ns = u64::from(v.start_s) * NS;
                self.base_ns
            }
            Activity::LongConnection(l) => u64::from(l.start_s) * NS,
            Activity::DnsTunnel(t) => {
                self.left = u64::from(t.queries);
                self.spacing = u64::from(t.duration_s) * NS / u64::from(t.queries);
                u64::from(t.start_s) * NS
            }
            Activity::NoPingReplies(_) => u64::MAX,
        }
    }

    fn next_port(&mut self) -> u16 {
        let p = self.port;
        self.port = if p >= 49_000 {
            32_768 + p % 97
        } else {
            p + 1 + self.rng.below(3) as u16
        };
        p
    }

    /// `lo..=hi` µs, in ns.
    fn wait_us(&mut self, lo: u64, hi: u64) {
        let d = self.rng.range(lo, hi) * US;
        self.out.t += d;
    }

    /// About one round trip.
    fn wait_rtt(&mut self) {
        let r = self.rtt;
        self.out.t += r / 2 + self.rng.below(r / 2 + 1);
    }

    /// Writes the next staged frame.
    fn write_frame<W: Write>(&mut self, g: &mut Gen<W>) -> io::Result<()> {
        let o = &mut self.out;
        let i = o.pos;
        let f = o.stage.frames[i];
        let (ns, frame) =
            g.write_planted(o.times[i], &o.stage.bytes[o.bpos..f.end], f.key, f.dev)?;
        let len = (f.end - o.bpos) as u64;
        o.pos += 1;
        o.bpos = f.end;
        let t = &mut self.truth;
        if t.frames == 0 {
            t.first_ts_ns = ns;
        }
        t.frames += 1;
        t.bytes += len;
        t.last_ts_ns = ns;
        let mut ended = false;
        while let Some((at, m)) = o.marks.get(o.mpos)
            && *at == i
        {
            match m {
                Mark::Start(c) => {
                    self.writing = Some(*c);
                    if let Some(c) = t.contacts.get_mut(*c) {
                        c.start_ts_ns = ns;
                    }
                }
                Mark::End => ended = true,
                Mark::Name(p) => g.plant_written(frame, ns, p.kind, &p.name, &p.by, p.addr, p.ttl),
            }
            o.mpos += 1;
        }
        if let Some(c) = self.writing.and_then(|c| t.contacts.get_mut(c)) {
            c.frames += 1;
            c.end_ts_ns = ns;
        }
        if ended {
            self.writing = None;
        }
        Ok(())
    }

    /// Stages the step due now; sets when the next one is due.
    fn step<W: Write>(&mut self, g: &mut Gen<W>, a: &Activity) -> io::Result<()> {
        let t0 = self.next_ns;
        self.step_ns = t0;
        self.out.reset(t0);
        if self.truth.frames == 0 {
            // The device's MAC as it is when its first planted frame is staged.
            self.truth.mac = g.cast.devs[self.dev].mac;
        }
        self.next_ns = u64::MAX;
        match a {
            Activity::Beacon(b) | Activity::Irregular(b) => {
                let irregular = matches!(a, Activity::Irregular(_));
                let (up, down) = if irregular {
                    let f = |rng: &mut Rng, n: u32| {
                        (u64::from(n) * rng.range(250, 1750) / 1000).max(1) as usize
                    };
                    (f(&mut self.rng, b.up_bytes), f(&mut self.rng, b.down_bytes))
                } else {
                    let f = |rng: &mut Rng, n: u32| {
                        let n = u64::from(n);
                        (n - n / 50 + rng.below(2 * (n / 50) + 1)).max(1) as usize
                    };
                    (f(&mut self.rng, b.up_bytes), f(&mut self.rng, b.down_bytes))
                };
                self.contact(g, b.transport, b.dns_ttl_s, up, down)?;
                let period = u64::from(b.period_s) * NS;
                let gap = if irregular {
                    ((period as f64 * exp1(&mut self.rng)) as u64).max(2 * NS)
                } else {
                    let j = u64::from(b.jitter_permille) * 1000;
                    let ppm = 1_000_000 - j + self.rng.below(2 * j + 1);
                    (u128::from(period) * u128::from(ppm) / 1_000_000) as u64
                };
                let next = (t0 + gap).max(self.out.t + 10 * MS);
                if next + 60 * NS < self.end_ns {
                    self.next_ns = next;
                }
            }
            Activity::NewDestination(n) => {
                self.contact(
                    g,
                    n.transport,
                    300,
                    n.up_bytes as usize,
                    n.down_bytes as usize,
                )?;
                self.left = self.left.saturating_sub(1);
                if self.left > 0 {
                    self.next_ns = (t0 + 60 * NS).max(self.out.t + 10 * MS);
                }
            }
            Activity::Awake(w) => {
                self.bulk(g, true, w.rate)?;
            }
            Activity::VolumeSpike(_) => self.spike(g)?,
            Activity::LongConnection(l) => self.long(g, l)?,
            Activity::DnsTunnel(t) => self.tunnel(g, t)?,
            Activity::NoPingReplies(_) => {}
        }
        self.out.marks.sort_by_key(|m| m.0);
        Ok(())
    }

    /// Looks the activity's name up when the last answer expired.
    fn resolve<W: Write>(&mut self, g: &Gen<W>, c: &Ep, ttl: u32) -> io::Result<()> {
        if self.out.t < self.dns_until {
            return Ok(());
        }
        let Some(s) = self.remote else {
            return Ok(());
        };
        let name = std::mem::take(&mut self.name);
        let r = self.lookup(g, c, &name, 1, Answer::Addr(s.ip, ttl), false);
        self.name = name;
        r?;
        self.dns_until = self.out.t + u64::from(ttl) * NS;
        self.wait_us(2_000, 30_000);
        Ok(())
    }

    /// A DNS query from `c` to the router and its answer.
    fn lookup<W: Write>(
        &mut self,
        g: &Gen<W>,
        c: &Ep,
        qname: &[u8],
        qtype: u16,
        answer: Answer,
        contact: bool,
    ) -> io::Result<()> {
        let r = g.ep(ROUTER, Fam::V4);
        let id = self.rng.u16();
        let port = self.next_port();
        let mut q = Vec::with_capacity(64 + qname.len());
        dns_packet(&mut q, id, 0x0100, &[(qname, qtype)], &[]);
        self.out.udp(c, &r, (port, 53), &q)?;
        if contact {
            self.new_contact(port);
            self.out.mark(Mark::Start(self.staging));
        }
        self.wait_us(300, 20_000);
        let mut resp = Vec::with_capacity(300 + qname.len());
        let mut txt = Vec::new();
        let (flags, rrs) = match answer {
            Answer::Addr(ip, ttl) => (
                0x8180,
                vec![Rr {
                    name: qname,
                    class: 1,
                    ttl,
                    data: Rdata::Addr(ip),
                }],
            ),
            Answer::Nx => (0x8183, Vec::new()),
            Answer::Txt => {
                let n = self.rng.range(40, 200) as usize;
                base32(&mut self.rng, &mut txt, n);
                (0x8180, Vec::new())
            }
        };
        let strings: [&[u8]; 1] = [&txt];
        let rrs = if txt.is_empty() {
            rrs
        } else {
            vec![Rr {
                name: qname,
                class: 1,
                ttl: 0,
                data: Rdata::Txt(&strings),
            }]
        };
        dns_packet(&mut resp, id, flags, &[(qname, qtype)], &rrs);
        self.out.udp(&r, c, (53, port), &resp)?;
        if contact {
            self.out.mark(Mark::End);
            self.count(q.len(), resp.len());
            if let Some(ct) = self.truth.contacts.get_mut(self.staging) {
                ct.exchanges = 1;
            }
        }
        self.truth.dns_queries += 1;
        if matches!(answer, Answer::Nx) {
            self.truth.dns_nxdomain += 1;
        }
        if let Answer::Addr(ip, ttl) = answer {
            self.out.mark(Mark::Name(PendingName {
                kind: NameKind::DnsAnswer,
                name: qname.to_vec(),
                by: *c,
                addr: Some(ip),
                ttl: Some(ttl),
            }));
        }
        Ok(())
    }
}

/// How a planted DNS query is answered.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Addr(Ip, u32),
    Nx,
    Txt,
}

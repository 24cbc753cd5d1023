//! The generator: its state, the loop that draws one burst at a time, and how a burst's
//! staged frames get their timestamps and go to the pcap writer.
//!
//! Invariants: timestamps increase strictly and stay inside the window; generation
//! stops at the first burst boundary at or past the spec's packet count; the ground
//! truth counts exactly the frames written.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pcapfmt::PcapWriter;

use crate::cast::{Cast, Dev, Ep, Fam, Ip, PI, ROUTER};
use crate::clock::{INV_STEPS, MAX_BURST, inverse_cdf};
use crate::frames::Stage;
use crate::named::{Event, NameKey, schedule};
use crate::plant::Planter;
use crate::rng::Rng;
use crate::{GroundTruth, NightSpec, build_err, invalid};

const POOL_LEN: usize = 1 << 17;

/// The generator's state while it writes one night.
pub(crate) struct Gen<W: Write> {
    pub(crate) out: PcapWriter<W>,
    pub(crate) rng: Rng,
    pub(crate) stage: Stage,
    /// Random bytes to slice payloads from.
    pub(crate) pool: Vec<u8>,
    pub(crate) pay_c: Vec<u8>,
    pub(crate) pay_s: Vec<u8>,
    pub(crate) scratch: Vec<u8>,
    /// The devices, servers and source labels.
    pub(crate) cast: Cast,
    pub(crate) counts: Vec<u64>,
    pub(crate) dev_seen: Vec<bool>,
    pub(crate) joined: Vec<bool>,
    // time
    pub(crate) start_ns: i64,
    pub(crate) dur_us: u64,
    pub(crate) target: u64,
    /// Ordinary (not planted) frames written: they alone set the time and the end.
    pub(crate) bg_frames: u64,
    pub(crate) inv: Vec<u64>,
    pub(crate) last_us: Option<u64>,
    /// Window offset (µs) of the burst being staged, and natural time within it.
    pub(crate) burst_us: u64,
    pub(crate) burst_cum_us: u64,
    /// Host header of the HTTP session being generated.
    pub(crate) http_host: Vec<u8>,
    /// The TLS records of the ClientHello the next port-443 session opens with (none:
    /// application data only), its server name and its legacy session id.
    pub(crate) tls_hello: Vec<u8>,
    pub(crate) sni: Vec<u8>,
    pub(crate) tls_sid: Vec<u8>,
    /// Frame number of the last segment of the last `data` sent.
    pub(crate) last_data_frame: u64,
    /// Names traffic due at window fractions, in order, and the next one.
    pub(crate) events: Vec<(f64, Event)>,
    pub(crate) next_event: usize,
    /// Index into `truth.names` by key; names from there on have no timestamp yet.
    pub(crate) name_index: BTreeMap<NameKey, usize>,
    pub(crate) names_flushed: usize,
    /// (address, MAC) pairs of a device's MAC before it changed, for `hosts`.
    pub(crate) retired_hosts: Vec<(IpAddr, [u8; 6])>,
    /// `truth.mac_changes` from here on have their burst's frame numbers.
    pub(crate) mac_flushed: usize,
    /// The planted activities, and when their next frame is due (µs into the window;
    /// `u64::MAX`: never, the only value without activities).
    pub(crate) planter: Option<Box<Planter>>,
    pub(crate) planted_next_us: u64,
    /// Devices that do not answer echo requests tonight, and the requests that went
    /// unanswered because of it.
    pub(crate) quiet: Vec<bool>,
    pub(crate) quiet_misses: Vec<u64>,
    /// Bytes of the frames to or from each device (only when measuring).
    pub(crate) measure: Option<Vec<u64>>,
    pub(crate) truth: GroundTruth,
}

impl<W: Write> Gen<W> {
    /// `normal`: each device's bytes in the night without activities (for volume spikes).
    pub(crate) fn new(
        out: PcapWriter<W>,
        spec: &NightSpec,
        normal: Option<&[u64]>,
    ) -> io::Result<Self> {
        let dur_us = window_us(spec)?;
        let mut rng = Rng(spec.seed ^ 0x5eed_0fa1_19e7);
        let mut pool = vec![0u8; POOL_LEN];
        for c in pool.chunks_mut(8) {
            let v = rng.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
        let cast = Cast::new(&mut rng, spec.hostile_names);
        let ndevs = cast.devs.len();
        let nlabels = cast.labels.len();
        let own = &cast.devs[PI];
        let mut own_addresses = vec![IpAddr::V4(Ipv4Addr::from(own.v4))];
        own_addresses.extend(
            own.ula
                .iter()
                .chain(own.ll.iter())
                .map(|a| IpAddr::V6(Ipv6Addr::from(*a))),
        );
        let mut g = Gen {
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
            cast,
            counts: vec![0; nlabels],
            dev_seen: vec![false; ndevs],
            joined: vec![false; ndevs],
            start_ns: spec.start_ts_ns,
            dur_us,
            target: spec.packets,
            bg_frames: 0,
            inv: inverse_cdf(dur_us),
            last_us: None,
            burst_us: 0,
            burst_cum_us: 0,
            http_host: Vec::new(),
            tls_hello: Vec::new(),
            sni: Vec::new(),
            tls_sid: Vec::new(),
            last_data_frame: 0,
            events: schedule(spec.hostile_names),
            next_event: 0,
            name_index: BTreeMap::new(),
            names_flushed: 0,
            retired_hosts: Vec::new(),
            mac_flushed: 0,
            planter: None,
            planted_next_us: u64::MAX,
            quiet: vec![false; ndevs],
            quiet_misses: vec![0; ndevs],
            measure: None,
            truth: GroundTruth {
                own_addresses,
                ..Default::default()
            },
        };
        if let Some(p) = Planter::new(&mut g, spec, normal)? {
            g.planted_next_us = p.next_us();
            g.planter = Some(p);
        }
        Ok(g)
    }

    pub(crate) fn finish(self) -> (GroundTruth, PcapWriter<W>) {
        let mut t = self.truth;
        if let Some(p) = self.planter {
            t.planted = p.finish(&self.cast.devs, &self.quiet_misses);
        }
        for (label, &n) in self.cast.labels.iter().zip(&self.counts) {
            if n > 0 {
                *t.packets_by_src.entry(label.clone()).or_default() += n;
            }
        }
        t.hosts.extend_from_slice(&self.retired_hosts);
        for (d, seen) in self.cast.devs.iter().zip(&self.dev_seen) {
            if *seen {
                t.hosts.push((IpAddr::V4(Ipv4Addr::from(d.v4)), d.mac));
                for a in d.ula.iter().chain(d.ll.iter()) {
                    t.hosts.push((IpAddr::V6(Ipv6Addr::from(*a)), d.mac));
                }
            }
        }
        t.devices = crate::named::planted_devices(&self.cast.devs, &t.hosts);
        t.vlan_frames = self.stage.vlan_frames;
        t.ipv4_fragments = self.stage.fragments;
        (t, self.out)
    }

    /// Window offset (µs) by which `m` packets have been sent.
    pub(crate) fn time_at(&self, m: u64) -> u64 {
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

    pub(crate) fn run(&mut self) -> io::Result<()> {
        while self.bg_frames < self.target {
            let a = self.time_at(self.bg_frames);
            self.burst_us = a;
            self.burst_cum_us = 0;
            let x = a as f64 / self.dur_us as f64;
            self.burst(x)?;
            self.flush()?;
        }
        if self.planted_next_us != u64::MAX {
            self.planted_until(u64::MAX)?;
        }
        Ok(())
    }

    /// Writes the planted frames due at or before `t_us` (µs into the window).
    pub(crate) fn planted_until(&mut self, t_us: u64) -> io::Result<()> {
        let Some(mut p) = self.planter.take() else {
            self.planted_next_us = u64::MAX;
            return Ok(());
        };
        let r = p.write_until(self, t_us);
        self.planted_next_us = p.next_us();
        self.planter = Some(p);
        r
    }

    /// Writes one planted frame planned at `t_ns` (ns into the window), after every frame
    /// written so far; returns its timestamp and frame number.
    pub(crate) fn write_planted(
        &mut self,
        t_ns: u64,
        data: &[u8],
        key: u16,
        dev: usize,
    ) -> io::Result<(i64, u64)> {
        let mut t = t_ns / 1000;
        if let Some(last) = self.last_us {
            t = t.max(last + 1);
        }
        if t >= self.dur_us {
            return Err(invalid("planted activities run past the night's window"));
        }
        self.last_us = Some(t);
        let ns = self.start_ns + (t * 1000 + t_ns % 1000) as i64;
        let len = data.len() as u32;
        self.out.write_packet(ns, data, len)?;
        self.truth.frames += 1;
        self.truth.bytes += u64::from(len);
        if let Some(c) = self.counts.get_mut(usize::from(key)) {
            *c += 1;
        }
        if let Some(s) = self.dev_seen.get_mut(dev) {
            *s = true;
        }
        if let Some(m) = &mut self.measure {
            measure_frame(m, &self.cast.devs, data);
        }
        Ok((ns, self.truth.frames))
    }

    /// Gives the staged frames timestamps inside their share of the window and writes them,
    /// with any planted frames due in between (the burst's names and MAC change then get
    /// the frame numbers their frames end up with).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        let k = self.stage.frames.len() as u64;
        if k == 0 {
            return Ok(());
        }
        if k > MAX_BURST {
            return Err(build_err("burst too long"));
        }
        // Frame numbers as staged (planted frames may come in between), and the ordinary
        // frames so far (which set the time).
        let n = self.truth.frames;
        let a = self.time_at(self.bg_frames);
        let b = self.time_at(self.bg_frames + k).max(a + k);
        let span = b - a;
        let natural: u64 = self.stage.frames.iter().skip(1).map(|f| f.delay_us).sum();
        let room = span / 4 * 3;
        let (jitter, num, den) = if natural <= room {
            (self.rng.below((span - natural) / 2 + 1), 1u64, 1u64)
        } else {
            (0, room, natural)
        };
        // What this burst staged that names a frame of it, by its staged frame number
        // (n + 1 ...): (staged number, is a name, index).
        let names_end = self.truth.names.len();
        let mut marks: Vec<(u64, bool, usize)> = Vec::new();
        if self.names_flushed < names_end || self.mac_flushed < self.truth.mac_changes.len() {
            for (i, p) in self.truth.names[self.names_flushed..names_end]
                .iter()
                .enumerate()
            {
                marks.push((p.first_frame, true, self.names_flushed + i));
            }
            for (i, m) in self.truth.mac_changes[self.mac_flushed..]
                .iter()
                .enumerate()
            {
                marks.push((m.frame, false, self.mac_flushed + i));
            }
            marks.sort_unstable();
        }
        let mut mk = 0;
        let mut cum = 0u64;
        let mut start = 0usize;
        for i in 0..self.stage.frames.len() {
            let f = self.stage.frames[i];
            if i > 0 {
                cum += f.delay_us;
            }
            let off = (u128::from(cum) * u128::from(num) / u128::from(den)) as u64;
            let mut t = a + jitter + off;
            if t >= self.planted_next_us {
                self.planted_until(t)?;
            }
            if let Some(last) = self.last_us {
                t = t.max(last + 1);
            }
            self.last_us = Some(t);
            let ns = self.start_ns + (t * 1000) as i64 + self.rng.below(1000) as i64;
            self.bg_frames += 1;
            if f.end == start {
                // A phantom (see `Stage::phantom`): its time and draws, no frame.
                continue;
            }
            let data = &self.stage.bytes[start..f.end];
            let len = data.len() as u32;
            self.out.write_packet(ns, data, len)?;
            self.truth.frames += 1;
            self.truth.bytes += u64::from(len);
            let staged = n + i as u64 + 1;
            while let Some(&(at, is_name, idx)) = marks.get(mk)
                && at <= staged
            {
                if at == staged {
                    let frame = self.truth.frames;
                    if is_name {
                        if let Some(p) = self.truth.names.get_mut(idx) {
                            p.first_frame = frame;
                            p.first_ts_ns = ns;
                        }
                    } else if let Some(m) = self.truth.mac_changes.get_mut(idx) {
                        m.frame = frame;
                    }
                }
                mk += 1;
            }
            if let Some(c) = self.counts.get_mut(usize::from(f.key)) {
                *c += 1;
            }
            if let Some(s) = self.dev_seen.get_mut(f.dev) {
                *s = true;
            }
            if let Some(m) = &mut self.measure {
                measure_frame(m, &self.cast.devs, data);
            }
            start = f.end;
        }
        if self.truth.names.len() > names_end {
            self.order_names();
        }
        self.names_flushed = self.truth.names.len();
        self.mac_flushed = self.truth.mac_changes.len();
        self.stage.frames.clear();
        self.stage.bytes.clear();
        Ok(())
    }

    /// Puts the names recorded since the last flush (the burst's and planted ones written
    /// in between) in frame order, and their index entries with them.
    fn order_names(&mut self) {
        let from = self.names_flushed;
        self.truth.names[from..].sort_by_key(|p| p.first_frame);
        for (i, p) in self.truth.names.iter().enumerate().skip(from) {
            let key = (
                p.kind,
                p.name.clone(),
                p.target.clone(),
                p.mac,
                p.client,
                p.addr,
            );
            self.name_index.insert(key, i);
        }
    }

    // ----- endpoints -----

    /// The router as the DNS server `c` asks: over IPv6 (its ULA) when `c` is IPv6.
    pub(crate) fn resolver(&self, c: &Ep) -> Ep {
        let fam = if matches!(c.ip, Ip::V6(_)) {
            Fam::Ula
        } else {
            Fam::V4
        };
        self.ep(crate::cast::ROUTER, fam)
    }

    pub(crate) fn ep(&self, d: usize, fam: Fam) -> Ep {
        let dv = &self.cast.devs[d];
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

    /// Device `d` sending from the unspecified address (DHCP discover/request, DAD),
    /// with the given TTL / hop limit.
    pub(crate) fn unspec_ep(&self, d: usize, fam: Fam, ttl: u8) -> Ep {
        let (ip, key) = match fam {
            Fam::V4 => (Ip::V4([0; 4]), self.cast.k_unspec4),
            Fam::Ula | Fam::Ll => (Ip::V6([0; 16]), self.cast.k_unspec6),
        };
        Ep {
            mac: self.cast.devs[d].mac,
            ip,
            ttl,
            key,
            dev: d,
            pad: true,
        }
    }

    pub(crate) fn server_ep(&self, s: usize, want_v6: bool) -> Ep {
        let sv = &self.cast.servers[s];
        let (ip, key) = match (want_v6, sv.v6) {
            (true, Some(a)) => (Ip::V6(a), sv.k_v6),
            _ => (Ip::V4(sv.v4), sv.k_v4),
        };
        Ep {
            mac: self.cast.devs[ROUTER].mac,
            ip,
            ttl: sv.ttl,
            key,
            dev: ROUTER,
            pad: true,
        }
    }

    pub(crate) fn has_v6(&self, d: usize) -> bool {
        self.cast.devs[d].ula.is_some()
    }

    pub(crate) fn port(&mut self, d: usize) -> u16 {
        let p = self.cast.devs[d].next_port;
        self.cast.devs[d].next_port = if p >= 65000 {
            49152 + (p % 97)
        } else {
            p + 1 + self.rng.below(3) as u16
        };
        p
    }

    pub(crate) fn delay(&mut self, lo: u64, hi: u64) -> u64 {
        let d = self.rng.range(lo, hi);
        self.burst_cum_us += d;
        d
    }

    pub(crate) fn now_unix_us(&self) -> u64 {
        let base = u64::try_from(self.start_ns / 1000).unwrap_or(0);
        base + self.burst_us + self.burst_cum_us
    }
}

/// Adds a frame's length to the devices whose MAC is its source or destination.
fn measure_frame(m: &mut [u64], devs: &[Dev], data: &[u8]) {
    let (Some(dst), Some(src)) = (data.get(0..6), data.get(6..12)) else {
        return;
    };
    for (d, dev) in devs.iter().enumerate() {
        if dev.macs.iter().any(|x| x == dst || x == src)
            && let Some(b) = m.get_mut(d)
        {
            *b += data.len() as u64;
        }
    }
}

/// The window's length in µs, once the spec is known to be usable.
fn window_us(spec: &NightSpec) -> io::Result<u64> {
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
    Ok(dur_us)
}

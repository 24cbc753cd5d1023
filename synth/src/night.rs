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

use crate::cast::{Cast, Dev, Ep, Fam, Ip, PI, ROUTER, Server};
use crate::clock::{INV_STEPS, MAX_BURST, inverse_cdf};
use crate::frames::Stage;
use crate::named::{Event, NameKey, schedule};
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
    pub(crate) devs: Vec<Dev>,
    pub(crate) servers: Vec<Server>,
    pub(crate) labels: Vec<String>,
    pub(crate) counts: Vec<u64>,
    pub(crate) dev_seen: Vec<bool>,
    pub(crate) k_unspec4: u16,
    pub(crate) k_unspec6: u16,
    pub(crate) k_ping4: u16,
    pub(crate) k_ping6: u16,
    pub(crate) joined: Vec<bool>,
    // time
    pub(crate) start_ns: i64,
    pub(crate) dur_us: u64,
    pub(crate) target: u64,
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
    pub(crate) truth: GroundTruth,
}

impl<W: Write> Gen<W> {
    pub(crate) fn new(out: PcapWriter<W>, spec: &NightSpec) -> io::Result<Self> {
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
            devs: cast.devs,
            servers: cast.servers,
            labels: cast.labels,
            counts: vec![0; nlabels],
            dev_seen: vec![false; ndevs],
            k_unspec4: cast.k_unspec4,
            k_unspec6: cast.k_unspec6,
            k_ping4: cast.k_ping4,
            k_ping6: cast.k_ping6,
            joined: vec![false; ndevs],
            start_ns: spec.start_ts_ns,
            dur_us,
            target: spec.packets,
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
            truth: GroundTruth {
                own_addresses,
                ..Default::default()
            },
        })
    }

    pub(crate) fn finish(self) -> (GroundTruth, PcapWriter<W>) {
        let mut t = self.truth;
        for (label, &n) in self.labels.iter().zip(&self.counts) {
            if n > 0 {
                *t.packets_by_src.entry(label.clone()).or_default() += n;
            }
        }
        t.hosts.extend_from_slice(&self.retired_hosts);
        for (d, seen) in self.devs.iter().zip(&self.dev_seen) {
            if *seen {
                t.hosts.push((IpAddr::V4(Ipv4Addr::from(d.v4)), d.mac));
                for a in d.ula.iter().chain(d.ll.iter()) {
                    t.hosts.push((IpAddr::V6(Ipv6Addr::from(*a)), d.mac));
                }
            }
        }
        t.devices = crate::named::planted_devices(&self.devs, &t.hosts);
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
    pub(crate) fn flush(&mut self) -> io::Result<()> {
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
            if self.names_flushed < self.truth.names.len() {
                let frame = self.truth.frames;
                for p in &mut self.truth.names[self.names_flushed..] {
                    if p.first_frame == frame {
                        p.first_ts_ns = ns;
                    }
                }
            }
            if let Some(c) = self.counts.get_mut(usize::from(f.key)) {
                *c += 1;
            }
            if let Some(s) = self.dev_seen.get_mut(f.dev) {
                *s = true;
            }
            start = f.end;
        }
        self.names_flushed = self.truth.names.len();
        self.stage.frames.clear();
        self.stage.bytes.clear();
        Ok(())
    }

    // ----- endpoints -----

    pub(crate) fn ep(&self, d: usize, fam: Fam) -> Ep {
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

    /// Device `d` sending from the unspecified address (DHCP discover/request, DAD),
    /// with the given TTL / hop limit.
    pub(crate) fn unspec_ep(&self, d: usize, fam: Fam, ttl: u8) -> Ep {
        let (ip, key) = match fam {
            Fam::V4 => (Ip::V4([0; 4]), self.k_unspec4),
            Fam::Ula | Fam::Ll => (Ip::V6([0; 16]), self.k_unspec6),
        };
        Ep {
            mac: self.devs[d].mac,
            ip,
            ttl,
            key,
            dev: d,
            pad: true,
        }
    }

    pub(crate) fn server_ep(&self, s: usize, want_v6: bool) -> Ep {
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

    pub(crate) fn has_v6(&self, d: usize) -> bool {
        self.devs[d].ula.is_some()
    }

    pub(crate) fn port(&mut self, d: usize) -> u16 {
        let p = self.devs[d].next_port;
        self.devs[d].next_port = if p >= 65000 {
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

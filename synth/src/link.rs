//! Link-layer and ICMP bursts: echo (ping) with its ground truth, ARP, IPv6 neighbour
//! and router discovery, and a device joining the network (DHCP, ARP probes and
//! announcement, duplicate address detection, router solicitation).
//!
//! Invariants: a request to a device that is away or asleep is never answered (and
//! counted unanswered); every echo request is counted by source, every reply by its
//! destination.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;

use etherparse::{ArpOperation, IcmpEchoHeader};

use crate::NameKind;
use crate::cast::{
    ANNA, BEN, BROADCAST_MAC, Dev, Ep, Fam, Ip, LAPTOP, PI, PING4_TARGET, PING6_TARGET, PLUG,
    PRINTER, ROUTER, TABLET, THERMO, TV, awake, solicited_node, to_ipv6_group, v6,
};
use crate::frames::Stage;
use crate::night::Gen;
use crate::payload::{DhcpId, LEASE_S, dhcp};

/// Whom a ping goes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Dev(usize),
    Internet,
}

/// One more for `ip` in a ground-truth count.
fn count(counts: &mut BTreeMap<IpAddr, u64>, ip: IpAddr) {
    *counts.entry(ip).or_default() += 1;
}

impl<W: Write> Gen<W> {
    pub(crate) fn ping(
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
                let router_mac = self.cast.devs[ROUTER].mac;
                let (ip, key, ttl) = match s.ip {
                    Ip::V4(_) => (Ip::V4(PING4_TARGET), self.cast.k_ping4, 118),
                    Ip::V6(_) => (Ip::V6(v6(PING6_TARGET)), self.cast.k_ping6, 58),
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
        let silenced = matches!(to, Target::Dev(t) if self.quiet.get(t).copied().unwrap_or(false));
        let id = self.cast.devs[src].ping_id;
        self.cast.devs[src].ping_id = id.wrapping_add(1);
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
            count(&mut self.truth.echo_requests_by_src, s.ip.addr());
            if answers && !self.rng.chance(loss_permille) {
                let rd = self.delay(rtt / 2, rtt);
                if silenced {
                    // Planted: the device does not answer tonight. The same draws as if it
                    // did, and the reply keeps its place in time, so the rest of the night
                    // is as it would have been.
                    self.stage.phantom(&d, rd);
                    count(&mut self.truth.echo_unanswered_by_src, s.ip.addr());
                    if let Target::Dev(t) = to
                        && let Some(m) = self.quiet_misses.get_mut(t)
                    {
                        *m += 1;
                    }
                    continue;
                }
                self.stage
                    .echo(&d, &s, true, IcmpEchoHeader { id, seq }, &p, rd)?;
                count(&mut self.truth.echo_replies_by_dst, s.ip.addr());
            } else {
                count(&mut self.truth.echo_unanswered_by_src, s.ip.addr());
            }
        }
        Ok(())
    }

    // ----- link layer: ARP, NDP, DHCP -----

    pub(crate) fn arp_exchange(&mut self, x: f64) -> io::Result<()> {
        let d = self
            .rng
            .pick([ANNA, BEN, LAPTOP, TV, PRINTER, TABLET, THERMO, PLUG, PI]);
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
        let ka = self.cast.devs[asker.dev].k_mac;
        let who_has = |stage: &mut Stage, delay| {
            stage.arp(
                &asker,
                BROADCAST_MAC,
                ArpOperation::REQUEST,
                asker_ip,
                [0; 6],
                target_ip,
                ka,
                delay,
            )
        };
        who_has(&mut self.stage, 0)?;
        if awake(target, x) {
            let kt = self.cast.devs[target].k_mac;
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
                who_has(&mut self.stage, delay)?;
            }
        }
        Ok(())
    }

    pub(crate) fn neighbour(&mut self, x: f64) -> io::Result<()> {
        let d = self.rng.pick([PI, ANNA, BEN, LAPTOP, PRINTER, TABLET]);
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

    /// The router's advertisement to all nodes, `delay` µs after the previous frame.
    pub(crate) fn router_advertisement(&mut self, delay: u64) -> io::Result<()> {
        let r = self.ep(ROUTER, Fam::Ll);
        let r = Ep { ttl: 255, ..r };
        let all = to_ipv6_group(r, 1);
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
            .icmpv6(&r, &all, 134, [64, 0, 0x07, 0x08], &p, delay)
    }

    /// Device `d` joins the network: DHCP (discover, offer, request, ack), ARP probes
    /// and an announcement, then for an IPv6 device duplicate address detection, a
    /// router solicitation and the router's advertisement.
    pub(crate) fn join(&mut self, d: usize) -> io::Result<()> {
        let dev = self.cast.devs[d].clone();
        self.dhcp_exchange(d, &dev)?;
        self.arp_probes(d, &dev)?;
        if let Some(ll) = dev.ll {
            self.ipv6_join(d, &dev, ll)?;
        }
        Ok(())
    }

    /// DISCOVER, OFFER, REQUEST, ACK for device `d` (its current MAC and DHCP identity),
    /// planting its host name, vendor class and client id.
    pub(crate) fn dhcp_exchange(&mut self, d: usize, dev: &Dev) -> io::Result<()> {
        let id = DhcpId {
            mac: dev.mac,
            addr: dev.v4,
            host: &dev.host,
            vendor: &dev.vendor,
            client_id: &dev.client_id,
        };
        let xid = self.rng.u32();
        let unspec = self.unspec_ep(d, Fam::V4, 64);
        let bcast = Ep {
            mac: BROADCAST_MAC,
            ip: Ip::V4([255; 4]),
            ..unspec
        };
        let router = self.ep(ROUTER, Fam::V4);
        for (i, msg) in [1u8, 2, 3, 5].into_iter().enumerate() {
            self.scratch.clear();
            dhcp(&mut self.scratch, msg, xid, &id, self.cast.devs[ROUTER].v4);
            let delay = if i == 0 { 0 } else { self.delay(1_500, 6_000) };
            if msg == 1 || msg == 3 {
                self.stage
                    .udp(&unspec, &bcast, (68, 67), 0, &self.scratch, delay)?;
                let addr = Some(Ip::V4(dev.v4));
                let ttl = Some(LEASE_S);
                for (kind, name) in [
                    (NameKind::DhcpHostname, &dev.host),
                    (NameKind::DhcpVendorClass, &dev.vendor),
                    (NameKind::DhcpClientId, &dev.client_id),
                ] {
                    if !name.is_empty() {
                        self.plant(kind, name, None, &unspec, addr, ttl);
                    }
                }
            } else {
                self.stage
                    .udp(&router, &bcast, (67, 68), 0, &self.scratch, delay)?;
            }
        }
        Ok(())
    }

    /// ARP probes, then an announcement.
    fn arp_probes(&mut self, d: usize, dev: &Dev) -> io::Result<()> {
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
        )
    }

    /// Duplicate address detection from ::, router solicitation, advertisement.
    fn ipv6_join(&mut self, d: usize, dev: &Dev, ll: [u8; 16]) -> io::Result<()> {
        let (mc_ip, mc_mac) = solicited_node(&ll);
        let src = self.unspec_ep(d, Fam::Ll, 255);
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
        let routers = to_ipv6_group(me6, 2);
        let mut p = [0u8; 8];
        p[0] = 1;
        p[1] = 1;
        p[2..8].copy_from_slice(&dev.mac);
        let delay = self.delay(1_000_000, 1_200_000);
        self.stage.icmpv6(&me6, &routers, 133, [0; 4], &p, delay)?;
        let delay = self.delay(2_000, 20_000);
        self.router_advertisement(delay)
    }
}

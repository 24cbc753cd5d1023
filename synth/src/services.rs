//! Application bursts over UDP and TCP: DNS lookups (always before a session to a
//! named server), browsing (HTTPS), HTTP downloads, SSH, mDNS, NTP and the router's
//! fragmented syslog.
//!
//! Invariants: DNS answers carry the address the session then uses; the printer's NTP
//! is the only VLAN-tagged traffic; syslog datagrams are the only IPv4 fragments.

use std::io::{self, Write};

use crate::NameKind;
use crate::cast::{
    ANNA, BEN, Ep, Fam, Ip, LAPTOP, PI, PRINTER, ROUTER, S_API, S_CDN, S_GIT, S_UPDATES, S_WWW,
    TABLET, THERMO, TV, awake, to_ipv4_group, to_ipv6_group,
};
use crate::named::service_of;
use crate::night::Gen;
use crate::payload::{dns_message, mdns_answer, mdns_query, ntp_ts, rfc3339};

impl<W: Write> Gen<W> {
    /// A DNS lookup of `name` from `c` to the router; returns nothing, stages 2 frames.
    fn dns(&mut self, c: &Ep, name: &str, qtype: u16, answer: Option<Ip>) -> io::Result<()> {
        let r = self.resolver(c);
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
        self.stage.udp(&r, c, (53, port), 0, &self.scratch, delay)?;
        if answer.is_some() {
            self.plant(
                NameKind::DnsAnswer,
                name.as_bytes(),
                None,
                c,
                answer,
                Some(ttl),
            );
        }
        Ok(())
    }

    pub(crate) fn browse(&mut self, x: f64) -> io::Result<()> {
        let mut d = self.rng.pick([ANNA, BEN, LAPTOP, TABLET, TV]);
        if !awake(d, x) {
            d = ANNA;
        }
        let use6 = self.has_v6(d) && self.rng.chance(450);
        let c = self.ep(d, if use6 { Fam::Ula } else { Fam::V4 });
        let srv = if self.rng.chance(700) { S_API } else { S_CDN };
        let s = self.server_ep(srv, use6);
        let name = self.cast.servers[srv].name;
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

    pub(crate) fn http(&mut self, x: f64) -> io::Result<()> {
        let mut d = self.rng.pick([LAPTOP, PRINTER, TV, TABLET]);
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
        let name = self.cast.servers[srv].name;
        self.http_host.clear();
        self.http_host.extend_from_slice(name.as_bytes());
        self.dns(&c, name, 1, Some(s.ip))?;
        let rounds = self.rng.range(1, 2) as usize;
        let mut rr = [(0usize, 0usize); 2];
        for r in rr.iter_mut().take(rounds) {
            *r = (0, self.rng.range(200, 12_000) as usize);
        }
        let rtt = self.rng.range(15_000, 45_000);
        self.tcp_session(c, s, 80, &rr[..rounds], rtt)
    }

    pub(crate) fn ssh(&mut self) -> io::Result<()> {
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

    pub(crate) fn mdns(&mut self, x: f64) -> io::Result<()> {
        let mut q = self.rng.pick([ANNA, BEN, TABLET, LAPTOP]);
        if !awake(q, x) {
            q = ANNA;
        }
        // A service the TV or the printer announces (and answers for), or one nobody has.
        let answerer = match self.rng.below(3) {
            0 => TV,
            1 => PRINTER,
            _ => usize::MAX,
        };
        let (service, instance) = service_of(answerer)
            .map_or(("_airplay._tcp.local", ""), |(service, instance, ..)| {
                (service, instance)
            });
        let use6 = self.rng.chance(300);
        let c = self.ep(q, if use6 { Fam::Ll } else { Fam::V4 });
        let group = if use6 {
            to_ipv6_group(c, 0xfb)
        } else {
            to_ipv4_group(c, [224, 0, 0, 251])
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
            let full = format!("{instance}.{service}");
            self.plant(
                NameKind::MdnsService,
                full.as_bytes(),
                None,
                &a,
                Some(a.ip),
                Some(120),
            );
        }
        Ok(())
    }

    pub(crate) fn ntp(&mut self) -> io::Result<()> {
        let d = self.rng.pick([PRINTER, PI, TABLET, THERMO]);
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

    pub(crate) fn syslog(&mut self) -> io::Result<()> {
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
}

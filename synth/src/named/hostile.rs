//! The hostile device: names built to break outputs (markup, bidi overrides, NUL,
//! 10 kB, invalid UTF-8) sent in DHCP, mDNS, DNS answers, TLS/QUIC SNI and HTTP Host.

use super::*;

impl<W: Write> Gen<W> {
    /// One step of the hostile device with hostile name `i`.
    pub(super) fn hostile(&mut self, i: usize, step: HostileStep) -> io::Result<()> {
        if HOSTILE >= self.cast.devs.len() {
            return Ok(());
        }
        let names = hostile_names();
        let Some(name) = names.get(i) else {
            return Ok(());
        };
        let d = HOSTILE;
        match step {
            HostileStep::Dhcp => {
                self.cast.devs[d].host.clone_from(name);
                self.cast.devs[d].vendor.clone_from(name);
                let dev = self.cast.devs[d].clone();
                self.dhcp_exchange(d, &dev)
            }
            HostileStep::Mdns => self.hostile_mdns(name),
            HostileStep::DnsTls => {
                let c = self.ep(d, Fam::V4);
                let s = self.server_ep(S_HOSTILE, false);
                let q = format!("name-{i}.hostile.example");
                self.lookup(&c, q.as_bytes(), Some(name), 1, Some(s.ip))?;
                self.lookup(&c, name, None, 1, Some(s.ip))?;
                self.tls_visit(c, s, name, false)
            }
            HostileStep::Quic => {
                let c = self.ep(d, Fam::V4);
                let s = self.server_ep(S_HOSTILE, false);
                self.quic_visit(c, s, name, false)
            }
            HostileStep::Http => {
                let c = self.ep(d, Fam::V4);
                let s = self.server_ep(S_HOSTILE, false);
                self.http_visit(c, s, name)
            }
        }
    }

    /// The hostile device announces `<name>.local` and a service instance `<name>` with
    /// TXT `fn=<name>` and `md=<name>` (the rest of a long name in further strings).
    pub(super) fn hostile_mdns(&mut self, name: &[u8]) -> io::Result<()> {
        let (me, group) = Self::mdns_group(self.ep(HOSTILE, Fam::V4));
        let mut host = name.to_vec();
        host.extend_from_slice(b".local");
        let service = b"_http._tcp.local";
        let mut instance = name.to_vec();
        instance.extend_from_slice(b"._http._tcp.local");
        let mut fname = b"fn=".to_vec();
        fname.extend_from_slice(name);
        let mut model = b"md=".to_vec();
        model.extend_from_slice(name);
        let mut txt: Vec<&[u8]> = Vec::new();
        for s in [&fname, &model] {
            txt.extend(s.chunks(255));
        }
        let rrs = [
            Rr {
                name: service,
                class: 1,
                ttl: 4500,
                data: Rdata::Name(12, &instance),
            },
            Rr {
                name: &instance,
                class: 0x8001,
                ttl: 120,
                data: Rdata::Srv(80, &host),
            },
            Rr {
                name: &instance,
                class: 0x8001,
                ttl: 4500,
                data: Rdata::Txt(&txt),
            },
            Rr {
                name: &host,
                class: 0x8001,
                ttl: 120,
                data: Rdata::Addr(me.ip),
            },
        ];
        self.scratch.clear();
        dns_packet(&mut self.scratch, 0, 0x8400, &[], &rrs);
        self.stage
            .udp(&me, &group, (5353, 5353), 0, &self.scratch, 0)?;
        self.plant(NameKind::MdnsHost, &host, None, &me, Some(me.ip), Some(120));
        self.plant(
            NameKind::MdnsService,
            &instance,
            None,
            &me,
            Some(me.ip),
            Some(4500),
        );
        // What the TXT record's first string for `key=<name>` holds after `key=`.
        let first_value = |kv: &[u8]| {
            kv.chunks(255)
                .next()
                .unwrap_or(&[])
                .get(3..)
                .unwrap_or(&[])
                .to_vec()
        };
        let f = first_value(&fname);
        let m = first_value(&model);
        self.plant(
            NameKind::MdnsFriendlyName,
            &f,
            None,
            &me,
            Some(me.ip),
            Some(4500),
        );
        self.plant(NameKind::MdnsModel, &m, None, &me, Some(me.ip), Some(4500));
        Ok(())
    }
}

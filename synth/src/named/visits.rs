//! A device visiting a remote service by name: the DNS lookup (CNAME chains), then TLS
//! with SNI, HTTP with Host, or QUIC with its Initial's SNI.

use super::*;

impl<W: Write> Gen<W> {
    /// A DNS lookup from `c` to the router: `qname` of `qtype`, answered with a CNAME to
    /// `cname` when given and then `answer` (owned by the canonical name) when given.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn lookup(
        &mut self,
        c: &Ep,
        qname: &[u8],
        cname: Option<&[u8]>,
        qtype: u16,
        answer: Option<Ip>,
    ) -> io::Result<()> {
        let r = self.resolver(c);
        let id = self.rng.u16();
        let port = self.port(c.dev);
        self.scratch.clear();
        dns_packet(&mut self.scratch, id, 0x0100, &[(qname, qtype)], &[]);
        let delay = self.delay(100, 2_000);
        self.stage.udp(c, &r, (port, 53), 0, &self.scratch, delay)?;
        let ttl = 60 + self.rng.below(3000) as u32;
        let mut rrs = Vec::with_capacity(2);
        if let Some(cn) = cname {
            rrs.push(Rr {
                name: qname,
                class: 1,
                ttl,
                data: Rdata::Name(5, cn),
            });
        }
        if let Some(a) = answer {
            rrs.push(Rr {
                name: cname.unwrap_or(qname),
                class: 1,
                ttl,
                data: Rdata::Addr(a),
            });
        }
        self.scratch.clear();
        dns_packet(&mut self.scratch, id, 0x8180, &[(qname, qtype)], &rrs);
        let delay = self.delay(400, 30_000);
        self.stage.udp(&r, c, (53, port), 0, &self.scratch, delay)?;
        if answer.is_some() {
            self.plant(NameKind::DnsAnswer, qname, cname, c, answer, Some(ttl));
        }
        Ok(())
    }

    /// Device `d` looks a name up (A, and AAAA when it has IPv6) and connects to the answer.
    pub(super) fn visit(&mut self, d: usize, v: Visit) -> io::Result<()> {
        let srv_v6 = self.cast.servers[v.server].v6.is_some();
        let use6 = v.v6 && self.has_v6(d) && srv_v6;
        let c = self.ep(d, if use6 { Fam::Ula } else { Fam::V4 });
        let s4 = self.server_ep(v.server, false);
        let s6 = self.server_ep(v.server, true);
        let cname = v.cname.map(str::as_bytes);
        self.lookup(&c, v.qname.as_bytes(), cname, 1, Some(s4.ip))?;
        if self.has_v6(d) {
            self.lookup(&c, v.qname.as_bytes(), cname, 28, srv_v6.then_some(s6.ip))?;
        }
        let s = if use6 { s6 } else { s4 };
        let name = v.qname.as_bytes();
        match v.via {
            Via::Tls { pq } => self.tls_visit(c, s, name, pq),
            Via::Quic { pq } => self.quic_visit(c, s, name, pq),
            Via::Http => self.http_visit(c, s, name),
        }
    }

    /// A TLS session to `s` that opens with a ClientHello naming `sni`.
    pub(super) fn tls_visit(&mut self, c: Ep, s: Ep, sni: &[u8], pq: bool) -> io::Result<()> {
        let hello = Hello {
            sni,
            pq,
            quic_scid: None,
        };
        let (hs, r) = pooled_client_hello(&hello, &self.pool, &mut self.rng);
        self.tls_sid.clear();
        self.tls_sid.extend_from_slice(&self.pool[r + 32..r + 64]);
        self.tls_hello.clear();
        records(&mut self.tls_hello, 22, 0x0301, &hs);
        self.sni.clear();
        self.sni.extend_from_slice(sni);
        let resp = self.rng.range(2_000, 9_000) as usize;
        let rtt = self.rng.range(10_000, 40_000);
        self.tcp_session(c, s, 443, &[(0, resp)], rtt)
    }

    /// An HTTP/1.1 download from `s` with `host` in the Host header.
    pub(super) fn http_visit(&mut self, c: Ep, s: Ep, host: &[u8]) -> io::Result<()> {
        self.http_host.clear();
        self.http_host.extend_from_slice(host);
        let resp = self.rng.range(300, 3_000) as usize;
        let rtt = self.rng.range(15_000, 45_000);
        self.tcp_session(c, s, 80, &[(0, resp)], rtt)
    }

    /// A QUIC v1 handshake start: the client's Initial(s) carrying a ClientHello naming
    /// `sni` (over two Initials with `pq`), the server's Initial (ACK and ServerHello) and
    /// the client's ACK, each datagram padded to 1200 bytes.
    pub(super) fn quic_visit(&mut self, c: Ep, s: Ep, sni: &[u8], pq: bool) -> io::Result<()> {
        let mut ids = [0u8; 24];
        for chunk in ids.chunks_mut(8) {
            chunk.copy_from_slice(&self.rng.next().to_le_bytes());
        }
        let (dcid, rest) = ids.split_at(8);
        let (scid, server_cid) = rest.split_at(8);
        let hello = Hello {
            sni,
            pq,
            quic_scid: Some(scid),
        };
        let (hs, _) = pooled_client_hello(&hello, &self.pool, &mut self.rng);
        let keys = initial_keys(dcid, false);
        let port = self.port(c.dev);
        let mut frames = Vec::with_capacity(1200);
        let mut off = 0;
        let mut pn = 0u8;
        while off < hs.len() {
            let take = (hs.len() - off).min(1100);
            frames.clear();
            crypto_frame(&mut frames, off, &hs[off..off + take]);
            self.pay_c.clear();
            seal(
                &mut self.pay_c,
                &Initial {
                    keys: &keys,
                    dcid,
                    scid,
                    pn,
                    frames: &frames,
                    size: 1200,
                },
            );
            let delay = if pn == 0 { 0 } else { self.delay(30, 300) };
            self.stage.udp(&c, &s, (port, 443), 0, &self.pay_c, delay)?;
            off += take;
            pn = pn.wrapping_add(1);
        }
        self.plant(NameKind::QuicSni, sni, None, &c, Some(s.ip), None);
        // The server's Initial: ACK of the client's, ServerHello.
        let skeys = initial_keys(dcid, true);
        let mut sh = Vec::with_capacity(128);
        let r = self.rng.below((self.pool.len() - 64) as u64) as usize;
        server_hello(&mut sh, &[], &self.pool[r..r + 64]);
        frames.clear();
        ack_frame(&mut frames, pn.wrapping_sub(1));
        crypto_frame(&mut frames, 0, &sh);
        self.pay_s.clear();
        seal(
            &mut self.pay_s,
            &Initial {
                keys: &skeys,
                dcid: scid,
                scid: server_cid,
                pn: 0,
                frames: &frames,
                size: 1200,
            },
        );
        let rtt = self.delay(8_000, 40_000);
        self.stage.udp(&s, &c, (443, port), 0, &self.pay_s, rtt)?;
        // The client acknowledges it (to the connection id the server chose).
        frames.clear();
        ack_frame(&mut frames, 0);
        self.pay_c.clear();
        seal(
            &mut self.pay_c,
            &Initial {
                keys: &keys,
                dcid: server_cid,
                scid,
                pn,
                frames: &frames,
                size: 1200,
            },
        );
        let delay = self.delay(200, 2_000);
        self.stage.udp(&c, &s, (port, 443), 0, &self.pay_c, delay)
    }
}

//! The steps of planted activities at the level of connections: a TCP connection's
//! handshake, data and close, the TLS hello, request/response exchanges, bulk transfers,
//! the long connection and the DNS tunnel's queries.

use super::*;

impl St {
    /// A new contact record for the connection or exchange about to be staged.
    pub(super) fn new_contact(&mut self, port: u16) {
        self.truth.contacts.push(Contact {
            client_port: port,
            ..Contact::default()
        });
        self.staging = self.truth.contacts.len() - 1;
    }

    pub(super) fn count(&mut self, up: usize, down: usize) {
        if let Some(c) = self.truth.contacts.get_mut(self.staging) {
            c.up_bytes += up as u64;
            c.down_bytes += down as u64;
        }
    }

    /// Handshake from `c` to `s` port `port`; opens a contact (a TCP session).
    pub(super) fn open<W: Write>(
        &mut self,
        g: &mut Gen<W>,
        c: Ep,
        s: Ep,
        port: u16,
    ) -> io::Result<Flow> {
        let cport = self.next_port();
        let isn = (self.rng.u32(), self.rng.u32());
        let mut f = Flow::new(c, s, (cport, port), isn, MSS);
        g.truth.tcp_sessions += 1;
        self.new_contact(cport);
        self.out.tcp(&f.next(true, F_SYN, 0), &[])?;
        self.out.mark(Mark::Start(self.staging));
        self.wait_rtt();
        self.out.tcp(&f.next(false, F_SYN | F_ACK, 0), &[])?;
        self.wait_us(30, 200);
        self.out.tcp(&f.next(true, F_ACK, 0), &[])?;
        Ok(f)
    }

    /// Client FIN, server FIN, client ACK; closes the contact.
    pub(super) fn close(&mut self, f: &mut Flow) -> io::Result<()> {
        self.wait_us(1_000, 200_000);
        self.out.tcp(&f.next(true, F_FIN | F_ACK, 0), &[])?;
        self.wait_rtt();
        self.out.tcp(&f.next(false, F_FIN | F_ACK, 0), &[])?;
        self.wait_us(30, 300);
        self.out.tcp(&f.next(true, F_ACK, 0), &[])?;
        self.out.mark(Mark::End);
        Ok(())
    }

    /// Sends `data` as segments (every `gap` ns apart when not 0, else 30..1200 µs); the
    /// other side ACKs every second segment and the last. Returns the index of the last
    /// data segment.
    pub(super) fn send(
        &mut self,
        f: &mut Flow,
        from_client: bool,
        data: &[u8],
        gap: u64,
    ) -> io::Result<usize> {
        let (mut off, mut n, mut last_idx, mut seg_t) = (0, 0usize, 0, self.out.t);
        while off < data.len() {
            let len = (data.len() - off).min(MSS);
            let last = off + len == data.len();
            if n > 0 {
                if gap > 0 {
                    self.out.t = (seg_t + gap).max(self.out.t + US);
                } else {
                    self.wait_us(30, 1_200);
                }
            }
            seg_t = self.out.t;
            let flags = F_ACK | if last { F_PSH } else { 0 };
            self.out
                .tcp(&f.next(from_client, flags, len), &data[off..off + len])?;
            last_idx = self.out.stage.frames.len() - 1;
            off += len;
            n += 1;
            if n % 2 == 0 || last {
                self.wait_us(20, 400);
                self.out.tcp(&f.next(!from_client, F_ACK, 0), &[])?;
            }
        }
        Ok(last_idx)
    }

    /// The TLS hello exchange: a ClientHello naming the activity's name, then
    /// ServerHello, ChangeCipherSpec and the server's encrypted handshake (one record).
    pub(super) fn hello<W: Write>(&mut self, g: &Gen<W>, f: &mut Flow) -> io::Result<()> {
        let hello = Hello {
            sni: &self.name,
            pq: false,
            quic_scid: None,
        };
        let (hs, r) = pooled_client_hello(&hello, &g.pool, &mut self.rng);
        let mut ch = Vec::with_capacity(hs.len() + 16);
        records(&mut ch, 22, 0x0301, &hs);
        self.wait_us(200, 2_000);
        let at = self.send(f, true, &ch, 0)?;
        self.out.marks.push((
            at,
            Mark::Name(PendingName {
                kind: NameKind::TlsSni,
                name: self.name.clone(),
                by: f.c,
                addr: Some(f.s.ip),
                ttl: None,
            }),
        ));
        let mut sh = Vec::with_capacity(128);
        let r2 = self.rng.below((g.pool.len() - 64) as u64) as usize;
        server_hello(&mut sh, &g.pool[r + 32..r + 64], &g.pool[r2..r2 + 64]);
        let mut data = Vec::with_capacity(256);
        tls_content(&mut data, &g.pool, &mut self.rng, 74);
        let mut head = Vec::with_capacity(sh.len() + 16);
        records(&mut head, 22, 0x0303, &sh);
        head.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
        data.splice(0..0, head);
        self.wait_rtt();
        self.send(f, false, &data, 0)?;
        self.count(ch.len(), data.len());
        Ok(())
    }

    /// `n` bytes of application data for `tr` into `self.pay` (TLS records or opaque).
    pub(super) fn payload<W: Write>(&mut self, g: &Gen<W>, tr: Transport, n: usize) {
        if tr == Transport::Tls {
            tls_content(&mut self.pay, &g.pool, &mut self.rng, n);
        } else {
            self.pay.clear();
            extend_random(&mut self.pay, &g.pool, &mut self.rng, n.max(1));
        }
    }

    /// A request of `up` bytes and a response of `down` bytes on an open connection.
    pub(super) fn exchange<W: Write>(
        &mut self,
        g: &Gen<W>,
        f: &mut Flow,
        tr: Transport,
        up: usize,
        down: usize,
    ) -> io::Result<()> {
        self.payload(g, tr, up);
        let pay = std::mem::take(&mut self.pay);
        self.wait_us(1_000, 20_000);
        self.send(f, true, &pay, 0)?;
        let up = pay.len();
        self.pay = pay;
        self.payload(g, tr, down);
        let pay = std::mem::take(&mut self.pay);
        self.wait_rtt();
        self.send(f, false, &pay, 0)?;
        let down = pay.len();
        self.pay = pay;
        self.count(up, down);
        if let Some(c) = self.truth.contacts.get_mut(self.staging) {
            c.exchanges += 1;
        }
        Ok(())
    }

    /// One contact with the remote: a lookup when due, then a short TCP connection
    /// (TLS hello first with [`Transport::Tls`]) or a UDP request and response.
    pub(super) fn contact<W: Write>(
        &mut self,
        g: &mut Gen<W>,
        tr: Transport,
        ttl: u32,
        up: usize,
        down: usize,
    ) -> io::Result<()> {
        let c = g.ep(self.dev, Fam::V4);
        self.resolve(g, &c, ttl)?;
        let Some(s) = self.remote else {
            return Ok(());
        };
        if let Transport::Udp(p) = tr {
            let port = self.next_port();
            self.new_contact(port);
            self.payload(g, tr, up);
            self.out.udp(&c, &s, (port, p), &self.pay)?;
            self.out.mark(Mark::Start(self.staging));
            let up = self.pay.len();
            self.wait_rtt();
            self.payload(g, tr, down);
            self.out.udp(&s, &c, (p, port), &self.pay)?;
            self.out.mark(Mark::End);
            let down = self.pay.len();
            self.count(up, down);
            if let Some(ct) = self.truth.contacts.get_mut(self.staging) {
                ct.exchanges = 1;
            }
            return Ok(());
        }
        let mut f = self.open(g, c, s, tr.port())?;
        if tr == Transport::Tls {
            self.hello(g, &mut f)?;
        }
        self.exchange(g, &mut f, tr, up, down)?;
        self.close(&mut f)
    }

    /// One step of a bulk TLS transfer of `self.bytes_left` bytes (uploaded or
    /// downloaded at `rate` bytes/s): open and hello, then a chunk per step, then a
    /// short answer and the close. True once closed.
    pub(super) fn bulk<W: Write>(
        &mut self,
        g: &mut Gen<W>,
        upload: bool,
        rate: u64,
    ) -> io::Result<bool> {
        let gap = (MSS as u64 * NS / rate.max(1)).max(US);
        match self.phase {
            0 => {
                let c = g.ep(self.dev, Fam::V4);
                self.resolve(g, &c, 300)?;
                let Some(s) = self.remote else {
                    return Ok(true);
                };
                let mut f = self.open(g, c, s, 443)?;
                self.hello(g, &mut f)?;
                self.flow = Some(f);
                self.phase = 1;
                self.next_ns = self.out.t + MS;
                Ok(false)
            }
            1 => {
                let Some(mut f) = self.flow else {
                    return Ok(true);
                };
                let mut chunk = self.bytes_left.min((CHUNK_SEGMENTS * MSS) as u64);
                if self.bytes_left - chunk < 6 {
                    chunk = self.bytes_left;
                }
                tls_content(&mut self.pay, &g.pool, &mut self.rng, chunk as usize);
                let pay = std::mem::take(&mut self.pay);
                self.send(&mut f, upload, &pay, gap)?;
                let n = pay.len();
                self.pay = pay;
                if upload {
                    self.count(n, 0);
                } else {
                    self.count(0, n);
                }
                self.bytes_left = self.bytes_left.saturating_sub(n as u64);
                if self.bytes_left == 0 {
                    self.phase = 2;
                }
                self.flow = Some(f);
                self.next_ns = self.out.t + gap;
                Ok(false)
            }
            _ => {
                let Some(mut f) = self.flow.take() else {
                    return Ok(true);
                };
                tls_content(&mut self.pay, &g.pool, &mut self.rng, 60);
                let pay = std::mem::take(&mut self.pay);
                self.wait_rtt();
                self.send(&mut f, !upload, &pay, 0)?;
                if upload {
                    self.count(0, pay.len());
                } else {
                    self.count(pay.len(), 0);
                }
                self.pay = pay;
                if let Some(c) = self.truth.contacts.get_mut(self.staging) {
                    c.exchanges += 1;
                }
                self.close(&mut f)?;
                self.phase = 0;
                Ok(true)
            }
        }
    }

    /// A volume spike's step: part of one download; after one, the next is due.
    pub(super) fn spike<W: Write>(&mut self, g: &mut Gen<W>) -> io::Result<()> {
        if self.bulk(g, false, SPIKE_RATE)? {
            self.done += 1;
            if self.done < self.left {
                self.bytes_left = self.chunk;
                self.next_ns = (self.base_ns + self.done * self.spacing).max(self.out.t + 10 * MS);
            }
        }
        Ok(())
    }

    /// A long connection's step: open, one exchange, or the close.
    pub(super) fn long<W: Write>(&mut self, g: &mut Gen<W>, l: &LongConnection) -> io::Result<()> {
        let every = u64::from(l.every_s) * NS;
        match self.phase {
            0 => {
                self.base_ns = self.out.t;
                let c = g.ep(self.dev, Fam::V4);
                self.resolve(g, &c, 300)?;
                let Some(s) = self.remote else {
                    return Ok(());
                };
                let mut f = self.open(g, c, s, l.transport.port())?;
                if l.transport == Transport::Tls {
                    self.hello(g, &mut f)?;
                }
                self.flow = Some(f);
                self.left = u64::from((l.duration_s - 1) / l.every_s);
                self.done = 0;
                self.phase = 1;
            }
            1 => {
                let Some(mut f) = self.flow else {
                    return Ok(());
                };
                self.exchange(
                    g,
                    &mut f,
                    l.transport,
                    l.up_bytes as usize,
                    l.down_bytes as usize,
                )?;
                self.flow = Some(f);
                self.done += 1;
                self.left = self.left.saturating_sub(1);
            }
            _ => {
                if let Some(mut f) = self.flow.take() {
                    self.close(&mut f)?;
                }
                return Ok(());
            }
        }
        if self.left > 0 {
            let j = every / 100;
            let at = self.base_ns + (self.done + 1) * every - j + self.rng.below(2 * j + 1);
            self.next_ns = at.max(self.out.t + 10 * MS);
        } else {
            self.phase = 2;
            let at = self.base_ns + u64::from(l.duration_s) * NS;
            self.next_ns = at.max(self.out.t + 10 * MS);
        }
        Ok(())
    }

    /// One query of a DNS tunnel: a unique random subdomain, NXDOMAIN or a TXT answer.
    pub(super) fn tunnel<W: Write>(&mut self, g: &mut Gen<W>, t: &DnsTunnel) -> io::Result<()> {
        let c = g.ep(self.dev, Fam::V4);
        let mut q = Vec::with_capacity(64 + t.domain.len());
        let n = self.rng.range(20, 52) as usize;
        base32(&mut self.rng, &mut q, n);
        q.push(b'.');
        q.extend_from_slice(t.domain.as_bytes());
        let answer = if self.rng.chance(u64::from(t.nxdomain_permille)) {
            Answer::Nx
        } else {
            Answer::Txt
        };
        self.lookup(g, &c, &q, 16, answer, true)?;
        self.truth
            .queried_names
            .push(String::from_utf8_lossy(&q).into_owned());
        self.left = self.left.saturating_sub(1);
        if self.left > 0 {
            let gap = self.spacing * self.rng.range(800, 1200) / 1000;
            self.next_ns = (self.step_ns + gap).max(self.out.t + MS);
        }
        Ok(())
    }
}

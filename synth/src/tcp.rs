//! TCP sessions: handshake, request/response rounds with correct sequence and
//! acknowledgement numbers, FIN close; the content follows the port (TLS records on
//! 443, HTTP/1.1 on 80, SSH with a clear-text key exchange on 22).
//!
//! Invariants: a session stays under the burst limit (about 110 server segments);
//! the receiver ACKs every second segment and the last; each session counts once in
//! the ground truth.

use std::io::{self, Write};

use crate::NameKind;
use crate::cast::{Ep, Ip};
use crate::frames::{F_ACK, F_FIN, F_PSH, F_SYN, Flow, tcp_frame};
use crate::hello::{records, server_hello};
use crate::night::Gen;
use crate::payload::{extend_random, ssh_content, ssh_packet, ssh_string, tls_content};

impl<W: Write> Gen<W> {
    /// A whole connection: handshake, `rounds` of (request bytes, response bytes),
    /// and a FIN close from the client. The content follows the port: TLS records
    /// (443), HTTP/1.1 (80), SSH (22).
    pub(crate) fn tcp_session(
        &mut self,
        c: Ep,
        s: Ep,
        port: u16,
        rounds: &[(usize, usize)],
        rtt: u64,
    ) -> io::Result<()> {
        let v6 = matches!(c.ip, Ip::V6(_));
        let ports = (self.port(c.dev), port);
        let isn = (self.rng.u32(), self.rng.u32());
        let mut f = Flow::new(c, s, ports, isn, if v6 { 1440 } else { 1460 });
        self.truth.tcp_sessions += 1;
        // Keep the burst under MAX_BURST frames: about 1.5 frames per server segment.
        let budget_segments = 110usize;
        self.seg_at(&mut f, true, F_SYN, 0)?;
        let d = self.delay(rtt / 2, rtt);
        self.seg_at(&mut f, false, F_SYN | F_ACK, d)?;
        let d = self.delay(30, 200);
        self.seg_at(&mut f, true, F_ACK, d)?;
        if port == 22 {
            // Banners: the server speaks first.
            self.pay_s.clear();
            self.pay_s
                .extend_from_slice(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
            let d = self.delay(500, 3_000);
            self.data(&mut f, false, d)?;
            self.pay_c.clear();
            self.pay_c.extend_from_slice(b"SSH-2.0-OpenSSH_9.6\r\n");
            let d = self.delay(100, 1_000);
            self.data(&mut f, true, d)?;
            self.ssh_kex(&mut f, rtt)?;
        }
        let mut used = 0usize;
        for (i, &(req, resp)) in rounds.iter().enumerate() {
            let room = budget_segments.saturating_sub(used);
            if room < 4 {
                break;
            }
            let resp = resp.min((room - 2) * f.mss);
            match port {
                80 => self.http_content(i, resp),
                22 => {
                    ssh_content(&mut self.pay_c, &self.pool, &mut self.rng, req);
                    ssh_content(&mut self.pay_s, &self.pool, &mut self.rng, resp);
                }
                443 if i == 0 && !self.tls_hello.is_empty() => self.tls_handshake(resp),
                _ => {
                    tls_content(&mut self.pay_c, &self.pool, &mut self.rng, req);
                    tls_content(&mut self.pay_s, &self.pool, &mut self.rng, resp);
                }
            }
            let hello = port == 443 && i == 0 && !self.tls_hello.is_empty();
            used += self.pay_s.len().div_ceil(f.mss) + self.pay_c.len().div_ceil(f.mss);
            let think = if i == 0 {
                self.delay(200, 5_000)
            } else {
                self.delay(50_000, 3_000_000)
            };
            self.data(&mut f, true, think)?;
            if i == 0 && (port == 80 || hello) {
                let (kind, name) = if port == 80 {
                    (NameKind::HttpHost, std::mem::take(&mut self.http_host))
                } else {
                    (NameKind::TlsSni, std::mem::take(&mut self.sni))
                };
                let frame = self.last_data_frame;
                self.plant_at(frame, kind, &name, None, &f.c, Some(f.s.ip), None);
                if port == 80 {
                    self.http_host = name;
                } else {
                    self.sni = name;
                }
            }
            let d = self.delay(rtt / 2, rtt + 20_000);
            self.data(&mut f, false, d)?;
        }
        self.tls_hello.clear();
        // Close: client FIN, server FIN, client ACK.
        let d = self.delay(1_000, 200_000);
        self.seg_at(&mut f, true, F_FIN | F_ACK, d)?;
        let d = self.delay(rtt / 2, rtt);
        self.seg_at(&mut f, false, F_FIN | F_ACK, d)?;
        let d = self.delay(30, 300);
        self.seg_at(&mut f, true, F_ACK, d)
    }

    /// Key exchange in the clear (KEXINIT both ways, curve25519 ECDH, NEWKEYS), after
    /// which both directions are encrypted.
    fn ssh_kex(&mut self, f: &mut Flow, rtt: u64) -> io::Result<()> {
        for client in [true, false] {
            let mut p = vec![20u8];
            extend_random(&mut p, &self.pool, &mut self.rng, 16);
            let kex = if client {
                "curve25519-sha256,ext-info-c"
            } else {
                "curve25519-sha256"
            };
            for list in [
                kex,
                "ssh-rsa",
                "chacha20-poly1305@openssh.com",
                "chacha20-poly1305@openssh.com",
                "umac-64-etm@openssh.com",
                "umac-64-etm@openssh.com",
                "none",
                "none",
                "",
                "",
            ] {
                ssh_string(&mut p, list.as_bytes());
            }
            p.extend_from_slice(&[0, 0, 0, 0, 0]);
            let buf = if client {
                &mut self.pay_c
            } else {
                &mut self.pay_s
            };
            buf.clear();
            ssh_packet(buf, &p);
            let d = self.delay(200, 2_000);
            self.data(f, client, d)?;
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.pool[..32]);
        let mut p = vec![30u8];
        ssh_string(&mut p, &key);
        self.pay_c.clear();
        ssh_packet(&mut self.pay_c, &p);
        let d = self.delay(300, 3_000);
        self.data(f, true, d)?;
        // An RSA host key (e = 65537, 2048-bit n) and an ssh-rsa signature.
        let mpint = |v: &mut Vec<u8>, bytes: &[u8]| {
            let mut m = Vec::with_capacity(bytes.len() + 1);
            if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                m.push(0);
            }
            m.extend_from_slice(bytes);
            ssh_string(v, &m);
        };
        let mut blob = Vec::with_capacity(300);
        ssh_string(&mut blob, b"ssh-rsa");
        mpint(&mut blob, &[1, 0, 1]);
        let mut n = self.pool[1024..1280].to_vec();
        n[0] |= 0x80;
        mpint(&mut blob, &n);
        let mut sig = Vec::with_capacity(300);
        ssh_string(&mut sig, b"ssh-rsa");
        ssh_string(&mut sig, &self.pool[2048..2304]);
        let mut p = vec![31u8];
        ssh_string(&mut p, &blob);
        ssh_string(&mut p, &self.pool[256..288]);
        ssh_string(&mut p, &sig);
        self.pay_s.clear();
        ssh_packet(&mut self.pay_s, &p);
        ssh_packet(&mut self.pay_s, &[21]);
        let d = self.delay(rtt / 2, rtt + 3_000);
        self.data(f, false, d)?;
        self.pay_c.clear();
        ssh_packet(&mut self.pay_c, &[21]);
        let d = self.delay(100, 1_000);
        self.data(f, true, d)
    }

    /// The first round of a TLS session that opens with `tls_hello`: the ClientHello,
    /// then ServerHello, ChangeCipherSpec and `resp` bytes of application data records.
    fn tls_handshake(&mut self, resp: usize) {
        self.pay_c.clear();
        self.pay_c.extend_from_slice(&self.tls_hello);
        self.scratch.clear();
        let r = self.rng.below((self.pool.len() - 64) as u64) as usize;
        server_hello(&mut self.scratch, &self.tls_sid, &self.pool[r..r + 64]);
        tls_content(&mut self.pay_s, &self.pool, &mut self.rng, resp);
        let mut head = Vec::with_capacity(self.scratch.len() + 16);
        records(&mut head, 22, 0x0303, &self.scratch);
        head.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
        self.pay_s.splice(0..0, head);
    }

    fn http_content(&mut self, i: usize, body: usize) {
        let paths = [
            "/index.html",
            "/firmware/latest.json",
            "/img/banner.jpg",
            "/v2/check",
            "/news",
        ];
        let path = paths[(i + self.rng.below(5) as usize) % paths.len()];
        self.pay_c.clear();
        let _ = write!(self.pay_c, "GET {path} HTTP/1.1\r\nHost: ");
        self.pay_c.extend_from_slice(&self.http_host);
        let _ = write!(
            self.pay_c,
            "\r\nUser-Agent: netdigest-synth/1.0\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
        );
        self.pay_s.clear();
        let _ = write!(
            self.pay_s,
            "HTTP/1.1 200 OK\r\nServer: example\r\nContent-Type: application/octet-stream\r\nContent-Length: {body}\r\n\r\n"
        );
        extend_random(&mut self.pay_s, &self.pool, &mut self.rng, body);
    }

    /// Sends all of `pay_c` (client) or `pay_s` (server) as segments; the other side
    /// ACKs every second segment and the last.
    fn data(&mut self, f: &mut Flow, from_client: bool, first_delay: u64) -> io::Result<()> {
        let total = if from_client {
            self.pay_c.len()
        } else {
            self.pay_s.len()
        };
        let mut off = 0;
        let mut n = 0;
        while off < total {
            let len = (total - off).min(f.mss);
            let last = off + len == total;
            let delay = if n == 0 {
                first_delay
            } else {
                self.delay(30, 1_200)
            };
            let flags = F_ACK | if last { F_PSH } else { 0 };
            let seg = f.next(from_client, flags, len);
            let payload = if from_client {
                &self.pay_c[off..off + len]
            } else {
                &self.pay_s[off..off + len]
            };
            tcp_frame(&mut self.stage, &seg, payload, delay)?;
            if last {
                self.last_data_frame = self.truth.frames + self.stage.frames.len() as u64;
            }
            off += len;
            n += 1;
            if n % 2 == 0 || last {
                let d = self.delay(20, 400);
                self.seg_at(f, !from_client, F_ACK, d)?;
            }
        }
        Ok(())
    }

    /// The flow's next segment without payload from the client (or server).
    fn seg_at(&mut self, f: &mut Flow, from_client: bool, flags: u8, delay: u64) -> io::Result<()> {
        tcp_frame(&mut self.stage, &f.next(from_client, flags, 0), &[], delay)
    }
}

//! TLS ClientHello server name over TCP, reassembled across segments (bounded).
//!
//! A hello with post-quantum key shares is bigger than one segment, and a handshake
//! message may span several TLS records. A segment whose payload starts a TLS handshake
//! record carrying a ClientHello opens per-flow state (keyed by the direction's
//! addresses and ports) holding the record-layer bytes read so far and the next
//! sequence number expected. Later segments of the flow are appended in order:
//! retransmitted and duplicate bytes are skipped, a few segments past a gap wait for it
//! to fill. Once the ClientHello is whole its server name is read and the state dropped;
//! it is dropped too on FIN/RST, on a gap that does not fill, on anything that is not a
//! handshake record, and past [`MAX_BYTES`]. At most [`MAX_FLOWS`] flows wait at once
//! (the oldest is evicted).

// The ClientHello walk shared with `quic`; declared here so lib.rs stays as it is.
#[path = "hello.rs"]
pub(crate) mod hello;

use crate::table::{Key, Table};
use crate::{Kind, Name, Packet, Transport};

/// Flows with a ClientHello still incomplete, at most.
pub(crate) const MAX_FLOWS: usize = 1024;
/// Bytes buffered per flow, at most: a ClientHello bigger than this is hostile or odd
/// (today's browsers send under 2 KiB, ECH and post-quantum shares included).
pub(crate) const MAX_BYTES: usize = 16 * 1024;
/// Segments past a gap kept per flow while the gap fills, at most.
const MAX_OUT_OF_ORDER: usize = 8;

/// TLS record content type `handshake`.
const HANDSHAKE: u8 = 0x16;
/// TCP flags.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;

#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    flows: Table<Flow, MAX_FLOWS>,
}

#[derive(Debug)]
struct Flow {
    /// The sequence number of the next byte expected.
    next: u32,
    /// Record-layer bytes from the first byte of the hello's first record, in order.
    buf: Vec<u8>,
    /// Segments that came past a gap: (sequence number, payload).
    later: Vec<(u32, Vec<u8>)>,
}

/// What the bytes read so far of a flow amount to.
#[derive(Debug, PartialEq, Eq)]
enum Records {
    /// The ClientHello handshake message, whole.
    Hello(Vec<u8>),
    /// Not yet whole.
    Partial,
    /// Not a ClientHello we will read (not handshake records, not a ClientHello, too big).
    Bad,
}

/// True when `payload` starts with a TLS handshake record whose message is (or, when cut
/// short, may be) a ClientHello. A first-byte check rejects most other payloads.
fn starts_hello(payload: &[u8]) -> bool {
    match payload {
        [HANDSHAKE, 3, minor, rest @ ..] if *minor <= 4 => {
            rest.get(2).is_none_or(|&t| t == hello::CLIENT_HELLO)
        }
        // A first segment cut inside the record header (seen from odd stacks).
        [HANDSHAKE] | [HANDSHAKE, 3] => true,
        _ => false,
    }
}

/// Reads the TLS records in `buf` (from a record's start) into one handshake message.
fn records(buf: &[u8]) -> Records {
    let mut hs: Vec<u8> = Vec::new();
    let mut rest = buf;
    loop {
        let [ty, major, minor, hi, lo, after @ ..] = rest else {
            return Records::Partial;
        };
        if *ty != HANDSHAKE || *major != 3 || *minor > 4 {
            return Records::Bad;
        }
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len == 0 {
            return Records::Bad;
        }
        let Some((fragment, next)) = after.split_at_checked(len) else {
            return Records::Partial;
        };
        if hs.is_empty() && fragment.first() != Some(&hello::CLIENT_HELLO) {
            return Records::Bad;
        }
        hs.extend_from_slice(fragment);
        if let Some(need) = hello::handshake_len(&hs) {
            if need > MAX_BYTES {
                return Records::Bad;
            }
            if hs.len() >= need {
                hs.truncate(need);
                return Records::Hello(hs);
            }
        }
        rest = next;
    }
}

impl Flow {
    fn buffered(&self) -> usize {
        self.buf.len() + self.later.iter().map(|(_, d)| d.len()).sum::<usize>()
    }

    /// Takes the segment at `seq`; the records read so far.
    fn take(&mut self, seq: u32, data: &[u8]) -> Records {
        // Distance from the next byte expected, as a signed 32-bit difference (sequence
        // numbers wrap).
        let ahead = seq.wrapping_sub(self.next).cast_signed();
        if ahead > 0 {
            let gap = usize::try_from(ahead).unwrap_or(usize::MAX);
            if self.later.len() >= MAX_OUT_OF_ORDER
                || gap
                    .saturating_add(data.len())
                    .saturating_add(self.buffered())
                    > MAX_BYTES
            {
                return Records::Bad;
            }
            self.later.push((seq, data.to_vec()));
            return Records::Partial;
        }
        if !self.append(seq, data) {
            return Records::Partial; // nothing new: a retransmission
        }
        // Segments that waited for this one.
        while let Some(i) = self
            .later
            .iter()
            .position(|(s, d)| self.covers(*s, d.len()))
        {
            let (s, d) = self.later.swap_remove(i);
            self.append(s, &d);
        }
        self.later.retain(|(s, d)| {
            // Drop those now wholly behind.
            let end = s.wrapping_add(u32::try_from(d.len()).unwrap_or(u32::MAX));
            end.wrapping_sub(self.next).cast_signed() > 0
        });
        if self.buf.len() > MAX_BYTES {
            return Records::Bad;
        }
        records(&self.buf)
    }

    /// True when a segment at `seq` of `len` bytes holds the next byte expected.
    fn covers(&self, seq: u32, len: usize) -> bool {
        let behind = self.next.wrapping_sub(seq).cast_signed();
        behind >= 0 && usize::try_from(behind).is_ok_and(|b| b < len)
    }

    /// Appends the part of the segment at `seq` (not after [`Flow::next`]) that is new;
    /// false when none is.
    fn append(&mut self, seq: u32, data: &[u8]) -> bool {
        let behind = self.next.wrapping_sub(seq).cast_signed();
        let Ok(skip) = usize::try_from(behind) else {
            return false;
        };
        let Some(new) = data.get(skip..).filter(|n| !n.is_empty()) else {
            return false;
        };
        let room = (MAX_BYTES + 1).saturating_sub(self.buf.len());
        let new = new.get(..room).unwrap_or(new);
        self.buf.extend_from_slice(new);
        self.next = self
            .next
            .wrapping_add(u32::try_from(new.len()).unwrap_or(u32::MAX));
        true
    }
}

impl Reassembly {
    /// Takes one TCP segment; true when it belongs to a TLS handshake being read (so it is
    /// not HTTP).
    pub(crate) fn segment(&mut self, p: &Packet<'_>, out: &mut Vec<Name>) -> bool {
        self.read(p, |hs| emit(p, hs, out))
    }

    /// [`Reassembly::segment`], handing each whole ClientHello (handshake message, header
    /// included) to `hello`.
    fn read(&mut self, p: &Packet<'_>, mut hello: impl FnMut(&[u8])) -> bool {
        let Transport::Tcp { seq, flags } = p.transport else {
            return false;
        };
        let payload = p.payload;
        // Data in a SYN (TCP Fast Open) starts one after its sequence number.
        let seq = if flags & SYN != 0 {
            seq.wrapping_add(1)
        } else {
            seq
        };
        let closing = flags & (FIN | RST) != 0;
        let key = (p.src, p.src_port, p.dst, p.dst_port);
        if !self.flows.is_empty()
            && let Some(flow) = self.flows.get_mut(&key)
        {
            match flow.take(seq, payload) {
                Records::Partial => {
                    if closing {
                        self.flows.remove(&key);
                    }
                    return true;
                }
                Records::Hello(hs) => {
                    self.flows.remove(&key);
                    hello(&hs);
                    return true;
                }
                Records::Bad => {
                    self.flows.remove(&key);
                    // A new hello on the same ports (a reused port) starts afresh.
                    if !starts_hello(payload) {
                        return true;
                    }
                }
            }
        }
        if !starts_hello(payload) {
            return false;
        }
        match records(payload) {
            Records::Hello(hs) => hello(&hs),
            Records::Partial if !closing && payload.len() <= MAX_BYTES => {
                self.open(key, seq, payload);
            }
            Records::Partial | Records::Bad => {}
        }
        true
    }

    /// Opens state for a hello whose first segment is `payload` at `seq`, evicting the
    /// oldest flow when [`MAX_FLOWS`] wait.
    fn open(&mut self, key: Key, seq: u32, payload: &[u8]) {
        let flow = Flow {
            next: seq.wrapping_add(u32::try_from(payload.len()).unwrap_or(u32::MAX)),
            buf: payload.to_vec(),
            later: Vec::new(),
        };
        self.flows.open(key, flow);
    }

    #[cfg(test)]
    fn pending(&self) -> usize {
        self.flows.len()
    }
}

/// Appends the server name of the ClientHello `hs`, seen in `p`'s direction.
fn emit(p: &Packet<'_>, hs: &[u8], out: &mut Vec<Name>) {
    if let Some(name) = hello::sni(hs).and_then(crate::sanitize::name) {
        out.push(Name {
            kind: Kind::TlsSni,
            name,
            addr: Some(p.dst),
            client_mac: p.src_mac,
            client_ip: Some(p.src),
            ttl: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::hello::tests::{client_hello, sni_ext};
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    const PSH_ACK: u8 = 0x18;

    /// `hs` in TLS records of at most `max` bytes of fragment each.
    fn in_records(hs: &[u8], max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in hs.chunks(max) {
            out.extend([HANDSHAKE, 3, 1]);
            out.extend(u16::try_from(chunk.len()).unwrap_or(0).to_be_bytes());
            out.extend(chunk);
        }
        out
    }

    fn packet(seq: u32, flags: u8, payload: &[u8]) -> Packet<'_> {
        Packet {
            ts_ns: 0,
            src_mac: Some([2, 0, 0, 0, 0, 1]),
            dst_mac: None,
            src: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)),
            dst: IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34)),
            src_port: 50000,
            dst_port: 443,
            transport: Transport::Tcp { seq, flags },
            payload,
        }
    }

    /// Feeds `segments` to a new [`Reassembly`]: the raw server names read (so tests do
    /// not depend on sanitize), what `segment` returned for each, and the state left.
    fn run(segments: &[(u32, u8, &[u8])]) -> (Vec<Vec<u8>>, Vec<bool>, Reassembly) {
        let mut r = Reassembly::default();
        let mut names = Vec::new();
        let mut tlsish = Vec::new();
        for &(seq, flags, data) in segments {
            tlsish.push(r.read(&packet(seq, flags, data), |hs| {
                names.extend(hello::sni(hs).map(<[u8]>::to_vec));
            }));
        }
        (names, tlsish, r)
    }

    fn big_hello(name: &[u8]) -> Vec<u8> {
        // A post-quantum-sized key share: 1216 bytes of X25519MLKEM768 plus X25519.
        in_records(
            &client_hello(&[(0x0033, vec![0x42; 1250]), sni_ext(name)]),
            16384,
        )
    }

    #[test]
    fn one_segment() {
        let rec = big_hello(b"example.com");
        let (names, tlsish, r) = run(&[(1000, PSH_ACK, &rec)]);
        assert_eq!(names, vec![b"example.com".to_vec()]);
        assert_eq!(tlsish, vec![true]);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn split_over_two_segments() {
        let rec = big_hello(b"two.example");
        let (a, b) = rec.split_at(1448);
        let (names, tlsish, r) = run(&[(7, 0x10, a), (7 + 1448, PSH_ACK, b)]);
        assert_eq!(names, vec![b"two.example".to_vec()]);
        assert_eq!(tlsish, vec![true, true]);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn split_at_every_byte_even_in_the_record_header() {
        let rec = big_hello(b"anywhere.example");
        for cut in 1..rec.len() {
            let (a, b) = rec.split_at(cut);
            let seq = u32::MAX - 3; // and across the sequence number wrap
            let b_seq = seq.wrapping_add(u32::try_from(cut).unwrap_or(0));
            let (names, _, r) = run(&[(seq, 0x10, a), (b_seq, PSH_ACK, b)]);
            assert_eq!(names, vec![b"anywhere.example".to_vec()], "cut {cut}");
            assert_eq!(r.pending(), 0);
        }
    }

    #[test]
    fn hello_over_several_records() {
        let hs = client_hello(&[(0x0033, vec![0x42; 1250]), sni_ext(b"records.example")]);
        let rec = in_records(&hs, 100);
        let (x, rest) = rec.split_at(500);
        let (y, z) = rest.split_at(500);
        let (names, _, _) = run(&[(1, 0x10, x), (501, 0x10, y), (1001, PSH_ACK, z)]);
        assert_eq!(names, vec![b"records.example".to_vec()]);
    }

    #[test]
    fn retransmitted_and_out_of_order_segments() {
        let rec = big_hello(b"ooo.example");
        let (a, rest) = rec.split_at(600);
        let (b, c) = rest.split_at(600);
        // a, a again (retransmit), c (ahead of a gap), b partly overlapping a.
        let overlap = &rec[500..1200];
        let (names, tlsish, r) = run(&[
            (100, 0x10, a),
            (100, 0x10, a),
            (1300, PSH_ACK, c),
            (600, 0x10, overlap),
        ]);
        assert_eq!(names, vec![b"ooo.example".to_vec()]);
        assert_eq!(tlsish, vec![true; 4]);
        assert_eq!(r.pending(), 0);
        let _ = b;
    }

    #[test]
    fn gap_that_never_fills_gives_up_within_bounds() {
        let rec = big_hello(b"gap.example");
        let (a, _) = rec.split_at(600);
        let mut segs = vec![(100_u32, 0x10_u8, a)];
        // Too many segments past the gap: the flow is dropped.
        for i in 0..20_u32 {
            segs.push((100 + 700 + i * 10, 0x10, &rec[20..30]));
        }
        let (names, _, r) = run(&segs);
        assert!(names.is_empty());
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn fin_or_rst_drops_state() {
        let rec = big_hello(b"fin.example");
        let (a, b) = rec.split_at(600);
        let (names, _, r) = run(&[(100, 0x10, a), (700, 0x11, &b[..10])]);
        assert!(names.is_empty());
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn not_tls_is_left_for_http() {
        let (names, tlsish, r) = run(&[(1, PSH_ACK, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")]);
        assert!(names.is_empty());
        assert_eq!(tlsish, vec![false]);
        assert_eq!(r.pending(), 0);
        // A server hello, application data, alerts: not ours either.
        for p in [
            &[0x16, 3, 3, 0, 10, 2][..],
            &[0x17, 3, 3, 0, 1, 0],
            &[0x15, 3, 3],
        ] {
            assert!(!starts_hello(p));
        }
        assert!(starts_hello(&[0x16, 3, 1]));
    }

    #[test]
    fn oversized_hello_is_given_up() {
        let hs = client_hello(&[(0x0033, vec![0x42; 20000]), sni_ext(b"huge.example")]);
        let rec = in_records(&hs, 16384);
        let segs: Vec<(u32, u8, &[u8])> = rec
            .chunks(1400)
            .enumerate()
            .map(|(i, c)| (u32::try_from(i * 1400).unwrap_or(0), 0x10, c))
            .collect();
        let (names, _, r) = run(&segs);
        assert!(names.is_empty());
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn eviction_keeps_at_most_max_flows() {
        let rec = big_hello(b"evict.example");
        let (a, _) = rec.split_at(600);
        let mut r = Reassembly::default();
        let mut out = Vec::new();
        for port in 0..3000_u16 {
            let mut p = packet(1, 0x10, a);
            p.src_port = port;
            assert!(r.segment(&p, &mut out));
            assert!(r.pending() <= MAX_FLOWS);
        }
        assert_eq!(r.pending(), MAX_FLOWS);
        // The oldest went first: the newest is still there.
        assert!(r.flows.get(&(p_src(), 2999, p_dst(), 443)).is_some());
        assert!(r.flows.get(&(p_src(), 0, p_dst(), 443)).is_none());
    }

    fn p_src() -> IpAddr {
        packet(0, 0, &[]).src
    }
    fn p_dst() -> IpAddr {
        packet(0, 0, &[]).dst
    }

    #[test]
    fn every_prefix_and_hostile_bytes_never_panic() {
        let rec = big_hello("\u{202e}<script>\0".as_bytes());
        let mut r = Reassembly::default();
        let mut out = Vec::new();
        for n in 0..rec.len() {
            let _ = r.segment(&packet(5, PSH_ACK, &rec[..n]), &mut out);
            let _ = r.segment(&packet(9, 0x04, &rec[n..]), &mut out);
        }
        for i in 0..rec.len().min(400) {
            let mut bad = rec.clone();
            if let Some(b) = bad.get_mut(i) {
                *b = b.wrapping_add(0x80);
            }
            let _ = r.segment(&packet(1, PSH_ACK, &bad), &mut out);
        }
        assert!(r.pending() <= MAX_FLOWS);
    }
}

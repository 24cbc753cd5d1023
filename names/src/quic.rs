//! QUIC Initial server name (v1, v2, draft-29): keys from the client's Destination
//! Connection ID, header protection removed, payload decrypted, CRYPTO frames reassembled
//! across Initial packets (bounded).
//!
//! Initial packets are protected with keys anyone can derive (RFC 9001 section 5.2,
//! RFC 9369 section 3.3): HKDF-SHA256 of the client's first Destination Connection ID
//! with a per-version salt. Only the client's Initials are read: a server's Initial does
//! not open with the client's keys, and a packet that does not open is skipped silently.
//! The ClientHello is read from the CRYPTO stream (handshake messages without a record
//! layer), which browsers split over several frames, out of order, and for post-quantum
//! key shares over several packets. Per connection (client and server address and port)
//! at most [`MAX_CRYPTO`] bytes are kept; at most [`MAX_CONNS`] connections wait at once
//! (the oldest is evicted). A connection whose name was read (or given up on) is
//! remembered as done, so retransmitted Initials add nothing.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes_gcm::{AeadInOut, Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::table::{Key, Table};
use crate::tls::hello;
use crate::{Kind, Name, Packet};

/// Connections with a ClientHello being read (or done, remembered), at most.
pub(crate) const MAX_CONNS: usize = 1024;
/// CRYPTO stream bytes kept per connection, at most.
pub(crate) const MAX_CRYPTO: usize = 16 * 1024;
/// Disjoint CRYPTO ranges held per connection, at most (browsers scatter a hello over a
/// few dozen frames).
const MAX_RANGES: usize = 64;

/// A QUIC version whose Initial packets we can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// RFC 9000.
    V1,
    /// RFC 9369.
    V2,
    /// draft-ietf-quic-tls-29 (still in old captures).
    Draft29,
}

impl Version {
    fn from_wire(v: u32) -> Option<Version> {
        match v {
            0x0000_0001 => Some(Version::V1),
            0x6b33_43cf => Some(Version::V2),
            0xff00_001d => Some(Version::Draft29),
            _ => None,
        }
    }

    fn salt(self) -> &'static [u8; 20] {
        match self {
            Version::V1 => &[
                0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
            ],
            Version::V2 => &[
                0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
                0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
            ],
            Version::Draft29 => &[
                0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61,
                0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99,
            ],
        }
    }

    /// Labels of the packet protection key, IV and header protection key.
    fn labels(self) -> [&'static [u8]; 3] {
        match self {
            Version::V1 | Version::Draft29 => [b"quic key", b"quic iv", b"quic hp"],
            Version::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
        }
    }

    /// The long-header packet type bits (first byte, bits 4-5) of an Initial.
    fn initial_type(self) -> u8 {
        match self {
            Version::V1 | Version::Draft29 => 0b00,
            Version::V2 => 0b01,
        }
    }

    /// The long-header packet type bits of a Retry (the one type without a Length).
    fn retry_type(self) -> u8 {
        match self {
            Version::V1 | Version::Draft29 => 0b11,
            Version::V2 => 0b00,
        }
    }
}

/// The client's Initial packet protection keys.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Keys {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

/// HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context.
fn expand_label(secret: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?;
    let full = u8::try_from(6 + label.len()).ok()?;
    let mut info = Vec::with_capacity(10 + label.len());
    info.extend(len.to_be_bytes());
    info.push(full);
    info.extend(b"tls13 ");
    info.extend(label);
    info.push(0);
    secret.expand(&info, out).ok()
}

/// The client's Initial keys for a connection whose client first chose `dcid`.
fn client_keys(version: Version, dcid: &[u8]) -> Option<Keys> {
    let initial = Hkdf::<Sha256>::new(Some(version.salt()), dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, b"client in", &mut client)?;
    let client = Hkdf::<Sha256>::from_prk(&client).ok()?;
    let [key_label, iv_label, hp_label] = version.labels();
    let mut keys = Keys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&client, key_label, &mut keys.key)?;
    expand_label(&client, iv_label, &mut keys.iv)?;
    expand_label(&client, hp_label, &mut keys.hp)?;
    Some(keys)
}

/// A QUIC variable-length integer (RFC 9000 section 16) at the start of `*b`, which moves
/// past it.
fn varint(b: &mut &[u8]) -> Option<u64> {
    let (&first, _) = b.split_first()?;
    let len = 1usize << (first >> 6);
    let (bytes, rest) = b.split_at_checked(len)?;
    let mut v = u64::from(first & 0x3f);
    for &x in bytes.get(1..)? {
        v = (v << 8) | u64::from(x);
    }
    *b = rest;
    Some(v)
}

/// `n` bytes from the start of `*b`, which moves past them.
fn take<'a>(b: &mut &'a [u8], n: u64) -> Option<&'a [u8]> {
    let (head, rest) = b.split_at_checked(usize::try_from(n).ok()?)?;
    *b = rest;
    Some(head)
}

/// One long-header Initial packet, located in its datagram.
#[derive(Debug)]
struct Initial<'a> {
    version: Version,
    dcid: &'a [u8],
    /// The whole packet, header (still protected) and payload.
    packet: &'a [u8],
    /// Where the packet number starts in `packet`.
    pn_offset: usize,
}

/// Splits the long-header packets coalesced in `datagram`, handing each Initial of a
/// known version to `f`. Stops at a short-header packet, padding, a Retry or Version
/// Negotiation, an unknown version, or anything malformed.
fn initials<'a>(datagram: &'a [u8], mut f: impl FnMut(Initial<'a>)) {
    let mut rest = datagram;
    while let Some(&first) = rest.first() {
        // Long header, fixed bit (both set on every packet of these versions).
        if first & 0xc0 != 0xc0 {
            return;
        }
        let Some(packet) = long_packet(rest) else {
            return;
        };
        let after = rest.get(packet.packet.len()..).unwrap_or_default();
        if (first >> 4) & 0b11 == packet.version.initial_type() {
            f(packet);
        }
        rest = after;
    }
}

/// Parses the long-header packet at the start of `b` (any type but Retry), up to the end
/// of the Length its header gives.
fn long_packet(b: &[u8]) -> Option<Initial<'_>> {
    let mut r = b;
    let first = *take(&mut r, 1)?.first()?;
    let v = take(&mut r, 4)?;
    let version = Version::from_wire(u32::from_be_bytes(v.try_into().ok()?))?;
    let ty = (first >> 4) & 0b11;
    if ty == version.retry_type() {
        return None;
    }
    let dcid_len = *take(&mut r, 1)?.first()?;
    if dcid_len > 20 {
        return None;
    }
    let dcid = take(&mut r, u64::from(dcid_len))?;
    let scid_len = *take(&mut r, 1)?.first()?;
    if scid_len > 20 {
        return None;
    }
    take(&mut r, u64::from(scid_len))?;
    if ty == version.initial_type() {
        let token_len = varint(&mut r)?;
        take(&mut r, token_len)?;
    }
    let length = varint(&mut r)?;
    let pn_offset = b.len() - r.len();
    let end = pn_offset.checked_add(usize::try_from(length).ok()?)?;
    let packet = b.get(..end)?;
    Some(Initial {
        version,
        dcid,
        packet,
        pn_offset,
    })
}

/// Removes header protection from and decrypts one Initial with `keys`: its plaintext
/// frames, or None when it does not open (not the client's, damaged, truncated).
fn open(keys: &Keys, packet: &[u8], pn_offset: usize) -> Option<Vec<u8>> {
    let sample = packet.get(pn_offset + 4..pn_offset + 20)?;
    let hp = Aes128::new_from_slice(&keys.hp).ok()?;
    let mut mask = aes::Block::try_from(sample).ok()?;
    hp.encrypt_block(&mut mask);
    let first = packet.first()? ^ (mask.first()? & 0x0f);
    let pn_len = usize::from(first & 0x03) + 1;
    let mut header = packet.get(..pn_offset + pn_len)?.to_vec();
    *header.first_mut()? = first;
    let mut pn: u64 = 0;
    for i in 0..pn_len {
        let b = header.get_mut(pn_offset + i)?;
        *b ^= mask.get(1 + i)?;
        pn = (pn << 8) | u64::from(*b);
    }
    // The truncated packet number is the full one for a client's first few Initials
    // (they count from 0 and stay far below 2^8).
    let mut nonce = keys.iv;
    for (n, p) in nonce.iter_mut().skip(4).zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    let sealed = packet.get(pn_offset + pn_len..)?;
    let (ciphertext, tag) = sealed.split_at_checked(sealed.len().checked_sub(16)?)?;
    let tag = Tag::try_from(tag).ok()?;
    let mut plain = ciphertext.to_vec();
    let aead = Aes128Gcm::new_from_slice(&keys.key).ok()?;
    aead.decrypt_inout_detached(
        &Nonce::from(nonce),
        &header,
        plain.as_mut_slice().into(),
        &tag,
    )
    .ok()?;
    Some(plain)
}

/// Hands each CRYPTO frame (offset, data) in an Initial's plaintext to `f`. Reads
/// PADDING, PING and ACK; stops at any other frame (CONNECTION_CLOSE, or damage).
fn crypto_frames(plain: &[u8], mut f: impl FnMut(u64, &[u8])) {
    let mut r = plain;
    while !r.is_empty() {
        let Some(ty) = varint(&mut r) else { return };
        match ty {
            0x00 | 0x01 => {}
            0x02 | 0x03 => {
                let ok = (|| {
                    varint(&mut r)?; // largest acknowledged
                    varint(&mut r)?; // delay
                    let ranges = varint(&mut r)?;
                    varint(&mut r)?; // first range
                    for _ in 0..ranges {
                        varint(&mut r)?; // gap
                        varint(&mut r)?; // range length
                    }
                    if ty == 0x03 {
                        for _ in 0..3 {
                            varint(&mut r)?; // ECN counts
                        }
                    }
                    Some(())
                })();
                if ok.is_none() {
                    return;
                }
            }
            0x06 => {
                let Some((offset, data)) = (|| {
                    let offset = varint(&mut r)?;
                    let len = varint(&mut r)?;
                    Some((offset, take(&mut r, len)?))
                })() else {
                    return;
                };
                f(offset, data);
            }
            _ => return,
        }
    }
}

/// The SNI tag of a Google QUIC Q046 client hello (CHLO) sent in the clear in one
/// long-header packet: first byte, version, connection ID lengths (a nibble each, +3 when
/// not 0), the IDs, a 4-byte packet number, a 12-byte message hash, then a STREAM frame
/// whose data is the CHLO message: `CHLO`, a tag count (u16 LE), 2 bytes of padding, and
/// (tag, end offset u32 LE) pairs indexing the values after the table. A CHLO over
/// several packets is not read.
fn gquic_sni(datagram: &[u8]) -> Option<&[u8]> {
    let mut r = datagram;
    take(&mut r, 5)?;
    let lens = *take(&mut r, 1)?.first()?;
    let cid_len = |n: u8| if n == 0 { 0 } else { u64::from(n) + 3 };
    take(&mut r, cid_len(lens >> 4) + cid_len(lens & 0x0f))?;
    take(&mut r, 4 + 12)?;
    let at = r.windows(4).position(|w| w == b"CHLO")?;
    let mut m = r.get(at + 4..)?;
    let count = take(&mut m, 4)?;
    let count = u64::from(u16::from_le_bytes([*count.first()?, *count.get(1)?]));
    let table = take(&mut m, count.checked_mul(8)?)?;
    let values = m;
    let mut start = 0usize;
    for entry in table.chunks_exact(8) {
        let (tag, end) = entry.split_at(4);
        let end = usize::try_from(u32::from_le_bytes(end.try_into().ok()?)).ok()?;
        if tag == b"SNI\0" {
            return values.get(start..end);
        }
        start = end;
    }
    None
}

#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    /// By direction: client address and port, server address and port.
    conns: Table<Conn, MAX_CONNS>,
}

#[derive(Debug)]
struct Conn {
    /// The client's first Destination Connection ID, the keys' source.
    dcid: Vec<u8>,
    keys: Keys,
    /// The CRYPTO stream from offset 0, with holes where `have` says nothing came yet.
    crypto: Vec<u8>,
    /// Disjoint, sorted ranges of `crypto` received.
    have: Vec<(usize, usize)>,
    /// The name was read, or reading it was given up.
    done: bool,
}

impl Conn {
    /// Adds CRYPTO data at `offset`; false when it goes past the bounds.
    fn add(&mut self, offset: u64, data: &[u8]) -> bool {
        let Ok(start) = usize::try_from(offset) else {
            return false;
        };
        let Some(end) = start.checked_add(data.len()).filter(|&e| e <= MAX_CRYPTO) else {
            return false;
        };
        if data.is_empty() {
            return true;
        }
        if self.crypto.len() < end {
            self.crypto.resize(end, 0);
        }
        if let Some(dst) = self.crypto.get_mut(start..end) {
            dst.copy_from_slice(data);
        }
        // Merge [start, end) into the sorted disjoint ranges.
        let (mut s, mut e) = (start, end);
        self.have.retain(|&(a, b)| {
            if b < s || a > e {
                true
            } else {
                s = s.min(a);
                e = e.max(b);
                false
            }
        });
        let at = self.have.partition_point(|&(a, _)| a < s);
        self.have.insert(at, (s, e));
        self.have.len() <= MAX_RANGES
    }

    /// The CRYPTO stream's bytes that came without a hole from offset 0.
    fn contiguous(&self) -> &[u8] {
        match self.have.first() {
            Some(&(0, e)) => self.crypto.get(..e).unwrap_or_default(),
            _ => &[],
        }
    }
}

/// What one Initial's CRYPTO data did to its connection.
enum Step {
    /// Still reading.
    More,
    /// The ClientHello is whole: it is handed over and the connection is done.
    Hello,
    /// Give up on this connection.
    Stop,
}

impl Reassembly {
    pub(crate) fn datagram(&mut self, p: &Packet<'_>, out: &mut Vec<Name>) {
        self.read(p, |raw| {
            if let Some(name) = crate::sanitize::name(raw) {
                out.push(Name {
                    kind: Kind::QuicSni,
                    name,
                    addr: Some(p.dst),
                    client_mac: p.src_mac,
                    client_ip: Some(p.src),
                    ttl: None,
                });
            }
        });
    }

    /// [`Reassembly::datagram`], handing each server name read (raw bytes) to `found`.
    fn read(&mut self, p: &Packet<'_>, mut found: impl FnMut(&[u8])) {
        // Cheap exit for everything but a long header (short-header packets, other UDP).
        if p.payload.first().is_none_or(|b| b & 0xc0 != 0xc0) {
            return;
        }
        if p.payload.get(1..5) == Some(b"Q046") {
            if let Some(name) = gquic_sni(p.payload) {
                found(name);
            }
            return;
        }
        let key = (p.src, p.src_port, p.dst, p.dst_port);
        initials(p.payload, |initial| {
            let Some(plain) = self.open_initial(key, &initial) else {
                return;
            };
            let Some(conn) = self.conns.get_mut(&key) else {
                return;
            };
            if conn.done {
                return;
            }
            match Self::step(conn, &plain) {
                Step::More => {}
                Step::Hello => {
                    if let Some(name) = hello::sni(conn.contiguous()) {
                        found(name);
                    }
                    conn.done = true;
                    conn.crypto = Vec::new();
                    conn.have = Vec::new();
                }
                Step::Stop => {
                    conn.done = true;
                    conn.crypto = Vec::new();
                    conn.have = Vec::new();
                }
            }
        });
    }

    /// Opens `initial` with the keys of the connection it belongs to (kept, or derived
    /// from its Destination Connection ID, which then starts a connection). None when it
    /// opens with neither: a server's Initial, or not QUIC.
    fn open_initial(&mut self, key: Key, initial: &Initial<'_>) -> Option<Vec<u8>> {
        if let Some(conn) = self.conns.get(&key) {
            if conn.done && conn.dcid == initial.dcid {
                return None; // a retransmission of a connection already read
            }
            if let Some(plain) = open(&conn.keys, initial.packet, initial.pn_offset) {
                return Some(plain);
            }
            if conn.dcid == initial.dcid {
                return None;
            }
        }
        let keys = client_keys(initial.version, initial.dcid)?;
        let plain = open(&keys, initial.packet, initial.pn_offset)?;
        // A new connection on these ports (or the first).
        self.conns.open(
            key,
            Conn {
                dcid: initial.dcid.to_vec(),
                keys,
                crypto: Vec::new(),
                have: Vec::new(),
                done: false,
            },
        );
        Some(plain)
    }

    /// Adds an Initial's CRYPTO frames to `conn`: whether the ClientHello is now whole.
    fn step(conn: &mut Conn, plain: &[u8]) -> Step {
        let mut fits = true;
        crypto_frames(plain, |offset, data| fits &= conn.add(offset, data));
        if !fits {
            return Step::Stop;
        }
        let got = conn.contiguous();
        match got.first() {
            None => return Step::More,
            Some(&t) if t != hello::CLIENT_HELLO => return Step::Stop,
            Some(_) => {}
        }
        match hello::handshake_len(got) {
            Some(n) if n > MAX_CRYPTO => Step::Stop,
            Some(n) if got.len() >= n => {
                conn.crypto.truncate(n);
                if let Some(h) = conn.have.first_mut() {
                    h.1 = n;
                }
                Step::Hello
            }
            _ => Step::More,
        }
    }

    #[cfg(test)]
    fn pending(&self) -> usize {
        self.conns.len()
    }
}

#[cfg(test)]
mod tests;

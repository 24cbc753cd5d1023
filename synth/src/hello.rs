//! TLS 1.3 handshake messages as browsers and devices send them: a ClientHello with a
//! server name (optionally with a post-quantum X25519MLKEM768 key share, which pushes it
//! past one TCP segment or one QUIC Initial), the ServerHello that answers it, and the
//! record layer around them for TCP.
//!
//! Invariants: every length field matches the bytes written; the server name is written
//! as given (hostile names included), so its length is bounded only by the u16 fields.

use crate::rng::Rng;

/// Random bytes a ClientHello reads: random, legacy session id, X25519 share and the
/// X25519MLKEM768 share.
const HELLO_RAND: usize = 32 + 32 + 32 + 1216;

/// What a ClientHello carries besides its random bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hello<'a> {
    pub(crate) sni: &'a [u8],
    /// Adds an X25519MLKEM768 key share (1216 bytes), as current browsers do.
    pub(crate) pq: bool,
    /// QUIC: no legacy session id, TLS 1.3 suites only, `h3`, transport parameters with
    /// this initial source connection id.
    pub(crate) quic_scid: Option<&'a [u8]>,
}

fn u16be(buf: &mut Vec<u8>, v: usize) {
    buf.extend_from_slice(&(v.min(0xffff) as u16).to_be_bytes());
}

/// Writes `len` as a 24-bit length at `at`.
fn put_u24(buf: &mut [u8], at: usize, len: usize) {
    let b = (len as u32).to_be_bytes();
    buf[at..at + 3].copy_from_slice(&b[1..]);
}

/// Writes the u16 length of everything after `at + 2` into `buf[at..at + 2]`.
fn close_u16(buf: &mut [u8], at: usize) {
    let len = buf.len() - at - 2;
    buf[at..at + 2].copy_from_slice(&(len.min(0xffff) as u16).to_be_bytes());
}

/// Opens an extension of type `ty`; close it with [`close_u16`] at the returned offset.
fn ext(buf: &mut Vec<u8>, ty: u16) -> usize {
    buf.extend_from_slice(&ty.to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.len() - 2
}

/// A QUIC variable-length integer (RFC 9000 section 16).
pub(crate) fn varint(buf: &mut Vec<u8>, v: u64) {
    if v < 1 << 6 {
        buf.push(v as u8);
    } else if v < 1 << 14 {
        buf.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes());
    } else if v < 1 << 30 {
        buf.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes());
    } else {
        buf.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes());
    }
}

/// A ClientHello handshake message (no record header) with random bytes from `rand`
/// (at least 32 + 32 + 32 + 1216 bytes are read from it).
pub(crate) fn client_hello(buf: &mut Vec<u8>, h: &Hello<'_>, rand: &[u8]) {
    let start = buf.len();
    buf.extend_from_slice(&[1, 0, 0, 0, 0x03, 0x03]);
    buf.extend_from_slice(&rand[..32]);
    if h.quic_scid.is_some() {
        buf.push(0);
    } else {
        buf.push(32);
        buf.extend_from_slice(&rand[32..64]);
    }
    let suites: &[u16] = if h.quic_scid.is_some() {
        &[0x1301, 0x1302, 0x1303]
    } else {
        &[
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ]
    };
    u16be(buf, suites.len() * 2);
    for s in suites {
        buf.extend_from_slice(&s.to_be_bytes());
    }
    buf.extend_from_slice(&[1, 0]);
    let exts = buf.len();
    buf.extend_from_slice(&[0, 0]);
    // server_name
    let e = ext(buf, 0x0000);
    u16be(buf, h.sni.len() + 3);
    buf.push(0);
    u16be(buf, h.sni.len());
    buf.extend_from_slice(h.sni);
    close_u16(buf, e);
    if h.quic_scid.is_none() {
        buf.extend_from_slice(&[0x00, 0x17, 0, 0]); // extended_master_secret
        buf.extend_from_slice(&[0xff, 0x01, 0, 1, 0]); // renegotiation_info
        buf.extend_from_slice(&[0x00, 0x0b, 0, 2, 1, 0]); // ec_point_formats
        buf.extend_from_slice(&[0x00, 0x23, 0, 0]); // session_ticket
    }
    // supported_groups
    let e = ext(buf, 0x000a);
    let groups: &[u16] = if h.pq {
        &[0x11ec, 0x001d, 0x0017, 0x0018]
    } else {
        &[0x001d, 0x0017, 0x0018]
    };
    u16be(buf, groups.len() * 2);
    for g in groups {
        buf.extend_from_slice(&g.to_be_bytes());
    }
    close_u16(buf, e);
    // application_layer_protocol_negotiation
    let e = ext(buf, 0x0010);
    let protos: &[&[u8]] = if h.quic_scid.is_some() {
        &[b"h3"]
    } else {
        &[b"h2", b"http/1.1"]
    };
    let at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    for p in protos {
        buf.push(p.len() as u8);
        buf.extend_from_slice(p);
    }
    close_u16(buf, at);
    close_u16(buf, e);
    buf.extend_from_slice(&[0x00, 0x05, 0, 5, 1, 0, 0, 0, 0]); // status_request
    // signature_algorithms
    let e = ext(buf, 0x000d);
    let algs: [u16; 8] = [
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ];
    u16be(buf, algs.len() * 2);
    for a in algs {
        buf.extend_from_slice(&a.to_be_bytes());
    }
    close_u16(buf, e);
    key_share(buf, h.pq, rand);
    buf.extend_from_slice(&[0x00, 0x2d, 0, 2, 1, 1]); // psk_key_exchange_modes
    if h.quic_scid.is_some() {
        buf.extend_from_slice(&[0x00, 0x2b, 0, 3, 2, 3, 4]); // supported_versions
    } else {
        buf.extend_from_slice(&[0x00, 0x2b, 0, 5, 4, 3, 4, 3, 3]);
    }
    if let Some(scid) = h.quic_scid {
        transport_parameters(buf, scid);
    }
    close_u16(buf, exts);
    let len = buf.len() - start - 4;
    put_u24(buf, start + 1, len);
}

/// A ClientHello (as [`client_hello`]) whose random bytes are `pool`'s at an offset
/// drawn from `rng`, and that offset `r` (its legacy session id is `pool[r + 32..r + 64]`).
pub(crate) fn pooled_client_hello(h: &Hello<'_>, pool: &[u8], rng: &mut Rng) -> (Vec<u8>, usize) {
    let r = rng.below((pool.len() - HELLO_RAND) as u64) as usize;
    let mut hs = Vec::with_capacity(2048 + h.sni.len());
    client_hello(&mut hs, h, &pool[r..r + HELLO_RAND]);
    (hs, r)
}

/// The key_share extension: X25519 (from `rand[64..96]`), after an X25519MLKEM768
/// share (`rand[96..1312]`) with `pq`.
fn key_share(buf: &mut Vec<u8>, pq: bool, rand: &[u8]) {
    let e = ext(buf, 0x0033);
    let at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    if pq {
        buf.extend_from_slice(&0x11ecu16.to_be_bytes());
        u16be(buf, 1216);
        buf.extend_from_slice(&rand[96..96 + 1216]);
    }
    buf.extend_from_slice(&[0x00, 0x1d, 0, 32]);
    buf.extend_from_slice(&rand[64..96]);
    close_u16(buf, at);
    close_u16(buf, e);
}

/// QUIC transport parameters: idle timeout, flow control limits, the client's source
/// connection id.
fn transport_parameters(buf: &mut Vec<u8>, scid: &[u8]) {
    let e = ext(buf, 0x0039);
    for (id, v) in [(0x01u64, 30_000u64), (0x04, 15_728_640), (0x05, 6_291_456)] {
        varint(buf, id);
        let mut val = Vec::with_capacity(8);
        varint(&mut val, v);
        varint(buf, val.len() as u64);
        buf.extend_from_slice(&val);
    }
    varint(buf, 0x0f);
    varint(buf, scid.len() as u64);
    buf.extend_from_slice(scid);
    close_u16(buf, e);
}

/// A TLS 1.3 ServerHello (X25519, TLS_AES_128_GCM_SHA256) echoing `session_id`.
pub(crate) fn server_hello(buf: &mut Vec<u8>, session_id: &[u8], rand: &[u8]) {
    let start = buf.len();
    buf.extend_from_slice(&[2, 0, 0, 0, 0x03, 0x03]);
    buf.extend_from_slice(&rand[..32]);
    buf.push(session_id.len() as u8);
    buf.extend_from_slice(session_id);
    buf.extend_from_slice(&[0x13, 0x01, 0]);
    buf.extend_from_slice(&[0, 46]);
    buf.extend_from_slice(&[0x00, 0x2b, 0, 2, 3, 4]);
    buf.extend_from_slice(&[0x00, 0x33, 0, 36, 0, 0x1d, 0, 32]);
    buf.extend_from_slice(&rand[32..64]);
    let len = buf.len() - start - 4;
    put_u24(buf, start + 1, len);
}

/// Wraps a handshake message in TLS records of at most 16 KiB (`legacy_version` 0x0301
/// for a ClientHello, 0x0303 otherwise).
pub(crate) fn records(buf: &mut Vec<u8>, content_type: u8, version: u16, body: &[u8]) {
    for chunk in body.chunks(16_384) {
        buf.push(content_type);
        buf.extend_from_slice(&version.to_be_bytes());
        u16be(buf, chunk.len());
        buf.extend_from_slice(chunk);
    }
}

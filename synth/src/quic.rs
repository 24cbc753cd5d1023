//! QUIC version 1 Initial packets (RFC 9000 section 17.2.2), protected as RFC 9001
//! section 5 says: keys from the client's first Destination Connection ID with HKDF-SHA256
//! and the version 1 salt, AES-128-GCM for the payload, AES-128 header protection. A
//! reader (tshark, the names crate) decrypts them with nothing but the packet.
//!
//! Invariants: the packet number is sent in one byte (the generator's connections send a
//! handful of Initials); the packet is padded with PADDING frames to exactly the size asked
//! for, which must leave room for the header, the frames and the tag.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes_gcm::{AeadInOut, Aes128Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::hello::varint;

const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    pub(crate) key: [u8; 16],
    pub(crate) iv: [u8; 12],
    pub(crate) hp: [u8; 16],
}

/// HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context. The labels here are
/// constants short enough for any output length used, so expansion cannot fail.
fn expand_label(secret: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) {
    let mut info = Vec::with_capacity(10 + label.len());
    info.extend_from_slice(&(out.len() as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(0);
    // Fails only for outputs over 255 * 32 bytes; ours are at most 32.
    let _ = secret.expand(&info, out);
}

/// The Initial keys of the client (`server` false) or the server for a connection whose
/// client first chose `dcid`.
pub(crate) fn initial_keys(dcid: &[u8], server: bool) -> Keys {
    let initial = Hkdf::<Sha256>::new(Some(&SALT_V1), dcid);
    let mut secret = [0u8; 32];
    expand_label(
        &initial,
        if server { b"server in" } else { b"client in" },
        &mut secret,
    );
    // A 32-byte PRK is always long enough.
    let side = Hkdf::<Sha256>::from_prk(&secret).unwrap_or_else(|_| initial.clone());
    let mut k = Keys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&side, b"quic key", &mut k.key);
    expand_label(&side, b"quic iv", &mut k.iv);
    expand_label(&side, b"quic hp", &mut k.hp);
    k
}

/// One Initial packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Initial<'a> {
    pub(crate) keys: &'a Keys,
    pub(crate) dcid: &'a [u8],
    pub(crate) scid: &'a [u8],
    pub(crate) pn: u8,
    /// Plaintext frames (CRYPTO, ACK); PADDING is added.
    pub(crate) frames: &'a [u8],
    /// Total packet size after padding (1200 for a client's datagram).
    pub(crate) size: usize,
}

/// Appends the protected Initial to `out`.
pub(crate) fn seal(out: &mut Vec<u8>, p: &Initial<'_>) {
    let start = out.len();
    // Long header, fixed bit, type Initial (0), packet number length 1.
    out.push(0xc0);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.push(p.dcid.len() as u8);
    out.extend_from_slice(p.dcid);
    out.push(p.scid.len() as u8);
    out.extend_from_slice(p.scid);
    out.push(0); // token length
    // Length (2-byte varint) covers the packet number, the payload and the tag.
    let header_len = out.len() - start + 2 + 1;
    let payload_len = p
        .size
        .saturating_sub(header_len + 16)
        .max(p.frames.len())
        // Enough for the header protection sample (4 bytes past the packet number start).
        .max(20);
    // Always the 2-byte form (the header length above counts on it); Initials stay far
    // below its 16383 limit.
    out.extend_from_slice(&(((1 + payload_len + 16).min(0x3fff) as u16) | 0x4000).to_be_bytes());
    let pn_offset = out.len() - start;
    out.push(p.pn);
    let aad_end = out.len();
    let body = out.len();
    out.extend_from_slice(p.frames);
    out.resize(body + payload_len, 0);
    let mut nonce = p.keys.iv;
    nonce[11] ^= p.pn;
    let (head, payload) = out.split_at_mut(body);
    let tag = Aes128Gcm::new_from_slice(&p.keys.key)
        .ok()
        .and_then(|aead| {
            aead.encrypt_inout_detached(&Nonce::from(nonce), &head[start..aad_end], payload.into())
                .ok()
        });
    match tag {
        Some(t) => out.extend_from_slice(&t),
        None => out.extend_from_slice(&[0; 16]),
    }
    let s = start + pn_offset + 4;
    let mut mask = aes::Block::default();
    mask.copy_from_slice(&out[s..s + 16]);
    if let Ok(hp) = Aes128::new_from_slice(&p.keys.hp) {
        hp.encrypt_block(&mut mask);
    }
    out[start] ^= mask[0] & 0x0f;
    out[start + pn_offset] ^= mask[1];
}

/// A CRYPTO frame carrying `data` at `offset` of the handshake stream.
pub(crate) fn crypto_frame(buf: &mut Vec<u8>, offset: usize, data: &[u8]) {
    buf.push(0x06);
    varint(buf, offset as u64);
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// An ACK frame for packet numbers 0..=largest.
pub(crate) fn ack_frame(buf: &mut Vec<u8>, largest: u8) {
    buf.extend_from_slice(&[0x02, largest, 0, 0, largest]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    /// RFC 9001 appendix A.1.
    #[test]
    fn rfc9001_keys() {
        let dcid = hex("8394c8f03e515708");
        let c = initial_keys(&dcid, false);
        assert_eq!(c.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(c.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(c.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
        let s = initial_keys(&dcid, true);
        assert_eq!(s.key.to_vec(), hex("cf3a5331653c364c88f0f379b6067e37"));
        assert_eq!(s.iv.to_vec(), hex("0ac1493ca1905853b0bba03e"));
        assert_eq!(s.hp.to_vec(), hex("c206b8d9b9f0f37644430b490eeaa314"));
    }

    #[test]
    fn padded_to_size() {
        let k = initial_keys(&[1; 8], false);
        let mut out = Vec::new();
        let mut f = Vec::new();
        crypto_frame(&mut f, 0, &[7; 300]);
        seal(
            &mut out,
            &Initial {
                keys: &k,
                dcid: &[1; 8],
                scid: &[2; 8],
                pn: 0,
                frames: &f,
                size: 1200,
            },
        );
        assert_eq!(out.len(), 1200);
        assert_eq!(out[0] & 0xf0, 0xc0);
    }
}

//! The server name (SNI) in a TLS ClientHello handshake message, shared by `tls` (over
//! TCP, after the record layer is taken off) and `quic` (CRYPTO frames carry handshake
//! messages without a record layer).
//!
//! A bounds-checked walk of only the fields needed to reach the extensions: every other
//! extension (GREASE, post-quantum key shares, ECH, ones not yet assigned) is skipped by
//! its length without being looked at, so a malformed or novel one elsewhere in the hello
//! cannot hide the name.

/// Handshake message type of a ClientHello.
pub(crate) const CLIENT_HELLO: u8 = 1;
/// Extension type `server_name` (RFC 6066).
const EXT_SERVER_NAME: u16 = 0;
/// ServerName `name_type` host_name.
const HOST_NAME: u8 = 0;

/// The whole length (4-byte header included) of the handshake message that starts `hs`,
/// once its header is there: None while fewer than 4 bytes are.
pub(crate) fn handshake_len(hs: &[u8]) -> Option<usize> {
    match hs {
        [_, a, b, c, ..] => {
            Some(4 + ((usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c)))
        }
        _ => None,
    }
}

/// A cursor over a byte slice; every read is checked and fails with None.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        let (&b, tail) = self.rest.split_first()?;
        self.rest = tail;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    /// A vector with a one-byte length.
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// A vector with a two-byte length.
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// The raw bytes of the first non-empty `host_name` in the `server_name` extension of the
/// ClientHello handshake message `hs` (header included; bytes after the message are
/// ignored). None when `hs` is not a whole ClientHello or carries no server name.
pub(crate) fn sni(hs: &[u8]) -> Option<&[u8]> {
    let mut r = Reader { rest: hs };
    if r.u8()? != CLIENT_HELLO {
        return None;
    }
    let len = r.take(3)?;
    let len = handshake_len(&[0, *len.first()?, *len.get(1)?, *len.get(2)?])? - 4;
    let body = r.take(len)?;
    let mut r = Reader { rest: body };
    r.take(2)?; // legacy_version
    r.take(32)?; // random
    r.vec8()?; // legacy_session_id
    r.vec16()?; // cipher_suites
    r.vec8()?; // legacy_compression_methods
    // Extensions may be cut short by a sloppy client: read what is whole.
    let exts = r.vec16().unwrap_or(r.rest);
    let mut r = Reader { rest: exts };
    while !r.rest.is_empty() {
        let ty = r.u16()?;
        let data = r.vec16()?;
        if ty == EXT_SERVER_NAME {
            return host_name(data);
        }
    }
    None
}

/// The first non-empty host_name in a `server_name` extension's data.
fn host_name(data: &[u8]) -> Option<&[u8]> {
    let mut r = Reader { rest: data };
    let mut list = Reader { rest: r.vec16()? };
    while !list.rest.is_empty() {
        let ty = list.u8()?;
        let name = list.vec16()?;
        if ty == HOST_NAME && !name.is_empty() {
            return Some(name);
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ClientHello handshake message (header included) whose extensions are `exts`
    /// (each: type, data), after a GREASE extension and a big unknown one.
    pub(crate) fn client_hello(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend([0x5a; 32]); // random
        body.push(32);
        body.extend([0x11; 32]); // session id
        body.extend([0, 4, 0x13, 0x01, 0x0a, 0x0a]); // cipher suites, one GREASE
        body.extend([1, 0]); // compression: null
        let mut e = Vec::new();
        let grease_then = [(0x1a1a_u16, Vec::new()), (0xfe0d, vec![0xee; 300])];
        for (ty, data) in grease_then.iter().chain(exts) {
            e.extend(ty.to_be_bytes());
            e.extend(u16::try_from(data.len()).unwrap_or(0).to_be_bytes());
            e.extend(data);
        }
        body.extend(u16::try_from(e.len()).unwrap_or(0).to_be_bytes());
        body.extend(e);
        let mut hs = vec![CLIENT_HELLO];
        hs.extend(&u32::try_from(body.len()).unwrap_or(0).to_be_bytes()[1..]);
        hs.extend(body);
        hs
    }

    /// A `server_name` extension naming `name` (host_name).
    pub(crate) fn sni_ext(name: &[u8]) -> (u16, Vec<u8>) {
        let mut entry = vec![HOST_NAME];
        entry.extend(u16::try_from(name.len()).unwrap_or(0).to_be_bytes());
        entry.extend(name);
        let mut data = u16::try_from(entry.len())
            .unwrap_or(0)
            .to_be_bytes()
            .to_vec();
        data.extend(entry);
        (EXT_SERVER_NAME, data)
    }

    #[test]
    fn finds_the_name_after_grease_and_unknown_extensions() {
        let hs = client_hello(&[(0x0033, vec![0; 1300]), sni_ext(b"example.com")]);
        assert_eq!(sni(&hs), Some(&b"example.com"[..]));
        assert_eq!(handshake_len(&hs), Some(hs.len()));
    }

    #[test]
    fn hostile_names_come_out_raw() {
        for name in [
            &b"<script>alert(1)</script>"[..],
            "evil\u{202e}moc.com".as_bytes(),
            b"a\0b",
            b"\xff\xfe\x80",
            &[b'a'; 5000],
        ] {
            let hs = client_hello(&[sni_ext(name)]);
            assert_eq!(sni(&hs), Some(name));
        }
    }

    #[test]
    fn no_name() {
        assert_eq!(sni(&client_hello(&[])), None);
        assert_eq!(sni(&client_hello(&[sni_ext(b"")])), None);
        // A name of another type only.
        let mut ext = sni_ext(b"x");
        if let Some(t) = ext.1.get_mut(2) {
            *t = 7;
        }
        assert_eq!(sni(&client_hello(&[ext])), None);
        assert_eq!(sni(&[]), None);
        assert_eq!(sni(&[2, 0, 0, 0]), None);
    }

    #[test]
    fn every_prefix_and_every_byte_flip_is_safe() {
        let hs = client_hello(&[sni_ext(b"example.com")]);
        for n in 0..hs.len() {
            assert_eq!(sni(&hs[..n]), None, "prefix {n}");
        }
        for i in 0..hs.len() {
            let mut h = hs.clone();
            if let Some(b) = h.get_mut(i) {
                *b ^= 0xff;
            }
            let _ = sni(&h);
        }
    }
}

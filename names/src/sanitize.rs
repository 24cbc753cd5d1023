//! Hostile names made safe to store and show.

use std::net::IpAddr;

use crate::{Kind, Name, Packet};

/// Longest name kept, in bytes (DNS's limit for a whole name).
pub const MAX_NAME: usize = 253;
/// Longest label kept, in bytes (DNS's limit for one label).
pub const MAX_LABEL: usize = 63;
/// Most names one packet may add: a crafted packet full of records cannot flood the
/// output.
pub const MAX_PER_PACKET: usize = 64;

/// `raw` as a name safe to store: invalid UTF-8 replaced (U+FFFD), control characters
/// (C0, DEL, C1) and bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E,
/// U+200F, U+061C) removed, surrounding white space trimmed, each dot-separated label
/// cut to [`MAX_LABEL`] bytes and the whole to [`MAX_NAME`] bytes (at a character
/// boundary). None when nothing is left.
///
/// Also removed, since they hide or disguise text: zero-width and invisible format
/// characters (U+200B-U+200D, U+2060-U+2064, U+206A-U+206F, U+FEFF, U+00AD, U+180E,
/// U+034F), line and paragraph separators (U+2028, U+2029), interlinear annotation
/// (U+FFF9-U+FFFB) and Unicode tags (U+E0000-U+E007F, invisible ASCII look-alikes).
/// Escaping for HTML or CSV is the job of whoever renders the name: `<` stays `<`.
#[must_use]
pub fn name(raw: &[u8]) -> Option<String> {
    // Reading stops once the output is full, so a 10 kB name costs about 253 bytes of
    // work past its leading junk (plus at most one scan of the junk).
    let mut out = String::with_capacity(raw.len().min(MAX_NAME));
    let mut label = 0usize;
    'chunks: for chunk in raw.utf8_chunks() {
        let invalid = (!chunk.invalid().is_empty()).then_some('\u{FFFD}');
        for c in chunk.valid().chars().chain(invalid) {
            if dangerous(c) || (out.is_empty() && c.is_whitespace()) {
                continue;
            }
            let n = c.len_utf8();
            if c == '.' {
                label = 0;
            } else if label + n > MAX_LABEL {
                // The rest of this label is cut; the next label still counts.
                continue;
            } else {
                label += n;
            }
            if out.len() + n > MAX_NAME {
                break 'chunks;
            }
            out.push(c);
        }
    }
    let kept = out.trim_end().len();
    out.truncate(kept);
    (!out.is_empty()).then_some(out)
}

/// Characters removed from names: controls, bidi controls and invisible formatting.
fn dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{2060}'..='\u{2064}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{00AD}'
                | '\u{034F}'
                | '\u{180E}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Appends names for one packet: each sanitized, duplicates within the packet (same
/// kind, name, address and client) dropped, at most [`MAX_PER_PACKET`] per packet.
/// `start` is `out.len()` when the packet's parsing began.
pub(crate) struct Emitter<'o> {
    out: &'o mut Vec<Name>,
    start: usize,
}

/// The device a name is attributed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Client {
    pub(crate) mac: Option<[u8; 6]>,
    pub(crate) ip: Option<IpAddr>,
}

impl Client {
    /// The packet's sender.
    pub(crate) fn source(p: &Packet<'_>) -> Self {
        Self {
            mac: p.src_mac,
            ip: Some(p.src),
        }
    }

    /// The packet's receiver.
    pub(crate) fn destination(p: &Packet<'_>) -> Self {
        Self {
            mac: p.dst_mac,
            ip: Some(p.dst),
        }
    }
}

impl<'o> Emitter<'o> {
    pub(crate) fn new(out: &'o mut Vec<Name>) -> Self {
        let start = out.len();
        Self { out, start }
    }

    /// True when the packet has given all the names it may.
    pub(crate) fn full(&self) -> bool {
        self.out.len().saturating_sub(self.start) >= MAX_PER_PACKET
    }

    /// Sanitizes `raw` and appends it (unless empty, a duplicate, or the packet is full).
    pub(crate) fn push(
        &mut self,
        kind: Kind,
        raw: &[u8],
        addr: Option<IpAddr>,
        client: Client,
        ttl: Option<u32>,
    ) {
        if self.full() {
            return;
        }
        let Some(name) = name(raw) else { return };
        let seen = self.out.get(self.start..).unwrap_or_default();
        if seen.iter().any(|n| {
            n.kind == kind
                && n.addr == addr
                && n.client_mac == client.mac
                && n.client_ip == client.ip
                && n.name == name
        }) {
            return;
        }
        self.out.push(Name {
            kind,
            name,
            addr,
            client_mac: client.mac,
            client_ip: client.ip,
            ttl,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(raw: &[u8]) -> Option<String> {
        name(raw)
    }

    #[test]
    fn plain_names_unchanged() {
        assert_eq!(s(b"kitchen-tv.local").as_deref(), Some("kitchen-tv.local"));
        assert_eq!(s("Küche TV".as_bytes()).as_deref(), Some("Küche TV"));
        assert_eq!(s(b"MiXeD.CaSe").as_deref(), Some("MiXeD.CaSe"));
    }

    #[test]
    fn empty_and_blank_are_none() {
        assert_eq!(s(b""), None);
        assert_eq!(s(b"   \t\r\n"), None);
        assert_eq!(s(b"\0\0\x7f"), None);
        assert_eq!(s("\u{202E}\u{200B}".as_bytes()), None);
    }

    #[test]
    fn controls_removed() {
        assert_eq!(s(b"ab\0cd\x1b[31m\x7f").as_deref(), Some("abcd[31m"));
        assert_eq!(s("a\u{85}b\u{9f}c".as_bytes()).as_deref(), Some("abc"));
        assert_eq!(s(b"line\r\nbreak").as_deref(), Some("linebreak"));
    }

    #[test]
    fn bidi_and_invisible_removed() {
        for c in [
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200E}',
            '\u{200F}',
            '\u{061C}',
            '\u{200B}',
            '\u{200D}',
            '\u{FEFF}',
            '\u{2028}',
            '\u{E0041}',
        ] {
            let raw = format!("ev{c}il");
            assert_eq!(s(raw.as_bytes()).as_deref(), Some("evil"), "{c:?}");
        }
        assert_eq!(
            s("invoice\u{202E}fdp.exe".as_bytes()).as_deref(),
            Some("invoicefdp.exe")
        );
    }

    #[test]
    fn invalid_utf8_replaced() {
        assert_eq!(s(b"ab\xffcd").as_deref(), Some("ab\u{FFFD}cd"));
        assert_eq!(s(b"\xc3").as_deref(), Some("\u{FFFD}"));
        assert_eq!(
            s(b"x\xe2\x80").as_deref(),
            Some("x\u{FFFD}"),
            "a cut sequence is one replacement, as from_utf8_lossy"
        );
        for raw in [
            &b"\xf0\x9f\x98"[..],
            b"a\xed\xa0\x80b",
            b"\xc0\xaf",
            b"\xff\xfe",
        ] {
            let want = String::from_utf8_lossy(raw).into_owned();
            assert_eq!(s(raw).as_deref(), Some(want.as_str()));
        }
    }

    #[test]
    fn markup_kept_as_text() {
        // Escaping is the renderer's job; sanitize keeps the text, minus controls.
        assert_eq!(s(b"<script>").as_deref(), Some("<script>"));
        assert_eq!(
            s(b"\"><img onerror=x>").as_deref(),
            Some("\"><img onerror=x>")
        );
    }

    #[test]
    fn whitespace_trimmed() {
        assert_eq!(s(b"  name \t").as_deref(), Some("name"));
        assert_eq!(s("\u{3000}name\u{a0}".as_bytes()).as_deref(), Some("name"));
    }

    #[test]
    fn labels_and_whole_capped() {
        let long = "a".repeat(100);
        assert_eq!(s(long.as_bytes()).map(|n| n.len()), Some(MAX_LABEL));
        let dotted = format!("{long}.b.{long}");
        let got = s(dotted.as_bytes()).unwrap_or_default();
        assert_eq!(got, format!("{}.b.{}", "a".repeat(63), "a".repeat(63)));

        let many = "abcdefghij.".repeat(1000); // 11 kB
        let got = s(many.as_bytes()).unwrap_or_default();
        assert!(got.len() <= MAX_NAME && got.len() > 240, "{}", got.len());

        // Multibyte characters are never split.
        let wide = "é".repeat(100);
        let got = s(wide.as_bytes()).unwrap_or_default();
        assert_eq!(got, "é".repeat(31));
        let wide = "€.".repeat(200);
        let got = s(wide.as_bytes()).unwrap_or_default();
        assert!(got.len() <= MAX_NAME);
    }

    #[test]
    fn ten_kilobytes_of_junk() {
        let mut raw = vec![b' '; 5000];
        raw.extend(std::iter::repeat_n(0u8, 5000));
        raw.extend_from_slice(b"host");
        assert_eq!(s(&raw).as_deref(), Some("host"));
        let raw = vec![0xffu8; 10_000];
        let got = s(&raw).unwrap_or_default();
        assert_eq!(
            got,
            "\u{FFFD}".repeat(21),
            "capped by the label limit (3 bytes each)"
        );
    }

    #[test]
    fn emitter_dedups_and_caps() {
        let mut out = Vec::new();
        out.push(Name {
            kind: Kind::Mdns,
            name: "before".into(),
            addr: None,
            client_mac: None,
            client_ip: None,
            ttl: None,
        });
        let mut e = Emitter::new(&mut out);
        let c = Client::default();
        e.push(Kind::Mdns, b"before", None, c, None); // earlier packet: not a duplicate
        e.push(Kind::Mdns, b"x", None, c, Some(1));
        e.push(Kind::Mdns, b"x", None, c, Some(2));
        e.push(Kind::MdnsService, b"x", None, c, None);
        e.push(Kind::Mdns, b"\0", None, c, None);
        for i in 0..200 {
            e.push(Kind::Mdns, format!("n{i}").as_bytes(), None, c, None);
        }
        assert!(e.full());
        assert_eq!(out.len(), 1 + MAX_PER_PACKET);
        assert_eq!(out.get(2).map(|n| n.ttl), Some(Some(1)));
    }
}

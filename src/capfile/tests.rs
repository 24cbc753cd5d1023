//! Unit tests of the capture-file reader: hand-built pcap and pcapng files (both byte
//! orders, every block kind, every kind of damage), mutated inputs that must not panic,
//! and the shared corpus checked against tshark when it is present.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::doc_markdown
)]

use super::pcapng::{
    BYTE_ORDER_MAGIC, PCAPNG_EPB, PCAPNG_IDB, PCAPNG_PB, PCAPNG_SHB, PCAPNG_SPB, ts_to_ns,
};
use super::*;
use std::path::PathBuf;

// ---------- builders ----------

fn pcap_header(le: bool, magic: u32, version: (u16, u16), network: u32) -> Vec<u8> {
    let mut v = Vec::new();
    let p32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if le { x.to_le_bytes() } else { x.to_be_bytes() });
    };
    let p16 = |v: &mut Vec<u8>, x: u16| {
        v.extend_from_slice(&if le { x.to_le_bytes() } else { x.to_be_bytes() });
    };
    p32(&mut v, magic);
    p16(&mut v, version.0);
    p16(&mut v, version.1);
    p32(&mut v, 0);
    p32(&mut v, 0);
    p32(&mut v, 65535);
    p32(&mut v, network);
    v
}

fn pcap_record(le: bool, secs: u32, frac: u32, caplen: u32, wire: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [secs, frac, caplen, wire] {
        v.extend_from_slice(&if le { x.to_le_bytes() } else { x.to_be_bytes() });
    }
    v.extend_from_slice(data);
    v
}

/// A pcap file; records are (secs, frac, wire_len, data).
fn pcap_file(le: bool, nanos: bool, records: &[(u32, u32, u32, &[u8])]) -> Vec<u8> {
    let magic = if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 };
    let mut v = pcap_header(le, magic, (2, 4), 1);
    for &(s, f, w, d) in records {
        let caplen = u32::try_from(d.len()).unwrap_or(u32::MAX);
        v.extend(pcap_record(le, s, f, caplen, w, d));
    }
    v
}

struct Ng {
    le: bool,
    out: Vec<u8>,
}

impl Ng {
    fn new(le: bool) -> Self {
        Ng {
            le,
            out: Vec::new(),
        }
    }
    fn b16(&self, x: u16) -> [u8; 2] {
        if self.le {
            x.to_le_bytes()
        } else {
            x.to_be_bytes()
        }
    }
    fn b32(&self, x: u32) -> [u8; 4] {
        if self.le {
            x.to_le_bytes()
        } else {
            x.to_be_bytes()
        }
    }
    fn block(&mut self, btype: u32, body: &[u8]) -> &mut Self {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let len = u32::try_from(body.len() + 12).unwrap_or(u32::MAX);
        let (t, l) = (self.b32(btype), self.b32(len));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(&body);
        self.out.extend_from_slice(&l);
        self
    }
    fn opts(&self, opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for &(code, val) in opts {
            v.extend_from_slice(&self.b16(code));
            v.extend_from_slice(&self.b16(u16::try_from(val.len()).unwrap_or(0)));
            v.extend_from_slice(val);
            while v.len() % 4 != 0 {
                v.push(0);
            }
        }
        if !opts.is_empty() {
            v.extend_from_slice(&[0, 0, 0, 0]);
        }
        v
    }
    fn shb_version(&mut self, major: u16, minor: u16) -> &mut Self {
        let mut body = self.b32(BYTE_ORDER_MAGIC).to_vec();
        body.extend_from_slice(&self.b16(major));
        body.extend_from_slice(&self.b16(minor));
        body.extend_from_slice(&(-1i64).to_le_bytes());
        let o = self.opts(&[(4, b"netdigest test")]);
        body.extend(o);
        self.block(PCAPNG_SHB, &body)
    }
    fn shb(&mut self) -> &mut Self {
        self.shb_version(1, 0)
    }
    fn idb(&mut self, link: u16, snaplen: u32, opts: &[(u16, &[u8])]) -> &mut Self {
        let mut body = self.b16(link).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.b32(snaplen));
        body.extend(self.opts(opts));
        self.block(PCAPNG_IDB, &body)
    }
    fn epb(&mut self, iface: u32, ts: u64, wire: u32, data: &[u8]) -> &mut Self {
        let mut body = self.b32(iface).to_vec();
        body.extend_from_slice(&self.b32(u32::try_from(ts >> 32).unwrap_or(0)));
        body.extend_from_slice(&self.b32(u32::try_from(ts & 0xFFFF_FFFF).unwrap_or(0)));
        body.extend_from_slice(&self.b32(u32::try_from(data.len()).unwrap_or(0)));
        body.extend_from_slice(&self.b32(wire));
        body.extend_from_slice(data);
        self.block(PCAPNG_EPB, &body)
    }
    fn pb(&mut self, iface: u16, ts: u64, wire: u32, data: &[u8]) -> &mut Self {
        let mut body = self.b16(iface).to_vec();
        body.extend_from_slice(&self.b16(0));
        body.extend_from_slice(&self.b32(u32::try_from(ts >> 32).unwrap_or(0)));
        body.extend_from_slice(&self.b32(u32::try_from(ts & 0xFFFF_FFFF).unwrap_or(0)));
        body.extend_from_slice(&self.b32(u32::try_from(data.len()).unwrap_or(0)));
        body.extend_from_slice(&self.b32(wire));
        body.extend_from_slice(data);
        self.block(PCAPNG_PB, &body)
    }
    fn spb(&mut self, wire: u32, data: &[u8]) -> &mut Self {
        let mut body = self.b32(wire).to_vec();
        body.extend_from_slice(data);
        self.block(PCAPNG_SPB, &body)
    }
    fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    ts_ns: i64,
    interface: u32,
    link: u32,
    wire_len: u32,
    data: Vec<u8>,
}

/// Reads everything; checks that the reader stays finished after the end or an error.
fn drain<R: Read>(r: &mut CaptureReader<R>) -> (Vec<Owned>, Option<CapError>) {
    let mut frames = Vec::new();
    let err = loop {
        match r.next_frame() {
            Ok(Some(f)) => frames.push(Owned {
                ts_ns: f.ts_ns,
                interface: f.interface,
                link: f.link.0,
                wire_len: f.wire_len,
                data: f.data.to_vec(),
            }),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    assert!(
        matches!(r.next_frame(), Ok(None)),
        "reader must stay finished"
    );
    assert!(
        matches!(r.next_frame(), Ok(None)),
        "reader must stay finished"
    );
    (frames, err)
}

fn read_all(bytes: &[u8]) -> Result<(Vec<Owned>, Option<CapError>), CapError> {
    let mut r = CaptureReader::new(bytes)?;
    Ok(drain(&mut r))
}

fn header_err(bytes: &[u8]) -> CapError {
    match CaptureReader::new(bytes) {
        Ok(_) => panic!("expected a header error"),
        Err(e) => {
            assert!(!e.is_damage(), "{e} must not be damage");
            e
        }
    }
}

fn damage(bytes: &[u8]) -> (Vec<Owned>, CapError) {
    match read_all(bytes) {
        Ok((frames, Some(e))) => {
            assert!(e.is_damage(), "{e} must be damage");
            (frames, e)
        }
        Ok((_, None)) => panic!("expected damage, read cleanly"),
        Err(e) => panic!("expected damage, got header error {e}"),
    }
}

fn clean(bytes: &[u8]) -> Vec<Owned> {
    match read_all(bytes) {
        Ok((frames, None)) => frames,
        Ok((_, Some(e))) => panic!("unexpected damage: {e}"),
        Err(e) => panic!("unexpected header error: {e}"),
    }
}

// ---------- pcap ----------

#[test]
fn pcap_le_micro() {
    let d1 = [1u8, 2, 3, 4, 5];
    let d2 = [9u8; 60];
    let f = pcap_file(
        true,
        false,
        &[
            (1_700_000_000, 123_456, 5, &d1),
            (1_700_000_001, 0, 1514, &d2),
            (0, 999_999, 0, &[]),
        ],
    );
    let mut r = CaptureReader::new(&f[..]).unwrap();
    assert_eq!(
        r.format(),
        Format::Pcap {
            nanos: false,
            big_endian: false,
            version: (2, 4)
        }
    );
    assert_eq!(r.interfaces().len(), 1);
    assert_eq!(r.interfaces()[0].link, LinkType::ETHERNET);
    assert_eq!(r.interfaces()[0].snaplen, 65535);
    assert_eq!(r.interfaces()[0].ts_units_per_second, 1_000_000);
    assert_eq!(r.bytes_read(), 24);
    let (frames, err) = drain(&mut r);
    assert!(err.is_none());
    assert_eq!(r.bytes_read(), f.len() as u64);
    assert!(r.warnings().is_empty());
    assert_eq!(frames.len(), 3);
    assert_eq!(
        frames[0],
        Owned {
            ts_ns: 1_700_000_000_123_456_000,
            interface: 0,
            link: 1,
            wire_len: 5,
            data: d1.to_vec()
        }
    );
    assert_eq!(frames[1].ts_ns, 1_700_000_001_000_000_000);
    assert_eq!(frames[1].wire_len, 1514);
    assert_eq!(frames[1].data, d2.to_vec());
    assert_eq!(frames[2].ts_ns, 999_999_000);
    assert!(frames[2].data.is_empty());
}

#[test]
fn pcap_be_nano() {
    let f = pcap_file(
        false,
        true,
        &[
            (10, 999_999_999, 100, &[0xAA; 7]),
            (u32::MAX, 1, 3, &[1, 2, 3]),
        ],
    );
    assert_eq!(&f[..4], &[0xA1, 0xB2, 0x3C, 0x4D]);
    let mut r = CaptureReader::new(&f[..]).unwrap();
    assert_eq!(
        r.format(),
        Format::Pcap {
            nanos: true,
            big_endian: true,
            version: (2, 4)
        }
    );
    assert_eq!(r.interfaces()[0].ts_units_per_second, 1_000_000_000);
    let (frames, err) = drain(&mut r);
    assert!(err.is_none());
    assert_eq!(frames[0].ts_ns, 10_999_999_999);
    assert_eq!(frames[0].wire_len, 100);
    assert_eq!(frames[0].data, vec![0xAA; 7]);
    // Seconds are unsigned (as in Wireshark): 0xFFFFFFFF is in 2106.
    assert_eq!(frames[1].ts_ns, 4_294_967_295_000_000_001);
}

#[test]
fn pcap_odd_records_are_read() {
    // ts_usec >= 1e6 carries into the seconds; caplen > wire_len is kept; caplen 0.
    let f = pcap_file(
        true,
        false,
        &[
            (5, 2_000_000, 98, &[0; 98]),
            (5, 0, 20, &[1; 98]),
            (6, 0, 0, &[]),
        ],
    );
    let frames = clean(&f);
    assert_eq!(frames[0].ts_ns, 7_000_000_000);
    assert_eq!((frames[1].wire_len, frames[1].data.len()), (20, 98));
    assert_eq!((frames[2].wire_len, frames[2].data.len()), (0, 0));
}

#[test]
fn pcap_versions_and_linktype_field() {
    let mut f = pcap_header(true, 0xA1B2_C3D4, (1, 0), 1);
    assert_eq!(header_err(&f).to_string(), "unsupported pcap version 1.0");
    f = pcap_header(true, 0xA1B2_C3D4, (0, 9), 1);
    assert_eq!(header_err(&f).to_string(), "unsupported pcap version 0.9");
    f = pcap_header(true, 0xA1B2_C3D4, (9, 9), 1);
    f.extend(pcap_record(true, 1, 0, 2, 2, &[1, 2]));
    let r = CaptureReader::new(&f[..]).unwrap();
    assert_eq!(r.warnings(), ["pcap version 9.9 is not 2.4; read anyway"]);
    // Reserved bits refused; FCS bits allowed and stripped from the link type.
    f = pcap_header(true, 0xA1B2_C3D4, (2, 4), 0x0030_0000);
    assert_eq!(
        header_err(&f).to_string(),
        "invalid pcap header: network type reserved field not zero (0x00300000)"
    );
    f = pcap_header(true, 0xA1B2_C3D4, (2, 4), 0x3400_0065);
    f.extend(pcap_record(true, 1, 0, 1, 1, &[0x45]));
    let frames = clean(&f);
    assert_eq!(frames[0].link, 101);
}

#[test]
fn pcap_old_versions_swap_lengths() {
    // Before 2.3 the two length fields were in the other order.
    let mut f = pcap_header(true, 0xA1B2_C3D4, (2, 2), 1);
    f.extend(pcap_record(true, 1, 0, 60, 3, &[7, 7, 7]));
    let frames = clean(&f);
    assert_eq!((frames[0].wire_len, frames[0].data.len()), (60, 3));
    // 2.3: swapped only when "caplen" is the bigger one.
    let mut f = pcap_header(true, 0xA1B2_C3D4, (2, 3), 1);
    f.extend(pcap_record(true, 1, 0, 60, 3, &[7, 7, 7]));
    f.extend(pcap_record(true, 1, 0, 2, 9, &[7, 7]));
    let frames = clean(&f);
    assert_eq!((frames[0].wire_len, frames[0].data.len()), (60, 3));
    assert_eq!((frames[1].wire_len, frames[1].data.len()), (9, 2));
}

#[test]
fn modified_pcap_has_24_byte_records() {
    let mut f = pcap_header(true, 0xA1B2_CD34, (2, 4), 1);
    let mut rec = pcap_record(true, 3, 4, 2, 2, &[]);
    rec.extend_from_slice(&[1, 0, 0, 0, 0x08, 0x00, 0, 0]); // ifindex, protocol, type, pad
    rec.extend_from_slice(&[0xAB, 0xCD]);
    f.extend(&rec);
    f.extend(&rec);
    let mut r = CaptureReader::new(&f[..]).unwrap();
    assert!(r.is_modified_pcap());
    let (frames, err) = drain(&mut r);
    assert!(err.is_none());
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].data, vec![0xAB, 0xCD]);
    assert_eq!(frames[1].ts_ns, 3_000_004_000);
}

#[test]
fn pcap_truncated_global_header() {
    let f = pcap_file(true, false, &[]);
    let e = header_err(&f[..10]);
    assert_eq!(e.to_string(), "truncated pcap header: 10 of 24 bytes");
    assert!(e.offset().is_none());
    assert_eq!(
        header_err(&f[..2]).to_string(),
        "truncated pcap header: 2 of 24 bytes"
    );
    assert_eq!(
        header_err(&f[..23]).to_string(),
        "truncated pcap header: 23 of 24 bytes"
    );
    // The header alone is a valid empty capture.
    assert!(clean(&f).is_empty());
}

#[test]
fn pcap_truncated_record_header() {
    let f = pcap_file(
        true,
        false,
        &[(1, 0, 4, &[1, 2, 3, 4]), (2, 0, 4, &[1, 2, 3, 4])],
    );
    let cut = &f[..24 + 20 + 8];
    let (frames, e) = damage(cut);
    assert_eq!(frames.len(), 1);
    assert!(e.is_truncation());
    assert_eq!(e.offset(), Some(44));
    assert_eq!(e.bytes_lost(), Some(8));
    assert_eq!(
        e.to_string(),
        "cut short in the middle of a packet header at offset 44: record header needs 16 bytes, only 8 present (8 bytes lost)"
    );
}

#[test]
fn pcap_truncated_record_data() {
    let data = [0x11u8; 98];
    let f = pcap_file(true, false, &[(1, 0, 98, &data)]);
    let (frames, e) = damage(&f[..60]);
    assert!(frames.is_empty());
    assert!(e.is_truncation());
    assert_eq!(e.offset(), Some(40));
    assert_eq!(e.bytes_lost(), Some(20));
    assert_eq!(
        e.to_string(),
        "cut short in the middle of a packet at offset 40: record needs 98 bytes, only 20 present (20 bytes lost)"
    );
}

#[test]
fn pcap_caplen_too_big() {
    let mut f = pcap_file(true, false, &[(1, 0, 4, &[1, 2, 3, 4])]);
    f.extend(pcap_record(true, 1, 0, 262_145, 262_145, &[0; 98]));
    let (frames, e) = damage(&f);
    assert_eq!(frames.len(), 1);
    assert!(!e.is_truncation());
    assert_eq!(e.offset(), Some(44));
    assert_eq!(
        e.bytes_lost(),
        None,
        "length of a generic reader is unknown"
    );
    assert_eq!(
        e.to_string(),
        "corrupt pcap record at offset 44: captured length 262145 is more than the maximum of 262144"
    );
    let mut r = CaptureReader::new(&f[..]).unwrap();
    r.set_total_len(Some(f.len() as u64));
    let (_, e) = drain(&mut r);
    assert_eq!(e.and_then(|e| e.bytes_lost()), Some(16 + 98));
    // Exactly the maximum is fine.
    let big = vec![0u8; 262_144];
    let f = pcap_file(true, false, &[(1, 0, 262_144, &big)]);
    assert_eq!(clean(&f)[0].data.len(), 262_144);
}

#[test]
fn not_a_capture() {
    assert_eq!(header_err(b"").to_string(), "file is empty (0 bytes)");
    assert_eq!(
        header_err(b"Time,Source\n1,2\n").to_string(),
        "not a pcap or pcapng file (starts with 0x54 0x69 0x6d 0x65)"
    );
    assert_eq!(
        header_err(b"ab").to_string(),
        "not a pcap or pcapng file (starts with 0x61 0x62)"
    );
    assert!(matches!(
        header_err(&[0xd5, 0xc3, 0xb2, 0xa1, 0, 0]),
        CapError::NotCapture { .. }
    ));
}

#[test]
fn open_errors() {
    let missing = std::env::temp_dir().join("netdigest-capfile-test-does-not-exist.pcap");
    let e = CaptureReader::open(&missing).err().unwrap();
    assert_eq!(e.to_string(), "no such file");
    let e = CaptureReader::open(&std::env::temp_dir()).err().unwrap();
    assert_eq!(e.to_string(), "is a directory, not a capture file");
    assert!(!e.is_damage());
}

// ---------- pcapng ----------

#[test]
fn pcapng_sections_interfaces_and_packet_blocks() {
    let mut ng = Ng::new(true);
    ng.shb()
        .idb(1, 0, &[(2, b"eth0")])
        .idb(101, 96, &[(9, &[9]), (14, &100i64.to_le_bytes())])
        .epb(0, 1_700_000_000_123_456, 60, &[1; 60])
        .epb(1, 1_700_000_000_000_000_007, 1500, &[2; 96])
        .spb(5, &[3, 3, 3, 3, 3])
        .pb(1, 42, 3, &[4, 4, 4]);
    // NRB, ISB, a custom block and an unknown block are skipped.
    ng.block(4, &[0; 8])
        .block(5, &[0; 12])
        .block(0x0000_0BAD, &[1, 2, 3, 4])
        .block(0x7777, &[]);
    let mut ng2 = Ng::new(false); // the second section is big-endian
    ng2.shb()
        .idb(
            113,
            0,
            &[
                (9, &[0x80 | 0x14]),
                (2, b"eth7"),
                (14, &(-1i64).to_be_bytes()),
            ],
        )
        .epb(0, (1u64 << 20) * 3 + (1 << 19), 10, &[5; 10])
        .spb(100, &[6; 8]);
    let mut f = ng.bytes();
    f.extend(ng2.bytes());
    let mut r = CaptureReader::new(&f[..]).unwrap();
    assert_eq!(r.format(), Format::PcapNg);
    // The IDBs right after the first SHB are known as soon as the file is open.
    assert_eq!(r.interfaces().len(), 2);
    assert_eq!(r.interfaces()[1].ts_units_per_second, 1_000_000_000);
    let (frames, err) = drain(&mut r);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(r.bytes_read(), f.len() as u64);
    let ifs = r.interfaces();
    assert_eq!(ifs.len(), 3);
    assert_eq!(
        (
            ifs[0].link,
            ifs[0].name.as_deref(),
            ifs[0].ts_units_per_second
        ),
        (LinkType::ETHERNET, Some("eth0"), 1_000_000)
    );
    assert_eq!(
        (
            ifs[1].link,
            ifs[1].snaplen,
            ifs[1].ts_units_per_second,
            ifs[1].ts_offset_s
        ),
        (LinkType::RAW, 96, 1_000_000_000, 100)
    );
    assert_eq!(
        (
            ifs[2].link,
            ifs[2].ts_units_per_second,
            ifs[2].ts_offset_s,
            ifs[2].section
        ),
        (LinkType::LINUX_SLL, 1 << 20, -1, 1)
    );
    assert_eq!(ifs[2].name.as_deref(), Some("eth7"));
    let got: Vec<(i64, u32, u32, u32, usize)> = frames
        .iter()
        .map(|f| (f.ts_ns, f.interface, f.link, f.wire_len, f.data.len()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1_700_000_000_123_456_000, 0, 1, 60, 60),
            (1_700_000_100_000_000_007, 1, 101, 1500, 96),
            (0, 0, 1, 5, 5),
            (100_000_000_042, 1, 101, 3, 3),
            (2_500_000_000, 2, 113, 10, 10),
            // SPB: data = min(wire_len, remaining block); snaplen 0 means no limit.
            (0, 2, 113, 100, 8),
        ]
    );
    assert_eq!(frames[2].data, vec![3; 5]);
    assert_eq!(frames[4].data, vec![5; 10]);
}

#[test]
fn pcapng_spb_respects_snaplen() {
    let mut ng = Ng::new(true);
    ng.shb()
        .idb(1, 4, &[])
        .spb(10, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let frames = clean(&ng.bytes());
    assert_eq!(
        (frames[0].wire_len, frames[0].data.clone()),
        (10, vec![1, 2, 3, 4])
    );
}

#[test]
fn pcapng_big_endian() {
    let mut ng = Ng::new(false);
    ng.shb()
        .idb(1, 65535, &[(9, &[3])])
        .epb(0, 1_234_567, 4, &[9, 8, 7, 6]);
    let f = ng.bytes();
    assert_eq!(&f[8..12], &[0x1A, 0x2B, 0x3C, 0x4D]);
    let frames = clean(&f);
    assert_eq!(frames[0].ts_ns, 1_234_567_000_000);
    assert_eq!(frames[0].data, vec![9, 8, 7, 6]);
}

#[test]
fn pcapng_timestamp_extremes_saturate() {
    let mut ng = Ng::new(true);
    ng.shb()
        .idb(1, 0, &[(14, &i64::MAX.to_le_bytes())])
        .idb(1, 0, &[(14, &i64::MIN.to_le_bytes()), (9, &[0x7F])])
        .idb(1, 0, &[(9, &[0xFF])])
        .idb(1, 0, &[(9, &[0x80])])
        .idb(1, 0, &[(9, &[12])])
        .epb(0, u64::MAX, 1, &[0])
        .epb(1, 5, 1, &[0])
        .epb(2, u64::MAX, 1, &[0])
        .epb(3, 7, 1, &[0])
        .epb(4, 1_500_000_000_000, 1, &[0]);
    let f = ng.bytes();
    let mut r = CaptureReader::new(&f[..]).unwrap();
    let (frames, err) = drain(&mut r);
    assert!(err.is_none());
    assert_eq!(r.interfaces()[1].ts_units_per_second, u64::MAX);
    assert_eq!(r.interfaces()[2].ts_units_per_second, u64::MAX);
    assert_eq!(r.interfaces()[3].ts_units_per_second, 1);
    let ts: Vec<i64> = frames.iter().map(|f| f.ts_ns).collect();
    assert_eq!(
        ts,
        vec![
            i64::MAX,
            i64::MIN,
            1_000_000_000,
            7_000_000_000,
            1_500_000_000
        ]
    );
}

fn first_epb_offset(f: &[u8]) -> usize {
    // SHB then IDB: find the EPB by walking block lengths.
    let mut at = 0;
    loop {
        let t = u32::from_le_bytes(f[at..at + 4].try_into().unwrap());
        if t == PCAPNG_EPB {
            return at;
        }
        at += u32::from_le_bytes(f[at + 4..at + 8].try_into().unwrap()) as usize;
    }
}

fn simple_ng() -> Vec<u8> {
    let mut ng = Ng::new(true);
    ng.shb()
        .idb(1, 0, &[])
        .epb(0, 1, 42, &[0x5A; 42])
        .epb(0, 2, 42, &[0x5B; 42]);
    ng.bytes()
}

#[test]
fn pcapng_block_length_errors() {
    let good = simple_ng();
    let at = first_epb_offset(&good);
    assert_eq!(clean(&good).len(), 2);
    let set_len =
        |f: &mut Vec<u8>, pos: usize, v: u32| f[pos..pos + 4].copy_from_slice(&v.to_le_bytes());

    let mut f = good.clone();
    set_len(&mut f, at + 4, 8);
    let (frames, e) = damage(&f);
    assert!(frames.is_empty() && !e.is_truncation());
    assert_eq!(
        e.to_string(),
        format!(
            "corrupt pcapng block at offset {at}: block length 8 is less than the minimum of 12"
        )
    );
    assert_eq!(e.offset(), Some(at as u64));

    let mut f = good.clone();
    set_len(&mut f, at + 4, 30);
    let (_, e) = damage(&f);
    assert_eq!(
        e.to_string(),
        format!("corrupt pcapng block at offset {at}: block length 30 is not a multiple of 4")
    );

    let mut f = good.clone();
    set_len(&mut f, at + 4, 20);
    let (_, e) = damage(&f);
    assert_eq!(
        e.to_string(),
        format!(
            "corrupt pcapng block at offset {at}: block length 20 is less than the minimum of 32 for an enhanced packet block"
        )
    );

    let mut f = good.clone();
    set_len(&mut f, at + 4, MAX_BLOCK_LEN + 4);
    let (_, e) = damage(&f);
    assert!(
        e.to_string()
            .contains("is more than the maximum of 16777216"),
        "{e}"
    );

    // Trailer mismatch (the second EPB).
    let mut f = good.clone();
    let second = at + 76;
    set_len(&mut f, second + 72, 80);
    let (frames, e) = damage(&f);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        e.to_string(),
        format!(
            "corrupt pcapng block at offset {second}: block lengths don't match (76 at the start, 80 at the end)"
        )
    );

    // Captured length bigger than the block.
    let mut f = good.clone();
    set_len(&mut f, at + 20, 45);
    let (_, e) = damage(&f);
    assert_eq!(
        e.to_string(),
        format!(
            "corrupt pcapng block at offset {at}: block length 76 of an enhanced packet block is too small for 45 bytes of packet data"
        )
    );
}

#[test]
fn pcapng_undefined_interface() {
    let mut ng = Ng::new(true);
    ng.shb().epb(0, 1, 1, &[1]);
    let (_, e) = damage(&ng.bytes());
    assert_eq!(
        e.to_string(),
        "corrupt pcapng block at offset 52: packet block refers to interface 0, but the section has defined 0 interfaces"
    );
    // A new section forgets the old section's interfaces.
    let mut ng = Ng::new(true);
    ng.shb()
        .idb(1, 0, &[])
        .epb(0, 1, 1, &[1])
        .shb()
        .spb(1, &[1]);
    let (frames, e) = damage(&ng.bytes());
    assert_eq!(frames.len(), 1);
    assert!(
        e.to_string()
            .contains("refers to interface 0, but the section has defined 0 interfaces")
    );
    let mut ng = Ng::new(true);
    ng.shb().idb(1, 0, &[]).epb(1, 1, 1, &[1]);
    let (_, e) = damage(&ng.bytes());
    assert!(
        e.to_string()
            .ends_with("refers to interface 1, but the section has defined 1 interface"),
        "{e}"
    );
}

#[test]
fn pcapng_truncation() {
    let good = simple_ng();
    let at = first_epb_offset(&good);
    let (frames, e) = damage(&good[..at + 40]);
    assert!(frames.is_empty());
    assert!(e.is_truncation());
    assert_eq!((e.offset(), e.bytes_lost()), (Some(at as u64), Some(40)));
    assert_eq!(
        e.to_string(),
        format!(
            "cut short in the middle of a pcapng block at offset {at}: block needs 76 bytes, only 40 present (40 bytes lost)"
        )
    );
    let (frames, e) = damage(&good[..good.len() - 71]);
    assert_eq!(frames.len(), 1);
    assert!(e.is_truncation());
    assert_eq!(e.bytes_lost(), Some(5));
    assert_eq!(
        e.to_string(),
        format!(
            "cut short in the middle of a pcapng block header at offset {}: block header needs 8 bytes, only 5 present (5 bytes lost)",
            at + 76
        )
    );
    // A block-aligned cut is a clean end.
    assert_eq!(clean(&good[..at + 76]).len(), 1);
}

#[test]
fn pcapng_header_errors() {
    let good = simple_ng();
    assert_eq!(
        header_err(&good[..12]).to_string(),
        "truncated pcapng header: 12 of 52 bytes"
    );
    assert_eq!(
        header_err(&good[..7]).to_string(),
        "truncated pcapng header: 7 of 28 bytes"
    );
    assert_eq!(
        header_err(&good[..3]).to_string(),
        "truncated pcapng header: 3 of 28 bytes"
    );
    let mut f = good.clone();
    f[8..12].copy_from_slice(&[0x11, 0x22, 0x33, 0x44]);
    assert_eq!(
        header_err(&f).to_string(),
        "not a pcap or pcapng file (pcapng byte-order magic is 0x44332211, not 0x1a2b3c4d)"
    );
    let mut ng = Ng::new(true);
    ng.shb_version(0, 1).idb(1, 0, &[]);
    assert_eq!(
        header_err(&ng.bytes()).to_string(),
        "unsupported pcapng version 0.1"
    );
    let mut ng = Ng::new(false);
    ng.shb_version(2, 0);
    assert_eq!(
        header_err(&ng.bytes()).to_string(),
        "unsupported pcapng version 2.0"
    );
    let mut ng = Ng::new(true);
    ng.shb_version(1, 2).idb(1, 0, &[]).epb(0, 0, 1, &[1]);
    let f = ng.bytes();
    let mut r = CaptureReader::new(&f[..]).unwrap();
    assert_eq!(r.warnings(), ["pcapng version 1.2 is not 1.0; read anyway"]);
    assert_eq!(drain(&mut r).0.len(), 1);
    // An option running past the end of the SHB (libpcap's shb-option-too-long).
    let mut f = good.clone();
    f[24..26].copy_from_slice(&0x3030u16.to_le_bytes());
    f[26..28].copy_from_slice(&0x3030u16.to_le_bytes());
    assert_eq!(
        header_err(&f).to_string(),
        "invalid pcapng header: option 12336 has length 12336, which runs past the end of the block (20 bytes left)"
    );
    // The same in an IDB is damage.
    let mut ng = Ng::new(true);
    ng.shb().idb(1, 0, &[(2, b"eth0")]).epb(0, 0, 1, &[1]);
    let mut f = ng.bytes();
    f[52 + 18..52 + 20].copy_from_slice(&200u16.to_le_bytes());
    let (_, e) = damage(&f);
    assert!(!e.is_truncation());
    assert!(e.to_string().starts_with("corrupt pcapng block at offset 52: interface description block: option 2 has length 200"), "{e}");
}

#[test]
fn pcapng_bad_magic_in_later_section_is_corrupt() {
    let mut ng = Ng::new(true);
    ng.shb().idb(1, 0, &[]).epb(0, 0, 1, &[1]);
    let first = ng.bytes();
    let mut f = first.clone();
    f.extend(&first);
    let pos = first.len() + 8;
    f[pos..pos + 4].copy_from_slice(&[1, 2, 3, 4]);
    let (frames, e) = damage(&f);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        e.to_string(),
        format!(
            "corrupt pcapng block at offset {}: section header block has an unknown byte-order magic 0x04030201",
            first.len()
        )
    );
}

/// Deterministic xorshift for the mutation test.
fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn mutated_inputs_never_panic() {
    let mut ng = Ng::new(true);
    ng.shb()
        .idb(1, 0, &[(9, &[9]), (2, b"x")])
        .epb(0, 5, 9, &[1; 9])
        .spb(4, &[2; 4])
        .pb(0, 9, 3, &[3; 3]);
    ng.block(5, &[0; 16]);
    let seeds = [
        ng.bytes(),
        pcap_file(true, false, &[(1, 2, 3, &[1, 2, 3]), (4, 5, 6, &[0; 6])]),
    ];
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    for base in &seeds {
        for _ in 0..4000 {
            let mut f = base.clone();
            let n = 1 + xorshift(&mut s) % 4;
            for _ in 0..n {
                let pos = (xorshift(&mut s) % f.len() as u64) as usize;
                f[pos] = (xorshift(&mut s) & 0xFF) as u8;
            }
            if xorshift(&mut s).is_multiple_of(4) {
                let keep = (xorshift(&mut s) % (f.len() as u64 + 1)) as usize;
                f.truncate(keep);
            }
            if let Ok(mut r) = CaptureReader::new(&f[..]) {
                let mut count = 0;
                while let Ok(Some(fr)) = r.next_frame() {
                    assert!(fr.data.len() <= f.len());
                    count += 1;
                    assert!(count < 100);
                }
                assert!(r.bytes_read() <= f.len() as u64);
            }
        }
    }
}

#[test]
fn error_helpers() {
    let e = CapError::Corrupt {
        what: "pcapng block",
        offset: 28,
        reason: "x".into(),
        bytes_lost: Some(10),
    };
    assert!(e.is_damage() && !e.is_truncation());
    assert_eq!((e.offset(), e.bytes_lost()), (Some(28), Some(10)));
    assert_eq!(CapError::Empty.offset(), None);
    assert_eq!(ts_to_ns(3, 3, 0), 1_000_000_000);
    assert_eq!(ts_to_ns(1, 3, 0), 333_333_333);
}

// ---------- corpus ----------

/// `NETDIGEST_SHARED`, else `CARGO_MANIFEST_DIR/../shared`, when it exists.
fn shared_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETDIGEST_SHARED") {
        let p = PathBuf::from(p);
        return p.is_dir().then_some(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    p.is_dir().then_some(p)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The corpus folder, or None (after printing why) when it is missing outside CI.
fn corpus(sub: &str) -> Option<PathBuf> {
    let dir = shared_dir()
        .map(|d| d.join("corpus").join(sub))
        .filter(|d| d.is_dir());
    if dir.is_none() {
        let why = format!(
            "shared corpus folder corpus/{sub} not found (set NETDIGEST_SHARED or put it at {}/../shared)",
            env!("CARGO_MANIFEST_DIR")
        );
        assert!(!in_ci(), "CI=true and {why}");
        println!("SKIPPED: {why}");
    }
    dir
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Truncation,
    Corrupt,
    Header,
}

/// Reads a file to its end: (frames, outcome, error message).
fn read_file(path: &Path) -> (Vec<Owned>, Outcome, String) {
    match CaptureReader::open(path) {
        Err(e) => {
            assert!(!e.is_damage());
            (Vec::new(), Outcome::Header, e.to_string())
        }
        Ok(mut r) => {
            let (frames, err) = drain(&mut r);
            match err {
                None => (frames, Outcome::Ok, String::new()),
                Some(e) => {
                    assert!(e.is_damage(), "{}: {e}", path.display());
                    assert!(e.offset().is_some() && e.bytes_lost().is_some(), "{e}");
                    let o = if e.is_truncation() {
                        Outcome::Truncation
                    } else {
                        Outcome::Corrupt
                    };
                    (frames, o, e.to_string())
                }
            }
        }
    }
}

fn tsv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            head.iter()
                .map(ToString::to_string)
                .zip(l.split('\t').map(str::to_owned))
                .collect()
        })
        .collect()
}

#[test]
fn bad_corpus() {
    use Outcome::{Corrupt, Header, Ok as Clean, Truncation};
    let Some(dir) = corpus("bad") else { return };
    // file -> (frames we return, outcome)
    let expected: &[(&str, usize, Outcome)] = &[
        ("empty.pcap", 0, Header),
        ("garbage-4k.bin", 0, Header),
        ("pcap-bad-magic.pcap", 0, Header),
        ("pcap-bad-version-9.9.pcap", 2, Clean),
        ("pcap-caplen-262145.pcap", 0, Corrupt),
        ("pcap-caplen-gt-origlen.pcap", 2, Clean),
        ("pcap-header-only-0pkts.pcap", 0, Clean),
        ("pcap-runt-5-byte-frame.pcap", 1, Clean),
        ("pcap-trailing-garbage.pcap", 2, Truncation),
        ("pcap-trunc-global-header-10B.pcap", 0, Header),
        ("pcap-trunc-mid-first-packet.pcap", 0, Truncation),
        ("pcap-trunc-record-header.pcap", 0, Truncation),
        ("pcap-unknown-linktype-65000.pcap", 2, Clean),
        ("pcap-usec-2000000.pcap", 2, Clean),
        ("pcap-zero-caplen.pcap", 2, Clean),
        ("pcapng-bad-block-len-8.pcapng", 0, Corrupt),
        ("pcapng-bad-block-len-not4.pcapng", 0, Corrupt),
        ("pcapng-bad-byte-order-magic.pcapng", 0, Header),
        ("pcapng-block-len-trailer-mismatch.pcapng", 0, Corrupt),
        ("pcapng-no-idb.pcapng", 0, Corrupt),
        ("pcapng-trunc-mid-block.pcapng", 0, Truncation),
        ("pcapng-trunc-mid-shb.pcapng", 0, Header),
        ("text-file.csv", 0, Header),
    ];
    // Where tshark exits 0 but we report an error, on purpose:
    let tshark_differs: &[(&str, &str)] = &[
        (
            "empty.pcap",
            "a 0-byte file is an error for us (tshark: 0 packets)",
        ),
        (
            "pcapng-trunc-mid-shb.pcapng",
            "tshark falls back to its MIME-file reader and shows the 12 bytes as one 'packet'",
        ),
    ];
    let behaviour = tsv(&dir.join("BEHAVIOUR.tsv"));
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n != "BEHAVIOUR.tsv")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = expected.iter().map(|e| e.0.to_owned()).collect();
    listed.sort();
    assert_eq!(
        on_disk,
        listed,
        "the table must cover every file in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for &(name, want_n, want) in expected {
        let (frames, got, msg) = read_file(&dir.join(name));
        println!("{name:45} {:>3} frames {got:?} {msg}", frames.len());
        if (frames.len(), got) != (want_n, want) {
            failures.push(format!(
                "{name}: expected {want_n} {want:?}, got {} {got:?} ({msg})",
                frames.len()
            ));
        }
        let Some(row) = behaviour
            .iter()
            .find(|r| r.get("file").map(String::as_str) == Some(name))
        else {
            failures.push(format!("{name}: not in BEHAVIOUR.tsv"));
            continue;
        };
        let rc = row.get("tshark_rc").map(String::as_str);
        let n: usize = row
            .get("tshark_pkts")
            .and_then(|s| s.parse().ok())
            .unwrap_or(usize::MAX);
        if rc == Some("0") && (got != Clean || frames.len() != n) {
            if let Some((_, why)) = tshark_differs.iter().find(|d| d.0 == name) {
                println!("    differs from tshark ({n} packets, exit 0) on purpose: {why}");
            } else {
                failures.push(format!(
                    "{name}: tshark reads {n} packets and exits 0, we read {} {got:?} {msg}",
                    frames.len()
                ));
            }
        }
        if rc != Some("0") && got == Clean {
            println!("    tshark refuses this file (rc {rc:?}); we read it");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Files tshark refuses that we read on purpose: the reader does not judge link types.
const READ_DESPITE_TSHARK: &[&str] = &["tcpdump__edsa.pcap"];

#[test]
fn real_corpus_counts() {
    let Some(dir) = corpus("real") else { return };
    let manifest = tsv(&dir.join("MANIFEST.tsv"));
    assert!(!manifest.is_empty());
    let (mut matched, mut refused, mut failures) = (0, 0, Vec::new());
    for row in &manifest {
        let name = &row["file"];
        let rc = row["tshark_rc"].as_str();
        let want: usize = row["packets"].parse().unwrap();
        let (frames, got, msg) = read_file(&dir.join(name));
        println!(
            "{name:70} tshark rc {rc} {want:>6} | ours {:>6} {got:?} {msg}",
            frames.len()
        );
        if rc == "0" {
            if got == Outcome::Ok && frames.len() == want {
                matched += 1;
            } else {
                failures.push(format!(
                    "{name}: tshark {want} packets, ours {} {got:?} {msg}",
                    frames.len()
                ));
            }
        } else if READ_DESPITE_TSHARK.contains(&name.as_str()) {
            assert_eq!(got, Outcome::Ok, "{name}");
            println!(
                "    tshark refuses this file ({}); we read it on purpose",
                row["encap(capinfos)"]
            );
        } else if got == Outcome::Ok {
            failures.push(format!(
                "{name}: tshark refuses it (rc {rc}), we read {} frames cleanly",
                frames.len()
            ));
        } else {
            refused += 1;
        }
    }
    println!(
        "{matched} files match tshark's count, {refused} refused like tshark, {} failures",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// tshark's frame.time_epoch ("secs.nnnnnnnnn") as ns. Wireshark prints the nsecs
/// field with %09d, so more than 9 digits means nsecs >= 1e9.
fn parse_epoch(s: &str) -> Option<i128> {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i128 = secs.parse().ok()?;
    let nanos: i128 = if frac.is_empty() {
        0
    } else if frac.len() <= 9 {
        format!("{frac:0<9}").parse().ok()?
    } else {
        frac.parse().ok()?
    };
    let v = secs * 1_000_000_000 + nanos;
    Some(if neg { -v } else { v })
}

/// Frames where we and tshark disagree on purpose: Wireshark 4.0 computes pcap
/// nanoseconds in a 32-bit int, so out-of-range fractions overflow there.
const TS_DIFFERS: &[(&str, usize, &str)] = &[
    (
        "tcpdump__timestamp_invalid_micro.pcap",
        3,
        "ts_usec 2^31: tshark's usec*1000 wraps to 0 in 32 bits",
    ),
    (
        "tcpdump__timestamp_invalid_nano.pcap",
        3,
        "ts_nsec 2^31: tshark takes it as a negative int",
    ),
];

#[test]
fn real_corpus_matches_tshark_frame_by_frame() {
    let Some(dir) = corpus("real") else { return };
    if std::process::Command::new("tshark")
        .arg("-v")
        .output()
        .is_err()
    {
        assert!(
            !in_ci(),
            "CI=true and tshark is not installed; it is needed to check the reader"
        );
        println!("SKIPPED: tshark not installed");
        return;
    }
    let manifest = tsv(&dir.join("MANIFEST.tsv"));
    let names: Vec<String> = manifest
        .iter()
        .filter(|r| r["tshark_rc"] == "0")
        .map(|r| r["file"].clone())
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(2, std::num::NonZero::get)
        .min(4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    let r = compare_with_tshark(&dir.join(name), name);
                    results.lock().unwrap().push((name.clone(), r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort();
    let (mut frames_total, mut unexpected) = (0usize, Vec::new());
    for (name, (n, mismatches)) in &results {
        frames_total += n;
        println!("{name:70} {n:>6} frames, {} mismatches", mismatches.len());
        for (frame, m) in mismatches {
            if let Some(d) = TS_DIFFERS.iter().find(|d| d.0 == name && d.1 == *frame) {
                println!("    frame {frame}: {m} (known: {})", d.2);
            } else {
                println!("    frame {frame}: {m}");
                unexpected.push(format!("{name} frame {frame}: {m}"));
            }
        }
    }
    println!(
        "{} files, {frames_total} frames compared, {} unexpected mismatches",
        results.len(),
        unexpected.len()
    );
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}

/// (frames compared, mismatches as (frame number, description)).
fn compare_with_tshark(path: &Path, name: &str) -> (usize, Vec<(usize, String)>) {
    let out = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
        ])
        .output()
        .unwrap_or_else(|e| panic!("running tshark on {name}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let theirs: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let (ours, _, msg) = read_file(path);
    let mut mism = Vec::new();
    if ours.len() != theirs.len() {
        mism.push((
            0,
            format!(
                "frame count: tshark {}, ours {} {msg}",
                theirs.len(),
                ours.len()
            ),
        ));
    }
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        let n = i + 1;
        let ts = t.get(1).and_then(|s| parse_epoch(s));
        if ts != Some(i128::from(o.ts_ns)) {
            mism.push((
                n,
                format!(
                    "time: tshark {} ({ts:?} ns), ours {} ns",
                    t.get(1).unwrap_or(&""),
                    o.ts_ns
                ),
            ));
        }
        if t.get(2).and_then(|s| s.parse::<u32>().ok()) != Some(o.wire_len) {
            mism.push((
                n,
                format!("frame.len: tshark {:?}, ours {}", t.get(2), o.wire_len),
            ));
        }
        if t.get(3).and_then(|s| s.parse::<usize>().ok()) != Some(o.data.len()) {
            mism.push((
                n,
                format!(
                    "frame.cap_len: tshark {:?}, ours {}",
                    t.get(3),
                    o.data.len()
                ),
            ));
        }
    }
    (ours.len(), mism)
}

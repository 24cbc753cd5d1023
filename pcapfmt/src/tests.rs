#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// Minimal pcap reader: (link type, nanos, [(ts_ns, data, wire_len)]).
type Record = (i64, Vec<u8>, u32);

fn parse(b: &[u8]) -> (u32, bool, Vec<Record>) {
    let u32at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let magic = Magic::parse(b[0..4].try_into().unwrap()).expect("pcap magic");
    assert!(!magic.big_endian && !magic.modified);
    let nanos = magic.nanos;
    assert_eq!(&b[4..8], &[2, 0, 4, 0]);
    let link = u32at(20);
    let mut out = Vec::new();
    let mut o = FILE_HEADER_LEN;
    while o < b.len() {
        assert!(
            o + RECORD_HEADER_LEN <= b.len(),
            "truncated record header at {o}"
        );
        let secs = i64::from(u32at(o));
        let frac = i64::from(u32at(o + 4));
        let cap = u32at(o + 8) as usize;
        let wire = u32at(o + 12);
        let ts = secs * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        o += RECORD_HEADER_LEN;
        out.push((ts, b[o..o + cap].to_vec(), wire));
        o += cap;
    }
    assert_eq!(o, b.len());
    (link, nanos, out)
}

#[test]
fn pcap_writer_header_and_records() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 64, true).unwrap();
    w.write_packet(1_500_000_000_123_456_789, &[1u8; 100], 120)
        .unwrap();
    assert!(w.write_packet(-1, &[1], 1).is_err());
    assert!(w.write_packet(0, &[1, 2], 1).is_err());
    let b = w.into_inner().unwrap();
    let (link, nanos, recs) = parse(&b);
    assert_eq!((link, nanos), (1, true));
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].0, 1_500_000_000_123_456_789);
    assert_eq!(recs[0].1.len(), 64);
    assert_eq!(recs[0].2, 120);
    let mut w = PcapWriter::new(Vec::new(), LinkType::RAW, 65535, false).unwrap();
    w.write_packet(1_500_000_000_123_456_789, &[0x45; 20], 20)
        .unwrap();
    let (link, nanos, recs) = parse(&w.into_inner().unwrap());
    assert_eq!((link, nanos), (101, false));
    assert_eq!(recs[0].0, 1_500_000_000_123_456_000);
    assert!(PcapWriter::new(Vec::new(), LinkType::RAW, 0, false).is_err());
}

#[test]
fn headers_are_the_documented_bytes() {
    assert_eq!(
        file_header(false, 262_144, LinkType::ETHERNET),
        [
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0
        ]
    );
    assert_eq!(
        &file_header(true, 1, LinkType::RAW)[..4],
        &[0x4d, 0x3c, 0xb2, 0xa1]
    );
    assert_eq!(
        record_header(1, 2, 3, 4),
        [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]
    );
}

#[test]
fn magic_in_both_byte_orders() {
    for (m, nanos, modified) in [
        (MAGIC_MICROS, false, false),
        (MAGIC_NANOS, true, false),
        (MAGIC_MODIFIED, false, true),
    ] {
        for big_endian in [false, true] {
            let b = if big_endian {
                m.to_be_bytes()
            } else {
                m.to_le_bytes()
            };
            assert_eq!(
                Magic::parse(b),
                Some(Magic {
                    nanos,
                    modified,
                    big_endian
                })
            );
        }
    }
    assert_eq!(Magic::parse(*b"\x0a\x0d\x0d\x0a"), None);
    assert_eq!(MAGICS.len(), 3);
}

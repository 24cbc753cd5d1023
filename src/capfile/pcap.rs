//! Classic pcap: the global header and the records that follow it, in either byte
//! order, with microsecond or nanosecond timestamps, and the "modified" variant with
//! 24-byte record headers. A record is read whole or reported as damage
//! ([`CapError::Truncated`], [`CapError::Corrupt`]) at the offset where it starts.

use std::io::Read;

use super::bytes::{Endian, a2, a4, as_u64, as_usize, read_full};
use super::{
    CapError, CaptureReader, Format, FrameMeta, InterfaceInfo, MAX_BLOCK_LEN, MAX_PACKET_STANDARD,
    Piece, State,
};
use crate::linktype::LinkType;

/// A record's header, and the packet it holds, as a cut-short file names them.
const RECORD_HEADER: Piece = Piece::new("a packet header", "record header");
const RECORD: Piece = Piece::new("a packet", "record");

#[derive(Debug, Clone, Copy)]
pub(super) struct PcapState {
    pub(super) endian: Endian,
    pub(super) nanos: bool,
    pub(super) record_header_len: usize,
    /// Versions before 2.3 (and 2.3 files where caplen > len) have caplen and len swapped.
    pub(super) swap_lengths: SwapLengths,
    pub(super) max_caplen: u32,
    pub(super) link: LinkType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SwapLengths {
    Never,
    Always,
    WhenCaplenBigger,
}

impl<R: Read> CaptureReader<R> {
    pub(super) fn read_pcap_header(
        &mut self,
        magic: [u8; 4],
        endian: Endian,
        nanos: bool,
        modified: bool,
        got: usize,
    ) -> Result<(), CapError> {
        let mut h = [0u8; 24];
        h[..4].copy_from_slice(&magic);
        self.read_header_rest(&mut h, got, "pcap", 24)?;
        let major = endian.u16(a2(&h, 4));
        let minor = endian.u16(a2(&h, 6));
        let snaplen = endian.u32(a4(&h, 16));
        let network = endian.u32(a4(&h, 20));
        if major < 2 {
            return Err(CapError::UnsupportedVersion {
                format: "pcap",
                major,
                minor,
            });
        }
        if (major, minor) != (2, 4) {
            self.warn(format!(
                "pcap version {major}.{minor} is not 2.4; read anyway"
            ));
        }
        let reserved = network & 0x03FF_0000;
        if reserved != 0 {
            return Err(CapError::BadHeader {
                what: "pcap",
                reason: format!("network type reserved field not zero (0x{reserved:08x})"),
            });
        }
        let link = LinkType(network & 0xFFFF);
        let swap_lengths = match (major, minor) {
            (2, 0..=2) => SwapLengths::Always,
            (2, 3) => SwapLengths::WhenCaplenBigger,
            _ => SwapLengths::Never,
        };
        // Like Wireshark's wtap_max_snaplen_for_encap: USB, D-Bus and EBHSCR records may
        // be larger than the standard maximum (we stop at MAX_BLOCK_LEN).
        let max_caplen = match link.0 {
            189 | 220 | 231 | 249 | 266 | 279 => MAX_BLOCK_LEN,
            _ => MAX_PACKET_STANDARD,
        };
        self.state = State::Pcap(PcapState {
            endian,
            nanos,
            // The modified format (Kuznetzov) adds ifindex, protocol, pkt_type and padding.
            record_header_len: if modified {
                24
            } else {
                pcapfmt::RECORD_HEADER_LEN
            },
            swap_lengths,
            max_caplen,
            link,
        });
        self.modified = modified;
        self.format = Format::Pcap {
            nanos,
            big_endian: endian == Endian::Big,
            version: (major, minor),
        };
        self.interfaces.push(InterfaceInfo {
            link,
            snaplen,
            ts_units_per_second: if nanos { 1_000_000_000 } else { 1_000_000 },
            ts_offset_s: 0,
            name: None,
            section: 0,
        });
        Ok(())
    }

    pub(super) fn next_pcap(&mut self, p: PcapState) -> Result<Option<FrameMeta>, CapError> {
        let rec_off = self.offset;
        let mut h = [0u8; 24];
        let hl = p.record_header_len;
        let got = read_full(&mut self.reader, &mut h[..hl]).map_err(|e| self.read_err(e))?;
        self.offset += as_u64(got);
        if got == 0 {
            return Ok(None);
        }
        RECORD_HEADER.whole(rec_off, as_u64(hl), as_u64(got))?;
        let e = p.endian;
        let secs = e.u32(a4(&h, 0));
        let frac = e.u32(a4(&h, 4));
        let mut caplen = e.u32(a4(&h, 8));
        let mut wire_len = e.u32(a4(&h, 12));
        let swap = match p.swap_lengths {
            SwapLengths::Never => false,
            SwapLengths::Always => true,
            SwapLengths::WhenCaplenBigger => caplen > wire_len,
        };
        if swap {
            std::mem::swap(&mut caplen, &mut wire_len);
        }
        if caplen > p.max_caplen {
            return Err(CapError::Corrupt {
                what: "pcap record",
                offset: rec_off,
                reason: format!(
                    "captured length {caplen} is more than the maximum of {}",
                    p.max_caplen
                ),
                bytes_lost: self.lost_from(rec_off),
            });
        }
        let n = as_usize(caplen);
        let data_off = self.offset;
        let got = self.read_into_buf(n)?;
        RECORD.whole(data_off, u64::from(caplen), as_u64(got))?;
        let frac_ns = if p.nanos {
            i64::from(frac)
        } else {
            i64::from(frac) * 1_000
        };
        Ok(Some(FrameMeta {
            ts_ns: i64::from(secs) * 1_000_000_000 + frac_ns,
            interface: 0,
            link: p.link,
            wire_len,
            start: 0,
            len: n,
        }))
    }
}

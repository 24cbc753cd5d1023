//! pcapng: sections, interface description blocks and the packet blocks (enhanced,
//! simple, obsolete) of any number of interfaces, in either byte order. Every block's
//! length is checked (minimum, multiple of 4, [`MAX_BLOCK_LEN`], trailer equal to the
//! header) before its body is used; other block types are skipped. Damage is reported
//! at the offset of the block it is in.

use std::io::Read;

use super::bytes::{Endian, a2, a4, as_u64, as_usize, read_full};
use super::{
    CapError, CaptureReader, Format, FrameMeta, InterfaceInfo, MAX_BLOCK_LEN, Piece, State,
};
use crate::linktype::LinkType;

/// A block's header, and the whole block, as a cut-short file names them.
const BLOCK_HEADER: Piece = Piece::new("a pcapng block header", "block header");
const BLOCK: Piece = Piece::new("a pcapng block", "block");

pub(super) const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
pub(super) const PCAPNG_IDB: u32 = 1;
pub(super) const PCAPNG_PB: u32 = 2;
pub(super) const PCAPNG_SPB: u32 = 3;
pub(super) const PCAPNG_EPB: u32 = 6;
pub(super) const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const NS_PER_SEC: i128 = 1_000_000_000;

/// Converts a pcapng/pcap timestamp in `units` per second (plus an offset in seconds)
/// into nanoseconds since the epoch, saturating.
pub(super) fn ts_to_ns(ts: u64, units: u64, offset_s: i64) -> i64 {
    let ns: i128 = match units {
        1_000_000_000 => i128::from(ts),
        // 0 cannot come from a file (see ng_interface); treat it as the default.
        1_000_000 | 0 => i128::from(ts) * 1_000,
        u => {
            let secs = ts / u;
            let frac = u128::from(ts % u) * 1_000_000_000 / u128::from(u);
            i128::from(secs) * NS_PER_SEC + i128::try_from(frac).unwrap_or(0)
        }
    };
    let total = ns + i128::from(offset_s) * NS_PER_SEC;
    i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX })
}

/// Parses pcapng options; calls `f(code, value)` for each until `opt_endofopt` or the end.
fn for_each_option(
    opts: &[u8],
    endian: Endian,
    mut f: impl FnMut(u16, &[u8]),
) -> Result<(), String> {
    let mut at = 0usize;
    while opts.len().saturating_sub(at) >= 4 {
        let code = endian.u16(a2(opts, at));
        let len = usize::from(endian.u16(a2(opts, at + 2)));
        if code == 0 {
            return Ok(());
        }
        let left = opts.len() - at - 4;
        if len > left {
            return Err(format!(
                "option {code} has length {len}, which runs past the end of the block ({left} bytes left)"
            ));
        }
        let start = at + 4;
        f(code, opts.get(start..start + len).unwrap_or(&[]));
        // Values are padded to 4 bytes; tolerate a missing pad after the last option.
        at = start + len.next_multiple_of(4).min(left);
    }
    Ok(())
}

#[derive(Debug)]
pub(super) struct NgState {
    endian: Endian,
    /// Global interface numbers of the current section's IDBs, by local index.
    section_ifaces: Vec<u32>,
    section: u32,
}

/// What [`CaptureReader::prefetch_interfaces`] found after the leading IDBs.
#[derive(Debug)]
pub(super) enum Pending {
    /// A block read into `buf`, not yet handled.
    Block(u64, BlockHead),
    End,
    Error(CapError),
}

/// A checked pcapng block header.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlockHead {
    btype: u32,
    len: u32,
    /// Bytes of the block already read (8, or 12 for an SHB).
    head_len: usize,
    endian: Endian,
}

impl<R: Read> CaptureReader<R> {
    pub(super) fn read_first_shb(&mut self, got: usize) -> Result<(), CapError> {
        let mut h = [0u8; 12];
        h[..4].copy_from_slice(&PCAPNG_SHB.to_le_bytes());
        self.read_header_rest(&mut h, got, "pcapng", 28)?;
        let endian = match u32::from_le_bytes(a4(&h, 8)) {
            BYTE_ORDER_MAGIC => Endian::Little,
            0x4D3C_2B1A => Endian::Big,
            other => {
                return Err(CapError::NotCapture {
                    detail: format!(
                        "pcapng byte-order magic is 0x{other:08x}, not 0x{BYTE_ORDER_MAGIC:08x}"
                    ),
                });
            }
        };
        let len = endian.u32(a4(&h, 4));
        if len < 28 || len % 4 != 0 || len > MAX_BLOCK_LEN {
            return Err(CapError::BadHeader {
                what: "pcapng",
                reason: format!("section header block length {len} is invalid"),
            });
        }
        let rest = as_usize(len) - 12;
        self.grow_buf(rest);
        let body = self.buf.get_mut(..rest).unwrap_or_default();
        let more = read_full(&mut self.reader, body).map_err(|source| CapError::Read {
            offset: self.offset,
            source,
        })?;
        self.offset += as_u64(more);
        if more < rest {
            return Err(CapError::TruncatedHeader {
                what: "pcapng",
                got: 12 + as_u64(more),
                need: u64::from(len),
            });
        }
        let body = self.buf.get(..rest).unwrap_or_default();
        let trailer = endian.u32(a4(body, rest - 4));
        if trailer != len {
            return Err(CapError::BadHeader {
                what: "pcapng",
                reason: format!(
                    "section header block lengths don't match ({len} at the start, {trailer} at the end)"
                ),
            });
        }
        match parse_shb(body.get(..rest - 4).unwrap_or_default(), endian) {
            Ok(()) => {}
            Err(ShbError::Version(major, minor)) => {
                return Err(CapError::UnsupportedVersion {
                    format: "pcapng",
                    major,
                    minor,
                });
            }
            Err(ShbError::Option(reason)) => {
                return Err(CapError::BadHeader {
                    what: "pcapng",
                    reason,
                });
            }
        }
        let (major, minor) = (endian.u16(a2(body, 0)), endian.u16(a2(body, 2)));
        if minor != 0 {
            self.warn(format!(
                "pcapng version {major}.{minor} is not 1.0; read anyway"
            ));
        }
        self.state = State::PcapNg(NgState {
            endian,
            section_ifaces: Vec::new(),
            section: 0,
        });
        self.format = Format::PcapNg;
        self.prefetch_interfaces();
        Ok(())
    }

    pub(super) fn next_pcapng(&mut self) -> Result<Option<FrameMeta>, CapError> {
        loop {
            let block = match self.pending.take() {
                Some(Pending::Block(off, head)) => Some((off, head)),
                Some(Pending::End) => None,
                Some(Pending::Error(e)) => return Err(e),
                None => self.ng_read_block()?,
            };
            let Some((blk_off, head)) = block else {
                return Ok(None);
            };
            let body_len = as_usize(head.len).saturating_sub(head.head_len + 4);
            match head.btype {
                PCAPNG_SHB => self.ng_section(blk_off, body_len)?,
                PCAPNG_IDB => self.ng_interface(blk_off, body_len)?,
                PCAPNG_EPB | PCAPNG_PB => {
                    return self.ng_packet(head.btype, blk_off, body_len).map(Some);
                }
                PCAPNG_SPB => return self.ng_simple(blk_off, body_len).map(Some),
                _ => {}
            }
        }
    }

    /// After the first SHB: reads the interface description blocks that follow it, so
    /// that [`interfaces`](Self::interfaces) is filled in right after opening. The first
    /// other block (or damage, or the end) is kept for [`next_frame`](Self::next_frame).
    fn prefetch_interfaces(&mut self) {
        self.pending = Some(loop {
            match self.ng_read_block() {
                Ok(None) => break Pending::End,
                Err(e) => break Pending::Error(e),
                Ok(Some((off, head))) if head.btype == PCAPNG_IDB => {
                    let body_len = as_usize(head.len).saturating_sub(head.head_len + 4);
                    if let Err(e) = self.ng_interface(off, body_len) {
                        break Pending::Error(e);
                    }
                }
                Ok(Some((off, head))) => break Pending::Block(off, head),
            }
        });
    }

    /// Reads one whole block into `buf` (from the byte after its header; the trailer is
    /// checked). `None` at a clean end of file.
    fn ng_read_block(&mut self) -> Result<Option<(u64, BlockHead)>, CapError> {
        let blk_off = self.offset;
        let Some(head) = self.ng_block_head(blk_off)? else {
            return Ok(None);
        };
        let BlockHead {
            len,
            head_len,
            endian,
            ..
        } = head;
        let rest = as_usize(len).saturating_sub(head_len);
        let got = self.read_into_buf(rest)?;
        BLOCK.whole(blk_off, u64::from(len), as_u64(head_len + got))?;
        let trailer = endian.u32(a4(&self.buf, rest.saturating_sub(4)));
        if trailer != len {
            return Err(self.ng_corrupt(
                blk_off,
                format!("block lengths don't match ({len} at the start, {trailer} at the end)"),
            ));
        }
        Ok(Some((blk_off, head)))
    }

    /// Reads and checks a block's type and length (and, for an SHB, its byte-order
    /// magic, which sets the section's byte order). `None` at a clean end of file.
    fn ng_block_head(&mut self, blk_off: u64) -> Result<Option<BlockHead>, CapError> {
        let mut h = [0u8; 12];
        let got = read_full(&mut self.reader, &mut h[..8]).map_err(|e| self.read_err(e))?;
        self.offset += as_u64(got);
        if got == 0 {
            return Ok(None);
        }
        let is_shb = h[..4] == PCAPNG_SHB.to_le_bytes();
        let head_len = if is_shb { 12 } else { 8 };
        let mut present = got;
        if is_shb && got == 8 {
            let more = read_full(&mut self.reader, &mut h[8..12]).map_err(|e| self.read_err(e))?;
            self.offset += as_u64(more);
            present += more;
        }
        BLOCK_HEADER.whole(blk_off, as_u64(head_len), as_u64(present))?;
        if is_shb {
            let endian = match u32::from_le_bytes(a4(&h, 8)) {
                BYTE_ORDER_MAGIC => Endian::Little,
                0x4D3C_2B1A => Endian::Big,
                _ => {
                    return Err(self.ng_corrupt(
                        blk_off,
                        format!(
                            "section header block has an unknown byte-order magic 0x{:08x}",
                            u32::from_le_bytes(a4(&h, 8))
                        ),
                    ));
                }
            };
            if let State::PcapNg(ng) = &mut self.state {
                ng.endian = endian;
            }
        }
        let State::PcapNg(ng) = &self.state else {
            return Ok(None);
        };
        let endian = ng.endian;
        let btype = endian.u32(a4(&h, 0));
        let len = endian.u32(a4(&h, 4));
        if len < 12 {
            return Err(self.ng_corrupt(
                blk_off,
                format!("block length {len} is less than the minimum of 12"),
            ));
        }
        if len % 4 != 0 {
            return Err(self.ng_corrupt(
                blk_off,
                format!("block length {len} is not a multiple of 4"),
            ));
        }
        if len > MAX_BLOCK_LEN {
            return Err(self.ng_corrupt(
                blk_off,
                format!("block length {len} is more than the maximum of {MAX_BLOCK_LEN}"),
            ));
        }
        let min = match btype {
            PCAPNG_SHB => 28,
            PCAPNG_IDB => 20,
            PCAPNG_EPB | PCAPNG_PB => 32,
            PCAPNG_SPB => 16,
            _ => 12,
        };
        if len < min {
            return Err(self.ng_corrupt(
                blk_off,
                format!(
                    "block length {len} is less than the minimum of {min} for {}",
                    block_name(btype)
                ),
            ));
        }
        Ok(Some(BlockHead {
            btype,
            len,
            head_len,
            endian,
        }))
    }

    fn ng_corrupt(&self, offset: u64, reason: String) -> CapError {
        CapError::Corrupt {
            what: "pcapng block",
            offset,
            reason,
            bytes_lost: self.lost_from(offset),
        }
    }

    fn ng_section(&mut self, blk_off: u64, body_len: usize) -> Result<(), CapError> {
        let State::PcapNg(ng) = &self.state else {
            return Ok(());
        };
        let endian = ng.endian;
        let body = self.buf.get(..body_len).unwrap_or_default();
        match parse_shb(body, endian) {
            Ok(()) => {}
            Err(ShbError::Version(major, minor)) => {
                return Err(self.ng_corrupt(
                    blk_off,
                    format!("section header block has unsupported pcapng version {major}.{minor}"),
                ));
            }
            Err(ShbError::Option(reason)) => {
                return Err(self.ng_corrupt(blk_off, format!("section header block: {reason}")));
            }
        }
        let (major, minor) = (endian.u16(a2(body, 0)), endian.u16(a2(body, 2)));
        if let State::PcapNg(ng) = &mut self.state {
            ng.section_ifaces.clear();
            ng.section = ng.section.saturating_add(1);
        }
        if minor != 0 {
            self.warn(format!(
                "pcapng version {major}.{minor} is not 1.0; read anyway"
            ));
        }
        Ok(())
    }

    fn ng_interface(&mut self, blk_off: u64, body_len: usize) -> Result<(), CapError> {
        let State::PcapNg(ng) = &self.state else {
            return Ok(());
        };
        let (endian, section) = (ng.endian, ng.section);
        let body = self.buf.get(..body_len).unwrap_or_default();
        let link = LinkType(u32::from(endian.u16(a2(body, 0))));
        let snaplen = endian.u32(a4(body, 4));
        let mut units = 1_000_000u64;
        let mut offset_s = 0i64;
        let mut name = None;
        let mut odd = Vec::new();
        let res = for_each_option(
            body.get(8..).unwrap_or_default(),
            endian,
            |code, v| match code {
                2 => name = Some(String::from_utf8_lossy(v).trim_end_matches('\0').to_owned()),
                9 => {
                    if let [r] = v {
                        let exp = u32::from(r & 0x7F);
                        let base: u64 = if r & 0x80 != 0 { 2 } else { 10 };
                        units = base.checked_pow(exp).unwrap_or(u64::MAX);
                    } else {
                        odd.push(format!("if_tsresol option of {} bytes ignored", v.len()));
                    }
                }
                14 => {
                    if let Ok(b) = <[u8; 8]>::try_from(v) {
                        offset_s = endian.i64(b);
                    } else {
                        odd.push(format!("if_tsoffset option of {} bytes ignored", v.len()));
                    }
                }
                _ => {}
            },
        );
        if let Err(reason) = res {
            return Err(self.ng_corrupt(blk_off, format!("interface description block: {reason}")));
        }
        let Ok(global) = u32::try_from(self.interfaces.len()) else {
            return Err(self.ng_corrupt(blk_off, "too many interfaces".to_owned()));
        };
        for w in odd {
            self.warn(format!("interface {global}: {w}"));
        }
        self.interfaces.push(InterfaceInfo {
            link,
            snaplen,
            ts_units_per_second: units,
            ts_offset_s: offset_s,
            name,
            section,
        });
        if let State::PcapNg(ng) = &mut self.state {
            ng.section_ifaces.push(global);
        }
        Ok(())
    }

    /// The global interface number for a section-local one, or a corruption error.
    fn ng_iface(&self, blk_off: u64, local: u32) -> Result<(u32, &InterfaceInfo), CapError> {
        let State::PcapNg(ng) = &self.state else {
            return Err(self.ng_corrupt(blk_off, "not a pcapng file".to_owned()));
        };
        let found = ng
            .section_ifaces
            .get(as_usize(local))
            .and_then(|&g| self.interfaces.get(as_usize(g)).map(|i| (g, i)));
        found.ok_or_else(|| {
            let n = ng.section_ifaces.len();
            self.ng_corrupt(
                blk_off,
                format!(
                    "packet block refers to interface {local}, but the section has defined {n} interface{}",
                    if n == 1 { "" } else { "s" }
                ),
            )
        })
    }

    fn ng_packet(&self, btype: u32, blk_off: u64, body_len: usize) -> Result<FrameMeta, CapError> {
        let State::PcapNg(ng) = &self.state else {
            return Err(self.ng_corrupt(blk_off, "not a pcapng file".to_owned()));
        };
        let e = ng.endian;
        let b = self.buf.get(..body_len).unwrap_or_default();
        let local = if btype == PCAPNG_EPB {
            e.u32(a4(b, 0))
        } else {
            u32::from(e.u16(a2(b, 0)))
        };
        let ts = (u64::from(e.u32(a4(b, 4))) << 32) | u64::from(e.u32(a4(b, 8)));
        let caplen = e.u32(a4(b, 12));
        let wire_len = e.u32(a4(b, 16));
        if as_usize(caplen) > body_len.saturating_sub(20) {
            return Err(self.ng_corrupt(
                blk_off,
                format!(
                    "block length {} of {} is too small for {caplen} bytes of packet data",
                    body_len + 12,
                    block_name(btype)
                ),
            ));
        }
        let (interface, info) = self.ng_iface(blk_off, local)?;
        Ok(FrameMeta {
            ts_ns: ts_to_ns(ts, info.ts_units_per_second, info.ts_offset_s),
            interface,
            link: info.link,
            wire_len,
            start: 20,
            len: as_usize(caplen),
        })
    }

    fn ng_simple(&self, blk_off: u64, body_len: usize) -> Result<FrameMeta, CapError> {
        let State::PcapNg(ng) = &self.state else {
            return Err(self.ng_corrupt(blk_off, "not a pcapng file".to_owned()));
        };
        let wire_len = ng.endian.u32(a4(&self.buf, 0));
        let (interface, info) = self.ng_iface(blk_off, 0)?;
        let mut len = as_usize(wire_len).min(body_len.saturating_sub(4));
        if info.snaplen != 0 {
            len = len.min(as_usize(info.snaplen));
        }
        Ok(FrameMeta {
            ts_ns: 0,
            interface,
            link: info.link,
            wire_len,
            start: 4,
            len,
        })
    }
}

enum ShbError {
    Version(u16, u16),
    Option(String),
}

/// Checks an SHB body (after the byte-order magic, without the trailer).
fn parse_shb(body: &[u8], endian: Endian) -> Result<(), ShbError> {
    let major = endian.u16(a2(body, 0));
    let minor = endian.u16(a2(body, 2));
    if major != 1 {
        return Err(ShbError::Version(major, minor));
    }
    for_each_option(body.get(12..).unwrap_or_default(), endian, |_, _| {}).map_err(ShbError::Option)
}

fn block_name(btype: u32) -> &'static str {
    match btype {
        PCAPNG_SHB => "a section header block",
        PCAPNG_IDB => "an interface description block",
        PCAPNG_PB => "a packet block",
        PCAPNG_SPB => "a simple packet block",
        PCAPNG_EPB => "an enhanced packet block",
        _ => "a block",
    }
}

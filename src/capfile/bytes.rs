//! Byte-level helpers of the capture-file reader: the file's byte order, fixed-size
//! reads out of a slice (zero-filled past its end, so they never panic) and a `read`
//! loop that stops only at the end of the input.

use std::io::{self, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endian {
    Little,
    Big,
}

impl Endian {
    pub(super) fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }
    pub(super) fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
    pub(super) fn i64(self, b: [u8; 8]) -> i64 {
        match self {
            Endian::Little => i64::from_le_bytes(b),
            Endian::Big => i64::from_be_bytes(b),
        }
    }
}

pub(super) fn a2(b: &[u8], at: usize) -> [u8; 2] {
    let mut out = [0u8; 2];
    if let Some(s) = b.get(at..at.saturating_add(2)) {
        out.copy_from_slice(s);
    }
    out
}
pub(super) fn a4(b: &[u8], at: usize) -> [u8; 4] {
    let mut out = [0u8; 4];
    if let Some(s) = b.get(at..at.saturating_add(4)) {
        out.copy_from_slice(s);
    }
    out
}
/// Reads until `buf` is full or the reader is at its end; returns the count read.
pub(super) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        if rest.is_empty() {
            break;
        }
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n = n.saturating_add(k).min(buf.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub(super) fn as_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

pub(super) fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

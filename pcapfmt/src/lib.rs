//! The classic pcap file format, owned in one place: the magic numbers (microsecond,
//! nanosecond and the modified-pcap variant, as they read in either byte order), the
//! 24-byte file header and 16-byte record header, a writer, and the link-layer type
//! numbers ([`LinkType`]).
//!
//! Invariants: everything written here is little-endian, version 2.4, zone 0, sigfigs 0;
//! a record's captured length never exceeds its wire length nor the file's snap length.
//! The crate uses std only (the fuzz targets and the traffic generator depend on it).

// Product code keeps its functions short (clippy's default: 100 lines); tests may
// spell out a long scenario.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

pub mod linktype;
mod writer;

pub use linktype::LinkType;
pub use writer::PcapWriter;

/// Magic of a pcap file with microsecond timestamps (as read in the writer's byte order).
pub const MAGIC_MICROS: u32 = 0xA1B2_C3D4;
/// Magic of a pcap file with nanosecond timestamps.
pub const MAGIC_NANOS: u32 = 0xA1B2_3C4D;
/// Magic of Alexey Kuznetzov's modified pcap (microseconds, 24-byte record headers).
pub const MAGIC_MODIFIED: u32 = 0xA1B2_CD34;
/// Every classic pcap magic; a file written on a machine of the other byte order
/// starts with one of them byte-swapped.
pub const MAGICS: [u32; 3] = [MAGIC_MICROS, MAGIC_NANOS, MAGIC_MODIFIED];

/// Format version written in the file header (major, minor).
pub const VERSION: (u16, u16) = (2, 4);
/// Length of the file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Length of a (standard) record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// What the first four bytes of a file say, when they are a classic pcap magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Magic {
    /// Timestamps' fraction is nanoseconds (else microseconds).
    pub nanos: bool,
    /// The modified-pcap variant (longer record headers).
    pub modified: bool,
    /// The file is big-endian (its magic reads byte-swapped in little-endian).
    pub big_endian: bool,
}

impl Magic {
    /// Recognises a classic pcap magic in either byte order, or `None`.
    #[must_use]
    pub fn parse(first4: [u8; 4]) -> Option<Magic> {
        let kind = |m: u32| match m {
            MAGIC_MICROS => Some((false, false)),
            MAGIC_NANOS => Some((true, false)),
            MAGIC_MODIFIED => Some((false, true)),
            _ => None,
        };
        let (little, big) = (u32::from_le_bytes(first4), u32::from_be_bytes(first4));
        kind(little)
            .map(|k| (k, false))
            .or_else(|| kind(big).map(|k| (k, true)))
            .map(|((nanos, modified), big_endian)| Magic {
                nanos,
                modified,
                big_endian,
            })
    }
}

/// The little-endian file header: magic (nanosecond or microsecond), version 2.4,
/// zone and sigfigs 0, snap length and link type.
#[must_use]
pub fn file_header(nanos: bool, snaplen: u32, link: LinkType) -> [u8; FILE_HEADER_LEN] {
    let magic = if nanos { MAGIC_NANOS } else { MAGIC_MICROS };
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..4].copy_from_slice(&magic.to_le_bytes());
    h[4..6].copy_from_slice(&VERSION.0.to_le_bytes());
    h[6..8].copy_from_slice(&VERSION.1.to_le_bytes());
    // thiszone (8..12) and sigfigs (12..16) stay 0.
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&link.0.to_le_bytes());
    h
}

/// The little-endian record header: seconds, fraction (µs or ns as the file says),
/// captured length, wire length.
#[must_use]
pub fn record_header(secs: u32, frac: u32, cap_len: u32, wire_len: u32) -> [u8; RECORD_HEADER_LEN] {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0..4].copy_from_slice(&secs.to_le_bytes());
    h[4..8].copy_from_slice(&frac.to_le_bytes());
    h[8..12].copy_from_slice(&cap_len.to_le_bytes());
    h[12..16].copy_from_slice(&wire_len.to_le_bytes());
    h
}

#[cfg(test)]
mod tests;

//! Streaming reader for pcap and pcapng capture files, in pure Rust (no libpcap).
//!
//! [`CaptureReader`] reads the file header when it is created and then hands out one
//! [`Frame`] at a time from [`CaptureReader::next_frame`]. Memory stays constant: the
//! frame data lives in one buffer that is reused for every frame (so a [`Frame`] borrows
//! the reader until the next call).
//!
//! Formats:
//! * pcap, microsecond (`a1b2c3d4`) and nanosecond (`a1b23c4d`) magic, both byte orders,
//!   and the "modified" pcap of Alexey Kuznetsov's patches (`a1b2cd34`, 24-byte record
//!   headers). Like Wireshark we refuse versions below 2.0 and read any other version
//!   (with a warning when it is not 2.4).
//! * pcapng, both byte orders, any number of sections and interfaces (which may differ in
//!   link type, snapshot length and timestamp resolution). Enhanced, simple and obsolete
//!   packet blocks carry frames; all other blocks are checked for sane lengths and skipped.
//!
//! Errors distinguish a file we cannot read at all (bad or missing header) from damage
//! found later ([`CapError::is_damage`]): the frames returned before damage are good.
//! Damage is either a file cut short at its end ([`CapError::is_truncation`]) or
//! corruption in the middle.
//!
//! Layout: this file holds the public types ([`Frame`], [`Format`], [`InterfaceInfo`],
//! [`CapError`]), the reader's state and the format sniffing of [`CaptureReader::new`];
//! `pcap` reads classic pcap records, `pcapng` reads pcapng blocks, `bytes` has the
//! byte-order and read helpers both use. Every reader method bounds its reads by the
//! bytes present and reports damage as [`CapError`] (never a panic).

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::linktype::LinkType;

// The submodules are named by path so that the fuzz crate, which includes this file
// by path, finds them too.
#[path = "capfile/bytes.rs"]
mod bytes;
#[path = "capfile/pcap.rs"]
mod pcap;
#[path = "capfile/pcapng.rs"]
mod pcapng;

use bytes::{Endian, as_u64, read_full};
use pcap::{PcapState, SwapLengths};
use pcapng::{NgState, PCAPNG_SHB, Pending};

/// Largest record wireshark accepts for most link types (`WTAP_MAX_PACKET_SIZE_STANDARD`).
pub const MAX_PACKET_STANDARD: u32 = 262_144;
/// Largest pcapng block (and, for USB/D-Bus/EBHSCR pcap files, record) we accept.
/// Anything bigger is treated as corruption; it also bounds the buffer we allocate.
pub const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;
/// At most this many warnings are kept (one more says the rest were dropped).
const MAX_WARNINGS: usize = 64;
/// Buffer size of the `BufReader` that [`CaptureReader::open`] uses.
const FILE_BUF_SIZE: usize = 64 * 1024;

/// One captured packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Nanoseconds since the Unix epoch, UTC (saturated into `i64`). Simple packet blocks
    /// have no timestamp; they get 0.
    pub ts_ns: i64,
    /// Index into [`CaptureReader::interfaces`]: 0 for pcap; for pcapng a running number
    /// over all interface description blocks of all sections.
    pub interface: u32,
    pub link: LinkType,
    /// Length of the packet on the wire.
    pub wire_len: u32,
    /// The captured bytes (may be shorter or, in odd files, longer than `wire_len`).
    pub data: &'a [u8],
}

/// The kind of file being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap (including the "modified" variant, see [`CaptureReader::is_modified_pcap`]).
    Pcap {
        nanos: bool,
        big_endian: bool,
        version: (u16, u16),
    },
    PcapNg,
}

/// One capture interface: the single one of a pcap file or one pcapng IDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub link: LinkType,
    /// Snapshot length from the header / IDB (0 = no limit in pcapng).
    pub snaplen: u32,
    /// Timestamp units per second: 1e6 or 1e9 for pcap; from `if_tsresol` for pcapng
    /// (default 1e6; `u64::MAX` when the option is out of range, like Wireshark).
    pub ts_units_per_second: u64,
    /// Seconds added to every timestamp (`if_tsoffset`; 0 for pcap).
    pub ts_offset_s: i64,
    /// `if_name`, when given.
    pub name: Option<String>,
    /// pcapng section (0-based) the interface belongs to; 0 for pcap.
    pub section: u32,
}

/// Why a capture could not be read (or could not be read to its end).
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    #[error("no such file")]
    NotFound,
    #[error("is a directory, not a capture file")]
    IsDirectory,
    #[error("cannot open: {source}")]
    Open {
        #[source]
        source: io::Error,
    },
    #[error("read error at offset {offset}: {source}")]
    Read {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("file is empty (0 bytes)")]
    Empty,
    /// The first bytes are no pcap or pcapng magic.
    #[error("not a pcap or pcapng file ({detail})")]
    NotCapture { detail: String },
    /// The file ends inside its header.
    #[error("truncated {what} header: {got} of {need} bytes")]
    TruncatedHeader {
        what: &'static str,
        got: u64,
        need: u64,
    },
    #[error("unsupported {format} version {major}.{minor}")]
    UnsupportedVersion {
        format: &'static str,
        major: u16,
        minor: u16,
    },
    /// The header is complete but unusable.
    #[error("invalid {what} header: {reason}")]
    BadHeader { what: &'static str, reason: String },
    /// Damage: the file ends in the middle of a record or block.
    #[error(
        "cut short in the middle of {what} at offset {offset}: {unit} needs {needed} bytes, only {present} present ({present} bytes lost)"
    )]
    Truncated {
        what: &'static str,
        unit: &'static str,
        offset: u64,
        needed: u64,
        present: u64,
    },
    /// Damage: a record or block that cannot be right.
    #[error("corrupt {what} at offset {offset}: {reason}")]
    Corrupt {
        what: &'static str,
        offset: u64,
        reason: String,
        bytes_lost: Option<u64>,
    },
}

/// A piece of a capture file that may be found cut short, as the error names it: the
/// `unit` whose length a read needs, which holds `what`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    what: &'static str,
    unit: &'static str,
}

impl Piece {
    const fn new(what: &'static str, unit: &'static str) -> Self {
        Piece { what, unit }
    }

    /// Ok when all `needed` bytes of the piece at `offset` were read; else the file is cut
    /// short there, with `present` bytes of it. On every record's path: one comparison,
    /// the error is made out of line.
    #[inline]
    fn whole(self, offset: u64, needed: u64, present: u64) -> Result<(), CapError> {
        if present < needed {
            return Err(self.cut_short(offset, needed, present));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn cut_short(self, offset: u64, needed: u64, present: u64) -> CapError {
        CapError::Truncated {
            what: self.what,
            unit: self.unit,
            offset,
            needed,
            present,
        }
    }
}

impl CapError {
    /// True when the error is damage found after the header (the frames returned before
    /// it are good; the caller keeps them).
    #[must_use]
    pub fn is_damage(&self) -> bool {
        matches!(self, CapError::Truncated { .. } | CapError::Corrupt { .. })
    }

    /// True when the damage is a file cut short at the end (a power cut while writing),
    /// as opposed to corruption in the middle.
    #[must_use]
    pub fn is_truncation(&self) -> bool {
        matches!(self, CapError::Truncated { .. })
    }

    /// For damage (and read errors): the byte offset where it starts.
    #[must_use]
    pub fn offset(&self) -> Option<u64> {
        match self {
            CapError::Truncated { offset, .. }
            | CapError::Corrupt { offset, .. }
            | CapError::Read { offset, .. } => Some(*offset),
            _ => None,
        }
    }

    /// For damage: how many bytes from [`offset`](Self::offset) on were not read as frames.
    /// For truncation that is the partial record that is present; for corruption the rest
    /// of the file when its length is known.
    #[must_use]
    pub fn bytes_lost(&self) -> Option<u64> {
        match self {
            CapError::Truncated { present, .. } => Some(*present),
            CapError::Corrupt { bytes_lost, .. } => *bytes_lost,
            _ => None,
        }
    }
}

#[derive(Debug)]
enum State {
    Pcap(PcapState),
    PcapNg(NgState),
}

/// Where the next frame is, in `buf`.
#[derive(Debug, Clone, Copy)]
struct FrameMeta {
    ts_ns: i64,
    interface: u32,
    link: LinkType,
    wire_len: u32,
    start: usize,
    len: usize,
}

/// Streaming reader for one pcap or pcapng capture.
#[derive(Debug)]
pub struct CaptureReader<R: Read> {
    reader: R,
    state: State,
    format: Format,
    modified: bool,
    interfaces: Vec<InterfaceInfo>,
    warnings: Vec<String>,
    buf: Vec<u8>,
    offset: u64,
    file_len: Option<u64>,
    done: bool,
    pending: Option<Pending>,
}

impl CaptureReader<BufReader<File>> {
    /// Opens a file and reads its header.
    ///
    /// # Errors
    /// Not found, a directory, unreadable, empty, not a capture, truncated or invalid header.
    pub fn open(path: &Path) -> Result<Self, CapError> {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CapError::NotFound,
            _ => CapError::Open { source: e },
        })?;
        if meta.is_dir() {
            return Err(CapError::IsDirectory);
        }
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CapError::NotFound,
            _ => CapError::Open { source: e },
        })?;
        let len = meta.is_file().then_some(meta.len());
        if len == Some(0) {
            return Err(CapError::Empty);
        }
        Self::new_inner(BufReader::with_capacity(FILE_BUF_SIZE, file), len)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads and validates the file header (the pcap global header or the first pcapng
    /// section header block).
    ///
    /// # Errors
    /// Empty input, not a capture, truncated or invalid header, read errors.
    pub fn new(reader: R) -> Result<Self, CapError> {
        Self::new_inner(reader, None)
    }

    fn new_inner(mut reader: R, file_len: Option<u64>) -> Result<Self, CapError> {
        let mut magic = [0u8; 4];
        let got = read_full(&mut reader, &mut magic)
            .map_err(|source| CapError::Read { offset: 0, source })?;
        if got == 0 {
            return Err(CapError::Empty);
        }
        let mut r = CaptureReader {
            reader,
            state: State::Pcap(PcapState {
                endian: Endian::Little,
                nanos: false,
                record_header_len: pcapfmt::RECORD_HEADER_LEN,
                swap_lengths: SwapLengths::Never,
                max_caplen: MAX_PACKET_STANDARD,
                link: LinkType(0),
            }),
            format: Format::PcapNg,
            modified: false,
            interfaces: Vec::new(),
            warnings: Vec::new(),
            buf: Vec::new(),
            offset: as_u64(got),
            file_len,
            done: false,
            pending: None,
        };
        let little = u32::from_le_bytes(magic);
        let big = u32::from_be_bytes(magic);
        let pcap = |m: u32| match m {
            pcapfmt::MAGIC_MICROS => Some((false, false)),
            pcapfmt::MAGIC_NANOS => Some((true, false)),
            pcapfmt::MAGIC_MODIFIED => Some((false, true)),
            _ => None,
        };
        if let Some((nanos, modified)) = pcap(little) {
            r.read_pcap_header(magic, Endian::Little, nanos, modified, got)?;
        } else if let Some((nanos, modified)) = pcap(big) {
            r.read_pcap_header(magic, Endian::Big, nanos, modified, got)?;
        } else if little == PCAPNG_SHB {
            r.read_first_shb(got)?;
        } else {
            let prefix_of_magic = got < 4
                && [
                    pcapfmt::MAGIC_MICROS.to_le_bytes(),
                    pcapfmt::MAGIC_MICROS.to_be_bytes(),
                    pcapfmt::MAGIC_NANOS.to_le_bytes(),
                    pcapfmt::MAGIC_NANOS.to_be_bytes(),
                    pcapfmt::MAGIC_MODIFIED.to_le_bytes(),
                    pcapfmt::MAGIC_MODIFIED.to_be_bytes(),
                    PCAPNG_SHB.to_le_bytes(),
                ]
                .iter()
                .any(|m| m.starts_with(&magic[..got]));
            if prefix_of_magic {
                let ng = magic[0] == 0x0A;
                return Err(CapError::TruncatedHeader {
                    what: if ng { "pcapng" } else { "pcap" },
                    got: as_u64(got),
                    need: if ng { 28 } else { 24 },
                });
            }
            let shown: Vec<String> = magic[..got].iter().map(|b| format!("0x{b:02x}")).collect();
            return Err(CapError::NotCapture {
                detail: format!("starts with {}", shown.join(" ")),
            });
        }
        Ok(r)
    }

    /// Sets the total length of the input, used to report how many bytes corruption
    /// made unreadable ([`CapError::bytes_lost`]). [`open`](CaptureReader::open) sets it.
    pub fn set_total_len(&mut self, len: Option<u64>) {
        self.file_len = len;
    }

    /// The kind of file.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// True for the "modified" pcap format (magic `a1b2cd34`, 24-byte record headers).
    #[must_use]
    pub fn is_modified_pcap(&self) -> bool {
        self.modified
    }

    /// The interfaces seen so far, indexed by [`Frame::interface`]. A pcap file has one;
    /// for pcapng the list grows as interface description blocks are read.
    #[must_use]
    pub fn interfaces(&self) -> &[InterfaceInfo] {
        &self.interfaces
    }

    /// Bytes consumed from the input so far.
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        self.offset
    }

    /// Non-fatal oddities seen so far (the list grows while reading pcapng files).
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The next frame: `Ok(Some(frame))` for each packet, `Ok(None)` at a clean end of
    /// file. After an error or the end every later call returns `Ok(None)`.
    ///
    /// # Errors
    /// Damage (a truncated record or a corrupt block, see [`CapError::is_damage`]) or a read error.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CapError> {
        if self.done {
            return Ok(None);
        }
        let pcap = if let State::Pcap(p) = &self.state {
            Some(*p)
        } else {
            None
        };
        let res = match pcap {
            Some(p) => self.next_pcap(p),
            None => self.next_pcapng(),
        };
        match res {
            Ok(Some(m)) => {
                let data = self.buf.get(m.start..m.start + m.len).unwrap_or_default();
                Ok(Some(Frame {
                    ts_ns: m.ts_ns,
                    interface: m.interface,
                    link: m.link,
                    wire_len: m.wire_len,
                    data,
                }))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// Fills `h` after the 4-byte magic at its start (`got`: bytes read so far): a file
    /// that ends before `h` is full has a truncated `what` header that needs `need` bytes.
    fn read_header_rest(
        &mut self,
        h: &mut [u8],
        got: usize,
        what: &'static str,
        need: u64,
    ) -> Result<(), CapError> {
        let rest = h.get_mut(4..).unwrap_or_default();
        let more = read_full(&mut self.reader, rest).map_err(|source| CapError::Read {
            offset: self.offset,
            source,
        })?;
        self.offset += as_u64(more);
        let total = got + more;
        if total < h.len() {
            return Err(CapError::TruncatedHeader {
                what,
                got: as_u64(total),
                need,
            });
        }
        Ok(())
    }

    fn warn(&mut self, w: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(w);
        } else if self.warnings.len() == MAX_WARNINGS {
            self.warnings.push("further warnings suppressed".to_owned());
        }
    }

    fn grow_buf(&mut self, n: usize) {
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
    }

    /// Reads up to `n` bytes into the start of `buf` (grown to fit) and moves the offset
    /// past them; returns how many there were (fewer at the end of the file).
    fn read_into_buf(&mut self, n: usize) -> Result<usize, CapError> {
        self.grow_buf(n);
        let dst = self.buf.get_mut(..n).unwrap_or_default();
        let got = read_full(&mut self.reader, dst).map_err(|e| self.read_err(e))?;
        self.offset += as_u64(got);
        Ok(got)
    }

    fn lost_from(&self, offset: u64) -> Option<u64> {
        self.file_len.map(|l| l.saturating_sub(offset))
    }

    fn read_err(&self, source: io::Error) -> CapError {
        CapError::Read {
            offset: self.offset,
            source,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Pcap {
                nanos,
                big_endian,
                version: (major, minor),
            } => write!(
                f,
                "pcap {major}.{minor} ({}, {})",
                if *nanos { "ns" } else { "us" },
                if *big_endian {
                    "big-endian"
                } else {
                    "little-endian"
                }
            ),
            Format::PcapNg => f.write_str("pcapng"),
        }
    }
}

#[cfg(test)]
#[path = "capfile/tests.rs"]
mod tests;

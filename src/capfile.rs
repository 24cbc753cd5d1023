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

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::linktype::LinkType;

/// Largest record wireshark accepts for most link types (`WTAP_MAX_PACKET_SIZE_STANDARD`).
pub const MAX_PACKET_STANDARD: u32 = 262_144;
/// Largest pcapng block (and, for USB/D-Bus/EBHSCR pcap files, record) we accept.
/// Anything bigger is treated as corruption; it also bounds the buffer we allocate.
pub const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;
/// At most this many warnings are kept (one more says the rest were dropped).
const MAX_WARNINGS: usize = 64;
/// Buffer size of the `BufReader` that [`CaptureReader::open`] uses.
const FILE_BUF_SIZE: usize = 64 * 1024;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const NS_PER_SEC: i128 = 1_000_000_000;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }
    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
    fn i64(self, b: [u8; 8]) -> i64 {
        match self {
            Endian::Little => i64::from_le_bytes(b),
            Endian::Big => i64::from_be_bytes(b),
        }
    }
}

fn a2(b: &[u8], at: usize) -> [u8; 2] {
    let mut out = [0u8; 2];
    if let Some(s) = b.get(at..at.saturating_add(2)) {
        out.copy_from_slice(s);
    }
    out
}
fn a4(b: &[u8], at: usize) -> [u8; 4] {
    let mut out = [0u8; 4];
    if let Some(s) = b.get(at..at.saturating_add(4)) {
        out.copy_from_slice(s);
    }
    out
}
/// Reads until `buf` is full or the reader is at its end; returns the count read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
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

fn as_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Converts a pcapng/pcap timestamp in `units` per second (plus an offset in seconds)
/// into nanoseconds since the epoch, saturating.
fn ts_to_ns(ts: u64, units: u64, offset_s: i64) -> i64 {
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

#[derive(Debug, Clone, Copy)]
struct PcapState {
    endian: Endian,
    nanos: bool,
    record_header_len: usize,
    /// Versions before 2.3 (and 2.3 files where caplen > len) have caplen and len swapped.
    swap_lengths: SwapLengths,
    max_caplen: u32,
    link: LinkType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SwapLengths {
    Never,
    Always,
    WhenCaplenBigger,
}

#[derive(Debug)]
struct NgState {
    endian: Endian,
    /// Global interface numbers of the current section's IDBs, by local index.
    section_ifaces: Vec<u32>,
    section: u32,
}

#[derive(Debug)]
enum State {
    Pcap(PcapState),
    PcapNg(NgState),
}

/// What [`CaptureReader::prefetch_interfaces`] found after the leading IDBs.
#[derive(Debug)]
enum Pending {
    /// A block read into `buf`, not yet handled.
    Block(u64, BlockHead),
    End,
    Error(CapError),
}

/// A checked pcapng block header.
#[derive(Debug, Clone, Copy)]
struct BlockHead {
    btype: u32,
    len: u32,
    /// Bytes of the block already read (8, or 12 for an SHB).
    head_len: usize,
    endian: Endian,
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
                record_header_len: 16,
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
            0xA1B2_C3D4 => Some((false, false)),
            0xA1B2_3C4D => Some((true, false)),
            0xA1B2_CD34 => Some((false, true)),
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
                    0xA1B2_C3D4u32.to_le_bytes(),
                    0xA1B2_C3D4u32.to_be_bytes(),
                    0xA1B2_3C4Du32.to_le_bytes(),
                    0xA1B2_3C4Du32.to_be_bytes(),
                    0xA1B2_CD34u32.to_le_bytes(),
                    0xA1B2_CD34u32.to_be_bytes(),
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

    fn read_pcap_header(
        &mut self,
        magic: [u8; 4],
        endian: Endian,
        nanos: bool,
        modified: bool,
        got: usize,
    ) -> Result<(), CapError> {
        let mut h = [0u8; 24];
        h[..4].copy_from_slice(&magic);
        let more = read_full(&mut self.reader, &mut h[4..]).map_err(|source| CapError::Read {
            offset: self.offset,
            source,
        })?;
        self.offset += as_u64(more);
        let total = got + more;
        if total < 24 {
            return Err(CapError::TruncatedHeader {
                what: "pcap",
                got: as_u64(total),
                need: 24,
            });
        }
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
            record_header_len: if modified { 24 } else { 16 },
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

    fn read_first_shb(&mut self, got: usize) -> Result<(), CapError> {
        let mut h = [0u8; 12];
        h[..4].copy_from_slice(&PCAPNG_SHB.to_le_bytes());
        let more = read_full(&mut self.reader, &mut h[4..]).map_err(|source| CapError::Read {
            offset: self.offset,
            source,
        })?;
        self.offset += as_u64(more);
        let total = got + more;
        if total < 12 {
            return Err(CapError::TruncatedHeader {
                what: "pcapng",
                got: as_u64(total),
                need: 28,
            });
        }
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

    fn lost_from(&self, offset: u64) -> Option<u64> {
        self.file_len.map(|l| l.saturating_sub(offset))
    }

    fn read_err(&self, source: io::Error) -> CapError {
        CapError::Read {
            offset: self.offset,
            source,
        }
    }

    fn next_pcap(&mut self, p: PcapState) -> Result<Option<FrameMeta>, CapError> {
        let rec_off = self.offset;
        let mut h = [0u8; 24];
        let hl = p.record_header_len;
        let got = read_full(&mut self.reader, &mut h[..hl]).map_err(|e| self.read_err(e))?;
        self.offset += as_u64(got);
        if got == 0 {
            return Ok(None);
        }
        if got < hl {
            return Err(CapError::Truncated {
                what: "a packet header",
                unit: "record header",
                offset: rec_off,
                needed: as_u64(hl),
                present: as_u64(got),
            });
        }
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
        self.grow_buf(n);
        let data_off = self.offset;
        let dst = self.buf.get_mut(..n).unwrap_or_default();
        let got = read_full(&mut self.reader, dst).map_err(|e| self.read_err(e))?;
        self.offset += as_u64(got);
        if got < n {
            return Err(CapError::Truncated {
                what: "a packet",
                unit: "record",
                offset: data_off,
                needed: u64::from(caplen),
                present: as_u64(got),
            });
        }
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

    fn next_pcapng(&mut self) -> Result<Option<FrameMeta>, CapError> {
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
        self.grow_buf(rest);
        let dst = self.buf.get_mut(..rest).unwrap_or_default();
        let got = read_full(&mut self.reader, dst).map_err(|e| self.read_err(e))?;
        self.offset += as_u64(got);
        if got < rest {
            return Err(CapError::Truncated {
                what: "a pcapng block",
                unit: "block",
                offset: blk_off,
                needed: u64::from(len),
                present: as_u64(head_len + got),
            });
        }
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
        if present < head_len {
            return Err(CapError::Truncated {
                what: "a pcapng block header",
                unit: "block header",
                offset: blk_off,
                needed: as_u64(head_len),
                present: as_u64(present),
            });
        }
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
#[allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    clippy::doc_markdown
)]
mod tests {
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
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
}

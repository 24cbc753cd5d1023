//! Convert: capture files to typed Parquet and to the seed's tshark CSV.
//!
//! Frames stream from [`crate::capfile`] through [`crate::decode`] into column
//! builders; every [`ROW_GROUP_ROWS`] rows become one Parquet row group, so memory
//! stays flat whatever the capture's size. Outputs are written atomically: a failed
//! run leaves no file that looks complete.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use polars::prelude::*;
use polars_arrow::array::{DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::bitmap::{Bitmap, MutableBitmap};
use polars_arrow::datatypes::IntegerType;
use polars_parquet::parquet::error::ParquetError;
use polars_parquet::write as pq;

use crate::capfile::{CapError, CaptureReader, Format};
use crate::decode::{self, Addr, FrameMeta, PacketRecord, TcpSeqTracker};
use crate::fsutil::AtomicFile;

/// Rows per Parquet row group (and per in-memory batch).
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// The seed's tshark CSV header, kept exactly so existing scripts keep working.
pub const CSV_HEADER: &str = "frame.number,_ws.col.Time,_ws.col.Source,_ws.col.Destination,_ws.col.Protocol,_ws.col.Length,_ws.col.Info,tcp.seq,ip.ttl";

/// Errors that stop a conversion.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A capture could not be opened or its header is unusable.
    #[error("{}: {source}", path.display())]
    Input { path: PathBuf, source: CapError },
    /// An output could not be written.
    #[error("{}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: writing Parquet: {source}", path.display())]
    Parquet { path: PathBuf, source: PolarsError },
    #[error("no input files given")]
    NoInput,
}

pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

/// What to write.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// Parquet output path.
    pub parquet: Option<PathBuf>,
    /// tshark-compatible CSV output path.
    pub csv: Option<PathBuf>,
    /// Show a progress bar (only when stderr is a terminal); otherwise log progress lines.
    pub progress: bool,
}

/// Damage found in one input after its header: the frames before it are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub path: PathBuf,
    /// One line: the reason, with the offset.
    pub message: String,
    /// True when the file was merely cut short at its end (power cut); false for corruption.
    pub truncation: bool,
    pub bytes_lost: Option<u64>,
    /// Frames read from this file before the damage.
    pub frames_before: u64,
}

/// The account of a conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertSummary {
    pub frames: u64,
    pub bytes: u64,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    /// Frames whose link type we do not decode, by link type. Never dropped: they are rows
    /// with only frame-level fields.
    pub undecoded_by_link: BTreeMap<u32, u64>,
    /// Frames with a decode error (malformed or cut short), link type supported.
    pub decode_errors: u64,
    /// Frames captured shorter than on the wire (snaplen) or cut inside a header.
    pub truncated: u64,
    pub damage: Vec<Damage>,
    /// Non-fatal oddities reported by the reader, prefixed with the file.
    pub warnings: Vec<String>,
}

impl ConvertSummary {
    /// True when some input was corrupt in the middle (not just cut short at the end).
    #[must_use]
    pub fn has_corruption(&self) -> bool {
        self.damage.iter().any(|d| !d.truncation)
    }
}

/// Converts `inputs` (in order, as one capture: frame numbers and TCP state carry on).
///
/// # Errors
/// An input that cannot be opened or has no valid header, or an output that cannot be
/// written. Damage after a header is not an error: it is in [`ConvertSummary::damage`].
pub fn convert(inputs: &[PathBuf], opts: &ConvertOptions) -> Result<ConvertSummary> {
    if inputs.is_empty() {
        return Err(ConvertError::NoInput);
    }
    // Open every input first, so a bad path fails before any output is created.
    let mut readers = Vec::with_capacity(inputs.len());
    let mut total_bytes = 0u64;
    for path in inputs {
        let reader = CaptureReader::open(path).map_err(|source| ConvertError::Input {
            path: path.clone(),
            source,
        })?;
        total_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        readers.push((path.clone(), reader));
    }
    let time_decimals = readers.first().map_or(6, |(_, r)| match r.format() {
        Format::Pcap { nanos: true, .. } => 9,
        Format::Pcap { .. } => 6,
        Format::PcapNg => {
            if r.interfaces()
                .iter()
                .any(|i| i.ts_units_per_second > 1_000_000)
            {
                9
            } else {
                6
            }
        }
    });

    let mut parquet = match &opts.parquet {
        Some(p) => Some(ParquetSink::create(p)?),
        None => None,
    };
    let mut csv = match &opts.csv {
        Some(p) => Some(CsvSink::create(p, time_decimals)?),
        None => None,
    };

    let progress = Progress::new(opts.progress, total_bytes);
    let mut summary = ConvertSummary::default();
    let mut tracker = TcpSeqTracker::new();
    let mut bytes_done = 0u64;
    for (path, mut reader) in readers {
        let frames_at_start = summary.frames;
        for w in reader.warnings() {
            summary.warnings.push(format!("{}: {w}", path.display()));
        }
        loop {
            let frame = match reader.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    summary.damage.push(Damage {
                        path: path.clone(),
                        message: e.to_string(),
                        truncation: e.is_truncation(),
                        bytes_lost: e.bytes_lost(),
                        frames_before: summary.frames - frames_at_start,
                    });
                    break;
                }
            };
            summary.frames += 1;
            let meta = FrameMeta {
                frame: summary.frames,
                ts_ns: frame.ts_ns,
                interface: frame.interface,
                wire_len: frame.wire_len,
            };
            let link = frame.link;
            let rec = decode::decode(meta, frame.data, link);
            let rel_seq = tracker.relative(&rec);
            summary.bytes += u64::from(rec.wire_len);
            summary.first_ts_ns.get_or_insert(rec.ts_ns);
            summary.last_ts_ns = Some(rec.ts_ns);
            if rec.truncated {
                summary.truncated += 1;
            }
            if rec.decode_error.is_some() {
                if decode::is_supported_link(link) {
                    summary.decode_errors += 1;
                } else {
                    *summary.undecoded_by_link.entry(link.0).or_default() += 1;
                }
            }
            if let Some(c) = csv.as_mut() {
                c.push(&rec, rel_seq, tracker.last_relative_ack())?;
            }
            if let Some(p) = parquet.as_mut() {
                p.push(&rec, rel_seq)?;
            }
            if summary.frames % 65_536 == 0 {
                progress.update(bytes_done + reader.bytes_read(), summary.frames);
            }
        }
        for w in reader.warnings() {
            let w = format!("{}: {w}", path.display());
            if !summary.warnings.contains(&w) {
                summary.warnings.push(w);
            }
        }
        bytes_done += reader.bytes_read();
    }
    progress.finish(bytes_done);

    // Commit outputs only once every input has been read.
    if let Some(p) = parquet {
        p.finish()?;
    }
    if let Some(c) = csv {
        c.finish()?;
    }
    Ok(summary)
}

/// Footer key (Parquet key-value metadata) of the address table: the text of every
/// address in `src`/`dst`/`src_mac`, one per line, line `i` being id `i` of
/// `src_id`/`dst_id`/`src_mac_id`. Absent when the file has more distinct addresses
/// than [`AddrCache::MAX_IDS`]: the id columns are then incomplete and readers use the
/// text columns.
pub const ADDRESSES_KEY: &str = "netdigest.addresses";
/// The id of "no address" in `src_id`/`dst_id`/`src_mac_id` (where the text column is
/// null, or the address got no id): the id columns have no nulls, so they are read
/// without definition levels.
pub const NO_ID: u16 = u16::MAX;

/// Footer key of the protocol table: line `i` is the name of `protocol_id` `i`.
pub const PROTOCOLS_KEY: &str = "netdigest.protocols";

/// Formats addresses once and numbers them: a night has few distinct addresses, so
/// address columns are built as ids (the writer turns them into dictionary-encoded text
/// without hashing text on every row) and analysis groups on the small integers. Bounded:
/// past [`AddrCache::MAX_IDS`] distinct addresses the ids stop (the file gets no address
/// table, and address columns are built as text from then on) and a text cache, cleared
/// whenever it fills, takes over.
#[derive(Default)]
struct AddrCache {
    ids: PlHashMap<Addr, u16>,
    /// Id -> text; append-only, kept for the whole file (at most `MAX_IDS` entries).
    table: Vec<Box<str>>,
    /// Entries of `table` already handed to the writer.
    sent: usize,
    /// Set once the ids ran out: text only from then on.
    overflow: Option<PlHashMap<Addr, Box<str>>>,
}

impl AddrCache {
    /// Ids are u16 and [`NO_ID`] is not one: at most this many addresses get one.
    const MAX_IDS: usize = NO_ID as usize;

    /// The address's id (`None` once the ids ran out) and text.
    #[inline]
    fn get(&mut self, a: Addr) -> (Option<u16>, &str) {
        if self.overflow.is_none() {
            if let Some(&id) = self.ids.get(&a) {
                return (Some(id), self.text(id));
            }
            match u16::try_from(self.table.len()) {
                Ok(id) if usize::from(id) < Self::MAX_IDS => {
                    self.ids.insert(a, id);
                    self.table.push(a.to_string().into_boxed_str());
                    return (Some(id), self.text(id));
                }
                _ => self.overflow = Some(PlHashMap::default()),
            }
        }
        let map = self.overflow.get_or_insert_with(PlHashMap::default);
        if map.len() >= Self::MAX_IDS && !map.contains_key(&a) {
            map.clear();
        }
        (
            None,
            map.entry(a)
                .or_insert_with(|| a.to_string().into_boxed_str()),
        )
    }

    #[inline]
    fn text(&self, id: u16) -> &str {
        self.table.get(usize::from(id)).map_or("", |t| t)
    }

    /// Table entries not yet handed to the writer.
    fn take_new(&mut self) -> Vec<Box<str>> {
        let new = self.table.get(self.sent..).unwrap_or_default().to_vec();
        self.sent = self.table.len();
        new
    }

    /// The address table for the footer (line `i`: the text of id `i`), when every
    /// address got an id.
    fn table_text(&self) -> Option<String> {
        self.overflow.is_none().then(|| self.table.join("\n"))
    }
}

/// The address columns: built as ids while every address has one.
const ADDRESS_COLUMNS: [&str; 6] = [
    "src_mac",
    "dst_mac",
    "src",
    "dst",
    "arp_sender_ip",
    "arp_target_ip",
];

/// An address column under construction: ids ([`NO_ID`] for null) while the file's
/// addresses all have one, text once they ran out.
enum AddrColumn {
    Ids(Vec<u16>),
    Text(StringChunkedBuilder),
}

impl AddrColumn {
    fn new(n: usize) -> Self {
        AddrColumn::Ids(Vec::with_capacity(n))
    }

    /// Appends the address and returns its id.
    #[inline]
    fn push(&mut self, name: &str, a: Option<Addr>, cache: &mut AddrCache) -> Option<u16> {
        let Some(a) = a else {
            match self {
                AddrColumn::Ids(v) => v.push(NO_ID),
                AddrColumn::Text(b) => b.append_null(),
            }
            return None;
        };
        let (id, text) = cache.get(a);
        match (&mut *self, id) {
            (AddrColumn::Ids(v), Some(id)) => v.push(id),
            (AddrColumn::Text(b), _) => b.append_value(text),
            (AddrColumn::Ids(v), None) => {
                // The ids just ran out: this column's rows so far become text.
                let mut b = StringChunkedBuilder::new(name.into(), v.capacity());
                for &id in v.iter() {
                    if id == NO_ID {
                        b.append_null();
                    } else {
                        b.append_value(cache.text(id));
                    }
                }
                let (_, text) = cache.get(a);
                b.append_value(text);
                *self = AddrColumn::Text(b);
            }
        }
        id
    }

    /// The column: u16 ids (the writer reads them as text through the table) or text.
    fn into_column(self, name: &str) -> Column {
        match self {
            AddrColumn::Ids(v) => Series::new(name.into(), v).into(),
            AddrColumn::Text(b) => b.finish().into_series().into(),
        }
    }
}

/// A nullable column under construction: values and validity side by side, handed to
/// polars as one array without another pass (building from `Vec<Option<T>>` costs a
/// second pass over every value).
struct Nullable<T> {
    values: Vec<T>,
    valid: MutableBitmap,
}

impl<T: Default + Copy> Nullable<T> {
    fn with_capacity(n: usize) -> Self {
        Nullable {
            values: Vec::with_capacity(n),
            valid: MutableBitmap::with_capacity(n),
        }
    }

    #[inline]
    fn push(&mut self, v: Option<T>) {
        self.values.push(v.unwrap_or_default());
        self.valid.push(v.is_some());
    }
}

impl<T> Nullable<T> {
    fn into_column<P>(self, name: &str) -> Column
    where
        P: PolarsNumericType<Native = T>,
    {
        let valid: Bitmap = self.valid.into();
        let valid = (valid.unset_bits() > 0).then_some(valid);
        ChunkedArray::<P>::from_vec_validity(name.into(), self.values, valid)
            .into_series()
            .into()
    }
}

/// The protocol column's codes in polars' global categories, found once per protocol
/// name (a handful a night) instead of hashing the name on every packet. Holds the
/// global mapping so the codes stay valid while the file is written.
struct ProtocolCodes {
    mapping: Arc<CategoricalMapping>,
    known: Vec<(&'static str, u32)>,
}

impl ProtocolCodes {
    fn new() -> Self {
        ProtocolCodes {
            mapping: Categories::global().mapping(),
            known: Vec::new(),
        }
    }

    /// The name's categorical code and its `protocol_id` (its index in this file's
    /// protocol table; `None` past 255 names, which the decoder cannot produce).
    #[inline]
    fn code(&mut self, name: &'static str) -> PolarsResult<(u32, Option<u8>)> {
        if let Some(i) = self.known.iter().position(|(n, _)| *n == name) {
            return Ok((self.known[i].1, u8::try_from(i).ok()));
        }
        let c = self.mapping.insert_cat(name)?;
        self.known.push((name, c));
        Ok((c, u8::try_from(self.known.len() - 1).ok()))
    }

    /// The protocol table for the footer, when every name got an id.
    fn table_text(&self) -> Option<String> {
        (self.known.len() < usize::from(u8::MAX)).then(|| {
            self.known
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    fn dtype(&self) -> DataType {
        DataType::Categorical(Categories::global(), Arc::clone(&self.mapping))
    }
}

/// Column builders for one row group.
struct Columns {
    len: usize,
    frame: Vec<u64>,
    ts: Vec<i64>,
    interface: Vec<u16>,
    link_type: Vec<u16>,
    wire_len: Vec<u32>,
    cap_len: Vec<u32>,
    src_mac: AddrColumn,
    dst_mac: AddrColumn,
    vlan: Nullable<u16>,
    ether_type: Nullable<u16>,
    ip_version: Nullable<u8>,
    src: AddrColumn,
    dst: AddrColumn,
    ttl: Nullable<u8>,
    ip_proto: Nullable<u8>,
    protocol: Vec<u32>,
    src_port: Nullable<u16>,
    dst_port: Nullable<u16>,
    tcp_flags: Nullable<u8>,
    tcp_seq: Nullable<u32>,
    tcp_seq_raw: Nullable<u32>,
    payload_len: Nullable<u32>,
    icmp_type: Nullable<u8>,
    icmp_code: Nullable<u8>,
    icmp_id: Nullable<u16>,
    icmp_seq: Nullable<u16>,
    arp_op: Nullable<u16>,
    arp_sender_ip: AddrColumn,
    arp_target_ip: AddrColumn,
    fragment: Vec<bool>,
    truncated: Vec<bool>,
    decode_error: StringChunkedBuilder,
    src_id: Vec<u16>,
    dst_id: Vec<u16>,
    src_mac_id: Vec<u16>,
    protocol_id: Vec<u8>,
}

impl Columns {
    fn new() -> Self {
        let n = ROW_GROUP_ROWS;
        let s = |name: &str| StringChunkedBuilder::new(name.into(), n);
        Columns {
            len: 0,
            frame: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            interface: Vec::with_capacity(n),
            link_type: Vec::with_capacity(n),
            wire_len: Vec::with_capacity(n),
            cap_len: Vec::with_capacity(n),
            src_mac: AddrColumn::new(n),
            dst_mac: AddrColumn::new(n),
            vlan: Nullable::with_capacity(n),
            ether_type: Nullable::with_capacity(n),
            ip_version: Nullable::with_capacity(n),
            src: AddrColumn::new(n),
            dst: AddrColumn::new(n),
            ttl: Nullable::with_capacity(n),
            ip_proto: Nullable::with_capacity(n),
            protocol: Vec::with_capacity(n),
            src_port: Nullable::with_capacity(n),
            dst_port: Nullable::with_capacity(n),
            tcp_flags: Nullable::with_capacity(n),
            tcp_seq: Nullable::with_capacity(n),
            tcp_seq_raw: Nullable::with_capacity(n),
            payload_len: Nullable::with_capacity(n),
            icmp_type: Nullable::with_capacity(n),
            icmp_code: Nullable::with_capacity(n),
            icmp_id: Nullable::with_capacity(n),
            icmp_seq: Nullable::with_capacity(n),
            arp_op: Nullable::with_capacity(n),
            arp_sender_ip: AddrColumn::new(n),
            arp_target_ip: AddrColumn::new(n),
            fragment: Vec::with_capacity(n),
            truncated: Vec::with_capacity(n),
            decode_error: s("decode_error"),
            src_id: Vec::with_capacity(n),
            dst_id: Vec::with_capacity(n),
            src_mac_id: Vec::with_capacity(n),
            protocol_id: Vec::with_capacity(n),
        }
    }

    fn push(
        &mut self,
        r: &PacketRecord,
        rel_seq: Option<u32>,
        cache: &mut AddrCache,
        protos: &mut ProtocolCodes,
    ) -> PolarsResult<()> {
        self.len += 1;
        self.frame.push(r.frame);
        self.ts.push(r.ts_ns);
        self.interface
            .push(u16::try_from(r.interface).unwrap_or(u16::MAX));
        self.link_type
            .push(u16::try_from(r.link.0).unwrap_or(u16::MAX));
        self.wire_len.push(r.wire_len);
        self.cap_len.push(r.cap_len);
        let src_mac_id = self
            .src_mac
            .push("src_mac", r.src_mac.map(Addr::Mac), cache);
        self.src_mac_id.push(src_mac_id.unwrap_or(NO_ID));
        self.dst_mac
            .push("dst_mac", r.dst_mac.map(Addr::Mac), cache);
        self.vlan.push(r.vlan);
        self.ether_type.push(r.ether_type);
        self.ip_version.push(r.ip_version);
        let src_id = self.src.push("src", r.src, cache);
        self.src_id.push(src_id.unwrap_or(NO_ID));
        let dst_id = self.dst.push("dst", r.dst, cache);
        self.dst_id.push(dst_id.unwrap_or(NO_ID));
        self.ttl.push(r.ttl);
        self.ip_proto.push(r.ip_proto);
        let (code, protocol_id) = protos.code(r.protocol)?;
        self.protocol.push(code);
        self.protocol_id.push(protocol_id.unwrap_or(u8::MAX));
        self.src_port.push(r.src_port);
        self.dst_port.push(r.dst_port);
        self.tcp_flags.push(r.tcp_flags);
        self.tcp_seq.push(rel_seq);
        self.tcp_seq_raw.push(r.tcp_seq);
        self.payload_len.push(r.payload_len);
        self.icmp_type.push(r.icmp_type);
        self.icmp_code.push(r.icmp_code);
        self.icmp_id.push(r.icmp_id);
        self.icmp_seq.push(r.icmp_seq);
        self.arp_op.push(r.arp_op);
        self.arp_sender_ip
            .push("arp_sender_ip", r.arp_sender_ip.map(Addr::V4), cache);
        self.arp_target_ip
            .push("arp_target_ip", r.arp_target_ip.map(Addr::V4), cache);
        self.fragment.push(r.fragment);
        self.truncated.push(r.truncated);
        self.decode_error.append_option(r.decode_error.as_deref());
        Ok(())
    }

    /// Builds the batch's DataFrame and resets the builders.
    fn take(&mut self, protos: &ProtocolCodes) -> PolarsResult<DataFrame> {
        let mut old = std::mem::replace(self, Columns::new());
        let ts = Series::new("ts".into(), std::mem::take(&mut old.ts))
            .into_datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC));
        let protocol = CategoricalChunked::<Categorical32Type>::from_cats_and_dtype(
            UInt32Chunked::from_vec("protocol".into(), old.protocol),
            protos.dtype(),
        )
        .into_series();
        let cols: Vec<Column> = vec![
            Series::new("frame".into(), old.frame).into(),
            ts.into(),
            Series::new("interface".into(), old.interface).into(),
            Series::new("link_type".into(), old.link_type).into(),
            Series::new("wire_len".into(), old.wire_len).into(),
            Series::new("cap_len".into(), old.cap_len).into(),
            old.src_mac.into_column("src_mac"),
            old.dst_mac.into_column("dst_mac"),
            old.vlan.into_column::<UInt16Type>("vlan"),
            old.ether_type.into_column::<UInt16Type>("ether_type"),
            old.ip_version.into_column::<UInt8Type>("ip_version"),
            old.src.into_column("src"),
            old.dst.into_column("dst"),
            old.ttl.into_column::<UInt8Type>("ttl"),
            old.ip_proto.into_column::<UInt8Type>("ip_proto"),
            protocol.into(),
            old.src_port.into_column::<UInt16Type>("src_port"),
            old.dst_port.into_column::<UInt16Type>("dst_port"),
            old.tcp_flags.into_column::<UInt8Type>("tcp_flags"),
            old.tcp_seq.into_column::<UInt32Type>("tcp_seq"),
            old.tcp_seq_raw.into_column::<UInt32Type>("tcp_seq_raw"),
            old.payload_len.into_column::<UInt32Type>("payload_len"),
            old.icmp_type.into_column::<UInt8Type>("icmp_type"),
            old.icmp_code.into_column::<UInt8Type>("icmp_code"),
            old.icmp_id.into_column::<UInt16Type>("icmp_id"),
            old.icmp_seq.into_column::<UInt16Type>("icmp_seq"),
            old.arp_op.into_column::<UInt16Type>("arp_op"),
            old.arp_sender_ip.into_column("arp_sender_ip"),
            old.arp_target_ip.into_column("arp_target_ip"),
            Series::new("fragment".into(), old.fragment).into(),
            Series::new("truncated".into(), old.truncated).into(),
            old.decode_error.finish().into_series().into(),
            Series::new("src_id".into(), old.src_id).into(),
            Series::new("dst_id".into(), old.dst_id).into(),
            Series::new("src_mac_id".into(), old.src_mac_id).into(),
            Series::new("protocol_id".into(), old.protocol_id).into(),
        ];
        DataFrame::new(old.len, cols)
    }
}

/// Row groups built and waiting for the writer: lets the reading thread run ahead while
/// a row group is encoded (memory: about 7 MB each).
const QUEUED_ROW_GROUPS: usize = 2;

/// Writes row groups whose columns are encoded and compressed on several threads at
/// once (polars' own batched writer encodes them one after another on one thread, which
/// made it the slowest stage of a convert), then appended to the file in order.
struct RowGroupWriter {
    out: polars::io::parquet::write::BatchedWriter<std::fs::File>,
    arrow: ArrowSchema,
    parquet: pq::SchemaDescriptor,
    encodings: Vec<Vec<pq::Encoding>>,
    options: pq::WriteOptions,
    threads: usize,
    /// How long each column took to encode in the last row group.
    cost: Vec<Duration>,
}

impl RowGroupWriter {
    fn new(file: std::fs::File, schema: &Schema) -> PolarsResult<Self> {
        // Address columns may come as ids: in the file they are text.
        let mut schema = schema.clone();
        for name in ADDRESS_COLUMNS {
            schema.set_dtype(name, DataType::String);
        }
        let arrow = schema.to_arrow(CompatLevel::newest());
        let parquet = pq::to_parquet_schema(&arrow)?;
        let encodings = polars::io::parquet::write::get_encodings(&arrow);
        let options = pq::WriteOptions {
            statistics: pq::StatisticsOptions::default(),
            // zstd level 1 (polars' default is 3): on a 2M-packet night 6% faster for a
            // 10% bigger file (with the encodings below, still smaller than level 3 was
            // with polars' own).
            compression: pq::CompressionOptions::Zstd(pq::ZstdLevel::try_new(1).ok()),
            version: pq::Version::V1,
            data_page_size: None,
        };
        let file_writer =
            pq::FileWriter::new_with_parquet_schema(file, arrow.clone(), parquet.clone(), options);
        // polars tries a dictionary for every column. Not worth it where values hardly
        // repeat: frame numbers and timestamps only grow (delta encoding stores them in a
        // few bits each), sequence numbers are random (plain). Measured on a 2M-packet
        // night: file 22% smaller, 7% less CPU.
        let mut own: Vec<Vec<pq::Encoding>> = encodings.iter().cloned().collect();
        for (i, f) in arrow.iter_values().enumerate() {
            let e = match f.name.as_str() {
                "frame" | "ts" => Some(pq::Encoding::DeltaBinaryPacked),
                "tcp_seq" | "tcp_seq_raw" => Some(pq::Encoding::Plain),
                _ => None,
            };
            if let (Some(e), Some(slot)) = (e, own.get_mut(i)) {
                *slot = vec![e];
            }
        }
        Ok(RowGroupWriter {
            encodings: own,
            out: polars::io::parquet::write::BatchedWriter::new(
                std::sync::Mutex::new(file_writer),
                encodings,
                options,
                false,
                None,
            ),
            arrow,
            parquet,
            options,
            // One more than the cores: the reading thread shares them, and a spare worker
            // fills the gaps while another waits on a big column.
            threads: std::thread::available_parallelism().map_or(3, |n| (n.get() + 1).clamp(3, 8)),
            cost: vec![Duration::ZERO; schema.len()],
        })
    }

    fn write(&mut self, df: &DataFrame, table: &[Box<str>]) -> PolarsResult<()> {
        let cols = df.columns();
        // Longest first (by the last row group's times), so no thread is left with a big
        // column at the end while the others idle.
        let mut order: Vec<usize> = (0..cols.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.cost.get(i).copied().unwrap_or_default()));
        let next = std::sync::atomic::AtomicUsize::new(0);
        type Encoded = (usize, PolarsResult<Vec<Vec<pq::CompressedPage>>>, Duration);
        let mut encoded: Vec<Option<PolarsResult<Vec<Vec<pq::CompressedPage>>>>> =
            (0..cols.len()).map(|_| None).collect();
        let mut times = Vec::with_capacity(cols.len());
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..self.threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done: Vec<Encoded> = Vec::new();
                        loop {
                            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((i, c)) = order.get(k).and_then(|&i| Some((i, cols.get(i)?)))
                            else {
                                break;
                            };
                            let t = Instant::now();
                            let r = self.encode_column(i, c, table);
                            done.push((i, r, t.elapsed()));
                        }
                        done
                    })
                })
                .collect();
            for w in workers {
                // A worker that panicked leaves its columns unset: an error below.
                for (i, r, took) in w.join().unwrap_or_default() {
                    if let Some(slot) = encoded.get_mut(i) {
                        *slot = Some(r);
                    }
                    times.push((i, took));
                }
            }
        });
        for (i, took) in times {
            if let Some(c) = self.cost.get_mut(i) {
                *c = took;
            }
        }
        let mut row_group = Vec::with_capacity(self.parquet.columns().len());
        for e in encoded {
            let pages = e.ok_or_else(|| {
                PolarsError::ComputeError("a Parquet encoding thread panicked".into())
            })??;
            row_group.extend(pages);
        }
        self.out
            .write_row_group(u64::try_from(df.height()).unwrap_or(u64::MAX), &row_group)
    }

    /// Writes the footer: polars' schema entry (so polars reads the columns back with
    /// their types) and `extra`.
    fn finish(&self, extra: Vec<pq::KeyValue>) -> PolarsResult<()> {
        let mut kv = vec![pq::schema_to_metadata_key(&self.arrow)];
        kv.extend(extra);
        let mut w =
            self.out.get_writer().lock().map_err(|_| {
                PolarsError::ComputeError("the Parquet writer lock is poisoned".into())
            })?;
        w.end(Some(kv))?;
        Ok(())
    }

    /// One column's pages (one list per Parquet leaf column), encoded and compressed.
    fn encode_column(
        &self,
        i: usize,
        c: &Column,
        table: &[Box<str>],
    ) -> PolarsResult<Vec<Vec<pq::CompressedPage>>> {
        let (field, ptype) = match (self.arrow.get_at_index(i), self.parquet.fields().get(i)) {
            (Some((_, f)), Some(t)) => (f, t),
            _ => {
                return Err(PolarsError::ComputeError(
                    format!("column {i} is not in the Parquet schema").into(),
                ));
            }
        };
        let enc = self.encodings.get(i).map_or(&[][..], Vec::as_slice);
        let array = if c.dtype() == &DataType::UInt16 && field.dtype() == &ArrowDataType::Utf8View {
            address_dictionary(c, table)?
        } else {
            c.as_materialized_series().rechunk().to_arrow_with_field(
                0,
                std::borrow::Cow::Borrowed(field),
                true,
            )?
        };
        let mut out = Vec::new();
        for pages in pq::array_to_columns(array, ptype.clone(), self.options, enc)? {
            let pages = pages.map(|r| {
                r.map_err(|e| ParquetError::FeatureNotSupported(format!("encoding a page: {e}")))
            });
            let compression = if HOT_COLUMNS.contains(&field.name.as_str()) {
                pq::CompressionOptions::Lz4Raw
            } else {
                self.options.compression
            };
            let compressed = pq::Compressor::new_from_vec(pages, compression, vec![])
                .collect::<Result<Vec<_>, ParquetError>>()?;
            out.push(compressed);
        }
        Ok(out)
    }
}

/// What the reading thread hands the writer thread.
enum ToWriter {
    /// A row group, and the address table's entries added since the last one.
    RowGroup(DataFrame, Vec<Box<str>>),
    /// The footer's key-value metadata (the address and protocol tables): the last message.
    Footer(Vec<pq::KeyValue>),
}

/// The columns analysis reads on every row: LZ4 (about 4x faster to decompress than
/// zstd) instead of zstd. Measured on a 2M-packet night: analyse 5-10% faster, convert
/// no slower, the file 13% bigger (27.8 -> 31.5 MB).
const HOT_COLUMNS: [&str; 16] = [
    "ts",
    "wire_len",
    "src_id",
    "dst_id",
    "src_mac_id",
    "protocol_id",
    "ip_version",
    "src_port",
    "dst_port",
    "ip_proto",
    "icmp_type",
    "icmp_id",
    "icmp_seq",
    "arp_op",
    "arp_sender_ip",
    "decode_error",
];

/// An address column given as ids, as a dictionary array of its text (the row group's
/// own dictionary: the addresses it uses, in order of first use). Written as the
/// dictionary-encoded text column it would have been, without hashing each row's text.
fn address_dictionary(c: &Column, table: &[Box<str>]) -> PolarsResult<ArrayRef> {
    let ids = c.u16()?;
    let mut local: Vec<u16> = vec![NO_ID; table.len()];
    let mut values: Vec<&str> = Vec::new();
    let mut keys: Vec<u16> = Vec::with_capacity(ids.len());
    let mut valid = MutableBitmap::with_capacity(ids.len());
    for id in ids.into_no_null_iter() {
        let Some(slot) = (id != NO_ID)
            .then(|| local.get_mut(usize::from(id)))
            .flatten()
        else {
            keys.push(0);
            valid.push(false);
            continue;
        };
        if *slot == NO_ID {
            *slot = u16::try_from(values.len()).unwrap_or(NO_ID);
            values.push(table.get(usize::from(id)).map_or("", |t| t));
        }
        keys.push(*slot);
        valid.push(true);
    }
    let valid: Bitmap = valid.into();
    let valid = (valid.unset_bits() > 0).then_some(valid);
    let keys = PrimitiveArray::<u16>::new(ArrowDataType::UInt16, keys.into(), valid);
    let values = Utf8ViewArray::from_slice_values(values);
    let dict = DictionaryArray::try_new(
        ArrowDataType::Dictionary(
            IntegerType::UInt16,
            Box::new(ArrowDataType::Utf8View),
            false,
        ),
        keys,
        values.boxed(),
    )?;
    Ok(dict.boxed())
}

/// Parquet output: column building on the reading thread, encoding and compression on a
/// writer thread, with at most one row group queued between them (flat memory).
struct ParquetSink {
    path: PathBuf,
    file: Option<AtomicFile>,
    tx: Option<std::sync::mpsc::SyncSender<ToWriter>>,
    writer: Option<std::thread::JoinHandle<PolarsResult<()>>>,
    cols: Columns,
    cache: AddrCache,
    protos: ProtocolCodes,
}

impl ParquetSink {
    fn create(path: &Path) -> Result<Self> {
        let io = |source| ConvertError::Output {
            path: path.to_path_buf(),
            source,
        };
        let file = AtomicFile::create(path).map_err(io)?;
        // No BufWriter: pages are written in large chunks, and a BufWriter's flush on drop
        // would hide write errors.
        let handle = file.writer().try_clone().map_err(io)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<ToWriter>(QUEUED_ROW_GROUPS);
        let writer = std::thread::Builder::new()
            .name("parquet-writer".into())
            .spawn(move || -> PolarsResult<()> {
                let mut handle = Some(handle);
                let mut w: Option<RowGroupWriter> = None;
                let mut table: Vec<Box<str>> = Vec::new();
                for msg in rx {
                    let df = match msg {
                        ToWriter::RowGroup(df, new) => {
                            table.extend(new);
                            df
                        }
                        ToWriter::Footer(kv) => {
                            if let Some(w) = &w {
                                w.finish(kv)?;
                            }
                            return Ok(());
                        }
                    };
                    let w = match (&mut w, handle.take()) {
                        (Some(w), _) => w,
                        (None, Some(h)) => w.insert(RowGroupWriter::new(h, df.schema())?),
                        (None, None) => continue,
                    };
                    if df.height() > 0 {
                        w.write(&df, &table)?;
                    }
                }
                // The reading side stopped without a footer (an error): no complete file.
                Err(PolarsError::ComputeError(
                    "the Parquet file was not finished".into(),
                ))
            })
            .map_err(io)?;
        Ok(ParquetSink {
            path: path.to_path_buf(),
            file: Some(file),
            tx: Some(tx),
            writer: Some(writer),
            cols: Columns::new(),
            cache: AddrCache::default(),
            protos: ProtocolCodes::new(),
        })
    }

    fn pq_err(&self, source: PolarsError) -> ConvertError {
        ConvertError::Parquet {
            path: self.path.clone(),
            source,
        }
    }

    fn push(&mut self, r: &PacketRecord, rel_seq: Option<u32>) -> Result<()> {
        if let Err(e) = self
            .cols
            .push(r, rel_seq, &mut self.cache, &mut self.protos)
        {
            return Err(self.pq_err(e));
        }
        if self.cols.len >= ROW_GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the batch to the writer thread; if that thread stopped, its error.
    fn flush(&mut self) -> Result<()> {
        let df = self.cols.take(&self.protos).map_err(|e| self.pq_err(e))?;
        let new = self.cache.take_new();
        self.send(ToWriter::RowGroup(df, new))
    }

    fn send(&mut self, msg: ToWriter) -> Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(msg).is_ok());
        if sent { Ok(()) } else { self.join() }
    }

    /// Waits for the writer thread and returns its outcome.
    fn join(&mut self) -> Result<()> {
        self.tx = None;
        match self.writer.take().map(std::thread::JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(self.pq_err(e)),
            Some(Err(_)) => Err(self.pq_err(PolarsError::ComputeError(
                "the Parquet writer thread panicked".into(),
            ))),
        }
    }

    fn finish(mut self) -> Result<()> {
        // Always send the last batch, even empty: it carries the schema of an empty file.
        self.flush()?;
        let mut footer = Vec::new();
        for (key, table) in [
            (ADDRESSES_KEY, self.cache.table_text()),
            (PROTOCOLS_KEY, self.protos.table_text()),
        ] {
            if let Some(value) = table {
                footer.push(pq::KeyValue {
                    key: key.to_string(),
                    value: Some(value),
                });
            }
        }
        self.send(ToWriter::Footer(footer))?;
        self.join()?;
        if let Some(f) = self.file.take() {
            f.commit().map_err(|source| ConvertError::Output {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

struct CsvSink {
    path: PathBuf,
    file: Option<AtomicFile>,
    out: BufWriter<std::fs::File>,
    first_ts_ns: Option<i64>,
    decimals: usize,
    line: String,
    cache: AddrCache,
}

impl CsvSink {
    fn create(path: &Path, decimals: usize) -> Result<Self> {
        let io = |source| ConvertError::Output {
            path: path.to_path_buf(),
            source,
        };
        let file = AtomicFile::create(path).map_err(io)?;
        let handle = file.writer().try_clone().map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 20, handle);
        writeln!(out, "{CSV_HEADER}").map_err(io)?;
        Ok(CsvSink {
            path: path.to_path_buf(),
            file: Some(file),
            out,
            first_ts_ns: None,
            decimals,
            line: String::with_capacity(256),
            cache: AddrCache::default(),
        })
    }

    fn push(&mut self, r: &PacketRecord, rel_seq: Option<u32>, rel_ack: Option<u32>) -> Result<()> {
        let first = *self.first_ts_ns.get_or_insert(r.ts_ns);
        self.line.clear();
        csv_row(
            &mut self.line,
            r,
            (rel_seq, rel_ack),
            first,
            self.decimals,
            &mut self.cache,
        );
        self.out
            .write_all(self.line.as_bytes())
            .map_err(|source| ConvertError::Output {
                path: self.path.clone(),
                source,
            })
    }

    fn finish(mut self) -> Result<()> {
        let io = |source| ConvertError::Output {
            path: self.path.clone(),
            source,
        };
        self.out.flush().map_err(io)?;
        if let Some(f) = self.file.take() {
            f.commit().map_err(io)?;
        }
        Ok(())
    }
}

/// Appends one CSV row (with its newline) in the seed's column order.
fn csv_row(
    line: &mut String,
    r: &PacketRecord,
    (rel_seq, rel_ack): (Option<u32>, Option<u32>),
    first_ts_ns: i64,
    decimals: usize,
    cache: &mut AddrCache,
) {
    let _ = write!(line, "{},", r.frame);
    push_rel_time(
        line,
        i128::from(r.ts_ns) - i128::from(first_ts_ns),
        decimals,
    );
    line.push(',');
    if let Some(a) = r.src {
        push_field(line, cache.get(a).1);
    }
    line.push(',');
    if let Some(a) = r.dst {
        push_field(line, cache.get(a).1);
    }
    line.push(',');
    push_field(line, r.protocol);
    let _ = write!(line, ",{},", r.wire_len);
    push_field(line, &decode::info_with_ack(r, rel_seq, rel_ack));
    line.push(',');
    if let Some(s) = rel_seq {
        let _ = write!(line, "{s}");
    }
    line.push(',');
    if r.ip_version == Some(4)
        && let Some(t) = r.ttl
    {
        let _ = write!(line, "{t}");
    }
    line.push('\n');
}

/// Seconds since the first packet with `decimals` digits, as tshark's Time column.
fn push_rel_time(line: &mut String, delta_ns: i128, decimals: usize) {
    let neg = delta_ns < 0;
    let abs = delta_ns.unsigned_abs();
    let secs = abs / 1_000_000_000;
    let frac = abs % 1_000_000_000;
    if neg {
        line.push('-');
    }
    if decimals >= 9 {
        let _ = write!(line, "{secs}.{frac:09}");
    } else {
        let _ = write!(line, "{secs}.{:06}", frac / 1000);
    }
}

/// RFC 4180: quote a field holding a comma, a quote or a line break; double inner quotes.
fn push_field(line: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        line.push('"');
        for c in s.chars() {
            if c == '"' {
                line.push('"');
            }
            line.push(c);
        }
        line.push('"');
    } else {
        line.push_str(s);
    }
}

/// Progress: a bar on a terminal, log lines every 10 s otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    log: bool,
    start: Instant,
    last_log: std::cell::Cell<Instant>,
    total: u64,
}

impl Progress {
    fn new(enabled: bool, total: u64) -> Self {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = (enabled && tty).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {binary_bytes}/{binary_total_bytes} {msg} (eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            log: enabled && !tty,
            start: Instant::now(),
            last_log: std::cell::Cell::new(Instant::now()),
            total,
        }
    }

    fn update(&self, bytes: u64, frames: u64) {
        let elapsed = self.start.elapsed().as_secs_f64().max(1e-9);
        #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
        let pps = frames as f64 / elapsed;
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            bar.set_message(format!("{frames} packets, {pps:.0} pkt/s"));
        } else if self.log && self.last_log.get().elapsed() >= Duration::from_secs(10) {
            self.last_log.set(Instant::now());
            tracing::info!(
                "converting: {} of {} MiB read, {frames} packets, {pps:.0} packets/s",
                bytes >> 20,
                self.total >> 20
            );
        }
    }

    fn finish(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        let mut s = String::new();
        push_field(&mut s, "plain");
        s.push('|');
        push_field(&mut s, "a, b");
        s.push('|');
        push_field(&mut s, "say \"hi\"");
        assert_eq!(s, "plain|\"a, b\"|\"say \"\"hi\"\"\"");
    }

    #[test]
    fn rel_time_formats() {
        let mut s = String::new();
        push_rel_time(&mut s, 1_500_000_123, 9);
        s.push(' ');
        push_rel_time(&mut s, 1_500_000_123, 6);
        s.push(' ');
        push_rel_time(&mut s, -1_000, 6);
        assert_eq!(s, "1.500000123 1.500000 -0.000001");
    }
}

//! Convert: capture files to typed Parquet and to the seed's tshark CSV.
//!
//! Frames stream from [`crate::capfile`] through [`crate::decode`] into column
//! builders; every [`ROW_GROUP_ROWS`] rows become one Parquet row group, so memory
//! stays flat whatever the capture's size. Outputs are written atomically: a failed
//! run leaves no file that looks complete.
//!
//! Modules: this one reads the inputs in order (frame numbers and TCP state carry on
//! across them) and counts what it finds; `ids` numbers addresses and protocols;
//! `columns` builds a row group's columns; `parquet_writer` encodes them (several
//! columns at once) and writes row groups on a writer thread; `csv_writer` writes the
//! seed's CSV; `progress` shows how far it got. The file's schema and footer keys are
//! [`crate::parquet_schema`]'s.

mod columns;
mod csv_writer;
mod ids;
mod parquet_writer;
mod progress;
mod rollup;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::capfile::{CapError, CaptureReader, Format, Frame};
use crate::decode::{self, FrameMeta, TcpSeqTracker};
use crate::flows::{FlowError, FlowLimits, FlowTable};
use crate::namestore::{self, NameStore};
use csv_writer::CsvSink;
use parquet_writer::ParquetSink;
use progress::Progress;

// The footer's keys and the "no address" id, under the paths readers used before the
// contract had a module of its own.
pub use crate::parquet_schema::{ADDRESSES_KEY, NO_ID, PROTOCOLS_KEY};
pub use csv_writer::CSV_HEADER;
pub use rollup::RollupLimits;

/// Rows per Parquet row group (and per in-memory batch).
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

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
    /// names.parquet output path: the names the packets carry ([`crate::namestore`]).
    pub names: Option<PathBuf>,
    /// flows.parquet output path: the connections ([`crate::flows`]).
    pub flows: Option<PathBuf>,
    /// rollup.parquet output path, beside the Parquet output: what analysis sums from
    /// every packet, summed as they stream ([`crate::parquet_schema::rollup`]).
    pub rollup: Option<PathBuf>,
    /// How much of the roll-up convert holds in memory before writing rows out.
    pub rollup_limits: RollupLimits,
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
    /// Distinct names written to names.parquet.
    pub names: u64,
    /// Names seen past the bound on distinct names (counted, not stored).
    pub names_dropped: u64,
    /// Connections written to flows.parquet, and how many of them were ended early
    /// because too many were open at once.
    pub flows: u64,
    pub flows_evicted: u64,
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
    let time_decimals = readers.first().map_or(6, |(_, r)| time_decimals(r));

    let mut reading = Reading {
        parquet: match &opts.parquet {
            Some(p) => Some(ParquetSink::create(
                p,
                opts.rollup.as_deref().map(|r| (r, opts.rollup_limits)),
            )?),
            None => None,
        },
        csv: match &opts.csv {
            Some(p) => Some(CsvSink::create(p, time_decimals)?),
            None => None,
        },
        progress: Progress::new(opts.progress, total_bytes),
        names: opts.names.as_ref().map(|_| NameStore::new()),
        flows: match &opts.flows {
            Some(p) => Some(FlowTable::to_file(p, FlowLimits::default()).map_err(flow_error)?),
            None => None,
        },
        summary: ConvertSummary::default(),
        tracker: TcpSeqTracker::new(),
        bytes_done: 0,
    };
    for (path, mut reader) in readers {
        reading.read_input(&path, &mut reader)?;
    }
    reading.progress.finish(reading.bytes_done);

    // Commit outputs only once every input has been read.
    if let Some(p) = reading.parquet {
        p.finish()?;
    }
    if let Some(c) = reading.csv {
        c.finish()?;
    }
    if let Some(t) = reading.flows {
        let done = t.finish().map_err(flow_error)?;
        reading.summary.flows = done.written;
        reading.summary.flows_evicted = done.evicted;
    }
    if let (Some(store), Some(path)) = (&reading.names, &opts.names) {
        store.write(path).map_err(|e| match e {
            namestore::WriteError::Io { path, source } => ConvertError::Output { path, source },
            namestore::WriteError::Parquet { path, source } => {
                ConvertError::Parquet { path, source }
            }
        })?;
        reading.summary.names = store.len() as u64;
        reading.summary.names_dropped = store.dropped();
    }
    Ok(reading.summary)
}

fn flow_error(e: FlowError) -> ConvertError {
    match e {
        FlowError::Io { path, source } => ConvertError::Output { path, source },
        FlowError::Parquet { path, source } => ConvertError::Parquet { path, source },
    }
}

/// Digits of the CSV's Time column: 9 when the first input has nanosecond timestamps,
/// else 6.
fn time_decimals<R: Read>(r: &CaptureReader<R>) -> usize {
    match r.format() {
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
    }
}

/// The reading side of a conversion: frames in order, decoded, counted and handed to
/// the outputs.
struct Reading {
    parquet: Option<ParquetSink>,
    csv: Option<CsvSink>,
    names: Option<NameStore>,
    flows: Option<FlowTable>,
    progress: Progress,
    summary: ConvertSummary,
    tracker: TcpSeqTracker,
    /// Bytes of the inputs read to their end.
    bytes_done: u64,
}

impl Reading {
    /// Reads one input to its end or to its first damage.
    fn read_input<R: Read>(&mut self, path: &Path, reader: &mut CaptureReader<R>) -> Result<()> {
        let frames_at_start = self.summary.frames;
        for w in reader.warnings() {
            self.summary
                .warnings
                .push(format!("{}: {w}", path.display()));
        }
        loop {
            let frame = match reader.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    self.summary.damage.push(Damage {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                        truncation: e.is_truncation(),
                        bytes_lost: e.bytes_lost(),
                        frames_before: self.summary.frames - frames_at_start,
                    });
                    break;
                }
            };
            self.record(frame)?;
            if self.summary.frames.is_multiple_of(65_536) {
                self.progress
                    .update(self.bytes_done + reader.bytes_read(), self.summary.frames);
            }
        }
        for w in reader.warnings() {
            let w = format!("{}: {w}", path.display());
            if !self.summary.warnings.contains(&w) {
                self.summary.warnings.push(w);
            }
        }
        self.bytes_done += reader.bytes_read();
        Ok(())
    }

    /// Decodes one frame, counts it, and hands it to the outputs.
    #[inline]
    fn record(&mut self, frame: Frame<'_>) -> Result<()> {
        let summary = &mut self.summary;
        summary.frames += 1;
        let meta = FrameMeta {
            frame: summary.frames,
            ts_ns: frame.ts_ns,
            interface: frame.interface,
            wire_len: frame.wire_len,
        };
        let link = frame.link;
        let rec = decode::decode(meta, frame.data, link);
        let rel_seq = self.tracker.relative(&rec);
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
        if let Some(c) = self.csv.as_mut() {
            c.push(&rec, rel_seq, self.tracker.last_relative_ack())?;
        }
        if let Some(n) = self.names.as_mut() {
            n.observe(&rec, frame.data);
        }
        if let Some(f) = self.flows.as_mut() {
            f.observe(&rec).map_err(flow_error)?;
        }
        if let Some(p) = self.parquet.as_mut() {
            p.push(&rec, rel_seq)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

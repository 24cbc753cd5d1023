//! The Parquet output: row groups built on the reading thread, encoded and compressed
//! column by column on several threads, written in order, with the id tables in the
//! footer.
//!
//! Invariants: the file is committed (renamed into place) only after its footer is
//! written; at most [`QUEUED_ROW_GROUPS`] row groups wait between the threads, so
//! memory stays flat; address columns given as ids are written as the dictionary-encoded
//! text they stand for.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use polars::prelude::*;
use polars_arrow::array::{DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::bitmap::{Bitmap, MutableBitmap};
use polars_arrow::datatypes::IntegerType;
use polars_parquet::parquet::error::ParquetError;
use polars_parquet::write as pq;

use super::columns::Columns;
use super::ids::{AddrCache, ProtocolCodes};
use super::rollup::{self, Rollup, RollupLimits};
use super::{ConvertError, ROW_GROUP_ROWS, Result};
use crate::decode::PacketRecord;
use crate::fsutil::{AtomicFile, SharedBuf};
use crate::parquet_schema::{
    ADDRESS_COLUMNS, ADDRESSES_KEY, FRAME, HOT_COLUMNS, NO_ID, PROTOCOLS_KEY, TCP_SEQ, TCP_SEQ_RAW,
    TS,
};

/// Row groups built and waiting for the writer: lets the reading thread run ahead while
/// a row group is encoded (memory: about 7 MB each).
const QUEUED_ROW_GROUPS: usize = 2;

/// Writes row groups whose columns are encoded and compressed on several threads at
/// once (polars' own batched writer encodes them one after another on one thread, which
/// made it the slowest stage of a convert), then appended to the file in order.
struct RowGroupWriter {
    out: polars::io::parquet::write::BatchedWriter<SharedBuf>,
    arrow: ArrowSchema,
    parquet: pq::SchemaDescriptor,
    encodings: Vec<Vec<pq::Encoding>>,
    options: pq::WriteOptions,
    threads: usize,
    /// How long each column took to encode in the last row group.
    cost: Vec<Duration>,
}

impl RowGroupWriter {
    fn new(file: SharedBuf, schema: &Schema) -> PolarsResult<Self> {
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
                FRAME | TS => Some(pq::Encoding::DeltaBinaryPacked),
                TCP_SEQ | TCP_SEQ_RAW => Some(pq::Encoding::Plain),
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
pub(super) struct ParquetSink {
    path: PathBuf,
    file: Option<AtomicFile>,
    tx: Option<std::sync::mpsc::SyncSender<ToWriter>>,
    writer: Option<std::thread::JoinHandle<PolarsResult<()>>>,
    cols: Columns,
    cache: AddrCache,
    protos: ProtocolCodes,
    /// The roll-up written beside the file, when asked for.
    rollup: Option<Rollup>,
}

impl ParquetSink {
    /// A sink writing `path`, and `rollup` (see [`crate::parquet_schema::rollup`]) when given.
    pub(super) fn create(path: &Path, rollup: Option<(&Path, RollupLimits)>) -> Result<Self> {
        let io = |source| ConvertError::Output {
            path: path.to_path_buf(),
            source,
        };
        let file = AtomicFile::create(path).map_err(io)?;
        // Buffered (pages and their headers are written one by one), and flushed by the
        // writer thread after the footer, so a write error is seen.
        let handle = SharedBuf::new(&file).map_err(io)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<ToWriter>(QUEUED_ROW_GROUPS);
        let writer = std::thread::Builder::new()
            .name("parquet-writer".into())
            .spawn(move || -> PolarsResult<()> {
                let mut buffered = handle.clone();
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
                            return std::io::Write::flush(&mut buffered).map_err(|e| {
                                PolarsError::IO {
                                    error: std::sync::Arc::new(e),
                                    msg: None,
                                }
                            });
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
            rollup: rollup
                .map(|(p, limits)| Rollup::new(p, limits))
                .transpose()?,
        })
    }

    fn pq_err(&self, source: PolarsError) -> ConvertError {
        ConvertError::Parquet {
            path: self.path.clone(),
            source,
        }
    }

    pub(super) fn push(&mut self, r: &PacketRecord, rel_seq: Option<u32>) -> Result<()> {
        let ids = match self
            .cols
            .push(r, rel_seq, &mut self.cache, &mut self.protos)
        {
            Ok(ids) => ids,
            Err(e) => return Err(self.pq_err(e)),
        };
        if let Some(rollup) = self.rollup.as_mut() {
            if self.cache.overflowed() {
                rollup.give_up();
            }
            rollup.observe(r, ids)?;
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

    pub(super) fn finish(mut self) -> Result<()> {
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
        let rollup = self.rollup.take();
        if let Some(r) = rollup.as_ref().filter(|r| !r.given_up()) {
            footer.push(rollup::token_entry(r.token()));
        }
        self.send(ToWriter::Footer(footer))?;
        self.join()?;
        if let Some(f) = self.file.take() {
            f.commit().map_err(|source| ConvertError::Output {
                path: self.path.clone(),
                source,
            })?;
        }
        // After the packets: a roll-up is only read beside the file with its token.
        if let Some(r) = rollup {
            r.finish()?;
        }
        Ok(())
    }
}

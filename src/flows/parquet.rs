//! `flows.parquet`: ended connections buffered column by column ([`Rows`]), turned
//! into a table with the file's schema and written one row group a batch ([`Sink`]);
//! and reading the file back.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;

use super::*;
use crate::fsutil::{AtomicFile, SharedBuf};

impl Endpoint {
    /// The address as tshark shows it, appended to `out`.
    pub(super) fn write_addr(&self, out: &mut String) {
        if self.v6 {
            let _ = write!(out, "{}", Addr::V6(Ipv6Addr::from(self.addr)));
        } else {
            #[allow(clippy::cast_possible_truncation)]
            let v = self.addr as u32;
            write_ipv4(out, Ipv4Addr::from(v));
        }
    }
}

/// Dotted quad, as `Ipv4Addr`'s Display, without the formatting machinery.
fn write_ipv4(out: &mut String, a: Ipv4Addr) {
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if o >= 100 {
            out.push(char::from(b'0' + o / 100));
        }
        if o >= 10 {
            out.push(char::from(b'0' + o / 10 % 10));
        }
        out.push(char::from(b'0' + o % 10));
    }
}

/// `aa:bb:cc:dd:ee:ff`, lowercase, as [`Addr::Mac`]'s Display.
pub(super) fn write_mac(out: &mut String, m: [u8; 6]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in m.into_iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// The file ended connections are written to, one row group a batch; it appears at
/// its path on [`Sink::finish`].
pub(super) struct Sink {
    path: PathBuf,
    file: AtomicFile,
    buf: SharedBuf,
    writer: BatchedWriter<SharedBuf>,
}

impl Sink {
    pub(super) fn create(path: &Path) -> Result<Self, FlowError> {
        let file = AtomicFile::create(path).map_err(FlowError::io(path))?;
        let buf = SharedBuf::new(&file).map_err(FlowError::io(path))?;
        // The file's schema is an empty batch's, so the two cannot drift apart.
        let empty = Rows::default()
            .into_frame()
            .map_err(FlowError::parquet(path))?;
        let writer = ParquetWriter::new(buf.clone())
            .batched(empty.schema())
            .map_err(FlowError::parquet(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            buf,
            writer,
        })
    }

    /// Writes `rows` as one row group.
    pub(super) fn write(&mut self, rows: Rows) -> Result<(), FlowError> {
        let df = rows.into_frame().map_err(FlowError::parquet(&self.path))?;
        self.writer
            .write_batch(&df)
            .map_err(FlowError::parquet(&self.path))
    }

    /// Writes the footer and puts the file in place.
    pub(super) fn finish(mut self) -> Result<(), FlowError> {
        self.writer
            .finish()
            .map_err(FlowError::parquet(&self.path))?;
        std::io::Write::flush(&mut self.buf).map_err(FlowError::io(&self.path))?;
        self.file.commit().map_err(FlowError::io(&self.path))
    }
}

fn ts_type() -> DataType {
    DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC))
}

/// Ended connections waiting to be written, column by column. Addresses stay binary
/// until the batch is written (formatted straight into the columns, no String per row).
#[derive(Debug, Default)]
pub(super) struct Rows {
    proto: Vec<u8>,
    orig: Vec<Endpoint>,
    resp: Vec<Endpoint>,
    macs: [Vec<Option<[u8; 6]>>; 2],
    first_ts: Vec<i64>,
    last_ts: Vec<i64>,
    first_frame: Vec<u64>,
    pkts: [Vec<u64>; 2],
    bytes: [Vec<u64>; 2],
    payload: [Vec<u64>; 2],
    state: Vec<Option<&'static str>>,
    end: Vec<&'static str>,
}

/// A text column of `v`, each value written by `show` (None: null).
fn text_column<T>(name: &str, v: &[T], mut show: impl FnMut(&T, &mut String) -> bool) -> Column {
    let mut b = StringChunkedBuilder::new(name.into(), v.len());
    let mut buf = String::with_capacity(48);
    for x in v {
        buf.clear();
        if show(x, &mut buf) {
            b.append_value(&buf);
        } else {
            b.append_null();
        }
    }
    b.finish().into_series().into()
}

impl Rows {
    pub(super) fn len(&self) -> usize {
        self.proto.len()
    }

    pub(super) fn push(&mut self, f: &Flow, why: EndReason) {
        let (orig, resp) = f.sides();
        self.proto.push(f.proto());
        self.orig.push(orig);
        self.resp.push(resp);
        self.first_ts.push(f.first_ns);
        self.last_ts.push(f.last_ns);
        self.first_frame.push(f.first_frame);
        for d in 0..2 {
            self.macs[d].push(f.macs[d]);
            self.pkts[d].push(f.pkts[d]);
            self.bytes[d].push(f.bytes[d]);
            self.payload[d].push(f.payload[d]);
        }
        self.state.push(f.state());
        self.end.push(f.end(why));
    }

    pub(super) fn into_frame(self) -> PolarsResult<DataFrame> {
        let n = self.len();
        let ts = |name: &str, v: Vec<i64>| -> PolarsResult<Column> {
            Ok(Series::new(name.into(), v).cast(&ts_type())?.into())
        };
        let [op, rp] = self.pkts;
        let [ob, rb] = self.bytes;
        let [oy, ry] = self.payload;
        let addr = |name: &str, v: &[Endpoint]| {
            text_column(name, v, |e, out| {
                e.write_addr(out);
                true
            })
        };
        let port = |name: &str, v: &[Endpoint]| {
            Column::new(name.into(), v.iter().map(|e| e.port).collect::<Vec<u16>>())
        };
        let mac = |name: &str, v: &[Option<[u8; 6]>]| {
            text_column(name, v, |m, out| {
                m.is_some_and(|m| {
                    write_mac(out, m);
                    true
                })
            })
        };
        DataFrame::new(
            n,
            vec![
                Column::new(PROTO.into(), self.proto),
                addr(ORIG_ADDR, &self.orig),
                port(ORIG_PORT, &self.orig),
                addr(RESP_ADDR, &self.resp),
                port(RESP_PORT, &self.resp),
                mac(ORIG_MAC, &self.macs[0]),
                mac(RESP_MAC, &self.macs[1]),
                ts(FIRST_TS, self.first_ts)?,
                ts(LAST_TS, self.last_ts)?,
                Column::new(FIRST_FRAME.into(), self.first_frame),
                Column::new(ORIG_PKTS.into(), op),
                Column::new(RESP_PKTS.into(), rp),
                Column::new(ORIG_BYTES.into(), ob),
                Column::new(RESP_BYTES.into(), rb),
                Column::new(ORIG_PAYLOAD.into(), oy),
                Column::new(RESP_PAYLOAD.into(), ry),
                Column::new(STATE.into(), self.state),
                Column::new(END.into(), self.end),
            ],
        )
    }
}

/// Reads `flows.parquet`. A night converted before connections existed has none: an
/// empty table with the same columns.
///
/// # Errors
/// The file exists but is not a connection table.
pub fn read(path: &Path) -> PolarsResult<DataFrame> {
    if !path.exists() {
        return Rows::default().into_frame();
    }
    ParquetReader::new(File::open(path)?).finish()
}

/// Reads only `columns` of `flows.parquet` (the rest is never decoded); absent: an empty
/// table with those columns.
///
/// # Errors
/// The file exists but is not a connection table, or lacks one of `columns`.
pub fn read_columns(path: &Path, columns: &[&str]) -> PolarsResult<DataFrame> {
    if !path.exists() {
        return Rows::default()
            .into_frame()?
            .select(columns.iter().copied());
    }
    ParquetReader::new(File::open(path)?)
        .with_columns(Some(columns.iter().map(|c| (*c).to_string()).collect()))
        .finish()
}

//! The seed's tshark CSV: the same header, columns, quoting and time format, so the
//! scripts written for the seed keep working.
//!
//! Invariant: the file is committed (renamed into place) only once every row is written.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::ids::AddrCache;
use super::{ConvertError, Result};
use crate::decode::{self, PacketRecord};
use crate::fsutil::AtomicFile;

/// The seed's tshark CSV header, kept exactly so existing scripts keep working.
pub const CSV_HEADER: &str = "frame.number,_ws.col.Time,_ws.col.Source,_ws.col.Destination,_ws.col.Protocol,_ws.col.Length,_ws.col.Info,tcp.seq,ip.ttl";

pub(super) struct CsvSink {
    path: PathBuf,
    file: Option<AtomicFile>,
    out: BufWriter<std::fs::File>,
    first_ts_ns: Option<i64>,
    decimals: usize,
    line: String,
    cache: AddrCache,
}

impl CsvSink {
    pub(super) fn create(path: &Path, decimals: usize) -> Result<Self> {
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

    pub(super) fn push(
        &mut self,
        r: &PacketRecord,
        rel_seq: Option<u32>,
        rel_ack: Option<u32>,
    ) -> Result<()> {
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

    pub(super) fn finish(mut self) -> Result<()> {
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
pub(super) fn push_rel_time(line: &mut String, delta_ns: i128, decimals: usize) {
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
pub(super) fn push_field(line: &mut String, s: &str) {
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

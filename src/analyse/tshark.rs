//! The night's counts shaped as tshark's statistics (`-z endpoints`, `-z conv`,
//! `-z io,stat`), so tests can compare them with tshark's own output.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use super::cube::cube;
use super::talkers::{conversations, endpoint_rows, pairs};
use super::{AnalyseError, Conversation, Result, Talker};
use crate::dataframe::{CollectStreaming as _, i64s, u64s};
use crate::parquet_schema::{TS, WIRE_LEN};

fn scan(path: &Path) -> Result<LazyFrame> {
    let err = |source| AnalyseError::Polars {
        path: path.display().to_string(),
        source,
    };
    let p = PlRefPath::try_from_path(path).map_err(err)?;
    LazyFrame::scan_parquet(p, ScanArgsParquet::default()).map_err(err)
}

/// tshark's `-z endpoints,ip` (version 4) or `endpoints,ipv6` (6), keyed by address text.
///
/// # Errors
/// The Parquet cannot be read.
pub fn endpoints(parquet: &Path, version: u8) -> Result<BTreeMap<String, Talker>> {
    let pairs = pairs(
        &cube(parquet, 60_000_000_000).map_err(|source| AnalyseError::Polars {
            path: parquet.display().to_string(),
            source,
        })?,
    );
    Ok(endpoint_rows(&pairs, Some(version))
        .into_iter()
        .map(|t| (t.addr.clone(), t))
        .collect())
}

/// All conversations of a version (for comparison with tshark), keyed by (a, b).
///
/// # Errors
/// The Parquet cannot be read.
pub fn all_conversations(parquet: &Path, version: u8) -> Result<Vec<Conversation>> {
    let pairs = pairs(
        &cube(parquet, 60_000_000_000).map_err(|source| AnalyseError::Polars {
            path: parquet.display().to_string(),
            source,
        })?,
    );
    Ok(conversations(&pairs, Some(version)))
}

/// Packets and bytes per interval from the first packet, as tshark's `-z io,stat,<interval>`.
///
/// # Errors
/// The Parquet cannot be read.
pub fn io_stat(parquet: &Path, interval_ns: i64) -> Result<Vec<(i64, u64, u64)>> {
    let pe = |source| AnalyseError::Polars {
        path: parquet.display().to_string(),
        source,
    };
    let lf = scan(parquet)?;
    let df = lf
        .clone()
        .select([
            {
                let rel = col(TS).cast(DataType::Int64) - col(TS).cast(DataType::Int64).min();
                (rel.clone() - rel % lit(interval_ns.max(1))).alias("bin")
            },
            col(WIRE_LEN).cast(DataType::UInt64),
        ])
        .group_by([col("bin")])
        .agg([
            len().cast(DataType::UInt64).alias("packets"),
            col(WIRE_LEN).sum().alias("bytes"),
        ])
        .sort(["bin"], SortMultipleOptions::default())
        .collect_streaming()
        .map_err(pe)?;
    let bins = i64s(&df, "bin").map_err(pe)?;
    let p = u64s(&df, "packets").map_err(pe)?;
    let b = u64s(&df, "bytes").map_err(pe)?;
    Ok(bins
        .into_iter()
        .map(|b| b / interval_ns.max(1))
        .zip(p)
        .zip(b)
        .map(|((i, p), b)| (i, p, b))
        .collect())
}

//! The cube query: packets and bytes per (time slot, protocol, address pair, IP version,
//! service port, source MAC), grouped on the streaming engine. Every section but the
//! pings and ARP is rolled up from its rows.

use std::path::Path;

use polars::prelude::*;

use super::tables::Tables;
use crate::dataframe::{CollectStreaming as _, opt_u64s, u64s};
use crate::parquet_schema::{
    DECODE_ERROR, DST, DST_ID, DST_PORT, IP_VERSION, PROTOCOL, PROTOCOL_ID, SRC, SRC_ID, SRC_MAC,
    SRC_MAC_ID, SRC_PORT, TS, WIRE_LEN,
};

/// One row of the night's cube as Rust values, for the comparison with tshark
/// (`tshark`): packets and bytes per (time slot, protocol, source, destination, IP
/// version, service port, source MAC), of which that comparison needs the addresses.
/// The report's roll-ups read the cube as a DataFrame (`rollup`).
#[derive(Debug, Clone)]
pub(super) struct CubeRow {
    pub(super) src: Option<String>,
    pub(super) dst: Option<String>,
    pub(super) ip_version: Option<u8>,
    pub(super) packets: u64,
    pub(super) bytes: u64,
}

/// The cube, grouped on the streaming engine straight from the Parquet: memory is
/// bounded by the number of distinct keys (thousands on a home network), not by the
/// number of packets.
pub(super) fn cube(parquet: &Path, slot_ns: i64) -> PolarsResult<Vec<CubeRow>> {
    let p = PlRefPath::try_from_path(parquet)?;
    let base = LazyFrame::scan_parquet(p, ScanArgsParquet::default())?;
    let tables = Tables::read(parquet);
    cube_rows(
        &cube_plan(base, slot_ns, tables.as_ref()).collect_streaming()?,
        tables.as_ref(),
    )
}

pub(super) fn cube_plan(base: LazyFrame, slot_ns: i64, tables: Option<&Tables>) -> LazyFrame {
    let key = |text: &str, id: &str| Tables::key(tables, text, id);
    let ts = col(TS).cast(DataType::Int64);
    let both = col(SRC_PORT).is_not_null().and(col(DST_PORT).is_not_null());
    let port = when(both.clone().and(col(SRC_PORT).lt(col(DST_PORT))))
        .then(col(SRC_PORT))
        .when(both)
        .then(col(DST_PORT))
        .otherwise(lit(NULL).cast(DataType::UInt16));
    base.select([
        (ts.clone() - ts.clone() % lit(slot_ns)).alias("slot"),
        key(PROTOCOL, PROTOCOL_ID),
        key(SRC, SRC_ID),
        key(DST, DST_ID),
        col(IP_VERSION),
        port.alias("port"),
        key(SRC_MAC, SRC_MAC_ID),
        ts.alias(TS),
        col(WIRE_LEN).cast(DataType::UInt64),
        col(DECODE_ERROR).is_not_null().alias("error"),
    ])
    .group_by([
        col("slot"),
        col(PROTOCOL),
        col(SRC),
        col(DST),
        col(IP_VERSION),
        col("port"),
        col(SRC_MAC),
    ])
    .agg([
        len().cast(DataType::UInt64).alias("packets"),
        col(WIRE_LEN).sum().alias("bytes"),
        col(TS).min().alias("first"),
        col(TS).max().alias("last"),
        col("error").sum().cast(DataType::UInt64).alias("errors"),
    ])
}

pub(super) fn cube_rows(df: &DataFrame, tables: Option<&Tables>) -> PolarsResult<Vec<CubeRow>> {
    let (src, dst) = (
        Tables::addresses(tables, df, SRC)?,
        Tables::addresses(tables, df, DST)?,
    );
    let version = opt_u64s(df, IP_VERSION)?;
    let (packets, bytes) = (u64s(df, "packets")?, u64s(df, "bytes")?);
    Ok(src
        .into_iter()
        .zip(dst)
        .enumerate()
        .map(|(i, (src, dst))| CubeRow {
            src,
            dst,
            ip_version: version[i].and_then(|v| u8::try_from(v).ok()),
            packets: packets[i],
            bytes: bytes[i],
        })
        .collect())
}

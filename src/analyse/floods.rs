//! Spoofed-source floods and scans, found in the cube: worth a line in the report of
//! their own, since the row limits keep their thousands of addresses out of the tables.

use polars::prelude::*;

use super::Flood;
use super::rollup::order;
use crate::dataframe::{mask, strs, u64s};
use crate::devices::is_local;
use crate::parquet_schema::{DST, IP_VERSION, SRC, SRC_MAC};

/// Distinct local source addresses above which a night has a spoofed-source flood (a
/// home LAN has a few dozen, a /24 at most 254 plus IPv6 privacy addresses).
pub const FLOOD_MIN_SOURCES: u64 = 1024;
/// Distinct service ports (or ten times as many destinations) one source reaches
/// above which it is scanning.
pub const SCAN_MIN_PORTS: u64 = 1024;
/// Scans listed at most.
const MAX_SCANS: usize = 3;

fn n(df: &DataFrame, c: &str) -> PolarsResult<u64> {
    Ok(u64s(df, c)?.first().copied().unwrap_or(0))
}

/// True for a locally administered MAC (bit 1 of the first octet): made up, as a
/// flooder's random MACs are.
fn local_mac(mac: &str) -> bool {
    mac.get(..2)
        .and_then(|b| u8::from_str_radix(b, 16).ok())
        .is_some_and(|b| b & 2 != 0)
}

/// The MACs that sent the most packets of `df` (at most three).
fn top_macs(df: &DataFrame) -> PolarsResult<Vec<String>> {
    let top = df
        .clone()
        .lazy()
        .filter(col(SRC_MAC).is_not_null())
        .group_by([col(SRC_MAC)])
        .agg([col("packets").sum()])
        .sort(["packets", SRC_MAC], order(&[true, false]))
        .limit(3)
        .collect()?;
    strs(&top, SRC_MAC)
}

/// The flood and the scans of a night's cube (keys as text), most ports first.
pub(super) fn floods(cube: &DataFrame) -> PolarsResult<Vec<Flood>> {
    let ip = cube
        .clone()
        .lazy()
        .filter(col(SRC).is_not_null().and(col(IP_VERSION).is_not_null()))
        .collect()?;
    let mut out = Vec::new();
    let local = ip.filter(&mask(&ip, SRC, is_local)?)?;
    let sources = u64::try_from(local.column(SRC)?.n_unique()?).unwrap_or(u64::MAX);
    if sources >= FLOOD_MIN_SOURCES {
        out.push(spread(&local, "sources", String::new(), sources)?);
    }
    // No source can reach more ports or destinations than the night has.
    let distinct = |c: &str| -> PolarsResult<u64> {
        Ok(u64::try_from(ip.column(c)?.drop_nulls().n_unique()?).unwrap_or(u64::MAX))
    };
    if distinct("port")? < SCAN_MIN_PORTS && distinct(DST)? < SCAN_MIN_PORTS * 10 {
        return Ok(out);
    }
    let scans = ip
        .clone()
        .lazy()
        .group_by([col(SRC)])
        .agg([
            col(DST).drop_nulls().n_unique().alias("destinations"),
            col("port").drop_nulls().n_unique().alias("ports"),
        ])
        .filter(
            col("ports")
                .cast(DataType::UInt64)
                .gt_eq(lit(SCAN_MIN_PORTS))
                .or(col("destinations")
                    .cast(DataType::UInt64)
                    .gt_eq(lit(SCAN_MIN_PORTS * 10))),
        )
        .sort(["ports", "destinations", SRC], order(&[true, true, false]))
        .limit(MAX_SCANS as IdxSize)
        .collect()?;
    for src in strs(&scans, SRC)? {
        let mine = ip
            .clone()
            .lazy()
            .filter(col(SRC).eq(lit(src.clone())))
            .collect()?;
        out.push(spread(&mine, "scan", src, 1)?);
    }
    Ok(out)
}

/// The line for the cube rows `df` of one flood or scan.
fn spread(df: &DataFrame, kind: &str, src: String, sources: u64) -> PolarsResult<Flood> {
    let counts = df
        .clone()
        .lazy()
        .select([
            col(DST)
                .drop_nulls()
                .n_unique()
                .cast(DataType::UInt64)
                .alias("d"),
            col("port")
                .drop_nulls()
                .n_unique()
                .cast(DataType::UInt64)
                .alias("p"),
            col(SRC_MAC)
                .drop_nulls()
                .n_unique()
                .cast(DataType::UInt64)
                .alias("m"),
            col("packets").sum().alias("n"),
        ])
        .collect()?;
    let macs = df
        .column(SRC_MAC)?
        .as_materialized_series()
        .drop_nulls()
        .unique()?;
    let local_macs = mask(&macs.into_frame(), SRC_MAC, local_mac)?
        .sum()
        .unwrap_or(0);
    Ok(Flood {
        kind: kind.to_string(),
        src,
        sources,
        destinations: n(&counts, "d")?,
        ports: n(&counts, "p")?,
        packets: n(&counts, "n")?,
        macs: n(&counts, "m")?,
        local_macs: u64::from(local_macs),
        top_macs: top_macs(df)?,
    })
}

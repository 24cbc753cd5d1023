//! Reading a night: the three streaming queries (cube, pings, ARP) over one Parquet
//! file, with cube slots that divide both the timeline interval and the zone's offset.

use std::net::IpAddr;
use std::path::Path;

use polars::prelude::*;

use super::arp::arp_plan;
use super::cube::cube_plan;
use super::pings::{Pings, ping_rows, pings_plan};
use super::summed;
use super::tables::Tables;
use crate::config::Zone;
use crate::dataframe::{CollectStreaming as _, i64s};
use crate::parquet_schema::{DST, PROTOCOL, SRC, SRC_MAC, TS};

/// A night read by [`read_night`]: the cube and the ARP senders as DataFrames with
/// their keys as text (rolled up in polars, see `rollup`), and the pings chart's rows.
pub(super) struct Night {
    /// Columns: slot, protocol, src, dst, ip_version, port, src_mac, packets, bytes,
    /// first, last, errors.
    pub(super) cube: DataFrame,
    /// Cube slots in ns: divides the timeline interval and the zone's UTC offset.
    pub(super) slot_ns: i64,
    pub(super) pings: Pings,
    /// Columns: ip, mac, requests, replies, packets, bytes, first, last.
    pub(super) arp: DataFrame,
}

/// The cube's key columns that hold ids in a file with tables (`true`: an address).
const CUBE_KEYS: [(&str, bool); 4] = [(PROTOCOL, false), (SRC, true), (DST, true), (SRC_MAC, true)];

fn first_ns(cube: &DataFrame) -> PolarsResult<Option<i64>> {
    cube.column("first")?.as_materialized_series().min::<i64>()
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

/// Reads a night: the cube with slots of the timeline interval when the zone's UTC
/// offset at the first packet is a whole number of intervals (as it is for 10 minutes
/// in every zone but a few), else of their greatest common divisor, so that each slot
/// lies in one timeline bin. The offset is taken at the file's first row (one row read)
/// and checked against the earliest packet once the cube is read; in the rare case they
/// differ (a DST change between them) the cube is read again with finer slots.
pub(super) fn read_night(
    parquet: &Path,
    interval_s: u64,
    zone: Zone,
    own: &[IpAddr],
    max_rows: usize,
) -> PolarsResult<Night> {
    let step = i64::try_from(interval_s.max(1))
        .unwrap_or(i64::MAX / 2_000_000_000)
        .saturating_mul(1_000_000_000);
    let base = LazyFrame::scan_parquet(
        PlRefPath::try_from_path(parquet)?,
        ScanArgsParquet::default(),
    )?;
    let head = base
        .clone()
        .select([col(TS).cast(DataType::Int64)])
        .limit(1)
        .collect()?;
    let mut slot_ns = match i64s(&head, TS)?.first() {
        Some(&t) => gcd(step, zone.offset_s(t) * 1_000_000_000),
        None => step,
    };
    // The three queries from the roll-up convert summed, when there is one for these
    // slots; else three streaming queries over the packets, one after the other (one run
    // with three sinks was no faster and held more memory).
    let t = std::time::Instant::now();
    let tables = Tables::read(parquet);
    let tables = tables.as_ref();
    let read_cube = |slot_ns: i64, rollup: Option<LazyFrame>| -> PolarsResult<DataFrame> {
        let df = match rollup {
            Some(r) => summed::cube(r, slot_ns).collect()?,
            None => cube_plan(base.clone(), slot_ns, tables).collect_streaming()?,
        };
        Tables::with_text_keys(tables, df, &CUBE_KEYS)
    };
    let rollup = summed::open(parquet, tables, slot_ns);
    let mut cube = read_cube(slot_ns, rollup.clone())?;
    let cube_ms = t.elapsed().as_millis();
    let (pings_df, arp_df) = match &rollup {
        Some(r) => (
            summed::pings(r.clone())?.collect()?,
            Tables::with_text_keys(tables, summed::arp(r.clone()).collect()?, &[("ip", true)])?,
        ),
        None => (
            pings_plan(base.clone(), tables).collect_streaming()?,
            arp_plan(base.clone(), tables).collect_streaming()?,
        ),
    };
    let pings_ms = t.elapsed().as_millis() - cube_ms;
    tracing::debug!(
        ms = t.elapsed().as_millis(),
        cube_ms,
        pings_ms,
        cube_rows = cube.height(),
        id_keys = tables.is_some(),
        rollup = rollup.is_some(),
        slot_s = slot_ns / 1_000_000_000,
        "analyse: queries"
    );
    if let Some(first) = first_ns(&cube)? {
        let off_ns = zone.offset_s(first) * 1_000_000_000;
        if off_ns % slot_ns != 0 {
            slot_ns = gcd(slot_ns, off_ns);
            cube = read_cube(slot_ns, summed::open(parquet, tables, slot_ns))?;
        }
    }
    Ok(Night {
        cube,
        slot_ns,
        pings: ping_rows(&pings_df, own, tables, max_rows)?,
        arp: Tables::with_text_keys(tables, arp_df, &[("mac", true)])?,
    })
}

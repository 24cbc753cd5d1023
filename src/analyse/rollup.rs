//! Roll-ups of the cube done inside polars: the cube stays a DataFrame (keys as text,
//! one compact row per distinct key) and each section is grouped, sorted and cut to its
//! top rows there, so only the rows the report shows become Rust values. Memory follows
//! the cube's columns (tens of bytes per distinct key), and the summary and the report
//! follow the configured row counts, whatever the number of distinct addresses, ports
//! and MACs.

use polars::prelude::*;

use super::talkers::service_name;
use super::{Conversation, PortRow, Talker};
use crate::dataframe::{i64s, strs, u64s};
use crate::parquet_schema::{DST, IP_VERSION, PROTOCOL, SRC};

/// Packets and bytes per (time slot, protocol): totals, timeline and protocol mix.
#[derive(Debug, Clone)]
pub(super) struct SlotRow {
    /// Slot start (UTC ns, a multiple of the cube's granularity).
    pub(super) slot: i64,
    pub(super) protocol: String,
    pub(super) packets: u64,
    pub(super) bytes: u64,
    /// Packets with an IP header.
    pub(super) ip_packets: u64,
    pub(super) first_ns: i64,
    pub(super) last_ns: i64,
    pub(super) decode_errors: u64,
}

/// `n` as polars' row count (saturating).
pub(super) fn idx(n: usize) -> IdxSize {
    IdxSize::try_from(n).unwrap_or(IdxSize::MAX)
}

/// A u64 zero (a bare literal is a "dynamic" integer that unions refuse).
fn zero() -> Expr {
    lit(0u64).cast(DataType::UInt64)
}

/// Sort options: descending for the columns flagged.
pub(super) fn order(descending: &[bool]) -> SortMultipleOptions {
    SortMultipleOptions::default()
        .with_order_descending_multi(descending.to_vec())
        .with_maintain_order(true)
}

/// A row's place in [`top_rows`]: count (largest first), texts, row index.
type Ranked<'a> = (
    std::cmp::Reverse<u64>,
    Option<&'a str>,
    Option<&'a str>,
    usize,
);

/// The `k` rows of `df` with the largest `count`, ties by the texts `by` (one or two
/// columns) ascending, in that order: one pass over borrowed column data with a heap of
/// `k` rows, so a million tied rows cost no sort and no `String` each.
pub(super) fn top_rows(
    df: &DataFrame,
    count: &str,
    by: &[&str],
    k: usize,
) -> PolarsResult<DataFrame> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    if k == 0 || df.height() == 0 {
        return Ok(df.head(Some(0)));
    }
    let counts = df.column(count)?.cast(&DataType::UInt64)?;
    let text = |i: usize| -> PolarsResult<Option<StringChunked>> {
        by.get(i)
            .map(|c| Ok(df.column(c)?.cast(&DataType::String)?.str()?.clone()))
            .transpose()
    };
    let (t1, t2) = (text(0)?, text(1)?);
    let none = || std::iter::repeat(None);
    let first: Box<dyn Iterator<Item = Option<&str>>> = match &t1 {
        Some(t) => Box::new(t.iter()),
        None => Box::new(none()),
    };
    let second: Box<dyn Iterator<Item = Option<&str>>> = match &t2 {
        Some(t) => Box::new(t.iter()),
        None => Box::new(none()),
    };
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k + 1);
    for (i, ((n, a), b)) in counts.u64()?.iter().zip(first).zip(second).enumerate() {
        let row = (Reverse(n.unwrap_or(0)), a, b, i);
        if heap.len() < k {
            heap.push(row);
        } else if heap.peek().is_some_and(|worst| row < *worst) {
            heap.pop();
            heap.push(row);
        }
    }
    let idx: Vec<IdxSize> = heap
        .into_sorted_vec()
        .into_iter()
        .map(|(_, _, _, i)| idx(i))
        .collect();
    df.take(&IdxCa::from_vec("idx".into(), idx))
}

pub(super) fn slots(cube: &DataFrame) -> PolarsResult<Vec<SlotRow>> {
    let df = cube
        .clone()
        .lazy()
        .group_by([col("slot"), col(PROTOCOL)])
        .agg([
            col("packets").sum(),
            col("bytes").sum(),
            when(col(IP_VERSION).is_not_null())
                .then(col("packets"))
                .otherwise(zero())
                .sum()
                .alias("ip_packets"),
            col("first").min(),
            col("last").max(),
            col("errors").sum(),
        ])
        .collect()?;
    let (slot, protocol) = (i64s(&df, "slot")?, strs(&df, PROTOCOL)?);
    let (packets, bytes, ip) = (
        u64s(&df, "packets")?,
        u64s(&df, "bytes")?,
        u64s(&df, "ip_packets")?,
    );
    let (first, last, errors) = (
        i64s(&df, "first")?,
        i64s(&df, "last")?,
        u64s(&df, "errors")?,
    );
    Ok(protocol
        .into_iter()
        .enumerate()
        .map(|(i, protocol)| SlotRow {
            slot: slot[i],
            protocol,
            packets: packets[i],
            bytes: bytes[i],
            ip_packets: ip[i],
            first_ns: first[i],
            last_ns: last[i],
            decode_errors: errors[i],
        })
        .collect())
}

/// Packets and bytes per (source, destination) of IP packets.
pub(super) fn pairs(cube: &DataFrame) -> PolarsResult<DataFrame> {
    cube.clone()
        .lazy()
        .filter(
            col(SRC)
                .is_not_null()
                .and(col(DST).is_not_null())
                .and(col(IP_VERSION).is_not_null()),
        )
        .group_by([col(SRC), col(DST)])
        .agg([col("packets").sum(), col("bytes").sum()])
        .collect()
}

/// Distinct addresses among IP packets' sources and destinations.
pub(super) fn hosts(pairs: &DataFrame) -> PolarsResult<u64> {
    let mut all = pairs.column(SRC)?.as_materialized_series().clone();
    all.append(pairs.column(DST)?.as_materialized_series())?;
    Ok(u64::try_from(all.n_unique()?).unwrap_or(u64::MAX))
}

/// The top `n` addresses by bytes and by packets (ties by address), and how many
/// addresses are not listed.
pub(super) fn talkers(
    pairs: &DataFrame,
    n: usize,
) -> PolarsResult<(Vec<Talker>, Vec<Talker>, u64)> {
    let side = |addr: &str, tx: bool| {
        let (p, b) = (col("packets"), col("bytes"));
        pairs.clone().lazy().select([
            col(addr).alias("addr"),
            if tx { p.clone() } else { zero() }.alias("tx_packets"),
            if tx { b.clone() } else { zero() }.alias("tx_bytes"),
            if tx { zero() } else { p }.alias("rx_packets"),
            if tx { zero() } else { b }.alias("rx_bytes"),
        ])
    };
    let all = concat([side(SRC, true), side(DST, false)], UnionArgs::default())?
        .group_by([col("addr")])
        .agg([
            col("tx_packets").sum(),
            col("tx_bytes").sum(),
            col("rx_packets").sum(),
            col("rx_bytes").sum(),
        ])
        .with_columns([
            (col("tx_packets") + col("rx_packets")).alias("packets"),
            (col("tx_bytes") + col("rx_bytes")).alias("bytes"),
        ])
        .collect()?;
    let top = |by: &str| -> PolarsResult<Vec<Talker>> {
        let df = top_rows(&all, by, &["addr"], n)?;
        let addr = strs(&df, "addr")?;
        let [p, b, tp, tb, rp, rb] = [
            "packets",
            "bytes",
            "tx_packets",
            "tx_bytes",
            "rx_packets",
            "rx_bytes",
        ]
        .map(|c| u64s(&df, c));
        let (p, b, tp, tb, rp, rb) = (p?, b?, tp?, tb?, rp?, rb?);
        Ok(addr
            .into_iter()
            .enumerate()
            .map(|(i, addr)| Talker {
                addr,
                packets: p[i],
                bytes: b[i],
                tx_packets: tp[i],
                tx_bytes: tb[i],
                rx_packets: rp[i],
                rx_bytes: rb[i],
                name: None,
            })
            .collect())
    };
    let rest = all.height().saturating_sub(n);
    Ok((
        top("bytes")?,
        top("packets")?,
        u64::try_from(rest).unwrap_or(u64::MAX),
    ))
}

/// The top `n` address pairs by bytes (`a` the smaller address as text), and how many
/// pairs are not listed.
pub(super) fn conversations(pairs: &DataFrame, n: usize) -> PolarsResult<(Vec<Conversation>, u64)> {
    let fwd = col(SRC).lt(col(DST));
    let pick = |yes: Expr, no: Expr| when(fwd.clone()).then(yes).otherwise(no);
    let all = pairs
        .clone()
        .lazy()
        .select([
            pick(col(SRC), col(DST)).alias("a"),
            pick(col(DST), col(SRC)).alias("b"),
            col("packets"),
            col("bytes"),
            pick(col("packets"), zero()).alias("packets_a_to_b"),
            pick(col("bytes"), zero()).alias("bytes_a_to_b"),
            pick(zero(), col("packets")).alias("packets_b_to_a"),
            pick(zero(), col("bytes")).alias("bytes_b_to_a"),
        ])
        .group_by([col("a"), col("b")])
        .agg([
            col("packets").sum(),
            col("bytes").sum(),
            col("packets_a_to_b").sum(),
            col("bytes_a_to_b").sum(),
            col("packets_b_to_a").sum(),
            col("bytes_b_to_a").sum(),
        ])
        .collect()?;
    let rest = u64::try_from(all.height().saturating_sub(n)).unwrap_or(u64::MAX);
    let df = top_rows(&all, "bytes", &["a", "b"], n)?;
    let (a, b) = (strs(&df, "a")?, strs(&df, "b")?);
    let [p, by, pab, bab, pba, bba] = [
        "packets",
        "bytes",
        "packets_a_to_b",
        "bytes_a_to_b",
        "packets_b_to_a",
        "bytes_b_to_a",
    ]
    .map(|c| u64s(&df, c));
    let (p, by, pab, bab, pba, bba) = (p?, by?, pab?, bab?, pba?, bba?);
    let rows = a
        .into_iter()
        .zip(b)
        .enumerate()
        .map(|(i, (a, b))| Conversation {
            a,
            b,
            packets: p[i],
            bytes: by[i],
            packets_a_to_b: pab[i],
            bytes_a_to_b: bab[i],
            packets_b_to_a: pba[i],
            bytes_b_to_a: bba[i],
            a_name: None,
            b_name: None,
        })
        .collect();
    Ok((rows, rest))
}

/// The services not among the top ones, folded into one "other" row.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct OtherPorts {
    pub(super) services: u64,
    pub(super) packets: u64,
    pub(super) bytes: u64,
}

/// Top services: for each TCP/UDP packet the lower of its two ports (the service side,
/// as a rule), most packets first; the rest folded into [`OtherPorts`].
pub(super) fn ports(cube: &DataFrame, n: usize) -> PolarsResult<(Vec<PortRow>, OtherPorts)> {
    let all = cube
        .clone()
        .lazy()
        .filter(col("port").is_not_null())
        .group_by([col(PROTOCOL), col("port")])
        .agg([col("packets").sum(), col("bytes").sum()])
        .sort(["packets", PROTOCOL, "port"], order(&[true, false, false]))
        .collect()?;
    let head = all.head(Some(n));
    let (protocol, port) = (strs(&head, PROTOCOL)?, u64s(&head, "port")?);
    let (packets, bytes) = (u64s(&head, "packets")?, u64s(&head, "bytes")?);
    let rows: Vec<PortRow> = protocol
        .into_iter()
        .enumerate()
        .map(|(i, protocol)| {
            let port = u16::try_from(port[i]).unwrap_or(u16::MAX);
            PortRow {
                service: service_name(&protocol, port).to_string(),
                protocol,
                port,
                packets: packets[i],
                bytes: bytes[i],
            }
        })
        .collect();
    let total = |c: &str| -> PolarsResult<u64> { Ok(u64s(&all, c)?.iter().sum()) };
    let other = OtherPorts {
        services: u64::try_from(all.height().saturating_sub(n)).unwrap_or(u64::MAX),
        packets: total("packets")? - rows.iter().map(|r| r.packets).sum::<u64>(),
        bytes: total("bytes")? - rows.iter().map(|r| r.bytes).sum::<u64>(),
    };
    Ok((rows, other))
}

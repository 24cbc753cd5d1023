//! The ARP query (packets per sender IP and source MAC), the ARP section, and the
//! night's devices (ARP senders and the sources of IP packets, local addresses only).

use polars::prelude::*;

use super::ArpRow;
use super::night::Night;
use super::rollup::top_rows;
use super::tables::Tables;
use crate::dataframe::{mask, strs, u64s};
use crate::devices::is_local;
use crate::parquet_schema::{
    ARP_OP, ARP_SENDER_IP, IP_VERSION, SRC, SRC_MAC, SRC_MAC_ID, TS, WIRE_LEN,
};

/// ARP packets per (sender IP, source MAC): the ARP section and the ARP half of devices.
pub(super) fn arp_plan(base: LazyFrame, tables: Option<&Tables>) -> LazyFrame {
    let ts = col(TS).cast(DataType::Int64);
    base.filter(
        col(ARP_OP)
            .is_not_null()
            .and(col(ARP_SENDER_IP).is_not_null()),
    )
    .group_by([
        col(ARP_SENDER_IP).alias("ip"),
        Tables::key(tables, SRC_MAC, SRC_MAC_ID).alias("mac"),
    ])
    .agg([
        col(ARP_OP)
            .eq(lit(1u16))
            .cast(DataType::UInt64)
            .sum()
            .alias("requests"),
        col(ARP_OP)
            .eq(lit(2u16))
            .cast(DataType::UInt64)
            .sum()
            .alias("replies"),
        len().cast(DataType::UInt64).alias("packets"),
        col(WIRE_LEN).cast(DataType::UInt64).sum().alias("bytes"),
        ts.clone().min().alias("first"),
        ts.max().alias("last"),
    ])
}

/// Who is on the LAN: ARP senders (IP and MAC), with their requests and replies, at
/// most `max_rows` (those with the most ARP packets), by address; and how many more.
pub(super) fn arp(senders: &DataFrame, max_rows: usize) -> PolarsResult<(Vec<ArpRow>, u64)> {
    let all = senders
        .clone()
        .lazy()
        .filter(col("ip").neq(lit("0.0.0.0")))
        .with_column(col("mac").fill_null(lit("")))
        .collect()?;
    let rest = u64::try_from(all.height().saturating_sub(max_rows)).unwrap_or(u64::MAX);
    let df = if rest > 0 {
        top_rows(&all, "packets", &["ip", "mac"], max_rows)?
    } else {
        all
    };
    let (ip, mac) = (strs(&df, "ip")?, strs(&df, "mac")?);
    let (req, rep) = (u64s(&df, "requests")?, u64s(&df, "replies")?);
    let mut rows: Vec<ArpRow> = ip
        .into_iter()
        .zip(mac)
        .enumerate()
        .map(|(i, (ip, mac))| ArpRow {
            ip,
            mac,
            requests: req[i],
            replies: rep[i],
        })
        .collect();
    rows.sort_by(|x, y| (&x.ip, &x.mac).cmp(&(&y.ip, &y.mac)));
    Ok((rows, rest))
}

/// The local (source MAC, source IP) pairs of a night: of IP packets and of ARP
/// senders, local addresses only, one row per pair with first, last, packets and bytes.
/// [`super::naming`] makes devices of them.
pub(super) fn local_pairs(night: &Night) -> PolarsResult<DataFrame> {
    let ip_rows = night
        .cube
        .clone()
        .lazy()
        .filter(
            col(SRC_MAC)
                .is_not_null()
                .and(col(SRC).is_not_null())
                .and(col(IP_VERSION).is_not_null()),
        )
        .select([
            col(SRC_MAC).alias("mac"),
            col(SRC).alias("ip"),
            col("first"),
            col("last"),
            col("packets"),
            col("bytes"),
        ]);
    let arp_rows = night
        .arp
        .clone()
        .lazy()
        .filter(col("mac").is_not_null())
        .select([
            col("mac"),
            col("ip"),
            col("first"),
            col("last"),
            col("packets"),
            col("bytes"),
        ]);
    let both = concat([ip_rows, arp_rows], UnionArgs::default())?.collect()?;
    let local = mask(&both, "ip", is_local)?
        & mask(&both, "mac", |m| {
            m != "00:00:00:00:00:00" && m != "ff:ff:ff:ff:ff:ff"
        })?;
    both.filter(&local)?
        .lazy()
        .group_by([col("mac"), col("ip")])
        .agg([
            col("first").min(),
            col("last").max(),
            col("packets").sum(),
            col("bytes").sum(),
        ])
        .collect()
}

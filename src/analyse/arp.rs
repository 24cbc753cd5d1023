//! The ARP query (packets per sender IP and source MAC), the ARP section, and the
//! night's devices (ARP senders and the sources of IP packets, local addresses only).

use std::collections::BTreeMap;

use polars::prelude::*;

use super::ArpRow;
use super::night::Night;
use super::tables::Tables;
use crate::dataframe::{i64s, strs, u64s};
use crate::devices::{Device, is_local};
use crate::parquet_schema::{ARP_OP, ARP_SENDER_IP, SRC_MAC, SRC_MAC_ID, TS, WIRE_LEN};

/// ARP packets per (sender IP, source MAC).
#[derive(Debug, Clone)]
pub(super) struct ArpSender {
    pub(super) ip: String,
    pub(super) mac: Option<String>,
    pub(super) requests: u64,
    pub(super) replies: u64,
    pub(super) packets: u64,
    pub(super) bytes: u64,
    pub(super) first_ns: i64,
    pub(super) last_ns: i64,
}

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

pub(super) fn arp_rows(df: &DataFrame, tables: Option<&Tables>) -> PolarsResult<Vec<ArpSender>> {
    let (ip, mac) = (strs(df, "ip")?, Tables::addresses(tables, df, "mac")?);
    let (req, rep) = (u64s(df, "requests")?, u64s(df, "replies")?);
    let (packets, bytes) = (u64s(df, "packets")?, u64s(df, "bytes")?);
    let (first, last) = (i64s(df, "first")?, i64s(df, "last")?);
    Ok((0..ip.len())
        .map(|i| ArpSender {
            ip: ip[i].clone(),
            mac: mac[i].clone(),
            requests: req[i],
            replies: rep[i],
            packets: packets[i],
            bytes: bytes[i],
            first_ns: first[i],
            last_ns: last[i],
        })
        .collect())
}

/// Who is on the LAN: ARP senders (IP and MAC), with their requests and replies.
pub(super) fn arp(senders: &[ArpSender]) -> Vec<ArpRow> {
    let mut rows: Vec<ArpRow> = senders
        .iter()
        .filter(|a| a.ip != "0.0.0.0")
        .map(|a| ArpRow {
            ip: a.ip.clone(),
            mac: a.mac.clone().unwrap_or_default(),
            requests: a.requests,
            replies: a.replies,
        })
        .collect();
    rows.sort_by(|x, y| (&x.ip, &x.mac).cmp(&(&y.ip, &y.mac)));
    rows
}

/// The devices in a night: (source MAC, source IP) of IP packets, plus ARP senders,
/// local addresses only.
pub(super) fn night_devices_of(night: &Night) -> Vec<Device> {
    // (mac, ip, first, last, packets, bytes) of IP packets, then of ARP senders.
    let ip_rows = night
        .cube
        .iter()
        .filter_map(|r| match (&r.src_mac, &r.src, r.ip_version) {
            (Some(mac), Some(ip), Some(_)) => {
                Some((mac, ip, r.first_ns, r.last_ns, r.packets, r.bytes))
            }
            _ => None,
        });
    let arp_rows = night.arp.iter().filter_map(|a| {
        a.mac
            .as_ref()
            .map(|mac| (mac, &a.ip, a.first_ns, a.last_ns, a.packets, a.bytes))
    });
    let mut by: BTreeMap<(&str, &str), Device> = BTreeMap::new();
    for (mac, ip, first, last, packets, bytes) in ip_rows.chain(arp_rows) {
        let d = by.entry((mac, ip)).or_insert_with(|| Device {
            mac: mac.clone(),
            ip: ip.clone(),
            first_seen_ns: first,
            last_seen_ns: last,
            packets: 0,
            bytes: 0,
        });
        d.first_seen_ns = d.first_seen_ns.min(first);
        d.last_seen_ns = d.last_seen_ns.max(last);
        d.packets += packets;
        d.bytes += bytes;
    }
    let mut out: Vec<Device> = by
        .into_values()
        .filter(|d| is_local(&d.ip) && d.mac != "00:00:00:00:00:00" && d.mac != "ff:ff:ff:ff:ff:ff")
        .collect();
    out.sort();
    out
}

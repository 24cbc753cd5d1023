//! The roll-up convert wrote beside the packets (`rollup.parquet`, see
//! [`crate::parquet_schema::rollup`]): the same three query results as grouping every
//! packet (`cube`, `pings`, `arp`), grouped from thousands of partial sums instead.
//!
//! Invariant: a roll-up is read only when its token is the one in the packets file's
//! footer and the file has its id tables (the roll-up's keys are those ids), and only
//! for cube slots that are whole multiples of its 5 minutes; otherwise the packets are
//! grouped, with the same results.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use super::pings::per_initiator;
use super::tables::Tables;
use crate::dataframe::u64s;
use crate::parquet_schema::rollup::{
    ARP, BYTES, CUBE, ECHO, ERRORS, EXCHANGE, FIRST, LAST, PACKETS, PINGS, PORT, REPLIES, REQUESTS,
    RESPONDERS, SLOT, SLOT_NS, TABLE, UNANSWERED,
};
use crate::parquet_schema::{
    DST, DST_ID, IP_VERSION, PROTOCOL, PROTOCOL_ID, ROLLUP_TOKEN_KEY, SRC, SRC_ID, SRC_MAC,
    SRC_MAC_ID,
};

/// The roll-up beside `packets`, when it was written with it and can give slots of
/// `slot_ns`.
pub(super) fn open(packets: &Path, tables: Option<&Tables>, slot_ns: i64) -> Option<LazyFrame> {
    let token = tables?.rollup_token.as_deref()?;
    if slot_ns <= 0 || slot_ns % SLOT_NS != 0 {
        return None;
    }
    let path = packets.with_file_name(crate::layout::ROLLUP_PARQUET);
    let mut f = std::fs::File::open(&path).ok()?;
    let meta = polars_parquet::read::read_metadata(&mut f).ok()?;
    let theirs = meta
        .key_value_metadata
        .as_ref()?
        .iter()
        .find(|kv| kv.key == ROLLUP_TOKEN_KEY)?
        .value
        .as_deref()?;
    if theirs != token {
        tracing::debug!(path = %path.display(), "analyse: the roll-up is not this file's");
        return None;
    }
    LazyFrame::scan_parquet(
        PlRefPath::try_from_path(&path).ok()?,
        ScanArgsParquet::default(),
    )
    .ok()
}

/// `cube::cube_plan`'s result (id keys) from the roll-up.
pub(super) fn cube(rollup: LazyFrame, slot_ns: i64) -> LazyFrame {
    rollup
        .filter(col(TABLE).eq(lit(CUBE)))
        .group_by([
            (col(SLOT) - col(SLOT) % lit(slot_ns)).alias("slot"),
            col(PROTOCOL_ID).alias(PROTOCOL),
            col(SRC_ID).alias(SRC),
            col(DST_ID).alias(DST),
            col(IP_VERSION),
            col(PORT).alias("port"),
            col(SRC_MAC_ID).alias(SRC_MAC),
        ])
        .agg(with_traffic([col(ERRORS).sum()]))
}

/// `more` and the traffic of a group's rows added up: packets, bytes, first and last
/// time (columns named as in the packets' queries).
fn with_traffic<const N: usize>(more: [Expr; N]) -> Vec<Expr> {
    let mut v = vec![
        col(PACKETS).sum(),
        col(BYTES).sum(),
        col(FIRST).min(),
        col(LAST).max(),
    ];
    v.extend(more);
    v
}

/// `pings::pings_plan`'s result (initiator ids) from the roll-up: its rows per
/// initiator, or (when convert wrote exchanges because it could not hold them all) the
/// exchanges summed here. A roll-up holds one or the other.
pub(super) fn pings(rollup: LazyFrame) -> PolarsResult<LazyFrame> {
    let exchanges = per_initiator(
        rollup
            .clone()
            .filter(col(TABLE).eq(lit(ECHO)))
            .group_by([col(EXCHANGE)])
            .agg([
                col(REQUESTS).sum().alias("requests"),
                col(REPLIES).sum().alias("replies"),
            ])
            .select([
                (col(EXCHANGE) / lit(1u64 << 48)).alias("initiator"),
                col("requests"),
                col("replies"),
            ]),
    );
    let summed = rollup
        .filter(col(TABLE).eq(lit(PINGS)))
        .select([
            col(SRC_ID).cast(DataType::UInt64).alias("initiator"),
            col(REQUESTS).alias("requests"),
            col(REPLIES).alias("replies"),
            col(UNANSWERED).alias("unanswered"),
        ])
        .filter(col("requests").gt(lit(0u64)));
    concat([exchanges, summed], UnionArgs::default())
}

/// `arp::arp_plan`'s result from the roll-up, with the sender IP as an id.
pub(super) fn arp(rollup: LazyFrame) -> LazyFrame {
    rollup
        .filter(col(TABLE).eq(lit(ARP)))
        .group_by([col(SRC_ID).alias("ip"), col(SRC_MAC_ID).alias("mac")])
        .agg(with_traffic([col(REQUESTS).sum(), col(REPLIES).sum()]))
}

/// Echo requests sent to each address, and echo replies each address sent.
pub(super) type EchoCounts = (HashMap<String, u64>, HashMap<String, u64>);

/// Echo requests sent to each address and echo replies each address sent (the
/// findings' "answers pings"), from the roll-up beside `packets`; `None` without one.
pub(super) fn echo_counts(packets: &Path) -> Option<PolarsResult<EchoCounts>> {
    let tables = Tables::read(packets)?;
    let rollup = open(packets, Some(&tables), SLOT_NS)?;
    let read = || {
        let df = rollup
            .filter(col(TABLE).eq(lit(RESPONDERS)))
            .select([col(SRC_ID).alias("addr"), col(REQUESTS), col(REPLIES)])
            .collect()?;
        let addrs = Tables::addresses(Some(&tables), &df, "addr")?;
        let (to, from) = (u64s(&df, REQUESTS)?, u64s(&df, REPLIES)?);
        let (mut requests, mut replies) = (HashMap::new(), HashMap::new());
        for ((addr, to), from) in addrs.into_iter().zip(to).zip(from) {
            let Some(addr) = addr else { continue };
            if to > 0 {
                requests.insert(addr.clone(), to);
            }
            if from > 0 {
                replies.insert(addr, from);
            }
        }
        Ok((requests, replies))
    };
    Some(read())
}

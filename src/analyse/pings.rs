//! The pings query: ICMP/ICMPv6 echo requests and replies, grouped per exchange (peer,
//! identifier, sequence number) and rolled up per source for the pings chart.

use std::net::IpAddr;

use polars::prelude::*;

use super::PingRow;
use super::rollup::top_rows;
use super::tables::Tables;
use crate::dataframe::{strs, u64s};
use crate::parquet_schema::{
    DST, DST_ID, ICMP_ID, ICMP_SEQ, ICMP_TYPE, IP_PROTO, NO_ID, SRC, SRC_ID,
};

/// ICMP (IP protocol 1) or ICMPv6 (58) messages of the given type. `icmp_type` is set
/// only on frames decoded as ICMP/ICMPv6, so this is the same set as testing the
/// `protocol` text, without reading that column.
fn echo(kind_v4: u8, kind_v6: u8) -> Expr {
    (col(IP_PROTO)
        .eq(lit(1u8))
        .and(col(ICMP_TYPE).eq(lit(kind_v4))))
    .or(col(IP_PROTO)
        .eq(lit(58u8))
        .and(col(ICMP_TYPE).eq(lit(kind_v6))))
}

/// Echo requests per source, replies it received, and requests no reply answered (same
/// peer, identifier and sequence number): requests and replies are grouped together on
/// (initiator, responder, id, seq), so matching needs no join.
pub(super) fn pings_plan(base: LazyFrame, tables: Option<&Tables>) -> LazyFrame {
    let request = echo(8, 128);
    per_initiator(match tables {
        Some(_) => id_exchanges(base, request.clone()),
        None => text_exchanges(base, request),
    })
}

/// Requests, replies and unanswered requests per initiator, from exchanges (columns
/// initiator, requests, replies: one row per exchange).
pub(super) fn per_initiator(exchanges: LazyFrame) -> LazyFrame {
    exchanges
        .group_by([col("initiator")])
        .agg([
            col("requests").sum(),
            col("replies").sum(),
            when(col("replies").eq(lit(0u64)))
                .then(col("requests"))
                .otherwise(lit(0u64))
                .sum()
                .alias("unanswered"),
        ])
        .filter(col("requests").gt(lit(0u64)))
}

/// Echo exchanges keyed by one u64 built from the address ids (u16, [`NO_ID`] never an
/// address): initiator, responder, identifier, sequence number, 16 bits each. Messages
/// without identifier/sequence (cut short) form one exchange per address pair, keyed
/// initiator, [`NO_ID`], responder. Echo messages are IP packets, so both ids are set.
fn id_exchanges(base: LazyFrame, request: Expr) -> LazyFrame {
    let u = |e: Expr| e.cast(DataType::UInt64);
    let initiator = u(when(request.clone())
        .then(col(SRC_ID))
        .otherwise(col(DST_ID)));
    let responder = u(when(request.clone())
        .then(col(DST_ID))
        .otherwise(col(SRC_ID)));
    let no_id = u64::from(NO_ID);
    let has_seq = col(ICMP_ID).is_not_null().and(col(ICMP_SEQ).is_not_null());
    let key = col("initiator") * lit(1u64 << 48)
        + when(has_seq)
            .then(
                responder.clone() * lit(1u64 << 32)
                    + u(col(ICMP_ID)) * lit(1u64 << 16)
                    + u(col(ICMP_SEQ)),
            )
            .otherwise(lit(no_id << 32) + responder);
    base.filter(request.clone().or(echo(0, 129)))
        .with_column(initiator.alias("initiator"))
        .filter(col("initiator").lt(lit(no_id)))
        .select([
            key.alias("exchange"),
            request.cast(DataType::UInt64).alias("request"),
        ])
        .group_by([col("exchange")])
        .agg([
            col("request").sum().alias("requests"),
            (len().cast(DataType::UInt64) - col("request").sum()).alias("replies"),
        ])
        .select([
            (col("exchange") / lit(1u64 << 48)).alias("initiator"),
            col("requests"),
            col("replies"),
        ])
}

/// Echo exchanges keyed by (initiator, responder) as codes of one categorical mapping
/// and (id, seq) (null id/seq: a code of their own), for files without id tables.
fn text_exchanges(base: LazyFrame, request: Expr) -> LazyFrame {
    let cat = || DataType::from_categories(Categories::global());
    let code = |e: Expr| e.to_physical().cast(DataType::UInt64);
    let (src, dst) = (col(SRC).cast(cat()), col(DST).cast(cat()));
    let initiator = when(request.clone())
        .then(src.clone())
        .otherwise(dst.clone());
    let responder = when(request.clone()).then(dst).otherwise(src);
    let exchange = (col(ICMP_ID).cast(DataType::UInt64) * lit(1u64 << 16)
        + col(ICMP_SEQ).cast(DataType::UInt64))
    .fill_null(lit(1u64 << 32));
    base.filter(request.clone().or(echo(0, 129)))
        .select([
            initiator.clone().alias("initiator"),
            (code(initiator) * lit(1u64 << 32)
                + code(responder).fill_null(lit(u64::from(u32::MAX))))
            .alias("peers"),
            exchange.alias("exchange"),
            request.cast(DataType::UInt64).alias("request"),
        ])
        .filter(col("initiator").is_not_null())
        .group_by([col("peers"), col("exchange")])
        .agg([
            col("initiator").first(),
            col("request").sum().alias("requests"),
            (len().cast(DataType::UInt64) - col("request").sum()).alias("replies"),
        ])
        .select([col("initiator"), col("requests"), col("replies")])
}

/// The pings chart's rows (at most the cap, most requests first) and what the cap left out.
#[derive(Debug, Clone, Default)]
pub(super) struct Pings {
    pub(super) rows: Vec<PingRow>,
    /// Sources not listed, and their echo requests.
    pub(super) omitted_sources: u64,
    pub(super) omitted_requests: u64,
}

/// Echo requests per source (own addresses left out), most first (ties by address):
/// sorted and cut to `max_rows` in polars, so a flood of spoofed sources becomes
/// `max_rows` rows and two counts.
pub(super) fn ping_rows(
    df: &DataFrame,
    own: &[IpAddr],
    tables: Option<&Tables>,
    max_rows: usize,
) -> PolarsResult<Pings> {
    let own: Vec<String> = own.iter().map(ToString::to_string).collect();
    let df = match tables {
        Some(_) => Tables::with_text_keys(tables, df.clone(), &[("initiator", true)])?,
        None => {
            let mut df = df.clone();
            let text = df.column("initiator")?.cast(&DataType::String)?;
            df.with_column(text)?;
            df
        }
    };
    let keep: BooleanChunked = df
        .column("initiator")?
        .str()?
        .iter()
        .map(|s| Some(!own.iter().any(|o| Some(o.as_str()) == s)))
        .collect();
    let all = df
        .filter(&keep)?
        .lazy()
        .with_column(col("initiator").fill_null(lit("")))
        .collect()?;
    let head = top_rows(&all, "requests", &["initiator"], max_rows)?;
    let src = strs(&head, "initiator")?;
    let requests = u64s(&head, "requests")?;
    let replies = u64s(&head, "replies")?;
    let unanswered = u64s(&head, "unanswered")?;
    let rows: Vec<PingRow> = src
        .into_iter()
        .zip(requests)
        .zip(replies)
        .zip(unanswered)
        .map(|(((src, requests), replies), unanswered)| PingRow {
            src,
            requests,
            replies,
            unanswered,
        })
        .collect();
    let total: u64 = all
        .column("requests")?
        .as_materialized_series()
        .sum::<u64>()?;
    Ok(Pings {
        omitted_sources: u64::try_from(all.height() - head.height()).unwrap_or(u64::MAX),
        omitted_requests: total - rows.iter().map(|r| r.requests).sum::<u64>(),
        rows,
    })
}

//! DNS anomalies.
//!
//! - `dns-burst`: DNS queries (originator packets of connections to port 53) from one
//!   client summed over half-window slots; any two adjacent slots (one window,
//!   `findings.dns_burst_window_s`) reaching `findings.dns_burst_queries` is a finding,
//!   ranked 60 (at the threshold) to 90 (eight times it). The connection table has no
//!   query names or response codes, so the sentence names the resolver, not the domain,
//!   and cannot count NXDOMAIN. A burst whose queries mostly got an address back (the
//!   frames of the client's `dns-answer` rows in names.parquet seen in the window, at
//!   least `findings.dns_burst_answered_max` of the queries) is lookups, not a tunnel
//!   (tunnels get NXDOMAIN, TXT or NULL answers): kept at [`LOWEST_RANK`].
//! - `dns-subdomains`: unique names under one registered domain (the last two labels,
//!   three under a two-letter country code's short second level such as `co.uk`) that
//!   one client got A/AAAA answers for in `names.parquet`, at least
//!   `findings.dns_unique_subdomains`; ranked like a burst. Queries answered NXDOMAIN or
//!   with TXT only leave no row there.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::labels::Labels;
use super::{Ctx, Finding, LOWEST_RANK, scale};
use crate::config::FindingsConfig;
use crate::dataframe::{i64s, opt_strs, strs, u64s};
use crate::flows::{FIRST_TS, LAST_TS, ORIG_ADDR, ORIG_PKTS, RESP_ADDR, RESP_PORT};
use crate::namestore::{CLIENT_IP, KIND, NAME};

fn rank(count: f64, threshold: f64) -> u8 {
    scale(
        60,
        90,
        ((count / threshold.max(1.0)).log2() / 3.0).clamp(0.0, 1.0),
    )
}

pub(super) fn bursts(flows: &DataFrame, ctx: &Ctx<'_>) -> PolarsResult<Vec<Finding>> {
    let half_ns = i64::try_from(ctx.cfg.dns_burst_window_s)
        .unwrap_or(86_400)
        .saturating_mul(500_000_000)
        .max(1);
    let slots = flows
        .clone()
        .lazy()
        .filter(col(RESP_PORT).cast(DataType::UInt32).eq(lit(53u32)))
        .with_column((col(FIRST_TS).cast(DataType::Int64) / lit(half_ns)).alias("slot"))
        .group_by([col(ORIG_ADDR), col("slot")])
        .agg([
            col(ORIG_PKTS).cast(DataType::UInt64).sum().alias("q"),
            col(FIRST_TS).cast(DataType::Int64).min().alias("first"),
            col(LAST_TS).cast(DataType::Int64).max().alias("last"),
            col(RESP_ADDR).min().alias("resolver"),
            col(RESP_ADDR)
                .n_unique()
                .cast(DataType::UInt64)
                .alias("resolvers"),
        ])
        .sort([ORIG_ADDR, "slot"], SortMultipleOptions::default())
        .collect()?;
    let (o, slot) = (strs(&slots, ORIG_ADDR)?, i64s(&slots, "slot")?);
    let (q, first, last) = (
        u64s(&slots, "q")?,
        i64s(&slots, "first")?,
        i64s(&slots, "last")?,
    );
    let (resolver, resolvers) = (strs(&slots, "resolver")?, u64s(&slots, "resolvers")?);
    // Per client: the best window (two adjacent slots).
    let mut best: BTreeMap<&str, (u64, usize, usize)> = BTreeMap::new();
    for i in 0..slots.height() {
        let mut sum = q[i];
        let mut j = i;
        if i + 1 < slots.height() && o[i + 1] == o[i] && slot[i + 1] == slot[i] + 1 {
            sum += q[i + 1];
            j = i + 1;
        }
        let e = best.entry(o[i].as_str()).or_insert((0, i, i));
        if sum > e.0 {
            *e = (sum, i, j);
        }
    }
    let mut out = Vec::new();
    for (dev, (sum, i, j)) in best {
        if sum < ctx.cfg.dns_burst_queries {
            continue;
        }
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let (count, secs) = (sum as f64, (last[j] - first[i]).max(0) as f64 / 1e9);
        #[expect(clippy::cast_precision_loss, reason = "thresholds far below 2^52")]
        let thr = ctx.cfg.dns_burst_queries as f64;
        let to = if resolvers[i] > 1 || resolvers[j] > 1 {
            format!("{} and other resolvers", resolver[i])
        } else {
            ctx.labels.device(&resolver[i])
        };
        let answered = answered_share(ctx.names, dev, (first[i], last[j]), sum)?;
        let lookups = answered >= ctx.cfg.dns_burst_answered_max;
        let what = if lookups {
            format!(
                "{:.0}% got an address back: lookups, not tunnelling",
                answered * 100.0
            )
        } else {
            format!(
                "only {:.0}% got an address back, a burst like DNS tunnelling (query names are not recorded)",
                answered * 100.0
            )
        };
        out.push(
            Finding {
                rank: if lookups {
                    LOWEST_RANK
                } else {
                    rank(count, thr)
                },
                sentence: format!(
                    "{} sent {} DNS queries to {} in {} s ({} to {}); {what}.",
                    ctx.labels.device(dev),
                    sum,
                    to,
                    secs.round(),
                    ctx.hm(first[i]),
                    ctx.hm(last[j]),
                ),
                device_name: ctx.labels.device_name(dev).map(str::to_string),
                ..Finding::new("dns-burst", dev, "")
            }
            .num("queries", count)
            .num("seconds", secs.round())
            .num("answered_share", (answered * 100.0).round() / 100.0),
        );
    }
    Ok(out)
}

/// The share (0..=1) of `queries` DNS queries from `client` in `window` (ns) that got
/// an address back: the frames of its `dns-answer` rows seen in the window (a response
/// with several addresses counts once per address, hence the cap at 1).
fn answered_share(
    names: &DataFrame,
    client: &str,
    window: (i64, i64),
    queries: u64,
) -> PolarsResult<f64> {
    if queries == 0 || names.height() == 0 {
        return Ok(0.0);
    }
    use crate::namestore::{FIRST_TS as N_FIRST, FRAMES, LAST_TS as N_LAST};
    let df = names
        .clone()
        .lazy()
        .filter(
            col(KIND)
                .eq(lit(names::Kind::DnsAnswer.as_str()))
                .and(col(CLIENT_IP).cast(DataType::String).eq(lit(client)))
                .and(col(N_FIRST).cast(DataType::Int64).lt_eq(lit(window.1)))
                .and(col(N_LAST).cast(DataType::Int64).gt_eq(lit(window.0))),
        )
        .select([col(FRAMES).cast(DataType::UInt64).sum()])
        .collect()?;
    let frames = u64s(&df, FRAMES)?.first().copied().unwrap_or(0);
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let share = frames as f64 / queries as f64;
    Ok(share.min(1.0))
}

/// The registered domain of a name, roughly: the last two labels, or three when the
/// second-to-last is short under a two-letter top-level domain (`example.co.uk`).
fn registered(name: &str) -> Option<String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let n = labels.len();
    if n < 2 || labels.iter().any(|l| l.is_empty()) {
        return None;
    }
    let take = if n >= 3 && labels[n - 1].len() == 2 && labels[n - 2].len() <= 3 {
        3
    } else {
        2
    };
    (n > take).then(|| labels[n - take..].join("."))
}

pub(super) fn subdomains(
    names: &DataFrame,
    labels: &Labels,
    cfg: &FindingsConfig,
) -> PolarsResult<Vec<Finding>> {
    if names.height() == 0 {
        return Ok(Vec::new());
    }
    let (kind, name, client) = (
        strs(names, KIND)?,
        strs(names, NAME)?,
        opt_strs(names, CLIENT_IP)?,
    );
    let mut per: BTreeMap<(&str, String), BTreeSet<&str>> = BTreeMap::new();
    for i in 0..names.height() {
        if kind[i] != names::Kind::DnsAnswer.as_str() {
            continue;
        }
        let (Some(c), Some(d)) = (client[i].as_deref(), registered(&name[i])) else {
            continue;
        };
        per.entry((c, d)).or_default().insert(name[i].as_str());
    }
    let mut out = Vec::new();
    for ((dev, domain), set) in per {
        if set.len() < cfg.dns_unique_subdomains.max(1) {
            continue;
        }
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let (count, thr) = (set.len() as f64, cfg.dns_unique_subdomains as f64);
        out.push(
            Finding {
                rank: rank(count, thr),
                sentence: format!(
                    "{} looked up {} different names under {domain}, as DNS tunnelling does.",
                    labels.device(dev),
                    set.len()
                ),
                device_name: labels.device_name(dev).map(str::to_string),
                ..Finding::new("dns-subdomains", dev, &domain)
            }
            .num("unique_names", count),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_domains() {
        assert_eq!(
            registered("a.b.example.net").as_deref(),
            Some("example.net")
        );
        assert_eq!(
            registered("x.example.co.uk").as_deref(),
            Some("example.co.uk")
        );
        assert_eq!(registered("example.net"), None, "no subdomain");
        assert_eq!(registered("localhost"), None);
    }
}

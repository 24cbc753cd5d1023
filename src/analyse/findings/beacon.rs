//! Periodic connections (beaconing), scored as RITA does, adapted to the capture window.
//!
//! Connections are grouped by (originator, responder) address, originator local; pairs
//! with at least `findings.beacon_min_connections` connections are scored, at most
//! `findings.beacon_max_pairs` of them (those with the most connections). For the
//! intervals `d` between connection starts and the originator's payload bytes `b` of
//! each connection:
//!
//! - timing = (skew(d) + madm(d, max(0.1 median(d), 1 s)) + cover) / 3
//! - size = (skew(b) + madm(b, max(0.1 median(b), 32 B)) + smallness) / 3
//! - score = (timing + size) / 2
//!
//! where skew(x) = 1 - |Bowley skewness of x|, madm(x, c) = max(0, 1 - MAD(x) / c) (the
//! median absolute deviation against a tolerance of a tenth of the median: scale-free,
//! where RITA cuts at 30 s and 32 B), smallness = max(0, 1 - median(b) / 65535), and
//! cover = (min(1, n median(d) / window) + hit / buckets) / 2: how many connections the
//! window could hold at that period, and the share of `buckets` = clamp(window /
//! median(d), 1, 12) equal slices of the capture window (first to last packet, not 24
//! hours) that have a connection. A pair whose median interval is under 10 s (bursts of
//! parallel connections) is not a beacon. At or above `findings.beacon_score` it is a
//! finding, ranked 50 (at the threshold) to 90 (score 1).

use polars::prelude::*;

use super::stats::{bowley, mad, median};
use super::{Ctx, Finding, bytes, duration, scale, unicast};
use crate::devices::is_local;
use crate::flows::{FIRST_TS, ORIG_ADDR, ORIG_PAYLOAD, RESP_ADDR};

/// Median intervals shorter than this are bursts, not beacons.
const MIN_PERIOD_S: f64 = 10.0;

/// The score's parts, for one pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Score {
    pub score: f64,
    pub timing: f64,
    pub size: f64,
    pub period_s: f64,
    pub up_bytes: f64,
}

/// Scores one pair: connection starts (ns, sorted) and originator bytes, in a window of
/// `window_s` seconds. None when there are fewer than 3 connections or they are a burst.
#[expect(clippy::cast_precision_loss, reason = "counts and ns far below 2^52 s")]
pub(super) fn score(starts: &[i64], up: &[u64], window: (i64, i64)) -> Option<Score> {
    if starts.len() < 3 {
        return None;
    }
    let mut d: Vec<f64> = starts
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1e9)
        .collect();
    d.sort_by(f64::total_cmp);
    let period = median(&d);
    if period < MIN_PERIOD_S {
        return None;
    }
    let mut b: Vec<f64> = up.iter().map(|&x| x as f64).collect();
    b.sort_by(f64::total_cmp);
    let skew = |v: &[f64]| 1.0 - bowley(v).abs();
    let madm = |v: &[f64], tol: f64| (1.0 - mad(v) / tol).max(0.0);
    let window_s = ((window.1 - window.0) as f64 / 1e9).max(period);
    let n = starts.len() as f64;
    let buckets = (window_s / period).clamp(1.0, 12.0).floor();
    let mut hit = vec![false; buckets as usize];
    for &t in starts {
        let x = ((t - window.0) as f64 / 1e9 / window_s * buckets).floor();
        let i = (x.max(0.0) as usize).min(hit.len() - 1);
        hit[i] = true;
    }
    let hit = hit.iter().filter(|h| **h).count() as f64;
    let cover = ((n * period / window_s).min(1.0) + hit / buckets) / 2.0;
    let timing = (skew(&d) + madm(&d, (0.1 * period).max(1.0)) + cover) / 3.0;
    let size_med = median(&b);
    let smallness = (1.0 - size_med / 65535.0).max(0.0);
    let size = (skew(&b) + madm(&b, (0.1 * size_med).max(32.0)) + smallness) / 3.0;
    Some(Score {
        score: (timing + size) / 2.0,
        timing,
        size,
        period_s: period,
        up_bytes: size_med,
    })
}

pub(super) fn findings(flows: &DataFrame, ctx: &Ctx<'_>) -> PolarsResult<Vec<Finding>> {
    let min = ctx.cfg.beacon_min_connections.max(3);
    let o = flows.column(ORIG_ADDR)?.str()?;
    let r = flows.column(RESP_ADDR)?.str()?;
    let ts = flows.column(FIRST_TS)?.cast(&DataType::Int64)?;
    let ts = ts.i64()?;
    let up = flows.column(ORIG_PAYLOAD)?.cast(&DataType::UInt64)?;
    let up = up.u64()?;
    // Pass 1: connections per pair (borrowed keys, no copy of the table).
    let mut counts: foldhash::HashMap<(&str, &str), usize> = foldhash::HashMap::default();
    for (a, b) in o.iter().zip(r.iter()) {
        if let (Some(a), Some(b)) = (a, b) {
            *counts.entry((a, b)).or_default() += 1;
        }
    }
    let mut keep: Vec<(usize, &str, &str)> = counts
        .into_iter()
        .filter(|&((a, b), n)| n >= min && is_local(a) && unicast(b))
        .map(|((a, b), n)| (n, a, b))
        .collect();
    keep.sort_by(|x, y| y.0.cmp(&x.0).then_with(|| (x.1, x.2).cmp(&(y.1, y.2))));
    keep.truncate(ctx.cfg.beacon_max_pairs);
    if keep.is_empty() {
        return Ok(Vec::new());
    }
    // Pass 2: each kept pair's (start, bytes up), then in time order.
    let slot: foldhash::HashMap<(&str, &str), usize> = keep
        .iter()
        .enumerate()
        .map(|(i, &(_, a, b))| ((a, b), i))
        .collect();
    let mut rows: Vec<Vec<(i64, u64)>> = keep.iter().map(|k| Vec::with_capacity(k.0)).collect();
    for (((a, b), t), u) in o.iter().zip(r.iter()).zip(ts.iter()).zip(up.iter()) {
        if let (Some(a), Some(b)) = (a, b)
            && let Some(&i) = slot.get(&(a, b))
        {
            rows[i].push((t.unwrap_or(0), u.unwrap_or(0)));
        }
    }
    let mut out = Vec::new();
    for (&(_, dev, remote), mut conns) in keep.iter().zip(rows) {
        conns.sort_unstable();
        let starts: Vec<i64> = conns.iter().map(|c| c.0).collect();
        let sizes: Vec<u64> = conns.iter().map(|c| c.1).collect();
        if let Some(s) = score(&starts, &sizes, ctx.window)
            && s.score >= ctx.cfg.beacon_score
        {
            let mut f = finding(ctx, dev, remote, &starts, s);
            f.chart = Some(ctx.chart("bytes up", &starts, &sizes));
            out.push(f);
        }
    }
    Ok(out)
}

fn finding(ctx: &Ctx<'_>, dev: &str, remote: &str, ts: &[i64], s: Score) -> Finding {
    let l = ctx.labels;
    let n = ts.len();
    let first = ts.first().copied().unwrap_or(0);
    let last = ts.last().copied().unwrap_or(0);
    let thr = ctx.cfg.beacon_score;
    let over = if thr < 1.0 {
        (s.score - thr) / (1.0 - thr)
    } else {
        1.0
    };
    #[expect(
        clippy::cast_precision_loss,
        reason = "connection counts far below 2^52"
    )]
    let count = n as f64;
    Finding {
        rank: scale(50, 90, over),
        sentence: format!(
            "{} contacted {} every {}, {} times from {} to {}, {} up each time (regularity {:.2}).",
            l.device(dev),
            l.remote(dev, remote),
            duration(s.period_s),
            n,
            ctx.hm(first),
            ctx.hm(last),
            bytes(s.up_bytes),
            s.score
        ),
        device_name: l.device_name(dev).map(str::to_string),
        remote_name: l.remote_name(dev, remote).map(str::to_string),
        ..Finding::new("beacon", dev, remote)
    }
    .num("connections", count)
    .num("period_s", (s.period_s * 10.0).round() / 10.0)
    .num("up_bytes", s.up_bytes)
    .num("score", (s.score * 1000.0).round() / 1000.0)
    .num("timing_score", (s.timing * 1000.0).round() / 1000.0)
    .num("size_score", (s.size * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn a_steady_beacon_scores_high_and_a_random_one_low() {
        let window = (0, 8 * 3600 * S);
        // Every 300 s +- 2 %, 180 B each time.
        let steady: Vec<i64> = (0..95)
            .map(|i| i * 300 * S + (i * 7919 % 13 - 6) * S)
            .collect();
        let s = score(&steady, &[180; 95], window).expect("scored");
        assert!(s.score > 0.9, "{s:?}");
        assert!((s.period_s - 300.0).abs() < 10.0, "{s:?}");
        // Exponential-ish intervals with mean 300 s (a fixed pseudo-random sequence),
        // sizes spread 0.25..1.75 times.
        let mut t = 0i64;
        let mut x: u64 = 12345;
        let mut irregular = Vec::new();
        let mut sizes = Vec::new();
        for _ in 0..95 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            #[expect(clippy::cast_precision_loss, reason = "test")]
            let u = ((x >> 11) as f64) / ((1u64 << 53) as f64);
            #[expect(clippy::cast_possible_truncation, reason = "test")]
            let dt = (-300.0 * (1.0 - u).ln() * 1e9) as i64;
            t += dt.max(S);
            irregular.push(t);
            sizes.push(45 + (x >> 40) % 270);
        }
        let s = score(&irregular, &sizes, window).expect("scored");
        assert!(s.score < 0.8, "{s:?}");
    }

    #[test]
    fn bursts_and_tiny_samples_are_not_beacons() {
        assert!(score(&[0, 1, 2, 3, 4, 5], &[100; 6], (0, 3600 * S)).is_none());
        assert!(score(&[0, 300 * S], &[100; 2], (0, 3600 * S)).is_none());
    }
}

//! Long connections: open at least `findings.long_connection_min` minutes, from a local
//! device to a unicast remote; one finding per (device, remote), its longest connection,
//! ranked 40 (at the threshold) to 70 (eight times it).

use polars::prelude::*;

use super::{Ctx, Finding, bytes, duration, scale, unicast};
use crate::dataframe::{i64s, strs, u64s};
use crate::devices::is_local;
use crate::flows::{
    FIRST_TS, LAST_TS, ORIG_ADDR, ORIG_BYTES, PROTO, RESP_ADDR, RESP_BYTES, RESP_PORT,
};

pub(super) fn findings(flows: &DataFrame, ctx: &Ctx<'_>) -> PolarsResult<Vec<Finding>> {
    let min_ns = i64::try_from(ctx.cfg.long_connection_min)
        .unwrap_or(i64::MAX / 60_000_000_000)
        .saturating_mul(60_000_000_000)
        .max(1);
    let first = col(FIRST_TS).cast(DataType::Int64);
    let last = col(LAST_TS).cast(DataType::Int64);
    let rows = flows
        .clone()
        .lazy()
        .filter((last.clone() - first.clone()).gt_eq(lit(min_ns)))
        .select([
            col(ORIG_ADDR),
            col(RESP_ADDR),
            col(PROTO).cast(DataType::UInt64),
            col(RESP_PORT).cast(DataType::UInt64),
            first.alias(FIRST_TS),
            last.alias(LAST_TS),
            col(ORIG_BYTES),
            col(RESP_BYTES),
        ])
        .sort(
            [ORIG_ADDR, RESP_ADDR, FIRST_TS],
            SortMultipleOptions::default(),
        )
        .collect()?;
    let (o, r) = (strs(&rows, ORIG_ADDR)?, strs(&rows, RESP_ADDR)?);
    let (proto, port) = (u64s(&rows, PROTO)?, u64s(&rows, RESP_PORT)?);
    let (f, l) = (i64s(&rows, FIRST_TS)?, i64s(&rows, LAST_TS)?);
    let (ob, rb) = (u64s(&rows, ORIG_BYTES)?, u64s(&rows, RESP_BYTES)?);
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.height() {
        let mut end = start + 1;
        while end < rows.height() && o[end] == o[start] && r[end] == r[start] {
            end += 1;
        }
        if is_local(&o[start]) && unicast(&r[start]) {
            let Some(i) = (start..end).max_by_key(|&i| (l[i] - f[i], std::cmp::Reverse(i))) else {
                break;
            };
            #[expect(clippy::cast_precision_loss, reason = "ns and bytes far below 2^52")]
            let (dur_s, up, down, count) = (
                (l[i] - f[i]) as f64 / 1e9,
                ob[i] as f64,
                rb[i] as f64,
                (end - start) as f64,
            );
            #[expect(clippy::cast_precision_loss, reason = "ns far below 2^52")]
            let over = ((dur_s * 1e9 / min_ns as f64).log2() / 3.0).clamp(0.0, 1.0);
            let lab = ctx.labels;
            let (dev, rem) = (&o[start], &r[start]);
            let proto_name = match proto[i] {
                6 => "TCP",
                17 => "UDP",
                _ => "IP",
            };
            let more = if end - start > 1 {
                format!(" ({} such connections)", end - start)
            } else {
                String::new()
            };
            out.push(
                Finding {
                    rank: scale(40, 70, over),
                    sentence: format!(
                        "{} kept a {proto_name} connection to {} port {} open for {}, from {} to {}, {} up and {} down{more}.",
                        lab.device(dev),
                        lab.remote(dev, rem),
                        port[i],
                        duration(dur_s),
                        ctx.hm(f[i]),
                        ctx.hm(l[i]),
                        bytes(up),
                        bytes(down),
                    ),
                    device_name: lab.device_name(dev).map(str::to_string),
                    remote_name: lab.remote_name(dev, rem).map(str::to_string),
                    ..Finding::new("long-connection", dev, rem)
                }
                .num("duration_s", dur_s.round())
                .num("up_bytes", up)
                .num("down_bytes", down)
                .num("port", f64::from(u16::try_from(port[i]).unwrap_or(0)))
                .num("connections", count),
            );
        }
        start = end;
    }
    Ok(out)
}

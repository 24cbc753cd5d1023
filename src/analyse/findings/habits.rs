//! Tonight's habits of each device, as the baseline keeps them ([`DeviceNight`]): bytes
//! per local hour and the busiest connection of each hour (from `flows.parquet`, a
//! connection's bytes spread evenly from its first to its last packet), the names it
//! talked to (the summary's `talked_to`), and the echo requests to its addresses and
//! its replies (`packets.parquet`).

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use super::Summary;
use crate::analyse::summed::{self, EchoCounts};
use crate::baseline::DeviceNight;
use crate::config::Zone;
use crate::dataframe::{CollectStreaming as _, i64s, opt_strs, u64s};
use crate::devices::Device;
use crate::flows::{FIRST_TS, LAST_TS, ORIG_ADDR, ORIG_BYTES, RESP_ADDR, RESP_BYTES};
use crate::parquet_schema::{DST, ICMP_TYPE, IP_PROTO, SRC};

const NS: i64 = 1_000_000_000;

/// The connection that moved the most bytes of a device in one hour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Peak {
    pub(super) bytes: u64,
    /// Its first packet in that hour, ns.
    pub(super) ts: i64,
    /// The other side's address.
    pub(super) remote: String,
}

/// One of tonight's devices.
#[derive(Debug, Clone, Default)]
pub(super) struct DeviceTonight {
    /// The summary's device.
    pub(super) device: Device,
    /// What the baseline keeps (all of tonight's names, most bytes first).
    pub(super) night: DeviceNight,
    /// Bytes with each name, as `night.names`.
    pub(super) name_bytes: Vec<u64>,
    /// Bytes it sent, per local hour (its share of each connection's bytes).
    pub(super) hour_sent: [u64; 24],
    pub(super) peaks: [Peak; 24],
}

impl DeviceTonight {
    /// Its first IPv4 address, else its first address, else its MAC: what its findings
    /// name it by.
    pub(super) fn addr(&self) -> &str {
        let ips = &self.device.ips;
        ips.iter()
            .find(|i| i.parse::<std::net::Ipv4Addr>().is_ok())
            .or_else(|| ips.first())
            .map_or(self.device.mac.as_str(), String::as_str)
    }
}

/// Tonight's devices (the summary's, in its order) with their habits.
///
/// # Errors
/// A table cannot be read as expected.
pub(super) fn tonight(
    s: &Summary,
    flows: &DataFrame,
    packets: &Path,
    zone: Zone,
) -> PolarsResult<Vec<DeviceTonight>> {
    let devices = s
        .devices
        .as_ref()
        .map(|r| r.devices.as_slice())
        .unwrap_or_default();
    let mut out: Vec<DeviceTonight> = devices
        .iter()
        .map(|d| DeviceTonight {
            device: d.clone(),
            night: DeviceNight {
                keys: d.keys(),
                name: d.name.clone(),
                ..DeviceNight::default()
            },
            ..DeviceTonight::default()
        })
        .collect();
    let mut by_ip: PlHashMap<&str, usize> = PlHashMap::default();
    for (i, d) in devices.iter().enumerate() {
        for ip in &d.ips {
            by_ip.entry(ip.as_str()).or_insert(i);
        }
    }
    add_flows(&mut out, &by_ip, flows, zone)?;
    add_names(&mut out, devices, s);
    let (requests, replies) = echo_counts(packets)?;
    for (i, d) in devices.iter().enumerate() {
        for ip in &d.ips {
            out[i].night.ping_requests += requests.get(ip).copied().unwrap_or(0);
            out[i].night.ping_replies += replies.get(ip).copied().unwrap_or(0);
        }
    }
    Ok(out)
}

/// Bytes, bytes sent, bytes per hour and each hour's busiest connection.
fn add_flows(
    out: &mut [DeviceTonight],
    by_ip: &PlHashMap<&str, usize>,
    flows: &DataFrame,
    zone: Zone,
) -> PolarsResult<()> {
    // Addresses as borrowed text (a night of a million connections: no String each).
    let (o, r) = (
        flows.column(ORIG_ADDR)?.str()?,
        flows.column(RESP_ADDR)?.str()?,
    );
    let (f, l) = (i64s(flows, FIRST_TS)?, i64s(flows, LAST_TS)?);
    let (ob, rb) = (u64s(flows, ORIG_BYTES)?, u64s(flows, RESP_BYTES)?);
    for (i, (oa, ra)) in o.iter().zip(r.iter()).enumerate() {
        let (oa, ra) = (oa.unwrap_or(""), ra.unwrap_or(""));
        let total = ob[i].saturating_add(rb[i]);
        for (me, other, sent) in [(oa, ra, ob[i]), (ra, oa, rb[i])] {
            let Some(&d) = by_ip.get(me) else {
                continue;
            };
            let dev = &mut out[d];
            dev.night.bytes = dev.night.bytes.saturating_add(total);
            dev.night.sent = dev.night.sent.saturating_add(sent);
            spread(f[i], l[i], total, zone, |hour, part, ts| {
                dev.night.hour_bytes[hour] = dev.night.hour_bytes[hour].saturating_add(part);
                let part_sent = u128::from(part) * u128::from(sent) / u128::from(total.max(1));
                dev.hour_sent[hour] = dev.hour_sent[hour]
                    .saturating_add(u64::try_from(part_sent).unwrap_or(u64::MAX));
                let p = &mut dev.peaks[hour];
                if part > p.bytes {
                    *p = Peak {
                        bytes: part,
                        ts,
                        remote: other.to_string(),
                    };
                }
            });
        }
    }
    Ok(())
}

/// The local hour (0..=23) of an instant.
pub(super) fn local_hour(ts_ns: i64, zone: Zone) -> usize {
    let local_s = ts_ns.div_euclid(NS) + zone.offset_s(ts_ns);
    usize::try_from(local_s.rem_euclid(86_400) / 3_600).unwrap_or(0)
}

/// The local hours (0..=23) that `first..=last` overlaps, in order.
pub(super) fn hours(first: i64, last: i64, zone: Zone) -> Vec<u8> {
    let mut v = Vec::new();
    spread(first, last, 0, zone, |h, _, _| {
        let h = u8::try_from(h).unwrap_or(0);
        if !v.contains(&h) {
            v.push(h);
        }
    });
    v
}

/// Calls `f(hour, bytes, from)` for each local hour that `first..=last` overlaps, with
/// its share of `bytes` (evenly over the time; the remainder to the last hour) and
/// where the overlap starts. At most 48 hours are stepped through; a longer span puts
/// the rest into its 48th.
fn spread(first: i64, last: i64, bytes: u64, zone: Zone, mut f: impl FnMut(usize, u64, i64)) {
    if last <= first {
        f(local_hour(first, zone), bytes, first);
        return;
    }
    let span = i128::from(last) - i128::from(first);
    let (mut t, mut given) = (first, 0u64);
    for step in 0..48 {
        let off = zone.offset_s(t);
        let next_local = ((t.div_euclid(NS) + off).div_euclid(3_600) + 1) * 3_600;
        let next = (next_local - off).saturating_mul(NS);
        let end = if step == 47 { last } else { next.min(last) };
        let hour = local_hour(t, zone);
        if end >= last {
            f(hour, bytes - given, t);
            return;
        }
        let share = i128::from(bytes) * (i128::from(end) - i128::from(first)) / span;
        let upto = u64::try_from(share).unwrap_or(bytes).min(bytes);
        f(hour, upto - given, t);
        given = upto;
        t = end;
    }
}

/// The names (or unnamed addresses) each device talked to, from the summary's
/// `talked_to` (keyed by MAC, or an IP without one), merged over its MACs and IPs.
fn add_names(out: &mut [DeviceTonight], devices: &[Device], s: &Summary) {
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, d) in devices.iter().enumerate() {
        for a in d.all_macs().chain(d.ips.iter().map(String::as_str)) {
            owner.entry(a).or_insert(i);
        }
    }
    let mut names: Vec<HashMap<String, u64>> = vec![HashMap::new(); devices.len()];
    for t in &s.talked_to {
        let Some(&i) = owner.get(t.device.as_str()) else {
            continue;
        };
        for r in &t.remotes {
            let n = r.name.clone().unwrap_or_else(|| r.addr.clone());
            *names[i].entry(n).or_default() += r.bytes;
        }
    }
    for (dev, m) in out.iter_mut().zip(names) {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        (dev.night.names, dev.name_bytes) = v.into_iter().unzip();
    }
}

/// Echo requests per destination address and echo replies per source address: from the
/// roll-up when there is one, else from the packets.
fn echo_counts(packets: &Path) -> PolarsResult<EchoCounts> {
    if !packets.exists() {
        return Ok((HashMap::new(), HashMap::new()));
    }
    if let Some(counts) = summed::echo_counts(packets) {
        return counts;
    }
    let base = LazyFrame::scan_parquet(
        PlRefPath::try_from_path(packets)?,
        ScanArgsParquet::default(),
    )?;
    let is = |v4: u8, v6: u8| {
        (col(IP_PROTO).eq(lit(1u8)).and(col(ICMP_TYPE).eq(lit(v4))))
            .or(col(IP_PROTO).eq(lit(58u8)).and(col(ICMP_TYPE).eq(lit(v6))))
    };
    let count = |filter: Expr, by: &str| -> PolarsResult<HashMap<String, u64>> {
        let df = base
            .clone()
            .filter(filter)
            .group_by([col(by)])
            .agg([len().cast(DataType::UInt64).alias("n")])
            .collect_streaming()?;
        let (a, n) = (opt_strs(&df, by)?, u64s(&df, "n")?);
        Ok(a.into_iter()
            .zip(n)
            .filter_map(|(a, n)| Some((a?, n)))
            .collect())
    };
    Ok((count(is(8, 128), DST)?, count(is(0, 129), SRC)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Who was pinged and who answered: the same from the roll-up as from the packets.
    #[test]
    fn echo_counts_from_the_rollup_are_the_packets() {
        use crate::convert::{ConvertOptions, convert};
        let dir = std::env::temp_dir().join(format!("netdigest-echo-{}", std::process::id()));
        let (scan, summed) = (dir.join("scan"), dir.join("summed"));
        std::fs::create_dir_all(&scan).unwrap();
        std::fs::create_dir_all(&summed).unwrap();
        let pcap = dir.join("night.pcap");
        let spec = synth::NightSpec {
            packets: 30_000,
            ..synth::NightSpec::demo()
        };
        synth::write_night_file(&pcap, &spec).unwrap();
        for (d, rollup) in [(&scan, false), (&summed, true)] {
            convert(
                std::slice::from_ref(&pcap),
                &ConvertOptions {
                    parquet: Some(d.join("packets.parquet")),
                    rollup: rollup.then(|| d.join("rollup.parquet")),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        let want = echo_counts(&scan.join("packets.parquet")).unwrap();
        assert!(want.0.len() > 1 && want.1.len() > 1, "{want:?}");
        let from_rollup = crate::analyse::summed::echo_counts(&summed.join("packets.parquet"))
            .expect("the roll-up is read")
            .unwrap();
        assert_eq!(from_rollup, want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_connection_spreads_its_bytes_over_the_hours_it_spans() {
        let h = 3_600 * NS;
        let mut got = Vec::new();
        // 00:30 to 02:30 UTC: a quarter, a half, a quarter.
        spread(
            h / 2,
            5 * h / 2,
            1_000,
            Zone::Named(chrono_tz::UTC),
            |hr, b, t| {
                got.push((hr, b, t));
            },
        );
        assert_eq!(got, vec![(0, 250, h / 2), (1, 500, h), (2, 250, 2 * h)]);
        got.clear();
        spread(
            h,
            h,
            7,
            Zone::Named(chrono_tz::Europe::Berlin),
            |hr, b, _| {
                got.push((hr, b, 0));
            },
        );
        assert_eq!(got, vec![(2, 7, 0)], "01:00Z is 02:00 in Berlin in winter");
        let mut total = 0;
        spread(
            0,
            i64::MAX,
            1_000_003,
            Zone::Named(chrono_tz::UTC),
            |_, b, _| {
                total += b;
            },
        );
        assert_eq!(total, 1_000_003, "a huge span still hands out every byte");
    }
}

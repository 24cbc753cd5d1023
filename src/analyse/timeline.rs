//! Roll-ups of the cube along time: the night's date, the totals, the timeline and
//! the protocol mix.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::rollup::SlotRow;
use super::{ProtocolRow, TimeBin, Timeline, Totals};
use crate::config::Zone;

/// The night a capture belongs to: the local date its window started. A first packet
/// before the window's start time of day (e.g. 01:00 for a 22:00 window) belongs to
/// the night that started the day before.
pub(super) fn night_of(first_ns: Option<i64>, zone: Zone, window_start_min: u32) -> String {
    let Some(ns) = first_ns else {
        return String::new();
    };
    let utc = DateTime::<Utc>::from_timestamp_nanos(ns);
    let local = utc.naive_utc() + chrono::Duration::seconds(zone.offset_s(ns));
    let minutes = chrono::Timelike::hour(&local) * 60 + chrono::Timelike::minute(&local);
    // An evening window runs past midnight: its morning half belongs to the evening before.
    let date = if window_start_min >= 12 * 60 && minutes < 12 * 60 {
        local.date() - chrono::Duration::days(1)
    } else {
        local.date()
    };
    crate::layout::night_name(date)
}

pub(super) fn totals(cube: &[SlotRow], zone: Zone) -> Totals {
    let first = cube.iter().map(|r| r.first_ns).min();
    let last = cube.iter().map(|r| r.last_ns).max();
    Totals {
        first_ns: first,
        last_ns: last,
        first: first.map(|t| zone.rfc3339_ns(t)),
        last: last.map(|t| zone.rfc3339_ns(t)),
        packets: cube.iter().map(|r| r.packets).sum(),
        bytes: cube.iter().map(|r| r.bytes).sum(),
        hosts: 0,
        ip_packets: cube.iter().map(|r| r.ip_packets).sum(),
        decode_errors: cube.iter().map(|r| r.decode_errors).sum(),
    }
}

/// Bins aligned to the local clock at the first packet: a DST change mid-night shifts the
/// offset by whole hours, so bins stay aligned, and bins are absolute instants, so the
/// repeated hour of a fall-back night is never merged into one bin. A cube slot lies in
/// one bin (slots divide both the interval and the offset). The protocol mix is the
/// timeline's cells summed.
pub(super) fn timeline(
    slots: &[SlotRow],
    slot_ns: i64,
    interval_s: u64,
    first: Option<i64>,
    zone: Zone,
) -> (Timeline, Vec<ProtocolRow>) {
    let Some(first) = first else {
        return (
            Timeline {
                interval_s,
                bins: Vec::new(),
            },
            Vec::new(),
        );
    };
    let off_ns = zone.offset_s(first) * 1_000_000_000;
    let step = i64::try_from(interval_s.max(1))
        .unwrap_or(i64::MAX / 2_000_000_000)
        .saturating_mul(1_000_000_000)
        .max(slot_ns);
    // Floor to the bin as x - x % step (timestamps are after 1970, so x >= 0).
    let bin_of = |slot: i64| {
        let local = slot + off_ns;
        local - local.rem_euclid(step) - off_ns
    };
    let mut cells: BTreeMap<(i64, &str), (u64, u64)> = BTreeMap::new();
    for r in slots {
        let c = cells.entry((bin_of(r.slot), &r.protocol)).or_default();
        c.0 += r.packets;
        c.1 += r.bytes;
    }
    let mut bins: Vec<TimeBin> = Vec::new();
    let mut mix: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for ((b, p), (n, by)) in cells {
        if bins.last().is_none_or(|l| l.start_ns != b) {
            bins.push(TimeBin {
                start: zone.rfc3339_ns(b),
                start_ns: b,
                ..TimeBin::default()
            });
        }
        let m = mix.entry(p.to_string()).or_default();
        m.0 += n;
        m.1 += by;
        if let Some(last) = bins.last_mut() {
            last.packets += n;
            last.bytes += by;
            *last.packets_by_protocol.entry(p.to_string()).or_default() += n;
        }
    }
    let mut protocols: Vec<ProtocolRow> = mix
        .into_iter()
        .map(|(protocol, (packets, bytes))| ProtocolRow {
            protocol,
            packets,
            bytes,
        })
        .collect();
    protocols.sort_by(|a, b| {
        b.packets
            .cmp(&a.packets)
            .then_with(|| a.protocol.cmp(&b.protocol))
    });
    (Timeline { interval_s, bins }, protocols)
}

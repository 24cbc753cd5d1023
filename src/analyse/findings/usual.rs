//! Tonight against the baseline (`<state>/nights/baseline.json`, see [`crate::baseline`]): what
//! is unusual for each device, and what is usual enough to rank low.
//!
//! With fewer than `findings.baseline_nights` earlier nights (at most `state.keep_nights`)
//! the baseline is learning: nothing here is reported, and the summary says how far it
//! is. Then, per device of tonight (matched to earlier nights by its identity keys):
//! - `new-device`: in none of the earlier nights (rank 70);
//! - for a device seen on at least half of them: `awake`, active (more than
//!   `findings.awake_min_bytes` in a local hour, and more than `findings.awake_factor`
//!   times the most it moved in that hour before) in an hour it was never active in on
//!   an earlier night, most of which covered that hour (rank 45..80 by bytes); `volume-spike`, its
//!   bytes (less those of the unusual hours) above `findings.spike_factor` times its
//!   median and above `findings.spike_min_bytes` (40..75); `new-destination`, names it
//!   talked to with at least `findings.new_destination_min_bytes` and on no earlier
//!   night (not local addresses: a new device is its own finding), at most
//!   `findings.new_destinations_max` (30..60);
//! - `gone-quiet`: at least `findings.ping_unanswered_min` echo requests to it tonight,
//!   none answered, after it answered on most earlier nights (45).
//!
//! A finding of tonight's own (beacon, long connection, ...) whose id was there on more
//! than half of the earlier nights, or a beacon to a remote the device talked to on more
//! than half of them, belongs to the baseline: its rank is lowered to [`LOWEST_RANK`] (it
//! stays in index.html, out of the email) and its sentence says so.

use std::collections::HashSet;
use std::path::Path;

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use super::habits::{self, DeviceTonight};
use super::labels::Labels;
use super::{Finding, LOWEST_RANK, Summary, bytes, hm, scale, unicast};
use crate::baseline::{DeviceNight, Limits, NightEntry};
use crate::config::{FindingsConfig, Zone};
use crate::devices::is_local;

/// The kinds made here.
pub const BASELINE_KINDS: [&str; 5] = [
    "new-device",
    "awake",
    "new-destination",
    "volume-spike",
    "gone-quiet",
];

/// Where the baseline is and how big it may grow.
#[derive(Debug, Clone, Copy)]
pub struct BaselineInputs<'a> {
    /// `<state>/nights/baseline.json`.
    pub file: &'a Path,
    /// Tonight's packets.parquet (for the echo requests and replies per device).
    pub packets: &'a Path,
    pub limits: Limits,
}

/// How far the baseline is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct BaselineStatus {
    /// Nights in the baseline, tonight's included.
    pub nights: usize,
    /// Earlier nights it needs before tonight is compared with it
    /// (`findings.baseline_nights`, at most `state.keep_nights`).
    pub needed: usize,
    /// Tonight was not compared: fewer earlier nights than needed.
    pub learning: bool,
}

impl BaselineStatus {
    /// "learning: 2 of 7 nights".
    #[must_use]
    pub fn message(&self) -> String {
        format!(
            "learning: {} of {} nights",
            self.nights.min(self.needed),
            self.needed
        )
    }
}

/// What the finders here need.
pub(super) struct Usual<'a> {
    pub(super) labels: &'a Labels,
    pub(super) zone: Zone,
    pub(super) cfg: &'a FindingsConfig,
}

/// Compares tonight with the baseline, adds the findings to `out` (and lowers the usual
/// ones), and records tonight in the baseline. Without `flows` (unreadable), tonight is
/// neither compared nor recorded.
pub(super) fn apply(
    s: &Summary,
    out: &mut Vec<Finding>,
    flows: Option<&DataFrame>,
    b: &BaselineInputs<'_>,
    u: &Usual<'_>,
) -> BaselineStatus {
    let mut base = crate::baseline::read(b.file);
    let mut earlier = base.before(&s.night);
    earlier.drain(..earlier.len().saturating_sub(b.limits.nights.max(1)));
    let needed = u.cfg.baseline_nights.min(b.limits.nights).max(1);
    let mut status = BaselineStatus {
        nights: earlier.len(),
        needed,
        learning: earlier.len() < needed,
    };
    if s.night.is_empty() || s.totals.packets == 0 {
        return status;
    }
    let Some(flows) = flows else {
        tracing::warn!("baseline: tonight's connections not read; tonight is not compared");
        return status;
    };
    let tonight = match habits::tonight(s, flows, b.packets, u.zone) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("baseline: tonight's habits: {e}; tonight is not compared");
            return status;
        }
    };
    let own: Vec<String> = out
        .iter()
        .filter(|f| f.rank > LOWEST_RANK)
        .map(|f| f.id.clone())
        .collect();
    if !status.learning {
        lower_the_usual(out, &earlier, &tonight);
        for d in &tonight {
            out.extend(compare(d, &earlier, u));
        }
    }
    let hours = match (s.totals.first_ns, s.totals.last_ns) {
        (Some(f), Some(l)) => habits::hours(f, l, u.zone),
        _ => Vec::new(),
    };
    let entry = NightEntry {
        night: s.night.clone(),
        hours,
        devices: tonight.into_iter().map(|d| d.night).collect(),
        more_devices: s.omitted.devices,
        findings: own,
    };
    base.insert(entry, b.limits);
    status.nights = base.nights.iter().filter(|n| n.night <= s.night).count();
    if let Err(e) = crate::baseline::write(b.file, &base) {
        tracing::warn!("{}: not written: {e}", b.file.display());
    }
    status
}

/// Lowers tonight's own findings that belong to the baseline: the same finding (id) on
/// more than half of the earlier nights; or a beacon to a remote (name or address) the
/// device talked to on more than half of them (an update check, time, its resolver).
fn lower_the_usual(out: &mut [Finding], earlier: &[&NightEntry], tonight: &[DeviceTonight]) {
    let n = earlier.len();
    for f in out
        .iter_mut()
        .filter(|f| f.rank > LOWEST_RANK && !BASELINE_KINDS.contains(&f.kind.as_str()))
    {
        let seen = earlier
            .iter()
            .filter(|e| e.findings.contains(&f.id))
            .count();
        let (why, count) = if seen * 2 > n {
            ("It was there on", seen)
        } else if f.kind == "beacon"
            && let Some(d) = tonight.iter().find(|d| d.device.ips.contains(&f.device))
            && let contacted = contacted_on(d, earlier, &f.remote, f.remote_name.as_deref())
            && contacted * 2 > n
        {
            ("It talked to it on", contacted)
        } else {
            continue;
        };
        f.rank = LOWEST_RANK;
        f.sentence.push_str(&format!(
            " {why} {count} of the {n} earlier nights: part of the baseline."
        ));
        #[expect(clippy::cast_precision_loss, reason = "a few nights")]
        f.numbers.insert("baseline_nights".into(), count as f64);
    }
}

/// Earlier nights on which the device talked to `remote` (an address) or `name`.
fn contacted_on(
    d: &DeviceTonight,
    earlier: &[&NightEntry],
    remote: &str,
    name: Option<&str>,
) -> usize {
    history(d, earlier)
        .iter()
        .flatten()
        .filter(|n| {
            n.names
                .iter()
                .any(|x| x == remote || name.is_some_and(|name| x.eq_ignore_ascii_case(name)))
        })
        .count()
}

/// The device's record in each earlier night (None: not seen that night).
fn history<'a>(d: &DeviceTonight, earlier: &[&'a NightEntry]) -> Vec<Option<&'a DeviceNight>> {
    let keys: HashSet<&str> = d.night.keys.iter().map(String::as_str).collect();
    earlier
        .iter()
        .map(|n| {
            n.devices
                .iter()
                .find(|x| x.keys.iter().any(|k| keys.contains(k.as_str())))
        })
        .collect()
}

/// Tonight's findings of one device against its history.
fn compare(d: &DeviceTonight, earlier: &[&NightEntry], u: &Usual<'_>) -> Vec<Finding> {
    let hist = history(d, earlier);
    let seen: Vec<&DeviceNight> = hist.iter().flatten().copied().collect();
    if seen.is_empty() {
        return vec![new_device(d, earlier.len(), u)];
    }
    let mut out = Vec::new();
    if seen.len() * 2 >= earlier.len() {
        let (awake, unusual_bytes) = awake(d, &hist, earlier, u);
        let awake_remote = awake.as_ref().and_then(|f| f.remote_name.clone());
        out.extend(awake);
        out.extend(spike(d, &seen, unusual_bytes, u));
        out.extend(
            new_destinations(d, &seen, earlier.len(), u)
                .into_iter()
                .filter(|f| awake_remote.as_deref() != Some(f.remote.as_str())),
        );
    }
    out.extend(gone_quiet(d, &seen, earlier.len(), u));
    out
}

/// "name (address)".
fn who(d: &DeviceTonight) -> String {
    let a = d.addr();
    if d.device.name.is_empty() || d.device.name == a {
        a.to_string()
    } else {
        format!("{} ({a})", d.device.name)
    }
}

fn finding(kind: &str, d: &DeviceTonight, remote: &str) -> Finding {
    Finding {
        device_name: Some(d.device.name.clone()).filter(|n| !n.is_empty()),
        ..Finding::new(kind, d.addr(), remote)
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "bytes and counts far below 2^52"
)]
fn new_device(d: &DeviceTonight, nights: usize, u: &Usual<'_>) -> Finding {
    let dev = &d.device;
    let mut parts = vec![dev.name.clone()];
    parts.extend(dev.vendor.clone().filter(|v| *v != dev.name));
    let addr = d.addr();
    if addr != dev.mac {
        parts.push(addr.to_string());
    }
    parts.push(dev.mac.clone());
    let mut f = Finding {
        rank: 70,
        sentence: format!(
            "new device: {}, first seen {} (on none of the {nights} earlier nights); {} tonight.",
            parts.join(", "),
            hm(dev.first_seen_ns, u.zone),
            bytes(d.night.bytes as f64),
        ),
        ..finding("new-device", d, "")
    };
    f.id = super::id("new-device", &dev.mac, "");
    f.numbers.insert("bytes".into(), d.night.bytes as f64);
    f.numbers.insert("nights".into(), nights as f64);
    f
}

/// The busiest unusual hour (None when there is none) and the bytes of all unusual hours.
#[expect(
    clippy::cast_precision_loss,
    reason = "bytes and counts far below 2^52"
)]
fn awake(
    d: &DeviceTonight,
    hist: &[Option<&DeviceNight>],
    earlier: &[&NightEntry],
    u: &Usual<'_>,
) -> (Option<Finding>, u64) {
    let thr = u.cfg.awake_min_bytes;
    let covered: Vec<usize> = (0..24u8)
        .map(|h| earlier.iter().filter(|n| n.hours.contains(&h)).count())
        .collect();
    let most = |h: usize| {
        hist.iter()
            .flatten()
            .map(|n| n.hour_bytes[h])
            .max()
            .unwrap_or(0)
    };
    let silent = |h: usize| most(h) <= thr;
    let unusual: Vec<usize> = (0..24)
        .filter(|&h| {
            let b = d.night.hour_bytes[h];
            b > thr
                && silent(h)
                && b as f64 > u.cfg.awake_factor * most(h) as f64
                && covered[h] * 2 > earlier.len()
        })
        .collect();
    let total: u64 = unusual.iter().map(|&h| d.night.hour_bytes[h]).sum();
    let Some(&h) = unusual
        .iter()
        .max_by_key(|&&h| (d.night.hour_bytes[h], 24 - h))
    else {
        return (None, 0);
    };
    let (from, to) = silent_run(h, |x| covered[x] > 0 && silent(x));
    let usual_most = (0..24)
        .filter(|&x| (x + 24 - from) % 24 < (to + 24 - from - 1) % 24 + 1)
        .map(most)
        .max()
        .unwrap_or(0);
    let peak = &d.peaks[h];
    let remote_name = u.labels.remote_name(d.addr(), &peak.remote);
    let with = if peak.remote.is_empty() {
        String::new()
    } else {
        format!(", mostly with {}", u.labels.remote(d.addr(), &peak.remote))
    };
    let (moved, sent) = (d.night.hour_bytes[h], d.hour_sent[h]);
    let (verb, shown) = if sent * 2 >= moved {
        ("sent", sent)
    } else {
        ("received", moved - sent)
    };
    let silent_text = if from == to {
        "it is usually silent all night".to_string()
    } else {
        format!("it is usually silent between {from:02}:00 and {to:02}:00")
    };
    let mut f = Finding {
        rank: scale(45, 80, decades_past(moved, thr) / 3.0),
        sentence: format!(
            "{} {verb} {} at {}{with}; {silent_text} (at most {} an hour on the {} earlier nights it was seen).",
            who(d),
            bytes(shown as f64),
            hm(peak.ts, u.zone),
            bytes(usual_most as f64),
            hist.iter().flatten().count()
        ),
        remote_name: remote_name.map(str::to_string),
        ..finding("awake", d, &peak.remote)
    };
    f.id = super::id("awake", d.addr(), "");
    for (k, v) in [
        ("bytes", moved as f64),
        ("sent", sent as f64),
        ("hour", h as f64),
        ("silent_from", from as f64),
        ("silent_to", to as f64),
        ("unusual_hours", unusual.len() as f64),
        ("usual_most", usual_most as f64),
    ] {
        f.numbers.insert(k.into(), v);
    }
    (Some(f), total)
}

/// The hours around `h` (from, to: `to` exclusive, both mod 24; equal: all day) that
/// are `quiet`.
fn silent_run(h: usize, quiet: impl Fn(usize) -> bool) -> (usize, usize) {
    let (mut from, mut to) = (h, (h + 1) % 24);
    for _ in 0..23 {
        let prev = (from + 23) % 24;
        if prev == to || !quiet(prev) {
            break;
        }
        from = prev;
    }
    for _ in 0..23 {
        if to == from || !quiet(to) {
            break;
        }
        to = (to + 1) % 24;
    }
    (from, to)
}

#[expect(clippy::cast_precision_loss, reason = "bytes far below 2^52")]
fn spike(
    d: &DeviceTonight,
    seen: &[&DeviceNight],
    unusual_bytes: u64,
    u: &Usual<'_>,
) -> Option<Finding> {
    let mut v: Vec<f64> = seen.iter().map(|n| n.bytes as f64).collect();
    v.sort_by(f64::total_cmp);
    let median = super::stats::median(&v);
    let tonight = d.night.bytes.saturating_sub(unusual_bytes) as f64;
    if tonight <= u.cfg.spike_min_bytes as f64 || tonight <= u.cfg.spike_factor * median {
        return None;
    }
    let ratio = if median > 0.0 {
        tonight / median
    } else {
        f64::INFINITY
    };
    let times = if ratio.is_finite() {
        format!("{ratio:.1} times its median of {}", bytes(median))
    } else {
        "after nothing".to_string()
    };
    let besides = if unusual_bytes > 0 {
        format!(" besides {} at unusual hours", bytes(unusual_bytes as f64))
    } else {
        String::new()
    };
    let mut f = Finding {
        rank: scale(
            40,
            75,
            ((ratio / u.cfg.spike_factor).log2() / 4.0).clamp(0.0, 1.0),
        ),
        sentence: format!(
            "{} moved {} tonight{besides}, {times} over the {} earlier nights it was seen.",
            who(d),
            bytes(tonight),
            seen.len()
        ),
        ..finding("volume-spike", d, "")
    };
    f.numbers.insert("bytes".into(), tonight);
    f.numbers.insert("median".into(), median);
    if ratio.is_finite() {
        f.numbers.insert("ratio".into(), ratio);
    }
    Some(f)
}

#[expect(clippy::cast_precision_loss, reason = "bytes far below 2^52")]
fn new_destinations(
    d: &DeviceTonight,
    seen: &[&DeviceNight],
    nights: usize,
    u: &Usual<'_>,
) -> Vec<Finding> {
    let known: HashSet<&str> = seen
        .iter()
        .flat_map(|n| n.names.iter().map(String::as_str))
        .collect();
    let min = u.cfg.new_destination_min_bytes;
    d.night
        .names
        .iter()
        .zip(&d.name_bytes)
        .filter(|(n, b)| {
            **b >= min
                && !known.contains(n.as_str())
                && (n.parse::<std::net::IpAddr>().is_err() || (unicast(n) && !is_local(n)))
        })
        .take(u.cfg.new_destinations_max)
        .map(|(n, &b)| {
            let mut f = Finding {
                rank: scale(30, 60, decades_past(b, min) / 3.0),
                sentence: format!(
                    "{} talked to {n} for the first time in {nights} nights: {} tonight.",
                    who(d),
                    bytes(b as f64)
                ),
                remote_name: (n.parse::<std::net::IpAddr>().is_err()).then(|| n.clone()),
                ..finding("new-destination", d, n)
            };
            f.numbers.insert("bytes".into(), b as f64);
            f
        })
        .collect()
}

#[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
fn gone_quiet(
    d: &DeviceTonight,
    seen: &[&DeviceNight],
    nights: usize,
    u: &Usual<'_>,
) -> Option<Finding> {
    let (req, rep) = (d.night.ping_requests, d.night.ping_replies);
    let answered = seen.iter().filter(|n| n.ping_replies > 0).count();
    if req < u.cfg.ping_unanswered_min.max(1) || rep > 0 || answered * 2 <= nights {
        return None;
    }
    let mut f = Finding {
        rank: 45,
        sentence: format!(
            "{} answered none of the {req} echo requests sent to it tonight; it answered pings on {answered} of the {nights} earlier nights.",
            who(d)
        ),
        ..finding("gone-quiet", d, "")
    };
    f.numbers.insert("requests".into(), req as f64);
    f.numbers.insert("answered_nights".into(), answered as f64);
    Some(f)
}

/// How many powers of ten `x` is past `threshold` (taken as at least 1): 0 at or under
/// it, 1 at ten times it, 3 at a thousand times.
fn decades_past(x: u64, threshold: u64) -> f64 {
    (x as f64 / threshold.max(1) as f64).log10().max(0.0)
}

#[cfg(test)]
mod tests;

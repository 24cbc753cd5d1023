//! Tonight's findings: the few things in one night worth a person's attention, each a
//! [`Finding`] with one plain sentence, the numbers behind it, a rank and a stable id.
//!
//! Built after the summary, from tonight's data alone ([`findings`]) and, with a state
//! directory, against the baseline of earlier nights too ([`with_baseline`]: `usual`,
//! `habits`, and the file [`crate::baseline`]):
//! - `beacon`: periodic connections from a local device to one remote (`flows.parquet`),
//!   scored the way RITA does (see [`beacon`]);
//! - `long-connection`: connections open longer than `findings.long_connection_min`;
//! - `dns-burst`: many DNS queries from one client in a short window (from the
//!   connection table: query names and NXDOMAIN are not stored, so the sentence gives
//!   the count, not the domain), and `dns-subdomains`: many unique names under one
//!   domain that a client got DNS answers for (`names.parquet`; NXDOMAIN and TXT-only
//!   answers leave no row there, which is why the burst exists);
//! - `unanswered-pings`: a source with many unanswered echo requests (lowest rank);
//! - `capture`, `flood`, `scan`: capture health and hostile-traffic notes from the summary;
//! - against the baseline: `new-device`, `awake`, `new-destination`, `volume-spike`,
//!   `gone-quiet`; and tonight's own findings that are there every night ranked lowest.
//!
//! Ranks are 0..=100; [`LOWEST_RANK`] is what an ordinary night may show. Names are
//! those of `names.parquet` (device: DHCP/mDNS name; remote: the name the device used),
//! rendered "name (address)". `findings.allow` silences a finding by device, remote or
//! `device+remote` (address or name). The id is `<kind>-<12 hex digits>` of a hash of
//! kind, device address and remote, so the same thing has the same id every night.

mod beacon;
mod dns;
mod habits;
mod health;
mod labels;
mod long;
mod stats;
mod usual;

pub use usual::{BASELINE_KINDS, BaselineInputs, BaselineStatus};

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use super::Summary;
use crate::config::{FindingsConfig, Zone};
use crate::human::bytes;
use labels::Labels;

/// The rank of findings an ordinary night may have (unanswered pings).
pub const LOWEST_RANK: u8 = 10;

/// One thing worth attention tonight.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Finding {
    /// `<kind>-<12 hex digits>`, the same for the same kind, device and remote every
    /// night; `finding-<id>` is its anchor in index.html.
    pub id: String,
    /// `beacon`, `long-connection`, `dns-burst`, `dns-subdomains`, `unanswered-pings`,
    /// `capture`, `flood`, `scan`; against the baseline `new-device`, `awake`,
    /// `new-destination`, `volume-spike`, `gone-quiet`.
    pub kind: String,
    /// 0..=100, higher deserves more attention.
    pub rank: u8,
    /// One plain sentence with the reason and the numbers.
    pub sentence: String,
    /// The local device's address (empty when none).
    pub device: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// The remote's address, or the domain (empty when none).
    pub remote: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_name: Option<String>,
    /// The numbers behind the sentence.
    pub numbers: BTreeMap<String, f64>,
    /// The data for a small chart in index.html, where a picture helps (a beacon's
    /// connections on a time axis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<FindingChart>,
}

/// Points on a time axis: local time (`YYYY-MM-DD HH:MM:SS`, the capture's zone) and a
/// value, at most [`MAX_POINTS`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FindingChart {
    /// What the value is ("bytes up").
    pub value: String,
    pub points: Vec<(String, f64)>,
}

/// Points a finding's chart holds at most (evenly thinned beyond).
pub const MAX_POINTS: usize = 500;

impl Finding {
    fn new(kind: &str, device: &str, remote: &str) -> Finding {
        Finding {
            id: id(kind, device, remote),
            kind: kind.to_string(),
            device: device.to_string(),
            remote: remote.to_string(),
            ..Finding::default()
        }
    }

    fn num(mut self, k: &str, v: f64) -> Finding {
        self.numbers.insert(k.to_string(), v);
        self
    }

    /// Whether an `findings.allow` entry silences it.
    fn allowed(&self, allow: &[String]) -> bool {
        let is = |pat: &str, addr: &str, name: Option<&String>| {
            !pat.is_empty()
                && (pat.eq_ignore_ascii_case(addr)
                    || name.is_some_and(|n| n.eq_ignore_ascii_case(pat)))
        };
        allow.iter().any(|a| {
            let a = a.trim();
            match a.split_once('+') {
                Some((d, r)) => {
                    is(d.trim(), &self.device, self.device_name.as_ref())
                        && is(r.trim(), &self.remote, self.remote_name.as_ref())
                }
                None => {
                    is(a, &self.device, self.device_name.as_ref())
                        || is(a, &self.remote, self.remote_name.as_ref())
                }
            }
        })
    }
}

/// A stable id: kind and FNV-1a (64 bit) of kind, device and remote.
#[must_use]
pub fn id(kind: &str, device: &str, remote: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind
        .bytes()
        .chain([0])
        .chain(device.bytes())
        .chain([0])
        .chain(remote.bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{kind}-{:012x}", h >> 16)
}

/// The night's inputs besides the summary.
#[derive(Debug, Clone, Copy)]
pub struct FindingInputs<'a> {
    pub flows: &'a Path,
    pub names: &'a Path,
    pub zone: Zone,
}

/// Tonight's findings, highest rank first (ties by id), without the allowed ones. A
/// table that cannot be read is logged and skipped: the other findings still come.
#[must_use]
pub fn findings(s: &Summary, inputs: &FindingInputs<'_>, cfg: &FindingsConfig) -> Vec<Finding> {
    let (out, _, _) = tonight_alone(s, inputs, cfg);
    finish(out, cfg)
}

/// [`findings`], then tonight against the baseline in `<state>/nights/baseline.json` (see
/// `usual`): the findings that compare with earlier nights, tonight's own findings that
/// are there every night ranked low, and tonight recorded in the baseline. Also how far
/// the baseline is (learning until `findings.baseline_nights` earlier nights).
#[must_use]
pub fn with_baseline(
    s: &Summary,
    inputs: &FindingInputs<'_>,
    baseline: &BaselineInputs<'_>,
    cfg: &FindingsConfig,
) -> (Vec<Finding>, BaselineStatus) {
    let (mut out, labels, flows) = tonight_alone(s, inputs, cfg);
    let u = usual::Usual {
        labels: &labels,
        zone: inputs.zone,
        cfg,
    };
    let status = usual::apply(s, &mut out, flows.as_ref(), baseline, &u);
    (finish(out, cfg), status)
}

/// Without the allowed ones, highest rank first (ties by id).
fn finish(mut out: Vec<Finding>, cfg: &FindingsConfig) -> Vec<Finding> {
    out.retain(|f| !f.allowed(&cfg.allow));
    out.sort_by(|a, b| b.rank.cmp(&a.rank).then_with(|| a.id.cmp(&b.id)));
    out
}

/// Tonight's findings from tonight's data alone, unsorted, with the names and the
/// connections they were made from (None: unreadable).
fn tonight_alone(
    s: &Summary,
    inputs: &FindingInputs<'_>,
    cfg: &FindingsConfig,
) -> (Vec<Finding>, Labels, Option<DataFrame>) {
    let lap = crate::logging::laps("findings");
    let names = crate::namestore::read(inputs.names).unwrap_or_else(|e| {
        tracing::warn!(path = %inputs.names.display(), "findings: names not read: {e}");
        DataFrame::empty()
    });
    let labels = Labels::from_names(&names).unwrap_or_else(|e| {
        tracing::warn!("findings: names: {e}");
        Labels::default()
    });
    lap("names read");
    let mut out = health::findings(s, &labels, cfg);
    let flows = match read_flows(inputs.flows) {
        Ok(flows) => {
            lap("connections read");
            let window = (
                s.totals.first_ns.unwrap_or(0),
                s.totals.last_ns.unwrap_or(0),
            );
            let ctx = Ctx {
                labels: &labels,
                names: &names,
                zone: inputs.zone,
                cfg,
                window,
            };
            type Finder = fn(&DataFrame, &Ctx<'_>) -> polars::prelude::PolarsResult<Vec<Finding>>;
            let finders: [(&str, Finder); 3] = [
                ("beacons", beacon::findings),
                ("long connections", long::findings),
                ("DNS bursts", dns::bursts),
            ];
            for (what, find) in finders {
                match find(&flows, &ctx) {
                    Ok(f) => out.extend(f),
                    Err(e) => tracing::warn!("findings: {what}: {e}"),
                }
                lap(what);
            }
            Some(flows)
        }
        Err(e) => {
            tracing::warn!(path = %inputs.flows.display(), "findings: connections not read: {e}");
            None
        }
    };
    match dns::subdomains(&names, &labels, cfg) {
        Ok(f) => out.extend(f),
        Err(e) => tracing::warn!("findings: DNS subdomains: {e}"),
    }
    (out, labels, flows)
}

/// The columns of flows.parquet the finders read (not the MACs, state and end: on a
/// flood of a million spoofed sources that is a tenth of the analysis's memory).
fn read_flows(path: &std::path::Path) -> polars::prelude::PolarsResult<DataFrame> {
    use crate::flows::{
        FIRST_TS, LAST_TS, ORIG_ADDR, ORIG_BYTES, ORIG_PAYLOAD, ORIG_PKTS, PROTO, RESP_ADDR,
        RESP_BYTES, RESP_PORT,
    };
    crate::flows::read_columns(
        path,
        &[
            PROTO,
            ORIG_ADDR,
            RESP_ADDR,
            RESP_PORT,
            FIRST_TS,
            LAST_TS,
            ORIG_PKTS,
            ORIG_BYTES,
            RESP_BYTES,
            ORIG_PAYLOAD,
        ],
    )
}

/// What every finder needs.
struct Ctx<'a> {
    labels: &'a Labels,
    /// names.parquet as read (empty when it could not be).
    names: &'a DataFrame,
    zone: Zone,
    cfg: &'a FindingsConfig,
    /// First and last packet of the night, ns.
    window: (i64, i64),
}

impl Ctx<'_> {
    /// A chart of `value` at the times `ts` (ns), thinned to [`MAX_POINTS`].
    #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
    fn chart(&self, value: &str, ts: &[i64], values: &[u64]) -> FindingChart {
        let n = ts.len().min(values.len());
        let step = n.div_ceil(MAX_POINTS).max(1);
        let points = (0..n)
            .step_by(step)
            .map(|i| {
                let t = chrono::DateTime::from_timestamp_nanos(ts[i]);
                let local = self
                    .zone
                    .to_local(t)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string();
                (local, values[i] as f64)
            })
            .collect();
        FindingChart {
            value: value.to_string(),
            points,
        }
    }

    /// Local "HH:MM" of a timestamp.
    fn hm(&self, ts_ns: i64) -> String {
        hm(ts_ns, self.zone)
    }
}

/// Local "HH:MM" of a timestamp in `zone`: how a finding's sentence says a time.
fn hm(ts_ns: i64, zone: Zone) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(ts_ns);
    zone.to_local(t).format("%H:%M").to_string()
}

/// "5 min", "45 s", "1.5 h".
fn duration(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        let m = s / 60.0;
        if (m - m.round()).abs() < 0.05 {
            format!("{m:.0} min")
        } else {
            format!("{m:.1} min")
        }
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// A rank between `lo` and `hi` growing with `x` in 0..=1.
fn scale(lo: u8, hi: u8, x: f64) -> u8 {
    let r = f64::from(lo) + (f64::from(hi) - f64::from(lo)) * x.clamp(0.0, 1.0);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "r is within lo..=hi"
    )]
    let r = r.round() as u8;
    r
}

/// Whether an address can be a remote of a beacon or long connection: not multicast,
/// broadcast or unspecified.
fn unicast(addr: &str) -> bool {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v)) => {
            !(v.is_multicast() || v.is_broadcast() || v.is_unspecified() || v.octets()[3] == 255)
        }
        Ok(std::net::IpAddr::V6(v)) => !(v.is_multicast() || v.is_unspecified()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = id("beacon", "192.168.1.23", "192.0.2.7");
        assert_eq!(a, id("beacon", "192.168.1.23", "192.0.2.7"));
        assert_ne!(a, id("beacon", "192.168.1.23", "192.0.2.8"));
        assert_ne!(a, id("long-connection", "192.168.1.23", "192.0.2.7"));
        assert!(
            a.starts_with("beacon-") && a.len() == "beacon-".len() + 12,
            "{a}"
        );
    }

    #[test]
    fn the_allow_list_matches_device_remote_or_both() {
        let f = Finding {
            device_name: Some("laptop".into()),
            remote_name: Some("updates.example.com".into()),
            ..Finding::new("beacon", "192.168.1.30", "192.0.2.9")
        };
        assert!(f.allowed(&["192.168.1.30".into()]));
        assert!(f.allowed(&["Laptop".into()]));
        assert!(f.allowed(&["updates.example.com".into()]));
        assert!(f.allowed(&["laptop+192.0.2.9".into()]));
        assert!(!f.allowed(&["laptop+other.example.com".into()]));
        assert!(!f.allowed(&["printer".into(), String::new()]));
    }

    #[test]
    fn numbers_read_plainly() {
        assert_eq!(duration(300.4), "5 min");
        assert_eq!(duration(30.0), "30 s");
        assert_eq!(duration(5400.0), "1.5 h");
        assert_eq!(scale(50, 90, 2.0), 90);
        assert!(unicast("192.0.2.7") && !unicast("224.0.0.251") && !unicast("ff02::fb"));
    }
}

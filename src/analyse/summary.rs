//! The analysis's result, [`Summary`]: everything the report shows about one night,
//! serialised as `summary.json`.
//!
//! Invariants: the field names and their order are `summary.json`'s format; any
//! incompatible change bumps [`SUMMARY_SCHEMA_VERSION`]. Plain data: no polars here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of `summary.json`'s schema; bumped on any incompatible change.
/// 2: one device per MAC (`devices.*.ips`, names, vendors) and `labels`. Version 1
/// summaries still read (a device's `ip` becomes its one address in `ips`).
/// 3: remote names (talkers' `name`, conversations' `a_name`/`b_name`, `talked_to`) and
/// `findings` (and, later, `baseline`); absent from older files, read as empty.
pub const SUMMARY_SCHEMA_VERSION: u32 = 3;

/// Oldest `summary.json` schema that still reads into [`Summary`].
pub const SUMMARY_SCHEMA_OLDEST: u32 = 1;

/// Everything the report shows about one night. Serialised as `summary.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Summary {
    pub schema_version: u32,
    /// The night, `YYYY-MM-DD`: the local date the capture window started.
    pub night: String,
    pub timezone: String,
    /// Capture health from `capture.json`, when the night was captured live.
    pub capture: Option<CaptureHealth>,
    pub totals: Totals,
    /// The seed's chart: ICMP/ICMPv6 echo requests per source, own addresses excluded,
    /// most first (ties by address).
    pub pings: Vec<PingRow>,
    pub timeline: Timeline,
    pub protocols: Vec<ProtocolRow>,
    pub talkers_by_bytes: Vec<Talker>,
    pub talkers_by_packets: Vec<Talker>,
    pub conversations: Vec<Conversation>,
    pub ports: Vec<PortRow>,
    pub arp: Vec<ArpRow>,
    /// Devices seen tonight, new ones and silent ones (history from the state directory).
    pub devices: Option<crate::devices::DeviceReport>,
    /// Tonight against the median of earlier nights.
    pub history: Vec<HistoryRow>,
    /// What the row limits (`report.top_n`, `report.max_rows`) left out of the lists
    /// above; absent when nothing was.
    #[serde(skip_serializing_if = "Omitted::is_empty")]
    pub omitted: Omitted,
    /// Spoofed-source floods and scans; absent when there were none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub floods: Vec<Flood>,
    /// What to call an address wherever the report shows one: address (as the lists
    /// above write it, an IP or a MAC) -> its name. Every local device's MACs and IPs,
    /// and every address of the config's `[names]`. Add to it with
    /// [`Summary::add_label`], which never replaces a device's label.
    pub labels: BTreeMap<String, Label>,
    /// Tonight's findings, highest rank first (see `analyse::findings`); absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<super::findings::Finding>,
    /// How far the baseline across nights is (`<state>/baseline.json`): learning until
    /// it has `findings.baseline_nights` earlier nights. Absent without a state directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<super::findings::BaselineStatus>,
    /// What each local device talked to: per device, the remote names (or addresses)
    /// by bytes; absent when no device talked to anything.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub talked_to: Vec<DeviceRemotes>,
}

/// The name of an address.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Label {
    /// The short name: `kitchen-tv`. Hostile input (from the traffic) unless `source`
    /// is `label`: escaped wherever it is shown.
    pub name: String,
    /// The MAC's vendor, for a local device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Where the name came from: `label` (config), a names.parquet kind, `vendor`.
    pub source: String,
}
/// Counts of what the row limits left out: the lists in the summary (and the report)
/// are at most `report.top_n` or `report.max_rows` long, whatever the traffic.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Omitted {
    /// Addresses not among the top talkers.
    pub talkers: u64,
    /// Address pairs not among the top conversations.
    pub conversations: u64,
    /// Services not among the top ones ("other"), and their packets and bytes.
    pub ports: u64,
    pub ports_packets: u64,
    pub ports_bytes: u64,
    /// Sources left out of the pings list, and their echo requests (counted in the totals).
    pub ping_sources: u64,
    pub ping_requests: u64,
    /// ARP senders left out.
    pub arp: u64,
    /// Local devices left out (not recorded in devices.parquet, not compared).
    pub devices: u64,
    /// Devices left out of `talked_to`.
    pub talked_to: u64,
}

impl Omitted {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Omitted::default()
    }
}

/// A spoofed-source flood (many local source addresses, typically from as many made-up
/// MACs) or a scan (one source reaching many destinations or ports).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Flood {
    /// `"sources"` (spoofed-source flood) or `"scan"`.
    pub kind: String,
    /// The scanning address (empty for a flood).
    pub src: String,
    /// Distinct source addresses.
    pub sources: u64,
    /// Distinct destination addresses and service ports.
    pub destinations: u64,
    pub ports: u64,
    pub packets: u64,
    /// Distinct source MACs, and how many of them are locally administered (made up).
    pub macs: u64,
    pub local_macs: u64,
    /// The MACs that sent the most of it (at most three), most first.
    pub top_macs: Vec<String>,
}

/// Capture health: libpcap's counters for the night.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CaptureHealth {
    pub interface: String,
    pub received: u64,
    pub dropped_kernel: u64,
    pub dropped_interface: u64,
    /// Dropped by netdigest itself: its writer queue overflowed or the night's disk cap was hit.
    pub dropped_ours: u64,
    /// All drops / (received + dropped by kernel and interface).
    pub drop_ratio: f64,
    /// True when drops are above 0.1 %: the report warns loudly.
    pub warning: bool,
    /// The capture stopped writing because the disk was nearly full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_low_disk: Option<LowDiskStop>,
}

/// When and why the capture stopped writing at the disk floor (`capture.min_free_mb`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct LowDiskStop {
    /// RFC 3339, local offset.
    pub at: String,
    /// MiB free then.
    pub free_mb: u64,
    /// The floor, `capture.min_free_mb`.
    pub min_free_mb: u64,
}

/// One metric of tonight against earlier nights.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HistoryRow {
    pub metric: String,
    pub tonight: u64,
    /// Median over the earlier nights compared.
    pub median: f64,
    pub nights: usize,
    /// Tonight is more than 3x or less than a third of the median.
    pub flagged: bool,
}

impl Summary {
    /// Names `addr` with `label` unless it has a name already (a device's label, set by
    /// the analysis, is never replaced: the first name given wins). True when added.
    pub fn add_label(&mut self, addr: &str, label: Label) -> bool {
        add_label(&mut self.labels, addr, label)
    }

    /// The label of `addr`, if any.
    #[must_use]
    pub fn label(&self, addr: &str) -> Option<&Label> {
        self.labels.get(addr)
    }

    /// Echo requests in the pings chart (own addresses excluded).
    #[must_use]
    pub fn total_pings(&self) -> u64 {
        self.pings.iter().map(|p| p.requests).sum::<u64>() + self.omitted.ping_requests
    }

    /// The metrics compared across nights.
    #[must_use]
    pub fn metrics(&self) -> [(&'static str, u64); 4] {
        [
            ("packets", self.totals.packets),
            ("bytes", self.totals.bytes),
            ("hosts", self.totals.hosts),
            ("pings", self.total_pings()),
        ]
    }

    /// Compares tonight with earlier nights' summaries (the last `n` of them).
    #[must_use]
    pub fn compare(&self, earlier: &[Summary]) -> Vec<HistoryRow> {
        if earlier.is_empty() {
            return Vec::new();
        }
        self.metrics()
            .into_iter()
            .enumerate()
            .map(|(i, (metric, tonight))| {
                let mut v: Vec<u64> = earlier.iter().map(|s| s.metrics()[i].1).collect();
                v.sort_unstable();
                #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
                let median = if v.len() % 2 == 1 {
                    v[v.len() / 2] as f64
                } else {
                    (v[v.len() / 2 - 1] as f64 + v[v.len() / 2] as f64) / 2.0
                };
                #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
                let t = tonight as f64;
                let flagged = if median > 0.0 {
                    t > 3.0 * median || t < median / 3.0
                } else {
                    tonight > 0
                };
                HistoryRow {
                    metric: metric.to_string(),
                    tonight,
                    median,
                    nights: v.len(),
                    flagged,
                }
            })
            .collect()
    }
}

/// [`Summary::add_label`] on a bare map.
pub fn add_label(labels: &mut BTreeMap<String, Label>, addr: &str, label: Label) -> bool {
    if addr.is_empty() || label.name.trim().is_empty() || labels.contains_key(addr) {
        return false;
    }
    labels.insert(addr.to_string(), label);
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// First and last packet, RFC 3339 in the report's time zone.
    pub first: Option<String>,
    pub last: Option<String>,
    pub packets: u64,
    pub bytes: u64,
    /// Distinct IP addresses seen as source or destination.
    pub hosts: u64,
    pub ip_packets: u64,
    pub decode_errors: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PingRow {
    pub src: String,
    pub requests: u64,
    /// Echo replies this source received.
    pub replies: u64,
    /// Requests with no matching reply (same peer, identifier and sequence number).
    pub unanswered: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timeline {
    pub interval_s: u64,
    pub bins: Vec<TimeBin>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TimeBin {
    /// Bin start, RFC 3339 in the report's time zone (with its UTC offset, so DST is explicit).
    pub start: String,
    pub start_ns: i64,
    pub packets: u64,
    pub bytes: u64,
    pub packets_by_protocol: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProtocolRow {
    pub protocol: String,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Talker {
    pub addr: String,
    /// The name clients used for this address (passive DNS, TLS/QUIC SNI, HTTP Host):
    /// the one that carried the most of its bytes. Absent when nothing named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub packets: u64,
    pub bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Conversation {
    /// The smaller address (as text) of the pair.
    pub a: String,
    pub b: String,
    pub packets: u64,
    pub bytes: u64,
    pub packets_a_to_b: u64,
    pub bytes_a_to_b: u64,
    pub packets_b_to_a: u64,
    pub bytes_b_to_a: u64,
    /// The name `b` used for `a`, and the name `a` used for `b` (per client: what this
    /// device asked for or sent as SNI/Host); absent when nothing named them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b_name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortRow {
    pub protocol: String,
    pub port: u16,
    pub service: String,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArpRow {
    pub ip: String,
    pub mac: String,
    /// who-has requests this device sent.
    pub requests: u64,
    /// is-at replies this device sent.
    pub replies: u64,
}

/// What one local device talked to (a device: a MAC, or an IP address where no MAC
/// was seen), most bytes first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct DeviceRemotes {
    /// The device's MAC, or its IP address when its packets carried no MAC.
    pub device: String,
    /// The device's IP addresses that talked (at most [`DeviceRemotes::MAX_IPS`], most
    /// bytes first).
    pub ips: Vec<String>,
    /// Packets and bytes between the device and everything it talked to (both ways).
    pub packets: u64,
    pub bytes: u64,
    /// The names (or unnamed addresses) it talked to, most bytes first.
    pub remotes: Vec<RemoteRow>,
    /// Names and addresses left out of `remotes`, and their bytes.
    pub more: u64,
    pub more_bytes: u64,
}

impl DeviceRemotes {
    /// IP addresses listed per device.
    pub const MAX_IPS: usize = 4;
}

/// A name a device talked to: the bytes (both ways) between the device and the
/// addresses it knew by that name; or one address that nothing named.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct RemoteRow {
    /// The name the device used (SNI/Host it sent, else the DNS name it asked for, else
    /// a name another client used); absent for an address nothing named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The address (for a name: the one with the most bytes).
    pub addr: String,
    /// Addresses under this name.
    pub addrs: u64,
    pub packets: u64,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_from_before_the_row_limits_still_reads() {
        // summary.json as earlier versions wrote it: no `omitted`, no `floods`.
        let old = r#"{"schema_version": 1, "night": "2026-11-27",
            "pings": [{"src": "192.168.1.10", "requests": 7, "replies": 7, "unanswered": 0}]}"#;
        let s: Summary = serde_json::from_str(old).expect("an old summary");
        assert!(s.omitted.is_empty() && s.floods.is_empty());
        assert_eq!(s.total_pings(), 7);
        let json = serde_json::to_string(&s).expect("serialises");
        assert!(
            !json.contains("omitted") && !json.contains("floods"),
            "{json}"
        );
        let cut = Summary {
            omitted: Omitted {
                ping_requests: 5,
                ..Omitted::default()
            },
            ..s
        };
        assert_eq!(cut.total_pings(), 12, "left-out sources' requests count");
        assert!(
            serde_json::to_string(&cut)
                .expect("serialises")
                .contains("\"omitted\"")
        );
    }

    #[test]
    fn a_version_1_summary_with_devices_still_reads() {
        let old = r#"{"schema_version": 1, "night": "2026-11-27",
            "devices": {"devices": [{"mac": "00:1b:a9:77:50:50", "ip": "192.168.1.23",
              "first_seen_ns": 1, "last_seen_ns": 2, "packets": 3, "bytes": 4}],
              "new": [], "silent": [], "nights_compared": 0}}"#;
        let s: Summary = serde_json::from_str(old).expect("a version 1 summary");
        let d = &s.devices.expect("devices").devices[0];
        assert_eq!(d.ips, vec!["192.168.1.23"]);
        assert_eq!((d.mac.as_str(), d.packets), ("00:1b:a9:77:50:50", 3));
        assert!(s.labels.is_empty());
    }

    #[test]
    fn a_label_is_added_once() {
        let mut s = Summary::default();
        let l = |name: &str, source: &str| Label {
            name: name.into(),
            vendor: None,
            source: source.into(),
        };
        assert!(s.add_label("192.168.1.23", l("kitchen-tv", "dhcp-hostname")));
        assert!(!s.add_label("192.168.1.23", l("cdn.example.com", "dns-answer")));
        assert!(!s.add_label("192.168.1.24", l(" ", "dns-answer")));
        assert_eq!(
            s.label("192.168.1.23").map(|l| l.name.as_str()),
            Some("kitchen-tv")
        );
    }
}

//! Analyse: polars (lazy) over a night's Parquet, handing out our own [`Summary`].
//!
//! Each question is one lazy query that reads only the columns it needs, so memory
//! follows the columns asked for, not the whole capture. Polars types stay in this
//! module; the report reads [`Summary`] (or `summary.json`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use chrono::{DateTime, Offset, TimeZone as _, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// Version of `summary.json`'s schema; bumped on any incompatible change.
pub const SUMMARY_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum AnalyseError {
    #[error("{path}: {source}")]
    Polars { path: String, source: PolarsError },
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
}

pub type Result<T, E = AnalyseError> = std::result::Result<T, E>;

/// What the analysis needs besides the packets.
#[derive(Debug, Clone)]
pub struct AnalyseOptions {
    /// Addresses of the appliance itself, left out of the pings chart.
    pub own_addresses: Vec<IpAddr>,
    /// Rows in each top-N list.
    pub top_n: usize,
    /// Timeline bin in seconds.
    pub interval_s: u64,
    /// IANA time zone for labels and bin alignment; `None`: the system's local time.
    pub timezone: Option<String>,
    /// Capture window start, minutes after local midnight (names the night).
    pub window_start_min: u32,
}

impl Default for AnalyseOptions {
    fn default() -> Self {
        AnalyseOptions {
            own_addresses: Vec::new(),
            top_n: 10,
            interval_s: 600,
            timezone: None,
            window_start_min: 22 * 60,
        }
    }
}

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
    /// Echo requests in the pings chart (own addresses excluded).
    #[must_use]
    pub fn total_pings(&self) -> u64 {
        self.pings.iter().map(|p| p.requests).sum()
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

/// Per-address packet and byte counts, as tshark's `-z endpoints,ip` / `endpoints,ipv6`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub packets: u64,
    pub bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
}

fn scan(path: &Path) -> Result<LazyFrame> {
    let err = |source| AnalyseError::Polars {
        path: path.display().to_string(),
        source,
    };
    let p = PlRefPath::try_from_path(path).map_err(err)?;
    LazyFrame::scan_parquet(p, ScanArgsParquet::default()).map_err(err)
}

/// Protocol as text (it is categorical in the file).
fn proto() -> Expr {
    col("protocol").cast(DataType::String)
}

pub(crate) fn u64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<u64>> {
    let s = df.column(name)?.cast(&DataType::UInt64)?;
    Ok(s.u64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

pub(crate) fn strs(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    let s = df.column(name)?.cast(&DataType::String)?;
    Ok(s.str()?
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect())
}

pub(crate) fn i64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    let s = df.column(name)?.cast(&DataType::Int64)?;
    Ok(s.i64()?.iter().map(|v| v.unwrap_or(0)).collect())
}

/// Resolved time zone: an IANA zone, or the system's local time (`TZ`, /etc/localtime).
#[derive(Debug, Clone, Copy)]
enum Zone {
    Local,
    Tz(chrono_tz::Tz),
}

impl Zone {
    fn parse(name: Option<&str>) -> Result<Self> {
        match name {
            None => Ok(Zone::Local),
            Some(n) => n
                .parse::<chrono_tz::Tz>()
                .map(Zone::Tz)
                .map_err(|_| AnalyseError::TimeZone(n.to_string())),
        }
    }

    fn name(self) -> String {
        match self {
            Zone::Local => "local".into(),
            Zone::Tz(tz) => tz.name().to_string(),
        }
    }

    /// UTC offset in seconds at an instant.
    fn offset_s(self, ts_ns: i64) -> i64 {
        match self {
            Zone::Local => {
                let utc = DateTime::<Utc>::from_timestamp_nanos(ts_ns);
                i64::from(
                    chrono::Local
                        .offset_from_utc_datetime(&utc.naive_utc())
                        .local_minus_utc(),
                )
            }
            Zone::Tz(tz) => {
                let utc = DateTime::<Utc>::from_timestamp_nanos(ts_ns);
                i64::from(
                    tz.offset_from_utc_datetime(&utc.naive_utc())
                        .fix()
                        .local_minus_utc(),
                )
            }
        }
    }

    fn format(self, ts_ns: i64) -> String {
        let utc = DateTime::<Utc>::from_timestamp_nanos(ts_ns);
        match self {
            Zone::Local => utc
                .with_timezone(&chrono::Local)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            Zone::Tz(tz) => utc
                .with_timezone(&tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// Analyses one night's Parquet.
///
/// # Errors
/// The file cannot be read as the Parquet `convert` writes, or the time zone is unknown.
pub fn analyse(parquet: &Path, opts: &AnalyseOptions) -> Result<Summary> {
    let zone = Zone::parse(opts.timezone.as_deref())?;
    let pe = |source| AnalyseError::Polars {
        path: parquet.display().to_string(),
        source,
    };
    let lf = scan(parquet)?;
    let totals = totals(lf.clone(), zone).map_err(pe)?;
    let pings = pings(lf.clone(), &opts.own_addresses).map_err(pe)?;
    let timeline = timeline(lf.clone(), opts.interval_s, zone).map_err(pe)?;
    let protocols = protocols(lf.clone()).map_err(pe)?;
    let (talkers_by_bytes, talkers_by_packets) = talkers(lf.clone(), opts.top_n).map_err(pe)?;
    let conversations = conversations(lf.clone())
        .map_err(pe)?
        .into_iter()
        .take(opts.top_n)
        .collect();
    let ports = ports(lf.clone(), opts.top_n).map_err(pe)?;
    let arp = arp(lf).map_err(pe)?;
    Ok(Summary {
        schema_version: SUMMARY_SCHEMA_VERSION,
        night: night_of(totals.first_ns, zone, opts.window_start_min),
        timezone: zone.name(),
        capture: None,
        totals,
        pings,
        timeline,
        protocols,
        talkers_by_bytes,
        talkers_by_packets,
        conversations,
        ports,
        arp,
        devices: None,
        history: Vec::new(),
    })
}

/// The night a capture belongs to: the local date its window started. A first packet
/// before the window's start time of day (e.g. 01:00 for a 22:00 window) belongs to
/// the night that started the day before.
fn night_of(first_ns: Option<i64>, zone: Zone, window_start_min: u32) -> String {
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
    date.format("%Y-%m-%d").to_string()
}

fn totals(lf: LazyFrame, zone: Zone) -> PolarsResult<Totals> {
    let df = lf
        .clone()
        .select([
            len().cast(DataType::UInt64).alias("packets"),
            col("wire_len").cast(DataType::UInt64).sum().alias("bytes"),
            col("ts").cast(DataType::Int64).min().alias("first"),
            col("ts").cast(DataType::Int64).max().alias("last"),
            col("ip_version")
                .is_not_null()
                .sum()
                .cast(DataType::UInt64)
                .alias("ip_packets"),
            col("decode_error")
                .is_not_null()
                .sum()
                .cast(DataType::UInt64)
                .alias("decode_errors"),
        ])
        .collect()?;
    let packets = u64s(&df, "packets")?.first().copied().unwrap_or(0);
    let first = df.column("first")?.cast(&DataType::Int64)?.i64()?.get(0);
    let last = df.column("last")?.cast(&DataType::Int64)?.i64()?.get(0);
    let ip = lf.filter(col("ip_version").is_not_null());
    let hosts = concat(
        [
            ip.clone().select([col("src").alias("addr")]),
            ip.select([col("dst").alias("addr")]),
        ],
        UnionArgs::default(),
    )?
    .select([col("addr")
        .drop_nulls()
        .n_unique()
        .cast(DataType::UInt64)
        .alias("hosts")])
    .collect()?;
    Ok(Totals {
        first_ns: first,
        last_ns: last,
        first: first.map(|t| zone.format(t)),
        last: last.map(|t| zone.format(t)),
        packets,
        bytes: u64s(&df, "bytes")?.first().copied().unwrap_or(0),
        hosts: u64s(&hosts, "hosts")?.first().copied().unwrap_or(0),
        ip_packets: u64s(&df, "ip_packets")?.first().copied().unwrap_or(0),
        decode_errors: u64s(&df, "decode_errors")?.first().copied().unwrap_or(0),
    })
}

fn echo(kind_v4: u8, kind_v6: u8) -> Expr {
    (proto()
        .eq(lit("ICMP"))
        .and(col("icmp_type").eq(lit(kind_v4))))
    .or(proto()
        .eq(lit("ICMPv6"))
        .and(col("icmp_type").eq(lit(kind_v6))))
}

fn pings(lf: LazyFrame, own: &[IpAddr]) -> PolarsResult<Vec<PingRow>> {
    let keys = ["src", "dst", "icmp_id", "icmp_seq"];
    let requests = lf
        .clone()
        .filter(echo(8, 128).and(col("src").is_not_null()))
        .select(keys.map(col));
    let replies = lf
        .filter(echo(0, 129).and(col("dst").is_not_null()))
        .select(keys.map(col));
    let req_by_src = requests
        .clone()
        .group_by([col("src")])
        .agg([len().cast(DataType::UInt64).alias("requests")]);
    let rep_by_dst = replies
        .clone()
        .group_by([col("dst").alias("src")])
        .agg([len().cast(DataType::UInt64).alias("replies")]);
    // A request is answered when a reply goes back from its destination with the same id and seq.
    let answered = replies
        .select([
            col("dst").alias("src"),
            col("src").alias("dst"),
            col("icmp_id"),
            col("icmp_seq"),
        ])
        .unique(None, UniqueKeepStrategy::Any);
    let unanswered = requests
        .join(
            answered,
            keys.map(col),
            keys.map(col),
            JoinArgs::new(JoinType::Anti),
        )
        .group_by([col("src")])
        .agg([len().cast(DataType::UInt64).alias("unanswered")]);
    let df = req_by_src
        .join(
            rep_by_dst,
            [col("src")],
            [col("src")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            unanswered,
            [col("src")],
            [col("src")],
            JoinArgs::new(JoinType::Left),
        )
        .collect()?;
    let own: Vec<String> = own.iter().map(ToString::to_string).collect();
    let src = strs(&df, "src")?;
    let requests = u64s(&df, "requests")?;
    let replies = u64s(&df, "replies")?;
    let unanswered = u64s(&df, "unanswered")?;
    let mut rows: Vec<PingRow> = src
        .into_iter()
        .zip(requests)
        .zip(replies)
        .zip(unanswered)
        .filter(|(((s, _), _), _)| !own.contains(s))
        .map(|(((src, requests), replies), unanswered)| PingRow {
            src,
            requests,
            replies,
            unanswered,
        })
        .collect();
    rows.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.src.cmp(&b.src)));
    Ok(rows)
}

/// Bins aligned to the local clock at the first packet: a DST change mid-night shifts the
/// offset by whole hours, so bins stay aligned, and bins are absolute instants, so the
/// repeated hour of a fall-back night is never merged into one bin.
fn timeline(lf: LazyFrame, interval_s: u64, zone: Zone) -> PolarsResult<Timeline> {
    let first = lf
        .clone()
        .select([col("ts").cast(DataType::Int64).min()])
        .collect()?;
    let Some(first) = first.columns()[0].i64()?.get(0) else {
        return Ok(Timeline {
            interval_s,
            bins: Vec::new(),
        });
    };
    let off_ns = zone.offset_s(first) * 1_000_000_000;
    let step = i64::try_from(interval_s)
        .unwrap_or(i64::MAX / 2_000_000_000)
        .saturating_mul(1_000_000_000);
    // Floor to the bin as x - x % step (timestamps are after 1970, so x >= 0).
    let local = col("ts").cast(DataType::Int64) + lit(off_ns);
    let bin = (local.clone() - local % lit(step) - lit(off_ns)).alias("bin");
    let df = lf
        .select([
            bin,
            proto().alias("protocol"),
            col("wire_len").cast(DataType::UInt64),
        ])
        .group_by([col("bin"), col("protocol")])
        .agg([
            len().cast(DataType::UInt64).alias("packets"),
            col("wire_len").sum().alias("bytes"),
        ])
        .sort(["bin", "protocol"], SortMultipleOptions::default())
        .collect()?;
    let mut bins: Vec<TimeBin> = Vec::new();
    for (((b, p), n), by) in i64s(&df, "bin")?
        .into_iter()
        .zip(strs(&df, "protocol")?)
        .zip(u64s(&df, "packets")?)
        .zip(u64s(&df, "bytes")?)
    {
        if bins.last().is_none_or(|l| l.start_ns != b) {
            bins.push(TimeBin {
                start: zone.format(b),
                start_ns: b,
                ..TimeBin::default()
            });
        }
        if let Some(last) = bins.last_mut() {
            last.packets += n;
            last.bytes += by;
            *last.packets_by_protocol.entry(p).or_default() += n;
        }
    }
    Ok(Timeline { interval_s, bins })
}

fn protocols(lf: LazyFrame) -> PolarsResult<Vec<ProtocolRow>> {
    let df = lf
        .group_by([proto().alias("protocol")])
        .agg([
            len().cast(DataType::UInt64).alias("packets"),
            col("wire_len").cast(DataType::UInt64).sum().alias("bytes"),
        ])
        .collect()?;
    let mut rows: Vec<ProtocolRow> = strs(&df, "protocol")?
        .into_iter()
        .zip(u64s(&df, "packets")?)
        .zip(u64s(&df, "bytes")?)
        .map(|((protocol, packets), bytes)| ProtocolRow {
            protocol,
            packets,
            bytes,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.packets
            .cmp(&a.packets)
            .then_with(|| a.protocol.cmp(&b.protocol))
    });
    Ok(rows)
}

/// Per-address counts over IP packets of one version (4 or 6), or both (`None`).
fn endpoint_frame(lf: LazyFrame, version: Option<u8>) -> PolarsResult<DataFrame> {
    let ip = match version {
        Some(v) => col("ip_version").eq(lit(v)),
        None => col("ip_version").is_not_null(),
    };
    let base = lf.filter(
        ip.and(col("src").is_not_null())
            .and(col("dst").is_not_null()),
    );
    let tx = base.clone().select([
        col("src").alias("addr"),
        lit(1u64).cast(DataType::UInt64).alias("tx_packets"),
        col("wire_len").cast(DataType::UInt64).alias("tx_bytes"),
        lit(0u64).cast(DataType::UInt64).alias("rx_packets"),
        lit(0u64).cast(DataType::UInt64).alias("rx_bytes"),
    ]);
    let rx = base.select([
        col("dst").alias("addr"),
        lit(0u64).cast(DataType::UInt64).alias("tx_packets"),
        lit(0u64).cast(DataType::UInt64).alias("tx_bytes"),
        lit(1u64).cast(DataType::UInt64).alias("rx_packets"),
        col("wire_len").cast(DataType::UInt64).alias("rx_bytes"),
    ]);
    concat([tx, rx], UnionArgs::default())?
        .group_by([col("addr")])
        .agg([
            col("tx_packets").sum(),
            col("tx_bytes").sum(),
            col("rx_packets").sum(),
            col("rx_bytes").sum(),
        ])
        .with_columns([
            (col("tx_packets") + col("rx_packets")).alias("packets"),
            (col("tx_bytes") + col("rx_bytes")).alias("bytes"),
        ])
        .collect()
}

fn talker_rows(df: &DataFrame) -> PolarsResult<Vec<Talker>> {
    let addr = strs(df, "addr")?;
    let cols = [
        "packets",
        "bytes",
        "tx_packets",
        "tx_bytes",
        "rx_packets",
        "rx_bytes",
    ]
    .map(|c| u64s(df, c));
    let [p, b, tp, tb, rp, rb] = cols;
    let (p, b, tp, tb, rp, rb) = (p?, b?, tp?, tb?, rp?, rb?);
    Ok((0..addr.len())
        .map(|i| Talker {
            addr: addr[i].clone(),
            packets: p[i],
            bytes: b[i],
            tx_packets: tp[i],
            tx_bytes: tb[i],
            rx_packets: rp[i],
            rx_bytes: rb[i],
        })
        .collect())
}

/// tshark's `-z endpoints,ip` (version 4) or `endpoints,ipv6` (6), keyed by address text.
///
/// # Errors
/// The Parquet cannot be read.
pub fn endpoints(parquet: &Path, version: u8) -> Result<BTreeMap<String, Endpoint>> {
    let pe = |source| AnalyseError::Polars {
        path: parquet.display().to_string(),
        source,
    };
    let df = endpoint_frame(scan(parquet)?, Some(version)).map_err(pe)?;
    Ok(talker_rows(&df)
        .map_err(pe)?
        .into_iter()
        .map(|t| {
            (
                t.addr,
                Endpoint {
                    packets: t.packets,
                    bytes: t.bytes,
                    tx_packets: t.tx_packets,
                    tx_bytes: t.tx_bytes,
                    rx_packets: t.rx_packets,
                    rx_bytes: t.rx_bytes,
                },
            )
        })
        .collect())
}

fn talkers(lf: LazyFrame, top_n: usize) -> PolarsResult<(Vec<Talker>, Vec<Talker>)> {
    let all = talker_rows(&endpoint_frame(lf, None)?)?;
    let mut by_bytes = all.clone();
    by_bytes.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.addr.cmp(&b.addr)));
    by_bytes.truncate(top_n);
    let mut by_packets = all;
    by_packets.sort_by(|a, b| b.packets.cmp(&a.packets).then_with(|| a.addr.cmp(&b.addr)));
    by_packets.truncate(top_n);
    Ok((by_bytes, by_packets))
}

/// Address pairs (as tshark's `-z conv,ip` and `conv,ipv6` together), most bytes first.
fn conversations(lf: LazyFrame) -> PolarsResult<Vec<Conversation>> {
    let forward = col("src").lt(col("dst"));
    let df = lf
        .filter(
            col("ip_version")
                .is_not_null()
                .and(col("src").is_not_null())
                .and(col("dst").is_not_null()),
        )
        .select([
            when(forward.clone())
                .then(col("src"))
                .otherwise(col("dst"))
                .alias("a"),
            when(forward.clone())
                .then(col("dst"))
                .otherwise(col("src"))
                .alias("b"),
            forward.alias("fwd"),
            col("wire_len").cast(DataType::UInt64).alias("len"),
        ])
        .group_by([col("a"), col("b")])
        .agg([
            len().cast(DataType::UInt64).alias("packets"),
            col("len").sum().alias("bytes"),
            col("fwd")
                .sum()
                .cast(DataType::UInt64)
                .alias("packets_a_to_b"),
            col("len").filter(col("fwd")).sum().alias("bytes_a_to_b"),
        ])
        .collect()?;
    let (a, b) = (strs(&df, "a")?, strs(&df, "b")?);
    let (p, by) = (u64s(&df, "packets")?, u64s(&df, "bytes")?);
    let (pab, bab) = (u64s(&df, "packets_a_to_b")?, u64s(&df, "bytes_a_to_b")?);
    let mut rows: Vec<Conversation> = (0..a.len())
        .map(|i| Conversation {
            a: a[i].clone(),
            b: b[i].clone(),
            packets: p[i],
            bytes: by[i],
            packets_a_to_b: pab[i],
            bytes_a_to_b: bab[i],
            packets_b_to_a: p[i] - pab[i],
            bytes_b_to_a: by[i] - bab[i],
        })
        .collect();
    rows.sort_by(|x, y| {
        y.bytes
            .cmp(&x.bytes)
            .then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
    });
    Ok(rows)
}

/// All conversations of a version (for comparison with tshark), keyed by (a, b).
///
/// # Errors
/// The Parquet cannot be read.
pub fn all_conversations(parquet: &Path, version: u8) -> Result<Vec<Conversation>> {
    let pe = |source| AnalyseError::Polars {
        path: parquet.display().to_string(),
        source,
    };
    conversations(scan(parquet)?.filter(col("ip_version").eq(lit(version)))).map_err(pe)
}

/// Packets and bytes per interval from the first packet, as tshark's `-z io,stat,<interval>`.
///
/// # Errors
/// The Parquet cannot be read.
pub fn io_stat(parquet: &Path, interval_ns: i64) -> Result<Vec<(i64, u64, u64)>> {
    let pe = |source| AnalyseError::Polars {
        path: parquet.display().to_string(),
        source,
    };
    let lf = scan(parquet)?;
    let df = lf
        .clone()
        .select([
            {
                let rel = col("ts").cast(DataType::Int64) - col("ts").cast(DataType::Int64).min();
                (rel.clone() - rel % lit(interval_ns.max(1))).alias("bin")
            },
            col("wire_len").cast(DataType::UInt64),
        ])
        .group_by([col("bin")])
        .agg([
            len().cast(DataType::UInt64).alias("packets"),
            col("wire_len").sum().alias("bytes"),
        ])
        .sort(["bin"], SortMultipleOptions::default())
        .collect()
        .map_err(pe)?;
    let bins = i64s(&df, "bin").map_err(pe)?;
    let p = u64s(&df, "packets").map_err(pe)?;
    let b = u64s(&df, "bytes").map_err(pe)?;
    Ok(bins
        .into_iter()
        .map(|b| b / interval_ns.max(1))
        .zip(p)
        .zip(b)
        .map(|((i, p), b)| (i, p, b))
        .collect())
}

fn service_name(proto: &str, port: u16) -> &'static str {
    match (proto, port) {
        (_, 53) => "dns",
        ("UDP", 67 | 68) => "dhcp",
        ("UDP", 123) => "ntp",
        ("UDP", 137 | 138) | ("TCP", 139) => "netbios",
        ("TCP", 22) => "ssh",
        ("TCP", 25 | 587 | 465) => "smtp",
        ("TCP", 80 | 8080) => "http",
        ("TCP" | "UDP", 443) => "https",
        ("TCP", 445) => "smb",
        ("TCP", 993) => "imaps",
        ("UDP", 1900) => "ssdp",
        ("UDP", 5353) => "mdns",
        ("UDP", 546 | 547) => "dhcpv6",
        ("TCP", 8883 | 1883) => "mqtt",
        _ => "",
    }
}

/// Top services: for each TCP/UDP packet the lower of its two ports (the service side,
/// as a rule), most packets first.
fn ports(lf: LazyFrame, top_n: usize) -> PolarsResult<Vec<PortRow>> {
    let lower = when(col("src_port").lt(col("dst_port")))
        .then(col("src_port"))
        .otherwise(col("dst_port"));
    let df = lf
        .filter(
            col("src_port")
                .is_not_null()
                .and(col("dst_port").is_not_null()),
        )
        .select([
            proto().alias("protocol"),
            lower.alias("port"),
            col("wire_len").cast(DataType::UInt64),
        ])
        .group_by([col("protocol"), col("port")])
        .agg([
            len().cast(DataType::UInt64).alias("packets"),
            col("wire_len").sum().alias("bytes"),
        ])
        .collect()?;
    let protos = strs(&df, "protocol")?;
    let ports = u64s(&df, "port")?;
    let p = u64s(&df, "packets")?;
    let b = u64s(&df, "bytes")?;
    let mut rows: Vec<PortRow> = (0..protos.len())
        .map(|i| {
            let port = u16::try_from(ports[i]).unwrap_or(0);
            PortRow {
                service: service_name(&protos[i], port).to_string(),
                protocol: protos[i].clone(),
                port,
                packets: p[i],
                bytes: b[i],
            }
        })
        .collect();
    rows.sort_by(|x, y| {
        y.packets
            .cmp(&x.packets)
            .then_with(|| (&x.protocol, x.port).cmp(&(&y.protocol, y.port)))
    });
    rows.truncate(top_n);
    Ok(rows)
}

/// Who is on the LAN: ARP senders (IP and MAC), with their requests and replies.
fn arp(lf: LazyFrame) -> PolarsResult<Vec<ArpRow>> {
    let df = lf
        .filter(
            col("arp_op")
                .is_not_null()
                .and(col("arp_sender_ip").is_not_null()),
        )
        .select([
            col("arp_sender_ip").alias("ip"),
            col("src_mac").alias("mac"),
            col("arp_op")
                .eq(lit(1u16))
                .cast(DataType::UInt64)
                .alias("req"),
            col("arp_op")
                .eq(lit(2u16))
                .cast(DataType::UInt64)
                .alias("rep"),
        ])
        .group_by([col("ip"), col("mac")])
        .agg([col("req").sum(), col("rep").sum()])
        .sort(["ip", "mac"], SortMultipleOptions::default())
        .collect()?;
    let (ip, mac) = (strs(&df, "ip")?, strs(&df, "mac")?);
    let (req, rep) = (u64s(&df, "req")?, u64s(&df, "rep")?);
    Ok((0..ip.len())
        .map(|i| ArpRow {
            ip: ip[i].clone(),
            mac: mac[i].clone(),
            requests: req[i],
            replies: rep[i],
        })
        .filter(|r| r.ip != "0.0.0.0")
        .collect())
}

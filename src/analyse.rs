//! Analyse: polars (lazy) over a night's Parquet, handing out our own [`Summary`].
//!
//! The columns the analysis needs are read once ([`load`]: about 50 bytes a packet,
//! addresses as categorical codes), then each question is a lazy query over them.
//! Group keys are single integers where they can be (a pair of codes packed in a u64),
//! and address pairs are grouped once: talkers, hosts and conversations come from that
//! small table. Polars types stay in this module; the report reads [`Summary`] (or
//! `summary.json`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use chrono::{DateTime, Offset, TimeZone as _, Utc};
use polars::prelude::*;
use polars_core::query_result::QueryResult;
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

/// Runs queries on polars' streaming engine: morsel by morsel on every core, reusing
/// small buffers instead of materialising every intermediate column of a night (on a
/// 2M-packet night: 0.36 s and 205 MB instead of 0.65 s and 360 MB in memory).
pub(crate) trait CollectStreaming {
    /// `collect()` on the streaming engine.
    ///
    /// # Errors
    /// The query fails.
    fn collect_streaming(self) -> PolarsResult<DataFrame>;
}

impl CollectStreaming for LazyFrame {
    fn collect_streaming(self) -> PolarsResult<DataFrame> {
        match self.collect_with_engine(Engine::Streaming)? {
            QueryResult::Single(df) => Ok(df),
            QueryResult::Multiple(_) => Err(PolarsError::ComputeError(
                "one query gave several results".into(),
            )),
        }
    }
}

fn scan(path: &Path) -> Result<LazyFrame> {
    let err = |source| AnalyseError::Polars {
        path: path.display().to_string(),
        source,
    };
    let p = PlRefPath::try_from_path(path).map_err(err)?;
    LazyFrame::scan_parquet(p, ScanArgsParquet::default()).map_err(err)
}

/// A categorical column's code as u64 (`u32::MAX` for null), to build one-column
/// group keys: polars groups a single integer key much faster than several columns.
fn code(name: &str) -> Expr {
    col(name)
        .to_physical()
        .cast(DataType::UInt64)
        .fill_null(lit(u64::from(u32::MAX)))
}

/// The protocol column (categorical: compared with text literals and grouped on its
/// codes; results are turned into text by [`strs`]).
fn proto() -> Expr {
    col("protocol")
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

/// The packet columns the analysis reads, loaded once into memory: addresses, MACs and
/// the protocol as categoricals (4-byte codes, grouped without hashing text), the
/// decode error as a flag. About 50 bytes a packet whatever the capture's text holds,
/// and every question below is then answered from memory instead of decoding the
/// Parquet again.
///
/// # Errors
/// The file cannot be read as the Parquet `convert` writes.
pub fn load(parquet: &Path) -> Result<LazyFrame> {
    let cat = || DataType::from_categories(Categories::global());
    let df = scan(parquet)?
        .select([
            col("ts"),
            col("wire_len"),
            col("ip_version"),
            col("decode_error").is_not_null().alias("decode_error"),
            col("src").cast(cat()),
            col("dst").cast(cat()),
            col("protocol"),
            col("icmp_type"),
            col("icmp_id"),
            col("icmp_seq"),
            col("src_port"),
            col("dst_port"),
            col("arp_op"),
            col("arp_sender_ip").cast(cat()),
            col("src_mac").cast(cat()),
        ])
        .collect_streaming()
        .map_err(|source| AnalyseError::Polars {
            path: parquet.display().to_string(),
            source,
        })?;
    Ok(df.lazy())
}

/// Analyses one night's Parquet.
///
/// # Errors
/// The file cannot be read as the Parquet `convert` writes, or the time zone is unknown.
pub fn analyse(parquet: &Path, opts: &AnalyseOptions) -> Result<Summary> {
    let packets = load(parquet)?;
    analyse_loaded(&packets, opts, parquet)
}

/// Analyses packets from [`load`] (read from `source`, named in errors).
///
/// # Errors
/// The time zone is unknown, or a query fails.
pub fn analyse_loaded(lf: &LazyFrame, opts: &AnalyseOptions, source: &Path) -> Result<Summary> {
    let zone = Zone::parse(opts.timezone.as_deref())?;
    summarise(lf, opts, zone).map_err(|e| AnalyseError::Polars {
        path: source.display().to_string(),
        source: e,
    })
}

fn summarise(lf: &LazyFrame, opts: &AnalyseOptions, zone: Zone) -> PolarsResult<Summary> {
    let t = std::time::Instant::now();
    let lap = |what: &str| tracing::debug!(ms = t.elapsed().as_millis(), "analyse: {what}");
    let mut totals = totals(lf.clone(), zone)?;
    lap("totals");
    let pings = pings(lf.clone(), &opts.own_addresses)?;
    lap("pings");
    let (timeline, protocols) = timeline(lf.clone(), opts.interval_s, totals.first_ns, zone)?;
    lap("timeline and protocols");
    let pairs = pairs(lf.clone())?;
    totals.hosts = u64::try_from(hosts(&pairs)).unwrap_or(u64::MAX);
    let (talkers_by_bytes, talkers_by_packets) = talkers(&pairs, opts.top_n);
    let conversations = conversations(&pairs, None)
        .into_iter()
        .take(opts.top_n)
        .collect();
    lap("talkers and conversations");
    let ports = ports(lf.clone(), opts.top_n)?;
    lap("ports");
    let arp = arp(lf.clone())?;
    lap("arp");
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
                .sum()
                .cast(DataType::UInt64)
                .alias("decode_errors"),
        ])
        .collect_streaming()?;
    let one =
        |name: &str| -> PolarsResult<u64> { Ok(u64s(&df, name)?.first().copied().unwrap_or(0)) };
    let first = df.column("first")?.cast(&DataType::Int64)?.i64()?.get(0);
    let last = df.column("last")?.cast(&DataType::Int64)?.i64()?.get(0);
    Ok(Totals {
        first_ns: first,
        last_ns: last,
        first: first.map(|t| zone.format(t)),
        last: last.map(|t| zone.format(t)),
        packets: one("packets")?,
        bytes: one("bytes")?,
        hosts: 0,
        ip_packets: one("ip_packets")?,
        decode_errors: one("decode_errors")?,
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
        .collect_streaming()?;
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
/// repeated hour of a fall-back night is never merged into one bin. The protocol mix is
/// the timeline's cells summed, so both come from one pass.
fn timeline(
    lf: LazyFrame,
    interval_s: u64,
    first: Option<i64>,
    zone: Zone,
) -> PolarsResult<(Timeline, Vec<ProtocolRow>)> {
    let Some(first) = first else {
        return Ok((
            Timeline {
                interval_s,
                bins: Vec::new(),
            },
            Vec::new(),
        ));
    };
    let off_ns = zone.offset_s(first) * 1_000_000_000;
    let step = i64::try_from(interval_s)
        .unwrap_or(i64::MAX / 2_000_000_000)
        .saturating_mul(1_000_000_000);
    // Floor to the bin as x - x % step (timestamps are after 1970, so x >= 0).
    let local = col("ts").cast(DataType::Int64) + lit(off_ns);
    let bin = local.clone() - local % lit(step) - lit(off_ns);
    // One u64 key (bin number from the first bin, protocol code) groups much faster
    // than two columns. Every bin is the first bin plus a whole number of steps.
    let first_local = first + off_ns;
    let first_bin = first_local - first_local % step - off_ns;
    let bin_no = ((bin.clone() - lit(first_bin)) / lit(step)).cast(DataType::UInt64);
    let df = lf
        .select([
            bin.alias("bin"),
            (bin_no * lit(1u64 << 32) + code("protocol")).alias("key"),
            proto().alias("protocol"),
            col("wire_len"),
        ])
        .group_by([col("key")])
        .agg([
            col("bin").first(),
            col("protocol").first(),
            len().cast(DataType::UInt64).alias("packets"),
            col("wire_len").cast(DataType::UInt64).sum().alias("bytes"),
        ])
        .collect_streaming()?;
    let mut cells: Vec<(i64, String, u64, u64)> = i64s(&df, "bin")?
        .into_iter()
        .zip(strs(&df, "protocol")?)
        .zip(u64s(&df, "packets")?)
        .zip(u64s(&df, "bytes")?)
        .map(|(((b, p), n), by)| (b, p, n, by))
        .collect();
    cells.sort_unstable_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
    let mut bins: Vec<TimeBin> = Vec::new();
    let mut mix: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (b, p, n, by) in cells {
        if bins.last().is_none_or(|l| l.start_ns != b) {
            bins.push(TimeBin {
                start: zone.format(b),
                start_ns: b,
                ..TimeBin::default()
            });
        }
        let m = mix.entry(p.clone()).or_default();
        m.0 += n;
        m.1 += by;
        if let Some(last) = bins.last_mut() {
            last.packets += n;
            last.bytes += by;
            *last.packets_by_protocol.entry(p).or_default() += n;
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
    Ok((Timeline { interval_s, bins }, protocols))
}

/// Packets and bytes per direction of every IP address pair: one group-by on the
/// address codes, small enough (one row per pair that talked) that talkers, hosts and
/// conversations are derived from it without another pass over the packets.
#[derive(Debug, Clone)]
struct Pair {
    src: String,
    dst: String,
    version: u8,
    packets: u64,
    bytes: u64,
}

fn pairs(lf: LazyFrame) -> PolarsResult<Vec<Pair>> {
    let df = lf
        .filter(
            col("ip_version")
                .is_not_null()
                .and(col("src").is_not_null())
                .and(col("dst").is_not_null()),
        )
        .group_by([(code("src") * lit(1u64 << 32) + code("dst")).alias("key")])
        .agg([
            col("src").first(),
            col("dst").first(),
            col("ip_version").first(),
            len().cast(DataType::UInt64).alias("packets"),
            col("wire_len").cast(DataType::UInt64).sum().alias("bytes"),
        ])
        .collect_streaming()?;
    let (src, dst) = (strs(&df, "src")?, strs(&df, "dst")?);
    let version = u64s(&df, "ip_version")?;
    let (p, b) = (u64s(&df, "packets")?, u64s(&df, "bytes")?);
    Ok(src
        .into_iter()
        .zip(dst)
        .zip(version)
        .zip(p.into_iter().zip(b))
        .map(|(((src, dst), v), (packets, bytes))| Pair {
            src,
            dst,
            version: u8::try_from(v).unwrap_or(0),
            packets,
            bytes,
        })
        .collect())
}

/// Distinct addresses among IP packets' sources and destinations.
fn hosts(pairs: &[Pair]) -> usize {
    let mut all: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for p in pairs {
        all.insert(&p.src);
        all.insert(&p.dst);
    }
    all.len()
}

/// Per-address counts over the pairs of one IP version (4 or 6), or both (`None`).
fn endpoint_rows(pairs: &[Pair], version: Option<u8>) -> Vec<Talker> {
    let mut by: BTreeMap<&str, Talker> = BTreeMap::new();
    for p in pairs
        .iter()
        .filter(|p| version.is_none_or(|v| p.version == v))
    {
        let tx = by.entry(&p.src).or_default();
        tx.tx_packets += p.packets;
        tx.tx_bytes += p.bytes;
        let rx = by.entry(&p.dst).or_default();
        rx.rx_packets += p.packets;
        rx.rx_bytes += p.bytes;
    }
    by.into_iter()
        .map(|(addr, t)| Talker {
            addr: addr.to_string(),
            packets: t.tx_packets + t.rx_packets,
            bytes: t.tx_bytes + t.rx_bytes,
            ..t
        })
        .collect()
}

/// tshark's `-z endpoints,ip` (version 4) or `endpoints,ipv6` (6), keyed by address text.
///
/// # Errors
/// The Parquet cannot be read.
pub fn endpoints(parquet: &Path, version: u8) -> Result<BTreeMap<String, Endpoint>> {
    let pairs = pairs(load(parquet)?).map_err(|source| AnalyseError::Polars {
        path: parquet.display().to_string(),
        source,
    })?;
    Ok(endpoint_rows(&pairs, Some(version))
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

fn talkers(pairs: &[Pair], top_n: usize) -> (Vec<Talker>, Vec<Talker>) {
    let all = endpoint_rows(pairs, None);
    let mut by_bytes = all.clone();
    by_bytes.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.addr.cmp(&b.addr)));
    by_bytes.truncate(top_n);
    let mut by_packets = all;
    by_packets.sort_by(|a, b| b.packets.cmp(&a.packets).then_with(|| a.addr.cmp(&b.addr)));
    by_packets.truncate(top_n);
    (by_bytes, by_packets)
}

/// Address pairs (as tshark's `-z conv,ip` and `conv,ipv6` together, or one version),
/// most bytes first. `a` is the smaller address as text.
fn conversations(pairs: &[Pair], version: Option<u8>) -> Vec<Conversation> {
    let mut by: BTreeMap<(&str, &str), Conversation> = BTreeMap::new();
    for p in pairs
        .iter()
        .filter(|p| version.is_none_or(|v| p.version == v))
    {
        let forward = p.src < p.dst;
        let key = if forward {
            (p.src.as_str(), p.dst.as_str())
        } else {
            (p.dst.as_str(), p.src.as_str())
        };
        let c = by.entry(key).or_default();
        c.packets += p.packets;
        c.bytes += p.bytes;
        if forward {
            c.packets_a_to_b += p.packets;
            c.bytes_a_to_b += p.bytes;
        } else {
            c.packets_b_to_a += p.packets;
            c.bytes_b_to_a += p.bytes;
        }
    }
    let mut rows: Vec<Conversation> = by
        .into_iter()
        .map(|((a, b), c)| Conversation {
            a: a.to_string(),
            b: b.to_string(),
            ..c
        })
        .collect();
    rows.sort_by(|x, y| {
        y.bytes
            .cmp(&x.bytes)
            .then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
    });
    rows
}

/// All conversations of a version (for comparison with tshark), keyed by (a, b).
///
/// # Errors
/// The Parquet cannot be read.
pub fn all_conversations(parquet: &Path, version: u8) -> Result<Vec<Conversation>> {
    let pairs = pairs(load(parquet)?).map_err(|source| AnalyseError::Polars {
        path: parquet.display().to_string(),
        source,
    })?;
    Ok(conversations(&pairs, Some(version)))
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
        .collect_streaming()
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
        .collect_streaming()?;
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
        .collect_streaming()?;
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

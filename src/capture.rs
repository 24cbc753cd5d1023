//! Live capture for the night's window (`netdigest capture`): libpcap on a real
//! interface, run by an unprivileged user holding only `CAP_NET_RAW`, rotating
//! files, honest about drops.
//!
//! Layout of one night (`<night>` is the local date the window started):
//!
//! ```text
//! <state>/nights/<night>/capture/part-0001.pcap, part-0002.pcap, ...
//! <state>/nights/<night>/capture.json
//! ```
//!
//! Two threads: the *reader* owns the libpcap handle and copies each packet into
//! a batch of ready-made pcap records; the *writer* appends batches to the current
//! part file, rotates it by size and age, flushes and `fdatasync`s it every few
//! seconds (a power cut loses at most those seconds) and stops writing at the
//! night's disk cap. Batches come from a fixed pool, so the queue between the
//! threads is bounded: when the writer falls behind (a slow SD card) and the pool
//! is empty, packets are dropped and counted (`stats.dropped_queue`) instead of
//! the kernel's ring overflowing.
//!
//! `capture.json` is rewritten atomically when the capture starts (readiness: the
//! handle is open and filtering), every `stats_every`, and at the end. Its
//! top-level `interface` and `stats.{received, dropped_kernel, dropped_interface}`
//! are what the report reads. At a clean stop (window end, `--for` elapsed,
//! SIGTERM/SIGINT) every packet libpcap counted as received and not dropped is in
//! the files: `written + dropped_queue + dropped_disk == received - dropped_kernel`
//! (packets the kernel places after the final statistics are not part of the capture).
//!
//! When the interface goes down or disappears the reader records a gap, waits
//! with backoff and reopens it when it is back; the capture does not exit.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, FixedOffset, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, TimeOfDay};
use crate::fsutil::write_atomic;
use crate::linktype::LinkType;

/// Version of the `capture.json` layout.
pub const CAPTURE_SCHEMA_VERSION: u32 = 1;
/// Linux capability number of `CAP_NET_RAW`.
const CAP_NET_RAW: u32 = 13;
const MIB: u64 = 1024 * 1024;
/// Length of a pcap record header.
const REC_HDR: usize = 16;
/// Length of the pcap file header.
const FILE_HDR: u64 = 24;
/// Pause of the reader when libpcap has nothing ready (non-blocking reads): it doubles
/// from 1 ms up to [`MAX_IDLE_SLEEP`] while the link is quiet. At 150 000 packets/s of
/// 192-byte snaps, 20 ms fill under 1 MiB of the kernel ring.
const IDLE_SLEEP: Duration = Duration::from_millis(1);
const MAX_IDLE_SLEEP: Duration = Duration::from_millis(20);
/// Most samples kept in `capture.json` (older ones are thinned out).
const MAX_SAMPLES: usize = 1000;

// ---------------------------------------------------------------------------
// Public API: options, stop flag, errors, outcome
// ---------------------------------------------------------------------------

/// What `netdigest capture` was asked on the command line, plus tuning knobs.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// `--for 10m`: capture for this long from now, instead of the configured window.
    pub duration: Option<Duration>,
    /// `--until 06:00`: capture from now until the next such local time.
    pub until: Option<TimeOfDay>,
    /// `--interface X`: overrides `capture.interface`.
    pub interface: Option<String>,
    /// `--state DIR`: overrides `state.dir`.
    pub state_dir: Option<PathBuf>,
    /// Flush and fdatasync the open part file at least this often. Default 2 s.
    pub flush_every: Duration,
    /// Sample libpcap's statistics into `capture.json` this often. Default 30 s.
    pub stats_every: Duration,
    /// Start a new part file after this long (as well as after `capture.rotate_mb`). Default 1 h.
    pub rotate_every: Duration,
    /// Memory for the queue between the reader and the writer thread, MiB. Default 32.
    pub queue_mb: u32,
    /// libpcap read timeout (how long a partly filled kernel block waits), ms. Default 100.
    pub read_timeout_ms: u32,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            duration: None,
            until: None,
            interface: None,
            state_dir: None,
            flush_every: Duration::from_secs(2),
            stats_every: Duration::from_secs(30),
            rotate_every: Duration::from_secs(3600),
            queue_mb: 32,
            read_timeout_ms: 100,
        }
    }
}

/// Set by SIGTERM/SIGINT (or by hand) to end the capture cleanly.
#[derive(Debug, Clone, Default)]
pub struct StopFlag {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl StopFlag {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag that SIGTERM and SIGINT set. A second signal while stopping exits
    /// the process at once with status 1 (for a capture stuck in shutdown).
    ///
    /// # Errors
    /// The handlers could not be installed.
    pub fn on_signals() -> io::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let s = Self::new();
        for sig in [SIGTERM, SIGINT] {
            // Order matters: the conditional shutdown sees the flag before this signal sets it.
            signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&s.flag))?;
            signal_hook::flag::register_usize(sig, Arc::clone(&s.signal), sig as usize)?;
            signal_hook::flag::register(sig, Arc::clone(&s.flag))?;
        }
        Ok(s)
    }

    /// Asks the capture to stop.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Name of the signal that stopped the capture, if one did.
    #[must_use]
    pub fn signal_name(&self) -> Option<&'static str> {
        match self.signal.load(Ordering::SeqCst) {
            2 => Some("SIGINT"),
            15 => Some("SIGTERM"),
            _ => None,
        }
    }
}

/// Why a capture could not run.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A bad option or config value (exit code 2).
    #[error("invalid {key}: {reason}")]
    Config { key: &'static str, reason: String },
    /// libpcap refused the BPF filter (exit code 2).
    #[error("invalid capture.filter {filter:?}: {message} (libpcap)")]
    Filter { filter: String, message: String },
    /// The configured interface does not exist.
    #[error(
        "no interface {interface:?} on this system (present: {available}); set capture.interface or --interface"
    )]
    NoSuchInterface {
        interface: String,
        available: String,
    },
    /// Capturing is not permitted: the message says which capability is missing and how to grant it.
    #[error("{0}")]
    Permission(String),
    /// libpcap could not open the interface for another reason.
    #[error("cannot capture on {interface}: {message} (libpcap)")]
    Open { interface: String, message: String },
    /// A capture thread failed (a bug); `capture.json` says `"status": "failed"`.
    #[error("{0}")]
    Internal(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl CaptureError {
    /// The exit code DESIGN.md assigns: 2 for usage and config errors, else 1.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            CaptureError::Config { .. } | CaptureError::Filter { .. } => 2,
            _ => 1,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CaptureError + '_ {
    move |source| CaptureError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a call to [`run_capture`] did.
#[derive(Debug)]
pub enum CaptureOutcome {
    /// Started outside the configured window: nothing captured, nothing written.
    OutsideWindow {
        now: DateTime<FixedOffset>,
        next_start: DateTime<FixedOffset>,
    },
    /// A capture ran; this is its final `capture.json`.
    Captured {
        night_dir: PathBuf,
        report: Box<CaptureReport>,
    },
}

// ---------------------------------------------------------------------------
// capture.json
// ---------------------------------------------------------------------------

/// `capture.json`. Top-level `interface` and `stats.{received, dropped_kernel,
/// dropped_interface}` are read by the report; keep them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CaptureReport {
    pub schema_version: u32,
    /// `"running"` while capturing (rewritten every `stats_every` and when a gap starts or
    /// ends), `"complete"` at the end (`"failed"` if a capture thread panicked).
    pub status: String,
    /// Local date the window started, `YYYY-MM-DD`.
    pub night: String,
    pub interface: String,
    pub filter: String,
    pub snaplen: u32,
    pub promiscuous: bool,
    pub buffer_mb: u32,
    /// LINKTYPE_* of the capture files, and its name (once the interface was opened).
    pub link_type: Option<u32>,
    pub link_type_name: Option<String>,
    pub window: WindowInfo,
    /// When this run started capturing and when it ended (RFC 3339, local offset).
    /// A run started late has `started` after `window.start`.
    pub started: String,
    pub ended: Option<String>,
    /// Last time this file was written.
    pub updated: String,
    /// `"window end"`, `"duration"`, `"SIGTERM"`, `"SIGINT"`, `"stopped"`.
    pub stop_reason: Option<String>,
    /// Totals for the night (all runs).
    pub stats: CaptureStats,
    /// Periodic samples of the running totals.
    pub samples: Vec<Sample>,
    /// Times when nothing could be captured (interface down or gone, capture not running).
    pub gaps: Vec<Gap>,
    /// Part files, in order.
    pub files: Vec<FileInfo>,
    pub disk: DiskInfo,
    /// The first write error, after which nothing more was written.
    pub write_error: Option<String>,
    /// Earlier runs of the same night (a restart after a crash or reboot), oldest first.
    pub previous_runs: Vec<RunRecord>,
}

/// The window this run captured for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WindowInfo {
    pub start: String,
    pub end: String,
    /// `"config"`, `"for"` or `"until"`.
    pub source: String,
    pub timezone: String,
}

/// Packet counters. `received`, `dropped_kernel` and `dropped_interface` are libpcap's
/// `pcap_stats()` (`ps_recv`, `ps_drop`, `ps_ifdrop`); `received` counts packets that
/// passed the filter, including those the kernel then dropped.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct CaptureStats {
    pub received: u64,
    pub dropped_kernel: u64,
    pub dropped_interface: u64,
    /// Packets handed to us by libpcap (up to the stop moment).
    pub read: u64,
    /// Read but dropped because the queue to the writer was full (slow disk).
    pub dropped_queue: u64,
    /// Read but not written: the night's disk cap was reached, or writing failed.
    pub dropped_disk: u64,
    /// Packets in the part files.
    pub written: u64,
}

impl CaptureStats {
    fn add(&mut self, o: &CaptureStats) {
        self.received += o.received;
        self.dropped_kernel += o.dropped_kernel;
        self.dropped_interface += o.dropped_interface;
        self.read += o.read;
        self.dropped_queue += o.dropped_queue;
        self.dropped_disk += o.dropped_disk;
        self.written += o.written;
    }
}

/// One periodic sample of the running totals.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Sample {
    pub at: String,
    #[serde(flatten)]
    pub stats: CaptureStats,
}

/// A time when nothing was captured.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Gap {
    pub start: String,
    /// `None` while the gap lasts (or when the capture ended during it).
    pub end: Option<String>,
    pub seconds: Option<f64>,
    pub reason: String,
}

/// One part file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FileInfo {
    /// File name inside `capture/`.
    pub name: String,
    pub bytes: u64,
    pub packets: u64,
    /// Timestamps of the first and last packet (RFC 3339, UTC).
    pub first: Option<String>,
    pub last: Option<String>,
    /// Closed cleanly (flushed, synced).
    pub complete: bool,
}

/// The night's disk use and cap.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DiskInfo {
    pub max_mb: u64,
    pub rotate_mb: u64,
    pub bytes: u64,
    pub cap_reached_at: Option<String>,
}

/// Summary of an earlier run of the same night.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RunRecord {
    pub started: String,
    pub ended: Option<String>,
    /// Last time that run wrote `capture.json` (its end, if it crashed).
    pub updated: String,
    pub stop_reason: Option<String>,
    pub stats: CaptureStats,
}

fn rfc3339_local(t: DateTime<Utc>, zone: &Zone) -> String {
    zone.to_local(t)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn rfc3339_utc_ts(sec: i64, usec: u32) -> String {
    DateTime::<Utc>::from_timestamp(sec, usec.saturating_mul(1000))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The window (DST-safe)
// ---------------------------------------------------------------------------

/// The time zone of the window: `capture.timezone` or the system's.
pub use crate::config::Zone;

/// Where a window came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSource {
    Config,
    For,
    Until,
}

impl fmt::Display for WindowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WindowSource::Config => "config",
            WindowSource::For => "for",
            WindowSource::Until => "until",
        })
    }
}

/// A capture window: `[start, end)` and the night it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub night: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub source: WindowSource,
}

/// Whether `now` is inside the configured daily window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowPlan {
    Inside(Window),
    Outside { next_start: DateTime<Utc> },
}

/// The configured daily window `start_min..end_min` (minutes after local midnight; the
/// end is on the next day when it is not after the start) that contains `now`, or the
/// next start. A capture started late (the Pi booted at 01:00) gets the window that is
/// running, ending at its normal end.
#[must_use]
pub fn plan_window(zone: &Zone, now: DateTime<Utc>, start_min: u32, end_min: u32) -> WindowPlan {
    let today = zone.to_local(now).date_naive();
    let window_of = |d: NaiveDate| {
        let start = zone.instant(d, start_min, true);
        let end_day = if end_min <= start_min {
            d.checked_add_days(Days::new(1)).unwrap_or(d)
        } else {
            d
        };
        let end = zone.instant(end_day, end_min, false);
        Window {
            night: d,
            start,
            end,
            source: WindowSource::Config,
        }
    };
    let mut next: Option<DateTime<Utc>> = None;
    for delta in [-1i64, 0, 1] {
        let Some(d) = today.checked_add_signed(chrono::Duration::days(delta)) else {
            continue;
        };
        let w = window_of(d);
        if w.start <= now && now < w.end {
            return WindowPlan::Inside(w);
        }
        if w.start > now && next.is_none_or(|n| w.start < n) {
            next = Some(w.start);
        }
    }
    WindowPlan::Outside {
        next_start: next.unwrap_or(now),
    }
}

/// The next instant after `now` when the local clock shows `minutes` after midnight.
#[must_use]
pub fn next_local_time(zone: &Zone, now: DateTime<Utc>, minutes: u32) -> DateTime<Utc> {
    let today = zone.to_local(now).date_naive();
    for delta in 0..=2u64 {
        if let Some(d) = today.checked_add_days(Days::new(delta)) {
            let t = zone.instant(d, minutes, false);
            if t > now {
                return t;
            }
        }
    }
    now
}

/// The window for this run: `--for`, `--until` or the config's. `None`: outside the
/// configured window (with its next start). For `--for`/`--until`, the night is the
/// configured window's night when `now` is inside it (a capture at 01:00 belongs to
/// last night), else the local date of `now`.
///
/// # Errors
/// Both `--for` and `--until`, or a value that does not parse.
pub fn resolve_window(
    cfg: &Config,
    opts: &CaptureOptions,
    zone: &Zone,
    now: DateTime<Utc>,
) -> Result<Result<Window, DateTime<Utc>>, CaptureError> {
    let start_min = cfg.capture.start.minutes();
    let end_min = cfg.capture.end.minutes();
    let plan = plan_window(zone, now, start_min, end_min);
    let adhoc_night = match &plan {
        WindowPlan::Inside(w) => w.night,
        WindowPlan::Outside { .. } => zone.to_local(now).date_naive(),
    };
    match (opts.duration, &opts.until) {
        (Some(_), Some(_)) => Err(CaptureError::Config {
            key: "--for/--until",
            reason: "give one of --for and --until, not both".into(),
        }),
        (Some(d), None) => {
            let d = chrono::Duration::from_std(d).map_err(|e| CaptureError::Config {
                key: "--for",
                reason: e.to_string(),
            })?;
            if d <= chrono::Duration::zero() {
                return Err(CaptureError::Config {
                    key: "--for",
                    reason: "must be longer than zero".into(),
                });
            }
            Ok(Ok(Window {
                night: adhoc_night,
                start: now,
                end: now + d,
                source: WindowSource::For,
            }))
        }
        (None, Some(u)) => Ok(Ok(Window {
            night: adhoc_night,
            start: now,
            end: next_local_time(zone, now, u.minutes()),
            source: WindowSource::Until,
        })),
        (None, None) => Ok(match plan {
            WindowPlan::Inside(w) => Ok(w),
            WindowPlan::Outside { next_start } => Err(next_start),
        }),
    }
}

// ---------------------------------------------------------------------------
// Filter validation, interfaces, capabilities
// ---------------------------------------------------------------------------

/// Compiles `filter` with libpcap's own compiler on a dead handle (no privileges
/// needed) for the link type `interface` will have (`any`: Linux cooked, else
/// Ethernet). `Err` is libpcap's message, e.g. `can't parse filter expression: syntax error`.
/// An empty filter is valid (everything).
///
/// # Errors
/// libpcap refused the filter.
pub fn validate_filter(filter: &str, interface: &str) -> Result<(), String> {
    if filter.trim().is_empty() {
        return Ok(());
    }
    let lt = if interface == "any" {
        pcap::Linktype(LinkType::LINUX_SLL.0 as i32)
    } else {
        pcap::Linktype::ETHERNET
    };
    let dead = pcap::Capture::dead(lt).map_err(|e| pcap_msg(&e))?;
    dead.compile(filter, true)
        .map(|_| ())
        .map_err(|e| pcap_msg(&e))
}

fn pcap_msg(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Interfaces present (`/sys/class/net`), sorted.
#[must_use]
pub fn interfaces() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir("/sys/class/net")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Interface state from sysfs: `None` when it does not exist, else whether it is up.
fn interface_up(name: &str) -> Option<bool> {
    if name == "any" {
        return Some(true);
    }
    let text = fs::read_to_string(Path::new("/sys/class/net").join(name).join("flags")).ok()?;
    let flags = u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).unwrap_or(0);
    Some(flags & 1 == 1)
}

/// A link's state, for gaps: administratively down, or up without a working link
/// (no carrier, Wi-Fi not associated) both mean nothing can be captured.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LinkState {
    Absent,
    Down(String),
    Up,
}

fn link_state(name: &str) -> LinkState {
    match interface_up(name) {
        None => LinkState::Absent,
        Some(false) => LinkState::Down("is down".into()),
        Some(true) if name == "any" => LinkState::Up,
        Some(true) => {
            let oper = fs::read_to_string(Path::new("/sys/class/net").join(name).join("operstate"))
                .unwrap_or_default();
            match oper.trim() {
                "up" | "unknown" | "" => LinkState::Up,
                other => LinkState::Down(format!("has no link (operstate {other})")),
            }
        }
    }
}

/// Whether this process holds capability `cap` in its effective set (`/proc/self/status`).
fn has_capability(cap: u32) -> Option<bool> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    let bits = u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()?;
    Some(bits & (1u64 << cap) != 0)
}

fn current_uid() -> String {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(String::from))
        })
        .unwrap_or_else(|| "?".into())
}

fn is_permission_error(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("permission") || m.contains("operation not permitted") || m.contains("eperm")
}

/// The error for a capture refused for lack of privileges: which capability, and how to grant it.
#[must_use]
pub fn permission_message(interface: &str, libpcap: &str) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/path/to/netdigest".into());
    let what = if has_capability(CAP_NET_RAW) == Some(true) {
        "is not permitted although it holds CAP_NET_RAW (a sandbox may forbid AF_PACKET sockets: \
         allow them with RestrictAddressFamilies=AF_PACKET)"
            .to_string()
    } else {
        "lacks the capability CAP_NET_RAW, which capturing needs (nothing else is needed)"
            .to_string()
    };
    format!(
        "cannot capture on {interface}: this process (uid {uid}) {what}. Grant it to the capture \
         service under systemd with AmbientCapabilities=CAP_NET_RAW and \
         CapabilityBoundingSet=CAP_NET_RAW in its [Service] section (`netdigest units` writes \
         this), or to the binary with: sudo setcap cap_net_raw+ep {exe} (libpcap: {libpcap})",
        uid = current_uid()
    )
}

// ---------------------------------------------------------------------------
// Opening the handle
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct HandleSpec {
    interface: String,
    filter: String,
    snaplen: u32,
    promiscuous: bool,
    buffer_bytes: i32,
    read_timeout_ms: i32,
}

/// Why opening failed.
enum OpenError {
    Permission(String),
    Filter(String),
    Other(String),
}

fn open_handle(spec: &HandleSpec) -> Result<pcap::Capture<pcap::Active>, OpenError> {
    let classify = |e: pcap::Error| {
        let m = pcap_msg(&e);
        if is_permission_error(&m) {
            OpenError::Permission(m)
        } else {
            OpenError::Other(m)
        }
    };
    let mut cap = pcap::Capture::from_device(spec.interface.as_str())
        .map_err(classify)?
        .promisc(spec.promiscuous)
        .snaplen(i32::try_from(spec.snaplen).unwrap_or(i32::MAX))
        .buffer_size(spec.buffer_bytes)
        .timeout(spec.read_timeout_ms)
        .immediate_mode(false)
        .open()
        .map_err(classify)?
        // Non-blocking: with TPACKET_V3, libpcap's poll() waits until the kernel hands
        // over a block, forever on a quiet link; we sleep briefly when nothing is ready.
        .setnonblock()
        .map_err(classify)?;
    if !spec.filter.trim().is_empty() {
        cap.filter(&spec.filter, true)
            .map_err(|e| OpenError::Filter(pcap_msg(&e)))?;
    }
    Ok(cap)
}

// ---------------------------------------------------------------------------
// Batches: ready-made pcap records, from a bounded pool
// ---------------------------------------------------------------------------

/// Packets as pcap records (16-byte header + data), in arrival order.
#[derive(Debug)]
struct Batch {
    data: Vec<u8>,
    packets: u64,
    first_ts: Option<(i64, u32)>,
    last_ts: Option<(i64, u32)>,
    started: Instant,
}

impl Batch {
    fn with_capacity(n: usize) -> Self {
        Batch {
            data: Vec::with_capacity(n),
            packets: 0,
            first_ts: None,
            last_ts: None,
            started: Instant::now(),
        }
    }

    fn clear(&mut self) {
        self.data.clear();
        self.packets = 0;
        self.first_ts = None;
        self.last_ts = None;
        self.started = Instant::now();
    }

    fn push(&mut self, sec: i64, usec: u32, wire_len: u32, data: &[u8]) {
        if self.packets == 0 {
            self.started = Instant::now();
            self.first_ts = Some((sec, usec));
        }
        self.last_ts = Some((sec, usec));
        let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        // pcap stores seconds as u32 (good until 2106).
        self.data
            .extend_from_slice(&u32::try_from(sec).unwrap_or(0).to_le_bytes());
        self.data.extend_from_slice(&usec.to_le_bytes());
        self.data.extend_from_slice(&caplen.to_le_bytes());
        self.data
            .extend_from_slice(&wire_len.max(caplen).to_le_bytes());
        self.data.extend_from_slice(data);
        self.packets += 1;
    }
}

/// Messages from the reader to the writer.
#[derive(Debug)]
enum Msg {
    /// A handle was opened with this LINKTYPE (the first packets follow).
    Opened(u32),
    Batch(Batch),
}

/// Reader-side end of the queue.
struct Queue {
    tx: mpsc::Sender<Msg>,
    free: mpsc::Receiver<Batch>,
    allocated: usize,
    max_batches: usize,
    batch_bytes: usize,
    max_record: usize,
    cur: Option<Batch>,
    /// Packets accepted from libpcap, all handles (at a stop, up to the final count).
    read: u64,
    /// Same, for the current handle.
    handle_read: u64,
    dropped_queue: u64,
    after_stop: u64,
    writer_gone: bool,
}

impl Queue {
    fn take_batch(&mut self) -> Option<Batch> {
        if let Ok(b) = self.free.try_recv() {
            return Some(b);
        }
        if self.allocated < self.max_batches {
            self.allocated += 1;
            return Some(Batch::with_capacity(self.batch_bytes));
        }
        None
    }

    #[allow(
        clippy::useless_conversion,
        reason = "time_t and suseconds_t are 32-bit on some targets (armv7)"
    )]
    fn push(&mut self, h: &pcap::PacketHeader, data: &[u8], limit: Option<u64>) {
        if limit.is_some_and(|l| self.handle_read >= l) {
            self.after_stop += 1;
            return;
        }
        let sec = i64::from(h.ts.tv_sec);
        let usec = i64::from(h.ts.tv_usec);
        self.read += 1;
        self.handle_read += 1;
        if self.cur.is_none() {
            self.cur = self.take_batch();
        }
        let Some(b) = self.cur.as_mut() else {
            self.dropped_queue += 1;
            return;
        };
        b.push(sec, u32::try_from(usec).unwrap_or(0), h.len, data);
        if b.data.len() + self.max_record > self.batch_bytes {
            self.send();
        }
    }

    fn send(&mut self) {
        if let Some(b) = self.cur.take() {
            if b.packets == 0 {
                self.cur = Some(b);
                return;
            }
            let n = b.packets;
            if self.tx.send(Msg::Batch(b)).is_err() && !self.writer_gone {
                self.writer_gone = true;
                tracing::error!("capture writer thread is gone; packets are no longer written");
            }
            if self.writer_gone {
                self.dropped_queue += n;
            }
        }
    }

    /// Sends a partly filled batch once it is old enough, so the writer flushes on time.
    fn send_if_old(&mut self, age: Duration) {
        if self
            .cur
            .as_ref()
            .is_some_and(|b| b.packets > 0 && b.started.elapsed() >= age)
        {
            self.send();
        }
    }
}

// ---------------------------------------------------------------------------
// Statistics of libpcap handles (u32 counters that wrap)
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy)]
struct HandleStats {
    last: Option<pcap::Stat>,
    received: u64,
    dropped: u64,
    if_dropped: u64,
}

impl HandleStats {
    fn update(&mut self, s: pcap::Stat) {
        let prev = self.last.unwrap_or(pcap::Stat {
            received: 0,
            dropped: 0,
            if_dropped: 0,
        });
        self.received += u64::from(s.received.wrapping_sub(prev.received));
        self.dropped += u64::from(s.dropped.wrapping_sub(prev.dropped));
        self.if_dropped += u64::from(s.if_dropped.wrapping_sub(prev.if_dropped));
        self.last = Some(s);
    }
}

/// What the reader publishes for `capture.json`.
#[derive(Debug, Default, Clone)]
struct ReaderLive {
    received: u64,
    dropped_kernel: u64,
    dropped_interface: u64,
    read: u64,
    dropped_queue: u64,
    link_type: Option<u32>,
    gaps: Vec<(DateTime<Utc>, Option<DateTime<Utc>>, String)>,
    /// Bumped when a gap starts or ends, so `capture.json` is rewritten at once.
    gap_events: u64,
}

/// What the writer publishes for `capture.json`.
#[derive(Debug, Default, Clone)]
struct WriterLive {
    files: Vec<FileInfo>,
    written: u64,
    dropped_disk: u64,
    bytes: u64,
    cap_reached_at: Option<DateTime<Utc>>,
    write_error: Option<String>,
    /// Bumped when the cap is reached or writing fails, so `capture.json` is rewritten at once.
    events: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// Reader thread
// ---------------------------------------------------------------------------

struct Reader {
    spec: HandleSpec,
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<ReaderLive>>,
    q: Queue,
    /// Totals of closed handles.
    closed: HandleStats,
    cur: HandleStats,
    gap_open: bool,
}

impl Reader {
    fn publish(&self) {
        let mut l = lock(&self.live);
        l.received = self.closed.received + self.cur.received;
        l.dropped_kernel = self.closed.dropped + self.cur.dropped;
        l.dropped_interface = self.closed.if_dropped + self.cur.if_dropped;
        l.read = self.q.read;
        l.dropped_queue = self.q.dropped_queue;
    }

    fn sample(&mut self, cap: &mut pcap::Capture<pcap::Active>) {
        if let Ok(s) = cap.stats() {
            self.cur.update(s);
        }
        self.publish();
    }

    fn opened(&mut self, cap: &pcap::Capture<pcap::Active>) {
        let lt = u32::try_from(cap.get_datalink().0).unwrap_or(0);
        lock(&self.live).link_type = Some(lt);
        self.cur = HandleStats::default();
        self.q.handle_read = 0;
        if self.q.tx.send(Msg::Opened(lt)).is_err() {
            self.q.writer_gone = true;
        }
    }

    /// Takes the handle's final stats, then reads exactly the packets they count:
    /// the kernel counts a packet when it places it in the ring, and the ring is read
    /// in that order, so the first `received - dropped` packets read from this handle
    /// are the counted ones; later arrivals are not part of the capture. Then every
    /// packet libpcap counted as received and not dropped is read, and none more.
    fn finish(&mut self, mut cap: pcap::Capture<pcap::Active>, stopping: bool) {
        let first = cap.stats().ok();
        if let Some(s) = first {
            self.cur.update(s);
            let expected = self.cur.received.saturating_sub(self.cur.dropped);
            let budget = Duration::from_millis(u64::from(self.spec.read_timeout_ms.unsigned_abs()))
                * 4
                + if stopping {
                    Duration::from_secs(2)
                } else {
                    Duration::ZERO
                };
            let deadline = Instant::now() + budget;
            while self.q.handle_read < expected && Instant::now() < deadline {
                let q = &mut self.q;
                match cap.dispatch(None, |p| q.push(p.header, p.data, Some(expected))) {
                    Ok(0) => thread::sleep(IDLE_SLEEP),
                    Ok(_) => {}
                    // Nothing ready yet, or the interface is gone: the kernel still
                    // hands over its last block when its timer expires.
                    Err(_) => thread::sleep(IDLE_SLEEP),
                }
            }
            if self.q.handle_read < expected {
                tracing::warn!(
                    "{} packets counted by libpcap were still unread when the handle closed",
                    expected - self.q.handle_read
                );
            }
        }
        self.closed.received += self.cur.received;
        self.closed.dropped += self.cur.dropped;
        self.closed.if_dropped += self.cur.if_dropped;
        self.cur = HandleStats::default();
        self.q.send();
        self.publish();
    }

    fn gap_start(&mut self, reason: String) {
        if self.gap_open {
            return;
        }
        self.gap_open = true;
        let mut l = lock(&self.live);
        l.gaps.push((Utc::now(), None, reason));
        l.gap_events += 1;
    }

    fn gap_end(&mut self) {
        if !self.gap_open {
            return;
        }
        self.gap_open = false;
        let mut l = lock(&self.live);
        if let Some(g) = l.gaps.last_mut()
            && g.1.is_none()
        {
            g.1 = Some(Utc::now());
            l.gap_events += 1;
        }
    }

    /// Opens or closes a gap as the link goes down and comes back (libpcap keeps
    /// the handle across a link down; only a vanished interface is an error).
    fn check_link(&mut self) {
        match link_state(&self.spec.interface) {
            LinkState::Up => {
                if self.gap_open {
                    tracing::info!("interface {} is up again", self.spec.interface);
                    self.gap_end();
                }
            }
            LinkState::Down(why) => {
                if !self.gap_open {
                    tracing::warn!(
                        "interface {} {why}: nothing to capture",
                        self.spec.interface
                    );
                    self.gap_start(format!("interface {} {why}", self.spec.interface));
                }
            }
            LinkState::Absent => {}
        }
    }

    fn run(mut self, initial: Option<pcap::Capture<pcap::Active>>) {
        let mut handle = initial;
        match &handle {
            Some(cap) => self.opened(cap),
            None => self.gap_start(format!("interface {} is down", self.spec.interface)),
        }
        let mut last_link_check = Instant::now();
        let mut backoff = Duration::from_millis(250);
        let mut next_try = Instant::now() + backoff;
        let mut last_sample = Instant::now();
        let mut last_wait_log = Instant::now();
        let batch_age = Duration::from_millis(250);
        let mut idle = IDLE_SLEEP;
        while !self.stop.load(Ordering::SeqCst) {
            let Some(cap) = handle.as_mut() else {
                self.q.send();
                if Instant::now() >= next_try {
                    match interface_up(&self.spec.interface) {
                        Some(true) => match open_handle(&self.spec) {
                            Ok(cap) => {
                                tracing::info!("capture on {} resumed", self.spec.interface);
                                self.opened(&cap);
                                self.check_link();
                                handle = Some(cap);
                                backoff = Duration::from_millis(250);
                                continue;
                            }
                            Err(
                                OpenError::Permission(m)
                                | OpenError::Filter(m)
                                | OpenError::Other(m),
                            ) => {
                                if last_wait_log.elapsed() >= Duration::from_secs(60) {
                                    tracing::warn!(
                                        "cannot reopen {} yet: {m}",
                                        self.spec.interface
                                    );
                                    last_wait_log = Instant::now();
                                }
                            }
                        },
                        state => {
                            if last_wait_log.elapsed() >= Duration::from_secs(60) {
                                tracing::warn!(
                                    "waiting for interface {} ({})",
                                    self.spec.interface,
                                    if state.is_none() { "absent" } else { "down" }
                                );
                                last_wait_log = Instant::now();
                            }
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    next_try = Instant::now() + backoff;
                }
                thread::sleep(Duration::from_millis(50));
                continue;
            };
            let q = &mut self.q;
            let res = cap.dispatch(None, |p| q.push(p.header, p.data, None));
            self.q.send_if_old(batch_age);
            if matches!(res, Ok(0)) {
                thread::sleep(idle);
                idle = (idle * 2).min(MAX_IDLE_SLEEP);
            } else {
                idle = IDLE_SLEEP;
            }
            if let Err(e) = res {
                let msg = pcap_msg(&e);
                tracing::warn!(
                    "capture on {} interrupted: {msg}; waiting for it to come back",
                    self.spec.interface
                );
                self.gap_start(msg);
                if let Some(cap) = handle.take() {
                    self.finish(cap, false);
                }
                backoff = Duration::from_millis(250);
                next_try = Instant::now() + backoff;
                last_wait_log = Instant::now();
                continue;
            }
            if last_sample.elapsed() >= Duration::from_secs(1) {
                if let Some(cap) = handle.as_mut() {
                    self.sample(cap);
                }
                last_sample = Instant::now();
            }
            if last_link_check.elapsed() >= Duration::from_millis(250) {
                self.check_link();
                last_link_check = Instant::now();
            }
        }
        if let Some(cap) = handle.take() {
            self.finish(cap, true);
        }
        self.q.send();
        self.publish();
    }
}

// ---------------------------------------------------------------------------
// Writer thread
// ---------------------------------------------------------------------------

/// The pcap file header (microsecond timestamps, little-endian).
fn pcap_file_header(snaplen: u32, link_type: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&link_type.to_le_bytes());
    h
}

struct Part {
    out: BufWriter<File>,
    /// Index in `WriterLive::files`.
    idx: usize,
    bytes: u64,
    packets: u64,
    opened: Instant,
    dirty: bool,
}

struct Writer {
    dir: PathBuf,
    next_index: u32,
    snaplen: u32,
    rotate_bytes: u64,
    rotate_every: Duration,
    flush_every: Duration,
    cap_bytes: u64,
    /// Bytes of the night's part files, earlier runs included.
    total_bytes: u64,
    part: Option<Part>,
    link_type: Option<u32>,
    /// Nothing more is written (cap reached or a write failed).
    halted: bool,
    live: Arc<Mutex<WriterLive>>,
    last_sync: Instant,
}

impl Writer {
    fn open_part(&mut self, link_type: u32) -> io::Result<()> {
        let name = format!("part-{:04}.pcap", self.next_index);
        let path = self.dir.join(&name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        self.next_index += 1;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&pcap_file_header(self.snaplen, link_type))?;
        self.total_bytes += FILE_HDR;
        let idx = {
            let mut l = lock(&self.live);
            l.files.push(FileInfo {
                name: name.clone(),
                bytes: FILE_HDR,
                ..FileInfo::default()
            });
            l.bytes = self.total_bytes;
            l.files.len() - 1
        };
        tracing::debug!("writing {}", path.display());
        self.part = Some(Part {
            out,
            idx,
            bytes: FILE_HDR,
            packets: 0,
            opened: Instant::now(),
            dirty: true,
        });
        Ok(())
    }

    fn close_part(&mut self) -> io::Result<()> {
        if let Some(mut p) = self.part.take() {
            p.out.flush()?;
            p.out.get_ref().sync_all()?;
            lock(&self.live).files[p.idx].complete = true;
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        if let Some(p) = self.part.as_mut()
            && p.dirty
        {
            p.out.flush()?;
            p.out.get_ref().sync_data()?;
            p.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    fn fail(&mut self, e: &io::Error) {
        let msg = format!("writing capture files in {}: {e}", self.dir.display());
        tracing::error!("{msg}; nothing more is written this night");
        self.halted = true;
        // Keep what is on disk readable: cut the file back to its last whole record.
        if let Some(p) = self.part.take() {
            let good = p.bytes;
            if let Ok(f) = p.out.into_inner() {
                let _ = f.set_len(good);
                let _ = f.sync_all();
            }
        }
        let mut l = lock(&self.live);
        l.write_error.get_or_insert(msg);
        l.events += 1;
    }

    fn write_batch(&mut self, b: &Batch) {
        if self.halted {
            lock(&self.live).dropped_disk += b.packets;
            return;
        }
        if let Err(e) = self.try_write_batch(b) {
            self.fail(&e);
            lock(&self.live).dropped_disk += b.packets;
        }
    }

    fn try_write_batch(&mut self, b: &Batch) -> io::Result<()> {
        let Some(lt) = self.link_type else {
            return Err(io::Error::other("packets before the link type is known"));
        };
        let len = b.data.len() as u64;
        if self.part.as_ref().is_some_and(|p| {
            p.packets > 0
                && (p.bytes + len > self.rotate_bytes || p.opened.elapsed() >= self.rotate_every)
        }) {
            self.close_part()?;
        }
        if self.part.is_none() {
            if self.total_bytes + FILE_HDR > self.cap_bytes {
                self.reach_cap(b.packets);
                return Ok(());
            }
            self.open_part(lt)?;
        }
        // The disk cap: write the records that fit, drop the rest.
        let (upto, n) = if self.total_bytes + len > self.cap_bytes {
            let room = self.cap_bytes.saturating_sub(self.total_bytes);
            records_within(&b.data, room)
        } else {
            (b.data.len(), b.packets)
        };
        let Some(p) = self.part.as_mut() else {
            return Ok(());
        };
        p.out.write_all(&b.data[..upto])?;
        p.bytes += upto as u64;
        p.packets += n;
        p.dirty = true;
        self.total_bytes += upto as u64;
        {
            let mut l = lock(&self.live);
            let f = &mut l.files[p.idx];
            f.bytes = p.bytes;
            f.packets = p.packets;
            if n > 0 {
                if f.first.is_none()
                    && let Some((s, u)) = b.first_ts
                {
                    f.first = Some(rfc3339_utc_ts(s, u));
                }
                if upto == b.data.len() {
                    if let Some((s, u)) = b.last_ts {
                        f.last = Some(rfc3339_utc_ts(s, u));
                    }
                } else if let Some((s, u)) = last_record_ts(&b.data[..upto]) {
                    f.last = Some(rfc3339_utc_ts(s, u));
                }
            }
            l.written += n;
            l.bytes = self.total_bytes;
        }
        if n < b.packets {
            self.reach_cap(b.packets - n);
        }
        Ok(())
    }

    fn reach_cap(&mut self, dropped: u64) {
        if !self.halted {
            tracing::warn!(
                "the night's disk cap ({} MiB, capture.max_disk_mb) is reached: packets are no \
                 longer written; the capture goes on counting them",
                self.cap_bytes / MIB
            );
            self.halted = true;
            if let Err(e) = self.close_part() {
                self.fail(&e);
            }
            let mut l = lock(&self.live);
            l.cap_reached_at = Some(Utc::now());
            l.events += 1;
        }
        lock(&self.live).dropped_disk += dropped;
    }

    fn on_link_type(&mut self, lt: u32) {
        if self.link_type.is_some_and(|old| old != lt)
            && let Err(e) = self.close_part()
        {
            self.fail(&e);
        }
        self.link_type = Some(lt);
        if self.part.is_none()
            && !self.halted
            && let Err(e) = self.open_part(lt)
        {
            self.fail(&e);
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>, free: mpsc::Sender<Batch>) {
        let tick = (self.flush_every / 2).max(Duration::from_millis(50));
        loop {
            match rx.recv_timeout(tick) {
                Ok(Msg::Opened(lt)) => self.on_link_type(lt),
                Ok(Msg::Batch(mut b)) => {
                    self.write_batch(&b);
                    b.clear();
                    let _ = free.send(b);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if self.last_sync.elapsed() >= self.flush_every
                && let Err(e) = self.sync()
            {
                self.fail(&e);
            }
            if self
                .part
                .as_ref()
                .is_some_and(|p| p.packets > 0 && p.opened.elapsed() >= self.rotate_every)
                && let Err(e) = self.close_part()
            {
                self.fail(&e);
            }
        }
        if let Err(e) = self.close_part() {
            self.fail(&e);
        }
    }
}

/// Bytes and count of the whole records in `data` that fit in `room` bytes.
fn records_within(data: &[u8], room: u64) -> (usize, u64) {
    let mut off = 0usize;
    let mut n = 0u64;
    while off + REC_HDR <= data.len() {
        let caplen = u32_at(data, off + 8) as usize;
        let end = off + REC_HDR + caplen;
        if end as u64 > room || end > data.len() {
            break;
        }
        off = end;
        n += 1;
    }
    (off, n)
}

fn last_record_ts(data: &[u8]) -> Option<(i64, u32)> {
    let mut off = 0usize;
    let mut last = None;
    while off + REC_HDR <= data.len() {
        last = Some((i64::from(u32_at(data, off)), u32_at(data, off + 4)));
        off += REC_HDR + u32_at(data, off + 8) as usize;
    }
    last
}

fn u32_at(d: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&d[off..off + 4]);
    u32::from_le_bytes(b)
}

/// What [`scan_part`] found: packets, length of the whole records (header included),
/// and the last record's timestamp.
type PartScan = (u64, u64, Option<(i64, u32)>);

/// Scans a little-endian microsecond pcap file written by us. A torn tail (power cut)
/// is not counted.
fn scan_part(path: &Path) -> io::Result<PartScan> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut r = BufReader::new(f);
    let mut hdr = [0u8; 24];
    if r.read_exact(&mut hdr).is_err() || u32_at(&hdr, 0) != 0xa1b2_c3d4 {
        return Ok((0, 0, None));
    }
    let mut off = FILE_HDR;
    let mut n = 0u64;
    let mut last = None;
    let mut rec = [0u8; REC_HDR];
    while off + REC_HDR as u64 <= len {
        r.read_exact(&mut rec)?;
        let caplen = u64::from(u32_at(&rec, 8));
        if off + REC_HDR as u64 + caplen > len || caplen > 262_144 {
            break;
        }
        r.seek(SeekFrom::Current(i64::try_from(caplen).unwrap_or(0)))?;
        off += REC_HDR as u64 + caplen;
        n += 1;
        last = Some((i64::from(u32_at(&rec, 0)), u32_at(&rec, 4)));
    }
    Ok((n, off, last))
}

// ---------------------------------------------------------------------------
// The capture
// ---------------------------------------------------------------------------

/// Existing part files of the night: highest index and total bytes.
fn existing_parts(dir: &Path) -> (u32, u64, Vec<PathBuf>) {
    let mut max = 0u32;
    let mut bytes = 0u64;
    let mut paths = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name
                .strip_prefix("part-")
                .and_then(|s| s.strip_suffix(".pcap"))
                .and_then(|s| s.parse::<u32>().ok())
            {
                max = max.max(n);
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                paths.push(e.path());
            }
        }
    }
    paths.sort();
    (max, bytes, paths)
}

/// The night directory: `<state>/nights/<night>`.
#[must_use]
pub fn night_dir(state_dir: &Path, night: NaiveDate) -> PathBuf {
    state_dir
        .join("nights")
        .join(night.format("%Y-%m-%d").to_string())
}

/// Everything a capture checks before it starts, and the handle it opens: the filter
/// (libpcap's compiler), the interface's existence, the permission to capture. `None`:
/// the interface exists but is down (the capture waits for it).
fn open_initial(
    cfg: &Config,
    interface: &str,
    read_timeout_ms: u32,
) -> Result<(HandleSpec, Option<pcap::Capture<pcap::Active>>), CaptureError> {
    let c = &cfg.capture;
    let interface = if interface.is_empty() {
        "any".to_string()
    } else {
        interface.to_string()
    };
    validate_filter(&c.filter, &interface).map_err(|message| CaptureError::Filter {
        filter: c.filter.clone(),
        message,
    })?;
    if c.snaplen < 64 {
        return Err(CaptureError::Config {
            key: "capture.snaplen",
            reason: format!("{} is below 64", c.snaplen),
        });
    }
    let Some(up) = interface_up(&interface) else {
        return Err(CaptureError::NoSuchInterface {
            interface,
            available: interfaces().join(", "),
        });
    };
    let spec = HandleSpec {
        interface: interface.clone(),
        filter: c.filter.clone(),
        snaplen: c.snaplen,
        promiscuous: c.promiscuous,
        buffer_bytes: i32::try_from(u64::from(c.buffer_mb.max(1)) * MIB).unwrap_or(i32::MAX),
        read_timeout_ms: i32::try_from(read_timeout_ms.clamp(1, 1000)).unwrap_or(100),
    };
    let initial = match open_handle(&spec) {
        Ok(h) => Some(h),
        Err(OpenError::Permission(m)) => {
            return Err(CaptureError::Permission(permission_message(&interface, &m)));
        }
        Err(OpenError::Filter(message)) => {
            return Err(CaptureError::Filter {
                filter: c.filter.clone(),
                message,
            });
        }
        Err(OpenError::Other(m)) if !up || interface_up(&interface) == Some(false) => {
            tracing::warn!("interface {interface} is down ({m}); waiting for it to come up");
            None
        }
        Err(OpenError::Other(message)) => {
            return Err(CaptureError::Open { interface, message });
        }
    };
    Ok((spec, initial))
}

/// For `netdigest doctor`: can this process capture on the configured interface (or
/// `interface`) with the configured filter, right now? Opens the interface and closes it;
/// captures nothing. `Ok(false)`: the interface exists but is down.
///
/// # Errors
/// As [`run_capture`] before it starts: bad filter, no such interface, no permission
/// (naming `CAP_NET_RAW` and how to grant it), or another libpcap error.
pub fn check_capture(cfg: &Config, interface: Option<&str>) -> Result<bool, CaptureError> {
    let iface = interface.unwrap_or(&cfg.capture.interface);
    let (_, handle) = open_initial(cfg, iface, 100)?;
    Ok(handle.is_some())
}

/// Runs `netdigest capture`: the configured window (or `--for`/`--until`), until its
/// end or until `stop` is set (SIGTERM/SIGINT with [`StopFlag::on_signals`]).
/// Started outside the configured window: logs it and returns
/// [`CaptureOutcome::OutsideWindow`] without touching the disk.
///
/// # Errors
/// A bad option or filter, a missing interface, no permission to capture (the message
/// names `CAP_NET_RAW` and how to grant it), an unwritable state directory.
#[allow(clippy::too_many_lines)]
pub fn run_capture(
    cfg: &Config,
    opts: &CaptureOptions,
    stop: &StopFlag,
) -> Result<CaptureOutcome, CaptureError> {
    let c = &cfg.capture;
    let zone = c.zone();
    let now = Utc::now();
    let window = match resolve_window(cfg, opts, &zone, now)? {
        Ok(w) => w,
        Err(next_start) => {
            tracing::info!(
                "outside the capture window {}-{} (now {}; next start {}): nothing to capture",
                c.start,
                c.end,
                zone.to_local(now).format("%Y-%m-%d %H:%M %:z"),
                zone.to_local(next_start).format("%Y-%m-%d %H:%M %:z"),
            );
            return Ok(CaptureOutcome::OutsideWindow {
                now: zone.to_local(now),
                next_start: zone.to_local(next_start),
            });
        }
    };
    let interface = opts
        .interface
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| c.interface.clone());
    let (spec, initial) = open_initial(cfg, &interface, opts.read_timeout_ms)?;
    let interface = spec.interface.clone();

    // The night's directory; an earlier run of the same night is continued, not overwritten.
    let state_dir = opts
        .state_dir
        .clone()
        .unwrap_or_else(|| cfg.state.dir.clone());
    let ndir = night_dir(&state_dir, window.night);
    let cdir = ndir.join("capture");
    fs::create_dir_all(&cdir).map_err(io_err(&cdir))?;
    let json_path = ndir.join("capture.json");
    let started = Utc::now();
    let mut base = CaptureReport::default();
    if let Ok(text) = fs::read_to_string(&json_path) {
        match serde_json::from_str::<CaptureReport>(&text) {
            Ok(prev) => base = carry_over(prev, &zone, started),
            Err(e) => tracing::warn!(
                "{}: unreadable ({e}); its counters are not carried over",
                json_path.display()
            ),
        }
    }
    let (max_idx, prev_bytes, prev_paths) = existing_parts(&cdir);
    // A power cut can leave the last part with a torn record: cut it back.
    let mut prev_bytes = prev_bytes;
    if let Some(last) = prev_paths.last()
        && let Ok((n, good, last_ts)) = scan_part(last)
        && good >= FILE_HDR
    {
        let len = fs::metadata(last).map(|m| m.len()).unwrap_or(good);
        if good < len {
            tracing::warn!(
                "{}: cutting a torn last record ({} bytes) left by an interrupted run",
                last.display(),
                len - good
            );
            if let Ok(f) = OpenOptions::new().write(true).open(last) {
                let _ = f.set_len(good);
                let _ = f.sync_all();
            }
            prev_bytes -= len - good;
        }
        let name = last.file_name().map(|s| s.to_string_lossy().into_owned());
        if let Some(f) = base
            .files
            .iter_mut()
            .find(|f| Some(&f.name) == name.as_ref())
        {
            f.bytes = good;
            f.packets = n;
            f.complete = true;
            if let Some((s, u)) = last_ts {
                f.last = Some(rfc3339_utc_ts(s, u));
            }
        }
    }

    let static_report = CaptureReport {
        schema_version: CAPTURE_SCHEMA_VERSION,
        status: "running".into(),
        night: window.night.format("%Y-%m-%d").to_string(),
        interface: interface.clone(),
        filter: c.filter.clone(),
        snaplen: c.snaplen,
        promiscuous: c.promiscuous,
        buffer_mb: c.buffer_mb,
        window: WindowInfo {
            start: rfc3339_local(window.start, &zone),
            end: rfc3339_local(window.end, &zone),
            source: window.source.to_string(),
            timezone: zone.name(),
        },
        started: rfc3339_local(started, &zone),
        disk: DiskInfo {
            max_mb: c.max_disk_mb,
            rotate_mb: c.rotate_mb,
            ..DiskInfo::default()
        },
        ..base.clone()
    };

    // Threads and the bounded queue between them.
    let snaplen = usize::try_from(c.snaplen).unwrap_or(262_144);
    let max_record = REC_HDR + snaplen;
    let batch_bytes = (256 * 1024).max(4 * max_record);
    let queue_bytes = (u64::from(opts.queue_mb.max(1)) * MIB) as usize;
    let max_batches = (queue_bytes / batch_bytes).max(4);
    let (tx, rx) = mpsc::channel::<Msg>();
    let (free_tx, free_rx) = mpsc::channel::<Batch>();
    let reader_live = Arc::new(Mutex::new(ReaderLive::default()));
    let writer_live = Arc::new(Mutex::new(WriterLive {
        bytes: prev_bytes,
        ..WriterLive::default()
    }));
    let internal_stop = Arc::new(AtomicBool::new(false));
    let writer = Writer {
        dir: cdir.clone(),
        next_index: max_idx + 1,
        snaplen: c.snaplen,
        rotate_bytes: c.rotate_mb.max(1) * MIB,
        rotate_every: opts.rotate_every.max(Duration::from_secs(1)),
        flush_every: opts.flush_every.max(Duration::from_millis(100)),
        cap_bytes: c.max_disk_mb.saturating_mul(MIB),
        total_bytes: prev_bytes,
        part: None,
        link_type: None,
        halted: false,
        live: Arc::clone(&writer_live),
        last_sync: Instant::now(),
    };
    let reader = Reader {
        spec,
        stop: Arc::clone(&internal_stop),
        live: Arc::clone(&reader_live),
        q: Queue {
            tx,
            free: free_rx,
            allocated: 0,
            max_batches,
            batch_bytes,
            max_record,
            cur: None,
            read: 0,
            handle_read: 0,
            dropped_queue: 0,
            after_stop: 0,
            writer_gone: false,
        },
        closed: HandleStats::default(),
        cur: HandleStats::default(),
        gap_open: false,
    };
    let writer_thread = thread::Builder::new()
        .name("capture-writer".into())
        .spawn(move || writer.run(rx, free_tx))
        .map_err(io_err(&cdir))?;
    let reader_thread = thread::Builder::new()
        .name("capture-reader".into())
        .spawn(move || reader.run(initial))
        .map_err(io_err(&cdir))?;

    let mut samples = base.samples.clone();
    let snapshot =
        |status: &str, samples: &[Sample], ended: Option<DateTime<Utc>>, reason: Option<String>| {
            let r = lock(&reader_live).clone();
            let w = lock(&writer_live).clone();
            compose(
                &static_report,
                &base,
                &r,
                &w,
                &zone,
                status,
                samples,
                ended,
                reason,
            )
        };
    let write_json = |rep: &CaptureReport| -> Result<(), CaptureError> {
        let json = serde_json::to_vec_pretty(rep).map_err(|e| CaptureError::Io {
            path: json_path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomic(&json_path, &json).map_err(io_err(&json_path))
    };
    let first = snapshot("running", &samples, None, None);
    if let Err(e) = write_json(&first) {
        internal_stop.store(true, Ordering::SeqCst);
        let _ = reader_thread.join();
        let _ = writer_thread.join();
        return Err(e);
    }
    tracing::info!(
        "capture started on {interface} (filter {:?}, snaplen {}), night {}, until {}; writing {}",
        c.filter,
        c.snaplen,
        first.night,
        zone.to_local(window.end).format("%Y-%m-%d %H:%M:%S %:z"),
        cdir.display()
    );

    // Supervise: stop at the window's end or on a signal; sample periodically.
    let mut last_sample = Instant::now();
    let mut gap_events = 0u64;
    let reason = loop {
        if stop.is_stopped() {
            break stop.signal_name().unwrap_or("stopped").to_string();
        }
        let now = Utc::now();
        if now >= window.end {
            break match window.source {
                WindowSource::For => "duration".to_string(),
                _ => "window end".to_string(),
            };
        }
        if reader_thread.is_finished() || writer_thread.is_finished() {
            break "capture thread ended".to_string();
        }
        let events = lock(&reader_live).gap_events + lock(&writer_live).events;
        if events != gap_events {
            gap_events = events;
            if let Err(e) = write_json(&snapshot("running", &samples, None, None)) {
                tracing::warn!("{e}");
            }
        }
        if last_sample.elapsed() >= opts.stats_every {
            last_sample = Instant::now();
            let rep = snapshot("running", &samples, None, None);
            push_sample(&mut samples, rfc3339_local(Utc::now(), &zone), rep.stats);
            let rep = CaptureReport {
                samples: samples.clone(),
                ..rep
            };
            if let Err(e) = write_json(&rep) {
                tracing::warn!("{e}");
            }
        }
        let left = (window.end - now).to_std().unwrap_or_default();
        thread::sleep(left.min(Duration::from_millis(100)));
    };
    tracing::info!("stopping capture ({reason})");
    internal_stop.store(true, Ordering::SeqCst);
    let mut failed = Vec::new();
    if reader_thread.join().is_err() {
        failed.push("reader");
    }
    if writer_thread.join().is_err() {
        failed.push("writer");
    }
    let ended = Utc::now();
    let status = if failed.is_empty() {
        "complete"
    } else {
        "failed"
    };
    let rep = snapshot(status, &samples, Some(ended), Some(reason));
    push_sample(&mut samples, rfc3339_local(ended, &zone), rep.stats);
    let rep = CaptureReport { samples, ..rep };
    write_json(&rep)?;
    if !failed.is_empty() {
        return Err(CaptureError::Internal(format!(
            "the capture {} thread panicked (see the log); {} packets were written",
            failed.join(" and "),
            rep.stats.written
        )));
    }
    let s = &rep.stats;
    tracing::info!(
        "capture ended: {} packets written in {} file(s); libpcap received {}, dropped {} by the \
         kernel, {} by the interface; {} dropped by our queue, {} at the disk cap",
        s.written,
        rep.files.len(),
        s.received,
        s.dropped_kernel,
        s.dropped_interface,
        s.dropped_queue,
        s.dropped_disk
    );
    Ok(CaptureOutcome::Captured {
        night_dir: ndir,
        report: Box::new(rep),
    })
}

fn push_sample(samples: &mut Vec<Sample>, at: String, stats: CaptureStats) {
    samples.push(Sample { at, stats });
    if samples.len() > MAX_SAMPLES {
        // Thin out: keep every other sample (the last one always stays).
        let last = samples.pop();
        let mut i = 0;
        samples.retain(|_| {
            i += 1;
            i % 2 == 1
        });
        samples.extend(last);
    }
}

/// The earlier run's report becomes the base of this one: its totals, files and gaps
/// are kept, and the time it was not running becomes a gap.
fn carry_over(prev: CaptureReport, zone: &Zone, now: DateTime<Utc>) -> CaptureReport {
    let mut base = CaptureReport {
        stats: prev.stats,
        files: prev.files.clone(),
        gaps: prev.gaps.clone(),
        samples: prev.samples.clone(),
        previous_runs: prev.previous_runs.clone(),
        write_error: prev.write_error.clone(),
        ..CaptureReport::default()
    };
    // The previous run's own counters: the night totals minus the runs before it.
    let mut before = CaptureStats::default();
    for r in &prev.previous_runs {
        before.add(&r.stats);
    }
    let own = CaptureStats {
        received: prev.stats.received.saturating_sub(before.received),
        dropped_kernel: prev
            .stats
            .dropped_kernel
            .saturating_sub(before.dropped_kernel),
        dropped_interface: prev
            .stats
            .dropped_interface
            .saturating_sub(before.dropped_interface),
        read: prev.stats.read.saturating_sub(before.read),
        dropped_queue: prev
            .stats
            .dropped_queue
            .saturating_sub(before.dropped_queue),
        dropped_disk: prev.stats.dropped_disk.saturating_sub(before.dropped_disk),
        written: prev.stats.written.saturating_sub(before.written),
    };
    base.previous_runs.push(RunRecord {
        started: prev.started.clone(),
        ended: prev.ended.clone(),
        updated: prev.updated.clone(),
        stop_reason: prev.stop_reason.clone(),
        stats: own,
    });
    for f in &mut base.files {
        f.complete = true;
    }
    // Close a gap left open by a run that died during it.
    let last_seen = prev.ended.clone().unwrap_or_else(|| prev.updated.clone());
    for g in &mut base.gaps {
        if g.end.is_none() {
            g.end = Some(last_seen.clone());
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&last_seen) {
        let secs = (now - t.with_timezone(&Utc)).num_milliseconds() as f64 / 1000.0;
        base.gaps.push(Gap {
            start: last_seen.clone(),
            end: Some(rfc3339_local(now, zone)),
            seconds: Some(secs.max(0.0)),
            reason: if prev.status == "running" {
                "capture not running (the previous run was interrupted)".into()
            } else {
                "capture not running".into()
            },
        });
    }
    base
}

#[allow(clippy::too_many_arguments)]
fn compose(
    stat: &CaptureReport,
    base: &CaptureReport,
    r: &ReaderLive,
    w: &WriterLive,
    zone: &Zone,
    status: &str,
    samples: &[Sample],
    ended: Option<DateTime<Utc>>,
    reason: Option<String>,
) -> CaptureReport {
    let mut stats = base.stats;
    stats.add(&CaptureStats {
        received: r.received,
        dropped_kernel: r.dropped_kernel,
        dropped_interface: r.dropped_interface,
        read: r.read,
        dropped_queue: r.dropped_queue,
        dropped_disk: w.dropped_disk,
        written: w.written,
    });
    let mut gaps = base.gaps.clone();
    let end_of_run = ended.unwrap_or_else(Utc::now);
    gaps.extend(r.gaps.iter().map(|(s, e, why)| Gap {
        start: rfc3339_local(*s, zone),
        end: e.map(|e| rfc3339_local(e, zone)),
        seconds: Some(((e.unwrap_or(end_of_run) - *s).num_milliseconds() as f64 / 1000.0).max(0.0)),
        reason: why.clone(),
    }));
    let mut files = base.files.clone();
    files.extend(w.files.iter().cloned());
    CaptureReport {
        status: status.into(),
        link_type: r.link_type.or(base.link_type),
        link_type_name: r.link_type.map(|l| LinkType(l).name()),
        ended: ended.map(|t| rfc3339_local(t, zone)),
        updated: rfc3339_local(Utc::now(), zone),
        stop_reason: reason,
        stats,
        samples: samples.to_vec(),
        gaps,
        files,
        disk: DiskInfo {
            bytes: w.bytes,
            cap_reached_at: w.cap_reached_at.map(|t| rfc3339_local(t, zone)),
            ..stat.disk.clone()
        },
        write_error: w.write_error.clone().or_else(|| base.write_error.clone()),
        previous_runs: base.previous_runs.clone(),
        ..stat.clone()
    }
}

/// The appliance's own addresses on an interface (every interface for `any`), as libpcap
/// lists them. The pings chart leaves these out when `report.own_addresses` is not set.
#[must_use]
pub fn interface_addresses(name: &str) -> Vec<std::net::IpAddr> {
    let Ok(devices) = pcap::Device::list() else {
        return Vec::new();
    };
    let mut v: Vec<std::net::IpAddr> = devices
        .into_iter()
        .filter(|d| name == "any" || d.name == name)
        .flat_map(|d| d.addresses.into_iter().map(|a| a.addr))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn berlin() -> Zone {
        Zone::Named(chrono_tz::Europe::Berlin)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn window_late_start_belongs_to_last_night() {
        // 01:00 local on the 28th (UTC+1): inside 22:00-06:00 of the 27th.
        let p = plan_window(&berlin(), utc("2026-11-28T00:00:00Z"), 22 * 60, 6 * 60);
        let WindowPlan::Inside(w) = p else {
            panic!("{p:?}")
        };
        assert_eq!(w.night.to_string(), "2026-11-27");
        assert_eq!(w.start, utc("2026-11-27T21:00:00Z"));
        assert_eq!(w.end, utc("2026-11-28T05:00:00Z"));
    }

    #[test]
    fn window_outside_gives_next_start() {
        let p = plan_window(&berlin(), utc("2026-11-28T11:00:00Z"), 22 * 60, 6 * 60);
        assert_eq!(
            p,
            WindowPlan::Outside {
                next_start: utc("2026-11-28T21:00:00Z")
            }
        );
        // Exactly at the end: outside.
        let p = plan_window(&berlin(), utc("2026-11-28T05:00:00Z"), 22 * 60, 6 * 60);
        assert!(matches!(p, WindowPlan::Outside { .. }), "{p:?}");
    }

    #[test]
    fn window_across_dst_changes() {
        // Spring forward in Berlin: 2026-03-29 02:00 -> 03:00. The night of the 28th
        // is 22:00 CET to 06:00 CEST: 7 hours.
        let p = plan_window(&berlin(), utc("2026-03-29T00:30:00Z"), 22 * 60, 6 * 60);
        let WindowPlan::Inside(w) = p else {
            panic!("{p:?}")
        };
        assert_eq!(w.night.to_string(), "2026-03-28");
        assert_eq!(w.end - w.start, chrono::Duration::hours(7));
        // Fall back: 2026-10-25 03:00 -> 02:00. 9 hours.
        let p = plan_window(&berlin(), utc("2026-10-25T01:30:00Z"), 22 * 60, 6 * 60);
        let WindowPlan::Inside(w) = p else {
            panic!("{p:?}")
        };
        assert_eq!(w.night.to_string(), "2026-10-24");
        assert_eq!(w.end - w.start, chrono::Duration::hours(9));
        // A window starting at a skipped time (02:30 on the spring-forward day) starts at 03:00.
        let t = berlin().instant(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(), 150, true);
        assert_eq!(t, utc("2026-03-29T01:00:00Z"));
        // A repeated time (02:30 on the fall-back day): first occurrence for a start, second for an end.
        let d = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
        assert_eq!(berlin().instant(d, 150, true), utc("2026-10-25T00:30:00Z"));
        assert_eq!(berlin().instant(d, 150, false), utc("2026-10-25T01:30:00Z"));
    }

    #[test]
    fn daytime_window_and_until() {
        let p = plan_window(&berlin(), utc("2026-06-01T10:00:00Z"), 9 * 60, 17 * 60);
        let WindowPlan::Inside(w) = p else {
            panic!("{p:?}")
        };
        assert_eq!(w.night.to_string(), "2026-06-01");
        // --until 06:00 at 23:00 local: tomorrow 06:00; at 05:00: today 06:00.
        let z = berlin();
        assert_eq!(
            next_local_time(&z, utc("2026-06-01T21:00:00Z"), 360),
            utc("2026-06-02T04:00:00Z")
        );
        assert_eq!(
            next_local_time(&z, utc("2026-06-02T03:00:00Z"), 360),
            utc("2026-06-02T04:00:00Z")
        );
    }

    #[test]
    fn resolve_for_inside_window_keeps_the_night() {
        let mut cfg = Config::default();
        cfg.capture.timezone = Some("Europe/Berlin".parse().unwrap());
        let opts = CaptureOptions {
            duration: Some(Duration::from_secs(600)),
            ..CaptureOptions::default()
        };
        let now = utc("2026-11-28T00:00:00Z");
        let w = resolve_window(&cfg, &opts, &berlin(), now)
            .unwrap()
            .unwrap();
        assert_eq!(w.night.to_string(), "2026-11-27");
        assert_eq!(w.end - w.start, chrono::Duration::minutes(10));
        assert_eq!(w.source, WindowSource::For);
        let both = CaptureOptions {
            until: Some("06:00".parse().unwrap()),
            ..opts
        };
        assert!(resolve_window(&cfg, &both, &berlin(), now).is_err());
    }

    #[test]
    fn filters_are_checked_by_libpcap() {
        validate_filter("icmp or udp port 53", "eth0").unwrap();
        validate_filter("", "any").unwrap();
        let e = validate_filter("icmpp and", "eth0").unwrap_err();
        assert!(e.contains("syntax error"), "{e}");
    }

    #[test]
    fn stats_survive_u32_wrap() {
        let mut h = HandleStats::default();
        let st = |r: u32, d: u32| pcap::Stat {
            received: r,
            dropped: d,
            if_dropped: 0,
        };
        h.update(st(u32::MAX - 5, 1));
        h.update(st(10, 2));
        assert_eq!(h.received, u64::from(u32::MAX) + 11);
        assert_eq!(h.dropped, 2);
    }

    fn test_writer(dir: &Path, rotate_mb: u64, cap_bytes: u64) -> Writer {
        Writer {
            dir: dir.to_path_buf(),
            next_index: 1,
            snaplen: 192,
            rotate_bytes: rotate_mb * MIB,
            rotate_every: Duration::from_secs(3600),
            flush_every: Duration::from_secs(2),
            cap_bytes,
            total_bytes: 0,
            part: None,
            link_type: None,
            halted: false,
            live: Arc::new(Mutex::new(WriterLive::default())),
            last_sync: Instant::now(),
        }
    }

    fn batch(n: usize, size: usize) -> Batch {
        let mut b = Batch::with_capacity(n * (size + 16));
        for i in 0..n {
            b.push(1_800_000_000 + i as i64, 5, size as u32, &vec![0xab; size]);
        }
        b
    }

    #[test]
    fn writer_rotates_and_caps() {
        let dir = std::env::temp_dir().join(format!("nd-capw-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // 1 MiB parts; cap at 2.5 MiB; batches of 100 records of 1016 bytes (~99 KiB).
        let mut w = test_writer(&dir, 1, 5 * MIB / 2);
        w.on_link_type(1);
        for _ in 0..40 {
            w.write_batch(&batch(100, 1000));
        }
        w.close_part().unwrap();
        let live = lock(&w.live).clone();
        assert!(live.cap_reached_at.is_some());
        assert_eq!(live.written + live.dropped_disk, 4000);
        assert!(live.files.len() >= 3, "{:?}", live.files);
        let mut total = 0;
        for f in &live.files {
            let (n, good, _) = scan_part(&dir.join(&f.name)).unwrap();
            assert_eq!(n, f.packets, "{f:?}");
            assert_eq!(good, fs::metadata(dir.join(&f.name)).unwrap().len());
            assert!(good <= MIB + 100 * 1016, "{f:?}");
            total += good;
        }
        assert!(total <= 5 * MIB / 2, "{total}");
        assert_eq!(
            live.written,
            live.files.iter().map(|f| f.packets).sum::<u64>()
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_record_is_found() {
        let dir = std::env::temp_dir().join(format!("nd-capt-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut w = test_writer(&dir, 64, u64::MAX);
        w.on_link_type(1);
        w.write_batch(&batch(10, 100));
        w.close_part().unwrap();
        let path = dir.join("part-0001.pcap");
        let whole = fs::metadata(&path).unwrap().len();
        assert_eq!(whole, 24 + 10 * 116);
        // A power cut in the middle of the 11th record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 200, 0, 0, 0, 7])
            .unwrap();
        drop(f);
        let (n, good, last) = scan_part(&path).unwrap();
        assert_eq!((n, good), (10, whole));
        assert_eq!(last, Some((1_800_000_009, 5)));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn carry_over_adds_restart_gap_and_keeps_totals() {
        let prev = CaptureReport {
            status: "running".into(),
            started: "2026-11-27T22:00:00.000+01:00".into(),
            updated: "2026-11-28T00:30:00.000+01:00".into(),
            stats: CaptureStats {
                received: 100,
                written: 90,
                ..CaptureStats::default()
            },
            files: vec![FileInfo {
                name: "part-0001.pcap".into(),
                ..FileInfo::default()
            }],
            ..CaptureReport::default()
        };
        let b = carry_over(prev, &berlin(), utc("2026-11-28T00:00:00Z"));
        assert_eq!(b.stats.received, 100);
        assert_eq!(b.previous_runs.len(), 1);
        assert_eq!(b.previous_runs[0].stats.written, 90);
        assert_eq!(b.gaps.len(), 1);
        assert_eq!(b.gaps[0].seconds, Some(1800.0));
    }
}

//! Live capture for the night's window (`netdigest capture`): libpcap on a real
//! interface, run by an unprivileged user holding only `CAP_NET_RAW`, rotating
//! files, honest about drops.
//!
//! Files of one night (`<night>` is the local date the window started; the paths are
//! `crate::layout`'s):
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
//! night's disk cap or below the disk floor (less than `capture.min_free_mb` free on
//! the state directory's filesystem: room for nightly, mail and the system). Batches
//! come from a fixed pool, so the queue between the threads is bounded: when the
//! writer falls behind (a slow SD card) and the pool is empty, packets are dropped and
//! counted (`stats.dropped_queue`) instead of the kernel's ring overflowing.
//!
//! `capture.json` is rewritten atomically when the capture starts (readiness: the
//! handle is open and filtering), every `stats_every`, and at the end. Its
//! top-level `interface`, `own_addresses` (the appliance's addresses on the capture
//! interface, every interface for `any`, listed when the capture starts: the analysis
//! reads no live system state) and `stats.{received, dropped_kernel, dropped_interface}`
//! are what the later stages read. At a clean stop (window end, `--for` elapsed,
//! SIGTERM/SIGINT) every packet libpcap counted as received and not dropped is in
//! the files: `written + dropped_queue + dropped_disk == received - dropped_kernel`
//! (packets the kernel places after the final statistics are not part of the capture).
//!
//! When the interface goes down or disappears the reader records a gap, waits
//! with backoff and reopens it when it is back; the capture does not exit.
//!
//! Modules: `window` (the DST-safe window and its time zone), `iface` (filter
//! validation, interfaces, capabilities, the appliance's addresses), `queue` (the
//! bounded pool of ready-made pcap records between the threads), `reader` (the libpcap
//! handle and the reader thread), `writer` (part files, rotation, the disk cap),
//! `stats` (`capture.json`: its types and how a report is composed), `run` (the
//! capture from start to stop).

mod iface;
mod queue;
mod reader;
mod run;
mod stats;
#[cfg(test)]
mod tests;
mod window;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, FixedOffset};

use crate::config::TimeOfDay;

pub use iface::{interfaces, permission_message, validate_filter};
pub use run::{check_capture, run_capture};
pub use stats::{
    CAPTURE_SCHEMA_VERSION, CaptureReport, CaptureStats, CaptureStatus, DiskInfo, FileInfo, Gap,
    LowDisk, RunRecord, Sample, WindowInfo,
};
pub use window::{Window, WindowPlan, WindowSource, next_local_time, plan_window, resolve_window};

const MIB: u64 = 1024 * 1024;
/// Length of a pcap record header.
const REC_HDR: usize = pcapfmt::RECORD_HEADER_LEN;
/// Length of the pcap file header.
const FILE_HDR: u64 = pcapfmt::FILE_HEADER_LEN as u64;

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
    /// A bad option or config value (a usage error: `crate::exit` maps it to exit code 2).
    #[error("invalid {key}: {reason}")]
    Config { key: &'static str, reason: String },
    /// libpcap refused the BPF filter (a usage error, exit code 2).
    #[error("invalid config: capture.filter {filter:?}: {message} (libpcap)")]
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
    /// Another `netdigest capture` is capturing this night (it holds `capture.lock`).
    #[error(
        "night {night} is being captured by another netdigest process{pid}: not starting a second capture of it ({path} is locked)"
    )]
    Busy {
        night: String,
        pid: String,
        path: String,
    },
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

/// A lock that survives a panicked holder (the counters stay usable for `capture.json`).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

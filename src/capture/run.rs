//! The capture from start to stop (`netdigest capture`): resolve the window, check and
//! open the interface, continue the night's earlier runs, run the reader and writer
//! threads, keep `capture.json` up to date, and stop them at the window's end or on a
//! signal.
//!
//! Invariants: nothing is written outside the window (a start outside it touches no
//! disk); `capture.json` is written once the handle is open and filtering (readiness),
//! and last after both threads have ended, with the final counters.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::iface::{interface_addresses, interface_up, interfaces, permission_message};
use super::queue::{Batch, Msg, Queue};
use super::reader::{HandleSpec, OpenError, Reader, ReaderLive, open_handle};
use super::stats::{
    CAPTURE_SCHEMA_VERSION, CaptureReport, CaptureStatus, DiskInfo, LiveReport, WindowInfo,
    carry_over,
};
use super::window::{Window, WindowSource, resolve_window, rfc3339_local};
use super::writer::{EarlierParts, Limits, Writer, earlier_parts};
use super::{CaptureError, CaptureOptions, CaptureOutcome, MIB, StopFlag, io_err, validate_filter};
use crate::config::{Config, Zone};
use crate::fsutil::set_aside_warn;
use crate::layout::{self, NightDir};
use crate::lock::FileLock;

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
    validate_filter(&c.filter, &interface)?;
    if let Some(reason) = crate::config::snaplen_problem(c.snaplen) {
        return Err(CaptureError::Config {
            key: "capture.snaplen",
            reason,
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
        Err(next_start) => return Ok(outside_window(cfg, &zone, now, next_start)),
    };
    let interface = opts
        .interface
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| c.interface.clone());
    let (spec, initial) = open_initial(cfg, &interface, opts.read_timeout_ms)?;
    let state_dir = opts
        .state_dir
        .clone()
        .unwrap_or_else(|| cfg.state.dir.clone());
    let started = Utc::now();
    let night = NightFiles::open(&state_dir, &window, &zone, started)?;
    let fixed = fixed_report(cfg, &spec.interface, &window, &zone, started, &night.base);
    let (mut live, threads) = start(cfg, opts, spec, initial, &night, fixed, zone)?;
    tracing::info!(
        "capture started on {} (filter {:?}, snaplen {}), night {}, until {}; writing {}",
        live.fixed.interface,
        c.filter,
        c.snaplen,
        live.fixed.night,
        zone.to_local(window.end).format("%Y-%m-%d %H:%M:%S %:z"),
        night.capture_dir.display()
    );
    let reason = supervise(&mut live, &threads, &window, stop, opts.stats_every);
    tracing::info!("stopping capture ({reason})");
    let failed = threads.join();
    let ended = Utc::now();
    let status = if failed.is_empty() {
        CaptureStatus::Complete
    } else {
        CaptureStatus::Failed
    };
    let rep = live.sampled(status, ended, Some(ended), Some(reason));
    live.write(&rep)?;
    if !failed.is_empty() {
        return Err(CaptureError::Internal(format!(
            "the capture {} thread panicked (see the log); {} packets were written",
            failed.join(" and "),
            rep.stats.written
        )));
    }
    log_end(&rep);
    Ok(CaptureOutcome::Captured {
        night_dir: night.dir.path().to_path_buf(),
        report: Box::new(rep),
    })
}

/// Logs that `now` is outside the configured window, and says so.
fn outside_window(
    cfg: &Config,
    zone: &Zone,
    now: DateTime<Utc>,
    next_start: DateTime<Utc>,
) -> CaptureOutcome {
    tracing::info!(
        "outside the capture window {}-{} (now {}; next start {}): nothing to capture",
        cfg.capture.start,
        cfg.capture.end,
        zone.to_local(now).format("%Y-%m-%d %H:%M %:z"),
        zone.to_local(next_start).format("%Y-%m-%d %H:%M %:z"),
    );
    CaptureOutcome::OutsideWindow {
        now: zone.to_local(now),
        next_start: zone.to_local(next_start),
    }
}

/// The night's files as this run finds them; an earlier run of the same night is
/// continued, not overwritten.
struct NightFiles {
    dir: NightDir,
    /// Its `capture/`, created.
    capture_dir: PathBuf,
    /// The earlier runs' report carried over (empty for the night's first run).
    base: CaptureReport,
    earlier: EarlierParts,
    /// `capture.lock`, held for the whole run: one capture per night.
    _lock: FileLock,
}

impl NightFiles {
    fn open(
        state_dir: &Path,
        window: &Window,
        zone: &Zone,
        started: DateTime<Utc>,
    ) -> Result<Self, CaptureError> {
        let dir = NightDir::of(state_dir, window.night);
        let capture_dir = dir.capture_dir();
        fs::create_dir_all(&capture_dir).map_err(io_err(&capture_dir))?;
        // Before anything of the night is read or written: a second capture of the
        // night would truncate the first one's parts.
        let lock_path = dir.capture_lock();
        let lock = match FileLock::acquire(&lock_path, Duration::from_secs(1)) {
            Ok(Ok(l)) => l,
            Ok(Err(busy)) => {
                return Err(CaptureError::Busy {
                    night: layout::night_name(window.night),
                    pid: busy.pid_note(),
                    path: lock_path.display().to_string(),
                });
            }
            Err(e) => return Err(io_err(&lock_path)(e)),
        };
        let json_path = dir.capture_json();
        let mut base = CaptureReport::default();
        if let Ok(bytes) = fs::read(&json_path) {
            match serde_json::from_slice::<CaptureReport>(&bytes) {
                Ok(prev) => base = carry_over(prev, zone, started),
                Err(e) => set_aside_warn(
                    &json_path,
                    &format!("unreadable ({e})"),
                    "its counters are not carried over",
                ),
            }
        }
        let earlier = earlier_parts(&capture_dir, &mut base.files);
        Ok(NightFiles {
            dir,
            capture_dir,
            base,
            earlier,
            _lock: lock,
        })
    }
}

/// The parts of this run's `capture.json` fixed at its start: the settings, the window,
/// and the appliance's own addresses (the capture interface's now, and the earlier runs').
fn fixed_report(
    cfg: &Config,
    interface: &str,
    window: &Window,
    zone: &Zone,
    started: DateTime<Utc>,
    base: &CaptureReport,
) -> CaptureReport {
    let c = &cfg.capture;
    let mut own_addresses = base.own_addresses.clone();
    own_addresses.extend(interface_addresses(interface));
    own_addresses.sort();
    own_addresses.dedup();
    CaptureReport {
        schema_version: CAPTURE_SCHEMA_VERSION,
        status: CaptureStatus::Running,
        night: layout::night_name(window.night),
        interface: interface.to_string(),
        own_addresses,
        filter: c.filter.clone(),
        snaplen: c.snaplen,
        promiscuous: c.promiscuous,
        buffer_mb: c.buffer_mb,
        window: WindowInfo {
            start: rfc3339_local(window.start, zone),
            end: rfc3339_local(window.end, zone),
            source: window.source.to_string(),
            timezone: zone.name(),
        },
        started: rfc3339_local(started, zone),
        disk: DiskInfo {
            max_mb: c.max_disk_mb,
            rotate_mb: c.rotate_mb,
            min_free_mb: c.min_free_mb,
            ..DiskInfo::default()
        },
        ..base.clone()
    }
}

/// Starts the reader and writer threads with the bounded queue between them, and writes
/// the first `capture.json` (the capture is ready). A failed write stops the threads.
fn start(
    cfg: &Config,
    opts: &CaptureOptions,
    spec: HandleSpec,
    initial: Option<pcap::Capture<pcap::Active>>,
    night: &NightFiles,
    fixed: CaptureReport,
    zone: Zone,
) -> Result<(LiveReport, Threads), CaptureError> {
    let (q, rx, free_tx) = Queue::new(cfg.capture.snaplen, opts.queue_mb);
    let writer = Writer::new(
        night.capture_dir.clone(),
        Limits::new(&cfg.capture, opts),
        night.earlier,
    );
    let reader_live = Arc::new(Mutex::new(ReaderLive::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = Reader::new(spec, Arc::clone(&stop), Arc::clone(&reader_live), q);
    let live = LiveReport::new(
        night.dir.capture_json(),
        zone,
        fixed,
        night.base.clone(),
        reader_live,
        Arc::clone(&writer.live),
    );
    let threads = Threads::spawn(
        &night.capture_dir,
        stop,
        (reader, initial),
        (writer, rx, free_tx),
    )?;
    if let Err(e) = live.write(&live.compose(CaptureStatus::Running, None, None)) {
        threads.join();
        return Err(e);
    }
    Ok((live, threads))
}

/// Waits for the end of the capture (the window's end, a signal, or a thread that ended)
/// and says why; meanwhile rewrites `capture.json` when a gap starts or ends and samples
/// the counters every `stats_every`.
fn supervise(
    live: &mut LiveReport,
    threads: &Threads,
    window: &Window,
    stop: &StopFlag,
    stats_every: Duration,
) -> String {
    let mut last_sample = Instant::now();
    let mut events_seen = 0u64;
    loop {
        if stop.is_stopped() {
            return stop.signal_name().unwrap_or("stopped").to_string();
        }
        let now = Utc::now();
        if now >= window.end {
            return match window.source {
                WindowSource::For => "duration".to_string(),
                _ => "window end".to_string(),
            };
        }
        if threads.any_finished() {
            return "capture thread ended".to_string();
        }
        let events = live.events();
        if events != events_seen {
            events_seen = events;
            if let Err(e) = live.write(&live.compose(CaptureStatus::Running, None, None)) {
                tracing::warn!("{e}");
            }
        }
        if last_sample.elapsed() >= stats_every {
            last_sample = Instant::now();
            let rep = live.sampled(CaptureStatus::Running, Utc::now(), None, None);
            if let Err(e) = live.write(&rep) {
                tracing::warn!("{e}");
            }
        }
        let left = (window.end - now).to_std().unwrap_or_default();
        thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// The reader and writer threads and the flag that stops them.
struct Threads {
    stop: Arc<AtomicBool>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Threads {
    fn spawn(
        dir: &Path,
        stop: Arc<AtomicBool>,
        (reader, initial): (Reader, Option<pcap::Capture<pcap::Active>>),
        (writer, rx, free): (Writer, mpsc::Receiver<Msg>, mpsc::Sender<Batch>),
    ) -> Result<Self, CaptureError> {
        let writer = thread::Builder::new()
            .name("capture-writer".into())
            .spawn(move || writer.run(rx, free))
            .map_err(io_err(dir))?;
        let reader = thread::Builder::new()
            .name("capture-reader".into())
            .spawn(move || reader.run(initial))
            .map_err(io_err(dir))?;
        Ok(Threads {
            stop,
            reader,
            writer,
        })
    }

    fn any_finished(&self) -> bool {
        self.reader.is_finished() || self.writer.is_finished()
    }

    /// Stops both threads and waits for them; the names of those that panicked.
    fn join(self) -> Vec<&'static str> {
        self.stop.store(true, Ordering::SeqCst);
        let mut failed = Vec::new();
        if self.reader.join().is_err() {
            failed.push("reader");
        }
        if self.writer.join().is_err() {
            failed.push("writer");
        }
        failed
    }
}

fn log_end(rep: &CaptureReport) {
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
}

//! The reader thread: it owns the libpcap handle, copies each packet into a batch of
//! ready-made pcap records for the writer, samples libpcap's statistics, and records a
//! gap when the interface goes down or disappears, reopening it when it is back.
//!
//! Invariant (the packet-count identity's reader side): when a handle closes, exactly
//! the packets libpcap counted as received and not dropped on it are read, and none
//! more ([`Reader::finish`]); libpcap's u32 counters are widened across wraps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::iface::{LinkState, interface_up, is_permission_error, link_state, pcap_msg};
use super::lock;
use super::queue::{Msg, Queue};
use super::stats::CaptureStats;

/// Pause of the reader when libpcap has nothing ready (non-blocking reads): it doubles
/// from 1 ms up to [`MAX_IDLE_SLEEP`] while the link is quiet. At 150 000 packets/s of
/// 192-byte snaps, 20 ms fill under 1 MiB of the kernel ring.
const IDLE_SLEEP: Duration = Duration::from_millis(1);
const MAX_IDLE_SLEEP: Duration = Duration::from_millis(20);

/// How to open the libpcap handle (kept to reopen it after the interface comes back).
#[derive(Debug, Clone)]
pub(super) struct HandleSpec {
    pub(super) interface: String,
    pub(super) filter: String,
    pub(super) snaplen: u32,
    pub(super) promiscuous: bool,
    pub(super) buffer_bytes: i32,
    pub(super) read_timeout_ms: i32,
}

/// Why opening failed.
pub(super) enum OpenError {
    Permission(String),
    Filter(String),
    Other(String),
}

pub(super) fn open_handle(spec: &HandleSpec) -> Result<pcap::Capture<pcap::Active>, OpenError> {
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

/// Totals of one libpcap handle, widened from its u32 counters (which wrap).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct HandleStats {
    last: Option<pcap::Stat>,
    pub(super) received: u64,
    pub(super) dropped: u64,
    if_dropped: u64,
}

impl HandleStats {
    pub(super) fn update(&mut self, s: pcap::Stat) {
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
pub(super) struct ReaderLive {
    /// The reader's counters, `received` to `dropped_queue` (the writer counts the rest).
    pub(super) counts: CaptureStats,
    pub(super) link_type: Option<u32>,
    pub(super) gaps: Vec<(DateTime<Utc>, Option<DateTime<Utc>>, String)>,
    /// Bumped when a gap starts or ends, so `capture.json` is rewritten at once.
    pub(super) gap_events: u64,
}

/// The reader thread's state.
pub(super) struct Reader {
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
    pub(super) fn new(
        spec: HandleSpec,
        stop: Arc<AtomicBool>,
        live: Arc<Mutex<ReaderLive>>,
        q: Queue,
    ) -> Self {
        Reader {
            spec,
            stop,
            live,
            q,
            closed: HandleStats::default(),
            cur: HandleStats::default(),
            gap_open: false,
        }
    }

    fn publish(&self) {
        lock(&self.live).counts = CaptureStats {
            received: self.closed.received + self.cur.received,
            dropped_kernel: self.closed.dropped + self.cur.dropped,
            dropped_interface: self.closed.if_dropped + self.cur.if_dropped,
            read: self.q.read,
            dropped_queue: self.q.dropped_queue,
            ..CaptureStats::default()
        };
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

    /// Reads until the capture is stopped: packets into the queue, libpcap's statistics
    /// every second, the link state every 250 ms; a handle that fails is closed (a gap)
    /// and reopened when the interface is back.
    pub(super) fn run(mut self, initial: Option<pcap::Capture<pcap::Active>>) {
        let mut handle = initial;
        match &handle {
            Some(cap) => self.opened(cap),
            None => self.gap_start(format!("interface {} is down", self.spec.interface)),
        }
        let mut retry = Retry::new();
        let mut last_link_check = Instant::now();
        let mut last_sample = Instant::now();
        let batch_age = Duration::from_millis(250);
        let mut idle = IDLE_SLEEP;
        while !self.stop.load(Ordering::SeqCst) {
            let Some(cap) = handle.as_mut() else {
                handle = self.try_reopen(&mut retry);
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
                retry = Retry::new();
                continue;
            }
            if last_sample.elapsed() >= Duration::from_secs(1) {
                self.sample(cap);
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

    /// Without a handle: tries to reopen the interface when the backoff allows, else
    /// waits a little. `Some`: capturing again.
    fn try_reopen(&mut self, retry: &mut Retry) -> Option<pcap::Capture<pcap::Active>> {
        self.q.send();
        if Instant::now() >= retry.next_try {
            match interface_up(&self.spec.interface) {
                Some(true) => match open_handle(&self.spec) {
                    Ok(cap) => {
                        tracing::info!("capture on {} resumed", self.spec.interface);
                        self.opened(&cap);
                        self.check_link();
                        return Some(cap);
                    }
                    Err(OpenError::Permission(m) | OpenError::Filter(m) | OpenError::Other(m)) => {
                        if retry.log_due() {
                            tracing::warn!("cannot reopen {} yet: {m}", self.spec.interface);
                        }
                    }
                },
                state => {
                    if retry.log_due() {
                        tracing::warn!(
                            "waiting for interface {} ({})",
                            self.spec.interface,
                            if state.is_none() { "absent" } else { "down" }
                        );
                    }
                }
            }
            retry.backoff = (retry.backoff * 2).min(Duration::from_secs(10));
            retry.next_try = Instant::now() + retry.backoff;
        }
        thread::sleep(Duration::from_millis(50));
        None
    }
}

/// When the reader tries again to open an interface that went away (backoff from 250 ms
/// to 10 s), and when it last logged that it is waiting (at most once a minute).
struct Retry {
    backoff: Duration,
    next_try: Instant,
    last_log: Instant,
}

impl Retry {
    fn new() -> Self {
        let backoff = Duration::from_millis(250);
        Retry {
            backoff,
            next_try: Instant::now() + backoff,
            last_log: Instant::now(),
        }
    }

    /// Whether a minute has passed since the last "waiting" log (then it is due now).
    fn log_due(&mut self) -> bool {
        let due = self.last_log.elapsed() >= Duration::from_secs(60);
        if due {
            self.last_log = Instant::now();
        }
        due
    }
}

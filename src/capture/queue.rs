//! The bounded queue between the reader and the writer thread: packets travel as
//! batches of ready-made pcap records (16-byte header + data, little-endian,
//! microsecond timestamps), and batches come from a fixed pool.
//!
//! Invariant: at most `max_batches` batches exist. When the writer falls behind (a slow
//! SD card) and the pool is empty, packets are dropped and counted (`dropped_queue`)
//! instead of the kernel's ring overflowing; every packet read is either in a batch
//! sent to the writer or counted as dropped.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{MIB, REC_HDR};

/// Packets as pcap records (16-byte header + data), in arrival order.
#[derive(Debug)]
pub(super) struct Batch {
    pub(super) data: Vec<u8>,
    pub(super) packets: u64,
    pub(super) first_ts: Option<(i64, u32)>,
    pub(super) last_ts: Option<(i64, u32)>,
    started: Instant,
}

impl Batch {
    pub(super) fn with_capacity(n: usize) -> Self {
        Batch {
            data: Vec::with_capacity(n),
            packets: 0,
            first_ts: None,
            last_ts: None,
            started: Instant::now(),
        }
    }

    pub(super) fn clear(&mut self) {
        self.data.clear();
        self.packets = 0;
        self.first_ts = None;
        self.last_ts = None;
        self.started = Instant::now();
    }

    pub(super) fn push(&mut self, sec: i64, usec: u32, wire_len: u32, data: &[u8]) {
        if self.packets == 0 {
            self.started = Instant::now();
            self.first_ts = Some((sec, usec));
        }
        self.last_ts = Some((sec, usec));
        let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        // pcap stores seconds as u32 (good until 2106).
        let secs = u32::try_from(sec).unwrap_or(0);
        self.data.extend_from_slice(&pcapfmt::record_header(
            secs,
            usec,
            caplen,
            wire_len.max(caplen),
        ));
        self.data.extend_from_slice(data);
        self.packets += 1;
    }
}

/// Messages from the reader to the writer.
#[derive(Debug)]
pub(super) enum Msg {
    /// A handle was opened with this LINKTYPE (the first packets follow).
    Opened(u32),
    Batch(Batch),
}

/// Reader-side end of the queue.
pub(super) struct Queue {
    pub(super) tx: mpsc::Sender<Msg>,
    free: mpsc::Receiver<Batch>,
    allocated: usize,
    max_batches: usize,
    batch_bytes: usize,
    max_record: usize,
    cur: Option<Batch>,
    /// Packets accepted from libpcap, all handles (at a stop, up to the final count).
    pub(super) read: u64,
    /// Same, for the current handle.
    pub(super) handle_read: u64,
    pub(super) dropped_queue: u64,
    after_stop: u64,
    pub(super) writer_gone: bool,
}

impl Queue {
    /// The queue for records of at most `snaplen` bytes in `queue_mb` MiB of batches.
    /// Returns it with the writer's ends: batches to write, and the pool they go back to.
    pub(super) fn new(
        snaplen: u32,
        queue_mb: u32,
    ) -> (Queue, mpsc::Receiver<Msg>, mpsc::Sender<Batch>) {
        let snaplen = usize::try_from(snaplen).unwrap_or(262_144);
        let max_record = REC_HDR + snaplen;
        let batch_bytes = (256 * 1024).max(4 * max_record);
        let queue_bytes = (u64::from(queue_mb.max(1)) * MIB) as usize;
        let (tx, rx) = mpsc::channel::<Msg>();
        let (free_tx, free_rx) = mpsc::channel::<Batch>();
        let q = Queue {
            tx,
            free: free_rx,
            allocated: 0,
            max_batches: (queue_bytes / batch_bytes).max(4),
            batch_bytes,
            max_record,
            cur: None,
            read: 0,
            handle_read: 0,
            dropped_queue: 0,
            after_stop: 0,
            writer_gone: false,
        };
        (q, rx, free_tx)
    }

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
    pub(super) fn push(&mut self, h: &pcap::PacketHeader, data: &[u8], limit: Option<u64>) {
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

    pub(super) fn send(&mut self) {
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
    pub(super) fn send_if_old(&mut self, age: Duration) {
        if self
            .cur
            .as_ref()
            .is_some_and(|b| b.packets > 0 && b.started.elapsed() >= age)
        {
            self.send();
        }
    }
}

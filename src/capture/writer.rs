//! The writer thread: appends the reader's batches to the current part file
//! (`capture/part-0001.pcap`, ...), rotates it by size and age, flushes and
//! `fdatasync`s it every few seconds (a power cut loses at most those seconds), and
//! stops writing at the night's disk cap or when the filesystem's free space falls
//! below `capture.min_free_mb` (the disk floor); plus scanning and repairing the parts
//! an earlier run of the night left.
//!
//! Invariants (the packet-count identity's writer side): every packet of a batch is
//! either written whole or counted in `dropped_disk`; a part file always ends on a whole
//! record (a failed write is cut back to the last one, a torn tail left by a power cut is
//! cut at the next start); the night's part files never exceed `capture.max_disk_mb`;
//! below the disk floor nothing more is written than [`FLOOR_CHECK_BYTES`] (or a second
//! of packets) past the last check, and a part file's header.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use super::queue::{Batch, Msg};
use super::stats::FileInfo;
use super::{CaptureOptions, FILE_HDR, MIB, REC_HDR, lock};
use crate::config::CaptureConfig;
use crate::layout;

/// What the writer publishes for `capture.json`.
#[derive(Debug, Default, Clone)]
pub(super) struct WriterLive {
    pub(super) files: Vec<FileInfo>,
    pub(super) written: u64,
    pub(super) dropped_disk: u64,
    pub(super) bytes: u64,
    pub(super) cap_reached_at: Option<DateTime<Utc>>,
    /// When writing stopped at the disk floor, and the free MiB then.
    pub(super) low_disk: Option<(DateTime<Utc>, u64)>,
    pub(super) write_error: Option<String>,
    /// Bumped when the cap or the floor is reached or writing fails, so `capture.json` is
    /// rewritten at once.
    pub(super) events: u64,
}

/// The pcap file header (microsecond timestamps, little-endian).
fn pcap_file_header(snaplen: u32, link_type: u32) -> [u8; 24] {
    pcapfmt::file_header(false, snaplen, crate::linktype::LinkType(link_type))
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

/// The writer thread's state.
pub(super) struct Writer {
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
    /// Nothing more is written (cap or floor reached, or a write failed).
    halted: bool,
    pub(super) live: Arc<Mutex<WriterLive>>,
    last_sync: Instant,
    /// The disk floor and when it was last checked.
    floor: Floor,
}

/// The disk floor: writing stops when the filesystem of the capture files has less than
/// `min_free` bytes available. Checked before each new part, and while writing every
/// second or every [`FLOOR_CHECK_BYTES`], whichever comes first.
struct Floor {
    min_free: u64,
    checked: Instant,
    written_since: u64,
}

/// Most bytes written between two checks of the disk floor.
pub(super) const FLOOR_CHECK_BYTES: u64 = 4 * MIB;
/// Longest time between two checks of the disk floor while writing.
const FLOOR_CHECK_EVERY: Duration = Duration::from_secs(1);

/// How the writer cuts and caps the part files.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) snaplen: u32,
    /// Start a new part after this many bytes...
    pub(super) rotate_bytes: u64,
    /// ... or after this long.
    pub(super) rotate_every: Duration,
    /// Flush and fdatasync the open part at least this often.
    pub(super) flush_every: Duration,
    /// The night's disk cap: bytes of all its part files, earlier runs included.
    pub(super) cap_bytes: u64,
    /// The disk floor: stop writing below this many bytes free (0: never).
    pub(super) min_free_bytes: u64,
}

impl Limits {
    /// From `capture.{snaplen, rotate_mb, max_disk_mb}` and the capture's tuning knobs.
    pub(super) fn new(c: &CaptureConfig, opts: &CaptureOptions) -> Limits {
        Limits {
            snaplen: c.snaplen,
            rotate_bytes: c.rotate_mb.max(1) * MIB,
            rotate_every: opts.rotate_every.max(Duration::from_secs(1)),
            flush_every: opts.flush_every.max(Duration::from_millis(100)),
            cap_bytes: c.max_disk_mb.saturating_mul(MIB),
            min_free_bytes: c.min_free_mb.saturating_mul(MIB),
        }
    }
}

/// The part files earlier runs of the night left in `capture/`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct EarlierParts {
    /// Highest part number (0: none).
    pub(super) last_index: u32,
    /// Their bytes (after a torn tail was cut).
    pub(super) bytes: u64,
}

impl Writer {
    /// A writer of new parts in `dir`, numbered after `earlier`'s and counting their bytes
    /// against the cap.
    pub(super) fn new(dir: PathBuf, limits: Limits, earlier: EarlierParts) -> Self {
        Writer {
            dir,
            next_index: earlier.last_index + 1,
            snaplen: limits.snaplen,
            rotate_bytes: limits.rotate_bytes,
            rotate_every: limits.rotate_every,
            flush_every: limits.flush_every,
            cap_bytes: limits.cap_bytes,
            total_bytes: earlier.bytes,
            part: None,
            link_type: None,
            halted: false,
            live: Arc::new(Mutex::new(WriterLive {
                bytes: earlier.bytes,
                ..WriterLive::default()
            })),
            last_sync: Instant::now(),
            floor: Floor {
                min_free: limits.min_free_bytes,
                checked: Instant::now(),
                written_since: 0,
            },
        }
    }

    /// The free bytes when they are below the floor (`None`: enough, or unknown).
    fn below_floor(&mut self) -> Option<u64> {
        self.floor.checked = Instant::now();
        self.floor.written_since = 0;
        if self.floor.min_free == 0 {
            return None;
        }
        match crate::disk::space(&self.dir) {
            Ok(s) if s.available < self.floor.min_free => Some(s.available),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!("{}: free space unknown: {e}", self.dir.display());
                None
            }
        }
    }

    /// True when the floor is due for a check before writing `len` more bytes.
    fn floor_due(&self, len: u64) -> bool {
        self.part.is_none()
            || self.floor.written_since + len > FLOOR_CHECK_BYTES
            || self.floor.checked.elapsed() >= FLOOR_CHECK_EVERY
    }

    /// Stops writing for the night at the disk floor (`free` bytes left), counting
    /// `dropped` packets.
    fn reach_floor(&mut self, free: u64, dropped: u64) {
        if !self.halted {
            tracing::warn!(
                "only {} MiB free on the disk of {}, below capture.min_free_mb ({} MiB):                  packets are no longer written this run; the capture goes on counting them",
                free / MIB,
                self.dir.display(),
                self.floor.min_free / MIB
            );
            self.halted = true;
            if let Err(e) = self.close_part() {
                self.fail(&e);
            }
            let mut l = lock(&self.live);
            l.low_disk = Some((Utc::now(), free / MIB));
            l.events += 1;
        }
        lock(&self.live).dropped_disk += dropped;
    }

    fn open_part(&mut self, link_type: u32) -> io::Result<()> {
        let name = layout::part_name(self.next_index);
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

    /// Flushes, syncs and closes the open part. On an error the part stays open, so
    /// [`Writer::fail`] can cut it back to its last whole record.
    pub(super) fn close_part(&mut self) -> io::Result<()> {
        if let Some(p) = self.part.as_mut() {
            p.out.flush()?;
            p.out.get_ref().sync_all()?;
        }
        if let Some(p) = self.part.take() {
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
        if let Some(p) = self.part.take() {
            self.cut_back(p);
        }
        let mut l = lock(&self.live);
        l.write_error.get_or_insert(msg);
        l.events += 1;
    }

    /// Keeps what is on disk readable after a failed write (a full disk): the part is
    /// cut back to its last whole record, never past what was accounted (`p.bytes`).
    /// The buffer is not flushed again (that is what failed): records counted as
    /// written that did not reach the file move to `dropped_disk`.
    fn cut_back(&mut self, p: Part) {
        let (file, _unwritten) = p.out.into_parts();
        drop(file);
        let path = self.dir.join(&lock(&self.live).files[p.idx].name);
        let (packets, good, last) = match scan_part_upto(&path, p.bytes) {
            Ok(scan) => scan,
            Err(e) => {
                tracing::error!("{}: cannot check its last record: {e}", path.display());
                return;
            }
        };
        let cut = OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(good).and_then(|()| f.sync_all()));
        match cut {
            Ok(()) => tracing::warn!(
                "{}: cut back to its last whole record ({} packets, {good} bytes)",
                path.display(),
                packets
            ),
            Err(e) => tracing::error!("{}: cutting its torn tail: {e}", path.display()),
        }
        let lost = p.packets.saturating_sub(packets);
        self.total_bytes = self
            .total_bytes
            .saturating_sub(p.bytes.saturating_sub(good));
        let mut l = lock(&self.live);
        let f = &mut l.files[p.idx];
        f.bytes = good;
        f.packets = packets;
        f.complete = true;
        if let Some((s, u)) = last {
            f.last = Some(rfc3339_utc_ts(s, u));
        }
        l.written = l.written.saturating_sub(lost);
        l.dropped_disk += lost;
        l.bytes = self.total_bytes;
    }

    pub(super) fn write_batch(&mut self, b: &Batch) {
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
        // Before a new part (rotation), and every second or FLOOR_CHECK_BYTES.
        if self.floor_due(len)
            && let Some(free) = self.below_floor()
        {
            self.reach_floor(free, b.packets);
            return Ok(());
        }
        self.floor.written_since += len;
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

    pub(super) fn on_link_type(&mut self, lt: u32) {
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
        // Already below the floor: the part keeps its header only (the night still has a
        // report, which says why it is empty).
        if !self.halted
            && let Some(free) = self.below_floor()
        {
            self.reach_floor(free, 0);
        }
    }

    pub(super) fn run(mut self, rx: mpsc::Receiver<Msg>, free: mpsc::Sender<Batch>) {
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
pub(super) fn scan_part(path: &Path) -> io::Result<PartScan> {
    scan_part_upto(path, u64::MAX)
}

/// [`scan_part`] of the first `limit` bytes of the file.
fn scan_part_upto(path: &Path, limit: u64) -> io::Result<PartScan> {
    let f = File::open(path)?;
    let len = f.metadata()?.len().min(limit);
    let mut r = BufReader::new(f);
    let mut hdr = [0u8; 24];
    if r.read_exact(&mut hdr).is_err() || u32_at(&hdr, 0) != pcapfmt::MAGIC_MICROS {
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

/// Existing part files of the night: highest index and total bytes.
fn existing_parts(dir: &Path) -> (u32, u64, Vec<PathBuf>) {
    let mut max = 0u32;
    let mut bytes = 0u64;
    let mut paths = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = layout::part_index(&name) {
                max = max.max(n);
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                paths.push(e.path());
            }
        }
    }
    paths.sort();
    (max, bytes, paths)
}

/// The parts earlier runs of the night left in `dir`. A power cut can leave the last one
/// with a torn record: it is cut back, and its entry in `files` (from the earlier run's
/// `capture.json`) gets the whole records' bytes, packets and last timestamp.
pub(super) fn earlier_parts(dir: &Path, files: &mut [FileInfo]) -> EarlierParts {
    let (last_index, mut bytes, paths) = existing_parts(dir);
    if let Some(last) = paths.last()
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
            bytes -= len - good;
        }
        let name = last.file_name().map(|s| s.to_string_lossy().into_owned());
        if let Some(f) = files.iter_mut().find(|f| Some(&f.name) == name.as_ref()) {
            f.bytes = good;
            f.packets = n;
            f.complete = true;
            if let Some((s, u)) = last_ts {
                f.last = Some(rfc3339_utc_ts(s, u));
            }
        }
    }
    EarlierParts { last_index, bytes }
}

/// A packet timestamp in RFC 3339 with microseconds, UTC (the part files' first and last).
fn rfc3339_utc_ts(sec: i64, usec: u32) -> String {
    DateTime::<Utc>::from_timestamp(sec, usec.saturating_mul(1000))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

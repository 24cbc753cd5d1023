//! `capture.json`, the capture's report: its types (read by `nightly` and the analysis
//! stage), and how a report is composed from the earlier runs of the night and the live
//! counters of the reader and writer threads.
//!
//! Invariants: the report's totals are the night's (all runs): an earlier run's report
//! becomes the base of the next one ([`carry_over`]), its files are kept and the time no
//! run was capturing is a gap. Top-level `interface`, `own_addresses` and
//! `stats.{received, dropped_kernel, dropped_interface}` are what the later stages read.
//! Every field has a default, so a report of an older version still reads.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::reader::ReaderLive;
use super::window::rfc3339_local;
use super::writer::WriterLive;
use super::{CaptureError, io_err, lock};
use crate::config::Zone;
use crate::fsutil::write_atomic;
use crate::linktype::LinkType;

/// Version of the `capture.json` layout. 2 added `own_addresses`; a version 1 file reads
/// with an empty list (the addresses were not recorded). 3 added `disk.min_free_mb` and
/// `disk.stopped_low_disk`; an older file reads with no floor and no stop.
pub const CAPTURE_SCHEMA_VERSION: u32 = 3;
/// Most samples kept in `capture.json` (older ones are thinned out).
const MAX_SAMPLES: usize = 1000;

/// Where a capture is, as `capture.json` says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureStatus {
    /// Capturing: rewritten every `stats_every` and when a gap starts or ends.
    Running,
    /// Ended.
    Complete,
    /// Ended, and a capture thread panicked (its files are still converted).
    Failed,
    /// No status, or a word netdigest does not write: the capture is left alone.
    #[default]
    #[serde(other)]
    Unknown,
}

/// `capture.json`. Top-level `interface`, `own_addresses` and `stats.{received,
/// dropped_kernel, dropped_interface}` are read by the analysis stage; keep them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CaptureReport {
    pub schema_version: u32,
    pub status: CaptureStatus,
    /// Local date the window started, `YYYY-MM-DD`.
    pub night: String,
    pub interface: String,
    /// The appliance's own addresses on the capture interface (every interface for
    /// `any`), as libpcap listed them when the capture started, with those of the night's
    /// earlier runs. The pings chart leaves these out when `report.own_addresses` is not set.
    pub own_addresses: Vec<IpAddr>,
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
    pub(super) fn add(&mut self, o: &CaptureStats) {
        self.received += o.received;
        self.dropped_kernel += o.dropped_kernel;
        self.dropped_interface += o.dropped_interface;
        self.read += o.read;
        self.dropped_queue += o.dropped_queue;
        self.dropped_disk += o.dropped_disk;
        self.written += o.written;
    }

    /// Each counter less `o`'s (0 where `o` has more).
    fn minus(&self, o: &CaptureStats) -> CaptureStats {
        CaptureStats {
            received: self.received.saturating_sub(o.received),
            dropped_kernel: self.dropped_kernel.saturating_sub(o.dropped_kernel),
            dropped_interface: self.dropped_interface.saturating_sub(o.dropped_interface),
            read: self.read.saturating_sub(o.read),
            dropped_queue: self.dropped_queue.saturating_sub(o.dropped_queue),
            dropped_disk: self.dropped_disk.saturating_sub(o.dropped_disk),
            written: self.written.saturating_sub(o.written),
        }
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

/// The night's disk use, cap and floor.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DiskInfo {
    pub max_mb: u64,
    pub rotate_mb: u64,
    pub bytes: u64,
    pub cap_reached_at: Option<String>,
    /// `capture.min_free_mb`: the disk floor.
    pub min_free_mb: u64,
    /// Writing stopped because the disk had less than `min_free_mb` free (the night's
    /// first such stop, earlier runs included).
    pub stopped_low_disk: Option<LowDisk>,
}

/// When the capture stopped writing at the disk floor.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct LowDisk {
    /// RFC 3339, local offset.
    pub at: String,
    /// MiB available then.
    pub free_mb: u64,
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

/// Adds a sample, thinning the list out beyond [`MAX_SAMPLES`].
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
pub(super) fn carry_over(prev: CaptureReport, zone: &Zone, now: DateTime<Utc>) -> CaptureReport {
    let mut base = CaptureReport {
        stats: prev.stats,
        own_addresses: prev.own_addresses.clone(),
        files: prev.files.clone(),
        gaps: prev.gaps.clone(),
        samples: prev.samples.clone(),
        previous_runs: prev.previous_runs.clone(),
        write_error: prev.write_error.clone(),
        disk: DiskInfo {
            stopped_low_disk: prev.disk.stopped_low_disk.clone(),
            ..DiskInfo::default()
        },
        ..CaptureReport::default()
    };
    // The previous run's own counters: the night totals minus the runs before it.
    let mut before = CaptureStats::default();
    for r in &prev.previous_runs {
        before.add(&r.stats);
    }
    let own = prev.stats.minus(&before);
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
            reason: if prev.status == CaptureStatus::Running {
                "capture not running (the previous run was interrupted)".into()
            } else {
                "capture not running".into()
            },
        });
    }
    base
}

/// A capture's report while it runs: the parts fixed at its start, the earlier runs'
/// base, the samples so far, and the threads' live counters it is composed from.
pub(super) struct LiveReport {
    path: PathBuf,
    zone: Zone,
    pub(super) fixed: CaptureReport,
    base: CaptureReport,
    samples: Vec<Sample>,
    reader: Arc<Mutex<ReaderLive>>,
    writer: Arc<Mutex<WriterLive>>,
}

impl LiveReport {
    /// The report of a run whose fixed parts are `fixed`, continuing `base`, written to
    /// `path` (`capture.json`).
    pub(super) fn new(
        path: PathBuf,
        zone: Zone,
        fixed: CaptureReport,
        base: CaptureReport,
        reader: Arc<Mutex<ReaderLive>>,
        writer: Arc<Mutex<WriterLive>>,
    ) -> Self {
        LiveReport {
            path,
            zone,
            fixed,
            samples: base.samples.clone(),
            base,
            reader,
            writer,
        }
    }

    /// Gap and disk events so far (a change means `capture.json` is due at once).
    pub(super) fn events(&self) -> u64 {
        lock(&self.reader).gap_events + lock(&self.writer).events
    }

    /// The report now, with `status` and, at the end, when and why it ended.
    pub(super) fn compose(
        &self,
        status: CaptureStatus,
        ended: Option<DateTime<Utc>>,
        reason: Option<String>,
    ) -> CaptureReport {
        let r = lock(&self.reader).clone();
        let w = lock(&self.writer).clone();
        let (stat, base, zone) = (&self.fixed, &self.base, &self.zone);

        let mut stats = base.stats;
        stats.add(&CaptureStats {
            dropped_disk: w.dropped_disk,
            written: w.written,
            ..r.counts
        });
        let mut gaps = base.gaps.clone();
        let end_of_run = ended.unwrap_or_else(Utc::now);
        gaps.extend(r.gaps.iter().map(|(s, e, why)| Gap {
            start: rfc3339_local(*s, zone),
            end: e.map(|e| rfc3339_local(e, zone)),
            seconds: Some(
                ((e.unwrap_or(end_of_run) - *s).num_milliseconds() as f64 / 1000.0).max(0.0),
            ),
            reason: why.clone(),
        }));
        let mut files = base.files.clone();
        files.extend(w.files.iter().cloned());
        CaptureReport {
            status,
            link_type: r.link_type.or(base.link_type),
            link_type_name: r.link_type.map(|l| LinkType(l).name()),
            ended: ended.map(|t| rfc3339_local(t, zone)),
            updated: rfc3339_local(Utc::now(), zone),
            stop_reason: reason,
            stats,
            samples: self.samples.clone(),
            gaps,
            files,
            disk: DiskInfo {
                bytes: w.bytes,
                cap_reached_at: w.cap_reached_at.map(|t| rfc3339_local(t, zone)),
                stopped_low_disk: base.disk.stopped_low_disk.clone().or_else(|| {
                    w.low_disk.map(|(t, free_mb)| LowDisk {
                        at: rfc3339_local(t, zone),
                        free_mb,
                    })
                }),
                ..stat.disk.clone()
            },
            write_error: w.write_error.clone().or_else(|| base.write_error.clone()),
            previous_runs: base.previous_runs.clone(),
            ..stat.clone()
        }
    }

    /// The report now, after adding a sample of its totals taken `at`.
    pub(super) fn sampled(
        &mut self,
        status: CaptureStatus,
        at: DateTime<Utc>,
        ended: Option<DateTime<Utc>>,
        reason: Option<String>,
    ) -> CaptureReport {
        let rep = self.compose(status, ended, reason);
        push_sample(&mut self.samples, rfc3339_local(at, &self.zone), rep.stats);
        CaptureReport {
            samples: self.samples.clone(),
            ..rep
        }
    }

    /// Writes `rep` to `capture.json` (atomically).
    pub(super) fn write(&self, rep: &CaptureReport) -> Result<(), CaptureError> {
        let json = serde_json::to_vec_pretty(rep).map_err(|e| CaptureError::Io {
            path: self.path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomic(&self.path, &json).map_err(io_err(&self.path))
    }
}

//! Unit tests of the capture: the window across DST changes, filters, libpcap's
//! wrapping counters, the writer's rotation and disk cap, torn parts, carried-over runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::queue::Batch;
use super::reader::HandleStats;
use super::stats::{CaptureReport, CaptureStats, CaptureStatus, FileInfo, carry_over};
use super::window::{WindowPlan, WindowSource, next_local_time, plan_window, resolve_window};
use super::writer::{EarlierParts, Limits, Writer, scan_part};
use super::{CaptureOptions, FILE_HDR, MIB, lock, validate_filter};
use crate::config::{Config, Zone};
use crate::layout;

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
    assert!(e.to_string().contains("syntax error"), "{e}");
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
    let limits = Limits {
        snaplen: 192,
        rotate_bytes: rotate_mb * MIB,
        rotate_every: Duration::from_secs(3600),
        flush_every: Duration::from_secs(2),
        cap_bytes,
        min_free_bytes: 0,
    };
    Writer::new(dir.to_path_buf(), limits, EarlierParts::default())
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

/// A writer of 1 MiB parts, no cap, and a disk floor of `min_free_bytes`.
fn floor_writer(dir: &Path, min_free_bytes: u64) -> Writer {
    let limits = Limits {
        snaplen: 192,
        rotate_bytes: MIB,
        rotate_every: Duration::from_secs(3600),
        flush_every: Duration::from_secs(2),
        cap_bytes: u64::MAX,
        min_free_bytes,
    };
    Writer::new(dir.to_path_buf(), limits, EarlierParts::default())
}

#[test]
fn writer_stops_at_the_disk_floor_but_counts() {
    let dir = std::env::temp_dir().join(format!("nd-capf-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    // A floor above any disk's free space: the first part keeps its header, nothing more.
    let mut w = floor_writer(&dir, u64::MAX);
    w.on_link_type(1);
    for _ in 0..5 {
        w.write_batch(&batch(100, 1000));
    }
    w.close_part().unwrap();
    let live = lock(&w.live).clone();
    let (at, free_mb) = live.low_disk.expect("stopped at the floor");
    assert!(at <= Utc::now());
    let free = crate::disk::space(&dir).unwrap().available / MIB;
    assert!(
        free_mb.abs_diff(free) < 1024,
        "{free_mb} MiB recorded, {free} MiB free"
    );
    assert_eq!((live.written, live.dropped_disk), (0, 500));
    assert_eq!(live.files.len(), 1, "{:?}", live.files);
    let part = dir.join(&live.files[0].name);
    assert_eq!(fs::metadata(part).unwrap().len(), FILE_HDR);
    assert!(live.cap_reached_at.is_none() && live.write_error.is_none());

    // A floor of one byte: everything is written, over several parts.
    fs::remove_dir_all(&dir).unwrap();
    fs::create_dir_all(&dir).unwrap();
    let mut w = floor_writer(&dir, 1);
    w.on_link_type(1);
    for _ in 0..30 {
        w.write_batch(&batch(100, 1000));
    }
    w.close_part().unwrap();
    let live = lock(&w.live).clone();
    assert_eq!((live.written, live.dropped_disk), (3000, 0));
    assert!(live.files.len() >= 2, "{:?}", live.files);
    assert!(live.low_disk.is_none());
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
    let path = dir.join(layout::part_name(1));
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

/// A small tmpfs, unmounted (and removed) on drop. `None` when mounting is not
/// permitted (not root): the caller skips, saying so.
struct SmallFs(std::path::PathBuf);

impl SmallFs {
    fn mount(name: &str, size: &str) -> Option<SmallFs> {
        let dir = std::env::temp_dir().join(format!("nd-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but a tmpfs cannot be mounted (tests run as root)"
            );
            eprintln!("SKIP: cannot mount a tmpfs (not root)");
            let _ = fs::remove_dir_all(&dir);
            return None;
        }
        Some(SmallFs(dir))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A disk that fills in the middle of a record: the part is cut back to its last whole
/// record, reads cleanly (no damage, no truncation), and every packet is either in it
/// or counted in `dropped_disk`.
#[test]
fn a_full_disk_leaves_no_torn_record() {
    let Some(small) = SmallFs::mount("capfull", "200k") else {
        return;
    };
    let mut w = test_writer(&small.0, 64, u64::MAX);
    w.on_link_type(1);
    let mut sent = 0;
    // Records of 1,016 bytes: the 200 KiB disk fills in the middle of one.
    for _ in 0..30 {
        w.write_batch(&batch(100, 1000));
        sent += 100;
        if lock(&w.live).write_error.is_some() {
            break;
        }
    }
    w.close_part().unwrap();
    let live = lock(&w.live).clone();
    let err = live.write_error.clone().expect("the disk filled");
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(live.files.len(), 1, "{:?}", live.files);
    let path = small.0.join(&live.files[0].name);
    let len = fs::metadata(&path).unwrap().len();
    assert!(len > 24 + 100 * 1016, "something was written: {len}");
    assert_eq!((len - 24) % 1016, 0, "ends on a whole record: {len}");
    let (n, good, _) = scan_part(&path).unwrap();
    assert_eq!((good, n), (len, live.files[0].packets));
    assert_eq!(live.written, n);
    assert_eq!(live.written + live.dropped_disk, sent);
    // The capture file reader finds every record and no damage.
    let mut r = crate::capfile::CaptureReader::open(&path).unwrap();
    r.set_total_len(Some(len));
    let mut frames = 0;
    while let Some(f) = r.next_frame().expect("no damage") {
        assert_eq!(f.data.len(), 1000);
        frames += 1;
    }
    assert_eq!(frames, n);
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
}

#[test]
fn carry_over_adds_restart_gap_and_keeps_totals() {
    let prev = CaptureReport {
        status: CaptureStatus::Running,
        started: "2026-11-27T22:00:00.000+01:00".into(),
        updated: "2026-11-28T00:30:00.000+01:00".into(),
        stats: CaptureStats {
            received: 100,
            written: 90,
            ..CaptureStats::default()
        },
        files: vec![FileInfo {
            name: layout::part_name(1),
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
    assert_eq!(b.disk.stopped_low_disk, None);
}

#[test]
fn a_stop_at_the_disk_floor_is_kept_by_the_next_run_and_old_files_read() {
    let stop = super::LowDisk {
        at: "2026-11-28T02:10:00.000+01:00".into(),
        free_mb: 300,
    };
    let prev = CaptureReport {
        status: CaptureStatus::Complete,
        ended: Some("2026-11-28T02:30:00.000+01:00".into()),
        updated: "2026-11-28T02:30:00.000+01:00".into(),
        disk: super::DiskInfo {
            min_free_mb: 512,
            stopped_low_disk: Some(stop.clone()),
            ..super::DiskInfo::default()
        },
        ..CaptureReport::default()
    };
    let b = carry_over(prev, &berlin(), utc("2026-11-28T02:00:00Z"));
    assert_eq!(b.disk.stopped_low_disk, Some(stop));
    // A version 2 file (before the floor) reads with none.
    let old: CaptureReport = serde_json::from_str(
        r#"{"schema_version": 2, "disk": {"max_mb": 2048, "rotate_mb": 64, "bytes": 10,
            "cap_reached_at": null}}"#,
    )
    .unwrap();
    assert_eq!((old.disk.min_free_mb, old.disk.stopped_low_disk), (0, None));
    assert_eq!(old.disk.max_mb, 2048);
}

//! `netdigest nightly` on a real state directory: nights whose capture ended are
//! converted, analysed and reported once; a second run changes nothing; `--force` redoes
//! them; a night still being captured is skipped; a corrupt part fails its night (one
//! line naming the file, exit 1) while the other nights are still processed.
//!
//! Nights are made by the binary's own synthetic writer (`netdigest sample`) and a
//! `capture.json` in the real format (`netdigest::capture::CaptureReport`), in the layout
//! of a release before privilege separation (capture's files inside
//! `nights/<date>/capture/`): nightly reads such nights where they are. tests/soak.rs and
//! tests/privsep.rs make theirs in the current layout (`capture/<date>/`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::SystemTime;

use chrono::{Duration, Utc};
use netdigest::capture::CaptureReport;
use netdigest::layout::NightDir;

/// A night directory with `parts` sample parts (packets, seed) and a capture.json with
/// `status`; `running` nights have a window that ends in an hour and were updated now.
fn make_night(state: &Path, night: &str, parts: &[(u64, u64)], status: &str) -> PathBuf {
    let dir = state.join("nights").join(night);
    let cdir = dir.join("capture");
    std::fs::create_dir_all(&cdir).unwrap();
    for (i, (packets, seed)) in parts.iter().enumerate() {
        let part = cdir.join(format!("part-{:04}.pcap", i + 1));
        common::sample(&part, *packets, *seed);
    }
    let now = Utc::now();
    let (start, end, updated) = if status == "running" {
        (now - Duration::hours(1), now + Duration::hours(1), now)
    } else {
        (
            now - Duration::hours(10),
            now - Duration::hours(2),
            now - Duration::hours(2),
        )
    };
    common::write_capture_json(&dir, status, start, end, updated);
    dir
}

fn nightly(state: &Path, extra: &[&str]) -> Output {
    let mut cmd = common::bin();
    cmd.args(["nightly", "--state"]).arg(state).args(extra);
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every file under `dir` with its length and modification time, less the lock files
/// (each run that takes a lock writes its pid there).
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "lock") {
                continue;
            } else {
                out.insert(p, (m.len(), m.modified().unwrap()));
            }
        }
    }
    out
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .modified()
        .unwrap()
}

/// The Message-ID the report stage stored in `report/message.json`.
fn message_id(night_dir: &Path) -> String {
    let text = std::fs::read_to_string(night_dir.join("report/message.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["message_id"].as_str().unwrap().to_string()
}

const OUTPUTS: [&str; 4] = [
    "packets.parquet",
    "summary.json",
    "report/report.eml",
    "report/email.html",
];

#[test]
fn ended_nights_are_processed_once_and_redone_with_force() {
    let base = common::tmpdir("nightly-once");
    let state = base.join("state");

    // Nothing to do: no nights at all.
    let out = nightly(&state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));

    let done = make_night(&state, "2026-11-20", &[(2500, 1), (1500, 2)], "complete");
    let live = make_night(&state, "2026-11-21", &[(800, 3)], "running");

    let out = nightly(&state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    for f in OUTPUTS {
        assert!(done.join(f).is_file(), "{f} missing after nightly");
        assert!(
            !live.join(f).exists(),
            "{f} written for a night still capturing"
        );
    }
    assert!(
        netdigest::layout::devices_file(&state).is_file(),
        "devices not updated"
    );
    assert!(
        common::stderr(&out).contains("night 2026-11-21: still capturing"),
        "{}",
        common::stderr(&out)
    );
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("night 2026-11-20: converted, analysed, reported: "),
        "{lines:?}"
    );
    // Both parts were converted, in order, as one capture.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(done.join("summary.json")).unwrap()).unwrap();
    let frames = |p: &str| {
        let o = common::run(&[
            "convert",
            p,
            "-o",
            base.join("check.parquet").to_str().unwrap(),
        ]);
        let e = common::stderr(&o);
        e.split("converted ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no packet count in {e}"))
    };
    let expected = frames(done.join("capture/part-0001.pcap").to_str().unwrap())
        + frames(done.join("capture/part-0002.pcap").to_str().unwrap());
    assert_eq!(summary["totals"]["packets"].as_u64(), Some(expected));
    assert_eq!(
        summary["capture"]["interface"], "sample0",
        "capture.json not read"
    );

    // A second run changes nothing at all.
    let before = tree(&state);
    let out = nightly(&state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert_eq!(stdout(&out), "", "second run did work");
    assert_eq!(
        tree(&state),
        before,
        "second run changed the state directory"
    );

    // The Message-ID is random (128 bits) and made on the first render.
    let id = message_id(&done);
    let hex = id
        .strip_prefix("<netdigest-")
        .and_then(|r| r.strip_suffix("@localhost>"))
        .and_then(|r| r.rsplit('-').next())
        .unwrap_or_else(|| panic!("{id}"));
    assert!(
        hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );

    // --force redoes every stage of the ended night, and still leaves the live one alone.
    let out = nightly(&state, &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    for f in OUTPUTS {
        let p = done.join(f);
        assert_ne!(mtime(&p), before[&p].1, "{f} not rewritten by --force");
        assert!(!live.join(f).exists());
    }
    // ... and the night's message keeps its Message-ID, in message.json and report.eml.
    assert_eq!(message_id(&done), id, "re-rendering changed the Message-ID");
    let eml = std::fs::read_to_string(done.join("report/report.eml")).unwrap();
    assert!(
        eml.contains(&format!("Message-ID: {id}")),
        "{id} not in report.eml"
    );

    // A report deleted by hand is made again, and only it.
    let parquet_before = mtime(&done.join("packets.parquet"));
    let summary_before = mtime(&done.join("summary.json"));
    std::fs::remove_file(done.join("report/report.eml")).unwrap();
    let out = nightly(&state, &["--night", "2026-11-20"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(
        stdout(&out).starts_with("night 2026-11-20: reported: "),
        "{}",
        stdout(&out)
    );
    assert!(done.join("report/report.eml").is_file());
    assert_eq!(mtime(&done.join("packets.parquet")), parquet_before);
    assert_eq!(mtime(&done.join("summary.json")), summary_before);

    // The capture ends: the night is processed on the next run.
    let json_path = live.join("capture.json");
    let mut rep: CaptureReport =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    rep.status = netdigest::capture::CaptureStatus::Complete;
    std::fs::write(&json_path, serde_json::to_string(&rep).unwrap()).unwrap();
    let out = nightly(&state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(live.join("report/report.eml").is_file());
    assert_ne!(message_id(&live), id, "each night has its own Message-ID");
    assert!(
        stdout(&out).starts_with("night 2026-11-21: converted"),
        "{}",
        stdout(&out)
    );

    // Asking for a night that does not exist, or not a date.
    let out = nightly(&state, &["--night", "2026-01-01"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).contains("2026-01-01"),
        "{}",
        common::stderr(&out)
    );
    let out = nightly(&state, &["--night", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&base);
}

/// Overwrites the length fields of the `n`th record of a pcap with an impossible length.
fn corrupt_record(path: &Path, n: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let little = bytes[..4] == [0xd4, 0xc3, 0xb2, 0xa1];
    let u32_at = |b: &[u8], i: usize| {
        let a: [u8; 4] = b[i..i + 4].try_into().unwrap();
        if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut off = 24;
    for _ in 0..n {
        let incl = u32_at(&bytes, off + 8) as usize;
        off += 16 + incl;
        assert!(off + 16 < bytes.len(), "fewer than {n} records");
    }
    let bad: [u8; 4] = if little {
        0x7fff_fff0u32.to_le_bytes()
    } else {
        0x7fff_fff0u32.to_be_bytes()
    };
    bytes[off + 8..off + 12].copy_from_slice(&bad);
    bytes[off + 12..off + 16].copy_from_slice(&bad);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_corrupt_part_fails_its_night_and_the_others_still_run() {
    let base = common::tmpdir("nightly-corrupt");
    let state = base.join("state");
    let damaged = make_night(&state, "2026-11-20", &[(1500, 4), (1500, 5)], "complete");
    let garbage = make_night(&state, "2026-11-21", &[(1200, 6), (10, 7)], "complete");
    let good = make_night(&state, "2026-11-22", &[(2000, 8)], "complete");
    let damaged_part = damaged.join("capture/part-0002.pcap");
    corrupt_record(&damaged_part, 700);
    let garbage_part = garbage.join("capture/part-0002.pcap");
    std::fs::write(&garbage_part, b"this is not a capture file, it is text\n").unwrap();

    let out = nightly(&state, &[]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // One error line per bad file, naming it.
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("netdigest: "))
        .collect();
    assert_eq!(errors.len(), 2, "{err}");
    assert!(
        errors[0].starts_with("netdigest: night 2026-11-20: ")
            && errors[0].contains(damaged_part.to_str().unwrap()),
        "{err}"
    );
    assert!(
        errors[1].starts_with("netdigest: night 2026-11-21: ")
            && errors[1].contains(garbage_part.to_str().unwrap()),
        "{err}"
    );
    // Every night still got its report: the packets that could be read, the good parts.
    for dir in [&damaged, &garbage, &good] {
        for f in OUTPUTS {
            assert!(dir.join(f).is_file(), "{}: {f} missing", dir.display());
        }
    }
    let out = stdout(&out);
    for n in ["2026-11-20", "2026-11-21", "2026-11-22"] {
        assert!(out.contains(&format!("night {n}: converted")), "{out}");
    }

    // The damage cannot be repaired by running again: the nights are complete now.
    let before = tree(&state);
    let out = nightly(&state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert_eq!(tree(&state), before);
    let _ = std::fs::remove_dir_all(&base);
}

/// A night with a spooled report and, for `Some`, a delivery record with that status.
fn mailed_night(state: &Path, night: &str, status: Option<netdigest::mail::Status>) -> PathBuf {
    let dir = state.join("nights").join(night);
    std::fs::create_dir_all(dir.join("capture")).unwrap();
    std::fs::write(dir.join("capture/part-0001.pcap"), vec![0u8; 1 << 20]).unwrap();
    std::fs::create_dir_all(dir.join("report")).unwrap();
    std::fs::write(dir.join("report/report.eml"), b"Subject: x\r\n\r\nx\r\n").unwrap();
    if let Some(status) = status {
        netdigest::mail::MailRecord {
            night: night.into(),
            status,
            ..Default::default()
        }
        .save(&dir)
        .unwrap();
    }
    dir
}

#[test]
fn nightly_deletes_nights_past_keep_nights_once_mailed_or_given_up() {
    use netdigest::mail::Status;
    let state = common::tmpdir("nightly-retention");
    let today = chrono::Local::now().date_naive();
    let day = |n: i64| (today - Duration::days(n)).format("%Y-%m-%d").to_string();
    let last_night = make_night(&state, &day(1), &[(300, 3)], "complete");
    let current = make_night(&state, &day(0), &[], "running");
    let gone = [
        mailed_night(&state, &day(10), Some(Status::Sent)),
        mailed_night(&state, &day(9), Some(Status::Expired)),
        mailed_night(&state, &day(8), None), // never sent, past max_age_days
        mailed_night(&state, &day(3), Some(Status::Sent)),
    ];
    let unsent_young = mailed_night(&state, &day(4), Some(Status::Failed));
    let junk = mailed_night(&state, "old-notes", Some(Status::Sent));
    let run = || {
        let mut cmd = common::bin();
        cmd.args(["nightly", "--state"])
            .arg(&state)
            .env("NETDIGEST_STATE__KEEP_NIGHTS", "2")
            .env("NETDIGEST_MAIL__MAX_AGE_DAYS", "5");
        cmd.output().unwrap()
    };
    let out = run();
    let err = common::stderr(&out);
    assert!(out.status.success(), "{err}");
    // Last night is reported, and kept.
    assert!(
        stdout(&out).contains(&format!("night {}: converted", day(1))),
        "{}",
        stdout(&out)
    );
    assert!(last_night.join("report/report.eml").is_file());
    for dir in &gone {
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(!dir.exists(), "{name} should be deleted: {err}");
        assert!(
            err.contains(&format!("night {name}: deleted")),
            "no log line for {name}: {err}"
        );
    }
    assert!(err.contains("2 MB freed"), "{err}");
    for kept in [&last_night, &current, &unsent_young, &junk] {
        assert!(kept.is_dir(), "{} was deleted: {err}", kept.display());
    }
    assert!(
        err.contains(&format!("night {}: 4 days old", day(4))),
        "{err}"
    );
    let names: Vec<String> = std::fs::read_dir(state.join("nights"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".deleting")), "{names:?}");
    // Again: nothing more to delete.
    let again = run();
    assert!(again.status.success(), "{}", common::stderr(&again));
    assert!(
        !common::stderr(&again).contains("deleted"),
        "{}",
        common::stderr(&again)
    );
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
fn a_convert_that_cannot_fit_is_not_started_and_runs_once_there_is_room() {
    let dir = common::tmpdir("nightly-nospace");
    let state = dir.join("state");
    let Some(mounted) = common::Tmpfs::mount(&state, 12) else {
        return;
    };
    let night = make_night(&state, "2026-11-20", &[(20_000, 7)], "complete");
    // Leave half a MiB free.
    let free = netdigest::disk::space(&state).unwrap().available;
    let filler = state.join("filler");
    std::fs::write(
        &filler,
        vec![0u8; usize::try_from(free - (1 << 19)).unwrap()],
    )
    .unwrap();
    let out = nightly(&state, &[]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("night 2026-11-20")
            && err.contains("not converted")
            && err.contains("MiB is free"),
        "{err}"
    );
    assert_eq!(err.matches("netdigest:").count(), 1, "one line: {err}");
    assert!(!night.join("packets.parquet").exists());
    let left: Vec<_> = std::fs::read_dir(&night)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "nothing written: {left:?}");
    // Room again: the night is converted.
    std::fs::remove_file(&filler).unwrap();
    let out = nightly(&state, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(night.join("report/report.eml").is_file());
    drop(mounted);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One `nightly` at a time: while another process holds `<state>/nights/nightly.lock` a second
/// run refuses (one line, exit 1) and touches nothing; a night whose capture lock is held
/// by another process is still being captured and is skipped; both run once released.
#[test]
fn locks_keep_a_second_nightly_and_a_live_capture_out() {
    let base = common::tmpdir("nightly-locks");
    let state = base.join("state");
    let night = make_night(&state, "2026-11-22", &[(600, 5)], "complete");
    let holder = common::LockHolder::hold(&netdigest::layout::nightly_lock(&state));
    let out = nightly(&state, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("another netdigest nightly is running"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        !night.join("packets.parquet").exists(),
        "the second run did work"
    );
    drop(holder);

    // capture.json says complete, but a capture still holds the night's lock.
    let capture = common::LockHolder::hold(&night.join("capture.lock"));
    let out = nightly(&state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("still capturing"),
        "{}",
        common::stderr(&out)
    );
    assert!(!night.join("packets.parquet").exists());
    drop(capture);
    let out = nightly(&state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(night.join("report/report.eml").is_file());
    let _ = std::fs::remove_dir_all(&base);
}

/// Files in `dir` whose name starts with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect()
}

/// Corrupt state is moved aside with a warning and the night proceeds: a damaged
/// capture.json (the night's parts are still converted), a damaged devices.parquet
/// (the history starts again) and an earlier night's damaged summary.json (left out of
/// the history).
#[test]
fn corrupt_state_files_are_moved_aside_and_the_night_proceeds() {
    let base = common::tmpdir("nightly-corrupt-state");
    let state = base.join("state");
    let first = make_night(&state, "2026-11-23", &[(700, 7)], "complete");
    std::fs::write(first.join("capture.json"), b"{\"status\": \"comp").unwrap();
    let out = nightly(&state, &[]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("moved aside to"), "{err}");
    assert_eq!(named(&first, "capture.json.corrupt-").len(), 1);
    assert!(
        first.join("report/report.eml").is_file(),
        "the parts were converted"
    );
    // The next run finds the night complete, and says nothing more about it.
    let out = nightly(&state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert_eq!(stdout(&out), "", "redone: {}", common::stderr(&out));

    // devices.parquet cut in half: the next night is analysed all the same.
    let devices = netdigest::layout::devices_file(&state);
    let bytes = std::fs::read(&devices).unwrap();
    std::fs::write(&devices, &bytes[..bytes.len() / 2]).unwrap();
    let second = make_night(&state, "2026-11-24", &[(700, 8)], "complete");
    let out = nightly(&state, &[]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("devices.parquet") && err.contains("moved aside"),
        "{err}"
    );
    assert!(second.join("report/report.eml").is_file());
    let aside = named(&state.join("nights"), "devices.parquet.corrupt-");
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read(&aside[0]).unwrap(), &bytes[..bytes.len() / 2]);
    assert!(
        std::fs::metadata(&devices).unwrap().len() > 0,
        "a new devices.parquet"
    );

    // An earlier night's summary.json damaged: the third night leaves it out.
    std::fs::write(second.join("summary.json"), b"\x00garbage").unwrap();
    let third = make_night(&state, "2026-11-25", &[(700, 9)], "complete");
    let out = nightly(&state, &["--night", "2026-11-25"]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("summary.json") && err.contains("moved aside"),
        "{err}"
    );
    assert_eq!(named(&second, "summary.json.corrupt-").len(), 1);
    assert!(third.join("report/report.eml").is_file());
    // And the damaged night itself is analysed again by the next full run.
    let out = nightly(&state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(second.join("summary.json").is_file());
    let _ = std::fs::remove_dir_all(&base);
}

/// A night that stopped nightly twice (killed: the OOM killer at MemoryMax=, a crash) is
/// left alone with one line saying so and how to retry, and the later nights go on; a
/// night stopped once is simply done again; `--force` retries the one left alone.
#[test]
fn a_night_that_killed_nightly_twice_does_not_hold_back_the_others() {
    let state = common::tmpdir("nightly-attempts");
    let bad = make_night(&state, "2026-11-20", &[(800, 1)], "complete");
    let once = make_night(&state, "2026-11-21", &[(800, 2)], "complete");
    let good = make_night(&state, "2026-11-22", &[(800, 3)], "complete");
    let attempts = |d: &Path| NightDir::new(d).nightly_attempts();
    std::fs::write(attempts(&bad), "2").unwrap();
    std::fs::write(attempts(&once), "1").unwrap();
    let out = nightly(&state, &[]);
    let err = common::stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a night left alone is a failure: {err}"
    );
    assert!(
        err.contains("nightly was stopped 2 times while working on this night")
            && err.contains("--night 2026-11-20 --force"),
        "{err}"
    );
    assert!(
        !bad.join("packets.parquet").exists(),
        "the bad night was worked on"
    );
    for d in [&once, &good] {
        assert!(
            d.join("report/report.eml").is_file(),
            "{}: {err}",
            d.display()
        );
        assert!(
            !attempts(d).exists(),
            "a finished night keeps its attempt count"
        );
    }
    assert!(attempts(&bad).exists());
    let out = nightly(&state, &["--night", "2026-11-20", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert!(bad.join("report/report.eml").is_file());
    assert!(!attempts(&bad).exists());
    let _ = std::fs::remove_dir_all(&state);
}

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use super::*;
use crate::mail::MailRecord;

const POLICY: Policy = Policy {
    keep_nights: 3,
    max_age_days: 7,
};

fn date(s: &str) -> NaiveDate {
    layout::parse_night_name(s).unwrap()
}

fn state(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netdigest-retention-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(layout::nights_dir(&d)).unwrap();
    d
}

/// A night with a capture part, a report and, for `Some(status)`, a delivery record.
fn night(state: &Path, name: &str, status: Option<Status>) -> PathBuf {
    let n = layout::NightDir::named(state, name);
    fs::create_dir_all(n.capture_dir()).unwrap();
    fs::write(n.part(1), vec![0u8; 4096]).unwrap();
    fs::create_dir_all(n.report_dir()).unwrap();
    fs::write(n.report_eml(), b"Subject: x\r\n\r\nbody\r\n").unwrap();
    if let Some(status) = status {
        let rec = MailRecord {
            night: name.into(),
            status,
            sent_at: (status == Status::Sent).then(chrono::Utc::now),
            ..MailRecord::default()
        };
        rec.save(n.path()).unwrap();
    }
    n.path().to_path_buf()
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn verdicts() {
    let sent = MailState::Sent(None);
    let unsent = MailState::Unsent;
    let bad = MailState::Unreadable("x".into());
    let del = |v: Verdict| matches!(v, Verdict::Delete(_));
    let kept_unsent = |v: Verdict| matches!(v, Verdict::KeepUnsent(_));
    // Within keep_nights days, or among the newest keep_nights: kept whatever mail says.
    assert_eq!(verdict(3, 10, &sent, POLICY), Verdict::Keep);
    assert_eq!(verdict(0, 0, &unsent, POLICY), Verdict::Keep);
    assert_eq!(
        verdict(-5, 0, &sent, POLICY),
        Verdict::Keep,
        "dated in the future"
    );
    assert_eq!(
        verdict(400, 2, &sent, POLICY),
        Verdict::Keep,
        "a newest night"
    );
    // Older: sent or given up goes; unsent goes only past mail.max_age_days.
    assert!(del(verdict(4, 3, &sent, POLICY)));
    assert!(del(verdict(4, 3, &MailState::Expired, POLICY)));
    assert!(kept_unsent(verdict(7, 3, &unsent, POLICY)));
    assert!(del(verdict(8, 3, &unsent, POLICY)));
    assert!(kept_unsent(verdict(7, 3, &bad, POLICY)));
    assert!(del(verdict(8, 3, &bad, POLICY)));
    // keep_nights longer than max_age_days: keep_nights decides.
    let long = Policy {
        keep_nights: 30,
        max_age_days: 7,
    };
    assert_eq!(verdict(20, 40, &unsent, long), Verdict::Keep);
    assert!(del(verdict(31, 40, &unsent, long)));
    // keep_nights 0: a night goes once mailed, never the current night.
    let none = Policy {
        keep_nights: 0,
        max_age_days: 7,
    };
    assert!(del(verdict(1, 0, &sent, none)));
    assert_eq!(verdict(0, 0, &sent, none), Verdict::Keep);
}

#[test]
fn old_nights_go_once_mailed_or_expired_and_nothing_else_is_touched() {
    let s = state("crafted");
    let nights = layout::nights_dir(&s);
    let today = date("2026-11-30");
    night(&s, "2026-11-01", Some(Status::Sent)); // 29 days, sent: goes
    night(&s, "2026-11-02", None); // 28 days, never sent, past max_age_days: goes
    night(&s, "2026-11-20", Some(Status::Expired)); // 10 days, given up: goes
    night(&s, "2026-11-23", Some(Status::Failed)); // 7 days, unsent: kept
    night(&s, "2026-11-24", Some(Status::Pending)); // 6 days, unsent young: kept
    let corrupt = night(&s, "2026-11-25", None); // unreadable record, young: kept
    fs::write(corrupt.join(layout::MAIL_JSON), b"{ not json").unwrap();
    night(&s, "2026-11-26", Some(Status::Sent)); // 4 days, sent: goes
    night(&s, "2026-11-27", Some(Status::Sent)); // 3 days: kept
    night(&s, "2026-11-29", Some(Status::Sent)); // last night, sent: kept
    // The current night: being captured, nothing else yet.
    fs::create_dir_all(layout::NightDir::of(&s, today).capture_dir()).unwrap();
    // Junk that is not a night, some of it old and looking mailed.
    for junk in [
        "lost+found",
        "notes",
        "2026-10-01.bak",
        "2026-13-45",
        "1999-1-1x",
    ] {
        night(&s, junk, Some(Status::Sent));
    }
    fs::write(nights.join("2026-10-02"), b"a file named like a night").unwrap();
    let outside = s.join("outside");
    night(&s, "../outside", Some(Status::Sent));
    std::os::unix::fs::symlink(&outside, nights.join("2026-10-03")).unwrap();
    // A deletion an earlier run left half done.
    let left = nights.join("2026-10-05.deleting");
    fs::create_dir_all(left.join("capture")).unwrap();
    fs::write(left.join("capture/part-0002.pcap"), b"x").unwrap();

    let before = names(&nights);
    // Mail keeps every record whose night is still there (nightly reads it first).
    let m = prune_tree(&s, Tree::Mail, POLICY, today);
    assert!(m.deleted.is_empty() && m.errors.is_empty(), "{m:?}");
    let p = prune(&s, POLICY, today);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let deleted: Vec<&str> = p.deleted.iter().map(|d| d.night.as_str()).collect();
    assert_eq!(
        deleted,
        ["2026-11-01", "2026-11-02", "2026-11-20", "2026-11-26"]
    );
    assert!(p.deleted.iter().all(|d| d.bytes > 0), "{:?}", p.deleted);
    assert!(
        p.deleted[0].reason.starts_with("mailed"),
        "{:?}",
        p.deleted[0]
    );
    assert!(
        p.deleted[1].reason.contains("mail.max_age_days"),
        "{:?}",
        p.deleted[1]
    );
    let kept: Vec<&str> = p.kept_unsent.iter().map(|k| k.night.as_str()).collect();
    assert_eq!(kept, ["2026-11-23", "2026-11-24", "2026-11-25"]);

    let mut expected = before.clone();
    for gone in deleted.iter().copied().chain(["2026-10-05.deleting"]) {
        assert!(expected.remove(gone), "{gone}");
    }
    assert_eq!(names(&nights), expected);
    // The junk is whole, and so is what the symlink points to.
    for junk in ["lost+found", "notes", "2026-10-01.bak", "2026-13-45"] {
        assert!(
            layout::NightDir::named(&s, junk).report_eml().is_file(),
            "{junk}"
        );
    }
    assert!(layout::NightDir::new(&outside).report_eml().is_file());
    assert!(nights.join("2026-10-03").is_symlink());
    assert!(nights.join("2026-10-02").is_file());
    assert!(layout::NightDir::of(&s, today).capture_dir().is_dir());

    // Nightly does not make a deleted night again from capture's files left behind.
    assert!(deleted_before(&s, "2026-11-01", 8, POLICY, today));
    assert!(
        !deleted_before(&s, "2026-11-23", 5, POLICY, today),
        "still there"
    );
    assert!(
        !deleted_before(&s, "2026-11-30", 0, POLICY, today),
        "tonight"
    );

    // Capture's tree: the same nights go (one user here reads every mail.json), with
    // their parts; tonight's capture stays.
    let c = prune_tree(&s, Tree::Capture, POLICY, today);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let gone: Vec<&str> = c.deleted.iter().map(|d| d.night.as_str()).collect();
    assert_eq!(gone, deleted);
    assert!(c.deleted.iter().all(|d| d.bytes >= 4096), "{:?}", c.deleted);
    let captures = names(&layout::capture_tree(&s));
    assert!(captures.contains("2026-11-30") && captures.contains("2026-11-23"));
    assert!(!captures.contains("2026-11-01"), "{captures:?}");
    // Mail's tree: the records of the nights now gone and older than max_age_days
    // (2026-11-02 never had one; 2026-11-26's stays while capture may keep its files).
    let m = prune_tree(&s, Tree::Mail, POLICY, today);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    let gone: Vec<&str> = m.deleted.iter().map(|d| d.night.as_str()).collect();
    assert_eq!(gone, ["2026-11-01", "2026-11-20"]);
    assert!(deleted_before(&s, "2026-11-26", 3, POLICY, today));

    // Again: nothing more to do.
    let again = prune(&s, POLICY, today);
    assert!(
        again.deleted.is_empty() && again.errors.is_empty(),
        "{again:?}"
    );
    assert_eq!(names(&nights), expected);
    let _ = fs::remove_dir_all(&s);
}

#[test]
fn a_clock_far_ahead_keeps_the_newest_nights() {
    let s = state("clock");
    for n in [
        "2026-11-25",
        "2026-11-26",
        "2026-11-27",
        "2026-11-28",
        "2026-11-29",
    ] {
        night(&s, n, Some(Status::Sent));
    }
    let p = prune(&s, POLICY, date("2038-01-19"));
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.deleted.len(), 2, "{p:?}");
    let left = names(&layout::nights_dir(&s));
    assert_eq!(
        left.into_iter().collect::<Vec<_>>(),
        ["2026-11-27", "2026-11-28", "2026-11-29"]
    );
    let _ = fs::remove_dir_all(&s);
}

#[test]
fn no_nights_dir_is_nothing_to_do_and_an_unlistable_one_is_an_error() {
    let s = state("absent");
    fs::remove_dir_all(layout::nights_dir(&s)).unwrap();
    let p = prune(&s, POLICY, date("2026-11-30"));
    assert!(p.deleted.is_empty() && p.errors.is_empty());
    fs::write(layout::nights_dir(&s), b"not a directory").unwrap();
    let p = prune(&s, POLICY, date("2026-11-30"));
    assert_eq!(p.errors.len(), 1, "{p:?}");
    assert!(p.errors[0].contains("nights"), "{:?}", p.errors);
    let _ = fs::remove_dir_all(&s);
}

#[test]
fn the_state_directory_is_bounded_by_the_config() {
    let mut cfg = Config::default();
    // 15 nights (14 kept, tonight) of 1024 MiB, an eighth more and 1 MiB: 17,295 MiB.
    assert_eq!(nights_on_disk(Policy::from_config(&cfg)), 15);
    assert_eq!(state_bound_mb(&cfg), 15 * 1153);
    // Unsent nights mail may still send are kept beyond keep_nights.
    cfg.state.keep_nights = 3;
    cfg.mail.max_age_days = 7;
    cfg.capture.max_disk_mb = 256;
    assert_eq!(nights_on_disk(Policy::from_config(&cfg)), 8);
    assert_eq!(state_bound_mb(&cfg), 8 * 289);
    cfg.capture.max_disk_mb = u64::MAX;
    assert_eq!(state_bound_mb(&cfg), u64::MAX, "saturates");
}

//! Retention: night directories older than `state.keep_nights` are deleted once their
//! report was mailed or can no longer be (run by `netdigest nightly` before the reports,
//! so a nearly full disk gets room for them).
//!
//! A night `<state>/nights/<YYYY-MM-DD>` is deleted when all of these hold:
//! - it is more than `keep_nights` days old (its date against today's local date), and it
//!   is not one of the newest `keep_nights` nights (a clock that jumps ahead cannot empty
//!   the disk);
//! - its `mail.json` says `sent` or `expired`, or it is older than `mail.max_age_days`
//!   (mail never sends such a night: it gives it up). An unsent report younger than
//!   `mail.max_age_days` is never deleted, whatever `keep_nights` says.
//!
//! A night is first renamed to `<YYYY-MM-DD>.deleting` (a name no stage reads), then
//! removed; a deletion that was interrupted is finished by the next run. Only real
//! directories named as a date (or as a date being deleted) are touched: anything else
//! under `nights/` (a file, a symlink, `lost+found`, `notes`) is left alone, and nothing
//! is followed through a symlink.
//!
//! Each stage prunes only its own tree (see [`crate::layout`]), so that none needs write
//! access to another's files: nightly `nights/` (before the reports, so that a nearly
//! full disk gets room for them; a night is deleted at the first nightly after it was
//! mailed or given up and aged out), capture `capture/` when it starts, mail `mail/`
//! after sending. The rule is the same for every tree, with the night's `mail.json`
//! (mail's, readable by nightly's group): capture's user cannot read it, so its nights
//! go when older than `mail.max_age_days` too; mail keeps a record for as long as the
//! night directory it speaks of exists and capture's files may (older than both
//! `keep_nights` and `mail.max_age_days`): nightly reads it before deleting the night,
//! and so as not to make a deleted night again from capture's files left behind.

use std::collections::BTreeSet;
use std::fs;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::Config;
use crate::layout;
use crate::mail::{MailRecord, Status};

/// A stage's tree of nights under the state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// `capture/`: parts and capture.json (pruned by capture).
    Capture,
    /// `nights/`: the night directories (pruned by nightly).
    Nights,
    /// `mail/`: the delivery records (pruned by mail).
    Mail,
}

impl Tree {
    fn dir(self, state_dir: &Path) -> PathBuf {
        match self {
            Tree::Capture => layout::capture_tree(state_dir),
            Tree::Nights => layout::nights_dir(state_dir),
            Tree::Mail => layout::mail_tree(state_dir),
        }
    }
}

/// What retention keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `state.keep_nights`: nights kept on disk.
    pub keep_nights: u32,
    /// `mail.max_age_days`: an unsent report younger than this is never deleted.
    pub max_age_days: u32,
}

impl Policy {
    #[must_use]
    pub fn from_config(cfg: &Config) -> Policy {
        Policy {
            keep_nights: cfg.state.keep_nights,
            max_age_days: cfg.mail.max_age_days,
        }
    }
}

/// Nights on disk at most: those of the last `keep_nights` days, those mail may still
/// send (`mail.max_age_days`), and tonight's.
#[must_use]
pub fn nights_on_disk(p: Policy) -> u64 {
    u64::from(p.keep_nights.max(p.max_age_days)) + 1
}

/// The state directory's size at most, in MiB: [`nights_on_disk`] nights of
/// `capture.max_disk_mb` of capture files, each with its Parquet and report (about an
/// eighth more: 11 % measured on a million packets at snaplen 192), plus a night's worth
/// for `devices.parquet` and what rounding leaves.
#[must_use]
pub fn state_bound_mb(cfg: &Config) -> u64 {
    let night = cfg.capture.max_disk_mb.saturating_mul(9) / 8 + 1;
    nights_on_disk(Policy::from_config(cfg)).saturating_mul(night)
}

/// A night deleted by this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub night: String,
    pub age_days: i64,
    /// Why it could go (mailed, given up, too old to mail).
    pub reason: String,
    /// Bytes of its files.
    pub bytes: u64,
}

/// A night past `keep_nights` kept because its report is not mailed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub night: String,
    pub age_days: i64,
    pub reason: String,
}

/// What a run of [`prune`] did.
#[derive(Debug, Default)]
pub struct Pruned {
    pub deleted: Vec<Deleted>,
    pub kept_unsent: Vec<Kept>,
    /// One line each, naming the directory: a night that could not be deleted, a
    /// `nights/` that could not be listed.
    pub errors: Vec<String>,
}

/// Where a night stands with mail.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MailState {
    Sent(Option<String>),
    Expired,
    /// Not sent yet (or no report yet).
    Unsent,
    /// `mail.json` cannot be read: it may or may not have been sent.
    Unreadable(String),
}

impl MailState {
    fn of(night_dir: &Path) -> MailState {
        match MailRecord::load(night_dir) {
            Ok(r) if r.status == Status::Sent => MailState::Sent(
                r.sent_at
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
            ),
            Ok(r) if r.status == Status::Expired => MailState::Expired,
            Ok(_) => MailState::Unsent,
            Err(e) => MailState::Unreadable(e.to_string()),
        }
    }
}

/// What to do with one night.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Keep,
    /// Past `keep_nights` but its report is not mailed yet: why.
    KeepUnsent(String),
    /// Why it goes.
    Delete(String),
}

/// The verdict on a night `age` days old with `newer` nights after it.
fn verdict(age: i64, newer: usize, mail: &MailState, p: Policy) -> Verdict {
    let keep = usize::try_from(p.keep_nights).unwrap_or(usize::MAX);
    if age <= i64::from(p.keep_nights) || newer < keep {
        return Verdict::Keep;
    }
    let too_old_to_mail = age > i64::from(p.max_age_days);
    match mail {
        MailState::Sent(at) => Verdict::Delete(match at {
            Some(at) => format!("mailed {at}"),
            None => "mailed".to_string(),
        }),
        MailState::Expired => {
            Verdict::Delete("never mailed, given up by mail (mail.max_age_days)".into())
        }
        _ if too_old_to_mail => Verdict::Delete(format!(
            "not mailed, and older than mail.max_age_days ({}): mail will not send it",
            p.max_age_days
        )),
        MailState::Unsent => Verdict::KeepUnsent(format!(
            "its report is not mailed yet and mail may still send it (mail.max_age_days {})",
            p.max_age_days
        )),
        MailState::Unreadable(e) => Verdict::KeepUnsent(format!(
            "its delivery record is unreadable ({e}), so it may be unsent; kept until it is \
             older than mail.max_age_days ({})",
            p.max_age_days
        )),
    }
}

/// Deletes the nights under `<state_dir>/nights/` that [`Policy`] lets go, `today` being
/// the local date (as mail counts a night's age), and finishes deletions an earlier run
/// left. Every deletion is logged. Safe to run at any time, and again.
#[must_use]
pub fn prune(state_dir: &Path, policy: Policy, today: NaiveDate) -> Pruned {
    prune_tree(state_dir, Tree::Nights, policy, today)
}

/// [`prune`] for one stage's `tree`.
#[must_use]
pub fn prune_tree(state_dir: &Path, tree: Tree, policy: Policy, today: NaiveDate) -> Pruned {
    let mut out = Pruned::default();
    let nights_dir = tree.dir(state_dir);
    let Listing { nights, leftovers } = match list(&nights_dir) {
        Ok(l) => l,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    for dir in leftovers {
        tracing::info!("{}: finishing an interrupted deletion", dir.display());
        if let Err(e) = fs::remove_dir_all(&dir) {
            out.errors
                .push(format!("{}: cannot delete: {e}", dir.display()));
        }
    }
    // Newer nights are counted over the trees, so that every tree keeps the same newest
    // nights (tonight's may be in capture's tree alone).
    let mut dates: BTreeSet<NaiveDate> = nights.iter().map(|(d, _)| *d).collect();
    for other in [Tree::Capture, Tree::Nights] {
        if other == tree {
            continue;
        }
        if let Ok(l) = list(&other.dir(state_dir)) {
            dates.extend(l.nights.into_iter().map(|(d, _)| d));
        }
    }
    for (date, dir) in nights {
        let newer = dates
            .range((Bound::Excluded(date), Bound::Unbounded))
            .count();
        let night = layout::night_name(date);
        let age_days = (today - date).num_days();
        let night_dir = layout::NightDir::of(state_dir, date);
        // Mail's record outlives the night: until capture's files of it are gone too
        // (capture keeps them that long when it cannot read the record), so that
        // nightly never makes a mailed night again from them.
        let oldest_kept = i64::from(policy.keep_nights.max(policy.max_age_days));
        if tree == Tree::Mail && (night_dir.path().exists() || age_days <= oldest_kept) {
            continue;
        }
        match verdict(age_days, newer, &MailState::of(night_dir.path()), policy) {
            Verdict::Keep => {}
            Verdict::KeepUnsent(reason) => {
                tracing::info!(
                    "night {night}: {age_days} days old (state.keep_nights {}) but kept: {reason}",
                    policy.keep_nights
                );
                out.kept_unsent.push(Kept {
                    night,
                    age_days,
                    reason,
                });
            }
            Verdict::Delete(reason) => match delete_night(&nights_dir, date, &dir) {
                Ok(bytes) => {
                    tracing::info!(
                        "night {night}: deleted {} ({age_days} days old, state.keep_nights {}; \
                         {reason}); {} MB freed",
                        dir.display(),
                        policy.keep_nights,
                        bytes.div_ceil(1_000_000)
                    );
                    out.deleted.push(Deleted {
                        night,
                        age_days,
                        reason,
                        bytes,
                    });
                }
                Err(e) => out.errors.push(e),
            },
        }
    }
    out
}

/// True when retention deleted the night directory `nights/<name>` and would delete it
/// again (mailed or given up, and aged out), `newer` nights coming after it: only
/// capture's files are left (capture deletes them itself, later when it cannot read
/// mail.json), and nightly must not make the night again from them.
#[must_use]
pub fn deleted_before(
    state_dir: &Path,
    name: &str,
    newer: usize,
    policy: Policy,
    today: NaiveDate,
) -> bool {
    let Some(date) = layout::parse_night_name(name) else {
        return false;
    };
    let night = layout::NightDir::of(state_dir, date);
    if night.path().exists() {
        return false;
    }
    let age = (today - date).num_days();
    let mail = MailState::of(night.path());
    matches!(verdict(age, newer, &mail, policy), Verdict::Delete(_))
}

/// What is under a `nights/` directory.
#[derive(Debug, Default)]
struct Listing {
    /// Night directories, oldest first.
    nights: Vec<(NaiveDate, PathBuf)>,
    /// Directories an earlier run left being deleted.
    leftovers: Vec<PathBuf>,
}

/// The night directories and the ones left being deleted under `nights_dir`. Only real
/// directories count: a symlink or file is never a night.
fn list(nights_dir: &Path) -> Result<Listing, String> {
    let rd = match fs::read_dir(nights_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(format!("{}: cannot list nights: {e}", nights_dir.display())),
    };
    let mut nights = Vec::new();
    let mut leftovers = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| format!("{}: {e}", nights_dir.display()))?;
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(date) = layout::parse_night_name(&name) {
            nights.push((date, entry.path()));
        } else if layout::parse_deleting_name(&name).is_some() {
            leftovers.push(entry.path());
        }
    }
    nights.sort();
    leftovers.sort();
    Ok(Listing { nights, leftovers })
}

/// Renames the night out of the way, then removes it; its size in bytes.
fn delete_night(nights_dir: &Path, date: NaiveDate, dir: &Path) -> Result<u64, String> {
    let bytes = tree_bytes(dir);
    let doomed = nights_dir.join(layout::deleting_name(date));
    fs::rename(dir, &doomed).map_err(|e| {
        format!(
            "{}: cannot delete (renaming it to {}): {e}",
            dir.display(),
            doomed.display()
        )
    })?;
    fs::remove_dir_all(&doomed).map_err(|e| {
        format!(
            "{}: cannot delete: {e}; the next run tries again",
            doomed.display()
        )
    })?;
    Ok(bytes)
}

/// Bytes of the files under `dir` (symlinks are not followed).
fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.filter_map(Result::ok) {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests;

//! The spool: every night under `<state>/nights/` whose report is written and not yet
//! sent, sent oldest first, and the size guard that readies a night's message.
//!
//! Invariants: nights are tried in date order; a failure of one night (a 5xx for its
//! message, an unreadable spool) is recorded in its `mail.json` (`reason`) and the run
//! goes on with the later nights, while a failure of the server or the connection
//! ([`MailError::stops_run`]) stops the run (later nights are deferred); a night older than
//! `mail.max_age_days` is given up once, recorded `expired`; a night is sent only
//! under its lock and only when its record does not say `sent`.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use super::ledger::{NightLock, night_name};
use super::smtp::{Delivery, deliver};
use super::{MailError, MailRecord, Result, Settings, Status};
use crate::layout::{self, NightDir, ReportDir};
use crate::message::{Spooled, Trim};

/// What happened to one night.
#[derive(Debug)]
pub enum Outcome {
    /// Delivered in this run.
    Sent {
        night: String,
        delivery: Delivery,
        /// What the size guard left out, if anything.
        note: Option<String>,
    },
    /// Delivered by an earlier run: nothing done.
    AlreadySent {
        night: String,
        message_id: Option<String>,
    },
    /// Never sent and older than `mail.max_age_days`: given up.
    Expired { night: String, age_days: i64 },
    /// No `report/report.eml` (yet): nothing to send.
    NoReport { night: String },
    /// Not delivered; the message stays in the spool for the next run.
    Failed { night: String, error: MailError },
    /// Not tried: the server or the connection failed in this run.
    Deferred { night: String },
}

impl Outcome {
    #[must_use]
    pub fn night(&self) -> &str {
        match self {
            Outcome::Sent { night, .. }
            | Outcome::AlreadySent { night, .. }
            | Outcome::Expired { night, .. }
            | Outcome::NoReport { night }
            | Outcome::Failed { night, .. }
            | Outcome::Deferred { night } => night,
        }
    }

    /// The error of a failed night.
    #[must_use]
    pub fn error(&self) -> Option<&MailError> {
        match self {
            Outcome::Failed { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Sent {
                night,
                delivery,
                note,
            } => {
                write!(
                    f,
                    "{night}: sent via {} ({}), Message-ID {}",
                    delivery.server, delivery.reply, delivery.message_id
                )?;
                if let Some(n) = note {
                    write!(f, "; {n}")?;
                }
                Ok(())
            }
            Outcome::AlreadySent { night, .. } => write!(f, "{night}: already sent"),
            Outcome::Expired { night, age_days } => write!(
                f,
                "{night}: not sent and {age_days} days old (over mail.max_age_days): given up"
            ),
            Outcome::NoReport { night } => write!(f, "{night}: no report to send"),
            Outcome::Failed { night, error } => write!(f, "{night}: not sent: {error}"),
            Outcome::Deferred { night } => {
                write!(
                    f,
                    "{night}: not tried (the server failed for an earlier night); next run"
                )
            }
        }
    }
}

/// The first failure among the outcomes: the CLI exits 1 when there is one.
#[must_use]
pub fn first_failure(outcomes: &[Outcome]) -> Option<&MailError> {
    outcomes.iter().find_map(Outcome::error)
}

/// Sends every unsent night under `<state_dir>/nights/`, oldest first, skipping nights
/// older than `max_age_days` (recorded as expired). A night that fails on its own is
/// [`Outcome::Failed`] and the run goes on; a failure of the server or the connection
/// ([`MailError::stops_run`]) stops it (the later nights are [`Outcome::Deferred`]). A
/// night already sent is never sent again.
///
/// # Errors
/// Only when `<state_dir>/nights` exists but cannot be listed; per-night failures are
/// [`Outcome::Failed`] (see [`first_failure`]).
pub fn send_pending(state_dir: &Path, s: &Settings, now: DateTime<Utc>) -> Result<Vec<Outcome>> {
    let nights = dated_nights(state_dir)?;
    let today = now.with_timezone(&chrono::Local).date_naive();
    let mut out = Vec::new();
    let mut stopped = false;
    for (date, night_dir) in nights {
        let night = night_name(&night_dir);
        if stopped {
            let pending = !matches!(
                MailRecord::load(&night_dir).map(|r| r.status),
                Ok(Status::Sent | Status::Expired)
            );
            if pending && report_eml(&night_dir).exists() {
                out.push(Outcome::Deferred { night });
            }
            continue;
        }
        let age_days = (today - date).num_days();
        if age_days > i64::from(s.max_age_days) {
            out.push(expire(&night_dir, age_days));
            continue;
        }
        let o = send_night(&night_dir, s);
        stopped = o.error().is_some_and(MailError::stops_run);
        out.push(o);
    }
    Ok(out)
}

/// The night directories under `<state_dir>/nights/` named as dates, oldest first.
fn dated_nights(state_dir: &Path) -> Result<Vec<(NaiveDate, PathBuf)>> {
    let dir = layout::nights_dir(state_dir);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(MailError::File {
                path: dir,
                reason: format!("listing nights: {e}"),
            });
        }
    };
    let mut nights: Vec<(NaiveDate, PathBuf)> = rd
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            layout::parse_night_name(&name).map(|d| (d, e.path()))
        })
        .collect();
    nights.sort();
    Ok(nights)
}

/// Records an old unsent night as expired (once, under its lock) and says so.
fn expire(night_dir: &Path, age_days: i64) -> Outcome {
    let night = night_name(night_dir);
    let _lock = match NightLock::acquire(night_dir) {
        Ok(l) => l,
        Err(error) => return Outcome::Failed { night, error },
    };
    match MailRecord::load(night_dir) {
        Ok(r) if r.status == Status::Sent => Outcome::AlreadySent {
            night,
            message_id: r.message_id,
        },
        Ok(_) if !report_eml(night_dir).exists() => Outcome::NoReport { night },
        Ok(mut r) => {
            if r.status != Status::Expired {
                tracing::warn!(
                    night = %night,
                    "the report of {night} was never sent and is {age_days} days old \
                     (mail.max_age_days): giving up on it; it stays in {}",
                    report_eml(night_dir).display()
                );
                r.status = Status::Expired;
                if let Err(e) = r.save(night_dir) {
                    return Outcome::Failed { night, error: e };
                }
            }
            Outcome::Expired { night, age_days }
        }
        Err(error) => Outcome::Failed { night, error },
    }
}

/// Sends one night's `report/report.eml` unless its record says it was sent. No age
/// limit (an explicit `netdigest mail --night ...`).
#[must_use]
pub fn send_night(night_dir: &Path, s: &Settings) -> Outcome {
    let night = night_name(night_dir);
    match send_night_inner(night_dir, &night, s) {
        Ok(o) => o,
        Err(error) => {
            match &error {
                MailError::Smtp(f) if f.kind.is_transient() => {
                    tracing::warn!(night = %night, "report not sent: {error}");
                }
                _ => tracing::error!(night = %night, "report not sent: {error}"),
            }
            record_failure(night_dir, &night, &error);
            Outcome::Failed { night, error }
        }
    }
}

/// Writes why a night was not delivered into its `mail.json` (`reason`; `status`
/// `failed` for a night that never reached the server), so the night sits in the spool
/// with a one-line reason. Not for a night another process holds, nor one since sent.
fn record_failure(night_dir: &Path, night: &str, error: &MailError) {
    if matches!(error, MailError::Locked { .. }) {
        return;
    }
    let Ok(_lock) = NightLock::acquire(night_dir) else {
        return;
    };
    let mut r = match MailRecord::load(night_dir) {
        Ok(r) if matches!(r.status, Status::Sent | Status::Expired) => return,
        Ok(r) => r,
        // The record itself is what is wrong (already in `error`): nothing to add to.
        Err(_) => return,
    };
    r.night = night.to_string();
    r.reason = Some(error.one_line());
    if r.status == Status::Pending && error.smtp().is_none() {
        r.status = Status::Failed;
    }
    if let Err(e) = r.save(night_dir) {
        tracing::error!(night = %night, "recording why {night} was not sent: {e}");
    }
}

fn send_night_inner(night_dir: &Path, night: &str, s: &Settings) -> Result<Outcome> {
    // The record is read (and a corrupt one moved aside) only under the lock.
    let _lock = NightLock::acquire(night_dir)?;
    let mut record = MailRecord::load(night_dir)?;
    if let Some(done) = already_sent(&record, night) {
        return Ok(done);
    }
    if !report_eml(night_dir).exists() {
        return Ok(Outcome::NoReport {
            night: night.to_string(),
        });
    }
    let spooled = Spooled::load(&report_dir(night_dir)).map_err(|e| MailError::spool(night, &e))?;
    record.night = night.to_string();
    if record.status == Status::Sending {
        tracing::warn!(
            night = %night,
            "the previous run stopped while sending {night}; the server may have taken it: \
             sending again with the same Message-ID ({}), which Gmail files only once",
            record.message_id.as_deref().unwrap_or("?")
        );
        record.mark_interrupted();
    }
    let prepared = prepare(&spooled, s, night)?;
    record.message_id = Some(prepared.message_id.clone());
    record.note.clone_from(&prepared.note);
    if let Some(n) = &prepared.note {
        tracing::warn!(night = %night, "{n}");
    }
    let delivery = deliver_recorded(night_dir, night, s, &prepared, record)?;
    tracing::info!(
        night = %night,
        server = %delivery.server,
        message_id = %delivery.message_id,
        reply = %delivery.reply,
        attempts = delivery.attempts,
        "report sent"
    );
    Ok(Outcome::Sent {
        night: night.to_string(),
        delivery,
        note: prepared.note,
    })
}

/// The night's report directory, where the report stage spools the message.
fn report_dir(night_dir: &Path) -> ReportDir {
    ReportDir::new(NightDir::new(night_dir).report_dir())
}

/// The report stage's last file: once it exists, the night's message is spooled.
fn report_eml(night_dir: &Path) -> PathBuf {
    NightDir::new(night_dir).report_eml()
}

/// [`Outcome::AlreadySent`] when the night's record says it was sent.
fn already_sent(r: &MailRecord, night: &str) -> Option<Outcome> {
    (r.status == Status::Sent).then(|| Outcome::AlreadySent {
        night: night.to_string(),
        message_id: r.message_id.clone(),
    })
}

/// Sends the prepared message, writing `mail.json` before each attempt (`sending`)
/// and right after it (`sent`, or how it failed).
fn deliver_recorded(
    night_dir: &Path,
    night: &str,
    s: &Settings,
    prepared: &Prepared,
    record: MailRecord,
) -> Result<Delivery> {
    let size = prepared.bytes.len() as u64;
    let server = s.server();
    // Both closures update the record in turn.
    let record = std::cell::RefCell::new(record);
    deliver(
        s,
        &prepared.bytes,
        &prepared.message_id,
        |_| {
            let mut r = record.borrow_mut();
            r.begin_attempt(&server, &prepared.message_id, size);
            // Before the server sees the message: a crash from here on leaves `sending`.
            r.save(night_dir)
        },
        |_, res| {
            let mut r = record.borrow_mut();
            r.finish_attempt(res);
            // Right after the server's 250: from here on the night is never sent again.
            match r.save(night_dir) {
                Err(e) if r.status == Status::Sent => {
                    // Delivered all the same: say so rather than report a failure.
                    tracing::error!(
                        night = %night,
                        "{night} was sent but recording it failed ({e}): the next run may send it again"
                    );
                    Ok(())
                }
                other => other,
            }
        },
    )
}

// ---------------------------------------------------------------------------
// Preparing the spooled message: addresses from the config, size guard

/// The bytes to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub bytes: Vec<u8>,
    pub message_id: String,
    /// What the size guard left out.
    pub note: Option<String>,
}

/// Readies a spooled message for sending: From/To/Cc/Reply-To from the settings (the
/// config at send time wins, so a fixed `mail.to` applies to an unsent night), the
/// Message-ID, subject and date as the report stage wrote them (a resend after a crash
/// carries the same Message-ID), and the size guard: a message larger than
/// `mail.max_size_mb` loses its attachment, then (if still too large) its images, and
/// gains a note saying so as the first part the reader sees.
///
/// # Errors
/// A part of the spooled message that lettre refuses.
pub fn prepare(spooled: &Spooled, s: &Settings, night: &str) -> Result<Prepared> {
    let to = &s.addresses;
    let build = |trim: Trim| {
        spooled
            .to_bytes(to, trim)
            .map_err(|e| MailError::spool(night, &e))
    };
    let message_id = spooled.heading.message_id.clone();
    let bytes = build(Trim::default())?;
    let limit = s.max_size_bytes;
    if bytes.len() as u64 <= limit {
        return Ok(Prepared {
            bytes,
            message_id,
            note: None,
        });
    }
    let (attachments, images) = spooled.counts();
    let mut trim = Trim {
        attachment: true,
        ..Trim::default()
    };
    let images = if build(trim)?.len() as u64 > limit {
        trim.images = true;
        images
    } else {
        0
    };
    let note = size_note(bytes.len() as u64, limit, attachments, images, night);
    if attachments + images == 0 {
        tracing::warn!("{note}: sending it as it is");
        return Ok(Prepared {
            bytes,
            message_id,
            note: Some(note),
        });
    }
    trim.note = Some(&note);
    let bytes = build(trim)?;
    Ok(Prepared {
        bytes,
        message_id,
        note: Some(note),
    })
}

/// What the size guard says it left out of a message of `original` bytes.
fn size_note(original: u64, limit: u64, attachments: usize, images: usize, night: &str) -> String {
    let mut left_out = Vec::new();
    if attachments > 0 {
        left_out.push(format!("{attachments} attachment(s)"));
    }
    if images > 0 {
        left_out.push(format!("{images} chart image(s)"));
    }
    let mb = |n: u64| format!("{}.{} MB", n / 1_000_000, n % 1_000_000 / 100_000);
    if left_out.is_empty() {
        return format!(
            "the message is {} (limit {}) and has nothing to leave out",
            mb(original),
            mb(limit)
        );
    }
    format!(
        "the message was {} (limit {}, mail.max_size_mb), so {} left out; the full \
         report is in {}/{night}/{}/ on the netdigest machine",
        mb(original),
        mb(limit),
        left_out.join(" and ")
            + if attachments + images == 1 {
                " was"
            } else {
                " were"
            },
        layout::NIGHTS_DIR,
        layout::REPORT_DIR,
    )
}

//! The delivery record of a night, `<night>/mail.json`, and the per-night lock
//! `<night>/mail.lock` (flock(2), [`crate::lock`]) that keeps two processes from
//! sending the same night.
//!
//! # Never twice
//! `mail.json` is written (fsync + rename) with `status = "sending"` and the
//! Message-ID *before* the message is handed to the server, and with
//! `status = "sent"` right after the server's final `250`. A night whose record says
//! `sent` is never sent again. A run that finds `sending` knows that the previous one
//! stopped mid-attempt; it sends the same message again, with the same Message-ID.
//!
//! The one remaining window: the server has accepted the message (its `250` is on the
//! wire) but the `sent` record is not yet on disk, because the process dies, the
//! power goes, or the connection drops before the `250` reaches us (RFC 1047's
//! duplicate-message problem; a dropped connection must be retried, or a message the
//! server did *not* take would be lost). The next attempt then delivers a second copy
//! with the same Message-ID. Gmail files a message whose Message-ID is already in the
//! mailbox only once, so a Gmail recipient still sees one; other mailboxes may show
//! two. `mail.json` marks such an attempt `interrupted` or `transient` with the phase
//! (`message`: the body had been sent), so it can be told apart afterwards.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{MailError, Phase, Result, SmtpFailure};
use crate::fsutil::{move_aside, write_atomic};
use crate::layout::NightDir;
use crate::lock::FileLock;

/// Where a night stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not sent yet (never tried, or the last run failed transiently).
    #[default]
    Pending,
    /// An attempt was in flight when the record was written; found at the start of a
    /// run, it means the previous run stopped mid-attempt.
    Sending,
    /// The server accepted the message. Never sent again.
    Sent,
    /// The last attempt failed permanently; retried by the next run (after a fix).
    Failed,
    /// Older than `mail.max_age_days` and never sent: given up.
    Expired,
}

/// The result of one attempt as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    InProgress,
    Sent,
    Transient,
    Permanent,
    /// The process stopped during the attempt (found `in_progress` by a later run).
    Interrupted,
}

/// One attempt in `mail.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub started: DateTime<Utc>,
    #[serde(default)]
    pub finished: Option<DateTime<Utc>>,
    pub server: String,
    pub message_id: String,
    pub bytes: u64,
    pub result: AttemptResult,
    /// Where it failed.
    #[serde(default)]
    pub phase: Option<Phase>,
    /// The server's reply, or the network error.
    #[serde(default)]
    pub reply: Option<String>,
}

/// `<night>/mail.json`: the delivery record of a night.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MailRecord {
    pub night: String,
    pub status: Status,
    /// Message-ID of the message sent (or being sent).
    pub message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The server's reply to the delivered message.
    pub reply: Option<String>,
    /// What the size guard left out, if anything.
    pub note: Option<String>,
    /// Why the last run did not deliver it (one line), until it is delivered.
    pub reason: Option<String>,
    pub attempts: Vec<Attempt>,
}

impl MailRecord {
    /// Reads `<night>/mail.json`; a missing file is a fresh record. A file that does
    /// not parse is moved aside (`mail.json.corrupt-<time>`) with a warning and the
    /// night starts a fresh record whose `reason` says so: the report is sent again
    /// with its Message-ID from the spool, which a mailbox that already has it (Gmail)
    /// files only once.
    ///
    /// # Errors
    /// The file exists but cannot be read, or a corrupt one cannot be moved aside.
    pub fn load(night_dir: &Path) -> Result<MailRecord> {
        let path = NightDir::new(night_dir).mail_json();
        let fresh = || MailRecord {
            night: night_name(night_dir),
            ..MailRecord::default()
        };
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(r) => Ok(r),
                Err(e) => {
                    let aside = move_aside(&path).map_err(|m| MailError::Spool {
                        night: night_name(night_dir),
                        reason: format!(
                            "{}: unreadable delivery record ({e}) that cannot be moved aside ({m})",
                            path.display()
                        ),
                    })?;
                    let why = format!(
                        "{}: unreadable delivery record ({e}), moved aside to {}",
                        path.display(),
                        aside.display()
                    );
                    tracing::warn!(night = %night_name(night_dir), "{why}; starting a fresh record");
                    Ok(MailRecord {
                        reason: Some(why),
                        ..fresh()
                    })
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(fresh()),
            Err(e) => Err(MailError::File {
                path,
                reason: e.to_string(),
            }),
        }
    }

    /// Writes `<night>/mail.json` atomically (fsync, rename, fsync of the directory).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, night_dir: &Path) -> Result<()> {
        let path = NightDir::new(night_dir).mail_json();
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| MailError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        let dir = NightDir::new(night_dir).mail_dir();
        std::fs::create_dir_all(&dir)
            .and_then(|()| write_atomic(&path, &json))
            .map_err(|e| MailError::File {
                path,
                reason: format!("writing the delivery record: {e}"),
            })
    }
}

impl MailRecord {
    /// Marks attempts left `in_progress` by a run that stopped as `interrupted`.
    pub(super) fn mark_interrupted(&mut self) {
        for a in &mut self.attempts {
            if a.result == AttemptResult::InProgress {
                a.result = AttemptResult::Interrupted;
            }
        }
    }

    /// Records an attempt about to start: `sending`, with the attempt `in_progress`.
    pub(super) fn begin_attempt(&mut self, server: &str, message_id: &str, bytes: u64) {
        self.status = Status::Sending;
        self.attempts.push(Attempt {
            started: Utc::now(),
            finished: None,
            server: server.to_string(),
            message_id: message_id.to_string(),
            bytes,
            result: AttemptResult::InProgress,
            phase: None,
            reply: None,
        });
    }

    /// Records how the last attempt ended: the server's final reply, or the failure.
    pub(super) fn finish_attempt(&mut self, res: &std::result::Result<String, SmtpFailure>) {
        let finished = Utc::now();
        let (status, result, phase, reply) = match res {
            Ok(reply) => (Status::Sent, AttemptResult::Sent, None, reply.clone()),
            Err(f) if f.kind.is_transient() => (
                Status::Pending,
                AttemptResult::Transient,
                Some(f.phase),
                f.reply.clone(),
            ),
            Err(f) => (
                Status::Failed,
                AttemptResult::Permanent,
                Some(f.phase),
                f.reply.clone(),
            ),
        };
        if let Some(a) = self.attempts.last_mut() {
            a.finished = Some(finished);
            a.result = result;
            a.phase = phase;
            a.reply = Some(reply.clone());
        }
        self.status = status;
        if status == Status::Sent {
            self.sent_at = Some(finished);
            self.reply = Some(reply);
            self.reason = None;
        }
    }
}

pub(super) fn night_name(night_dir: &Path) -> String {
    night_dir.file_name().map_or_else(
        || night_dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `<night>/mail.lock`, flock(2)ed while the night is being sent (see [`crate::lock`]):
/// released when dropped or when the process ends, however it ends.
pub(super) struct NightLock {
    _lock: FileLock,
}

impl NightLock {
    pub(super) fn acquire(night_dir: &Path) -> Result<NightLock> {
        let path = NightDir::new(night_dir).mail_lock();
        if let Err(e) = std::fs::create_dir_all(NightDir::new(night_dir).mail_dir()) {
            return Err(MailError::File {
                path,
                reason: format!("creating its directory: {e}"),
            });
        }
        match FileLock::acquire(&path, Duration::from_secs(1)) {
            Ok(Ok(lock)) => Ok(NightLock { _lock: lock }),
            Ok(Err(busy)) => Err(MailError::Locked {
                night: night_name(night_dir),
                pid: busy.pid.unwrap_or(0),
                path,
            }),
            Err(e) => Err(MailError::File {
                path,
                reason: format!("taking the lock: {e}"),
            }),
        }
    }
}

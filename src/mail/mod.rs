//! Mail: delivers each night's report over SMTP exactly once.
//!
//! The report stage spools the message in `<night>/report/` (see [`crate::message`]:
//! the parts, `message.json`, and `report.eml` written last). This module builds the
//! message from those files with the addresses of the config at send time, sends it
//! with lettre's SMTP client (rustls only, no OpenSSL, no sendmail) and records every
//! attempt in `<night>/mail.json`.
//!
//! - [`settings`]: the `[mail]` config resolved: server preset, TLS mode, password
//!   sources, addresses.
//! - [`smtp`]: one SMTP exchange, retries with backoff, failures with the server's
//!   words and the fix.
//! - [`ledger`]: `mail.json` and the per-night lock; the exactly-once rule and its one
//!   remaining window are documented there.
//! - [`spool`]: the nights to send, oldest first, and the size guard.
//!
//! Every path comes from [`crate::layout`]: `report/report.eml` (the report is
//! complete), `mail.json` and `mail.lock` in the night directory.
//!
//! # Delivery rules
//! - Transient failures (4xx replies, and network errors with no reply at all, such
//!   as a dropped connection or a refused connect) are retried with exponential
//!   backoff and jitter, up to [`RetryPolicy::attempts`] in one run.
//! - Permanent failures (5xx: bad credentials, a refused recipient), TLS trust
//!   failures and client-side refusals are not retried in the run, and are reported
//!   with the server's words and the fix. The message stays in the spool, with the
//!   reason in `mail.json`.
//! - [`send_pending`] sends every unsent night, oldest first, up to
//!   `mail.max_age_days` old. A failure of one night (a 5xx for its message, an
//!   unreadable spool) does not hold back the later nights; a failure of the server
//!   or the connection ([`MailError::stops_run`]) stops the run (the next run picks
//!   the nights up again).
//! - A night whose `mail.json` says `sent` is never sent again (see [`ledger`]).
//!
//! # Secrets
//! The password is read from `mail.password_file`, the systemd credential
//! `smtp-password` in `$CREDENTIALS_DIRECTORY`, or `mail.password`
//! (`NETDIGEST_MAIL__PASSWORD`, warned about once), in that order. It is held in a
//! [`Secret`](crate::config::Secret) and handed only to lettre's `Credentials`, whose
//! `Debug` redacts it; it never appears in a log line, an error, `mail.json` or `Debug`
//! output.

pub mod ledger;
pub mod settings;
pub mod smtp;
pub mod spool;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use ledger::{Attempt, AttemptResult, MailRecord, Status};
pub use settings::{RetryPolicy, Security, Settings};
pub use smtp::{Delivery, FailureKind, LoginCheck, Phase, SmtpFailure, check_login, send_test};
pub use spool::{Outcome, Prepared, first_failure, prepare, send_night, send_pending};

use crate::config::ConfigError;
use crate::message::MessageError;

/// Name of the systemd credential holding the password (`LoadCredential=smtp-password:...`).
pub const CREDENTIAL_NAME: &str = "smtp-password";
/// Default size limit: Gmail refuses messages over 25 MB.
pub const DEFAULT_MAX_SIZE_MB: u64 = 25;
/// Default timeout for the connect and for each SMTP command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the mail stage. [`crate::exit::of_error`] maps them to the exit code: 2 for
/// [`MailError::Config`], 1 for the others.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A missing or invalid mail setting (exit code 2).
    #[error(transparent)]
    Config(ConfigError),
    /// A file that could not be read or written.
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    /// A night's spool or record is unusable.
    #[error("night {night}: {reason}")]
    Spool { night: String, reason: String },
    /// Another process is sending this night right now.
    #[error(
        "night {night} is being mailed by another netdigest process (pid {pid}, holding {})",
        path.display()
    )]
    Locked {
        night: String,
        pid: u32,
        path: PathBuf,
    },
    /// The SMTP server refused, or could not be reached.
    #[error("{0}")]
    Smtp(SmtpFailure),
}

pub type Result<T, E = MailError> = std::result::Result<T, E>;

impl MailError {
    /// True when trying again later may succeed without changing anything.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            MailError::Smtp(f) => f.kind.is_transient(),
            MailError::Locked { .. } => true,
            _ => false,
        }
    }

    /// True when the failure is the server's or the connection's, not one night's: a
    /// transient reply (4xx such as 421) or no reply at all (refused connect, dropped
    /// connection), a TLS failure, a client-side refusal, or a failure before the
    /// message (connect, STARTTLS, login). Every later night would fail the same way,
    /// so [`send_pending`] stops there. A 5xx for one message, and a night whose spool
    /// or record is unusable, are that night's alone: the run goes on.
    #[must_use]
    pub fn stops_run(&self) -> bool {
        match self {
            MailError::Smtp(f) => {
                f.kind.is_transient()
                    || matches!(f.kind, FailureKind::Tls | FailureKind::Client)
                    || matches!(f.phase, Phase::Connect | Phase::Starttls | Phase::Login)
            }
            MailError::Config(_) => true,
            MailError::File { .. } | MailError::Spool { .. } | MailError::Locked { .. } => false,
        }
    }

    /// The error as one line, for `mail.json`'s `reason`.
    #[must_use]
    pub fn one_line(&self) -> String {
        self.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A spooled message that cannot be read back, as an error of that night.
    pub(crate) fn spool(night: &str, e: &MessageError) -> MailError {
        MailError::Spool {
            night: night.to_string(),
            reason: e.to_string(),
        }
    }

    /// The SMTP failure, if this is one.
    #[must_use]
    pub fn smtp(&self) -> Option<&SmtpFailure> {
        match self {
            MailError::Smtp(f) => Some(f),
            _ => None,
        }
    }
}

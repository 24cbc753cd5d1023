//! Exit codes: the one map from what happened to the process's exit status.
//!
//! | code | [`Exit`] | meaning |
//! |---|---|---|
//! | 0 | `Done` | the job was done (warnings are logged) |
//! | 1 | `Failed` | something failed: damage in a capture, a night not processed, a message not sent |
//! | 2 | `Usage` | the command line or the configuration is wrong: nothing was attempted |
//!
//! Commands return an [`Exit`]; errors that end a command are mapped by [`of_error`],
//! the only place that decides which errors are the user's to fix (2) rather than
//! failures (1).

use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: done.
    Done,
    /// 1: failed.
    Failed,
    /// 2: usage or configuration error.
    Usage,
}

impl Exit {
    /// The numeric exit status.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
        }
    }

    /// `Done` when `ok`, else `Failed`.
    #[must_use]
    pub const fn from_ok(ok: bool) -> Exit {
        if ok { Exit::Done } else { Exit::Failed }
    }

    /// The worse of two outcomes (a usage error over a failure over done), for commands
    /// that do several things.
    #[must_use]
    pub fn and(self, other: Exit) -> Exit {
        self.max(other)
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The exit status of a command that ended with this error: [`Exit::Usage`] when the
/// error (or any error it wraps) is a configuration or usage error, else
/// [`Exit::Failed`].
#[must_use]
pub fn of_error(e: &anyhow::Error) -> Exit {
    let usage = e.chain().any(|cause| {
        cause.is::<crate::config::ConfigError>()
            || cause
                .downcast_ref::<crate::capture::CaptureError>()
                .is_some_and(is_capture_usage)
            || cause
                .downcast_ref::<crate::mail::MailError>()
                .is_some_and(is_mail_usage)
            || cause
                .downcast_ref::<crate::units::UnitsError>()
                .is_some_and(|u| matches!(u, crate::units::UnitsError::Config(_)))
    });
    if usage { Exit::Usage } else { Exit::Failed }
}

/// A capture that could not start because of its configuration or filter.
fn is_capture_usage(e: &crate::capture::CaptureError) -> bool {
    use crate::capture::CaptureError as C;
    matches!(e, C::Config { .. } | C::Filter { .. })
}

/// Mail settings that are wrong (no server, a bad address, ...).
fn is_mail_usage(e: &crate::mail::MailError) -> bool {
    matches!(e, crate::mail::MailError::Config(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_worst_outcome() {
        assert_eq!(Exit::Done.code(), 0);
        assert_eq!(Exit::Failed.code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
        assert_eq!(Exit::Done.and(Exit::Failed), Exit::Failed);
        assert_eq!(Exit::Usage.and(Exit::Failed), Exit::Usage);
    }

    #[test]
    fn config_errors_are_usage_wherever_they_are_wrapped() {
        let e = anyhow::Error::from(crate::config::ConfigError::Invalid {
            key: "capture.start",
            reason: "bad".into(),
        })
        .context("loading");
        assert_eq!(of_error(&e), Exit::Usage);
        assert_eq!(of_error(&anyhow::anyhow!("disk full")), Exit::Failed);
    }
}

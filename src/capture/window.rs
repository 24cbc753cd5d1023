//! The capture window, DST-safe: the configured daily `start..end` in the window's time
//! zone ([`Zone`]: `capture.timezone` or the system's), or an ad-hoc `--for`/`--until`
//! window. The times of day and the zone are the config's typed values, parsed at load.
//!
//! Invariants: a window is `[start, end)` in UTC and belongs to one *night*, the local
//! date its configured start falls on (a capture started late, at 01:00, belongs to last
//! night's window and ends at its normal end). A local time skipped by a DST change
//! becomes the first valid minute after it; a repeated one is its first occurrence for a
//! start and its second for an end.

use std::fmt;

use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};

use super::{CaptureError, CaptureOptions};
use crate::config::{Config, Zone};

/// Where a window came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSource {
    Config,
    For,
    Until,
}

impl fmt::Display for WindowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WindowSource::Config => "config",
            WindowSource::For => "for",
            WindowSource::Until => "until",
        })
    }
}

/// A capture window: `[start, end)` and the night it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub night: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub source: WindowSource,
}

/// Whether `now` is inside the configured daily window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowPlan {
    Inside(Window),
    Outside { next_start: DateTime<Utc> },
}

/// The configured daily window `start_min..end_min` (minutes after local midnight; the
/// end is on the next day when it is not after the start) that contains `now`, or the
/// next start. A capture started late (the Pi booted at 01:00) gets the window that is
/// running, ending at its normal end.
#[must_use]
pub fn plan_window(zone: &Zone, now: DateTime<Utc>, start_min: u32, end_min: u32) -> WindowPlan {
    let today = zone.to_local(now).date_naive();
    let window_of = |d: NaiveDate| {
        let start = zone.instant(d, start_min, true);
        let end_day = if end_min <= start_min {
            d.checked_add_days(Days::new(1)).unwrap_or(d)
        } else {
            d
        };
        let end = zone.instant(end_day, end_min, false);
        Window {
            night: d,
            start,
            end,
            source: WindowSource::Config,
        }
    };
    let mut next: Option<DateTime<Utc>> = None;
    for delta in [-1i64, 0, 1] {
        let Some(d) = today.checked_add_signed(chrono::Duration::days(delta)) else {
            continue;
        };
        let w = window_of(d);
        if w.start <= now && now < w.end {
            return WindowPlan::Inside(w);
        }
        if w.start > now && next.is_none_or(|n| w.start < n) {
            next = Some(w.start);
        }
    }
    WindowPlan::Outside {
        next_start: next.unwrap_or(now),
    }
}

/// The next instant after `now` when the local clock shows `minutes` after midnight.
#[must_use]
pub fn next_local_time(zone: &Zone, now: DateTime<Utc>, minutes: u32) -> DateTime<Utc> {
    let today = zone.to_local(now).date_naive();
    for delta in 0..=2u64 {
        if let Some(d) = today.checked_add_days(Days::new(delta)) {
            let t = zone.instant(d, minutes, false);
            if t > now {
                return t;
            }
        }
    }
    now
}

/// The window for this run: `--for`, `--until` or the config's. `None`: outside the
/// configured window (with its next start). For `--for`/`--until`, the night is the
/// configured window's night when `now` is inside it (a capture at 01:00 belongs to
/// last night), else the local date of `now`.
///
/// # Errors
/// Both `--for` and `--until`, or a `--for` that is not a positive duration.
pub fn resolve_window(
    cfg: &Config,
    opts: &CaptureOptions,
    zone: &Zone,
    now: DateTime<Utc>,
) -> Result<Result<Window, DateTime<Utc>>, CaptureError> {
    let start_min = cfg.capture.start.minutes();
    let end_min = cfg.capture.end.minutes();
    let plan = plan_window(zone, now, start_min, end_min);
    let adhoc_night = match &plan {
        WindowPlan::Inside(w) => w.night,
        WindowPlan::Outside { .. } => zone.to_local(now).date_naive(),
    };
    match (opts.duration, &opts.until) {
        (Some(_), Some(_)) => Err(CaptureError::Config {
            key: "--for/--until",
            reason: "give one of --for and --until, not both".into(),
        }),
        (Some(d), None) => {
            let d = chrono::Duration::from_std(d).map_err(|e| CaptureError::Config {
                key: "--for",
                reason: e.to_string(),
            })?;
            if d <= chrono::Duration::zero() {
                return Err(CaptureError::Config {
                    key: "--for",
                    reason: "must be longer than zero".into(),
                });
            }
            Ok(Ok(Window {
                night: adhoc_night,
                start: now,
                end: now + d,
                source: WindowSource::For,
            }))
        }
        (None, Some(u)) => Ok(Ok(Window {
            night: adhoc_night,
            start: now,
            end: next_local_time(zone, now, u.minutes()),
            source: WindowSource::Until,
        })),
        (None, None) => Ok(match plan {
            WindowPlan::Inside(w) => Ok(w),
            WindowPlan::Outside { next_start } => Err(next_start),
        }),
    }
}

/// `t` in RFC 3339 with milliseconds, at the zone's offset (the times in `capture.json`).
pub(super) fn rfc3339_local(t: DateTime<Utc>, zone: &Zone) -> String {
    zone.to_local(t)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

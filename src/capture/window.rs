//! The capture window, DST-safe: the configured daily `start..end` in the window's time
//! zone (`capture.timezone` or the system's), or an ad-hoc `--for`/`--until` window.
//!
//! Invariants: a window is `[start, end)` in UTC and belongs to one *night*, the local
//! date its configured start falls on (a capture started late, at 01:00, belongs to last
//! night's window and ends at its normal end). A local time skipped by a DST change
//! becomes the first valid minute after it; a repeated one is its first occurrence for a
//! start and its second for an end.

use std::fmt;

use chrono::{
    DateTime, Days, FixedOffset, Local, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc,
};

use super::{CaptureError, CaptureOptions};
use crate::config::{self, Config};

/// The time zone of the window: `capture.timezone` or the system's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    System,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// From `capture.timezone` (an IANA name) or the system's zone when unset.
    ///
    /// # Errors
    /// An unknown zone name.
    pub fn from_config(tz: Option<&str>) -> Result<Zone, String> {
        match tz {
            None => Ok(Zone::System),
            Some(name) => name
                .parse::<chrono_tz::Tz>()
                .map(Zone::Named)
                .map_err(|_| format!("unknown time zone {name:?}")),
        }
    }

    /// Name for `capture.json`.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Zone::System => "system".into(),
            Zone::Named(tz) => tz.name().into(),
        }
    }

    #[must_use]
    pub fn to_local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self {
            Zone::System => t.with_timezone(&Local).fixed_offset(),
            Zone::Named(tz) => t.with_timezone(tz).fixed_offset(),
        }
    }

    /// The instant of local `date` at `minutes` after midnight. A time skipped by a DST
    /// change becomes the first valid minute after it; a repeated time is its first
    /// occurrence when `earliest`, else its second.
    #[must_use]
    pub fn instant(&self, date: NaiveDate, minutes: u32, earliest: bool) -> DateTime<Utc> {
        match self {
            Zone::System => resolve_local(&Local, date, minutes, earliest),
            Zone::Named(tz) => resolve_local(tz, date, minutes, earliest),
        }
    }
}

fn resolve_local<T: TimeZone>(
    tz: &T,
    date: NaiveDate,
    minutes: u32,
    earliest: bool,
) -> DateTime<Utc> {
    let midnight = NaiveDateTime::from(date);
    let mut naive = midnight + chrono::Duration::minutes(i64::from(minutes));
    for _ in 0..=(24 * 60) {
        let found = tz.from_local_datetime(&naive);
        let pick = if earliest {
            found.earliest()
        } else {
            found.latest()
        };
        if let Some(t) = pick {
            return t.with_timezone(&Utc);
        }
        naive += chrono::Duration::minutes(1);
    }
    // No valid local time within a day: cannot happen with real zones.
    Utc.from_utc_datetime(&naive)
}

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
/// Both `--for` and `--until`, or a value that does not parse.
pub fn resolve_window(
    cfg: &Config,
    opts: &CaptureOptions,
    zone: &Zone,
    now: DateTime<Utc>,
) -> Result<Result<Window, DateTime<Utc>>, CaptureError> {
    let start_min =
        config::parse_hhmm(&cfg.capture.start).map_err(|reason| CaptureError::Config {
            key: "capture.start",
            reason,
        })?;
    let end_min = config::parse_hhmm(&cfg.capture.end).map_err(|reason| CaptureError::Config {
        key: "capture.end",
        reason,
    })?;
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
        (None, Some(u)) => {
            let m = config::parse_hhmm(u).map_err(|reason| CaptureError::Config {
                key: "--until",
                reason,
            })?;
            Ok(Ok(Window {
                night: adhoc_night,
                start: now,
                end: next_local_time(zone, now, m),
                source: WindowSource::Until,
            }))
        }
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

//! The report's time zone, resolved once per analysis: labels, bin alignment and the
//! night's date are computed in it.

use chrono::{DateTime, Offset, TimeZone as _, Utc};

use super::{AnalyseError, Result};

/// Resolved time zone: an IANA zone, or the system's local time (`TZ`, /etc/localtime).
#[derive(Debug, Clone, Copy)]
pub(super) enum Zone {
    Local,
    Tz(chrono_tz::Tz),
}

impl Zone {
    pub(super) fn parse(name: Option<&str>) -> Result<Self> {
        match name {
            None => Ok(Zone::Local),
            Some(n) => n
                .parse::<chrono_tz::Tz>()
                .map(Zone::Tz)
                .map_err(|_| AnalyseError::TimeZone(n.to_string())),
        }
    }

    pub(super) fn name(self) -> String {
        match self {
            Zone::Local => "local".into(),
            Zone::Tz(tz) => tz.name().to_string(),
        }
    }

    /// UTC offset in seconds at an instant.
    pub(super) fn offset_s(self, ts_ns: i64) -> i64 {
        match self {
            Zone::Local => {
                let utc = DateTime::<Utc>::from_timestamp_nanos(ts_ns);
                i64::from(
                    chrono::Local
                        .offset_from_utc_datetime(&utc.naive_utc())
                        .local_minus_utc(),
                )
            }
            Zone::Tz(tz) => {
                let utc = DateTime::<Utc>::from_timestamp_nanos(ts_ns);
                i64::from(
                    tz.offset_from_utc_datetime(&utc.naive_utc())
                        .fix()
                        .local_minus_utc(),
                )
            }
        }
    }

    pub(super) fn format(self, ts_ns: i64) -> String {
        let utc = DateTime::<Utc>::from_timestamp_nanos(ts_ns);
        match self {
            Zone::Local => utc
                .with_timezone(&chrono::Local)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            Zone::Tz(tz) => utc
                .with_timezone(&tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

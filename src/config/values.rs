//! Typed config values, parsed once when the configuration is loaded: a bad value is an
//! error that names its key (figment adds the key and the source to the message), and
//! nothing downstream parses a config string again.
//!
//! Each type reads from the text a person writes (`"22:00"`, `"10m"`, `"Europe/Berlin"`,
//! `"starttls"`) and writes the same text back, so `print-config` and the defaults
//! round-trip.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a config value's text was refused (the message names the value and the forms
/// that are accepted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(String);

/// Serde through `FromStr` (the error text becomes figment's message) and `Display`.
macro_rules! serde_via_str {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A time of day on the 24-hour clock, written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// `hour:minute`; `None` outside 00:00..=23:59.
    #[must_use]
    pub const fn new(hour: u32, minute: u32) -> Option<TimeOfDay> {
        if hour > 23 || minute > 59 {
            return None;
        }
        // At most 23 * 60 + 59 = 1439: fits.
        #[expect(clippy::cast_possible_truncation, reason = "at most 1439")]
        Some(TimeOfDay((hour * 60 + minute) as u16))
    }
    /// Minutes after midnight (0..1440).
    #[must_use]
    pub const fn minutes(self) -> u32 {
        self.0 as u32
    }
    #[must_use]
    pub const fn hour(self) -> u32 {
        self.minutes() / 60
    }
    #[must_use]
    pub const fn minute(self) -> u32 {
        self.minutes() % 60
    }
}

impl ReportSection {
    /// The sections shown when `report.sections` is not set, in order.
    pub const DEFAULT: &'static [ReportSection] = &[
        ReportSection::Pings,
        ReportSection::Totals,
        ReportSection::Timeline,
        ReportSection::Protocols,
        ReportSection::Talkers,
        ReportSection::Devices,
        ReportSection::TalkedTo,
        ReportSection::History,
    ];
}

impl FromStr for TimeOfDay {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let bad = || ValueError(format!("{s:?} is not a time of day HH:MM (24-hour clock)"));
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        let h: u32 = h.trim().parse().map_err(|_| bad())?;
        let m: u32 = m.trim().parse().map_err(|_| bad())?;
        TimeOfDay::new(h, m).ok_or_else(bad)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour(), self.minute())
    }
}

serde_via_str!(TimeOfDay);

/// A length of time written `"30s"`, `"10m"` (or `"10min"`) or `"1h"`; at least a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval(u64);

impl Interval {
    /// Ten minutes: the report's default timeline bin.
    pub const TEN_MINUTES: Interval = Interval(600);
    /// `secs` seconds; `None` for zero.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Option<Interval> {
        if secs == 0 {
            None
        } else {
            Some(Interval(secs))
        }
    }
    #[must_use]
    pub const fn secs(self) -> u64 {
        self.0
    }
}

impl FromStr for Interval {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let bad = || {
            ValueError(format!(
                "{s:?} is not an interval such as \"10m\", \"1h\" or \"30s\""
            ))
        };
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = t.split_at(split);
        let n: u64 = n.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => n,
            "m" | "min" => n.checked_mul(60).ok_or_else(bad)?,
            "h" => n.checked_mul(3600).ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        Interval::from_secs(secs).ok_or_else(bad)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

serde_via_str!(Interval);

/// An IANA time zone name as written in the config (`"Europe/Berlin"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneName(pub chrono_tz::Tz);

impl FromStr for ZoneName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        s.parse::<chrono_tz::Tz>().map(ZoneName).map_err(|_| {
            ValueError(format!(
                "unknown time zone {s:?} (use an IANA name such as \"Europe/Berlin\")"
            ))
        })
    }
}

impl fmt::Display for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

serde_via_str!(ZoneName);

/// A nanosecond hour.
const HOUR_NS: i64 = 3_600 * 1_000_000_000;

/// Per (zone, UTC hour): its UTC offset throughout the hour, or `None` when it changes
/// within it (see [`Zone::offset_s`]).
type ZoneHours = std::collections::HashMap<(Zone, i64), Option<i64>>;

/// The time zone the window, the schedule and the report use: `capture.timezone`, or the
/// system's local time (`TZ`, `/etc/localtime`) when it is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// From the optional config value.
    #[must_use]
    pub fn from_config(name: Option<ZoneName>) -> Zone {
        name.map_or(Zone::Local, |z| Zone::Named(z.0))
    }

    /// `"local"` or the IANA name (as summary.json and capture.json write it).
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Zone::Local => "local".into(),
            Zone::Named(tz) => tz.name().into(),
        }
    }

    /// An instant as local time with its offset.
    #[must_use]
    pub fn to_local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self {
            Zone::Local => t.with_timezone(&chrono::Local).fixed_offset(),
            Zone::Named(tz) => t.with_timezone(tz).fixed_offset(),
        }
    }

    /// UTC offset in seconds at an instant given in nanoseconds since the epoch.
    ///
    /// Looked up once per UTC hour: an hour whose first and last nanosecond have the same
    /// offset has it throughout (no zone changes its offset twice within an hour), one
    /// with a change inside it is looked up at each instant. chrono's local zone checks
    /// the system's zone again on every call, which made this a tenth of an analysis.
    #[must_use]
    pub fn offset_s(&self, ts_ns: i64) -> i64 {
        thread_local! {
            static HOURS: std::cell::RefCell<ZoneHours> =
                std::cell::RefCell::new(ZoneHours::new());
            /// The last hour looked up: most calls come in runs within one hour.
            static LAST: std::cell::Cell<Option<(Zone, i64, Option<i64>)>> =
                const { std::cell::Cell::new(None) };
        }
        let hour = ts_ns.div_euclid(HOUR_NS);
        let whole = LAST.with(|last| match last.get() {
            Some((z, h, v)) if z == *self && h == hour => v,
            _ => {
                let v = HOURS.with(|hours| self.hour_offset(&mut hours.borrow_mut(), hour));
                last.set(Some((*self, hour, v)));
                v
            }
        });
        whole.unwrap_or_else(|| self.offset_at(ts_ns))
    }

    /// The offset throughout UTC hour `hour` (`None`: it changes in that hour), from
    /// `hours` or looked up into it.
    fn hour_offset(&self, hours: &mut ZoneHours, hour: i64) -> Option<i64> {
        if let Some(&v) = hours.get(&(*self, hour)) {
            return v;
        }
        let start = hour.saturating_mul(HOUR_NS);
        let first = self.offset_at(start);
        let v = (first == self.offset_at(start.saturating_add(HOUR_NS - 1))).then_some(first);
        if hours.len() >= 4_096 {
            hours.clear();
        }
        hours.insert((*self, hour), v);
        v
    }

    /// [`offset_s`](Self::offset_s) looked up at the instant itself.
    fn offset_at(&self, ts_ns: i64) -> i64 {
        let utc = DateTime::<Utc>::from_timestamp_nanos(ts_ns).naive_utc();
        i64::from(match self {
            Zone::Local => chrono::Local
                .offset_from_utc_datetime(&utc)
                .local_minus_utc(),
            Zone::Named(tz) => tz.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
        })
    }

    /// An instant in nanoseconds as local RFC 3339 with whole seconds.
    #[must_use]
    pub fn rfc3339_ns(&self, ts_ns: i64) -> String {
        self.to_local(DateTime::<Utc>::from_timestamp_nanos(ts_ns))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// The instant of local `date` at `minutes` after midnight. A time skipped by a DST
    /// change becomes the first valid minute after it; a repeated time is its first
    /// occurrence when `earliest`, else its second.
    #[must_use]
    pub fn instant(&self, date: NaiveDate, minutes: u32, earliest: bool) -> DateTime<Utc> {
        match self {
            Zone::Local => resolve_local(&chrono::Local, date, minutes, earliest),
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

/// Declares a config enum written as one of a fixed set of words, with the message that
/// lists them when another word is given.
macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every value, in the order the config documents them.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            /// The word the config uses.
            #[must_use]
            pub const fn word(self) -> &'static str {
                match self { $($name::$v => $word),+ }
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, ValueError> {
                match s {
                    $($word => Ok($name::$v),)+
                    _ => Err(ValueError(format!(
                        "{s:?} is not one of {}",
                        [$(concat!("\"", $word, "\"")),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.word())
            }
        }

        serde_via_str!($name);
    };
}

word_enum! {
    /// How the SMTP connection is secured.
    TlsMode {
        /// Plain connection upgraded with STARTTLS (port 587).
        Starttls => "starttls",
        /// Implicit TLS from the first byte (port 465).
        Tls => "tls",
        /// No TLS: only for a relay on loopback.
        None => "none",
    }
}

word_enum! {
    /// A known SMTP service: host, port and TLS in one word.
    SmtpPreset {
        /// smtp.gmail.com:587, STARTTLS.
        Gmail => "gmail",
        /// smtp.gmail.com:465, implicit TLS.
        GmailTls => "gmail-tls",
    }
}

word_enum! {
    /// A section of the report; `report.sections` lists those shown, in order.
    ReportSection {
        Pings => "pings",
        Totals => "totals",
        Timeline => "timeline",
        Protocols => "protocols",
        Talkers => "talkers",
        /// Top conversations (address pairs); not in the default list.
        Conversations => "conversations",
        /// Top service ports; not in the default list.
        Ports => "ports",
        Devices => "devices",
        /// What each device talked to: remote names (or addresses) by bytes.
        TalkedTo => "talked-to",
        History => "history",
    }
}

impl ReportSection {
    /// The section's heading in the report, and the title of its chart (when it has one).
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            ReportSection::Pings => "Pings per source",
            ReportSection::Totals => "The night in numbers",
            ReportSection::Timeline => "Activity through the night",
            ReportSection::Protocols => "Protocol mix",
            ReportSection::Talkers => "Top talkers",
            ReportSection::Conversations => "Top conversations",
            ReportSection::Ports => "Top services",
            ReportSection::Devices => "Devices",
            ReportSection::TalkedTo => "What each device talked to",
            ReportSection::History => "Compared with previous nights",
        }
    }
}

word_enum! {
    /// What the report shows of addresses.
    PrivacyMode {
        /// Addresses as they are.
        Off => "off",
        /// Addresses replaced by stable pseudonyms.
        Pseudonymise => "pseudonymise",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-hour offsets are the instant's own, across DST changes on the hour, at
    /// half past (St John's: 02:00 local), by half an hour (Lord Howe) and in 1916.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn offsets_per_hour_are_the_instants_own() {
        for name in [
            "Europe/Paris",
            "America/St_Johns",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "America/New_York",
        ] {
            let zone = Zone::Named(name.parse().unwrap());
            for (from, to) in [
                (1_704_067_200_i64, 1_735_689_600_i64),
                (-1_704_067_200, -1_672_531_200),
            ] {
                let mut t = from;
                while t < to {
                    let ns = t * 1_000_000_000 + 123;
                    assert_eq!(zone.offset_s(ns), zone.offset_at(ns), "{name} at {t}");
                    t += 7 * 60 + 13;
                }
            }
        }
    }

    #[test]
    fn times_of_day() {
        assert_eq!(
            "06:30".parse::<TimeOfDay>().map(TimeOfDay::minutes),
            Ok(390)
        );
        assert_eq!(
            "6:05".parse::<TimeOfDay>().map(|t| t.to_string()),
            Ok("06:05".into())
        );
        for bad in ["6", "24:00", "12:60", "ab:cd", ""] {
            let e = bad.parse::<TimeOfDay>().expect_err(bad);
            assert!(e.to_string().contains("HH:MM"), "{e}");
        }
    }

    #[test]
    fn intervals() {
        assert_eq!("10m".parse::<Interval>().map(Interval::secs), Ok(600));
        assert_eq!("10min".parse::<Interval>().map(Interval::secs), Ok(600));
        assert_eq!("1h".parse::<Interval>().map(Interval::secs), Ok(3600));
        assert_eq!(
            "90s".parse::<Interval>().map(|i| i.to_string()),
            Ok("90s".into())
        );
        assert_eq!(
            "120m".parse::<Interval>().map(|i| i.to_string()),
            Ok("2h".into())
        );
        for bad in ["0m", "m", "10", "10d", "-1m"] {
            assert!(bad.parse::<Interval>().is_err(), "{bad}");
        }
    }

    #[test]
    fn words_round_trip_and_list_the_choices() {
        for s in ReportSection::ALL {
            assert_eq!(s.word().parse::<ReportSection>(), Ok(*s));
        }
        let e = "bogus"
            .parse::<ReportSection>()
            .expect_err("unknown section");
        let e = e.to_string();
        assert!(e.contains("\"pings\"") && e.contains("\"history\""), "{e}");
        assert_eq!("gmail-tls".parse::<SmtpPreset>(), Ok(SmtpPreset::GmailTls));
        assert!("STARTTLS".parse::<TlsMode>().is_err());
    }

    #[test]
    fn zones() {
        let z: ZoneName = "Europe/Berlin".parse().expect("zone");
        assert_eq!(Zone::from_config(Some(z)).name(), "Europe/Berlin");
        assert_eq!(Zone::from_config(None).name(), "local");
        assert!("Mars/Olympus".parse::<ZoneName>().is_err());
        // 2026-07-01T00:00:00Z is 02:00 in Berlin (CEST).
        let ts = 1_782_864_000_000_000_000;
        assert_eq!(Zone::Named(chrono_tz::Europe::Berlin).offset_s(ts), 7200);
        assert_eq!(
            Zone::Named(chrono_tz::Europe::Berlin).rfc3339_ns(ts),
            "2026-07-01T02:00:00+02:00"
        );
    }
}

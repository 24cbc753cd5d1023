//! Configuration: one [`Config::figment()`] that spells out the precedence.
//!
//! Defaults, then `/etc/netdigest/netdigest.toml` (or the file named by
//! `NETDIGEST_CONFIG`), then `NETDIGEST_*` environment variables with `__`
//! between nested keys (`NETDIGEST_MAIL__TO=me@example.org`). The schema is
//! strict: an unknown key is an error that names it, never silently ignored.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use serde::{Deserialize, Deserializer, Serialize};

mod secret;
mod values;

pub use secret::{PASSWORD_ENV, Secret};

pub use values::{
    Interval, PrivacyMode, ReportSection, SmtpPreset, TimeOfDay, TlsMode, ValueError, Zone,
    ZoneName,
};

/// Where the configuration file is looked for when `NETDIGEST_CONFIG` is unset.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/netdigest/netdigest.toml";
/// Prefix of environment overrides; nested keys are separated by `__`.
pub const ENV_PREFIX: &str = "NETDIGEST_";
/// `NETDIGEST_NAMES` (after the prefix): the whole `[names]` table in one variable, as
/// an inline table (`{"192.168.1.23" = "nas", "aa:bb:cc:dd:ee:ff" = "kitchen-tv"}`): a
/// variable's name cannot hold an IP address's dots or colons in most shells.
const NAMES_ENV_KEY: &str = "NAMES";

/// Errors from loading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Figment(#[from] Box<figment::Error>),
    /// A value that is not of its key's type, or not one of its words: the key as the
    /// config writes it (`capture.start`), the reason, and where the value came from.
    #[error("invalid config: {key}: {reason} ({origin})")]
    Value {
        key: String,
        reason: String,
        origin: String,
    },
    #[error("config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("invalid config: {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// A `[names]` entry whose key is neither a MAC nor an IP address, or whose label is empty.
    #[error("invalid config: names.{key:?}: {reason}")]
    Name { key: String, reason: String },
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The whole configuration. Every default is stated on its field.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub capture: CaptureConfig,
    pub report: ReportConfig,
    pub mail: MailConfig,
    pub state: StateConfig,
    pub privacy: PrivacyConfig,
    /// `[names]`: the owner's own names for devices, MAC or IP address -> label
    /// (`"aa:bb:cc:dd:ee:ff" = "kitchen-tv"`, `"192.168.1.23" = "nas"`). A label beats
    /// every name the traffic carries. MACs may be written `aa:bb:cc:dd:ee:ff`,
    /// `aa-bb-cc-dd-ee-ff` or `aabbccddeeff` (any case), so that
    /// `NETDIGEST_NAMES__AABBCCDDEEFF=kitchen-tv` sets one from the environment.
    /// Default: empty.
    pub names: std::collections::BTreeMap<String, String>,
    pub findings: FindingsConfig,
}

/// `[capture]`: what to capture and when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interface to capture on. Default `"any"` (every interface, Linux cooked headers).
    pub interface: String,
    /// BPF capture filter, as tcpdump takes it. Default `""`: everything.
    pub filter: String,
    /// Bytes kept of each packet. Default 192: every header up to TCP options
    /// (Ethernet + two VLAN tags + IPv6 with extension headers + TCP), no payloads.
    pub snaplen: u32,
    /// Window start, local time `HH:MM`. Default `"22:00"`.
    pub start: TimeOfDay,
    /// Window end, local time `HH:MM` (next day when earlier than start). Default `"06:00"`.
    pub end: TimeOfDay,
    /// IANA time zone for the window and the report (e.g. `"Europe/Berlin"`).
    /// Default: unset, the system's local time zone.
    pub timezone: Option<ZoneName>,
    /// Start a new capture file after this many MiB. Default 64.
    pub rotate_mb: u64,
    /// Stop writing packets for the night after this many MiB. Default 1024 (with
    /// `state.keep_nights` 14, the state directory stays under 18 GB: a 32 GB card).
    pub max_disk_mb: u64,
    /// The disk floor: stop writing packets when the state directory's filesystem has
    /// less than this many MiB free (checked at each new part and every second while
    /// writing), leaving room for nightly's Parquet and report, mail's record and the
    /// system; the rest of the night is counted, not kept, and the report says so.
    /// 0: no floor. Default 512.
    pub min_free_mb: u64,
    /// Kernel capture buffer in MiB. Default 8.
    pub buffer_mb: u32,
    /// Promiscuous mode (see traffic between other devices on a hub or mirror port). Default false.
    pub promiscuous: bool,
}

/// Why `capture.snaplen` cannot be used, if it cannot: libpcap keeps 64 bytes (every
/// header up to TCP's) to 262144 (its largest snap length) of each packet.
#[must_use]
pub fn snaplen_problem(snaplen: u32) -> Option<String> {
    const SNAPLEN: std::ops::RangeInclusive<u32> = 64..=262_144;
    (!SNAPLEN.contains(&snaplen)).then(|| {
        format!(
            "{snaplen} is outside {}..={}",
            SNAPLEN.start(),
            SNAPLEN.end()
        )
    })
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            interface: "any".into(),
            filter: String::new(),
            snaplen: 192,
            start: hhmm(22, 0),
            end: hhmm(6, 0),
            timezone: None,
            rotate_mb: 64,
            max_disk_mb: 1024,
            min_free_mb: 512,
            buffer_mb: 8,
            promiscuous: false,
        }
    }
}

/// `[report]`: what the morning report shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// The appliance's own addresses, left out of the pings chart. Default: empty,
    /// detected from the capture interface.
    pub own_addresses: Vec<IpAddr>,
    /// Rows in each top-N table (talkers, conversations, services; the rest is counted
    /// in an "N more" or "other" row). Default 10.
    pub top_n: usize,
    /// Rows at most in the lists shown whole on a normal night: pings per source, ARP
    /// senders, devices (also the devices recorded per night in devices.parquet). The
    /// rest is counted in an "N more" row, so a flood of made-up addresses keeps the
    /// summary and the message small. Default 100.
    pub max_rows: usize,
    /// Sections to include, in order: `pings`, `totals`, `timeline`, `protocols`,
    /// `talkers`, `conversations`, `ports`, `devices`, `talked-to`, `history`. Default: all but
    /// `conversations` and `ports`.
    pub sections: Vec<ReportSection>,
    /// Nights kept for "compared with previous nights". Default 7.
    pub history_nights: usize,
    /// Timeline bin, e.g. `"10m"`, `"1h"`. Default `"10m"`.
    pub interval: Interval,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            own_addresses: Vec::new(),
            top_n: 10,
            max_rows: 100,
            sections: ReportSection::DEFAULT.to_vec(),
            history_nights: 7,
            interval: Interval::TEN_MINUTES,
        }
    }
}

/// `[mail]`: where the report goes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// Recipients: one address or a list. Default: none (the report is kept as `report.eml`).
    #[serde(deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    /// Copy recipients: one address or a list. Default: none.
    #[serde(deserialize_with = "one_or_many")]
    pub cc: Vec<String>,
    /// `Reply-To` address. Default: unset.
    pub reply_to: Option<String>,
    /// Sender. Default: `username`.
    pub from: Option<String>,
    /// Subject template. Default `"netdigest {night}: {headline}"`.
    pub subject: String,
    /// `"gmail"` (smtp.gmail.com:587 STARTTLS) or `"gmail-tls"` (465 implicit TLS). Default: unset.
    pub smtp: Option<SmtpPreset>,
    /// SMTP host when no preset is used.
    pub host: Option<String>,
    /// SMTP port. Default: from the preset or `tls` (587 STARTTLS, 465 TLS, 25 none).
    pub port: Option<u16>,
    /// `"starttls"`, `"tls"` or `"none"` (loopback only). Default `"starttls"`.
    pub tls: TlsMode,
    /// SMTP login (a Gmail address).
    pub username: Option<String>,
    /// File holding the SMTP password (an app password for Gmail).
    pub password_file: Option<PathBuf>,
    /// The password itself; only from `NETDIGEST_MAIL__PASSWORD` (warned about). Never printed.
    pub password: Option<Secret>,
    /// Extra root certificate (PEM) for private relays and tests.
    pub ca_file: Option<PathBuf>,
    /// When the mail timer fires, local `HH:MM`. Default `"06:30"`.
    pub send_at: TimeOfDay,
    /// Unsent reports older than this many days are given up. Default 7.
    pub max_age_days: u32,
    /// Largest message in decimal MB (Gmail's limit is 25): above it the attachment,
    /// then the images are left out, and the body says so. Default 25.
    pub max_size_mb: u64,
    /// Attempts per report in one `netdigest mail` run, the first included (at least 1).
    /// Default 5.
    pub attempts: u32,
    /// Wait before the second attempt in seconds, doubled for each further one (at most
    /// 10 times this, and 300 s at the default). Default 30.
    pub retry_after_s: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            to: Vec::new(),
            cc: Vec::new(),
            reply_to: None,
            from: None,
            subject: "netdigest {night}: {headline}".into(),
            smtp: None,
            host: None,
            port: None,
            tls: TlsMode::Starttls,
            username: None,
            password_file: None,
            password: None,
            ca_file: None,
            send_at: hhmm(6, 30),
            max_age_days: 7,
            max_size_mb: 25,
            attempts: 5,
            retry_after_s: 30,
        }
    }
}

/// `[state]`: where nights are kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// State directory. Default `/var/lib/netdigest` (the units' `StateDirectory=netdigest/<tree>`,
    /// one tree per service: see `layout`).
    pub dir: PathBuf,
    /// Nights kept on disk: `nightly` deletes a night more than this many days old once
    /// it was mailed or given up (never an unsent report younger than
    /// `mail.max_age_days`), and devices not seen for this many nights. Default 14.
    pub keep_nights: u32,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: PathBuf::from(crate::layout::DEFAULT_STATE_DIR),
            keep_nights: 14,
        }
    }
}

/// `[findings]`: thresholds of tonight's findings (see `analyse::findings`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FindingsConfig {
    /// A (device, remote) pair needs at least this many connections tonight to be
    /// scored as periodic (beaconing). Default 12.
    pub beacon_min_connections: usize,
    /// Beacon score (0..1, RITA-style regularity of intervals and sizes) at or above
    /// which a pair is a finding. Default 0.8.
    pub beacon_score: f64,
    /// Pairs scored at most (those with the most connections). Default 10000.
    pub beacon_max_pairs: usize,
    /// A connection open at least this many minutes is a long connection. Default 60.
    pub long_connection_min: u64,
    /// Unique names under one domain that one client got DNS answers for. Default 100.
    pub dns_unique_subdomains: usize,
    /// DNS queries from one client within `dns_burst_window_s` seconds. Default 200.
    pub dns_burst_queries: u64,
    /// The window of a DNS burst, seconds. Default 300.
    pub dns_burst_window_s: u64,
    /// A burst whose queries got an address back (A/AAAA answers in names.parquet) at
    /// least this share of the time is lookups, not tunnelling: kept at the lowest rank.
    /// Tunnels get NXDOMAIN, TXT or NULL answers. Default 0.5.
    pub dns_burst_answered_max: f64,
    /// Unanswered echo requests from one source for a (low-rank) finding; also the
    /// echo requests a device must get tonight, none answered, to have gone quiet.
    /// Default 10.
    pub ping_unanswered_min: u64,
    /// Earlier nights in the baseline (`<state>/baseline.json`) before the findings that
    /// compare with it are made; until then the report says "learning: N of 7 nights".
    /// At most `state.keep_nights` are used. Default 7.
    pub baseline_nights: usize,
    /// Remote names kept per device per night in the baseline (the busiest). Default 50.
    pub baseline_names: usize,
    /// A device is active in a local hour when its connections moved more than this
    /// many bytes (both ways) in it; more in an hour in which it was never active in the
    /// baseline: awake at an unusual hour. Default 100000.
    pub awake_min_bytes: u64,
    /// ...and only when tonight's bytes in that hour are more than this many times the
    /// most it moved in that hour on an earlier night. Default 10.
    pub awake_factor: f64,
    /// Volume spike: tonight's bytes above this many times the device's median over the
    /// baseline nights... Default 5.
    pub spike_factor: f64,
    /// ...and above this many bytes. Default 1000000.
    pub spike_min_bytes: u64,
    /// A name the device did not talk to in the baseline, with at least this many bytes
    /// tonight: a new destination. Default 20000.
    pub new_destination_min_bytes: u64,
    /// New destinations reported per device at most (the busiest). Default 3.
    pub new_destinations_max: usize,
    /// Silences findings for good: a device (`"192.168.1.30"` or its name), a remote
    /// (`"time.example.net"` or its address) or both (`"laptop+updates.example.com"`).
    /// Default none.
    pub allow: Vec<String>,
}

impl Default for FindingsConfig {
    fn default() -> Self {
        FindingsConfig {
            beacon_min_connections: 12,
            beacon_score: 0.8,
            beacon_max_pairs: 10_000,
            long_connection_min: 60,
            dns_unique_subdomains: 100,
            dns_burst_queries: 200,
            dns_burst_window_s: 300,
            dns_burst_answered_max: 0.5,
            ping_unanswered_min: 10,
            baseline_nights: 7,
            baseline_names: 50,
            awake_min_bytes: 100_000,
            awake_factor: 10.0,
            spike_factor: 5.0,
            spike_min_bytes: 1_000_000,
            new_destination_min_bytes: 20_000,
            new_destinations_max: 3,
            allow: Vec::new(),
        }
    }
}

/// `[privacy]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// `"off"` or `"pseudonymise"`. Default `"off"`.
    pub mode: PrivacyMode,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            mode: PrivacyMode::Off,
        }
    }
}

/// One string or a list of them, as a value may be given (config, older summaries).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Accepts `to = "a@x"`, `to = ["a@x", "b@y"]`, or `NETDIGEST_MAIL__TO="a@x,b@y"`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

impl Config {
    /// The config file in force: `NETDIGEST_CONFIG` if set, else [`DEFAULT_CONFIG_PATH`].
    #[must_use]
    pub fn config_path() -> PathBuf {
        std::env::var_os("NETDIGEST_CONFIG")
            .map_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH), PathBuf::from)
    }

    /// Defaults, then the TOML file, then `NETDIGEST_*` variables (nested keys split on `__`).
    ///
    /// Only variables with `__` in their name are config keys: `NETDIGEST_CONFIG`,
    /// `NETDIGEST_LOG` and the like are not. The one exception is `NETDIGEST_NAMES`,
    /// the whole `[names]` table as an inline table.
    #[must_use]
    pub fn figment() -> Figment {
        Self::figment_with_file(&Self::config_path())
    }

    /// As [`Config::figment`] with an explicit file (missing file: defaults only).
    #[must_use]
    pub fn figment_with_file(path: &Path) -> Figment {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(path))
            .merge(
                Env::prefixed(ENV_PREFIX)
                    .filter(|k| {
                        (k.as_str().contains("__")
                            || k.as_str().eq_ignore_ascii_case(NAMES_ENV_KEY))
                            && !k.as_str().eq_ignore_ascii_case(secret::PASSWORD_ENV_KEY)
                    })
                    .split("__"),
            )
            .merge(secret::PasswordEnv)
    }

    /// Loads and validates the configuration from [`Config::config_path`].
    ///
    /// # Errors
    /// An unreadable or malformed file, an unknown key, a wrong type or an invalid value,
    /// each named in the message.
    pub fn load() -> Result<Config> {
        Self::load_from(&Self::config_path())
    }

    /// Loads and validates the configuration with an explicit file.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_from(path: &Path) -> Result<Config> {
        if path.exists() {
            // figment skips an unreadable file silently: say so instead.
            if let Err(e) = std::fs::read_to_string(path) {
                return Err(ConfigError::File {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        }
        Self::from_figment(&Self::figment_with_file(path))
    }

    /// Extracts and validates a config from a figment.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_figment(fig: &Figment) -> Result<Config> {
        let cfg: Config = fig.extract().map_err(value_error)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that the types alone do not.
    ///
    /// # Errors
    /// The first invalid value, with its key and the reason.
    pub fn validate(&self) -> Result<()> {
        if let Some(reason) = snaplen_problem(self.capture.snaplen) {
            return Err(ConfigError::Invalid {
                key: "capture.snaplen",
                reason,
            });
        }
        if !(0.0..=1.0).contains(&self.findings.beacon_score) {
            return Err(ConfigError::Invalid {
                key: "findings.beacon_score",
                reason: format!("{} is outside 0..=1", self.findings.beacon_score),
            });
        }
        if self.findings.beacon_min_connections < 4 {
            return Err(ConfigError::Invalid {
                key: "findings.beacon_min_connections",
                reason: format!("{} is below 4", self.findings.beacon_min_connections),
            });
        }
        if self.findings.dns_burst_window_s == 0 {
            return Err(ConfigError::Invalid {
                key: "findings.dns_burst_window_s",
                reason: "0 is not a window".to_string(),
            });
        }
        if self.findings.baseline_nights == 0 {
            return Err(ConfigError::Invalid {
                key: "findings.baseline_nights",
                reason: "0: a baseline needs at least one night".to_string(),
            });
        }
        if self.findings.awake_factor.is_nan() || self.findings.awake_factor < 1.0 {
            return Err(ConfigError::Invalid {
                key: "findings.awake_factor",
                reason: format!("{} is below 1", self.findings.awake_factor),
            });
        }
        if self.findings.spike_factor.is_nan() || self.findings.spike_factor < 1.0 {
            return Err(ConfigError::Invalid {
                key: "findings.spike_factor",
                reason: format!("{} is below 1", self.findings.spike_factor),
            });
        }
        let share = self.findings.dns_burst_answered_max;
        if !(0.0..=1.0).contains(&share) {
            return Err(ConfigError::Invalid {
                key: "findings.dns_burst_answered_max",
                reason: format!("{share} is not within 0..1"),
            });
        }
        // The state directory is written into the units (ReadWritePaths=), where a
        // newline would start a directive of its own.
        if self
            .state
            .dir
            .to_string_lossy()
            .chars()
            .any(char::is_control)
        {
            return Err(ConfigError::Invalid {
                key: "state.dir",
                reason: format!("{:?} holds a control character", self.state.dir),
            });
        }
        self.labels()?;
        Ok(())
    }

    /// The `[names]` table with its keys in the form the summary writes addresses
    /// (`aa:bb:cc:dd:ee:ff`, `192.168.1.23`, `fd00::10`), labels trimmed.
    ///
    /// # Errors
    /// A key that is neither a MAC nor an IP address, or an empty label.
    pub fn labels(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let mut out = std::collections::BTreeMap::new();
        for (k, v) in &self.names {
            let Some(addr) = address_key(k) else {
                return Err(ConfigError::Name {
                    key: k.clone(),
                    reason: "not a MAC address (aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or \
                             aabbccddeeff) or an IP address; in TOML quote the key: \
                             \"192.168.1.23\" = \"nas\""
                        .into(),
                });
            };
            let label = v.trim();
            if label.is_empty() {
                return Err(ConfigError::Name {
                    key: k.clone(),
                    reason: "empty label".into(),
                });
            }
            out.insert(addr, label.to_string());
        }
        Ok(out)
    }
}

/// A `[names]` key as the summary writes the address: a MAC in any of the three
/// spellings as `aa:bb:cc:dd:ee:ff`, an IP address as tshark prints it. None for
/// anything else.
#[must_use]
pub fn address_key(k: &str) -> Option<String> {
    if let Some(m) = crate::vendor::parse_mac(k) {
        return Some(crate::vendor::mac_string(m));
    }
    match k.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v) => Some(crate::decode::Addr::V4(v).to_string()),
        IpAddr::V6(v) => Some(crate::decode::Addr::V6(v).to_string()),
    }
}

impl CaptureConfig {
    /// The time zone in force: `timezone`, or the system's local time.
    #[must_use]
    pub fn zone(&self) -> Zone {
        Zone::from_config(self.timezone)
    }
}

/// A default time of day (the arguments are constants in range).
const fn hhmm(hour: u32, minute: u32) -> TimeOfDay {
    match TimeOfDay::new(hour, minute) {
        Some(t) => t,
        None => panic!("default time of day out of range"),
    }
}

/// A figment error as the user should read it: the dotted key, the reason and where the
/// value came from (the file, or the `NETDIGEST_*` variable). Errors without a key (a
/// malformed file) are kept as figment words them.
fn value_error(e: figment::Error) -> ConfigError {
    if e.path.is_empty() {
        return ConfigError::Figment(Box::new(e));
    }
    let key = e.path.join(".");
    // A secret's value never reaches a message, whatever the error says about it.
    let reason = if key.ends_with("password") {
        "not a password (text, number or boolean)".to_string()
    } else if key == "names" || key.starts_with("names.") {
        // An unquoted `192.168.1.23 = "nas"` is a dotted key: a table, not a label.
        format!(
            "{}; a [names] entry is an address and a label, with the address quoted: \
             \"192.168.1.23\" = \"nas\"",
            e.kind
        )
    } else {
        e.kind.to_string()
    };
    let origin = match e.metadata.as_ref() {
        Some(m) => match &m.source {
            Some(figment::Source::File(p)) => format!("in {}", p.display()),
            _ if m.name.contains("environment") => format!(
                "from {}{}",
                ENV_PREFIX,
                key.replace('.', "__").to_ascii_uppercase()
            ),
            _ => format!("in {}", m.name),
        },
        None => "in the defaults".to_string(),
    };
    ConfigError::Value {
        key,
        reason,
        origin,
    }
}

/// One line of `print-config`: a key, its effective value (secrets redacted) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedValue {
    pub key: String,
    pub value: String,
    pub source: String,
}

/// Every leaf key of the effective configuration with its value and source.
///
/// # Errors
/// As [`Config::load`]: the figment must extract.
pub fn sourced_values(fig: &Figment) -> Result<Vec<SourcedValue>> {
    let dict: Dict = fig.extract().map_err(Box::new)?;
    let mut out = Vec::new();
    for (k, v) in &dict {
        walk(fig, k, v, &mut out);
    }
    Ok(out)
}

fn walk(fig: &Figment, key: &str, v: &Value, out: &mut Vec<SourcedValue>) {
    if let Value::Dict(_, d) = v {
        for (k, child) in d {
            walk(fig, &format!("{key}.{k}"), child, out);
        }
        return;
    }
    let secret = key.ends_with("password");
    let value = if secret {
        "\"<redacted>\"".to_string()
    } else {
        toml_value(v)
    };
    let source = match fig.find_metadata(key) {
        Some(m) if matches!(m.source, Some(figment::Source::File(_))) => match &m.source {
            Some(figment::Source::File(p)) => format!("file {}", p.display()),
            _ => "file".to_string(),
        },
        Some(m) if m.name.contains("environment") => {
            format!(
                "env {}{}",
                ENV_PREFIX,
                key.replace('.', "__").to_ascii_uppercase()
            )
        }
        _ => "default".to_string(),
    };
    out.push(SourcedValue {
        key: key.to_string(),
        value,
        source,
    });
}

fn toml_value(v: &Value) -> String {
    match v {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("{:?}", c.to_string()),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => n
            .to_u128()
            .map(|u| u.to_string())
            .or_else(|| n.to_i128().map(|i| i.to_string()))
            .or_else(|| n.to_f64().map(|f| f.to_string()))
            .unwrap_or_default(),
        Value::Empty(_, _) => "\"\"".into(),
        Value::Dict(_, _) => "{...}".into(),
        Value::Array(_, a) => format!(
            "[{}]",
            a.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error"
)]
mod tests;

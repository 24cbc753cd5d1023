//! Mail: delivers each night's `report/report.eml` over SMTP exactly once.
//!
//! The report stage renders the message to `<night>/report/report.eml` (the spool).
//! This module sends it with lettre's SMTP client (rustls only, no OpenSSL, no
//! sendmail) and records every attempt in `<night>/mail.json`.
//!
//! # Delivery rules
//! - Transient failures (4xx replies, and network errors with no reply at all, such
//!   as a dropped connection or a refused connect) are retried with exponential
//!   backoff and jitter, up to [`RetryPolicy::attempts`] in one run.
//! - Permanent failures (5xx: bad credentials, a refused recipient), TLS trust
//!   failures and client-side refusals stop the run at once, with the server's words
//!   and the fix. The message stays in the spool.
//! - [`send_pending`] sends every unsent night, oldest first, up to
//!   `mail.max_age_days` old, and stops at the first night that fails (the next run
//!   picks it up again).
//!
//! # Never twice
//! `mail.json` is written (fsync + rename) with `status = "sending"` and the
//! Message-ID *before* the message is handed to the server, and with
//! `status = "sent"` right after the server's final `250`. A night whose record says
//! `sent` is never sent again. A run that finds `sending` knows that the previous one
//! stopped mid-attempt; it sends the same bytes again, with the same Message-ID.
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
//!
//! # Secrets
//! The password is read from `mail.password_file`, the systemd credential
//! `smtp-password` in `$CREDENTIALS_DIRECTORY`, or `mail.password`
//! (`NETDIGEST_MAIL__PASSWORD`, warned about once), in that order. It is held in a
//! [`Secret`] and handed only to lettre's `Credentials`, whose `Debug` redacts it; it
//! never appears in a log line, an error, `mail.json` or `Debug` output.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use lettre::address::{Address, Envelope};
use lettre::message::header::{self, Headers};
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use serde::{Deserialize, Serialize};

use crate::config::{MailConfig, Secret};
use crate::fsutil::write_atomic;

/// The spooled message of a night, relative to the night directory.
pub const SPOOL_FILE: &str = "report/report.eml";
/// The delivery record of a night, relative to the night directory.
pub const RECORD_FILE: &str = "mail.json";
/// Lock held while a night is being sent, relative to the night directory.
pub const LOCK_FILE: &str = "mail.lock";
/// Name of the systemd credential holding the password (`LoadCredential=smtp-password:...`).
pub const CREDENTIAL_NAME: &str = "smtp-password";
/// Default size limit: Gmail refuses messages over 25 MB.
pub const DEFAULT_MAX_SIZE_MB: u64 = 25;
/// Default timeout for the connect and for each SMTP command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the mail stage. [`MailError::exit_code`] maps them to the CLI's exit codes.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A missing or invalid mail setting (exit code 2).
    #[error("invalid config: {key}: {reason}")]
    Config { key: &'static str, reason: String },
    /// A file that could not be read or written.
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    /// A night's spool or record is unusable.
    #[error("night {night}: {reason}")]
    Spool { night: String, reason: String },
    /// Another process is sending this night right now.
    #[error(
        "night {night} is being mailed by another netdigest process (pid {pid}); if none is running, delete {}",
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
    /// 2 for a config error, 1 for everything else (as the CLI documents).
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            MailError::Config { .. } => 2,
            _ => 1,
        }
    }

    /// True when trying again later may succeed without changing anything.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            MailError::Smtp(f) => f.kind.is_transient(),
            MailError::Locked { .. } => true,
            _ => false,
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

/// What went wrong with an SMTP exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A 4xx reply: retried.
    Transient,
    /// No reply: refused connect, dropped connection, timeout. Retried.
    Network,
    /// A 5xx reply: not retried in this run.
    Permanent,
    /// The TLS handshake failed (usually an untrusted certificate): not retried.
    Tls,
    /// The client refused to go on (no STARTTLS offered, no common AUTH mechanism).
    Client,
}

impl FailureKind {
    #[must_use]
    pub fn is_transient(self) -> bool {
        matches!(self, FailureKind::Transient | FailureKind::Network)
    }
}

/// Where in the SMTP exchange a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Connect,
    Starttls,
    Login,
    MailFrom,
    Recipient,
    Data,
    /// The body was sent and the final reply awaited: the server may have taken it.
    Message,
}

impl Phase {
    fn describe(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Starttls => "STARTTLS",
            Phase::Login => "login",
            Phase::MailFrom => "sender (MAIL FROM)",
            Phase::Recipient => "recipient (RCPT TO)",
            Phase::Data => "DATA command",
            Phase::Message => "message",
        }
    }
}

/// An SMTP failure: the server, the phase, the server's own words and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpFailure {
    /// `host:port`.
    pub server: String,
    pub phase: Phase,
    pub kind: FailureKind,
    /// The reply code, when the server answered.
    pub code: Option<u16>,
    /// The server's reply (`535 5.7.8 ...`) or the network error.
    pub reply: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl SmtpFailure {
    /// The failure without the hint: `host:port: what: the server's words`.
    #[must_use]
    pub fn headline(&self) -> String {
        let phase = self.phase.describe();
        let what = match (self.kind, self.phase) {
            (FailureKind::Network, Phase::Connect) => "could not connect".to_string(),
            (FailureKind::Network, _) => format!("connection lost during {phase}"),
            (FailureKind::Tls, _) => "TLS failed".to_string(),
            (FailureKind::Client, _) => format!("gave up during {phase}"),
            (_, Phase::Login) => "login refused".to_string(),
            (_, Phase::Recipient) => "recipient refused".to_string(),
            (_, Phase::MailFrom) => "sender refused".to_string(),
            (FailureKind::Transient, _) => format!("temporarily refused the {phase}"),
            _ => format!("refused the {phase}"),
        };
        format!("{}: {what}: {}", self.server, self.reply)
    }
}

impl fmt::Display for SmtpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        if let Some(h) = &self.hint {
            write!(f, ". {h}")?;
        }
        Ok(())
    }
}

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connect, then STARTTLS (required: never falls back to clear text).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: allowed only to a loopback address.
    None,
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::Starttls => "starttls",
            Security::Tls => "tls",
            Security::None => "none",
        })
    }
}

/// Retries within one run on transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per message in one run, the first included (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// Longest wait between two attempts (before jitter).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, waiting about 30 s, 1, 2 and 4 min: a Gmail 421 ("try again
    /// later") or a Wi-Fi hiccup at 06:30 passes within about 8 minutes.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `n` (1-based): `base * 2^(n-1)`, capped, times a
    /// random factor in [0.5, 1.5) so that retries do not arrive in lockstep.
    #[must_use]
    pub fn delay(&self, n: u32) -> Duration {
        let exp = 1u32 << n.saturating_sub(1).min(20);
        let d = self.base_delay.saturating_mul(exp).min(self.max_delay);
        d.mul_f64(0.5 + jitter())
    }
}

/// A random number in [0, 1) from std's randomly keyed hasher (no `rand` dependency).
fn jitter() -> f64 {
    use std::hash::BuildHasher;
    let r = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    f64::from(u32::try_from(r >> 32).unwrap_or(0)) / 4_294_967_296.0
}

/// Everything needed to send, resolved and checked from the `[mail]` config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// SMTP login; `None`: no AUTH.
    pub username: Option<String>,
    /// Redacted in `Debug`.
    pub password: Option<Secret>,
    /// AUTH mechanisms in order of preference.
    pub mechanisms: Vec<Mechanism>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
    /// Extra root certificate (PEM) trusted besides the built-in Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// Connect timeout and per-command timeout.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Messages larger than this lose their attachments, then their images.
    pub max_size_bytes: u64,
    /// Unsent nights older than this are given up by [`send_pending`].
    pub max_age_days: u32,
}

static ENV_PASSWORD_WARNING: std::sync::Once = std::sync::Once::new();

impl Settings {
    /// Resolves the `[mail]` config: server preset, password source (reading
    /// `$CREDENTIALS_DIRECTORY`), addresses.
    ///
    /// # Errors
    /// [`MailError::Config`] for a missing or invalid setting (recipients, host,
    /// `tls = "none"` to a non-loopback host, no password for a login), or
    /// [`MailError::File`] for an unreadable password or CA file.
    pub fn from_config(cfg: &MailConfig) -> Result<Settings> {
        let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        Self::from_config_with(cfg, creds.as_deref())
    }

    /// As [`Settings::from_config`] with an explicit systemd credentials directory.
    ///
    /// # Errors
    /// As [`Settings::from_config`].
    pub fn from_config_with(cfg: &MailConfig, credentials_dir: Option<&Path>) -> Result<Settings> {
        let (host, port, security) = server_of(cfg)?;
        if security == Security::None && !is_loopback(&host) {
            return Err(MailError::Config {
                key: "mail.tls",
                reason: format!(
                    "\"none\" would send the password and the report in clear text to {host}: \
                     it is allowed only to a loopback address (127.0.0.1, ::1, localhost); \
                     use \"starttls\" or \"tls\""
                ),
            });
        }
        if cfg.to.is_empty() {
            return Err(MailError::Config {
                key: "mail.to",
                reason: "no recipient: set mail.to (one address or a list)".into(),
            });
        }
        let to = cfg
            .to
            .iter()
            .map(|a| parse_mailbox("mail.to", a))
            .collect::<Result<Vec<_>>>()?;
        let cc = cfg
            .cc
            .iter()
            .map(|a| parse_mailbox("mail.cc", a))
            .collect::<Result<Vec<_>>>()?;
        let reply_to = cfg
            .reply_to
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|a| parse_mailbox("mail.reply_to", a))
            .transpose()?;
        let username = cfg.username.clone().filter(|u| !u.trim().is_empty());
        let from = match (&cfg.from, &username) {
            (Some(f), _) => parse_mailbox("mail.from", f)?,
            (None, Some(u)) => parse_mailbox("mail.username", u)?,
            (None, None) => {
                return Err(MailError::Config {
                    key: "mail.from",
                    reason: "no sender: set mail.username (your Gmail address) or mail.from".into(),
                });
            }
        };
        let gmail = host.eq_ignore_ascii_case("smtp.gmail.com");
        let password = match &username {
            Some(_) => Some(resolve_password(cfg, credentials_dir, gmail)?),
            None => None,
        };
        if let Some(ca) = &cfg.ca_file {
            load_certificate(ca)?;
        }
        Ok(Settings {
            host,
            port,
            security,
            username,
            password,
            mechanisms: vec![Mechanism::Plain, Mechanism::Login],
            from,
            to,
            cc,
            reply_to,
            ca_file: cfg.ca_file.clone(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            max_size_bytes: (if cfg.max_size_mb == 0 {
                DEFAULT_MAX_SIZE_MB
            } else {
                cfg.max_size_mb
            })
            .saturating_mul(1_000_000),
            max_age_days: cfg.max_age_days,
        })
    }

    /// `host:port`, as shown in messages and `mail.json`.
    #[must_use]
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn is_gmail(&self) -> bool {
        self.host.eq_ignore_ascii_case("smtp.gmail.com")
    }

    /// The SMTP envelope: MAIL FROM is the login (what Gmail authenticates), RCPT TO
    /// every To and Cc address once.
    fn envelope(&self) -> Result<Envelope> {
        let sender = self
            .username
            .as_deref()
            .and_then(|u| u.parse::<Address>().ok())
            .unwrap_or_else(|| self.from.email.clone());
        let mut rcpt: Vec<Address> = Vec::new();
        for m in self.to.iter().chain(&self.cc) {
            if !rcpt.contains(&m.email) {
                rcpt.push(m.email.clone());
            }
        }
        Envelope::new(Some(sender), rcpt).map_err(|e| MailError::Config {
            key: "mail.to",
            reason: e.to_string(),
        })
    }
}

fn parse_mailbox(key: &'static str, s: &str) -> Result<Mailbox> {
    s.trim().parse::<Mailbox>().map_err(|e| MailError::Config {
        key,
        reason: format!("{s:?} is not a mail address: {e}"),
    })
}

/// Host, port and security from the preset or the explicit keys.
fn server_of(cfg: &MailConfig) -> Result<(String, u16, Security)> {
    if let Some(preset) = cfg.smtp.as_deref() {
        let (port, security) = match preset {
            "gmail" => (587, Security::Starttls),
            "gmail-tls" => (465, Security::Tls),
            other => {
                return Err(MailError::Config {
                    key: "mail.smtp",
                    reason: format!("{other:?} is not one of \"gmail\", \"gmail-tls\""),
                });
            }
        };
        if let Some(h) = cfg.host.as_deref().filter(|h| *h != "smtp.gmail.com") {
            return Err(MailError::Config {
                key: "mail.host",
                reason: format!(
                    "mail.smtp = {preset:?} already names smtp.gmail.com; remove mail.host ({h:?}) or mail.smtp"
                ),
            });
        }
        if let Some(p) = cfg.port.filter(|&p| p != port) {
            return Err(MailError::Config {
                key: "mail.port",
                reason: format!(
                    "mail.smtp = {preset:?} uses port {port}; remove mail.port ({p}) or mail.smtp"
                ),
            });
        }
        return Ok(("smtp.gmail.com".into(), port, security));
    }
    let security = match cfg.tls.as_str() {
        "starttls" => Security::Starttls,
        "tls" => Security::Tls,
        "none" => Security::None,
        other => {
            return Err(MailError::Config {
                key: "mail.tls",
                reason: format!("{other:?} is not one of \"starttls\", \"tls\", \"none\""),
            });
        }
    };
    let host = cfg
        .host
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| MailError::Config {
            key: "mail.host",
            reason:
                "no SMTP server: set mail.smtp = \"gmail\", or mail.host (and mail.port, mail.tls)"
                    .into(),
        })?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_string();
    let port = cfg.port.unwrap_or(match security {
        Security::Starttls => 587,
        Security::Tls => 465,
        Security::None => 25,
    });
    Ok((host, port, security))
}

/// `localhost`, `127.0.0.0/8` or `::1`. Names other than `localhost` are not resolved:
/// what a name resolves to can change, an address cannot.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The password, from the first source that has one.
fn resolve_password(
    cfg: &MailConfig,
    credentials_dir: Option<&Path>,
    gmail: bool,
) -> Result<Secret> {
    if let Some(path) = &cfg.password_file {
        return read_password_file(path, gmail);
    }
    if let Some(dir) = credentials_dir {
        let path = dir.join(CREDENTIAL_NAME);
        if path.exists() {
            return read_password_file(&path, gmail);
        }
    }
    if let Some(p) = &cfg.password {
        ENV_PASSWORD_WARNING.call_once(|| {
            tracing::warn!(
                "the SMTP password comes from NETDIGEST_MAIL__PASSWORD: environment variables \
                 can leak (/proc/PID/environ, service dumps); prefer mail.password_file or the \
                 systemd credential {CREDENTIAL_NAME}"
            );
        });
        let pw = normalise_password(p.expose(), gmail);
        if pw.is_empty() {
            return Err(MailError::Config {
                key: "mail.password",
                reason: "is empty".into(),
            });
        }
        return Ok(Secret::new(pw));
    }
    Err(MailError::Config {
        key: "mail.password_file",
        reason: format!(
            "no SMTP password for the login: set mail.password_file, or provide the systemd \
             credential {CREDENTIAL_NAME} (LoadCredential=), or NETDIGEST_MAIL__PASSWORD"
        ),
    })
}

fn read_password_file(path: &Path, gmail: bool) -> Result<Secret> {
    let text = std::fs::read_to_string(path).map_err(|e| MailError::File {
        path: path.to_path_buf(),
        reason: format!("reading the SMTP password: {e}"),
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o004 != 0
        {
            tracing::warn!(
                "{}: the SMTP password file is readable by every user: chmod 600 it",
                path.display()
            );
        }
    }
    let pw = normalise_password(&text, gmail);
    if pw.is_empty() {
        return Err(MailError::File {
            path: path.to_path_buf(),
            reason: "the SMTP password file is empty".into(),
        });
    }
    Ok(Secret::new(pw))
}

/// Trims surrounding whitespace (a file's final newline) and, for Gmail or a password
/// shaped like Gmail's display of an app password (`abcd efgh ijkl mnop`), removes the
/// spaces inside. Other passwords keep inner spaces: they may be part of them.
fn normalise_password(s: &str, gmail: bool) -> String {
    let s = s.trim();
    let groups: Vec<&str> = s.split(' ').collect();
    let app_shaped = groups.len() == 4
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_alphanumeric()));
    if gmail || app_shaped {
        s.chars().filter(|c| *c != ' ').collect()
    } else {
        s.to_string()
    }
}

fn load_certificate(path: &Path) -> Result<Certificate> {
    let pem = std::fs::read(path).map_err(|e| MailError::File {
        path: path.to_path_buf(),
        reason: format!("reading mail.ca_file: {e}"),
    })?;
    let bad = |reason: &str| MailError::File {
        path: path.to_path_buf(),
        reason: format!("mail.ca_file: {reason}"),
    };
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(bad(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
        ));
    }
    Certificate::from_pem(&pem).map_err(|e| bad(&e.to_string()))
}

// ---------------------------------------------------------------------------
// SMTP exchange

/// A successful delivery: the server's final reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub server: String,
    pub message_id: String,
    /// The server's reply to the message (`250 2.0.0 OK ...`).
    pub reply: String,
    /// Attempts this run took.
    pub attempts: u32,
}

/// What `check_login` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginCheck {
    pub server: String,
    pub security: Security,
    /// False when no username is configured (the server was only reached).
    pub authenticated: bool,
    pub username: Option<String>,
}

impl fmt::Display for LoginCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.username, self.authenticated) {
            (Some(u), true) => write!(f, "{} ({}): login as {u} works", self.server, self.security),
            _ => write!(
                f,
                "{} ({}): reachable (no login configured)",
                self.server, self.security
            ),
        }
    }
}

fn reply_text(r: &lettre::transport::smtp::response::Response) -> String {
    let code = r.code().to_string();
    let text: Vec<&str> = r.message().collect();
    format!("{code} {}", text.join(" ")).trim().to_string()
}

/// Turns a lettre error into our failure, with the server's words and the fix.
fn failure(s: &Settings, phase: Phase, e: &lettre::transport::smtp::Error) -> SmtpFailure {
    use std::error::Error as _;
    let code = e.status().map(u16::from);
    let reply = match (code, e.source()) {
        (Some(c), Some(src)) => format!("{c} {src}"),
        (Some(c), None) => c.to_string(),
        _ => e.to_string(),
    };
    let kind = if e.is_permanent() {
        FailureKind::Permanent
    } else if e.is_transient() {
        FailureKind::Transient
    } else if e.is_tls() || is_tls_data_error(e) {
        FailureKind::Tls
    } else if e.is_client() {
        FailureKind::Client
    } else {
        // Network, connection and response errors: a refused or dropped connection
        // or a timeout. lettre calls these neither transient nor permanent; with no
        // reply from the server, trying again is the only safe course.
        FailureKind::Network
    };
    let hint = hint(s, phase, kind, code);
    SmtpFailure {
        server: s.server(),
        phase,
        kind,
        code,
        reply,
        hint,
    }
}

/// rustls reports a refused certificate as an `io::Error` of kind `InvalidData`.
fn is_tls_data_error(e: &lettre::transport::smtp::Error) -> bool {
    use std::error::Error as _;
    let mut src = e.source();
    while let Some(err) = src {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::InvalidData;
        }
        src = err.source();
    }
    false
}

fn hint(s: &Settings, phase: Phase, kind: FailureKind, code: Option<u16>) -> Option<String> {
    let h = match (phase, kind, code) {
        (Phase::Login, FailureKind::Permanent, _) if s.is_gmail() => {
            "Gmail refused the login: use an app password (Google Account > Security > \
             2-Step Verification > App passwords), not the account password, and the full \
             Gmail address as mail.username; see README"
                .to_string()
        }
        (Phase::Login, FailureKind::Permanent, _) => {
            "The server refused the login: check mail.username and the password \
             (mail.password_file)"
                .to_string()
        }
        (Phase::Recipient, FailureKind::Permanent, _) => {
            "A recipient was refused: check the addresses in mail.to and mail.cc".to_string()
        }
        (Phase::MailFrom, FailureKind::Permanent, _) => {
            "The sender was refused: mail.from must be the login or an address the account may send as".to_string()
        }
        (_, FailureKind::Permanent, Some(552 | 523)) => {
            "The message is too large for the server: lower mail.max_size_mb".to_string()
        }
        (_, FailureKind::Tls, _) => format!(
            "The server's certificate is not trusted for {}: for a private relay, set \
             mail.ca_file to its CA certificate (PEM)",
            s.host
        ),
        (_, FailureKind::Client, _) if s.security == Security::Starttls => {
            "Check that the server offers STARTTLS and AUTH PLAIN or LOGIN (or use tls = \"tls\" on port 465)"
                .to_string()
        }
        (_, FailureKind::Network | FailureKind::Transient, _) => {
            "The message stays in the spool; the next run sends it".to_string()
        }
        _ => return None,
    };
    Some(h)
}

fn tls_parameters(s: &Settings) -> Result<TlsParameters> {
    let mut b = TlsParameters::builder(s.host.clone());
    if let Some(ca) = &s.ca_file {
        b = b.add_root_certificate(load_certificate(ca)?);
    }
    b.build().map_err(|e| MailError::Config {
        key: "mail.ca_file",
        reason: format!("setting up TLS: {e}"),
    })
}

/// Connects, secures and logs in.
fn open(
    s: &Settings,
    tls: Option<&TlsParameters>,
) -> std::result::Result<SmtpConnection, SmtpFailure> {
    let hello = ClientId::default();
    let wrapper = if s.security == Security::Tls {
        tls
    } else {
        None
    };
    let mut conn = SmtpConnection::connect(
        (s.host.as_str(), s.port),
        Some(s.timeout),
        &hello,
        wrapper,
        None,
    )
    .map_err(|e| failure(s, Phase::Connect, &e))?;
    if s.security == Security::Starttls
        && let Some(params) = tls
        && let Err(e) = conn.starttls(params, &hello)
    {
        conn.abort();
        return Err(failure(s, Phase::Starttls, &e));
    }
    if let (Some(user), Some(pw)) = (&s.username, &s.password) {
        let creds = Credentials::new(user.clone(), pw.expose().to_string());
        if let Err(e) = conn.auth(&s.mechanisms, &creds) {
            conn.abort();
            return Err(failure(s, Phase::Login, &e));
        }
    }
    Ok(conn)
}

/// One attempt: connect, log in, MAIL, RCPT, DATA, message. Returns the final reply.
fn attempt(
    s: &Settings,
    tls: Option<&TlsParameters>,
    envelope: &Envelope,
    bytes: &[u8],
) -> std::result::Result<String, SmtpFailure> {
    let mut conn = open(s, tls)?;
    let result = (|| {
        let mut params = Vec::new();
        if envelope
            .to()
            .iter()
            .chain(envelope.from())
            .any(|a| !AsRef::<str>::as_ref(a).is_ascii())
        {
            params.push(MailParameter::SmtpUtfEight);
        }
        if !bytes.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        conn.command(Mail::new(envelope.from().cloned(), params))
            .map_err(|e| failure(s, Phase::MailFrom, &e))?;
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), vec![]))
                .map_err(|e| failure(s, Phase::Recipient, &e))?;
        }
        conn.command(Data)
            .map_err(|e| failure(s, Phase::Data, &e))?;
        conn.message(bytes)
            .map_err(|e| failure(s, Phase::Message, &e))
    })();
    match &result {
        // Polite QUIT; its answer no longer matters.
        Ok(_) => {
            let _ = conn.quit();
        }
        Err(_) => conn.abort(),
    }
    result.map(|r| reply_text(&r))
}

/// Checks that the server is reachable over the configured TLS and that the login
/// works. Sends no message.
///
/// # Errors
/// [`MailError::Smtp`] with the server's words and the fix, or a TLS setup error.
pub fn check_login(s: &Settings) -> Result<LoginCheck> {
    let tls = match s.security {
        Security::None => None,
        _ => Some(tls_parameters(s)?),
    };
    let mut conn = open(s, tls.as_ref()).map_err(MailError::Smtp)?;
    let _ = conn.quit();
    let authenticated = s.username.is_some() && s.password.is_some();
    tracing::info!(server = %s.server(), authenticated, "SMTP login check passed");
    Ok(LoginCheck {
        server: s.server(),
        security: s.security,
        authenticated,
        username: s.username.clone(),
    })
}

/// Sends `bytes` with retries on transient failures. `on_attempt` is called before
/// each attempt (to record it) and `on_result` after it.
fn deliver(
    s: &Settings,
    bytes: &[u8],
    message_id: &str,
    mut before: impl FnMut(u32) -> Result<()>,
    mut after: impl FnMut(u32, &std::result::Result<String, SmtpFailure>) -> Result<()>,
) -> Result<Delivery> {
    let tls = match s.security {
        Security::None => None,
        _ => Some(tls_parameters(s)?),
    };
    let envelope = s.envelope()?;
    let attempts = s.retry.attempts.max(1);
    let mut n = 0;
    loop {
        n += 1;
        before(n)?;
        let r = attempt(s, tls.as_ref(), &envelope, bytes);
        after(n, &r)?;
        match r {
            Ok(reply) => {
                return Ok(Delivery {
                    server: s.server(),
                    message_id: message_id.to_string(),
                    reply,
                    attempts: n,
                });
            }
            Err(f) if f.kind.is_transient() && n < attempts => {
                let wait = s.retry.delay(n);
                tracing::warn!(
                    attempt = n,
                    "{}; trying again in {:.1} s",
                    f.headline(),
                    wait.as_secs_f64()
                );
                std::thread::sleep(wait);
            }
            Err(f) => return Err(MailError::Smtp(f)),
        }
    }
}

/// Sends a small test message to the configured recipients (not spooled, not recorded).
///
/// # Errors
/// As [`check_login`], after retries on transient failures.
pub fn send_test(s: &Settings) -> Result<Delivery> {
    let host = hostname();
    let text = format!(
        "This is a test message from netdigest on {host}, sent {}.\n\n\
         If you can read it, the morning report will reach you the same way.\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let message_id = format!(
        "<netdigest-test-{}-{}@{host}>",
        Utc::now().timestamp_millis(),
        std::process::id()
    );
    let mut b = lettre::Message::builder()
        .from(s.from.clone())
        .subject(format!("netdigest test message from {host}"))
        .message_id(Some(message_id.clone()))
        .date_now()
        .user_agent(format!("netdigest {}", env!("CARGO_PKG_VERSION")));
    for t in &s.to {
        b = b.to(t.clone());
    }
    for c in &s.cc {
        b = b.cc(c.clone());
    }
    if let Some(r) = &s.reply_to {
        b = b.reply_to(r.clone());
    }
    let msg = b.body(text).map_err(|e| MailError::Config {
        key: "mail.to",
        reason: format!("building the test message: {e}"),
    })?;
    let d = deliver(s, &msg.formatted(), &message_id, |_| Ok(()), |_, _| Ok(()))?;
    tracing::info!(server = %d.server, message_id = %d.message_id, reply = %d.reply, "test message sent");
    Ok(d)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "netdigest".into())
}

// ---------------------------------------------------------------------------
// The spool: mail.json and the per-night lock

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
    pub attempts: Vec<Attempt>,
}

impl MailRecord {
    /// Reads `<night>/mail.json`; a missing file is a fresh record.
    ///
    /// # Errors
    /// The file exists but cannot be read or parsed. Such a night is not sent: it may
    /// have been sent already.
    pub fn load(night_dir: &Path) -> Result<MailRecord> {
        let path = night_dir.join(RECORD_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| MailError::Spool {
                night: night_name(night_dir),
                reason: format!(
                    "{}: unreadable delivery record ({e}); not sending in case it was sent: \
                     check the mailbox, then delete the file to send again",
                    path.display()
                ),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(MailRecord {
                night: night_name(night_dir),
                ..MailRecord::default()
            }),
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
        let path = night_dir.join(RECORD_FILE);
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| MailError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        write_atomic(&path, &json).map_err(|e| MailError::File {
            path,
            reason: format!("writing the delivery record: {e}"),
        })
    }
}

fn night_name(night_dir: &Path) -> String {
    night_dir.file_name().map_or_else(
        || night_dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `<night>/mail.lock`, held while the night is being sent; removed on drop. Holds
/// the owner's pid and start time, so a lock left by a crash (or a pid reused after a
/// reboot) is recognised as stale.
struct NightLock {
    path: PathBuf,
}

impl NightLock {
    fn acquire(night_dir: &Path) -> Result<NightLock> {
        let path = night_dir.join(LOCK_FILE);
        for _ in 0..3 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let me = std::process::id();
                    let stamp = process_start(me).unwrap_or_default();
                    f.write_all(format!("{me} {stamp}\n").as_bytes())
                        .map_err(|e| MailError::File {
                            path: path.clone(),
                            reason: e.to_string(),
                        })?;
                    return Ok(NightLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let mut it = text.split_whitespace();
                    let pid: u32 = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                    let stamp = it.next().unwrap_or("");
                    if holder_alive(&path, pid, stamp) {
                        return Err(MailError::Locked {
                            night: night_name(night_dir),
                            pid,
                            path,
                        });
                    }
                    tracing::warn!("{}: removing a stale lock (pid {pid})", path.display());
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => {
                    return Err(MailError::File {
                        path,
                        reason: format!("creating the lock: {e}"),
                    });
                }
            }
        }
        Err(MailError::Locked {
            night: night_name(night_dir),
            pid: 0,
            path,
        })
    }
}

impl Drop for NightLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The start time of a process (field 22 of `/proc/PID/stat`), Linux only.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(String::from)
}

fn holder_alive(path: &Path, pid: u32, stamp: &str) -> bool {
    if pid == 0 {
        // Unreadable or half-written lock: stale once it is a minute old.
        return !older_than(path, Duration::from_secs(60));
    }
    if Path::new("/proc/self/stat").exists() {
        return process_start(pid).is_some_and(|s| s == stamp);
    }
    !older_than(path, Duration::from_secs(3600))
}

fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|e| e > age)
}

// ---------------------------------------------------------------------------
// Sending nights

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
    /// Not tried: an older night failed in this run.
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
                write!(f, "{night}: not tried (an earlier night failed); next run")
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
/// older than `max_age_days` (recorded as expired) and stopping at the first failure
/// (the later nights are [`Outcome::Deferred`]). A night already sent is never sent again.
///
/// # Errors
/// Only when `<state_dir>/nights` exists but cannot be listed; per-night failures are
/// [`Outcome::Failed`] (see [`first_failure`]).
pub fn send_pending(state_dir: &Path, s: &Settings, now: DateTime<Utc>) -> Result<Vec<Outcome>> {
    let dir = state_dir.join("nights");
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
            NaiveDate::parse_from_str(&name, "%Y-%m-%d")
                .ok()
                .map(|d| (d, e.path()))
        })
        .collect();
    nights.sort();
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
            if pending && night_dir.join(SPOOL_FILE).exists() {
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
        stopped = matches!(o, Outcome::Failed { .. });
        out.push(o);
    }
    Ok(out)
}

/// Records an old unsent night as expired (once) and says so.
fn expire(night_dir: &Path, age_days: i64) -> Outcome {
    let night = night_name(night_dir);
    match MailRecord::load(night_dir) {
        Ok(r) if r.status == Status::Sent => Outcome::AlreadySent {
            night,
            message_id: r.message_id,
        },
        Ok(_) if !night_dir.join(SPOOL_FILE).exists() => Outcome::NoReport { night },
        Ok(mut r) => {
            if r.status != Status::Expired {
                tracing::warn!(
                    night = %night,
                    "the report of {night} was never sent and is {age_days} days old \
                     (mail.max_age_days): giving up on it; it stays in {}",
                    night_dir.join(SPOOL_FILE).display()
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
            Outcome::Failed { night, error }
        }
    }
}

fn send_night_inner(night_dir: &Path, night: &str, s: &Settings) -> Result<Outcome> {
    // Cheap check first, then again under the lock (another process may just have sent it).
    if let r @ MailRecord {
        status: Status::Sent,
        ..
    } = MailRecord::load(night_dir)?
    {
        return Ok(Outcome::AlreadySent {
            night: night.to_string(),
            message_id: r.message_id,
        });
    }
    let spool = night_dir.join(SPOOL_FILE);
    let raw = match std::fs::read(&spool) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Outcome::NoReport {
                night: night.to_string(),
            });
        }
        Err(e) => {
            return Err(MailError::File {
                path: spool,
                reason: format!("reading the spooled report: {e}"),
            });
        }
    };
    let _lock = NightLock::acquire(night_dir)?;
    let mut record = MailRecord::load(night_dir)?;
    if record.status == Status::Sent {
        return Ok(Outcome::AlreadySent {
            night: night.to_string(),
            message_id: record.message_id,
        });
    }
    record.night = night.to_string();
    if record.status == Status::Sending {
        tracing::warn!(
            night = %night,
            "the previous run stopped while sending {night}; the server may have taken it: \
             sending again with the same Message-ID ({}), which Gmail files only once",
            record.message_id.as_deref().unwrap_or("?")
        );
        for a in &mut record.attempts {
            if a.result == AttemptResult::InProgress {
                a.result = AttemptResult::Interrupted;
            }
        }
    }
    let prepared = prepare(&raw, s, night)?;
    record.message_id = Some(prepared.message_id.clone());
    record.note.clone_from(&prepared.note);
    if let Some(n) = &prepared.note {
        tracing::warn!(night = %night, "{n}");
    }
    let size = prepared.bytes.len() as u64;
    let server = s.server();
    let message_id = prepared.message_id.clone();
    // Both closures update the record in turn.
    let record = std::cell::RefCell::new(record);
    let result = deliver(
        s,
        &prepared.bytes,
        &prepared.message_id,
        |_| {
            let mut r = record.borrow_mut();
            r.status = Status::Sending;
            r.attempts.push(Attempt {
                started: Utc::now(),
                finished: None,
                server: server.clone(),
                message_id: message_id.clone(),
                bytes: size,
                result: AttemptResult::InProgress,
                phase: None,
                reply: None,
            });
            // Before the server sees the message: a crash from here on leaves `sending`.
            r.save(night_dir)
        },
        |_, res| {
            let mut r = record.borrow_mut();
            let finished = Utc::now();
            let (status, result, phase, reply) = match res {
                Ok(reply) => (Status::Sent, AttemptResult::Sent, None, reply.clone()),
                Err(f) => (
                    if f.kind.is_transient() {
                        Status::Pending
                    } else {
                        Status::Failed
                    },
                    if f.kind.is_transient() {
                        AttemptResult::Transient
                    } else {
                        AttemptResult::Permanent
                    },
                    Some(f.phase),
                    f.reply.clone(),
                ),
            };
            if let Some(a) = r.attempts.last_mut() {
                a.finished = Some(finished);
                a.result = result;
                a.phase = phase;
                a.reply = Some(reply.clone());
            }
            r.status = status;
            if status == Status::Sent {
                r.sent_at = Some(finished);
                r.reply = Some(reply);
            }
            // Right after the server's 250: from here on the night is never sent again.
            match r.save(night_dir) {
                Err(e) if status == Status::Sent => {
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
    )?;
    tracing::info!(
        night = %night,
        server = %result.server,
        message_id = %result.message_id,
        reply = %result.reply,
        attempts = result.attempts,
        "report sent"
    );
    Ok(Outcome::Sent {
        night: night.to_string(),
        delivery: result,
        note: prepared.note,
    })
}

// ---------------------------------------------------------------------------
// Preparing the spooled message: addresses from the config, Message-ID, size guard

/// The bytes to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub bytes: Vec<u8>,
    pub message_id: String,
    /// What the size guard left out.
    pub note: Option<String>,
}

/// Readies a spooled message for sending: From/To/Cc/Reply-To from the settings (the
/// config at send time wins, so a fixed `mail.to` applies to an unsent night), a
/// Message-ID (kept; made from the night and the content if missing), and the size
/// guard. Deterministic: the same spool and settings give the same bytes, so a
/// resend after a crash carries the same Message-ID.
///
/// # Errors
/// The spool is not a message (no header block).
pub fn prepare(raw: &[u8], s: &Settings, night: &str) -> Result<Prepared> {
    let (mut fields, body) = split_header(raw);
    if fields.is_empty() {
        return Err(MailError::Spool {
            night: night.to_string(),
            reason: "report.eml has no header: re-run the report stage".into(),
        });
    }
    let message_id = match field_value(&fields, "message-id") {
        Some(id) if !id.is_empty() => id,
        _ => {
            let id = format!("<netdigest-{night}-{:016x}@netdigest>", fnv1a(raw));
            fields.push(Field::new("Message-ID", &id));
            id
        }
    };
    let mut h = Headers::new();
    h.set(header::From::from(Mailboxes::from(s.from.clone())));
    h.set(header::To::from(
        s.to.iter().cloned().collect::<Mailboxes>(),
    ));
    if !s.cc.is_empty() {
        h.set(header::Cc::from(
            s.cc.iter().cloned().collect::<Mailboxes>(),
        ));
    }
    if let Some(r) = &s.reply_to {
        h.set(header::ReplyTo::from(Mailboxes::from(r.clone())));
    }
    fields.retain(|f| !matches!(f.name.as_str(), "from" | "to" | "cc" | "bcc" | "reply-to"));
    let mut new_fields = split_header(format!("{h}\r\n").as_bytes()).0;
    new_fields.append(&mut fields);
    let mut entity = Entity {
        fields: new_fields,
        body: Body::Leaf(body.to_vec()),
    };
    let bytes = entity.to_bytes();
    if bytes.len() as u64 <= s.max_size_bytes {
        return Ok(Prepared {
            bytes,
            message_id,
            note: None,
        });
    }
    entity = parse_entity(&entity.to_bytes(), 0);
    let (bytes, note) = shrink(entity, s.max_size_bytes, night);
    Ok(Prepared {
        bytes,
        message_id,
        note: Some(note),
    })
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One header field: its lower-case name and raw lines (folded lines included).
#[derive(Debug, Clone)]
struct Field {
    name: String,
    raw: Vec<u8>,
}

impl Field {
    fn new(name: &str, value: &str) -> Field {
        Field {
            name: name.to_ascii_lowercase(),
            raw: format!("{name}: {value}\r\n").into_bytes(),
        }
    }

    /// The unfolded value after the colon.
    fn value(&self) -> String {
        let s = String::from_utf8_lossy(&self.raw);
        let v = s.split_once(':').map_or("", |(_, v)| v);
        v.replace("\r\n", "").replace('\n', "").trim().to_string()
    }
}

fn field_value(fields: &[Field], name: &str) -> Option<String> {
    fields.iter().find(|f| f.name == name).map(Field::value)
}

/// Lines of `b`, each with its line end.
fn lines(b: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= b.len() {
            return None;
        }
        let start = pos;
        let end = b[pos..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |i| pos + i + 1);
        pos = end;
        Some((start, &b[start..end]))
    })
}

fn is_blank(line: &[u8]) -> bool {
    line == b"\r\n" || line == b"\n"
}

/// Splits a message or part into header fields and body (after the blank line).
fn split_header(b: &[u8]) -> (Vec<Field>, &[u8]) {
    let mut fields: Vec<Field> = Vec::new();
    for (start, line) in lines(b) {
        if is_blank(line) {
            return (fields, &b[start + line.len()..]);
        }
        if matches!(line.first(), Some(b' ' | b'\t'))
            && let Some(last) = fields.last_mut()
        {
            last.raw.extend_from_slice(line);
            continue;
        }
        let name = line.iter().position(|&c| c == b':').map(|i| {
            String::from_utf8_lossy(&line[..i])
                .trim()
                .to_ascii_lowercase()
        });
        let Some(name) = name else {
            // Not a header line: the part has no header block.
            return (fields, &b[start..]);
        };
        let mut raw = line.to_vec();
        if !raw.ends_with(b"\n") {
            raw.extend_from_slice(b"\r\n");
        }
        fields.push(Field { name, raw });
    }
    (fields, &[])
}

/// A MIME entity: header fields and either a leaf body or parts.
#[derive(Debug, Clone)]
struct Entity {
    fields: Vec<Field>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Leaf(Vec<u8>),
    Multi {
        boundary: String,
        preamble: Vec<u8>,
        parts: Vec<Entity>,
        epilogue: Vec<u8>,
    },
}

/// A parameter of a header value (`boundary` of `multipart/mixed; boundary="x"`).
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn parse_entity(b: &[u8], depth: usize) -> Entity {
    let (fields, body) = split_header(b);
    let ct = field_value(&fields, "content-type").unwrap_or_default();
    let boundary = ct
        .to_ascii_lowercase()
        .starts_with("multipart/")
        .then(|| param(&ct, "boundary"))
        .flatten()
        .filter(|_| depth < 16);
    let Some(boundary) = boundary else {
        return Entity {
            fields,
            body: Body::Leaf(body.to_vec()),
        };
    };
    let delim = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut preamble = None;
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    let mut epilogue = Vec::new();
    for (start, line) in lines(body) {
        let t = line.trim_ascii_end();
        let is_delim = t == delim.as_bytes();
        let is_close = t == close.as_bytes();
        if !is_delim && !is_close {
            continue;
        }
        match part_start {
            None => preamble = Some(body[..start].to_vec()),
            Some(ps) => {
                // The line end before a delimiter belongs to the delimiter.
                let mut end = start.max(ps);
                if body[ps..end].ends_with(b"\r\n") {
                    end -= 2;
                } else if body[ps..end].ends_with(b"\n") {
                    end -= 1;
                }
                parts.push(parse_entity(&body[ps..end], depth + 1));
            }
        }
        part_start = Some(start + line.len());
        if is_close {
            epilogue = body[start + line.len()..].to_vec();
            part_start = None;
            break;
        }
    }
    if let Some(ps) = part_start {
        // No closing delimiter: the last part runs to the end.
        parts.push(parse_entity(&body[ps..], depth + 1));
    }
    match preamble {
        Some(preamble) => Entity {
            fields,
            body: Body::Multi {
                boundary,
                preamble,
                parts,
                epilogue,
            },
        },
        None => Entity {
            fields,
            body: Body::Leaf(body.to_vec()),
        },
    }
}

impl Entity {
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        for f in &self.fields {
            out.extend_from_slice(&f.raw);
        }
        out.extend_from_slice(b"\r\n");
        match &self.body {
            Body::Leaf(b) => out.extend_from_slice(b),
            Body::Multi {
                boundary,
                preamble,
                parts,
                epilogue,
            } => {
                out.extend_from_slice(preamble);
                for p in parts {
                    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                    p.write(out);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
                out.extend_from_slice(epilogue);
            }
        }
    }

    fn is_attachment(&self) -> bool {
        field_value(&self.fields, "content-disposition")
            .is_some_and(|d| d.to_ascii_lowercase().starts_with("attachment"))
    }

    fn is_image(&self) -> bool {
        field_value(&self.fields, "content-type")
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("image/"))
    }

    /// Removes leaf parts matching `drop`, at any depth; returns how many.
    fn remove_leaves(&mut self, drop: &impl Fn(&Entity) -> bool) -> usize {
        let Body::Multi { parts, .. } = &mut self.body else {
            return 0;
        };
        let before = parts.len();
        parts.retain(|p| matches!(p.body, Body::Multi { .. }) || !drop(p));
        let mut n = before - parts.len();
        for p in parts.iter_mut() {
            n += p.remove_leaves(drop);
        }
        n
    }
}

/// The size guard: drops attachments, then (if still too large) images, and adds a
/// note saying so as the first part the reader sees. Returns the bytes and the note.
fn shrink(mut entity: Entity, limit: u64, night: &str) -> (Vec<u8>, String) {
    let original = entity.to_bytes().len() as u64;
    let attachments = entity.remove_leaves(&Entity::is_attachment);
    let mut images = 0;
    if entity.to_bytes().len() as u64 > limit {
        images = entity.remove_leaves(&Entity::is_image);
    }
    let mut left_out = Vec::new();
    if attachments > 0 {
        left_out.push(format!("{attachments} attachment(s)"));
    }
    if images > 0 {
        left_out.push(format!("{images} chart image(s)"));
    }
    let mb = |n: u64| format!("{}.{} MB", n / 1_000_000, n % 1_000_000 / 100_000);
    let note = if left_out.is_empty() {
        format!(
            "the message is {} (limit {}) and has nothing to leave out",
            mb(original),
            mb(limit)
        )
    } else {
        format!(
            "the message was {} (limit {}, mail.max_size_mb), so {} left out; the full \
             report is in nights/{night}/report/ on the netdigest machine",
            mb(original),
            mb(limit),
            left_out.join(" and ")
                + if attachments + images == 1 {
                    " was"
                } else {
                    " were"
                }
        )
    };
    if left_out.is_empty() {
        tracing::warn!("{note}: sending it as it is");
        return (entity.to_bytes(), note);
    }
    let note_part = Entity {
        fields: vec![
            Field::new("Content-Type", "text/plain; charset=utf-8"),
            Field::new("Content-Transfer-Encoding", "7bit"),
            Field::new("Content-Disposition", "inline"),
        ],
        body: Body::Leaf(format!("Note: {note}.\r\n").into_bytes()),
    };
    let is_mixed = field_value(&entity.fields, "content-type")
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("multipart/mixed"));
    if let (Body::Multi { parts, .. }, true) = (&mut entity.body, is_mixed) {
        parts.insert(0, note_part);
    } else {
        // Wrap: multipart/mixed [ note, the original body with its own content headers ].
        let (inner, outer): (Vec<Field>, Vec<Field>) = std::mem::take(&mut entity.fields)
            .into_iter()
            .partition(|f| {
                matches!(
                    f.name.as_str(),
                    "content-type" | "content-transfer-encoding"
                )
            });
        let boundary = format!("netdigest-note-{:016x}", fnv1a(night.as_bytes()));
        let inner = Entity {
            fields: inner,
            body: std::mem::replace(&mut entity.body, Body::Leaf(Vec::new())),
        };
        entity.fields = outer;
        entity.fields.push(Field::new(
            "Content-Type",
            &format!("multipart/mixed; boundary=\"{boundary}\""),
        ));
        entity.body = Body::Multi {
            boundary,
            preamble: Vec::new(),
            parts: vec![note_part, inner],
            epilogue: Vec::new(),
        };
    }
    (entity.to_bytes(), note)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cfg() -> MailConfig {
        MailConfig {
            to: vec!["me@example.org".into()],
            username: Some("sender@gmail.com".into()),
            smtp: Some("gmail".into()),
            password: Some(Secret::new("abcd efgh ijkl mnop")),
            ..MailConfig::default()
        }
    }

    fn settings() -> Settings {
        Settings::from_config_with(&cfg(), None).unwrap()
    }

    #[test]
    fn presets_and_generic_servers() {
        let s = settings();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("smtp.gmail.com", 587, Security::Starttls)
        );
        let mut c = cfg();
        c.smtp = Some("gmail-tls".into());
        let s = Settings::from_config_with(&c, None).unwrap();
        assert_eq!((s.port, s.security), (465, Security::Tls));
        let mut c = cfg();
        c.smtp = None;
        c.host = Some("mail.example.org".into());
        c.tls = "tls".into();
        let s = Settings::from_config_with(&c, None).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("mail.example.org", 465));
        c.host = None;
        let e = Settings::from_config_with(&c, None).unwrap_err();
        assert!(e.to_string().contains("mail.host"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn tls_none_only_to_loopback() {
        let mut c = cfg();
        c.smtp = None;
        c.tls = "none".into();
        for (host, ok) in [
            ("127.0.0.1", true),
            ("::1", true),
            ("[::1]", true),
            ("localhost", true),
            ("127.0.0.53", true),
            ("192.168.1.1", false),
            ("mail.example.org", false),
            ("localhost.example.org", false),
        ] {
            c.host = Some(host.into());
            let r = Settings::from_config_with(&c, None);
            assert_eq!(r.is_ok(), ok, "{host}: {r:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains("loopback"), "{e}");
            }
        }
    }

    #[test]
    fn password_sources_in_order_and_spaces() {
        let dir = std::env::temp_dir().join(format!("nd-mail-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let creds = dir.join("creds");
        std::fs::create_dir_all(&creds).unwrap();
        std::fs::write(creds.join(CREDENTIAL_NAME), "cred cred cred cred\n").unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "  file file file file \n").unwrap();
        let mut c = cfg();
        c.password_file = Some(file.clone());
        let s = Settings::from_config_with(&c, Some(&creds)).unwrap();
        assert_eq!(s.password.as_ref().unwrap().expose(), "filefilefilefile");
        c.password_file = None;
        let s = Settings::from_config_with(&c, Some(&creds)).unwrap();
        assert_eq!(s.password.as_ref().unwrap().expose(), "credcredcredcred");
        let s = Settings::from_config_with(&c, None).unwrap();
        assert_eq!(s.password.as_ref().unwrap().expose(), "abcdefghijklmnop");
        c.password = None;
        let e = Settings::from_config_with(&c, None).unwrap_err();
        assert!(e.to_string().contains("password_file"), "{e}");
        // A missing file is an error, not a silent fall-through to the next source.
        c.password_file = Some(dir.join("missing"));
        assert!(Settings::from_config_with(&c, Some(&creds)).is_err());
        // Not Gmail and not app-password-shaped: inner spaces are kept.
        assert_eq!(normalise_password(" a b c\n", false), "a b c");
        assert_eq!(normalise_password("a b c", true), "abc");
        assert_eq!(
            normalise_password("abcd efgh ijkl mnop", false),
            "abcdefghijklmnop"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn password_not_in_debug() {
        let s = settings();
        let d = format!("{s:?}");
        assert!(!d.contains("abcd") && !d.contains("abcdefgh"), "{d}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(60),
        };
        for _ in 0..50 {
            let d1 = p.delay(1);
            assert!(
                d1 >= Duration::from_secs(5) && d1 < Duration::from_secs(15),
                "{d1:?}"
            );
            let d3 = p.delay(3);
            assert!(
                d3 >= Duration::from_secs(20) && d3 < Duration::from_secs(60),
                "{d3:?}"
            );
            let d9 = p.delay(40);
            assert!(
                d9 >= Duration::from_secs(30) && d9 < Duration::from_secs(90),
                "{d9:?}"
            );
        }
    }

    fn sample(attachment: usize, image: usize) -> Vec<u8> {
        use lettre::message::header::ContentType;
        use lettre::message::{Attachment, MultiPart, SinglePart};
        let related = MultiPart::related()
            .singlepart(SinglePart::html(
                "<p>hi <img src=\"cid:c@netdigest\"></p>".to_string(),
            ))
            .singlepart(
                Attachment::new_inline_with_name("c@netdigest".into(), "c.jpg".into()).body(
                    vec![0xAB_u8; image],
                    ContentType::parse("image/jpeg").unwrap(),
                ),
            );
        let alt = MultiPart::alternative()
            .singlepart(SinglePart::plain("hi".to_string()))
            .multipart(related);
        let body = if attachment > 0 {
            MultiPart::mixed().multipart(alt).singlepart(
                Attachment::new("index.html".into())
                    .body("x".repeat(attachment), ContentType::TEXT_HTML),
            )
        } else {
            alt
        };
        lettre::Message::builder()
            .from("a@example.org".parse().unwrap())
            .to("old@example.org".parse().unwrap())
            .subject("netdigest 2026-11-27: 0 new devices")
            .message_id(Some("<id-1@netdigest>".into()))
            .multipart(body)
            .unwrap()
            .formatted()
    }

    fn leaves(e: &Entity, out: &mut Vec<String>) {
        match &e.body {
            Body::Leaf(_) => out.push(field_value(&e.fields, "content-type").unwrap_or_default()),
            Body::Multi { parts, .. } => parts.iter().for_each(|p| leaves(p, out)),
        }
    }

    #[test]
    fn prepare_rewrites_addresses_and_keeps_message_id() {
        let mut s = settings();
        s.cc = vec!["cc@example.org".parse().unwrap()];
        s.reply_to = Some("reply@example.org".parse().unwrap());
        s.to.push("two@example.org".parse().unwrap());
        let raw = sample(100, 100);
        let p = prepare(&raw, &s, "2026-11-27").unwrap();
        assert_eq!(p.message_id, "<id-1@netdigest>");
        assert!(p.note.is_none());
        let text = String::from_utf8(p.bytes.clone()).unwrap();
        let head = text.split("\r\n\r\n").next().unwrap();
        assert!(!head.contains("old@example.org"), "{head}");
        assert!(
            head.contains("To: me@example.org, two@example.org"),
            "{head}"
        );
        assert!(head.contains("Cc: cc@example.org"), "{head}");
        assert!(head.contains("Reply-To: reply@example.org"), "{head}");
        assert!(head.contains("From: sender@gmail.com"), "{head}");
        assert!(head.contains("Subject: netdigest 2026-11-27"), "{head}");
        // Same spool, same bytes: a resend carries the same Message-ID.
        assert_eq!(prepare(&raw, &s, "2026-11-27").unwrap().bytes, p.bytes);
        let env = s.envelope().unwrap();
        assert_eq!(env.to().len(), 3);
        assert_eq!(env.from().unwrap().to_string(), "sender@gmail.com");
        // The tree round-trips: same leaves.
        let mut a = Vec::new();
        leaves(&parse_entity(&p.bytes, 0), &mut a);
        assert_eq!(a.len(), 4, "{a:?}");
    }

    #[test]
    fn size_guard_drops_attachments_then_images() {
        let mut s = settings();
        let raw = sample(400_000, 100_000);
        // Big enough once the attachment is gone.
        s.max_size_bytes = 300_000;
        let p = prepare(&raw, &s, "2026-11-27").unwrap();
        assert!(p.bytes.len() <= 300_000, "{}", p.bytes.len());
        let note = p.note.unwrap();
        assert!(note.contains("1 attachment(s) was left out"), "{note}");
        let mut l = Vec::new();
        leaves(&parse_entity(&p.bytes, 0), &mut l);
        assert_eq!(l.len(), 4, "{l:?}");
        assert!(l[0].starts_with("text/plain"), "note first: {l:?}");
        assert!(l.iter().any(|c| c.starts_with("image/jpeg")), "{l:?}");
        assert!(
            !l.iter()
                .any(|c| c.starts_with("text/html") && c.contains("index")),
            "{l:?}"
        );
        // Too small even then: the images go too.
        s.max_size_bytes = 50_000;
        let p = prepare(&raw, &s, "2026-11-27").unwrap();
        let note = p.note.unwrap();
        assert!(
            note.contains("attachment(s) and 1 chart image(s) were left out"),
            "{note}"
        );
        let mut l = Vec::new();
        leaves(&parse_entity(&p.bytes, 0), &mut l);
        assert!(!l.iter().any(|c| c.starts_with("image/")), "{l:?}");
        // No mixed at the top (no attachment): the message is wrapped to add the note.
        let raw = sample(0, 200_000);
        let p = prepare(&raw, &s, "2026-11-27").unwrap();
        let top = parse_entity(&p.bytes, 0);
        assert!(
            field_value(&top.fields, "content-type")
                .unwrap()
                .starts_with("multipart/mixed")
        );
        let mut l = Vec::new();
        leaves(&top, &mut l);
        assert_eq!(l.len(), 3, "note, text, html: {l:?}");
        assert_eq!(
            field_value(&top.fields, "message-id").unwrap(),
            "<id-1@netdigest>"
        );
    }

    #[test]
    fn missing_message_id_is_made_deterministically() {
        let s = settings();
        let raw = b"Subject: x\r\nContent-Type: text/plain\r\n\r\nhello\r\n";
        let a = prepare(raw, &s, "2026-11-27").unwrap();
        let b = prepare(raw, &s, "2026-11-27").unwrap();
        assert_eq!(a.message_id, b.message_id);
        assert!(a.message_id.starts_with("<netdigest-2026-11-27-"));
        assert!(
            String::from_utf8_lossy(&a.bytes).contains(&format!("Message-ID: {}", a.message_id))
        );
        assert!(prepare(b"not a message", &s, "n").is_err());
    }

    #[test]
    fn lock_is_exclusive_and_stale_locks_are_taken_over() {
        let dir = std::env::temp_dir().join(format!("nd-mail-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let l = NightLock::acquire(&dir).unwrap();
        let e = NightLock::acquire(&dir).err().unwrap();
        assert!(matches!(e, MailError::Locked { .. }), "{e}");
        drop(l);
        assert!(!dir.join(LOCK_FILE).exists());
        // A lock from a process that no longer exists (pid with a wrong start time).
        std::fs::write(dir.join(LOCK_FILE), "999999999 1\n").unwrap();
        let l = NightLock::acquire(&dir).unwrap();
        drop(l);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn record_round_trips_and_corruption_stops_sending() {
        let dir = std::env::temp_dir().join(format!("nd-mail-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = MailRecord::load(&dir).unwrap();
        assert_eq!(r.status, Status::Pending);
        let r = MailRecord {
            night: "x".into(),
            status: Status::Sent,
            message_id: Some("<a@b>".into()),
            ..MailRecord::default()
        };
        r.save(&dir).unwrap();
        assert_eq!(MailRecord::load(&dir).unwrap(), r);
        std::fs::write(dir.join(RECORD_FILE), "{not json").unwrap();
        let e = MailRecord::load(&dir).unwrap_err();
        assert!(e.to_string().contains("delete the file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_messages_carry_the_fix() {
        let s = settings();
        let f = SmtpFailure {
            server: s.server(),
            phase: Phase::Login,
            kind: FailureKind::Permanent,
            code: Some(535),
            reply: "535 5.7.8 Username and Password not accepted".into(),
            hint: hint(&s, Phase::Login, FailureKind::Permanent, Some(535)),
        };
        let msg = f.to_string();
        assert!(msg.contains("login refused"), "{msg}");
        assert!(
            msg.contains("535 5.7.8 Username and Password not accepted"),
            "{msg}"
        );
        assert!(
            msg.contains("Gmail refused the login: use an app password"),
            "{msg}"
        );
        assert!(msg.contains("see README"), "{msg}");
    }
}

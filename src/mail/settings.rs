//! The `[mail]` config resolved into [`Settings`]: the server (preset or host, port
//! and TLS mode), the password from the first source that has one, and the addresses.
//!
//! Invariants: `tls = "none"` is accepted only to a loopback address (a name other than
//! `localhost` is never resolved for that check); a login always has a password; the
//! password lives only in a [`Secret`], never in an error or a log line.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Mechanism;
use lettre::transport::smtp::client::Certificate;

use super::{CREDENTIAL_NAME, DEFAULT_MAX_SIZE_MB, DEFAULT_TIMEOUT, MailError, Result};
use crate::config::{ConfigError, MailConfig, Secret, SmtpPreset, TlsMode};
use crate::message::Addresses;

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
    /// The address headers of the delivered message: the config at send time wins, so
    /// a fixed `mail.to` applies to a night not sent yet.
    pub addresses: Addresses,
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
            return Err(MailError::Config(ConfigError::Invalid {
                key: "mail.tls",
                reason: format!(
                    "\"none\" would send the password and the report in clear text to {host}: \
                     it is allowed only to a loopback address (127.0.0.1, ::1, localhost); \
                     use \"starttls\" or \"tls\""
                ),
            }));
        }
        if cfg.to.is_empty() {
            return Err(MailError::Config(ConfigError::Invalid {
                key: "mail.to",
                reason: "no recipient: set mail.to (one address or a list)".into(),
            }));
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
                return Err(MailError::Config(ConfigError::Invalid {
                    key: "mail.from",
                    reason: "no sender: set mail.username (your Gmail address) or mail.from".into(),
                }));
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
            addresses: Addresses {
                from,
                to,
                cc,
                reply_to,
            },
            ca_file: cfg.ca_file.clone(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy {
                attempts: cfg.attempts.max(1),
                base_delay: Duration::from_secs(cfg.retry_after_s),
                max_delay: Duration::from_secs(cfg.retry_after_s.saturating_mul(10)),
            },
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

    pub(super) fn is_gmail(&self) -> bool {
        self.host.eq_ignore_ascii_case("smtp.gmail.com")
    }

    /// The SMTP envelope: MAIL FROM is the login (what Gmail authenticates), RCPT TO
    /// every To and Cc address once.
    pub(super) fn envelope(&self) -> Result<Envelope> {
        let sender = self
            .username
            .as_deref()
            .and_then(|u| u.parse::<Address>().ok())
            .unwrap_or_else(|| self.addresses.from.email.clone());
        let mut rcpt: Vec<Address> = Vec::new();
        for m in self.addresses.to.iter().chain(&self.addresses.cc) {
            if !rcpt.contains(&m.email) {
                rcpt.push(m.email.clone());
            }
        }
        Envelope::new(Some(sender), rcpt).map_err(|e| {
            MailError::Config(ConfigError::Invalid {
                key: "mail.to",
                reason: e.to_string(),
            })
        })
    }
}

fn parse_mailbox(key: &'static str, s: &str) -> Result<Mailbox> {
    s.trim().parse::<Mailbox>().map_err(|e| {
        MailError::Config(ConfigError::Invalid {
            key,
            reason: format!("{s:?} is not a mail address: {e}"),
        })
    })
}

/// Host, port and security from the preset or the explicit keys.
fn server_of(cfg: &MailConfig) -> Result<(String, u16, Security)> {
    if let Some(preset) = cfg.smtp {
        let (port, security) = match preset {
            SmtpPreset::Gmail => (587, Security::Starttls),
            SmtpPreset::GmailTls => (465, Security::Tls),
        };
        let preset = preset.word();
        if let Some(h) = cfg.host.as_deref().filter(|h| *h != "smtp.gmail.com") {
            return Err(MailError::Config(ConfigError::Invalid {
                key: "mail.host",
                reason: format!(
                    "mail.smtp = {preset:?} already names smtp.gmail.com; remove mail.host ({h:?}) or mail.smtp"
                ),
            }));
        }
        if let Some(p) = cfg.port.filter(|&p| p != port) {
            return Err(MailError::Config(ConfigError::Invalid {
                key: "mail.port",
                reason: format!(
                    "mail.smtp = {preset:?} uses port {port}; remove mail.port ({p}) or mail.smtp"
                ),
            }));
        }
        return Ok(("smtp.gmail.com".into(), port, security));
    }
    let security = match cfg.tls {
        TlsMode::Starttls => Security::Starttls,
        TlsMode::Tls => Security::Tls,
        TlsMode::None => Security::None,
    };
    let host = cfg
        .host
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            MailError::Config(ConfigError::Invalid {
            key: "mail.host",
            reason:
                "no SMTP server: set mail.smtp = \"gmail\", or mail.host (and mail.port, mail.tls)"
                    .into(),
        })
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
            return Err(MailError::Config(ConfigError::Invalid {
                key: "mail.password",
                reason: "is empty".into(),
            }));
        }
        return Ok(Secret::new(pw));
    }
    Err(MailError::Config(ConfigError::Invalid {
        key: "mail.password_file",
        reason: format!(
            "no SMTP password for the login: set mail.password_file, or provide the systemd \
             credential {CREDENTIAL_NAME} (LoadCredential=), or NETDIGEST_MAIL__PASSWORD"
        ),
    }))
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
pub(super) fn normalise_password(s: &str, gmail: bool) -> String {
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

pub(super) fn load_certificate(path: &Path) -> Result<Certificate> {
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

//! One SMTP exchange with lettre's client: connect (STARTTLS or implicit TLS, never a
//! fallback to clear text), log in, MAIL, RCPT, DATA; retries with backoff on transient
//! failures; and every failure turned into an [`SmtpFailure`] with the phase, the
//! server's own words and the fix.
//!
//! Invariant: a failure is transient (retried) only when the server said 4xx or did
//! not answer at all; 5xx, TLS trust failures and client-side refusals are never
//! retried within a run.

use std::fmt;
use std::time::SystemTime;

use chrono::Utc;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use serde::{Deserialize, Serialize};

use super::settings::load_certificate;
use super::{MailError, Result, Security, Settings};
use crate::config::ConfigError;
use crate::message;

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

pub(super) fn hint(
    s: &Settings,
    phase: Phase,
    kind: FailureKind,
    code: Option<u16>,
) -> Option<String> {
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
    b.build().map_err(|e| {
        MailError::Config(ConfigError::Invalid {
            key: "mail.ca_file",
            reason: format!("setting up TLS: {e}"),
        })
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
pub(super) fn deliver(
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
    let b = message::headers(
        &s.addresses,
        &format!("netdigest test message from {host}"),
        &message_id,
        SystemTime::now(),
    );
    let msg = b.body(text).map_err(|e| {
        MailError::Config(ConfigError::Invalid {
            key: "mail.to",
            reason: format!("building the test message: {e}"),
        })
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

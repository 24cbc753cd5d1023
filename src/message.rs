//! The report message: what the report stage leaves in `<night>/report/` for mail, and
//! the one function that turns it into an RFC 5322 message.
//!
//! The report stage calls [`spool`], which writes the message's parts as files
//! (`email.txt`, `email.html`, `index.html`, `charts/*`), then `message.json` (the
//! heading: subject, Message-ID, date, and the list of chart images), then
//! `report.eml`, the whole message as the user opens it when no SMTP server is
//! configured. Mail reads the parts and `message.json` back with [`Spooled::load`] and
//! builds the message it sends with [`Spooled::to_bytes`]: the addresses from the config
//! at send time, everything else as the report stage wrote it. Nothing is parsed out
//! of `report.eml`.
//!
//! # Invariants
//! - `report.eml` is written last: when it exists, every part and `message.json` do.
//! - `build` is the only place that knows the message's shape: multipart/mixed [
//!   multipart/alternative [ text/plain, multipart/related [ text/html, inline images ]
//!   ], index.html attachment ]. `report.eml` and the delivered message both come from it,
//!   so they differ only in their addresses (and MIME boundaries, which are random).
//! - The subject, Message-ID and date are fixed when the report is written: a resend
//!   after a crash carries the same Message-ID.
//! - The Message-ID is random (128 bits from the OS), made the first time a night is
//!   reported and kept in `message.json`; reporting the night again reuses it
//!   ([`message_id_for`]), so a mailbox that has the night's message files a resend
//!   only once, and no two machines make the same one.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, SubsecRound as _, Utc};
use lettre::message::header::{ContentDisposition, ContentType};
use lettre::message::{Attachment, Mailbox, MessageBuilder, MultiPart, SinglePart};
use serde::{Deserialize, Serialize};

use crate::fsutil::{share_dir, write_shared};
use crate::layout::{INDEX_HTML, ReportDir};
use crate::report::ChartImage;

/// Errors writing or reading the spooled message.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("mail address {addr:?}: {reason}")]
    Address { addr: String, reason: String },
    #[error("building the message: {0}")]
    Build(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: unreadable ({reason}): re-run the report stage (netdigest report)", path.display())]
    Manifest { path: PathBuf, reason: String },
}

type Result<T, E = MessageError> = std::result::Result<T, E>;

/// Who the message is from and to. With no recipients configured the message is still
/// built (to `from`), so the `.eml` can be opened locally.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub reply_to: Option<String>,
    pub subject: String,
}

/// The address headers of a message, parsed.
#[derive(Debug, Clone)]
pub struct Addresses {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
}

fn mailbox(addr: &str) -> Result<Mailbox> {
    addr.parse::<Mailbox>().map_err(|e| MessageError::Address {
        addr: addr.to_string(),
        reason: e.to_string(),
    })
}

impl Envelope {
    fn addresses(&self) -> Result<Addresses> {
        let to = if self.to.is_empty() {
            std::slice::from_ref(&self.from)
        } else {
            &self.to
        };
        Ok(Addresses {
            from: mailbox(&self.from)?,
            to: to.iter().map(|t| mailbox(t)).collect::<Result<_>>()?,
            cc: self.cc.iter().map(|c| mailbox(c)).collect::<Result<_>>()?,
            reply_to: self.reply_to.as_deref().map(mailbox).transpose()?,
        })
    }
}

/// What stays fixed from the report stage to delivery: `message.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heading {
    pub subject: String,
    pub message_id: String,
    /// The `Date:` header (whole seconds).
    pub date: DateTime<Utc>,
    /// The chart images, in the order they are attached (files in `charts/`).
    pub charts: Vec<ChartRef>,
    /// Whether `index.html` is attached.
    pub attachment: bool,
}

/// A chart image of the message: `charts/<id>.<jpg|png>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartRef {
    pub id: String,
    pub title: String,
    pub content_type: String,
}

/// The content of the message.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    pub text: &'a str,
    pub html: &'a str,
    pub charts: &'a [ChartImage],
    /// The report page, attached as `index.html`.
    pub index: Option<&'a str>,
}

/// What the size guard leaves out of the delivered message, and the note it adds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trim<'a> {
    pub attachment: bool,
    pub images: bool,
    /// Shown as the first part the reader sees.
    pub note: Option<&'a str>,
}

/// Writes a file of the report, readable by its group: mail runs as another user (see
/// [`crate::layout`]).
fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_shared(path, bytes).map_err(|source| MessageError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| MessageError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read(path)?).map_err(|e| MessageError::Manifest {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The Message-ID of the night spooled in `report_dir`: the one its `message.json`
/// already holds (the night was reported before), else a new random one.
///
/// # Errors
/// The OS gave no random bytes.
pub fn message_id_for(report_dir: &ReportDir, night: &str) -> Result<String> {
    let earlier = std::fs::read(report_dir.message_json())
        .ok()
        .and_then(|json| serde_json::from_slice::<Heading>(&json).ok())
        .map(|h| h.message_id)
        .filter(|id| id.starts_with('<') && id.ends_with('>') && id.contains('@'));
    match earlier {
        Some(id) => Ok(id),
        None => new_message_id(night),
    }
}

/// A new Message-ID: `<netdigest-<night>-<32 hex digits>@localhost>`, the digits 128
/// random bits from the OS.
///
/// # Errors
/// The OS gave no random bytes.
pub fn new_message_id(night: &str) -> Result<String> {
    let mut bits = [0u8; 16];
    getrandom::fill(&mut bits).map_err(|e| MessageError::Build(format!("Message-ID: {e}")))?;
    let hex: String = bits.iter().map(|b| format!("{b:02x}")).collect();
    let night: String = night
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Ok(format!("<netdigest-{night}-{hex}@localhost>"))
}

/// Writes the message into `report_dir`: the parts, `message.json`, and `report.eml`
/// last. Returns the `.eml` path.
///
/// # Errors
/// An address that does not parse, a part lettre refuses, or a file that cannot be
/// written.
pub fn spool(
    report_dir: &ReportDir,
    env: &Envelope,
    message_id: &str,
    parts: &Parts,
) -> Result<PathBuf> {
    let heading = Heading {
        subject: env.subject.clone(),
        message_id: message_id.to_string(),
        date: Utc::now().trunc_subsecs(0),
        charts: parts
            .charts
            .iter()
            .map(|c| ChartRef {
                id: c.id.clone(),
                title: c.title.clone(),
                content_type: c.content_type.clone(),
            })
            .collect(),
        attachment: parts.index.is_some(),
    };
    let eml = build(&env.addresses()?, &heading, parts, None)?;
    let charts = report_dir.charts_dir();
    std::fs::create_dir_all(&charts).map_err(|source| MessageError::Io {
        path: charts.clone(),
        source,
    })?;
    // Mail's user reads the report through the group (nightly lets it enter the night).
    for dir in [report_dir.path(), charts.as_path()] {
        share_dir(dir, 0o050).map_err(|source| MessageError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    for c in parts.charts {
        write(&charts.join(c.file_name()), &c.bytes)?;
    }
    write(&report_dir.email_html(), parts.html.as_bytes())?;
    write(&report_dir.email_txt(), parts.text.as_bytes())?;
    if let Some(index) = parts.index {
        write(&report_dir.index_html(), index.as_bytes())?;
    }
    let mut json = serde_json::to_vec_pretty(&heading).map_err(|e| MessageError::Manifest {
        path: report_dir.message_json(),
        reason: e.to_string(),
    })?;
    json.push(b'\n');
    write(&report_dir.message_json(), &json)?;
    let path = report_dir.report_eml();
    write(&path, &eml)?;
    Ok(path)
}

/// A message spooled by the report stage, read back for sending.
#[derive(Debug, Clone)]
pub struct Spooled {
    pub heading: Heading,
    text: String,
    html: String,
    charts: Vec<ChartImage>,
    index: Option<String>,
}

impl Spooled {
    /// Reads `message.json` and the parts it names from `report_dir`.
    ///
    /// # Errors
    /// A file is missing or unreadable, or `message.json` does not parse.
    pub fn load(report_dir: &ReportDir) -> Result<Spooled> {
        let path = report_dir.message_json();
        let json = std::fs::read(&path).map_err(|e| MessageError::Manifest {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let heading: Heading =
            serde_json::from_slice(&json).map_err(|e| MessageError::Manifest {
                path,
                reason: e.to_string(),
            })?;
        let charts = heading
            .charts
            .iter()
            .map(|c| {
                let mut img = ChartImage {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    content_type: c.content_type.clone(),
                    bytes: Vec::new(),
                };
                img.bytes = read(&report_dir.charts_dir().join(img.file_name()))?;
                Ok(img)
            })
            .collect::<Result<_>>()?;
        let index = if heading.attachment {
            Some(read_text(&report_dir.index_html())?)
        } else {
            None
        };
        Ok(Spooled {
            text: read_text(&report_dir.email_txt())?,
            html: read_text(&report_dir.email_html())?,
            charts,
            index,
            heading,
        })
    }

    /// How many attachments and images the message has.
    #[must_use]
    pub fn counts(&self) -> (usize, usize) {
        (usize::from(self.index.is_some()), self.charts.len())
    }

    /// The message to `addresses`, less what `trim` leaves out.
    ///
    /// # Errors
    /// A part lettre refuses.
    pub fn to_bytes(&self, addresses: &Addresses, trim: Trim) -> Result<Vec<u8>> {
        let parts = Parts {
            text: &self.text,
            html: &self.html,
            charts: if trim.images { &[] } else { &self.charts },
            index: self.index.as_deref().filter(|_| !trim.attachment),
        };
        build(addresses, &self.heading, &parts, trim.note)
    }
}

/// A message's header fields, in the order netdigest writes them: From, To, Cc,
/// Reply-To, Subject, Message-ID, Date, User-Agent.
#[must_use]
pub fn headers(a: &Addresses, subject: &str, message_id: &str, date: SystemTime) -> MessageBuilder {
    let mut b = lettre::Message::builder().from(a.from.clone());
    for t in &a.to {
        b = b.to(t.clone());
    }
    for c in &a.cc {
        b = b.cc(c.clone());
    }
    if let Some(r) = &a.reply_to {
        b = b.reply_to(r.clone());
    }
    b.subject(subject)
        .message_id(Some(message_id.to_string()))
        .date(date)
        .user_agent(format!("netdigest {}", env!("CARGO_PKG_VERSION")))
}

/// Builds the whole message: multipart/mixed [ multipart/alternative [ text/plain,
/// multipart/related [ text/html, inline images ] ], index.html attachment ], with
/// `note` as a first text/plain part when there is one.
fn build(a: &Addresses, h: &Heading, parts: &Parts, note: Option<&str>) -> Result<Vec<u8>> {
    let b = headers(a, &h.subject, &h.message_id, SystemTime::from(h.date));
    let mut related = MultiPart::related().singlepart(SinglePart::html(parts.html.to_string()));
    for c in parts.charts {
        let ct =
            ContentType::parse(&c.content_type).map_err(|e| MessageError::Build(e.to_string()))?;
        related = related.singlepart(
            Attachment::new_inline_with_name(c.cid(), c.file_name()).body(c.bytes.clone(), ct),
        );
    }
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::plain(parts.text.to_string()))
        .multipart(related);
    let note = note.map(|n| {
        SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .header(ContentDisposition::inline())
            .body(format!("Note: {n}.\r\n"))
    });
    let body = match (parts.index, note) {
        (None, None) => alternative,
        (index, note) => {
            let mut mixed = MultiPart::mixed().build();
            if let Some(n) = note {
                mixed = mixed.singlepart(n);
            }
            mixed = mixed.multipart(alternative);
            if let Some(page) = index {
                mixed = mixed.singlepart(
                    Attachment::new(INDEX_HTML.to_string())
                        .body(page.to_string(), ContentType::TEXT_HTML),
                );
            }
            mixed
        }
    };
    let msg = b
        .multipart(body)
        .map_err(|e| MessageError::Build(e.to_string()))?;
    Ok(msg.formatted())
}

//! Unit tests of the mail stage: settings, passwords, backoff, the size guard, the
//! ledger and its lock, failure messages. The SMTP exchange itself is tested against a
//! real server in tests/mail.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::ledger::NightLock;
use super::settings::normalise_password;
use super::smtp::hint;
use super::*;
use crate::config::{MailConfig, Secret, SmtpPreset, TlsMode};
use crate::layout::{NightDir, ReportDir};
use crate::message::{self, Envelope, Parts, Spooled};
use crate::report::ChartImage;

fn cfg() -> MailConfig {
    MailConfig {
        to: vec!["me@example.org".into()],
        username: Some("sender@gmail.com".into()),
        smtp: Some(SmtpPreset::Gmail),
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
    c.smtp = Some(SmtpPreset::GmailTls);
    let s = Settings::from_config_with(&c, None).unwrap();
    assert_eq!((s.port, s.security), (465, Security::Tls));
    let mut c = cfg();
    c.smtp = None;
    c.host = Some("mail.example.org".into());
    c.tls = TlsMode::Tls;
    let s = Settings::from_config_with(&c, None).unwrap();
    assert_eq!((s.host.as_str(), s.port), ("mail.example.org", 465));
    c.host = None;
    let e = Settings::from_config_with(&c, None).unwrap_err();
    assert!(e.to_string().contains("mail.host"), "{e}");
    assert_eq!(
        crate::exit::of_error(&anyhow::Error::from(e)),
        crate::exit::Exit::Usage
    );
}

#[test]
fn retries_come_from_the_config() {
    let s = settings();
    assert_eq!(
        (s.retry.attempts, s.retry.base_delay, s.retry.max_delay),
        (5, Duration::from_secs(30), Duration::from_secs(300)),
        "the defaults: about 8 minutes of retries"
    );
    let mut c = cfg();
    c.attempts = 0;
    c.retry_after_s = 2;
    let s = Settings::from_config_with(&c, None).unwrap();
    assert_eq!(
        (s.retry.attempts, s.retry.base_delay, s.retry.max_delay),
        (1, Duration::from_secs(2), Duration::from_secs(20)),
        "at least one attempt; the longest wait is ten times the first"
    );
}

#[test]
fn tls_none_only_to_loopback() {
    let mut c = cfg();
    c.smtp = None;
    c.tls = TlsMode::None;
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

/// A report spooled as the report stage does, in a fresh directory: a short text
/// part, one chart image of `image` bytes (none when 0), and an `index.html` of `attachment` bytes
/// (none when 0).
fn spooled(name: &str, attachment: usize, image: usize) -> Spooled {
    let dir = std::env::temp_dir().join(format!("nd-mail-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let env = Envelope {
        from: "a@example.org".into(),
        to: vec!["old@example.org".into()],
        cc: Vec::new(),
        reply_to: None,
        subject: "netdigest 2026-11-27: 0 new devices".into(),
    };
    let charts: Vec<ChartImage> = (image > 0)
        .then(|| ChartImage {
            id: "c".into(),
            title: "C".into(),
            content_type: "image/jpeg".into(),
            bytes: vec![0xAB_u8; image],
        })
        .into_iter()
        .collect();
    let index = "x".repeat(attachment);
    let parts = Parts {
        text: "hi",
        html: "<p>hi <img src=\"cid:c@netdigest\"></p>",
        charts: &charts,
        index: (attachment > 0).then_some(index.as_str()),
    };
    let report = ReportDir::new(&dir);
    message::spool(&report, &env, "<id-1@netdigest>", &parts).unwrap();
    let s = Spooled::load(&report).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    s
}

/// The Content-Type of every leaf part, in order (the message as built here has no
/// nested headers other than its parts').
fn leaves(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.split("\r\n--")
        .skip(1)
        .filter_map(|part| {
            let ct = part
                .lines()
                .find_map(|l| l.strip_prefix("Content-Type: "))?;
            (!ct.starts_with("multipart/")).then(|| ct.to_string())
        })
        .collect()
}

#[test]
fn prepare_rewrites_addresses_and_keeps_message_id() {
    let mut s = settings();
    s.addresses.cc = vec!["cc@example.org".parse().unwrap()];
    s.addresses.reply_to = Some("reply@example.org".parse().unwrap());
    s.addresses.to.push("two@example.org".parse().unwrap());
    let sp = spooled("addresses", 100, 100);
    let p = prepare(&sp, &s, "2026-11-27").unwrap();
    assert_eq!(p.message_id, "<id-1@netdigest>");
    assert!(p.note.is_none());
    let text = String::from_utf8(p.bytes.clone()).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap();
    assert!(!head.contains("old@example.org"), "{head}");
    assert!(
        head.starts_with(
            "From: sender@gmail.com\r\nTo: me@example.org, two@example.org\r\n\
             Cc: cc@example.org\r\nReply-To: reply@example.org\r\n\
             Subject: netdigest 2026-11-27: 0 new devices\r\nMessage-ID: <id-1@netdigest>\r\n"
        ),
        "{head}"
    );
    // A resend carries the same Message-ID and the same size.
    let again = prepare(&sp, &s, "2026-11-27").unwrap();
    assert_eq!(
        (again.message_id, again.bytes.len()),
        (p.message_id, p.bytes.len())
    );
    let env = s.envelope().unwrap();
    assert_eq!(env.to().len(), 3);
    assert_eq!(env.from().unwrap().to_string(), "sender@gmail.com");
    let l = leaves(&p.bytes);
    assert_eq!(l.len(), 4, "{l:?}");
}

#[test]
fn size_guard_drops_attachments_then_images() {
    let mut s = settings();
    let sp = spooled("guard", 400_000, 100_000);
    // Big enough once the attachment is gone.
    s.max_size_bytes = 300_000;
    let p = prepare(&sp, &s, "2026-11-27").unwrap();
    assert!(p.bytes.len() <= 300_000, "{}", p.bytes.len());
    let note = p.note.unwrap();
    assert!(note.contains("1 attachment(s) was left out"), "{note}");
    let l = leaves(&p.bytes);
    assert_eq!(l.len(), 4, "{l:?}");
    assert!(l[0].starts_with("text/plain"), "note first: {l:?}");
    assert!(l.iter().any(|c| c.starts_with("image/jpeg")), "{l:?}");
    let text = String::from_utf8_lossy(&p.bytes);
    assert!(!text.contains("attachment; filename"), "{l:?}");
    // Too small even then: the images go too.
    s.max_size_bytes = 50_000;
    let p = prepare(&sp, &s, "2026-11-27").unwrap();
    let note = p.note.unwrap();
    assert!(
        note.contains("attachment(s) and 1 chart image(s) were left out"),
        "{note}"
    );
    assert!(!leaves(&p.bytes).iter().any(|c| c.starts_with("image/")));
    // No attachment: the note makes the message multipart/mixed.
    let sp = spooled("guard-no-attachment", 0, 200_000);
    let p = prepare(&sp, &s, "2026-11-27").unwrap();
    let text = String::from_utf8_lossy(&p.bytes);
    let head = text.split("\r\n\r\n").next().unwrap();
    assert!(head.contains("Content-Type: multipart/mixed"), "{head}");
    assert!(head.contains("Message-ID: <id-1@netdigest>"), "{head}");
    let l = leaves(&p.bytes);
    assert_eq!(l.len(), 3, "note, text, html: {l:?}");
    // Nothing to leave out: sent as it is, with the note recorded.
    let sp = spooled("guard-nothing", 0, 0);
    s.max_size_bytes = 10;
    let p = prepare(&sp, &s, "2026-11-27").unwrap();
    assert!(p.note.unwrap().contains("nothing to leave out"));
}

#[test]
fn lock_is_exclusive_and_a_dead_holders_file_is_no_lock() {
    let dir = std::env::temp_dir().join(format!("nd-mail-lock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let l = NightLock::acquire(&dir).unwrap();
    let e = NightLock::acquire(&dir).err().unwrap();
    assert!(matches!(e, MailError::Locked { .. }), "{e}");
    assert!(
        e.to_string().contains(&std::process::id().to_string()),
        "{e}"
    );
    drop(l);
    // What a crashed process leaves: the file, without the flock.
    std::fs::write(NightDir::new(&dir).mail_lock(), "999999999\n").unwrap();
    let l = NightLock::acquire(&dir).unwrap();
    drop(l);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn record_round_trips_and_a_corrupt_one_is_moved_aside() {
    let dir = std::env::temp_dir().join(format!("nd-mail-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
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
    std::fs::write(NightDir::new(&dir).mail_json(), "{not json").unwrap();
    let fresh = MailRecord::load(&dir).unwrap();
    assert_eq!(fresh.status, Status::Pending);
    let why = fresh.reason.unwrap();
    assert!(why.contains("moved aside to"), "{why}");
    assert!(!NightDir::new(&dir).mail_json().exists());
    let aside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("mail.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
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

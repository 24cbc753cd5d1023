//! Mail against a real SMTP server on loopback: tests/smtp_server.py (aiosmtpd) with a
//! self-signed certificate, STARTTLS and implicit-TLS ports, AUTH required, every
//! received message stored and parsed by Python's email package, and 421 / dropped
//! connection injection. Each test starts its own server on free ports and kills it
//! at the end (it also exits by itself when its stdin closes or after its lifetime).
//!
//! Needs python3 with aiosmtpd (Debian: python3-aiosmtpd) and openssl; missing, the
//! tests are skipped, or fail under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netdigest::config::{ConfigError, MailConfig};
use netdigest::exit::{self, Exit};
use netdigest::layout::{self, NightDir, ReportDir};
use netdigest::mail::{
    self, AttemptResult, FailureKind, MailError, MailRecord, Outcome, Phase, RetryPolicy, Settings,
    Status,
};
use netdigest::message::{self, Envelope, Parts};
use netdigest::report::ChartImage;
use serde_json::Value;

mod common;

use common::smtp::{PASSWORD, PASSWORD_SHOWN, Server, ServerOpts, USER, python};

const WRONG_PASSWORD: &str = "wrongpasswordxyz";

// ---------------------------------------------------------------------------
// The server

/// A fresh empty directory for one test (unique per process and test name).
fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netdigest-mail-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ---------------------------------------------------------------------------
// Fixtures

/// A small JPEG made here, so the test checks real image bytes end to end.
fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            u8::try_from(x % 256).unwrap(),
            u8::try_from(y % 256).unwrap(),
            seed,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

/// A report spooled as the report stage spools it: text, HTML with two inline JPEGs,
/// and an index.html attachment of about `attachment_size` bytes.
fn spool_report(report_dir: &ReportDir, night: &str, message_id: &str, attachment_size: usize) {
    let charts: Vec<ChartImage> = [("pings", 1u8), ("timeline", 2u8)]
        .into_iter()
        .map(|(id, seed)| ChartImage {
            id: id.into(),
            title: id.into(),
            content_type: "image/jpeg".into(),
            bytes: jpeg(64, 48, seed),
        })
        .collect();
    let mut html = format!("<html><body><h1>Your network overnight</h1><p>Night of {night}</p>");
    for c in &charts {
        write!(html, "<img src=\"cid:{}\" alt=\"{}\">", c.cid(), c.id).unwrap();
    }
    html.push_str("</body></html>");
    let text =
        format!("Your network overnight: night of {night}\n0 new devices, 1,204 pings, 0 drops\n");
    let index = format!(
        "<!DOCTYPE html><title>netdigest {night}</title>{}",
        "x".repeat(attachment_size)
    );
    let env = Envelope {
        from: "netdigest <netdigest@localhost>".into(),
        to: vec!["someone-old@example.org".into()],
        cc: Vec::new(),
        reply_to: None,
        subject: format!("netdigest {night}: 0 new devices, 1,204 pings, 0 drops"),
    };
    let parts = Parts {
        text: &text,
        html: &html,
        charts: &charts,
        index: Some(&index),
    };
    message::spool(report_dir, &env, message_id, &parts).unwrap();
}

fn today() -> String {
    chrono::Local::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

fn yesterday() -> String {
    (chrono::Local::now().date_naive() - chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string()
}

/// Spools a night's report under `<state>/nights/<night>/report/`.
fn spool(state: &Path, night: &str) -> PathBuf {
    spool_sized(state, night, 2000)
}

fn spool_sized(state: &Path, night: &str, attachment_size: usize) -> PathBuf {
    let dir = NightDir::named(state, night);
    let id = format!("<netdigest-{night}-test@localhost>");
    spool_report(
        &ReportDir::new(dir.report_dir()),
        night,
        &id,
        attachment_size,
    );
    dir.path().to_path_buf()
}

/// Settings for the test server: `tls` is "starttls", "tls" or "none".
fn settings(dir: &Path, srv: &Server, tls: &str) -> Settings {
    let pw = dir.join("client-password");
    std::fs::write(&pw, format!("{PASSWORD_SHOWN}\n")).unwrap();
    let port = match tls {
        "starttls" => srv.starttls,
        "tls" => srv.tls,
        _ => srv.plain.expect("server started with a plain port"),
    };
    settings_for(dir, port, tls, Some(srv.cert.clone()))
}

fn settings_for(dir: &Path, port: u16, tls: &str, ca: Option<PathBuf>) -> Settings {
    let pw = dir.join("client-password");
    if !pw.exists() {
        std::fs::write(&pw, format!("{PASSWORD_SHOWN}\n")).unwrap();
    }
    let cfg = MailConfig {
        to: vec!["me@example.org".into(), "partner@example.org".into()],
        username: Some(USER.into()),
        host: Some("127.0.0.1".into()),
        port: Some(port),
        tls: tls.parse().unwrap(),
        password_file: Some(pw),
        ca_file: ca,
        ..MailConfig::default()
    };
    let mut s = Settings::from_config_with(&cfg, None).unwrap();
    s.timeout = Duration::from_secs(5);
    s.retry = RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
    };
    s
}

// ---------------------------------------------------------------------------
// Log capture and the password check

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

/// Runs `f` with every tracing event (TRACE and up) captured; returns the text too.
fn with_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    let buf = Buf::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let r = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (r, text)
}

/// Neither form of the password in any of `texts`.
fn assert_no_password(what: &str, text: &str) {
    for pw in [PASSWORD, PASSWORD_SHOWN, "qzxw"] {
        assert!(
            !text.contains(pw),
            "the password appears in {what}:\n{text}"
        );
    }
}

/// Logs, outcomes (Display and Debug), mail.json of every night, the server's log and
/// every received message: no password anywhere.
fn check_no_password(logs: &str, outcomes: &[Outcome], state: &Path, srv: Option<&Server>) {
    assert_no_password("the logs", logs);
    for o in outcomes {
        assert_no_password("an outcome", &format!("{o} {o:?}"));
    }
    if let Ok(rd) = std::fs::read_dir(layout::nights_dir(state)) {
        for e in rd.filter_map(Result::ok) {
            if let Ok(t) = std::fs::read_to_string(NightDir::new(e.path()).mail_json()) {
                assert_no_password("mail.json", &t);
            }
        }
    }
    if let Some(srv) = srv {
        assert_no_password("the server log", &srv.log());
        for m in srv.messages() {
            let eml = Path::new(m["parts"][0]["file"].as_str().unwrap())
                .with_extension("")
                .with_extension("eml");
            if let Ok(t) = std::fs::read(&eml) {
                assert_no_password("a received message", &String::from_utf8_lossy(&t));
            }
        }
    }
}

fn sent_count(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Sent { .. }))
        .count()
}

/// The received report has every part, every `cid:` image decodes, and the headers
/// come from the settings.
fn check_received_report(m: &Value, night: &str) {
    let parts = m["parts"].as_array().unwrap();
    let of_type =
        |t: &str| -> Vec<&Value> { parts.iter().filter(|p| p["content_type"] == t).collect() };
    let read = |p: &Value| std::fs::read(p["file"].as_str().unwrap()).unwrap();
    let text = of_type("text/plain");
    assert_eq!(text.len(), 1, "{m:#}");
    assert!(
        String::from_utf8(read(text[0]))
            .unwrap()
            .contains("Your network overnight")
    );
    let html_parts: Vec<&Value> = of_type("text/html")
        .into_iter()
        .filter(|p| p["disposition"] != "attachment")
        .collect();
    assert_eq!(html_parts.len(), 1, "{m:#}");
    let html = String::from_utf8(read(html_parts[0])).unwrap();
    let cids: Vec<&str> = html
        .split("src=\"cid:")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(cids.len(), 2, "{html}");
    for cid in cids {
        let img = parts
            .iter()
            .find(|p| p["content_id"].as_str() == Some(&format!("<{cid}>")))
            .unwrap_or_else(|| panic!("no part for cid:{cid} in {m:#}"));
        assert_eq!(img["content_type"], "image/jpeg");
        let decoded = image::load_from_memory(&read(img)).expect("the image decodes");
        assert_eq!((decoded.width(), decoded.height()), (64, 48));
    }
    let att = parts
        .iter()
        .find(|p| p["disposition"] == "attachment")
        .expect("the index.html attachment");
    assert_eq!(att["filename"], "index.html");
    assert!(
        String::from_utf8(read(att))
            .unwrap()
            .contains(&format!("netdigest {night}"))
    );
    assert_eq!(
        m["message_id"].as_str().unwrap(),
        format!("<netdigest-{night}-test@localhost>")
    );
    assert_eq!(m["auth_login"], USER);
    assert_eq!(m["mail_from"], USER);
    assert_eq!(m["tls"], true);
    let to = m["to"].as_str().unwrap();
    assert!(
        to.contains("me@example.org") && to.contains("partner@example.org"),
        "{to}"
    );
    assert!(
        !to.contains("someone-old"),
        "To comes from the settings: {to}"
    );
    assert!(
        m["subject"]
            .as_str()
            .unwrap()
            .starts_with(&format!("netdigest {night}: "))
    );
}

fn record(night_dir: &Path) -> MailRecord {
    MailRecord::load(night_dir).unwrap()
}

// ---------------------------------------------------------------------------
// The tests

fn deliver_report(name: &str, tls: &str, mechanisms: &str) {
    let Some(py) = python() else { return };
    let dir = tmpdir(name);
    let srv = Server::start(
        &py,
        &dir,
        &ServerOpts {
            mechanisms: Some(mechanisms),
            ..Default::default()
        },
    );
    let state = dir.join("state");
    let night = today();
    let night_dir = spool(&state, &night);
    let mut s = settings(&dir, &srv, tls);
    s.addresses.cc = vec!["cc@example.org".parse().unwrap()];
    s.addresses.reply_to = Some("replies@example.org".parse().unwrap());
    let (outcomes, logs) =
        with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    assert_eq!(
        sent_count(&outcomes),
        1,
        "{outcomes:#?}\n{logs}\n{}",
        srv.log()
    );
    let msgs = srv.messages();
    assert_eq!(msgs.len(), 1, "{}", srv.log());
    let m = &msgs[0];
    check_received_report(m, &night);
    assert_eq!(m["auth_mechanism"], mechanisms);
    let port = if tls == "tls" { srv.tls } else { srv.starttls };
    assert_eq!(m["port"], port);
    let rcpt: Vec<&str> = m["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        rcpt,
        ["me@example.org", "partner@example.org", "cc@example.org"]
    );
    assert_eq!(m["cc"], "cc@example.org");
    assert_eq!(m["reply_to"], "replies@example.org");
    let r = record(&night_dir);
    assert_eq!(r.status, Status::Sent);
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.attempts[0].result, AttemptResult::Sent);
    assert!(r.reply.as_deref().unwrap().starts_with("250"), "{r:?}");
    assert_eq!(r.message_id.as_deref(), m["message_id"].as_str());
    check_no_password(&logs, &outcomes, &state, Some(&srv));
}

#[test]
fn starttls_plain_delivers_the_whole_report() {
    deliver_report("starttls-plain", "starttls", "PLAIN");
}

#[test]
fn starttls_login_delivers_the_whole_report() {
    deliver_report("starttls-login", "starttls", "LOGIN");
}

#[test]
fn implicit_tls_delivers_the_whole_report() {
    deliver_report("implicit-tls", "tls", "PLAIN");
}

#[test]
fn wrong_password_fails_once_clearly_and_keeps_the_spool() {
    let Some(py) = python() else { return };
    let dir = tmpdir("wrong-password");
    let srv = Server::start(
        &py,
        &dir,
        &ServerOpts {
            password: Some(WRONG_PASSWORD),
            ..Default::default()
        },
    );
    let state = dir.join("state");
    let older = spool(&state, &yesterday());
    let newer = spool(&state, &today());
    let s = settings(&dir, &srv, "starttls");
    let (outcomes, logs) =
        with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    // Oldest first; the failure stops the run: no second login with the same password.
    assert!(
        matches!(&outcomes[0], Outcome::Failed { night, .. } if *night == yesterday()),
        "{outcomes:#?}"
    );
    assert!(
        matches!(&outcomes[1], Outcome::Deferred { night } if *night == today()),
        "{outcomes:#?}"
    );
    assert_eq!(srv.logins_at_least(1), 1, "no retry storm: {}", srv.log());
    let err = mail::first_failure(&outcomes).expect("a failure");
    let f = err.smtp().expect("an SMTP failure");
    assert_eq!(
        (f.phase, f.kind, f.code),
        (Phase::Login, FailureKind::Permanent, Some(535))
    );
    let msg = err.to_string();
    assert!(
        msg.contains("login refused") && msg.contains("535"),
        "{msg}"
    );
    assert!(
        msg.contains("check mail.username and the password"),
        "{msg}"
    );
    assert!(
        logs.contains("535"),
        "the error is logged with the server's words: {logs}"
    );
    assert!(srv.messages().is_empty());
    for d in [&older, &newer] {
        assert!(
            NightDir::new(d).report_eml().exists(),
            "the message stays in the spool"
        );
    }
    let r = record(&older);
    assert_eq!(r.status, Status::Failed);
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.attempts[0].result, AttemptResult::Permanent);
    assert!(
        !NightDir::new(&newer).mail_json().exists(),
        "the newer night was not tried"
    );
    check_no_password(&logs, &outcomes, &state, Some(&srv));
    // A refused login is a failure (exit 1), not a usage error.
    let error = outcomes.into_iter().find_map(|o| match o {
        Outcome::Failed { error, .. } => Some(error),
        _ => None,
    });
    assert_eq!(
        exit::of_error(&anyhow::Error::from(error.unwrap())),
        Exit::Failed
    );
}

#[test]
fn rejected_recipient_is_permanent_and_says_which_key_to_fix() {
    let Some(py) = python() else { return };
    let dir = tmpdir("rejected-rcpt");
    let srv = Server::start(
        &py,
        &dir,
        &ServerOpts {
            reject_rcpt: Some("partner@example.org"),
            ..Default::default()
        },
    );
    let state = dir.join("state");
    let night_dir = spool(&state, &today());
    let s = settings(&dir, &srv, "starttls");
    let (outcomes, logs) =
        with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    let err = mail::first_failure(&outcomes).expect("refused");
    let f = err.smtp().unwrap();
    assert_eq!(
        (f.phase, f.kind, f.code),
        (Phase::Recipient, FailureKind::Permanent, Some(550)),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("User unknown") && msg.contains("mail.to"),
        "{msg}"
    );
    assert_eq!(srv.logins_at_least(1), 1, "not retried: {}", srv.log());
    assert!(srv.messages().is_empty());
    let r = record(&night_dir);
    assert_eq!((r.status, r.attempts.len()), (Status::Failed, 1));
    assert!(NightDir::new(&night_dir).report_eml().exists());
    check_no_password(&logs, &outcomes, &state, Some(&srv));
}

fn days_ago(n: u64) -> String {
    (chrono::Local::now().date_naive() - chrono::Days::new(n))
        .format("%Y-%m-%d")
        .to_string()
}

/// A 550 for one night's message, an unreadable message.json in another and a corrupt
/// mail.json in a third hold back no other night: every deliverable night is delivered
/// exactly once (over two runs), the failed ones stay in the spool with a one-line
/// reason in their mail.json and are tried again by the next run.
#[test]
fn one_bad_night_does_not_hold_back_the_later_ones() {
    let Some(py) = python() else { return };
    let (n1, n2, n3, n4) = (days_ago(4), days_ago(3), days_ago(2), days_ago(1));
    let rejected = format!("netdigest {n2}:");
    let dir = tmpdir("one-bad-night");
    let srv = Server::start(
        &py,
        &dir,
        &ServerOpts {
            reject_data_containing: vec![rejected.clone()],
            ..Default::default()
        },
    );
    let state = dir.join("state");
    let d1 = spool(&state, &n1);
    std::fs::create_dir_all(NightDir::new(&d1).mail_dir()).unwrap();
    std::fs::write(NightDir::new(&d1).mail_json(), b"{\"status\": \"sen").unwrap();
    let d2 = spool(&state, &n2);
    let d3 = spool(&state, &n3);
    let bad_manifest = ReportDir::new(NightDir::new(&d3).report_dir()).message_json();
    std::fs::write(&bad_manifest, b"\x00\x01 not json").unwrap();
    let d4 = spool(&state, &n4);
    let s = settings(&dir, &srv, "starttls");
    let (first, logs) = with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    let nights: Vec<(&str, bool)> = first
        .iter()
        .map(|o| (o.night(), matches!(o, Outcome::Sent { .. })))
        .collect();
    assert_eq!(
        nights,
        [(&*n1, true), (&*n2, false), (&*n3, false), (&*n4, true)],
        "{first:#?}\n{}",
        srv.log()
    );
    let f = first[1]
        .error()
        .and_then(MailError::smtp)
        .expect("an SMTP failure");
    assert_eq!((f.kind, f.code), (FailureKind::Permanent, Some(550)));
    assert!(!first[1].error().unwrap().stops_run());
    let subjects = |srv: &Server| -> Vec<String> {
        srv.messages()
            .iter()
            .map(|m| m["subject"].as_str().unwrap().to_string())
            .collect()
    };
    let got = subjects(&srv);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with(&format!("netdigest {n1}:")), "{got:?}");
    assert!(got[1].starts_with(&format!("netdigest {n4}:")), "{got:?}");
    // The corrupt delivery record was moved aside with a warning.
    let aside: Vec<String> = std::fs::read_dir(NightDir::new(&d1).mail_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("mail.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(logs.contains("unreadable delivery record"), "{logs}");
    assert_eq!(record(&d1).status, Status::Sent);
    // The failed nights stay in the spool with a one-line reason.
    let r2 = record(&d2);
    assert_eq!(r2.status, Status::Failed);
    let why2 = r2.reason.expect("a reason");
    assert!(why2.contains("550") && !why2.contains('\n'), "{why2}");
    let r3 = record(&d3);
    assert_eq!(r3.status, Status::Failed);
    let why3 = r3.reason.expect("a reason");
    assert!(
        why3.contains("message.json") && !why3.contains('\n'),
        "{why3}"
    );
    assert!(logs.contains(&why3[..20]), "logged too: {logs}");
    for d in [&d2, &d3] {
        assert!(NightDir::new(d).report_eml().exists(), "still in the spool");
    }
    assert_eq!(record(&d4).status, Status::Sent);
    // The next run retries the failed nights and sends nothing twice.
    let second = mail::send_pending(&state, &s, chrono::Utc::now()).unwrap();
    let failed: Vec<&str> = second
        .iter()
        .filter(|o| o.error().is_some())
        .map(Outcome::night)
        .collect();
    assert_eq!(failed, [&*n2, &*n3], "{second:#?}");
    assert_eq!(sent_count(&second), 0, "{second:#?}");
    assert_eq!(subjects(&srv).len(), 2, "delivered exactly once");
    assert_eq!(record(&d2).attempts.len(), 2, "retried by the next run");
    check_no_password(&logs, &first, &state, Some(&srv));
}

/// A server-wide failure (a refused connection) still stops the run: the later night
/// is deferred, not tried against a server that is down.
#[test]
fn server_down_stops_the_run() {
    let dir = tmpdir("down-stops");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = dir.join("state");
    spool(&state, &yesterday());
    let newer = spool(&state, &today());
    let s = settings_for(&dir, port, "none", None);
    let outcomes = mail::send_pending(&state, &s, chrono::Utc::now()).unwrap();
    assert!(
        outcomes[0].error().is_some_and(MailError::stops_run),
        "{outcomes:#?}"
    );
    assert!(
        matches!(&outcomes[1], Outcome::Deferred { night } if *night == today()),
        "{outcomes:#?}"
    );
    assert!(!NightDir::new(&newer).mail_json().exists());
}

/// Another process (util-linux `flock`) holding one night's `mail.lock`: that night
/// is left to it (not sent, not recorded), the later night is still sent; once the
/// lock is released the night is sent, once.
#[test]
fn a_night_locked_by_another_process_is_left_to_it() {
    let Some(py) = python() else { return };
    let dir = tmpdir("mail-flock");
    let srv = Server::start(&py, &dir, &ServerOpts::default());
    let state = dir.join("state");
    let older = spool(&state, &yesterday());
    spool(&state, &today());
    let lock = NightDir::new(&older).mail_lock();
    std::fs::create_dir_all(NightDir::new(&older).mail_dir()).unwrap();
    // -o: the lock is flock's own (not passed to sleep), so killing flock releases it.
    let mut holder = Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .args(["sleep", "120"])
        .spawn()
        .expect("flock (util-linux)");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while netdigest::lock::is_held(&lock).unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "flock never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = settings(&dir, &srv, "starttls");
    let first = mail::send_pending(&state, &s, chrono::Utc::now()).unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        matches!(first[0].error(), Some(MailError::Locked { .. })),
        "{first:#?}"
    );
    assert!(matches!(&first[1], Outcome::Sent { night, .. } if *night == today()));
    assert!(
        !NightDir::new(&older).mail_json().exists(),
        "left to the holder"
    );
    let second = mail::send_pending(&state, &s, chrono::Utc::now()).unwrap();
    assert!(
        matches!(&second[0], Outcome::Sent { night, .. } if *night == yesterday()),
        "{second:#?}"
    );
    assert!(matches!(&second[1], Outcome::AlreadySent { .. }));
    assert_eq!(srv.messages().len(), 2, "each night exactly once");
}

fn delivered_once_after(name: &str, opts: &ServerOpts) {
    let Some(py) = python() else { return };
    let dir = tmpdir(name);
    let srv = Server::start(&py, &dir, opts);
    let state = dir.join("state");
    let night_dir = spool(&state, &today());
    let s = settings(&dir, &srv, "starttls");
    let (outcomes, logs) =
        with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    assert_eq!(sent_count(&outcomes), 1, "{outcomes:#?}\n{}", srv.log());
    assert_eq!(
        srv.messages().len(),
        1,
        "delivered exactly once: {}",
        srv.log()
    );
    check_received_report(&srv.messages()[0], &today());
    let r = record(&night_dir);
    assert_eq!(r.status, Status::Sent);
    let results: Vec<AttemptResult> = r.attempts.iter().map(|a| a.result).collect();
    assert_eq!(results, [AttemptResult::Transient, AttemptResult::Sent]);
    // Same message both times.
    assert_eq!(r.attempts[0].message_id, r.attempts[1].message_id);
    assert!(logs.contains("trying again"), "{logs}");
    // And a later run does not send it again.
    let (again, logs2) = with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    assert_eq!(sent_count(&again), 0, "{again:#?}");
    assert_eq!(srv.messages().len(), 1);
    check_no_password(&format!("{logs}{logs2}"), &outcomes, &state, Some(&srv));
}

#[test]
fn answer_421_once_then_delivered_exactly_once() {
    delivered_once_after(
        "fail-421",
        &ServerOpts {
            fail_first: 1,
            ..Default::default()
        },
    );
}

#[test]
fn dropped_connection_once_then_delivered_exactly_once() {
    delivered_once_after(
        "drop-once",
        &ServerOpts {
            drop_first: 1,
            ..Default::default()
        },
    );
}

#[test]
fn server_down_for_the_first_run_up_for_the_second() {
    let Some(py) = python() else { return };
    let dir = tmpdir("server-down");
    // Start the server once to make its certificate (kept in dir/cert and reused).
    let ca = Server::start(&py, &dir, &ServerOpts::default())
        .cert
        .clone();
    // A free port, closed again: nothing listens there during the first run.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = dir.join("state");
    let night_dir = spool(&state, &today());
    let s = settings_for(&dir, port, "starttls", Some(ca));
    let (first, logs1) = with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    let err = mail::first_failure(&first).expect("the first run fails");
    let f = err.smtp().unwrap();
    assert_eq!(
        (f.phase, f.kind),
        (Phase::Connect, FailureKind::Network),
        "{err}"
    );
    assert!(err.is_transient());
    let r = record(&night_dir);
    assert_eq!(r.status, Status::Pending);
    assert_eq!(r.attempts.len(), 3, "retried within the run: {r:?}");
    let srv = Server::start(
        &py,
        &dir,
        &ServerOpts {
            starttls_port: Some(port),
            ..Default::default()
        },
    );
    let (second, logs2) = with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    assert_eq!(sent_count(&second), 1, "{second:#?}\n{}", srv.log());
    assert_eq!(srv.messages().len(), 1);
    assert_eq!(record(&night_dir).status, Status::Sent);
    check_no_password(&format!("{logs1}{logs2}"), &second, &state, Some(&srv));
}

#[test]
fn second_run_after_success_sends_nothing() {
    let Some(py) = python() else { return };
    let dir = tmpdir("second-run");
    let srv = Server::start(&py, &dir, &ServerOpts::default());
    let state = dir.join("state");
    spool(&state, &yesterday());
    spool(&state, &today());
    // Too old: given up, not sent.
    spool(&state, "2001-02-03");
    let s = settings(&dir, &srv, "starttls");
    let (first, logs1) = with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    assert!(
        matches!(&first[0], Outcome::Expired { night, .. } if night == "2001-02-03"),
        "{first:#?}"
    );
    assert_eq!(sent_count(&first), 2, "{first:#?}");
    let msgs = srv.messages();
    assert_eq!(msgs.len(), 2);
    // Oldest first.
    assert!(msgs[0]["subject"].as_str().unwrap().contains(&yesterday()));
    assert!(msgs[1]["subject"].as_str().unwrap().contains(&today()));
    let logins = srv.logins_at_least(2);
    let (second, logs2) = with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    assert_eq!(sent_count(&second), 0, "{second:#?}");
    assert!(
        second
            .iter()
            .all(|o| matches!(o, Outcome::AlreadySent { .. } | Outcome::Expired { .. })),
        "{second:#?}"
    );
    assert_eq!(srv.messages().len(), 2);
    assert_eq!(srv.logins(), logins, "the second run does not even connect");
    assert_eq!(
        record(NightDir::named(&state, "2001-02-03").path()).status,
        Status::Expired
    );
    check_no_password(&format!("{logs1}{logs2}"), &second, &state, Some(&srv));
}

#[test]
fn interrupted_attempt_is_resent_with_the_same_message_id() {
    let Some(py) = python() else { return };
    let dir = tmpdir("interrupted");
    let srv = Server::start(&py, &dir, &ServerOpts::default());
    let state = dir.join("state");
    let night = today();
    let night_dir = spool(&state, &night);
    // What a crash during an attempt leaves behind.
    let id = format!("<netdigest-{night}-test@localhost>");
    std::fs::create_dir_all(NightDir::new(&night_dir).mail_dir()).unwrap();
    std::fs::write(
        NightDir::new(&night_dir).mail_json(),
        serde_json::json!({
            "night": night, "status": "sending", "message_id": id,
            "attempts": [{"started": "2026-01-01T06:30:00Z", "server": "x:587",
                          "message_id": id, "bytes": 1, "result": "in_progress"}]
        })
        .to_string(),
    )
    .unwrap();
    // And the lock file of the crashed process (its flock went with it).
    std::fs::create_dir_all(NightDir::new(&night_dir).mail_dir()).unwrap();
    std::fs::write(NightDir::new(&night_dir).mail_lock(), "999999999\n").unwrap();
    let s = settings(&dir, &srv, "starttls");
    let (outcomes, logs) =
        with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    assert_eq!(sent_count(&outcomes), 1, "{outcomes:#?}");
    assert!(logs.contains("stopped while sending"), "{logs}");
    assert_eq!(srv.messages()[0]["message_id"], id.as_str());
    let r = record(&night_dir);
    let results: Vec<AttemptResult> = r.attempts.iter().map(|a| a.result).collect();
    assert_eq!(results, [AttemptResult::Interrupted, AttemptResult::Sent]);
    assert_eq!(
        netdigest::lock::is_held(&NightDir::new(&night_dir).mail_lock()).unwrap(),
        None,
        "lock released"
    );
    check_no_password(&logs, &outcomes, &state, Some(&srv));
}

#[test]
fn size_guard_leaves_out_attachments_and_says_so() {
    let Some(py) = python() else { return };
    let dir = tmpdir("size-guard");
    let srv = Server::start(&py, &dir, &ServerOpts::default());
    let state = dir.join("state");
    let night = today();
    let night_dir = spool_sized(&state, &night, 300_000);
    let mut s = settings(&dir, &srv, "starttls");
    s.max_size_bytes = 100_000;
    let (outcomes, logs) =
        with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    assert_eq!(sent_count(&outcomes), 1, "{outcomes:#?}");
    let m = &srv.messages()[0];
    let parts = m["parts"].as_array().unwrap();
    assert!(
        !parts.iter().any(|p| p["disposition"] == "attachment"),
        "{m:#}"
    );
    assert_eq!(
        parts
            .iter()
            .filter(|p| p["content_type"] == "image/jpeg")
            .count(),
        2,
        "images kept: {m:#}"
    );
    let note = std::fs::read_to_string(parts[0]["file"].as_str().unwrap()).unwrap();
    assert!(note.contains("1 attachment(s) was left out"), "{note}");
    assert!(record(&night_dir).note.is_some());
    // The spool itself is untouched.
    assert!(
        std::fs::metadata(NightDir::new(&night_dir).report_eml())
            .unwrap()
            .len()
            > 300_000
    );
    check_no_password(&logs, &outcomes, &state, Some(&srv));
}

#[test]
fn check_login_and_test_message() {
    let Some(py) = python() else { return };
    let dir = tmpdir("check-login");
    let srv = Server::start(&py, &dir, &ServerOpts::default());
    let s = settings(&dir, &srv, "tls");
    let (r, logs) = with_logs(|| mail::check_login(&s));
    let c = r.unwrap();
    assert!(c.authenticated);
    assert!(c.to_string().contains("works"), "{c}");
    assert!(srv.messages().is_empty(), "doctor sends nothing");
    assert_eq!(srv.logins_at_least(1), 1);
    let (d, logs2) = with_logs(|| mail::send_test(&s));
    let d = d.unwrap();
    assert!(d.reply.starts_with("250"), "{d:?}");
    let m = &srv.messages()[0];
    assert_eq!(m["message_id"].as_str(), Some(d.message_id.as_str()));
    assert!(m["subject"].as_str().unwrap().contains("test message"));
    // Wrong password: the doctor says so.
    let mut bad = s.clone();
    bad.password = Some(netdigest::config::Secret::new("not-it"));
    let (e, logs3) = with_logs(|| mail::check_login(&bad));
    let e = e.unwrap_err();
    assert!(e.to_string().contains("login refused"), "{e}");
    assert_no_password("the logs", &format!("{logs}{logs2}{logs3}"));
    assert_no_password("the error", &format!("{e} {e:?} {s:?}"));
    assert_no_password("the server log", &srv.log());
}

#[test]
fn untrusted_certificate_is_a_tls_error_with_the_fix() {
    let Some(py) = python() else { return };
    let dir = tmpdir("untrusted");
    let srv = Server::start(&py, &dir, &ServerOpts::default());
    let state = dir.join("state");
    spool(&state, &today());
    for (tls, port) in [("starttls", srv.starttls), ("tls", srv.tls)] {
        let s = settings_for(&dir, port, tls, None);
        let (outcomes, logs) =
            with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
        let err = mail::first_failure(&outcomes).expect("refused");
        assert_eq!(err.smtp().unwrap().kind, FailureKind::Tls, "{err}");
        assert!(err.to_string().contains("mail.ca_file"), "{err}");
        assert_eq!(
            record(NightDir::named(&state, &today()).path())
                .attempts
                .len(),
            if tls == "starttls" { 1 } else { 2 },
            "a TLS failure is not retried within the run"
        );
        check_no_password(&logs, &outcomes, &state, Some(&srv));
    }
    assert_eq!(
        srv.logins(),
        0,
        "no credentials over an untrusted connection"
    );
    assert!(srv.messages().is_empty());
}

#[test]
fn tls_none_to_loopback_works() {
    let Some(py) = python() else { return };
    let dir = tmpdir("tls-none");
    let srv = Server::start(
        &py,
        &dir,
        &ServerOpts {
            plain: true,
            ..Default::default()
        },
    );
    let state = dir.join("state");
    spool(&state, &today());
    let s = settings(&dir, &srv, "none");
    let (outcomes, logs) =
        with_logs(|| mail::send_pending(&state, &s, chrono::Utc::now()).unwrap());
    assert_eq!(sent_count(&outcomes), 1, "{outcomes:#?}\n{}", srv.log());
    assert_eq!(srv.messages()[0]["tls"], false);
    check_no_password(&logs, &outcomes, &state, Some(&srv));
}

#[test]
fn config_errors_name_the_key() {
    let cfg = MailConfig {
        to: vec!["me@example.org".into()],
        username: Some(USER.into()),
        host: Some("mail.example.org".into()),
        tls: netdigest::config::TlsMode::None,
        password: Some(netdigest::config::Secret::new(PASSWORD_SHOWN)),
        ..MailConfig::default()
    };
    let (r, logs) = with_logs(|| Settings::from_config_with(&cfg, None));
    let e = r.unwrap_err();
    assert!(
        matches!(
            e,
            MailError::Config(ConfigError::Invalid {
                key: "mail.tls",
                ..
            })
        ),
        "{e}"
    );
    assert_no_password("the error", &format!("{e} {e:?}"));
    assert_no_password("the logs", &logs);
    assert_eq!(exit::of_error(&anyhow::Error::from(e)), Exit::Usage);
}

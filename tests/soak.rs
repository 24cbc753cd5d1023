//! Soak: 14 nights through `netdigest nightly` and `netdigest mail`, as the timers run
//! them, on a state directory of its own (a small tmpfs, so that the disk can be
//! filled) and against the real SMTP test server (tests/smtp_server.py), with one fault
//! per night drawn from a fixed seed: kill -9 during convert, analyse, report and mail
//! (at a random moment after the stage started); a full disk; corrupt capture.json,
//! devices.parquet, mail.json and summary.json; a 421, a dropped connection, and a 550
//! for one night's message (answered to every later attempt too).
//!
//! Afterwards every night's report has been delivered (all copies of it with one
//! Message-ID; a second copy only where a kill or a lost delivery record made the sender
//! unsure), or sits in the spool with a one-line reason; nights beyond
//! `state.keep_nights` are gone; no run panicked. The fault matrix is printed.
//!
//! Needs root (a tmpfs) and python3 with aiosmtpd; missing, the test is skipped, or
//! fails under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{Days, Local, NaiveDate, TimeZone, Utc};
use common::smtp::{self, Server, ServerOpts};
use netdigest::layout::{self, NightDir};
use netdigest::mail::{MailRecord, Status};

const NIGHTS: usize = 14;
const KEEP_NIGHTS: usize = 5;
const SEED: u64 = 0x5eed_50a4;
const PACKETS: u64 = 20_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    KillConvert,
    KillAnalyse,
    KillReport,
    KillMail,
    DiskFull,
    CorruptCaptureJson,
    CorruptDevices,
    CorruptMailJson,
    CorruptSummary,
    Smtp421,
    SmtpDrop,
    Smtp550,
}

impl Fault {
    /// The stage's log line that arms a kill during nightly.
    fn kill_marker(self) -> Option<&'static str> {
        match self {
            Fault::KillConvert => Some("convert: start"),
            Fault::KillAnalyse => Some("analyse: start"),
            Fault::KillReport => Some("report: start"),
            _ => None,
        }
    }

    /// Faults aimed at the night before (its summary or its delivery record).
    fn needs_earlier_night(self) -> bool {
        matches!(
            self,
            Fault::CorruptMailJson | Fault::CorruptSummary | Fault::CorruptDevices
        )
    }
}

const ALL_FAULTS: [Fault; NIGHTS] = [
    Fault::KillConvert,
    Fault::KillAnalyse,
    Fault::KillReport,
    Fault::KillMail,
    Fault::DiskFull,
    Fault::CorruptCaptureJson,
    Fault::CorruptDevices,
    Fault::CorruptMailJson,
    Fault::CorruptSummary,
    Fault::Smtp421,
    Fault::SmtpDrop,
    Fault::Smtp550,
    Fault::None,
    Fault::None,
];

/// xorshift64*: the same faults, moments and captures for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The faults in the seed's order; night 0 gets no fault that needs an earlier night.
fn fault_plan(rng: &mut Rng) -> [Fault; NIGHTS] {
    let mut plan = ALL_FAULTS;
    for i in (1..NIGHTS).rev() {
        let j = usize::try_from(rng.below(i as u64 + 1)).unwrap();
        plan.swap(i, j);
    }
    if plan[0].needs_earlier_night() {
        let k = plan.iter().position(|f| *f == Fault::None).unwrap();
        plan.swap(0, k);
    }
    plan
}

/// Free bytes on the filesystem holding `dir`.
fn avail_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df --output=avail")
}

/// Decides when to kill a run: sees each stderr line (`Some`) and is asked in between.
type Trigger<'a> = &'a dyn Fn(Option<&str>) -> bool;

/// What happens to a run when its trigger fires.
enum Action {
    Kill,
    /// Fill the disk with this file, leaving 64 KiB.
    Fill(PathBuf),
}

/// Fills the filesystem holding `filler` but for 64 KiB; says how much is left.
fn fill_disk(filler: &Path) -> String {
    let dir = filler.parent().unwrap();
    // The run writes meanwhile: ask for a little less each time the space is gone.
    let ok = (0..50).any(|k| {
        let fill = avail_bytes(dir).saturating_sub((64 + 64 * k) << 10);
        Command::new("fallocate")
            .args(["-l", &fill.to_string()])
            .arg(filler)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(ok, "fallocate of the filler file failed");
    format!(
        "disk filled at convert start ({} KiB left)",
        avail_bytes(dir) / 1024
    )
}

/// What one run of the binary did.
#[derive(Default)]
struct RunLog {
    code: Option<i32>,
    killed_at: Option<String>,
    filled: Option<String>,
    stderr: String,
}

impl RunLog {
    fn summary(&self) -> String {
        match (&self.killed_at, self.code) {
            (Some(at), _) => format!("killed ({at})"),
            (None, Some(c)) => format!("exit {c}"),
            (None, None) => "signal".into(),
        }
    }
}

struct Soak {
    base: PathBuf,
    state: PathBuf,
    pw: PathBuf,
    python: PathBuf,
    rng: Rng,
    /// Texts the server answers 550 to, from the 550 night on.
    rejects: Vec<String>,
    servers: usize,
    /// Every message the servers stored: (subject, Message-ID).
    received: Vec<(String, String)>,
    /// Every stderr line of every run, for the panic check.
    all_stderr: String,
}

impl Soak {
    fn env(&self, cmd: &mut Command, port: Option<u16>) {
        let cert = self.base.join("cert/cert.pem");
        cmd.env("NETDIGEST_STATE__DIR", &self.state)
            .env("NETDIGEST_STATE__KEEP_NIGHTS", KEEP_NIGHTS.to_string())
            .env("NETDIGEST_MAIL__TO", "me@example.org")
            .env("NETDIGEST_MAIL__USERNAME", smtp::USER)
            .env("NETDIGEST_MAIL__PASSWORD_FILE", &self.pw)
            .env("NETDIGEST_MAIL__HOST", "127.0.0.1")
            .env("NETDIGEST_MAIL__TLS", "starttls")
            .env("NETDIGEST_MAIL__CA_FILE", cert)
            .env("NETDIGEST_MAIL__MAX_AGE_DAYS", "30")
            .env("NETDIGEST_MAIL__ATTEMPTS", "2")
            .env("NETDIGEST_MAIL__RETRY_AFTER_S", "1");
        if let Some(p) = port {
            cmd.env("NETDIGEST_MAIL__PORT", p.to_string());
        }
    }

    fn night_dir(&self, date: NaiveDate) -> PathBuf {
        layout::nights_dir(&self.state).join(date.format(layout::NIGHT_FORMAT).to_string())
    }

    /// What capture leaves: one part of a synthetic night and a finished capture.json.
    fn make_night(&mut self, date: NaiveDate, seed: u64) -> PathBuf {
        let dir = self.night_dir(date);
        let night = NightDir::new(&dir);
        std::fs::create_dir_all(night.capture_dir()).unwrap();
        let start = Local
            .from_local_datetime(&date.and_hms_opt(22, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .with_timezone(&Utc);
        let spec = synth::NightSpec {
            packets: PACKETS,
            start_ts_ns: start.timestamp_nanos_opt().unwrap(),
            duration_s: 8 * 3600,
            seed,
            nanos: false,
            hostile_names: false,
            activities: Vec::new(),
        };
        synth::write_night_file(&night.capture_dir().join(layout::part_name(1)), &spec).unwrap();
        let end = start + chrono::Duration::hours(8);
        common::write_capture_json(&dir, "complete", start, end, end);
        dir
    }

    /// Runs `cmd`; once `trigger` says so, kills it (SIGKILL) a random 0-40 ms later, or
    /// fills the disk under it. The trigger sees each stderr line as it comes (`Some`),
    /// and is asked every few milliseconds in between (`None`).
    fn run(&mut self, mut cmd: Command, trigger: Option<(Trigger<'_>, &Action)>) -> RunLog {
        let mut child: Child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = RunLog::default();
        let deadline = Instant::now() + Duration::from_secs(300);
        if let Some((fire, action)) = trigger {
            while Instant::now() < deadline {
                let line = match rx.recv_timeout(Duration::from_millis(2)) {
                    Ok(line) => Some(line),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                if let Some(l) = &line {
                    log.stderr.push_str(l);
                    log.stderr.push('\n');
                }
                if !fire(line.as_deref()) {
                    continue;
                }
                if let Action::Fill(filler) = action {
                    log.killed_at = None;
                    log.filled = Some(fill_disk(filler));
                    // Let the run go on into the full disk.
                    log.stderr
                        .push_str(&rx.iter().collect::<Vec<_>>().join("\n"));
                    break;
                }
                {
                    let ms = self.rng.below(40);
                    std::thread::sleep(Duration::from_millis(ms));
                    let _ = child.kill();
                    let what = line
                        .as_deref()
                        .map_or_else(|| "the server's AUTH".into(), short);
                    log.killed_at = Some(format!("{ms} ms after {what}"));
                    break;
                }
            }
        }
        let status = child.wait().unwrap();
        reader.join().unwrap();
        for line in rx.try_iter() {
            log.stderr.push_str(&line);
            log.stderr.push('\n');
        }
        log.code = status.code();
        self.all_stderr.push_str(&log.stderr);
        log
    }

    /// `nightly`; with `at`, `action` (a kill, a full disk) once the stage logs its start
    /// for that night.
    fn nightly(&mut self, at: Option<(&str, NaiveDate)>, action: &Action) -> RunLog {
        let mut cmd = common::bin();
        cmd.args(["nightly", "--log-format", "text"]);
        self.env(&mut cmd, None);
        match at {
            Some((marker, date)) => {
                let night = date.format(layout::NIGHT_FORMAT).to_string();
                let fire = move |l: Option<&str>| {
                    l.is_some_and(|l| l.contains(marker) && l.contains(&night))
                };
                self.run(cmd, Some((&fire, action)))
            }
            None => self.run(cmd, None),
        }
    }

    /// One `netdigest mail` run against a fresh server with these faults; `kill`: SIGKILL
    /// once the server has seen the login.
    fn mail(&mut self, fail_first: u32, drop_first: u32, kill: bool) -> RunLog {
        self.servers += 1;
        let opts = ServerOpts {
            fail_first,
            drop_first,
            reject_data_containing: self.rejects.clone(),
            outdir: Some(self.base.join(format!("received-{}", self.servers))),
            ..ServerOpts::default()
        };
        let srv = Server::start(&self.python, &self.base, &opts);
        let mut cmd = common::bin();
        cmd.args(["mail", "--log-format", "text"]);
        self.env(&mut cmd, Some(srv.starttls));
        let log = if kill {
            let watched = &srv;
            // The mail command logs little before it sends: watch the server instead.
            let fire = move |_: Option<&str>| watched.logins() >= 1;
            self.run(cmd, Some((&fire, &Action::Kill)))
        } else {
            self.run(cmd, None)
        };
        for m in srv.messages() {
            self.received.push((
                m["subject"].as_str().unwrap_or_default().to_string(),
                m["message_id"].as_str().unwrap_or_default().to_string(),
            ));
        }
        log
    }
}

fn short(line: &str) -> String {
    line.split_whitespace()
        .skip_while(|w| !w.ends_with(':'))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn corrupt(path: &Path) -> String {
    std::fs::write(path, b"\x00\xffnot what netdigest wrote{{{").unwrap();
    path.file_name().unwrap().to_string_lossy().into_owned()
}

struct Row {
    night: NaiveDate,
    fault: Fault,
    injected: String,
    nightly: String,
    mail: String,
}

#[test]
fn fourteen_nights_with_faults_lose_nothing_and_send_nothing_twice() {
    let Some(python) = smtp::python() else {
        return;
    };
    let base = common::tmpdir("soak");
    let state = base.join("state");
    let Some(_tmpfs) = common::Tmpfs::mount(&state, 192) else {
        return;
    };
    let pw = base.join("password");
    std::fs::write(&pw, format!("{}\n", smtp::PASSWORD_SHOWN)).unwrap();
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut rng = Rng(SEED);
    let plan = fault_plan(&mut rng);
    let mut soak = Soak {
        base,
        state,
        pw,
        python,
        rng,
        rejects: Vec::new(),
        servers: 0,
        received: Vec::new(),
        all_stderr: String::new(),
    };
    // Nights up to yesterday: every capture window has ended.
    let today = Local::now().date_naive();
    let first = today.checked_sub_days(Days::new(NIGHTS as u64)).unwrap();
    let dates: Vec<NaiveDate> = (0..NIGHTS)
        .map(|i| first.checked_add_days(Days::new(i as u64)).unwrap())
        .collect();
    let mut rows = Vec::new();
    // Nights the sender may rightly send twice (same Message-ID): in flight when mail was
    // killed, or whose delivery record was lost.
    let mut unsure: Vec<NaiveDate> = Vec::new();
    for (i, (&date, &fault)) in dates.iter().zip(&plan).enumerate() {
        let dir = soak.make_night(date, 100 + i as u64);
        let before = i.checked_sub(1).map(|k| soak.night_dir(dates[k]));
        let mut injected = String::new();
        match fault {
            Fault::CorruptCaptureJson => {
                injected = corrupt(&NightDir::new(&dir).capture_json());
            }
            Fault::CorruptDevices => {
                injected = corrupt(&layout::devices_file(&soak.state));
            }
            Fault::CorruptSummary => {
                let prev = before.as_ref().unwrap();
                injected = format!("earlier {}", corrupt(&NightDir::new(prev).summary_json()));
            }
            _ => {}
        }
        let (marker, action) = match fault {
            // The disk fills as the night's convert starts (after retention made room).
            Fault::DiskFull => (
                Some("convert: start"),
                Action::Fill(soak.state.join("filler")),
            ),
            f => (f.kill_marker(), Action::Kill),
        };
        let nightly = soak.nightly(marker.map(|m| (m, date)), &action);
        if let Some(at) = nightly.killed_at.as_ref().or(nightly.filled.as_ref()) {
            injected.clone_from(at);
        }
        if let Action::Fill(f) = &action {
            std::fs::remove_file(f).unwrap();
        }
        let (mut fail, mut drop) = (0, 0);
        match fault {
            Fault::CorruptMailJson => {
                let prev = before.as_ref().unwrap();
                unsure.push(dates[i - 1]);
                injected = format!("earlier {}", corrupt(&NightDir::new(prev).mail_json()));
            }
            Fault::Smtp421 => (fail, injected) = (1, "first DATA answered 421".into()),
            Fault::SmtpDrop => (drop, injected) = (1, "first DATA: connection dropped".into()),
            Fault::Smtp550 => {
                soak.rejects.push(format!("netdigest {date}:"));
                injected = "550 to every copy of this night's message".into();
            }
            _ => {}
        }
        let mail = soak.mail(fail, drop, fault == Fault::KillMail);
        if let Some(at) = &mail.killed_at {
            injected = format!("mail {at}");
            unsure.extend(&dates[..=i]);
        }
        rows.push(Row {
            night: date,
            fault,
            injected,
            nightly: nightly.summary(),
            mail: mail.summary(),
        });
    }
    // The next morning, nothing broken: whatever was left is finished and sent.
    let last_nightly = soak.nightly(None, &Action::Kill);
    let last_mail = soak.mail(0, 0, false);

    // Copies received per night, by subject.
    let mut copies: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    for (subject, id) in &soak.received {
        let date = dates
            .iter()
            .find(|d| subject.starts_with(&format!("netdigest {d}:")))
            .unwrap_or_else(|| panic!("a message no night sent: {subject:?}"));
        copies.entry(*date).or_default().push(id.clone());
    }
    let kept: Vec<NaiveDate> = dates.iter().rev().take(KEEP_NIGHTS).copied().collect();
    let mut matrix = String::new();
    writeln!(
        matrix,
        "{:<10} {:<18} {:<44} {:<38} {:<38} {:>6}  final",
        "night", "fault", "injected", "nightly", "mail", "copies"
    )
    .unwrap();
    let mut problems = Vec::new();
    for r in &rows {
        let got = copies.get(&r.night).cloned().unwrap_or_default();
        let dir = soak.night_dir(r.night);
        let record = MailRecord::load(&dir).ok();
        let final_state = if !dir.exists() {
            "deleted (retention)".to_string()
        } else if let Some(rec) = &record {
            match &rec.reason {
                Some(why) => format!("{:?}: {why}", rec.status),
                None => format!("{:?}", rec.status),
            }
        } else {
            "mail.json unreadable".to_string()
        };
        writeln!(
            matrix,
            "{:<10} {:<18} {:<44} {:<38} {:<38} {:>6}  {final_state}",
            r.night.to_string(),
            format!("{:?}", r.fault),
            r.injected,
            r.nightly,
            r.mail,
            got.len(),
        )
        .unwrap();
        if r.fault == Fault::Smtp550 {
            if !got.is_empty() {
                problems.push(format!("{}: the 550 night was received", r.night));
            }
            let rec = record.as_ref();
            let reason = rec.and_then(|rec| rec.reason.clone());
            if !NightDir::new(&dir)
                .report_dir()
                .join(layout::REPORT_EML)
                .is_file()
                || rec.is_none_or(|rec| rec.status == Status::Sent)
                || !reason
                    .as_deref()
                    .is_some_and(|r| r.contains("550") && !r.contains('\n'))
            {
                problems.push(format!(
                    "{}: the rejected night is not in the spool with its reason ({reason:?})",
                    r.night
                ));
            }
            continue;
        }
        if got.is_empty() {
            problems.push(format!("{}: never delivered", r.night));
        } else if got.iter().any(|id| *id != got[0]) {
            problems.push(format!(
                "{}: copies with different Message-IDs {got:?}",
                r.night
            ));
        } else if got.len() > 1 && !unsure.contains(&r.night) {
            problems.push(format!("{}: delivered {} times", r.night, got.len()));
        }
        if !kept.contains(&r.night) && !got.is_empty() && dir.exists() {
            problems.push(format!(
                "{}: kept beyond state.keep_nights ({KEEP_NIGHTS}) although it was sent",
                r.night
            ));
        }
    }
    writeln!(
        matrix,
        "next morning: nightly {}, mail {}",
        last_nightly.summary(),
        last_mail.summary()
    )
    .unwrap();
    println!("{matrix}");
    for (what, text) in [("any run", &soak.all_stderr)] {
        if text.contains("panicked") {
            problems.push(format!("{what} panicked:\n{text}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\n{matrix}\nlogs:\n{}",
        problems.join("\n"),
        soak.all_stderr
    );
}

//! The SMTP test server (tests/smtp_server.py: aiosmtpd on loopback, self-signed
//! certificate, STARTTLS and implicit TLS, AUTH required, injected 421s, dropped
//! connections and 550s), started per test and killed when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

pub const USER: &str = "sender@example.org";
/// As Gmail displays an app password; the server expects it without the spaces.
pub const PASSWORD_SHOWN: &str = "qzxw vbnm plok ijuh";
pub const PASSWORD: &str = "qzxwvbnmplokijuh";

/// A python3 that has aiosmtpd, and openssl. None: skip (a failure under CI=true).
pub fn python() -> Option<PathBuf> {
    let candidates = std::env::var_os("NETDIGEST_TEST_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain(["python3", "/usr/bin/python3"].map(PathBuf::from));
    let have_openssl = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    let found = candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    match (found, have_openssl) {
        (Some(p), true) => Some(p),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but python3 with aiosmtpd (python3-aiosmtpd) or openssl is missing"
            );
            eprintln!("SKIP: python3 with aiosmtpd, or openssl, not installed");
            None
        }
    }
}

pub struct Server {
    pub child: Child,
    pub starttls: u16,
    pub tls: u16,
    pub plain: Option<u16>,
    pub cert: PathBuf,
    pub out: PathBuf,
    pub log: Arc<Mutex<String>>,
}

#[derive(Default)]
pub struct ServerOpts<'a> {
    pub mechanisms: Option<&'a str>,
    pub fail_first: u32,
    pub drop_first: u32,
    pub password: Option<&'a str>,
    pub starttls_port: Option<u16>,
    pub plain: bool,
    pub reject_rcpt: Option<&'a str>,
    /// Messages containing any of these texts are answered 550 (a permanent failure).
    pub reject_data_containing: Vec<String>,
    /// Where received messages are stored (default `<dir>/received`).
    pub outdir: Option<PathBuf>,
}

impl Server {
    pub fn start(python: &Path, dir: &Path, o: &ServerOpts) -> Server {
        let pw = dir.join("server-password");
        std::fs::write(&pw, o.password.unwrap_or(PASSWORD)).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let out = o.outdir.clone().unwrap_or_else(|| dir.join("received"));
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .arg("--certdir")
            .arg(dir.join("cert"))
            .args(["--user", USER, "--password-file"])
            .arg(&pw)
            .arg("--outdir")
            .arg(&out)
            .args(["--fail-first", &o.fail_first.to_string()])
            .args(["--drop-first", &o.drop_first.to_string()])
            .args(["--lifetime", "120"])
            .args(["--starttls-port", &o.starttls_port.unwrap_or(0).to_string()]);
        if let Some(m) = o.mechanisms {
            cmd.args(["--mechanisms", m]);
        }
        if o.plain {
            cmd.args(["--plain-port", "0"]);
        }
        if let Some(a) = o.reject_rcpt {
            cmd.args(["--reject-rcpt", a]);
        }
        for t in &o.reject_data_containing {
            cmd.args(["--reject-data-containing", t]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tests/smtp_server.py");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, tx) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, Some(tx)),
            (Box::new(stderr), None),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                    drop(l);
                    if let (Some(tx), Some(ready)) = (&tx, line.strip_prefix("READY ")) {
                        let _ = tx.send(ready.to_string());
                    }
                }
            });
        }
        let Ok(ready) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("smtp_server.py did not start:\n{}", log.lock().unwrap());
        };
        let v: Value = serde_json::from_str(&ready).unwrap();
        let port = |k: &str| v["ports"][k].as_u64().map(|p| u16::try_from(p).unwrap());
        Server {
            child,
            starttls: port("starttls").unwrap(),
            tls: port("tls").unwrap(),
            plain: port("plain"),
            cert: PathBuf::from(v["cert"].as_str().unwrap()),
            out,
            log,
        }
    }

    /// The stored messages' metadata, in order of arrival.
    pub fn messages(&self) -> Vec<Value> {
        let mut v: Vec<(u32, Value)> = std::fs::read_dir(&self.out)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let n = name
                            .strip_prefix("msg-")?
                            .strip_suffix(".json")?
                            .parse()
                            .ok()?;
                        let text = std::fs::read_to_string(e.path()).ok()?;
                        Some((n, serde_json::from_str(&text).unwrap()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|(n, _)| *n);
        v.into_iter().map(|(_, m)| m).collect()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// How many AUTH exchanges the server saw.
    pub fn logins(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.starts_with("AUTH "))
            .count()
    }

    /// [`Server::logins`] once it reaches `n` (or after 5 s): the server prints each
    /// AUTH before it answers, but the thread that reads its output may lag behind.
    pub fn logins_at_least(&self, n: usize) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let seen = self.logins();
            if seen >= n || std::time::Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Privilege separation: the three stages run as three users, as the units run them
//! (src/units.rs: `User=`, `SupplementaryGroups=`, `UMask=`, `StateDirectory=` with mode
//! 0750), and each is refused what it must not read or write.
//!
//! Real stages, no mocks: `netdigest capture` with only `CAP_NET_RAW` on the loopback
//! interface of a network namespace of its own (pings to 127.0.0.1), `netdigest nightly`,
//! and `netdigest mail` to tests/smtp_server.py; each under util-linux `setpriv` with
//! numeric ids no account has, in a state directory made as systemd makes it. Then the
//! kernel is asked, as each user, for what that user must not do (and, as controls, for
//! what it must be able to do). Last, retention as each user: each deletes an old night
//! in its own tree, and nightly does not make a deleted night again. Needs root, `ip`, `setpriv` and the SMTP server's python;
//! skipped otherwise (a failure under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::smtp::{self, Server, ServerOpts};

const BIN: &str = env!("CARGO_BIN_EXE_netdigest");

/// A service's identity, as its unit sets it.
struct Id {
    name: &'static str,
    uid: u32,
    /// `SupplementaryGroups=`.
    groups: &'static [u32],
    umask: &'static str,
}

// Numeric ids no account has; each user's primary group has its uid as gid.
const CAPTURE_UID: u32 = 61_701;
const NIGHTLY_UID: u32 = 61_702;
const MAIL_UID: u32 = 61_703;
const CAPTURE: Id = Id {
    name: "capture",
    uid: CAPTURE_UID,
    groups: &[NIGHTLY_UID],
    umask: "0027",
};
const NIGHTLY: Id = Id {
    name: "nightly",
    uid: NIGHTLY_UID,
    groups: &[CAPTURE_UID, MAIL_UID],
    umask: "0077",
};
const MAIL: Id = Id {
    name: "mail",
    uid: MAIL_UID,
    groups: &[NIGHTLY_UID],
    umask: "0027",
};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
    })
}

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// True when this test can run; under `CI=true` a missing piece is a failure.
fn can_run() -> bool {
    let ok = is_root() && have("setpriv", "--version") && have("ip", "-V");
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the privilege-separation test cannot run (needs root, setpriv, ip)"
        );
        eprintln!("SKIP: the privilege-separation test needs root, setpriv and ip");
    }
    ok
}

/// `setpriv` as `id` (no capabilities unless `caps`), under its umask, running `args`.
fn as_user(id: &Id, caps: bool, args: &[&str]) -> Command {
    let groups: Vec<String> = id.groups.iter().map(u32::to_string).collect();
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={}", id.uid))
        .arg(format!("--regid={}", id.uid))
        .arg(format!("--groups={}", groups.join(",")));
    if caps {
        c.args(["--inh-caps=-all,+net_raw", "--ambient-caps=+net_raw"]);
    } else {
        c.arg("--inh-caps=-all");
    }
    c.args([
        "sh",
        "-c",
        &format!("umask {} && exec \"$@\"", id.umask),
        "sh",
    ])
    .args(args);
    c.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("NETDIGEST_CONFIG", "/nonexistent/netdigest.toml");
    c
}

fn chown(path: &Path, uid: u32, gid: u32, mode: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Whether `id` may do `what` to `path`, asked of the kernel by a shell running as it.
fn may(id: &Id, what: &str, path: &Path) -> bool {
    let script = match what {
        // Output to the pipe Command::output() reads (not /dev/null, which a container
        // may not open for everyone).
        "read" => "head -c 1 -- \"$1\"",
        "list" => "ls -- \"$1\"",
        "write" => ": >>\"$1\"",
        "create in" => ": >\"$1/intruder\"",
        other => panic!("{other}"),
    };
    let out = as_user(
        id,
        false,
        &["sh", "-c", script, "sh", path.to_str().unwrap()],
    )
    .output()
    .unwrap();
    out.status.success()
}

/// A network namespace with only `lo`, up; removed on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let n = Netns(format!("nd{}-privsep", std::process::id()));
        let _ = Command::new("ip").args(["netns", "del", &n.0]).output();
        for args in [
            vec!["netns", "add", &n.0],
            vec!["-n", &n.0, "link", "set", "lo", "up"],
        ] {
            let o = Command::new("ip").args(&args).output().unwrap();
            assert!(o.status.success(), "ip {args:?}: {}", text(&o));
        }
        n
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// The state directory as systemd makes it for the three units: root's and 0755 above
/// each service's tree (0750, the service's user and group).
fn state_dir(dir: &Path) -> PathBuf {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    chown(dir, 0, 0, 0o755);
    chown(&state, 0, 0, 0o755);
    for (tree, id) in [("capture", &CAPTURE), ("nights", &NIGHTLY), ("mail", &MAIL)] {
        let t = state.join(tree);
        std::fs::create_dir_all(&t).unwrap();
        chown(&t, id.uid, id.uid, 0o750);
    }
    state
}

/// `netdigest capture` as capture's user, on `lo` in its own namespace, for a few
/// seconds of pings; returns the night's folder in capture's tree.
fn capture(state: &Path) -> PathBuf {
    let ns = Netns::new();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.0]);
    let inner = as_user(
        &CAPTURE,
        true,
        &[
            BIN,
            "capture",
            "--interface",
            "lo",
            "--for",
            "4s",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    cmd.arg(inner.get_program()).args(inner.get_args());
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.env("NETDIGEST_CAPTURE__FILTER", "icmp");
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let ping = Command::new("ip")
        .args([
            "netns", "exec", &ns.0, "ping", "-n", "-q", "-c", "10", "-i", "0.2",
        ])
        .arg("127.0.0.1")
        .output()
        .unwrap();
    assert!(ping.status.success(), "ping: {}", text(&ping));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "capture as its user: {}", text(&out));
    let nights: Vec<PathBuf> = std::fs::read_dir(state.join("capture"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(nights.len(), 1, "{nights:?}");
    nights[0].clone()
}

#[test]
fn each_service_reads_and_writes_only_what_it_must() {
    if !can_run() {
        return;
    }
    let Some(python) = smtp::python() else { return };
    let dir = common::tmpdir("privsep");
    let state = state_dir(&dir);

    // 1. Capture: parts and capture.json in its own tree, readable by its group.
    let cap = capture(&state);
    let night = cap.file_name().unwrap().to_str().unwrap().to_string();
    let part = cap.join("part-0001.pcap");
    let capture_json = cap.join("capture.json");
    assert!(part.is_file() && capture_json.is_file(), "{cap:?}");

    // 2. Nightly: converts the parts, writes the night, its report shared with mail.
    let out = as_user(
        &NIGHTLY,
        false,
        &[BIN, "nightly", "--state", state.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "nightly as its user: {}", text(&out));
    let nd = state.join("nights").join(&night);
    let eml = nd.join("report/report.eml");
    assert!(eml.is_file(), "{}", text(&out));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(nd.join("summary.json")).unwrap()).unwrap();
    let packets = summary["totals"]["packets"].as_u64().unwrap_or(0);
    assert!(
        packets >= 10,
        "the pings were captured and analysed: {summary:#}"
    );

    // 3. Mail: holds the password (its credential: its own, 0400), sends the report.
    let secrets = dir.join("credentials");
    std::fs::create_dir_all(&secrets).unwrap();
    let pw = secrets.join("smtp-password");
    std::fs::write(&pw, smtp::PASSWORD_SHOWN).unwrap();
    chown(&pw, MAIL.uid, MAIL.uid, 0o400);
    chown(&secrets, MAIL.uid, MAIL.uid, 0o500);
    let srv_dir = dir.join("smtp");
    std::fs::create_dir_all(&srv_dir).unwrap();
    let srv = Server::start(&python, &srv_dir, &ServerOpts::default());
    let mail_cmd = || {
        let mut mail = as_user(&MAIL, false, &[BIN, "mail"]);
        mail.env("NETDIGEST_STATE__DIR", &state)
            .env("NETDIGEST_MAIL__TO", "me@example.org")
            .env("NETDIGEST_MAIL__USERNAME", smtp::USER)
            .env("NETDIGEST_MAIL__PASSWORD_FILE", &pw)
            .env("NETDIGEST_MAIL__HOST", "127.0.0.1")
            .env("NETDIGEST_MAIL__PORT", srv.starttls.to_string())
            .env("NETDIGEST_MAIL__TLS", "starttls")
            .env("NETDIGEST_MAIL__CA_FILE", &srv.cert);
        mail
    };
    let mut mail = mail_cmd();
    let out = mail.output().unwrap();
    assert!(
        out.status.success(),
        "mail as its user: {}\n{}",
        text(&out),
        srv.log()
    );
    assert_eq!(srv.messages().len(), 1, "{}", srv.log());
    let mail_json = state.join("mail").join(&night).join("mail.json");
    assert!(
        std::fs::read_to_string(&mail_json)
            .unwrap()
            .contains("\"sent\""),
        "mail.json in mail's tree"
    );

    // 4. What each may not do (and, as controls, what it must).
    let parquet = nd.join("packets.parquet");
    for f in ["names.parquet", "flows.parquet", "rollup.parquet"] {
        assert!(nd.join(f).is_file(), "nightly wrote {f}");
    }
    let mut refused = Vec::new();
    let mut check = |id: &Id, what: &str, path: &Path, allowed: bool| {
        let got = may(id, what, path);
        println!(
            "{:8} {:10} {:60} {}",
            id.name,
            what,
            path.strip_prefix(&dir).unwrap_or(path).display(),
            if got { "allowed" } else { "refused" }
        );
        if got != allowed {
            refused.push(format!(
                "{} {what} {}: {} (expected {})",
                id.name,
                path.display(),
                if got { "allowed" } else { "refused" },
                if allowed { "allowed" } else { "refused" }
            ));
        }
    };
    // Mail: the finished message only; never the packets or the parts.
    check(&MAIL, "read", &eml, true);
    check(&MAIL, "read", &pw, true);
    for f in [
        &part,
        &capture_json,
        &parquet,
        &nd.join("names.parquet"),
        &nd.join("flows.parquet"),
        &nd.join("rollup.parquet"),
        &nd.join("summary.json"),
        &state.join("nights/devices.parquet"),
    ] {
        check(&MAIL, "read", f, false);
    }
    check(&MAIL, "list", &cap, false);
    check(&MAIL, "list", &nd, false);
    check(&MAIL, "write", &eml, false);
    check(&MAIL, "create in", &nd.join("report"), false);
    // Capture and nightly: never the password, never the delivery record.
    for id in [&CAPTURE, &NIGHTLY] {
        check(id, "read", &pw, false);
        check(id, "write", &mail_json, false);
        check(id, "create in", &state.join("mail").join(&night), false);
        check(id, "create in", &state.join("mail"), false);
    }
    check(&NIGHTLY, "read", &mail_json, true); // retention: was it mailed?
    check(&CAPTURE, "read", &mail_json, false);
    // Nightly reads the parts and cannot change them (nor delete or add one).
    check(&NIGHTLY, "read", &part, true);
    check(&NIGHTLY, "write", &part, false);
    check(&NIGHTLY, "write", &capture_json, false);
    check(&NIGHTLY, "create in", &cap, false);
    check(&NIGHTLY, "create in", &state.join("capture"), false);
    // Capture cannot touch the analysis or the report.
    check(&CAPTURE, "read", &parquet, false);
    check(&CAPTURE, "write", &eml, false);
    check(&CAPTURE, "create in", &nd, false);
    check(&CAPTURE, "create in", &state.join("nights"), false);
    // No service can replace another's tree: the state directory is root's.
    for id in [&CAPTURE, &NIGHTLY, &MAIL] {
        check(id, "create in", &state, false);
    }
    assert!(refused.is_empty(), "{refused:#?}");

    // 5. Retention, each stage in its own tree: a night 40 days old, mailed, its night
    //    directory deleted already; capture's files and mail's record are left.
    let old = (chrono::Local::now().date_naive() - chrono::Days::new(40))
        .format("%Y-%m-%d")
        .to_string();
    let old_cap = state.join("capture").join(&old);
    std::fs::create_dir_all(&old_cap).unwrap();
    std::fs::copy(&part, old_cap.join("part-0001.pcap")).unwrap();
    std::fs::copy(&capture_json, old_cap.join("capture.json")).unwrap();
    chown(&old_cap, CAPTURE_UID, CAPTURE_UID, 0o750);
    for f in ["part-0001.pcap", "capture.json"] {
        chown(&old_cap.join(f), CAPTURE_UID, CAPTURE_UID, 0o640);
    }
    let old_mail = state.join("mail").join(&old);
    std::fs::create_dir_all(&old_mail).unwrap();
    let record = format!("{{\"night\": \"{old}\", \"status\": \"sent\"}}\n");
    std::fs::write(old_mail.join("mail.json"), record).unwrap();
    chown(&old_mail, MAIL_UID, MAIL_UID, 0o750);
    chown(&old_mail.join("mail.json"), MAIL_UID, MAIL_UID, 0o640);
    // (keep_nights 1: one newer night is enough for an old one to go.)
    let keep = ("NETDIGEST_STATE__KEEP_NIGHTS", "1");
    // Nightly does not make the night again from capture's files (it reads the record).
    let out = as_user(
        &NIGHTLY,
        false,
        &[BIN, "nightly", "--state", state.to_str().unwrap()],
    )
    .env(keep.0, keep.1)
    .output()
    .unwrap();
    assert!(out.status.success(), "nightly: {}", text(&out));
    assert!(!state.join("nights").join(&old).exists(), "{}", text(&out));
    // Capture deletes its files as it starts (here outside its window: nothing else).
    let later = |min: i64| (chrono::Utc::now() + chrono::Duration::minutes(min)).format("%H:%M");
    let out = as_user(
        &CAPTURE,
        false,
        &[BIN, "capture", "--interface", "lo", "--state"],
    )
    .arg(&state)
    .env(keep.0, keep.1)
    .env("NETDIGEST_CAPTURE__TIMEZONE", "UTC")
    .env("NETDIGEST_CAPTURE__START", later(120).to_string())
    .env("NETDIGEST_CAPTURE__END", later(180).to_string())
    .output()
    .unwrap();
    assert!(out.status.success(), "capture: {}", text(&out));
    assert!(!old_cap.exists(), "capture's old files: {}", text(&out));
    assert!(part.is_file(), "tonight's parts stay");
    // Mail deletes its record, sends nothing again.
    let out = mail_cmd().env(keep.0, keep.1).output().unwrap();
    assert!(out.status.success(), "mail: {}", text(&out));
    assert!(!old_mail.exists(), "mail's old record: {}", text(&out));
    assert!(mail_json.is_file(), "tonight's record stays");
    assert_eq!(srv.messages().len(), 1, "{}", srv.log());
    let _ = std::fs::remove_dir_all(&dir);
}

//! `scripts/install --root DIR`: the binary, the system user, config skeletons that are
//! never overwritten, the units of the configured schedule and the timers enabled; a
//! second run changes nothing; `--uninstall` removes units and binary and keeps the
//! config; `--purge` removes the rest. Needs root (useradd, chown); skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_netdigest");
const TIMERS: [&str; 3] = [
    "netdigest-capture.timer",
    "netdigest-nightly.timer",
    "netdigest-mail.timer",
];
const UNITS: [&str; 6] = [
    "netdigest-capture.service",
    "netdigest-nightly.service",
    "netdigest-mail.service",
    "netdigest-capture.timer",
    "netdigest-nightly.timer",
    "netdigest-mail.timer",
];

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(String::from);
    uid.as_deref() == Some("0")
}

fn install(root: &Path, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install");
    Command::new("bash")
        .arg(script)
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("NETDIGEST_CONFIG")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "scripts/install failed: {all}");
    all
}

/// Every entry under `dir`: kind, mode, owner, size, modification time, link target,
/// and the content of small files.
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let desc = if m.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                format!("dir {:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid())
            } else {
                let content = if m.len() < 100_000 {
                    std::fs::read_to_string(&p).unwrap_or_default()
                } else {
                    String::new()
                };
                format!(
                    "file {:o} {}:{} {} {:?} {content}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid(),
                    m.len(),
                    m.modified().unwrap()
                )
            };
            out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), desc);
        }
    }
    out
}

/// A minimal system image: the account files useradd --root edits.
fn image(name: &str) -> PathBuf {
    let root = common::tmpdir(name).join("root");
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    for (f, text, mode) in [
        ("passwd", "root:x:0:0:root:/root:/bin/bash\n", 0o644),
        ("group", "root:x:0:\n", 0o644),
        ("shadow", "root:*:19000:0:99999:7:::\n", 0o640),
        ("gshadow", "root:*::\n", 0o640),
    ] {
        let p = etc.join(f);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    root
}

fn unit_value(root: &Path, unit: &str, key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("etc/systemd/system").join(unit)).unwrap();
    let prefix = format!("{key}=");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(String::from))
        .collect()
}

#[test]
fn install_is_idempotent_keeps_config_and_uninstalls() {
    if !is_root() {
        eprintln!("SKIP: scripts/install needs root (useradd, chown); CI runs as root");
        return;
    }
    let root = image("install");
    let out = ok(&install(&root, &["--bin", BIN]));
    assert!(out.contains("created the system user netdigest"), "{out}");

    // The binary, the user, the config skeletons with their modes.
    let installed = root.join("usr/local/bin/netdigest");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(BIN).unwrap()
    );
    assert_eq!(std::fs::metadata(&installed).unwrap().mode() & 0o777, 0o755);
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("netdigest:"))
        .unwrap_or_else(|| panic!("no netdigest user: {passwd}"));
    let fields: Vec<&str> = user.split(':').collect();
    assert_eq!(fields[5], "/var/lib/netdigest", "{user}");
    assert!(fields[6].ends_with("nologin"), "{user}");
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "not a system user: {user}");
    // A user and group per service (src/units.rs), and the state directory above their
    // trees root's and 0755.
    for u in ["netdigest-capture", "netdigest-mail"] {
        assert!(
            out.contains(&format!("created the system user {u}")),
            "{out}"
        );
        assert!(
            passwd.lines().any(|l| l.starts_with(&format!("{u}:"))),
            "{passwd}"
        );
    }
    let st = std::fs::metadata(root.join("var/lib/netdigest")).unwrap();
    assert_eq!((st.mode() & 0o7777, st.uid(), st.gid()), (0o755, 0, 0));
    let env = root.join("etc/netdigest/netdigest.env");
    let toml = root.join("etc/netdigest/netdigest.toml");
    assert_eq!(std::fs::metadata(&env).unwrap().mode() & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&env)
            .unwrap()
            .contains("#NETDIGEST_CAPTURE__INTERFACE=wlan0")
    );
    // The password file exists before the user writes the password into it: root's, 0600.
    let pw = std::fs::metadata(root.join("etc/netdigest/smtp-password")).unwrap();
    assert_eq!((pw.mode() & 0o777, pw.uid(), pw.len()), (0o600, 0, 0));
    let tm = std::fs::metadata(&toml).unwrap();
    assert_eq!(tm.mode() & 0o777, 0o640);
    assert_eq!(tm.gid(), fields[3].parse::<u32>().unwrap());
    // The skeleton is a valid config.
    let check = common::bin()
        .env("NETDIGEST_CONFIG", &toml)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", common::stderr(&check));

    // The units run the installed path; the timers are enabled.
    for u in UNITS {
        assert!(root.join("etc/systemd/system").join(u).is_file(), "{u}");
    }
    let verb_exec = unit_value(&root, "netdigest-capture.service", "ExecStart");
    assert_eq!(verb_exec, ["/usr/local/bin/netdigest capture"]);
    for t in TIMERS {
        let link = root.join("etc/systemd/system/timers.target.wants").join(t);
        let target = std::fs::read_link(&link).unwrap_or_else(|e| panic!("{t} not enabled: {e}"));
        assert_eq!(target, Path::new("/etc/systemd/system").join(t));
    }

    // A second run changes nothing at all.
    let before = tree(&root);
    let out = ok(&install(&root, &["--bin", BIN]));
    assert!(out.contains("units are up to date"), "{out}");
    assert_eq!(tree(&root), before, "the second run changed the tree");

    // The user edits the config and the env file: both kept, the timers follow them.
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text = text.replace("# start = \"22:00\"", "start = \"21:15\"");
    std::fs::write(&toml, &text).unwrap();
    let mut env_text = std::fs::read_to_string(&env).unwrap();
    env_text.push_str("NETDIGEST_MAIL__SEND_AT=\"07:45\"\n");
    std::fs::write(&env, &env_text).unwrap();
    ok(&install(&root, &["--bin", BIN]));
    assert_eq!(std::fs::read_to_string(&toml).unwrap(), text);
    assert_eq!(std::fs::read_to_string(&env).unwrap(), env_text);
    assert_eq!(
        unit_value(&root, "netdigest-capture.timer", "OnCalendar"),
        ["*-*-* 21:15:00"]
    );
    assert_eq!(
        unit_value(&root, "netdigest-mail.timer", "OnCalendar"),
        ["*-*-* 07:45:00"]
    );
    let before = tree(&root);
    ok(&install(&root, &["--bin", BIN]));
    assert_eq!(tree(&root), before, "a third run changed the tree");

    // Uninstall: units, links and binary gone; config and user kept. Twice is fine.
    for _ in 0..2 {
        ok(&install(&root, &["--uninstall"]));
        for u in UNITS {
            assert!(!root.join("etc/systemd/system").join(u).exists(), "{u}");
            assert!(
                std::fs::symlink_metadata(
                    root.join("etc/systemd/system/timers.target.wants").join(u)
                )
                .is_err(),
                "{u} still enabled"
            );
        }
        assert!(!installed.exists());
        assert_eq!(std::fs::read_to_string(&toml).unwrap(), text);
        assert_eq!(std::fs::read_to_string(&env).unwrap(), env_text);
        assert!(
            std::fs::read_to_string(root.join("etc/passwd"))
                .unwrap()
                .contains("\nnetdigest:")
        );
    }

    // Purge: the config and the users go too.
    ok(&install(&root, &["--uninstall", "--purge"]));
    assert!(!root.join("etc/netdigest").exists());
    assert!(
        !std::fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .contains("netdigest"),
    );
    let _ = std::fs::remove_dir_all(root.parent().unwrap());
}

#[test]
fn install_refuses_a_bad_binary_and_a_bad_config() {
    if !is_root() {
        eprintln!("SKIP: scripts/install needs root (useradd, chown); CI runs as root");
        return;
    }
    let root = image("install-bad");
    let not_bin = root.join("not-a-binary");
    std::fs::write(&not_bin, "#!/bin/false\n").unwrap();
    std::fs::set_permissions(&not_bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = install(&root, &["--bin", not_bin.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("does not run here"),
        "{}",
        common::stderr(&out)
    );
    assert!(!root.join("usr/local/bin/netdigest").exists());

    // A config the binary refuses: no units are written, the message says what to fix.
    std::fs::create_dir_all(root.join("etc/netdigest")).unwrap();
    std::fs::write(
        root.join("etc/netdigest/netdigest.toml"),
        "[capture]\nstart = \"25:00\"\n",
    )
    .unwrap();
    let out = install(&root, &["--bin", BIN]);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("capture.start") && err.contains("fix the config"),
        "{err}"
    );
    assert!(
        !root
            .join("etc/systemd/system/netdigest-capture.service")
            .exists()
    );
    let _ = std::fs::remove_dir_all(root.parent().unwrap());
}

#[test]
fn install_keeps_env_values_out_of_process_arguments() {
    if !is_root() {
        eprintln!("SKIP: scripts/install needs root (useradd, chown); CI runs as root");
        return;
    }
    if Command::new("strace").arg("-V").output().is_err() {
        let msg = "SKIP: no strace (scripts/install-deps)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("{msg}");
        return;
    }
    let root = image("install-argv");
    let etc = root.join("etc/netdigest");
    std::fs::create_dir_all(&etc).unwrap();
    let env = etc.join("netdigest.env");
    std::fs::write(
        &env,
        "NETDIGEST_MAIL__FROM=canary-from-161803@example.org\n\
         NETDIGEST_MAIL__PASSWORD=canary-pw-271828\n\
         NETDIGEST_MAIL__SEND_AT=\"07:45\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A password file others can read is tightened (its content kept).
    let pw = etc.join("smtp-password");
    std::fs::write(&pw, "secret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();

    let log = root.parent().unwrap().join("execve.log");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install");
    let o = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=execve", "-s", "100000", "-o"])
        .arg(&log)
        .arg("bash")
        .arg(script)
        .arg("--root")
        .arg(&root)
        .args(["--bin", BIN])
        .env_remove("NETDIGEST_CONFIG")
        .output()
        .unwrap();
    let out = ok(&o);
    assert!(
        out.contains("warning: NETDIGEST_MAIL__PASSWORD in /etc/netdigest/netdigest.env"),
        "{out}"
    );
    assert!(!out.contains("canary-pw"), "{out}");
    let calls = std::fs::read_to_string(&log).unwrap();
    // The control: the binary's own execve, with its arguments, is in the log.
    assert!(
        calls.contains("\"units\", \"--out\""),
        "strace did not record the units call: {calls}"
    );
    for canary in ["canary-from-161803", "canary-pw-271828", "07:45"] {
        assert!(
            !calls.contains(canary),
            "{canary} in a process's arguments:\n{}",
            calls
                .lines()
                .filter(|l| l.contains(canary))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // The values still reached the binary: the mail timer follows the env file.
    assert_eq!(
        unit_value(&root, "netdigest-mail.timer", "OnCalendar"),
        ["*-*-* 07:45:00"]
    );
    let m = std::fs::metadata(&pw).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&pw).unwrap(), "secret\n");
    let _ = std::fs::remove_dir_all(root.parent().unwrap());
}

/// A state directory of the release before privilege separation (one user `netdigest`,
/// 0700, every file of a night in nights/<date>/): install makes it root's and 0755,
/// moves each delivery record to mail/<date>/ (the mail user's), and shares the reports
/// (not the Parquet) with the group.
#[test]
fn install_opens_an_old_state_directory_to_the_new_users() {
    if !is_root() {
        eprintln!("SKIP: scripts/install needs root (useradd, chown); CI runs as root");
        return;
    }
    let root = image("install-upgrade");
    let state = root.join("var/lib/netdigest");
    let night = state.join("nights/2026-11-01");
    std::fs::create_dir_all(night.join("report")).unwrap();
    std::fs::create_dir_all(night.join("capture")).unwrap();
    for (f, text) in [
        ("mail.json", "{\"status\": \"sent\"}\n"),
        ("packets.parquet", "PAR1"),
        ("report/report.eml", "Subject: x\r\n\r\n"),
    ] {
        std::fs::write(night.join(f), text).unwrap();
        std::fs::set_permissions(night.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    for d in [&state, &night, &night.join("report")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    ok(&install(&root, &["--bin", BIN]));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&state), 0o755);
    assert!(!night.join("mail.json").exists());
    let rec = state.join("mail/2026-11-01/mail.json");
    assert_eq!(
        std::fs::read_to_string(&rec).unwrap(),
        "{\"status\": \"sent\"}\n"
    );
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let mail_uid: u32 = passwd
        .lines()
        .find_map(|l| l.strip_prefix("netdigest-mail:x:"))
        .and_then(|l| l.split(':').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(std::fs::metadata(&rec).unwrap().uid(), mail_uid);
    assert_eq!(mode(&night), 0o710);
    assert_eq!(mode(&night.join("report")), 0o750);
    assert_eq!(mode(&night.join("report/report.eml")), 0o640);
    assert_eq!(
        mode(&night.join("packets.parquet")),
        0o600,
        "the Parquet stays private"
    );
    let _ = std::fs::remove_dir_all(root.parent().unwrap());
}

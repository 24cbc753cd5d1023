//! `netdigest units`: the generated units and timers checked by systemd's own tools:
//! `systemd-analyze verify` (exit 0 and no output at all: it reports some errors only on
//! stderr with exit 0), `systemd-analyze calendar` on every `OnCalendar=`, capability
//! names against the kernel's list (systemd does not catch a typo in one), and
//! `systemd-analyze security --offline=true` exposure scores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_netdigest");

/// The 41 capabilities of Linux 5.9+ (`CAP_CHOWN` 0 .. `CAP_CHECKPOINT_RESTORE` 40), used
/// when the kernel headers are not installed.
const KNOWN_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// True when systemd-analyze runs here; missing under `CI=true`: a failure.
fn have_systemd_analyze() -> bool {
    common::have_tool("systemd-analyze", "systemd")
}

/// Runs `netdigest units --out DIR --bin BIN` with the given environment overrides.
fn generate(name: &str, env: &[(&str, &str)]) -> (PathBuf, Vec<PathBuf>) {
    let dir = common::tmpdir(name).join("units");
    let mut cmd = common::bin();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .args(["units", "--out"])
        .arg(&dir)
        .args(["--bin", BIN])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "netdigest units failed: {}",
        common::stderr(&out)
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "netdigest-capture.service",
            "netdigest-capture.timer",
            "netdigest-mail.service",
            "netdigest-mail.timer",
            "netdigest-nightly.service",
            "netdigest-nightly.timer",
        ]
    );
    (dir, files)
}

/// Values of `key=` lines in a unit.
fn values(text: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
        .collect()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// `systemd-analyze verify` must exit 0 and print nothing, for each unit alone and for
/// all of them together (so the timers find their services).
fn verify(files: &[PathBuf]) {
    let mut runs: Vec<Vec<&PathBuf>> = files.iter().map(|f| vec![f]).collect();
    runs.push(files.iter().collect());
    for args in runs {
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .args(&args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.trim().is_empty(),
            "systemd-analyze verify {args:?}: {}\n{text}",
            out.status
        );
    }
}

/// Every `OnCalendar=` is accepted by `systemd-analyze calendar`, which normalises it
/// to exactly what we wrote (so systemd reads the time and zone we meant).
fn check_calendars(dir: &Path, expected: &[(&str, &str)]) {
    for (timer, want) in expected {
        let got = values(&read(dir, timer), "OnCalendar");
        assert_eq!(got, [*want], "{timer}");
        let out = Command::new("systemd-analyze")
            .args(["calendar", want])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "systemd-analyze calendar {want:?}: {}",
            common::stderr(&out)
        );
        let normalized = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("Normalized form: "))
            .unwrap_or_else(|| panic!("no normalized form for {want:?}: {stdout}"));
        assert_eq!(normalized, *want, "{timer}");
        assert!(stdout.contains("Next elapse:"), "{stdout}");
    }
}

/// Capability names known to this kernel's headers (`#define CAP_X <number>`), else the
/// constant list.
fn known_capabilities() -> BTreeSet<String> {
    let from_header = std::fs::read_to_string("/usr/include/linux/capability.h")
        .map(|h| {
            h.lines()
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    (w.next() == Some("#define")).then_some(())?;
                    let name = w.next()?;
                    let value = w.next()?;
                    (name.starts_with("CAP_") && value.parse::<u32>().is_ok())
                        .then(|| name.to_string())
                })
                .filter(|n| n != "CAP_LAST_CAP")
                .collect::<BTreeSet<String>>()
        })
        .unwrap_or_default();
    if from_header.is_empty() {
        KNOWN_CAPS.iter().map(|s| (*s).to_string()).collect()
    } else {
        eprintln!(
            "{} capability names from /usr/include/linux/capability.h",
            from_header.len()
        );
        from_header
    }
}

/// The capability names a unit uses, in any capability setting.
fn capability_names(text: &str) -> Vec<String> {
    ["CapabilityBoundingSet", "AmbientCapabilities"]
        .iter()
        .flat_map(|k| values(text, k))
        .flat_map(|v| {
            v.split_whitespace()
                .map(|c| c.trim_start_matches('~').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn unknown_capabilities(text: &str, known: &BTreeSet<String>) -> Vec<String> {
    capability_names(text)
        .into_iter()
        .filter(|c| !known.contains(c))
        .collect()
}

/// The overall exposure score of `systemd-analyze security --offline=true UNIT`.
fn exposure(unit: &Path) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(unit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "systemd-analyze security {}: {}",
        unit.display(),
        common::stderr(&out)
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level for"))
        .unwrap_or_else(|| panic!("no overall exposure level: {stdout}"));
    let after = line.rsplit_once(": ").map_or("", |(_, s)| s);
    after
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("cannot parse a score from {line:?}"))
}

fn check_all(dir: &Path, files: &[PathBuf], calendars: &[(&str, &str)], runtime_max_sec: u32) {
    verify(files);
    check_calendars(dir, calendars);

    // Capabilities: real names, and only the capture holds one.
    let known = known_capabilities();
    assert!(
        known.contains("CAP_NET_RAW") && known.len() >= 38,
        "{known:?}"
    );
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        assert_eq!(
            unknown_capabilities(&text, &known),
            Vec::<String>::new(),
            "{}",
            f.display()
        );
    }
    let capture = read(dir, "netdigest-capture.service");
    assert_eq!(values(&capture, "AmbientCapabilities"), ["CAP_NET_RAW"]);
    assert_eq!(values(&capture, "CapabilityBoundingSet"), ["CAP_NET_RAW"]);
    assert_eq!(
        values(&capture, "RuntimeMaxSec"),
        [runtime_max_sec.to_string()]
    );
    for s in ["netdigest-nightly.service", "netdigest-mail.service"] {
        let text = read(dir, s);
        assert_eq!(values(&text, "CapabilityBoundingSet"), [""], "{s}");
        assert!(values(&text, "AmbientCapabilities").is_empty(), "{s}");
    }
    for s in [
        "netdigest-capture.service",
        "netdigest-nightly.service",
        "netdigest-mail.service",
    ] {
        let text = read(dir, s);
        let verb = s
            .trim_start_matches("netdigest-")
            .trim_end_matches(".service");
        assert_eq!(values(&text, "ExecStart"), [format!("{BIN} {verb}")], "{s}");
    }
    // Privilege separation: a user per service, each writing its own tree, reading the
    // stage before it through that stage's group (tests/privsep.rs runs the stages so).
    for (s, user, groups, tree, umask) in [
        (
            "netdigest-capture.service",
            "netdigest-capture",
            vec!["netdigest"],
            "capture",
            "0027",
        ),
        (
            "netdigest-nightly.service",
            "netdigest",
            vec!["netdigest-capture netdigest-mail"],
            "nights",
            "0077",
        ),
        (
            "netdigest-mail.service",
            "netdigest-mail",
            vec!["netdigest"],
            "mail",
            "0027",
        ),
    ] {
        let text = read(dir, s);
        assert_eq!(values(&text, "User"), [user], "{s}");
        assert_eq!(values(&text, "Group"), [user], "{s}");
        assert_eq!(values(&text, "SupplementaryGroups"), groups, "{s}");
        assert_eq!(
            values(&text, "StateDirectory"),
            [format!("netdigest/{tree}")],
            "{s}"
        );
        assert_eq!(values(&text, "StateDirectoryMode"), ["0750"], "{s}");
        assert_eq!(values(&text, "UMask"), [umask], "{s}");
        let credential = !values(&text, "LoadCredential").is_empty();
        assert_eq!(credential, s == "netdigest-mail.service", "{s}");
    }
    // Memory: each service has its bound (a flood stops nightly, never the Pi).
    for (s, max) in [
        ("netdigest-capture.service", "256M"),
        ("netdigest-nightly.service", "1536M"),
        ("netdigest-mail.service", "256M"),
    ] {
        assert_eq!(values(&read(dir, s), "MemoryMax"), [max], "{s}");
    }
    // At boot both timers may fire together: the mail waits for the nightly report.
    let after = values(&read(dir, "netdigest-mail.service"), "After");
    assert!(
        after.iter().any(|a| a
            .split_whitespace()
            .any(|u| u == "netdigest-nightly.service")),
        "{after:?}"
    );
    for t in [
        "netdigest-capture.timer",
        "netdigest-nightly.timer",
        "netdigest-mail.timer",
    ] {
        let text = read(dir, t);
        assert_eq!(values(&text, "Persistent"), ["true"], "{t}");
        assert_eq!(values(&text, "WantedBy"), ["timers.target"], "{t}");
    }

    // Exposure: the hardening must keep every service well inside systemd's "OK" band.
    for (unit, max) in [
        ("netdigest-capture.service", 2.5),
        ("netdigest-nightly.service", 2.0),
        ("netdigest-mail.service", 2.0),
    ] {
        let score = exposure(&dir.join(unit));
        println!("systemd-analyze security --offline=true {unit}: exposure {score:.1}");
        assert!(score <= max, "{unit}: exposure {score} above {max}");
    }
}

#[test]
fn default_schedule_units_verify_clean() {
    if !have_systemd_analyze() {
        return;
    }
    let (dir, files) = generate("units-default", &[]);
    check_all(
        &dir,
        &files,
        &[
            ("netdigest-capture.timer", "*-*-* 22:00:00"),
            ("netdigest-nightly.timer", "*-*-* 06:05:00"),
            ("netdigest-mail.timer", "*-*-* 06:30:00"),
        ],
        (8 * 60 + 15) * 60,
    );
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn overridden_schedule_units_verify_clean() {
    if !have_systemd_analyze() {
        return;
    }
    let (dir, files) = generate(
        "units-berlin",
        &[
            ("NETDIGEST_CAPTURE__START", "23:30"),
            ("NETDIGEST_CAPTURE__END", "05:15"),
            ("NETDIGEST_MAIL__SEND_AT", "07:00"),
            ("NETDIGEST_CAPTURE__TIMEZONE", "Europe/Berlin"),
        ],
    );
    check_all(
        &dir,
        &files,
        &[
            ("netdigest-capture.timer", "*-*-* 23:30:00 Europe/Berlin"),
            ("netdigest-nightly.timer", "*-*-* 05:20:00 Europe/Berlin"),
            ("netdigest-mail.timer", "*-*-* 07:00:00 Europe/Berlin"),
        ],
        // 23:30 to 05:15 is 5 h 45 min, plus the 15 min backstop.
        6 * 3600,
    );
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// The checks above can fail: a typo that systemd only warns about on stderr (exit 0),
/// and a misspelt capability that systemd does not notice at all.
#[test]
fn the_checks_catch_typos() {
    if !have_systemd_analyze() {
        return;
    }
    let (dir, _) = generate("units-typos", &[]);
    let good = read(&dir, "netdigest-capture.service");
    let bad_dir = dir.parent().unwrap().join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let bad = bad_dir.join("netdigest-capture.service");
    std::fs::write(
        &bad,
        good.replace("ProtectSystem=", "ProtectSytem=").replace(
            "AmbientCapabilities=CAP_NET_RAW",
            "AmbientCapabilities=CAP_NET_RWA",
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        out.status.success() && common::stderr(&out).contains("ProtectSytem"),
        "verify reports an unknown key on stderr with exit 0: {} {}",
        out.status,
        common::stderr(&out)
    );
    let known = known_capabilities();
    assert_eq!(
        unknown_capabilities(&std::fs::read_to_string(&bad).unwrap(), &known),
        ["CAP_NET_RWA"]
    );
    // A bad --bin is refused, naming it.
    let out = common::run(&[
        "units",
        "--out",
        "/nonexistent-dir-x",
        "--bin",
        "/no\nwhere",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// A `state.dir` with a blank, a `%`, quotes, a backslash or a `;` is written as one
/// unit-file word (quoted, `%%`), which `systemd-analyze verify` reads without a
/// complaint (unescaped, it reports "path is not absolute" for the part after a blank
/// and "Failed to resolve unit specifiers" for `%z`: see the control below).
#[test]
fn odd_state_dirs_are_escaped() {
    let cases = [
        ("/srv/net digest", r#""/srv/net digest""#),
        ("/srv/50%zdone", "/srv/50%%zdone"),
        ("/srv/50% off", r#""/srv/50%% off""#),
        (r#"/srv/it's "q""#, r#""/srv/it's \"q\"""#),
        (r"/srv/back\slash", r#""/srv/back\\slash""#),
        ("/srv/semi;colon", r#""/srv/semi;colon""#),
    ];
    let verify_here = have_systemd_analyze();
    for (i, (dir, word)) in cases.iter().enumerate() {
        let (units, files) = generate(&format!("units-odd-{i}"), &[("NETDIGEST_STATE__DIR", dir)]);
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            if f.extension().is_some_and(|e| e == "service") {
                // Each service's own tree of the state directory.
                let tree = values(&text, "StateDirectory")[0].replace("netdigest/", "");
                let want = match word.strip_suffix('"') {
                    Some(w) => format!("{w}/{tree}\""),
                    None => format!("{word}/{tree}"),
                };
                assert_eq!(values(&text, "ReadWritePaths"), [want], "{dir}");
            }
            assert_eq!(
                text.lines().filter(|l| l.contains("srv")).count(),
                usize::from(f.extension().is_some_and(|e| e == "service")),
                "{dir}: {text}"
            );
        }
        if verify_here {
            verify(&files);
        }
        let _ = std::fs::remove_dir_all(units.parent().unwrap());
    }
    if verify_here {
        // The control: the same values unescaped are reported.
        let dir = common::tmpdir("units-odd-control");
        for (raw, complaint) in [
            ("/srv/net digest", "not absolute"),
            ("/srv/50%zdone", "specifiers"),
        ] {
            let unit = dir.join("x.service");
            std::fs::write(
                &unit,
                format!("[Service]\nExecStart=/bin/true\nReadWritePaths={raw}\n"),
            )
            .unwrap();
            let out = Command::new("systemd-analyze")
                .arg("verify")
                .arg(&unit)
                .output()
                .unwrap();
            assert!(
                common::stderr(&out).contains(complaint),
                "{raw}: {}",
                common::stderr(&out)
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A control character (a newline would inject a directive) is refused by check-config
/// and units alike: exit 2, one line naming state.dir.
#[test]
fn a_state_dir_with_a_newline_is_refused() {
    let out_dir = common::tmpdir("units-newline");
    for dir in ["/srv/x\nUser=root", "/srv/tab\there"] {
        for args in [
            vec!["check-config"],
            vec!["units", "--out", out_dir.to_str().unwrap()],
        ] {
            let o = common::bin()
                .env("NETDIGEST_STATE__DIR", dir)
                .args(&args)
                .output()
                .unwrap();
            let err = common::stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains("state.dir") && err.contains("control character"),
                "{err}"
            );
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        }
    }
    assert!(
        std::fs::read_dir(&out_dir).unwrap().next().is_none(),
        "units written for a refused state.dir"
    );
    let _ = std::fs::remove_dir_all(out_dir);
}

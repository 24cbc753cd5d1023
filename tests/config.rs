//! Configuration as a user meets it: every bad value, from the file or from a
//! `NETDIGEST_*` override, is refused by `check-config` with exit 2 and a one-line message
//! naming the key and the value; good values in their documented forms are accepted.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;

fn check_config_env(key: &str, value: &str) -> Output {
    common::bin()
        .env(key, value)
        .arg("check-config")
        .output()
        .unwrap()
}

fn check_config_file(dir: &std::path::Path, toml: &str) -> Output {
    let path = dir.join("netdigest.toml");
    std::fs::write(&path, toml).unwrap();
    common::bin()
        .env("NETDIGEST_CONFIG", &path)
        .arg("check-config")
        .output()
        .unwrap()
}

fn assert_refused(o: &Output, key: &str, value: &str, what: &str) {
    let err = common::stderr(o);
    assert_eq!(o.status.code(), Some(2), "{what}: {err}");
    assert!(
        err.contains(key),
        "{what}: the message must name {key}: {err}"
    );
    assert!(
        err.contains(value),
        "{what}: the message must name {value}: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: one line: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

/// (environment variable, TOML section, TOML key, bad value)
const BAD: &[(&str, &str, &str, &str)] = &[
    ("NETDIGEST_CAPTURE__START", "capture", "start", "25:00"),
    ("NETDIGEST_CAPTURE__END", "capture", "end", "6 am"),
    ("NETDIGEST_MAIL__SEND_AT", "mail", "send_at", "07:60"),
    (
        "NETDIGEST_CAPTURE__TIMEZONE",
        "capture",
        "timezone",
        "Mars/Olympus",
    ),
    (
        "NETDIGEST_REPORT__INTERVAL",
        "report",
        "interval",
        "10 fortnights",
    ),
    ("NETDIGEST_MAIL__TLS", "mail", "tls", "ssl"),
    ("NETDIGEST_MAIL__SMTP", "mail", "smtp", "hotmail"),
    ("NETDIGEST_PRIVACY__MODE", "privacy", "mode", "anonymous"),
];

#[test]
fn bad_values_are_exit_2_naming_the_key() {
    let dir = common::tmpdir("config-bad");
    for (env, section, key, value) in BAD {
        let o = check_config_env(env, value);
        assert_refused(&o, &format!("{section}.{key}"), value, env);
        let o = check_config_file(&dir, &format!("[{section}]\n{key} = \"{value}\"\n"));
        assert_refused(
            &o,
            &format!("{section}.{key}"),
            value,
            &format!("file {key}"),
        );
    }
}

#[test]
fn an_unknown_report_section_is_refused() {
    let o = check_config_env("NETDIGEST_REPORT__SECTIONS", r#"["pings","bogus"]"#);
    assert_refused(
        &o,
        "report.sections",
        "bogus",
        "sections from the environment",
    );
    let err = common::stderr(&o);
    assert!(
        err.contains("\"pings\"") && err.contains("\"history\""),
        "the message lists the sections there are: {err}"
    );
    let dir = common::tmpdir("config-sections");
    let o = check_config_file(&dir, "[report]\nsections = [\"timeline\", \"tlaker\"]\n");
    assert_refused(&o, "report.sections", "tlaker", "sections from the file");
}

#[test]
fn good_values_in_every_documented_form_are_accepted() {
    let dir = common::tmpdir("config-good");
    let o = check_config_file(
        &dir,
        "[capture]\nstart = \"23:30\"\nend = \"5:15\"\ntimezone = \"Europe/Berlin\"\n\
         [report]\ninterval = \"1h\"\nsections = [\"history\", \"pings\"]\n\
         [mail]\nsend_at = \"07:05\"\ntls = \"tls\"\nsmtp = \"gmail-tls\"\n\
         [privacy]\nmode = \"pseudonymise\"\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    let o = common::bin()
        .env("NETDIGEST_REPORT__INTERVAL", "90s")
        .env("NETDIGEST_CAPTURE__START", "21:00")
        .arg("print-config")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
    assert!(out.contains("report.interval = \"90s\""), "{out}");
    assert!(out.contains("capture.start = \"21:00\""), "{out}");
    assert!(
        out.contains("capture.end = \"06:00\""),
        "defaults shown: {out}"
    );
}

#[test]
fn other_commands_refuse_a_bad_config_with_exit_2() {
    let dir = common::tmpdir("config-units");
    for args in [
        vec!["units", "--out", dir.to_str().unwrap()],
        vec!["nightly", "--state", dir.to_str().unwrap()],
    ] {
        let o = common::bin()
            .env("NETDIGEST_MAIL__SEND_AT", "noon")
            .args(&args)
            .output()
            .unwrap();
        assert_refused(&o, "mail.send_at", "noon", &args.join(" "));
    }
}

/// The output of a command, both streams, for a check that a secret is absent.
fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_numeric_boolean_or_float_password_is_accepted_and_never_printed() {
    let dir = common::tmpdir("config-secret");
    for pw in ["12345678", "true", "3.1415926"] {
        let digits = pw.trim_start_matches("3.");
        for args in [
            vec!["check-config"],
            vec!["-vv", "check-config"],
            vec!["print-config"],
        ] {
            let o = common::bin()
                .env("NETDIGEST_CONFIG", dir.join("missing.toml"))
                .env("NETDIGEST_MAIL__PASSWORD", pw)
                .args(&args)
                .output()
                .unwrap();
            let out = all_output(&o);
            assert_eq!(o.status.code(), Some(0), "{pw} {args:?}: {out}");
            assert!(!out.contains(digits), "{pw} {args:?}: {out}");
        }
        // From the file too, and also when another key is refused.
        let o = check_config_file(&dir, &format!("[mail]\npassword = {pw}\n"));
        assert_eq!(o.status.code(), Some(0), "{pw}: {}", all_output(&o));
        assert!(!all_output(&o).contains(digits), "{}", all_output(&o));
        let o = common::bin()
            .env("NETDIGEST_CONFIG", dir.join("missing.toml"))
            .env("NETDIGEST_MAIL__PASSWORD", pw)
            .env("NETDIGEST_MAIL__SEND_AT", "noon")
            .arg("check-config")
            .output()
            .unwrap();
        assert_refused(&o, "mail.send_at", "noon", pw);
        assert!(!all_output(&o).contains(digits), "{}", all_output(&o));
    }
    // A value that is no password at all is refused without being shown.
    let o = check_config_file(&dir, "[mail]\npassword = [27182818]\n");
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    assert!(common::stderr(&o).contains("mail.password"));
    assert!(!all_output(&o).contains("27182818"), "{}", all_output(&o));
}

#[test]
fn check_config_warns_when_the_nights_kept_outgrow_the_state_filesystem() {
    let dir = common::tmpdir("config-state-size");
    let state = dir.join("state");
    let run = |keep: &str, max_mb: &str| {
        common::bin()
            .env("NETDIGEST_STATE__DIR", &state)
            .env("NETDIGEST_STATE__KEEP_NIGHTS", keep)
            .env("NETDIGEST_CAPTURE__MAX_DISK_MB", max_mb)
            .arg("check-config")
            .output()
            .unwrap()
    };
    // A million nights of 1 TiB fit on no disk: a warning, and still exit 0.
    let o = run("1000000", "1048576");
    let err = common::stderr(&o);
    assert!(o.status.success(), "a warning, not a failure: {err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("config OK"));
    assert!(
        err.contains("WARN")
            && err.contains("state.keep_nights 1000000")
            && err.contains("MiB filesystem of"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    // Two nights of 1 MiB fit anywhere: no warning.
    let o = run("2", "1");
    assert!(o.status.success());
    assert!(common::stderr(&o).is_empty(), "{}", common::stderr(&o));
    assert!(!state.exists(), "check-config creates nothing");
    // Neither the directory nor its parent exists (a build sandbox): nothing to compare.
    let o = common::bin()
        .env("NETDIGEST_STATE__DIR", dir.join("absent/state"))
        .env("NETDIGEST_STATE__KEEP_NIGHTS", "1000000")
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        o.status.success() && common::stderr(&o).is_empty(),
        "{}",
        common::stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! The Nix side, checked without Nix's store or network (flake.nix, image/).
//!
//! - Every `.nix` file in the repository parses (`nix-instantiate --parse`, Debian's
//!   `nix-bin`; missing: a skip, a failure under `CI=true`).
//! - image/firstboot.sh, the Pi's first-boot secret mover, against a temporary
//!   directory standing in for the FAT partition and the target directories.
//! - Where `NIXPKGS_LIB` points at nixpkgs' `lib` directory (a checkout of
//!   nix-community/nixpkgs.lib), image/module.nix is evaluated with `lib.evalModules`
//!   (image/tests/eval-module.nix: stand-ins for the NixOS options it sets), the
//!   services and timers are rendered to unit files as NixOS renders them, verified
//!   with `systemd-analyze verify` (any output is a failure: it reports some errors
//!   only on stderr with exit 0) and compared directive by directive with what the
//!   built binary's `netdigest units` writes for the same config (src/units.rs is the
//!   source of truth; `MAY_DIFFER` lists the keys allowed to differ, and why). The
//!   module's own options (environment, environmentFiles, passwordFile, its
//!   assertions) are checked on their own, and the settings with the binary's
//!   `check-config`, as the module does at build time. Unset: skipped with the reason
//!   printed (CI has no copy of it and no network to fetch one). The comparison itself
//!   is checked without Nix (`unit_comparison_catches_drift`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netdigest-nix-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `nix-instantiate`, quiet about the missing `nixbld` group of a daemonless install.
fn nix_instantiate() -> Option<Command> {
    let ok = Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !ci(),
            "CI=true but nix-instantiate is missing (Debian: nix-bin, scripts/install-deps)"
        );
        eprintln!("SKIP: nix-instantiate not installed (Debian: nix-bin)");
        return None;
    }
    let mut c = Command::new("nix-instantiate");
    c.env("NIX_CONFIG", "build-users-group =");
    Some(c)
}

fn nix_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if e.file_type().unwrap().is_dir() {
            if !matches!(
                name.as_ref(),
                "target" | ".git" | "netdigest-demo" | "result"
            ) && !name.starts_with("result-")
            {
                nix_files(&p, out);
            }
        } else if name.ends_with(".nix") {
            out.push(p);
        }
    }
}

#[test]
fn every_nix_file_parses() {
    let Some(_) = nix_instantiate() else { return };
    let mut files = Vec::new();
    nix_files(repo(), &mut files);
    files.sort();
    for must in [
        "flake.nix",
        "image/package.nix",
        "image/module.nix",
        "image/pi5.nix",
        "image/vm-test.nix",
        "image/tests/eval-module.nix",
    ] {
        assert!(
            files.contains(&repo().join(must)),
            "{must} not found among {files:?}"
        );
    }
    let mut failed = String::new();
    for f in &files {
        let o = nix_instantiate()
            .unwrap()
            .arg("--parse")
            .arg(f)
            .output()
            .unwrap();
        if !o.status.success() {
            let _ = writeln!(failed, "{}: {}", f.display(), text(&o));
        }
    }
    assert!(
        failed.is_empty(),
        "nix-instantiate --parse failed:\n{failed}"
    );
    eprintln!("parsed {} .nix files", files.len());

    // The check can fail: a broken expression is refused.
    let bad = tmpdir("parse").join("bad.nix");
    std::fs::write(&bad, "{ a = 1; b = ; }\n").unwrap();
    let o = nix_instantiate()
        .unwrap()
        .arg("--parse")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!o.status.success(), "a syntax error parsed: {}", text(&o));
}

/// No flake.lock can be made without network: every input is pinned to a commit in its
/// URL, and nixpkgs follows nixos-raspberrypi's own pin (its binary cache then applies).
#[test]
fn flake_inputs_are_pinned_to_commits() {
    let Some(mut c) = nix_instantiate() else {
        return;
    };
    let o = c
        .args(["--eval", "--strict", "--json", "--expr"])
        .arg(format!("(import {}/flake.nix).inputs", repo().display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let inputs: Value = serde_json::from_slice(&o.stdout).unwrap();
    let url = inputs["nixos-raspberrypi"]["url"].as_str().unwrap();
    let rev = url
        .strip_prefix("github:nvmd/nixos-raspberrypi/")
        .unwrap_or_else(|| panic!("nixos-raspberrypi url {url}"));
    assert!(
        rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()),
        "nixos-raspberrypi is not pinned to a commit: {url}"
    );
    assert_eq!(inputs["nixpkgs"]["follows"], "nixos-raspberrypi/nixpkgs");
    let names: Vec<&String> = inputs.as_object().unwrap().keys().collect();
    assert_eq!(names, ["nixos-raspberrypi", "nixpkgs"], "unexpected inputs");
}

/// The package's source set (image/package.nix) holds every workspace member: a crate
/// missing from it builds here and fails only in `nix build`.
#[test]
fn package_sources_hold_every_workspace_member() {
    let cargo: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap()).unwrap();
    let members = cargo["workspace"]["members"].as_array().unwrap();
    let nix = std::fs::read_to_string(repo().join("image/package.nix")).unwrap();
    let listed: Vec<&str> = nix.lines().map(str::trim).collect();
    for m in members {
        let m = m.as_str().unwrap();
        if m == "." {
            continue;
        }
        assert!(
            listed.contains(&format!("../{m}").as_str()),
            "workspace member {m}/ is not in image/package.nix's fileset"
        );
    }
}

// ---------------------------------------------------------------- firstboot.sh

struct Firstboot {
    dir: PathBuf,
}

impl Firstboot {
    fn new(name: &str) -> Self {
        let dir = tmpdir(&format!("firstboot-{name}"));
        std::fs::create_dir_all(dir.join("firmware")).unwrap();
        std::fs::create_dir_all(dir.join("zoneinfo/Europe")).unwrap();
        std::fs::write(dir.join("zoneinfo/Europe/Berlin"), "TZif").unwrap();
        Firstboot { dir }
    }
    fn src(&self) -> PathBuf {
        self.dir.join("firmware/netdigest.env")
    }
    fn pw(&self) -> PathBuf {
        self.dir.join("var/lib/netdigest-secrets/smtp-password")
    }
    fn env(&self) -> PathBuf {
        self.dir.join("etc/netdigest/netdigest.env")
    }
    fn wifi(&self) -> PathBuf {
        self.dir.join("etc/wpa_supplicant/imperative.conf")
    }
    fn run(&self) -> Output {
        Command::new("bash")
            .arg(repo().join("image/firstboot.sh"))
            .env("NETDIGEST_FIRSTBOOT_SRC", self.src())
            .env("NETDIGEST_PASSWORD_FILE", self.pw())
            .env("NETDIGEST_ENV_FILE", self.env())
            .env("NETDIGEST_WIFI_CONF", self.wifi())
            .env("NETDIGEST_LOCALTIME", self.dir.join("etc/localtime"))
            .env("NETDIGEST_ZONEINFO", self.dir.join("zoneinfo"))
            .env(
                "NETDIGEST_SSH_KEYS",
                self.dir.join("root/.ssh/authorized_keys"),
            )
            .output()
            .unwrap()
    }
    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }
}

/// The environment file read back as systemd would (its quoting is the shell's for
/// double quotes with `\\ \" \$ \``): every assignment the file makes.
fn env_file_values(p: &Path) -> BTreeMap<String, String> {
    let o = Command::new("bash")
        .arg("-c")
        .arg(r#"set -a; . "$1"; env -0"#)
        .arg("bash")
        .arg(p)
        .env_clear()
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.starts_with("NETDIGEST_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn firstboot_moves_secrets_from_a_windows_edited_file() {
    let fb = Firstboot::new("windows");
    // Notepad: a byte order mark, CRLF, a last line without a newline; a user's
    // spaces, quotes, comments and a key we do not know.
    let content = "\u{feff}# netdigest settings\r\n\
        NETDIGEST_MAIL__TO=\"you@gmail.com, other@example.org\"\r\n\
        export NETDIGEST_CAPTURE__INTERFACE = 'wlan0'\r\n\
        \r\n\
        NETDIGEST_MAIL__USERNAME=you@gmail.com\r\n\
        NETDIGEST_REPORT__TOP_N=5 \r\n\
        NETDIGEST_MAIL__SUBJECT=\"Night of {night}: $HOME \\\"quoted\\\" `x`\"\r\n\
        SMTP_PASSWORD=abcd efgh ijkl mnop\r\n\
        WIFI_SSID=My \"Home\" Net\r\n\
        WIFI_PSK=correct horse battery\r\n\
        WIFI_COUNTRY=de\r\n\
        TIMEZONE=Europe/Berlin\r\n\
        SSH_AUTHORIZED_KEY=ssh-ed25519 AAAAC3Nzaaaa me@laptop\r\n\
        SSH_AUTHORIZED_KEY = \"ssh-ed25519 AAAAC3Nzbbbb me@phone\"\r\n\
        NETDIGEST_CAPTURE__START=21:00\r\n\
        PATH=/evil\r\n\
        no equals sign here\r\n\
        NETDIGEST_MAIL__FROM=me@example.org";
    std::fs::write(fb.src(), content).unwrap();
    let o = fb.run();
    assert!(o.status.success(), "{}", text(&o));
    let log = String::from_utf8_lossy(&o.stderr);

    // The password: 0600, exactly what was written (spaces kept; the binary removes
    // Gmail's display spaces itself), one final newline.
    assert_eq!(
        std::fs::read_to_string(fb.pw()).unwrap(),
        "abcd efgh ijkl mnop\n"
    );
    assert_eq!(Firstboot::mode(&fb.pw()), 0o600, "password file mode");

    // The environment file: 0600, only NETDIGEST_* assignments, no CR, values intact.
    assert_eq!(Firstboot::mode(&fb.env()), 0o600, "env file mode");
    let env_text = std::fs::read_to_string(fb.env()).unwrap();
    assert!(!env_text.contains('\r'), "CR left in {env_text:?}");
    for line in env_text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.starts_with("NETDIGEST_"),
            "not a NETDIGEST_ line: {line:?}"
        );
    }
    for secret in ["abcd", "SMTP_PASSWORD", "horse", "WIFI", "PATH", "/evil"] {
        assert!(
            !env_text.contains(secret),
            "{secret} in the env file: {env_text}"
        );
    }
    let vals = env_file_values(&fb.env());
    let want: BTreeMap<String, String> = [
        ("NETDIGEST_MAIL__TO", "you@gmail.com, other@example.org"),
        ("NETDIGEST_CAPTURE__INTERFACE", "wlan0"),
        ("NETDIGEST_MAIL__USERNAME", "you@gmail.com"),
        ("NETDIGEST_REPORT__TOP_N", "5"),
        (
            "NETDIGEST_MAIL__SUBJECT",
            "Night of {night}: $HOME \\\"quoted\\\" `x`",
        ),
        ("NETDIGEST_MAIL__FROM", "me@example.org"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(vals, want, "env file:\n{env_text}");

    // Wi-Fi: the SSID in hex (quotes in it are harmless), the passphrase, the country.
    let wifi = std::fs::read_to_string(fb.wifi()).unwrap();
    assert_eq!(Firstboot::mode(&fb.wifi()), 0o600);
    let hex: String = "My \"Home\" Net"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(wifi.contains(&format!("ssid={hex}\n")), "{wifi}");
    assert!(wifi.contains("psk=\"correct horse battery\"\n"), "{wifi}");
    assert!(wifi.starts_with("country=DE\n"), "{wifi}");

    // The plain-text copy is gone from the FAT partition; nothing secret was logged.
    assert!(
        !fb.src().exists(),
        "netdigest.env left on the FAT partition"
    );
    for secret in ["abcd", "efgh", "horse", "you@gmail.com"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert!(log.contains("unknown key PATH"), "{log}");
    assert!(log.contains("NETDIGEST_CAPTURE__START is ignored"), "{log}");
    assert_eq!(
        std::fs::read_link(fb.dir.join("etc/localtime")).unwrap(),
        fb.dir.join("zoneinfo/Europe/Berlin")
    );
    let keys_path = fb.dir.join("root/.ssh/authorized_keys");
    assert_eq!(
        std::fs::read_to_string(&keys_path).unwrap(),
        "ssh-ed25519 AAAAC3Nzaaaa me@laptop\nssh-ed25519 AAAAC3Nzbbbb me@phone\n"
    );
    assert_eq!(Firstboot::mode(&keys_path), 0o600);
    assert!(log.contains("no '='"), "{log}");
    // No temporary files left beside the targets.
    for d in [fb.pw(), fb.env(), fb.wifi()] {
        let parent = d.parent().unwrap();
        let left: Vec<_> = std::fs::read_dir(parent)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".netdigest-firstboot"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
}

#[test]
fn firstboot_without_the_file_does_nothing() {
    let fb = Firstboot::new("missing");
    let o = fb.run();
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to do"));
    for p in [fb.pw(), fb.env(), fb.wifi()] {
        assert!(!p.exists(), "{} created", p.display());
    }
}

#[test]
fn firstboot_quoted_password_and_a_later_drop_keep_what_it_does_not_name() {
    let fb = Firstboot::new("again");
    std::fs::write(
        fb.src(),
        "SMTP_PASSWORD=\"p@ss word #1 'x'\"\nNETDIGEST_MAIL__TO=a@example.org\n",
    )
    .unwrap();
    let o = fb.run();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(fb.pw()).unwrap(),
        "p@ss word #1 'x'\n"
    );
    assert!(!fb.wifi().exists(), "Wi-Fi written without WIFI_SSID");

    // A second card edit with only a new address: the password stays, the env file is
    // replaced by the new lines.
    std::fs::write(
        fb.src(),
        "NETDIGEST_MAIL__TO='b@example.org'\r\nSSH_AUTHORIZED_KEY=ssh-ed25519 K1 a\r\n\
         SSH_AUTHORIZED_KEY=ssh-ed25519 K1 a\r\nTIMEZONE=../../etc/passwd\r\n",
    )
    .unwrap();
    let o = fb.run();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(fb.pw()).unwrap(),
        "p@ss word #1 'x'\n"
    );
    let vals = env_file_values(&fb.env());
    assert_eq!(vals.len(), 1, "{vals:?}");
    assert_eq!(vals["NETDIGEST_MAIL__TO"], "b@example.org");
    assert!(!fb.src().exists());
    assert_eq!(
        std::fs::read_to_string(fb.dir.join("root/.ssh/authorized_keys")).unwrap(),
        "ssh-ed25519 K1 a\n",
        "keys not deduplicated"
    );
    assert!(
        !fb.dir.join("etc/localtime").exists(),
        "a path as TIMEZONE was linked"
    );

    // A Wi-Fi passphrase too short for WPA is refused, the rest still stored.
    std::fs::write(
        fb.src(),
        "WIFI_SSID=Home\nWIFI_PSK=short\nSMTP_PASSWORD=new\n",
    )
    .unwrap();
    let o = fb.run();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!fb.wifi().exists());
    assert!(String::from_utf8_lossy(&o.stderr).contains("8 to 63"));
    assert_eq!(std::fs::read_to_string(fb.pw()).unwrap(), "new\n");
}

#[test]
fn firstboot_redirects_an_env_password_and_strips_trailing_comments() {
    let fb = Firstboot::new("redirect");
    std::fs::write(
        fb.src(),
        "NETDIGEST_MAIL__TO=a@example.org   # the owner\n\
         NETDIGEST_MAIL__PASSWORD=31415926\n\
         WIFI_SSID=Home            # optional, with WIFI_PSK=\n\
         WIFI_PSK=\"pass #1 word\"  # quoted: the # inside is kept\n\
         WIFI_COUNTRY=DE\n",
    )
    .unwrap();
    let o = fb.run();
    assert!(o.status.success(), "{}", text(&o));
    let log = String::from_utf8_lossy(&o.stderr);
    // The password went to the 0600 password file, never into the EnvironmentFile.
    assert_eq!(std::fs::read_to_string(fb.pw()).unwrap(), "31415926\n");
    assert_eq!(Firstboot::mode(&fb.pw()), 0o600);
    let env_text = std::fs::read_to_string(fb.env()).unwrap();
    assert!(
        !env_text.contains("PASSWORD") && !env_text.contains("3141"),
        "{env_text}"
    );
    let vals = env_file_values(&fb.env());
    assert_eq!(vals.len(), 1, "{vals:?}");
    assert_eq!(vals["NETDIGEST_MAIL__TO"], "a@example.org");
    assert!(
        log.contains("NETDIGEST_MAIL__PASSWORD stored as the password file"),
        "{log}"
    );
    // The comments are gone from the SSID, the quoted passphrase keeps its `#`.
    let wifi = std::fs::read_to_string(fb.wifi()).unwrap();
    let hex: String = "Home".bytes().map(|b| format!("{b:02x}")).collect();
    assert!(wifi.contains(&format!("  ssid={hex}\n")), "{wifi}");
    assert!(wifi.contains("psk=\"pass #1 word\"\n"), "{wifi}");
    assert!(
        log.contains("WIFI_SSID: the comment after the value was removed"),
        "{log}"
    );
    for secret in ["3141", "pass #1", "Home"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        == Some("0")
}

fn run_ok(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}", text(&o));
}

/// Whether `needle` occurs in `hay`.
fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn firstboot_leaves_no_secret_in_the_fat_partitions_free_clusters() {
    if !is_root() {
        eprintln!("SKIP: the FAT image test needs root (a loop mount)");
        return;
    }
    // FAT where the kernel has it (a container's kernel may not: then ext2, which also
    // leaves a removed file's bytes in its free blocks, so the overwrite is still tested).
    let kernel_fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let vfat = kernel_fs.split_whitespace().any(|w| w == "vfat")
        && Command::new("mkfs.vfat").arg("--help").output().is_ok();
    if !vfat {
        assert!(
            !ci() || kernel_fs.split_whitespace().all(|w| w != "vfat"),
            "no mkfs.vfat (dosfstools, scripts/install-deps)"
        );
        eprintln!("NOTE: no vfat here (kernel or dosfstools): the image is ext2");
    }
    let fb = Firstboot::new("fat");
    let img = fb.dir.join("firmware.img");
    let mnt = fb.dir.join("firmware");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(4 << 20)
        .unwrap();
    if vfat {
        run_ok(Command::new("mkfs.vfat").arg(&img));
        // Mounted as image/pi5.nix mounts /boot/firmware.
        run_ok(
            Command::new("mount")
                .args(["-o", "loop,fmask=0077,dmask=0077"])
                .arg(&img)
                .arg(&mnt),
        );
    } else {
        run_ok(Command::new("mkfs.ext2").arg("-q").arg(&img));
        run_ok(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&img)
                .arg(&mnt),
        );
    }
    let pw = "canary-pw-27182818";
    let psk = "canary-psk-16180339";
    std::fs::write(
        fb.src(),
        format!("SMTP_PASSWORD={pw}\nWIFI_SSID=Home\nWIFI_PSK={psk}\n"),
    )
    .unwrap();
    // The control: a file only removed leaves its bytes in the free clusters.
    let removed = "canary-removed-14142135";
    std::fs::write(mnt.join("other.txt"), format!("{removed}\n")).unwrap();
    run_ok(&mut Command::new("sync"));
    std::fs::remove_file(mnt.join("other.txt")).unwrap();
    if vfat {
        assert_eq!(
            std::fs::metadata(fb.src()).unwrap().permissions().mode() & 0o777,
            0o700,
            "fmask=0077: files on the FAT partition are root-only"
        );
    }
    let o = fb.run();
    let umount = Command::new("umount").arg(&mnt).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(umount.status.success(), "{}", text(&umount));
    assert_eq!(std::fs::read_to_string(fb.pw()).unwrap(), format!("{pw}\n"));
    let raw = std::fs::read(&img).unwrap();
    assert!(
        contains_bytes(&raw, removed.as_bytes()),
        "the control: rm alone should leave the bytes in the image"
    );
    for secret in [pw, psk] {
        assert!(
            !contains_bytes(&raw, secret.as_bytes()),
            "{secret} is still in the image after firstboot"
        );
    }
}

#[test]
fn image_texts_carry_the_appliance_fixes() {
    let read = |f: &str| std::fs::read_to_string(repo().join(f)).unwrap();
    let pi5 = read("image/pi5.nix");
    for want in [
        "boot.supportedFilesystems.zfs = lib.mkForce false;",
        r#"fileSystems."/boot/firmware".options = lib.mkForce ["#,
        r#""fmask=0077""#,
        r#""dmask=0077""#,
        "systemd.services.wpa_supplicant.serviceConfig.ExecStartPre = lib.mkAfter [",
        r#""+${pkgs.coreutils}/bin/chmod 0600 /etc/wpa_supplicant/imperative.conf""#,
        r#"NETDIGEST_ZONEINFO = "/etc/zoneinfo";"#,
    ] {
        assert!(pi5.contains(want), "image/pi5.nix lacks {want}");
    }
    assert!(
        !pi5.contains("${pkgs.tzdata}"),
        "/etc/localtime must not link into a tzdata store path"
    );
    let vm = read("image/vm-test.nix");
    assert!(vm.contains(r#"virtualisation.qemu.options = [ "-rtc base=2026-01-02T21:55:00" ];"#));
    assert!(
        !vm.contains(".succeed(\"date -s"),
        "the VM test sets the clock backwards"
    );
    let readme = read("README.md");
    let example = readme
        .split("```sh\nNETDIGEST_MAIL__TO=you@gmail.com")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("README's netdigest.env example");
    for line in example.lines().filter(|l| !l.starts_with('#')) {
        assert!(!line.contains(" #"), "a comment after a value: {line:?}");
    }
    let module = read("image/module.nix");
    assert!(module.contains("assertion = !(cfg.environment ? NETDIGEST_MAIL__PASSWORD);"));
}

#[test]
fn flake_names_the_raspberry_pi_binary_cache() {
    let Some(mut c) = nix_instantiate() else {
        return;
    };
    let o = c
        .args(["--eval", "--strict", "--json", "--expr"])
        .arg(format!("(import {}/flake.nix).nixConfig", repo().display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let cfg: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        cfg["extra-substituters"],
        serde_json::json!(["https://nixos-raspberrypi.cachix.org"])
    );
    assert_eq!(
        cfg["extra-trusted-public-keys"],
        serde_json::json!([
            "nixos-raspberrypi.cachix.org-1:4iMO9LXa8BqhU+Rpg6LQKiGa2lsNh/j2oiYLNOQ5sPI="
        ])
    );
}

// ---------------------------------------------------------------- the NixOS module

/// `$NIXPKGS_LIB`, nixpkgs' `lib` directory; None (with the reason printed): skip.
fn nixpkgs_lib() -> Option<PathBuf> {
    match std::env::var_os("NIXPKGS_LIB").filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.join("default.nix").is_file() && p.join("modules.nix").is_file(),
                "NIXPKGS_LIB={}: not nixpkgs' lib directory (no default.nix, modules.nix)",
                p.display()
            );
            Some(p)
        }
        None => {
            eprintln!(
                "SKIP: NIXPKGS_LIB is unset: the NixOS module evaluation needs nixpkgs' lib \
                 (a checkout of nix-community/nixpkgs.lib; NIXPKGS_LIB=<checkout>/lib)"
            );
            None
        }
    }
}

/// A directory standing in for the package's store path: bin/netdigest is the binary
/// under test, so `systemd-analyze verify` finds a real executable.
fn package_dir() -> PathBuf {
    // One per call: tests run in parallel, and a shared directory removed and made
    // again by another test made `systemd-analyze verify` miss the executable.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = tmpdir(&format!("pkg-{n}"));
    std::fs::create_dir_all(d.join("bin")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_netdigest"), d.join("bin/netdigest")).unwrap();
    d
}

/// Evaluates the module with `user_module` (a Nix expression) added.
fn eval_module(lib: &Path, pkg: &Path, user_module: &str) -> Value {
    let mut c = nix_instantiate().expect("NIXPKGS_LIB is set but nix-instantiate is missing");
    let o = c
        .args(["--eval", "--strict", "--json"])
        .arg(repo().join("image/tests/eval-module.nix"))
        .arg("--arg")
        .arg("lib")
        .arg(format!("import {}", lib.display()))
        .arg("--argstr")
        .arg("packageDir")
        .arg(pkg)
        .arg("--arg")
        .arg("userModule")
        .arg(user_module)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "evaluating image/module.nix: {}",
        text(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn unit_value(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().flat_map(unit_value).collect(),
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        Value::String(s) => vec![s.clone()],
        Value::Null => vec![],
        Value::Object(_) => panic!("object as a unit value: {v}"),
    }
}

/// `[Section]` lines as NixOS writes them: a list is one `Key=` line per element.
fn section(out: &mut String, name: &str, kv: &[(String, Vec<String>)]) {
    if kv.is_empty() {
        return;
    }
    let _ = writeln!(out, "[{name}]");
    for (k, vs) in kv {
        for v in vs {
            let _ = writeln!(out, "{k}={v}");
        }
    }
    out.push('\n');
}

fn pairs(obj: &Value) -> Vec<(String, Vec<String>)> {
    obj.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), unit_value(v))).collect())
        .unwrap_or_default()
}

fn unit_section(unit: &Value) -> Vec<(String, Vec<String>)> {
    let mut u = vec![(
        "Description".to_string(),
        vec![unit["description"].as_str().unwrap().to_string()],
    )];
    for (key, nix) in [("After", "after"), ("Before", "before"), ("Wants", "wants")] {
        let v = unit_value(&unit[nix]);
        if !v.is_empty() {
            u.push((key.to_string(), vec![v.join(" ")]));
        }
    }
    // NixOS writes restartIfChanged = false as this key (switch-to-configuration reads it).
    if unit["restartIfChanged"] == Value::Bool(false) {
        u.push(("X-RestartIfChanged".to_string(), vec!["false".to_string()]));
    }
    u.extend(pairs(&unit["unitConfig"]));
    u
}

fn render_service(svc: &Value) -> String {
    let mut out = String::new();
    section(&mut out, "Unit", &unit_section(svc));
    let mut s: Vec<(String, Vec<String>)> = svc["environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                "Environment".to_string(),
                vec![format!("\"{k}={}\"", v.as_str().unwrap())],
            )
        })
        .collect();
    s.extend(pairs(&svc["serviceConfig"]));
    section(&mut out, "Service", &s);
    let wanted = unit_value(&svc["wantedBy"]);
    if !wanted.is_empty() {
        section(
            &mut out,
            "Install",
            &[("WantedBy".into(), vec![wanted.join(" ")])],
        );
    }
    out
}

fn render_timer(t: &Value) -> String {
    let mut out = String::new();
    section(&mut out, "Unit", &unit_section(t));
    section(&mut out, "Timer", &pairs(&t["timerConfig"]));
    section(
        &mut out,
        "Install",
        &[(
            "WantedBy".into(),
            vec![unit_value(&t["wantedBy"]).join(" ")],
        )],
    );
    out
}

/// The unit files in a fresh directory, verified by `systemd-analyze verify` with no
/// output at all; every OnCalendar accepted by `systemd-analyze calendar`.
fn verify_units(ev: &Value, name: &str) -> PathBuf {
    let dir = tmpdir(&format!("units-{name}"));
    let mut files = Vec::new();
    for (n, svc) in ev["services"].as_object().unwrap() {
        let p = dir.join(format!("{n}.service"));
        std::fs::write(&p, render_service(svc)).unwrap();
        files.push(p);
    }
    for (n, t) in ev["timers"].as_object().unwrap() {
        let p = dir.join(format!("{n}.timer"));
        std::fs::write(&p, render_timer(t)).unwrap();
        files.push(p);
        let cal = t["timerConfig"]["OnCalendar"].as_str().unwrap();
        let o = Command::new("systemd-analyze")
            .args(["calendar", cal])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "systemd-analyze calendar {cal:?}: {}",
            text(&o)
        );
    }
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let units: String = files
        .iter()
        .map(|f| {
            format!(
                "--- {}\n{}",
                f.display(),
                std::fs::read_to_string(f).unwrap()
            )
        })
        .collect();
    assert!(
        o.status.success() && all.trim().is_empty(),
        "systemd-analyze verify: {}\n{units}",
        text(&o)
    );
    dir
}

/// A rendered unit's `Key=value` lines.
fn lines(dir: &Path, file: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn has(l: &[String], line: &str, file: &str) {
    let n = l.iter().filter(|x| *x == line).count();
    assert_eq!(
        n,
        1,
        "{file}: want `{line}` exactly once, in:\n{}",
        l.join("\n")
    );
}

fn value_of<'a>(l: &'a [String], key: &str) -> Vec<&'a str> {
    l.iter()
        .filter_map(|x| x.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .collect()
}

// ------------------------------------- the module against `netdigest units`, directive by directive

/// Unit files as systemd reads them: file name -> section -> key -> the values of its
/// `Key=` lines, in file order.
type Units = BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<String>>>>;

/// List settings: systemd merges their lines and splits them on whitespace, and an
/// empty assignment resets the list. Compared as sets (`After=a b` is `After=b` plus
/// `After=a`); every other key as its values, in any order.
const SET_KEYS: &[&str] = &[
    "After",
    "Before",
    "Wants",
    "Requires",
    "WantedBy",
    "RestrictAddressFamilies",
    "SystemCallFilter",
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "ReadWritePaths",
    "SupplementaryGroups",
    "IPAddressDeny",
];

/// (section, key, why): the only keys whose values may differ between the module and
/// `netdigest units`; every other directive of every unit must be equal, present in
/// both or in neither.
///
/// Not here because the comparison makes them equal: `ExecStart=` (the module runs its
/// package's store path; the comparison gives `netdigest units --bin` the stand-in
/// package's `bin/netdigest`), `EnvironmentFile=` and `LoadCredential=` (the module's
/// `environmentFiles` and `passwordFile` default to the contract's paths; their
/// overrides are checked in `module_overrides_reach_the_units`). The config file is
/// /etc/netdigest/netdigest.toml on both sides (the module links it into the store),
/// so no directive names it.
const MAY_DIFFER: &[(&str, &str, &str)] = &[
    (
        "Service",
        "Environment",
        "module only: NETDIGEST_FONT_DIR (the store's DejaVu fonts; NixOS has no fontconfig \
         fallback) and services.netdigest.environment (`netdigest units` reads overrides \
         only from EnvironmentFile=); real NixOS also adds PATH, LOCALE_ARCHIVE, TZDIR",
    ),
    (
        "Unit",
        "X-RestartIfChanged",
        "NixOS only: capture's restartIfChanged = false (a rebuild at night must not cut \
         the capture in two); systemd ignores X- keys",
    ),
];

fn parse_unit(name: &str, text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.entry(s.to_string()).or_default();
            section = Some(s.to_string());
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "{name}: continuation lines are not parsed here: {line:?}"
        );
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}: not Key=Value: {line:?}"));
        let sec = section
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: {line:?} before any [Section]"));
        out.get_mut(sec)
            .unwrap()
            .entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    out
}

fn parse_units(dir: &Path) -> Units {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(dir.join(&name)).unwrap();
            let parsed = parse_unit(&name, &text);
            (name, parsed)
        })
        .collect()
}

/// A key's values as compared: a set for [`SET_KEYS`] (with systemd's reset on an
/// empty assignment), else the values sorted.
fn normalized(key: &str, values: &[String]) -> Vec<String> {
    if SET_KEYS.contains(&key) {
        let mut set = std::collections::BTreeSet::new();
        for v in values {
            if v.is_empty() {
                set.clear();
            } else {
                set.extend(v.split_whitespace().map(String::from));
            }
        }
        set.into_iter().collect()
    } else {
        let mut v = values.to_vec();
        v.sort();
        v
    }
}

fn shown(v: Option<&Vec<String>>) -> String {
    match v {
        None => "(absent)".to_string(),
        Some(v) if v.is_empty() => "(empty)".to_string(),
        Some(v) => v
            .iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Every directive on which `module` and `units` disagree, outside [`MAY_DIFFER`]: one
/// line each, naming the unit, the section, the key and both values.
fn unit_differences(module: &Units, units: &Units) -> Vec<String> {
    let mut out = Vec::new();
    let none = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> = module.keys().chain(units.keys()).collect();
    for name in names {
        let (Some(m), Some(u)) = (module.get(name), units.get(name)) else {
            let side = if module.contains_key(name) {
                "the module"
            } else {
                "`netdigest units`"
            };
            out.push(format!("{name}: only {side} writes this unit"));
            continue;
        };
        let sections: std::collections::BTreeSet<&String> = m.keys().chain(u.keys()).collect();
        for sec in sections {
            let ms = m.get(sec).unwrap_or(&none);
            let us = u.get(sec).unwrap_or(&none);
            let keys: std::collections::BTreeSet<&String> = ms.keys().chain(us.keys()).collect();
            for key in keys {
                if MAY_DIFFER.iter().any(|(s, k, _)| s == sec && k == key) {
                    continue;
                }
                let mv = ms.get(key).map(|v| normalized(key, v));
                let uv = us.get(key).map(|v| normalized(key, v));
                if mv != uv {
                    out.push(format!(
                        "{name} [{sec}] {key}: module {} | `netdigest units` {}",
                        shown(mv.as_ref()),
                        shown(uv.as_ref())
                    ));
                }
            }
        }
    }
    out
}

/// The module's settings as the TOML file the services read (the module writes the
/// same values with pkgs.formats.toml).
fn settings_file(settings: &Value, name: &str) -> PathBuf {
    let toml_value: toml::Value = serde_json::from_value(settings.clone()).unwrap();
    let path = tmpdir(&format!("cfg-{name}")).join("netdigest.toml");
    std::fs::write(&path, toml::to_string(&toml_value).unwrap()).unwrap();
    path
}

/// `netdigest units --out DIR --bin BIN` on `settings` with the module's `environment`.
fn netdigest_units(settings: &Value, env: &Value, bin: &Path, name: &str) -> PathBuf {
    let cfg = settings_file(settings, &format!("units-{name}"));
    let out = tmpdir(&format!("netdigest-units-{name}"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_netdigest"));
    c.env_clear()
        .env("NETDIGEST_CONFIG", &cfg)
        .arg("units")
        .arg("--out")
        .arg(&out)
        .arg("--bin")
        .arg(bin);
    for (k, v) in env.as_object().unwrap() {
        c.env(k, v.as_str().unwrap());
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "netdigest units on the module's settings ({}): {}",
        std::fs::read_to_string(&cfg).unwrap(),
        text(&o)
    );
    out
}

/// Evaluates the module with `user_module`, verifies its units, runs `netdigest units`
/// on the same settings and environment, and fails on any directive that differs
/// outside [`MAY_DIFFER`]. Returns the evaluation and the module's unit directory.
fn assert_module_matches_netdigest_units(
    lib: &Path,
    pkg: &Path,
    user_module: &str,
    name: &str,
) -> (Value, PathBuf) {
    let ev = eval_module(lib, pkg, user_module);
    assert_eq!(ev["failedAssertions"], serde_json::json!([]), "{ev}");
    let module_dir = verify_units(&ev, name);
    let units_dir = netdigest_units(
        &ev["settings"],
        &ev["environment"],
        &pkg.join("bin/netdigest"),
        name,
    );
    let diff = unit_differences(&parse_units(&module_dir), &parse_units(&units_dir));
    assert!(
        diff.is_empty(),
        "image/module.nix and `netdigest units` (src/units.rs) differ for {user_module}:\n  {}\n\
         (module: {}, netdigest units: {}; keys allowed to differ: {:?})",
        diff.join("\n  "),
        module_dir.display(),
        units_dir.display(),
        MAY_DIFFER
            .iter()
            .map(|(s, k, _)| format!("[{s}] {k}"))
            .collect::<Vec<_>>()
    );
    (ev, module_dir)
}

/// The comparison itself, without Nix: equal units compare equal whatever the line
/// order and however lists are split; drift is reported by unit, key and both values.
#[test]
fn unit_comparison_catches_drift() {
    let dir = netdigest_units(
        &serde_json::json!({}),
        &serde_json::json!({}),
        Path::new("/opt/netdigest/bin/netdigest"),
        "selfcheck",
    );
    let units = parse_units(&dir);
    assert_eq!(units.len(), 6, "{units:?}");
    assert!(unit_differences(&units, &units).is_empty());

    let nightly = std::fs::read_to_string(dir.join("netdigest-nightly.service")).unwrap();
    let mail = std::fs::read_to_string(dir.join("netdigest-mail.service")).unwrap();
    let rewrite = |name: &str, text: &str| {
        let mut m = units.clone();
        m.insert(name.to_string(), parse_unit(name, text));
        m
    };

    // The same directives in reverse order, lists one value a line, an allowed key
    // added: equal.
    let mut reordered = String::new();
    for (sec, kv) in units["netdigest-mail.service"].iter().rev() {
        let _ = writeln!(reordered, "[{sec}]");
        if sec == "Service" {
            reordered.push_str("Environment=\"NETDIGEST_FONT_DIR=/x\"\n");
        }
        for (k, vs) in kv.iter().rev() {
            for v in vs {
                if SET_KEYS.contains(&k.as_str()) && !v.is_empty() {
                    for tok in v.split_whitespace().rev() {
                        let _ = writeln!(reordered, "{k}={tok}");
                    }
                } else {
                    let _ = writeln!(reordered, "{k}={v}");
                }
            }
        }
    }
    assert!(reordered.contains("After=netdigest-nightly.service\nAfter=network-online"));
    let d = unit_differences(&rewrite("netdigest-mail.service", &reordered), &units);
    assert!(d.is_empty(), "{d:?}\n{reordered}");

    // An older nightly: IPAddressDeny=any and the address families for interface lookups
    // instead of a private network.
    let old = nightly
        .replace("PrivateNetwork=yes\n", "IPAddressDeny=any\n")
        .replace(
            "RestrictAddressFamilies=AF_UNIX\n",
            "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6\n",
        );
    assert_ne!(old, nightly, "the nightly unit changed: update this check");
    let d = unit_differences(&rewrite("netdigest-nightly.service", &old), &units);
    assert_eq!(
        d,
        [
            "netdigest-nightly.service [Service] IPAddressDeny: module \"any\" | \
             `netdigest units` (absent)",
            "netdigest-nightly.service [Service] PrivateNetwork: module (absent) | \
             `netdigest units` \"yes\"",
            "netdigest-nightly.service [Service] RestrictAddressFamilies: module \"AF_INET\", \
             \"AF_INET6\", \"AF_NETLINK\", \"AF_UNIX\" | `netdigest units` \"AF_UNIX\"",
        ]
    );

    // The mail without its ordering after the nightly job; an empty bounding set is not
    // an absent one (absent: every capability); a unit missing on one side.
    let drifted = mail
        .replace(
            "After=network-online.target netdigest-nightly.service",
            "After=network-online.target",
        )
        .replace("CapabilityBoundingSet=\n", "");
    let mut m = rewrite("netdigest-mail.service", &drifted);
    m.remove("netdigest-mail.timer");
    let d = unit_differences(&m, &units);
    assert_eq!(
        d,
        [
            "netdigest-mail.service [Service] CapabilityBoundingSet: module (absent) | \
             `netdigest units` (empty)",
            "netdigest-mail.service [Unit] After: module \"network-online.target\" | \
             `netdigest units` \"netdigest-nightly.service\", \"network-online.target\"",
            "netdigest-mail.timer: only `netdigest units` writes this unit",
        ]
    );
}

/// The module's units for several settings sets are the ones `netdigest units` writes
/// for the same config: the defaults; a window in a time zone whose report time wraps
/// past midnight, with another state directory (ReadWritePaths=); a whole-day window
/// with the state directory from `environment`; the default directory written with a
/// trailing slash (still the default: no ReadWritePaths=).
#[test]
fn module_units_match_netdigest_units() {
    let Some(lib) = nixpkgs_lib() else { return };
    let pkg = package_dir();
    let cases = [
        ("defaults", "{ }"),
        (
            "tz",
            r#"{ services.netdigest = {
                  settings.capture = { start = "23:30"; end = "23:58"; timezone = "Europe/Berlin"; };
                  settings.mail.send_at = "07:15";
                  settings.state.dir = "/srv/netdigest";
                  environment.NETDIGEST_CAPTURE__INTERFACE = "wlan0";
                }; }"#,
        ),
        (
            "day",
            r#"{ services.netdigest = {
                  settings.capture = { start = "00:00"; end = "00:00"; timezone = "UTC"; };
                  settings.mail.send_at = "09:05";
                  environment.NETDIGEST_STATE__DIR = "/data/netdigest";
                }; }"#,
        ),
        (
            "slash",
            r#"{ services.netdigest.settings.state.dir = "/var/lib/netdigest/"; }"#,
        ),
        (
            "odd",
            r#"{ services.netdigest.settings.state.dir = "/srv/net digest/50%z \"q\" \\b;c"; }"#,
        ),
    ];
    for (name, m) in cases {
        let (_, dir) = assert_module_matches_netdigest_units(&lib, &pkg, m, name);
        // The cases exercise what they are meant to (the comparison alone would also
        // pass if both sides lost ReadWritePaths=).
        let rw = value_of(&lines(&dir, "netdigest-mail.service"), "ReadWritePaths")
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        let want: &[&str] = match name {
            "tz" => &["/srv/netdigest/mail"],
            "day" => &["/data/netdigest/mail"],
            "odd" => &[r#""/srv/net digest/50%%z \"q\" \\b;c/mail""#],
            _ => &[],
        };
        assert_eq!(rw, want, "{name}: ReadWritePaths");
    }
}

#[test]
fn module_defaults() {
    let Some(lib) = nixpkgs_lib() else { return };
    let pkg = package_dir();
    let (ev, dir) = assert_module_matches_netdigest_units(&lib, &pkg, "{ }", "module-defaults");
    // A user and group per service (src/units.rs), and the state directory above their
    // trees root's.
    for user in ["netdigest-capture", "netdigest", "netdigest-mail"] {
        let u = &ev["users"][user];
        assert_eq!(u["isSystemUser"], true, "{user}");
        assert_eq!(u["group"], user);
        assert!(ev["groups"].get(user).is_some(), "{user}");
    }
    assert_eq!(
        ev["tmpfiles"],
        serde_json::json!(["d /var/lib/netdigest 0755 root root -"])
    );
    // The config the services read is the binary's default path, linked to the store.
    let etc = ev["etc"]["netdigest/netdigest.toml"].as_str().unwrap();
    assert!(etc.starts_with("/nix/store/"), "{etc}");
    for unit in ["netdigest-capture", "netdigest-nightly", "netdigest-mail"] {
        let svc = &ev["services"][unit];
        let font = svc["environment"]["NETDIGEST_FONT_DIR"].as_str().unwrap();
        assert!(font.ends_with("-dejavu-fonts/share/fonts"), "{font}");
        assert!(svc["environment"].get("NETDIGEST_CONFIG").is_none());
        // ExecStart runs the package (here the stand-in for its store path).
        let cmd = unit.strip_prefix("netdigest-").unwrap();
        let file = format!("{unit}.service");
        has(
            &lines(&dir, &file),
            &format!("ExecStart={}/bin/netdigest {cmd}", pkg.display()),
            &file,
        );
    }
    has(
        &lines(&dir, "netdigest-capture.service"),
        "X-RestartIfChanged=false",
        "netdigest-capture.service",
    );

    let o = check_config(&ev["settings"], &[], "defaults");
    assert!(
        o.status.success(),
        "check-config on the module's settings: {}",
        text(&o)
    );
}

/// The settings as the module renders them, checked by the binary (the module runs the
/// same `check-config` in a derivation at build time).
fn check_config(settings: &Value, env: &[(&str, &str)], name: &str) -> Output {
    let path = settings_file(settings, name);
    let mut c = Command::new(env!("CARGO_BIN_EXE_netdigest"));
    c.env_clear()
        .env("NETDIGEST_CONFIG", &path)
        .arg("check-config");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// What the module has and `netdigest units` has not: `environment` on every unit,
/// `interface`, other environment files and password files, no password file.
#[test]
fn module_overrides_reach_the_units() {
    let Some(lib) = nixpkgs_lib() else { return };
    let pkg = package_dir();
    let ev = eval_module(
        &lib,
        &pkg,
        r#"{ services.netdigest = {
              interface = "eth1";
              settings.capture = { start = "23:30"; end = "23:58"; timezone = "Europe/Berlin"; filter = "not port 22"; };
              settings.mail = { send_at = "07:15"; to = [ "a@example.org" "b@example.org" ]; };
              settings.report.top_n = 5;
              environment.NETDIGEST_CAPTURE__INTERFACE = "wlan0";
              environmentFiles = [ "/run/secrets/netdigest.env" ];
            }; }"#,
    );
    assert_eq!(ev["failedAssertions"], serde_json::json!([]), "{ev}");
    let dir = verify_units(&ev, "overrides");
    for unit in ["netdigest-capture", "netdigest-nightly", "netdigest-mail"] {
        let f = format!("{unit}.service");
        let l = lines(&dir, &f);
        has(&l, "Environment=\"NETDIGEST_CAPTURE__INTERFACE=wlan0\"", &f);
        assert_eq!(
            value_of(&l, "EnvironmentFile"),
            ["/run/secrets/netdigest.env"],
            "{f}"
        );
    }
    assert_eq!(ev["settings"]["capture"]["interface"], "eth1");
    assert!(ev["settings"]["capture"].get("timezone").is_some());
    let o = check_config(
        &ev["settings"],
        &[("NETDIGEST_CAPTURE__INTERFACE", "wlan0")],
        "tz",
    );
    assert!(o.status.success(), "check-config: {}", text(&o));

    // An invalid filter in settings is what the build-time check refuses.
    let bad = eval_module(
        &lib,
        &pkg,
        r#"{ services.netdigest.settings.capture.filter = "port nonsense"; }"#,
    );
    let o = check_config(&bad["settings"], &[], "badfilter");
    assert_eq!(
        o.status.code(),
        Some(2),
        "check-config accepted a bad filter: {}",
        text(&o)
    );

    // No password file: no credential lines at all, and the units still verify.
    let ev = eval_module(&lib, &pkg, "{ services.netdigest.passwordFile = null; }");
    assert_eq!(ev["failedAssertions"], serde_json::json!([]));
    let dir = verify_units(&ev, "nopw");
    let m = lines(&dir, "netdigest-mail.service");
    assert!(value_of(&m, "LoadCredential").is_empty() && value_of(&m, "SetCredential").is_empty());
    // A password file elsewhere (the Pi's): the credential follows it, with the same
    // non-empty fallback as `netdigest units` (systemd 252 refuses an empty one).
    let ev = eval_module(
        &lib,
        &pkg,
        r#"{ services.netdigest.passwordFile = "/var/lib/netdigest-secrets/smtp-password"; }"#,
    );
    let dir = verify_units(&ev, "pipw");
    let m = lines(&dir, "netdigest-mail.service");
    has(
        &m,
        "LoadCredential=smtp-password:/var/lib/netdigest-secrets/smtp-password",
        "netdigest-mail.service",
    );
    has(
        &m,
        "SetCredential=smtp-password:\\n",
        "netdigest-mail.service",
    );
}

#[test]
fn module_refuses_store_passwords_and_schedule_overrides() {
    let Some(lib) = nixpkgs_lib() else { return };
    let pkg = package_dir();
    let failed = |m: &str| -> Vec<String> {
        eval_module(&lib, &pkg, m)["failedAssertions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    for bad in [
        r#"{ services.netdigest.passwordFile = "/nix/store/0000-smtp-password"; }"#,
        r#"{ services.netdigest.passwordFile = "${builtins.storeDir}/0000-smtp-password"; }"#,
        r#"{ services.netdigest.passwordFile = "relative/smtp-password"; }"#,
    ] {
        let f = failed(bad);
        assert!(
            f.len() == 1 && f[0].contains("outside the Nix store"),
            "{bad}: {f:?}"
        );
    }
    let f = failed(r#"{ services.netdigest.environment.NETDIGEST_CAPTURE__START = "21:00"; }"#);
    assert!(
        f.len() == 1 && f[0].contains("timers are built from settings"),
        "{f:?}"
    );
    let f = failed(r#"{ services.netdigest.environment.SMTP_PASSWORD = "x"; }"#);
    assert!(f.len() == 1 && f[0].contains("only NETDIGEST_*"), "{f:?}");
    let f = failed(r#"{ services.netdigest.settings.mail.password = "hunter2"; }"#);
    assert!(f.len() == 1 && f[0].contains("passwordFile"), "{f:?}");
    let f = failed(r#"{ services.netdigest.environment.NETDIGEST_MAIL__PASSWORD = "12345678"; }"#);
    assert!(
        f.len() == 1 && f[0].contains("NETDIGEST_MAIL__PASSWORD") && f[0].contains("passwordFile"),
        "{f:?}"
    );
    assert!(!f[0].contains("12345678"), "{f:?}");
    let f = failed(r#"{ services.netdigest.settings.state.dir = "/srv/x\nUser=root"; }"#);
    assert!(f.len() == 1 && f[0].contains("control character"), "{f:?}");
    // A relative state directory, as `netdigest units` refuses it.
    for bad in [
        r#"{ services.netdigest.settings.state.dir = "netdigest"; }"#,
        r#"{ services.netdigest.environment.NETDIGEST_STATE__DIR = "state"; }"#,
    ] {
        let f = failed(bad);
        assert!(
            f.len() == 1 && f[0].contains("state.dir must be an absolute path"),
            "{bad}: {f:?}"
        );
    }

    // A Nix path is not even a string: refused by the option's type.
    let o = nix_instantiate()
        .unwrap()
        .args(["--eval", "--strict", "--json"])
        .arg(repo().join("image/tests/eval-module.nix"))
        .args(["--arg", "lib"])
        .arg(format!("import {}", lib.display()))
        .args(["--argstr", "packageDir"])
        .arg(&pkg)
        .args(["--arg", "userModule"])
        .arg(format!(
            "{{ services.netdigest.passwordFile = {}/Cargo.toml; }}",
            repo().display()
        ))
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a Nix path was accepted as passwordFile"
    );
}

//! systemd units and timers for the configured schedule (`netdigest units --out DIR`),
//! for installs without Nix (`scripts/install`). The names, schedule and hardening follow
//! the units contract shared with the NixOS module (`image/module.nix`):
//!
//! | unit | runs | timer |
//! |---|---|---|
//! | `netdigest-capture` | `BIN capture` | `capture.start` |
//! | `netdigest-nightly` | `BIN nightly` | `capture.end` + 5 min |
//! | `netdigest-mail` | `BIN mail` | `mail.send_at` |
//!
//! Every timer is `Persistent=true` (a Pi that was off at the time runs the job at boot),
//! and `OnCalendar=` carries `capture.timezone` when it is set, so the schedule follows
//! the same zone as the capture window. The text is built with plain string formatting:
//! what is written is what `systemd-analyze verify` reads in the tests.
//!
//! Each service runs as its own user and writes only its own tree of the state directory
//! (`StateDirectory=netdigest/<tree>`, see [`crate::layout`]); the next stage reads it
//! through the writer's group:
//!
//! | unit | user (group) | writes | also in groups | reads |
//! |---|---|---|---|---|
//! | capture | `netdigest-capture` | `capture/` | `netdigest` | |
//! | nightly | `netdigest` | `nights/` | `netdigest-capture`, `netdigest-mail` | the parts, `mail.json` |
//! | mail | `netdigest-mail` | `mail/` | `netdigest` | `report/` (the password: its credential) |
//!
//! Every service reads /etc/netdigest/netdigest.toml (root's, group `netdigest`, 0640),
//! hence capture's group `netdigest` too: it can also read the finished report (nothing
//! it did not capture itself), never the night's Parquet (0600).
//!
//! Capture and mail write with `UMask=0027` (their files are the next stage's input);
//! nightly with `UMask=0077`, and it opens only `report/` to its group (and lets it
//! enter a night directory): mail reads the finished message, never the packets.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::fsutil::write_atomic;
use crate::layout::DEFAULT_STATE_DIR;

/// The user and group of the nightly service (made by `scripts/install`).
pub const USER: &str = "netdigest";
/// The user and group of the capture service.
pub const CAPTURE_USER: &str = "netdigest-capture";
/// The user and group of the mail service.
pub const MAIL_USER: &str = "netdigest-mail";
/// Environment overrides (`NETDIGEST_*` lines), optional.
pub const ENV_FILE: &str = "/etc/netdigest/netdigest.env";
/// The SMTP password file, delivered as the credential `smtp-password`.
pub const PASSWORD_FILE: &str = "/etc/netdigest/smtp-password";
/// Minutes after the window's end when the nightly job runs (the capture has flushed
/// and written its final `capture.json` by then).
pub const NIGHTLY_DELAY_MIN: u32 = 5;
/// Minutes the capture may run past its window before systemd stops it (a backstop:
/// the capture ends itself at the window's end).
pub const RUNTIME_MARGIN_MIN: u32 = 15;

/// Errors of `netdigest units`.
#[derive(Debug, thiserror::Error)]
pub enum UnitsError {
    #[error(transparent)]
    Config(ConfigError),
    #[error("{}: {reason}", path.display())]
    Path { path: PathBuf, reason: String },
}

pub type Result<T, E = UnitsError> = std::result::Result<T, E>;

/// One generated unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    /// File name, e.g. `netdigest-capture.service`.
    pub name: String,
    pub text: String,
}

/// The schedule in minutes after midnight, from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub start_min: u32,
    pub end_min: u32,
    pub send_at_min: u32,
    pub timezone: Option<String>,
}

impl Schedule {
    /// From `capture.start`, `capture.end`, `capture.timezone` and `mail.send_at` (typed
    /// and checked when the config was loaded).
    #[must_use]
    pub fn from_config(cfg: &Config) -> Schedule {
        Schedule {
            start_min: cfg.capture.start.minutes(),
            end_min: cfg.capture.end.minutes(),
            send_at_min: cfg.mail.send_at.minutes(),
            timezone: cfg.capture.timezone.map(|z| z.to_string()),
        }
    }

    /// Length of the capture window in minutes: an end at or before the start is on the
    /// next day (22:00-06:00 is 8 h; 22:00-22:00 is 24 h), as `netdigest capture` plans it.
    #[must_use]
    pub fn window_min(&self) -> u32 {
        if self.end_min <= self.start_min {
            self.end_min + 1440 - self.start_min
        } else {
            self.end_min - self.start_min
        }
    }

    /// `RuntimeMaxSec=` of the capture service: the window plus a margin.
    #[must_use]
    pub fn runtime_max_sec(&self) -> u32 {
        (self.window_min() + RUNTIME_MARGIN_MIN) * 60
    }

    /// `OnCalendar=` of the capture timer.
    #[must_use]
    pub fn capture_calendar(&self) -> String {
        on_calendar(self.start_min, self.timezone.as_deref())
    }

    /// `OnCalendar=` of the nightly timer: the window's end plus [`NIGHTLY_DELAY_MIN`],
    /// wrapping past midnight.
    #[must_use]
    pub fn nightly_calendar(&self) -> String {
        on_calendar(
            (self.end_min + NIGHTLY_DELAY_MIN) % 1440,
            self.timezone.as_deref(),
        )
    }

    /// `OnCalendar=` of the mail timer.
    #[must_use]
    pub fn mail_calendar(&self) -> String {
        on_calendar(self.send_at_min, self.timezone.as_deref())
    }
}

/// `*-*-* HH:MM:00`, with ` ZONE` appended when a time zone is given (systemd accepts a
/// trailing IANA zone name).
#[must_use]
pub fn on_calendar(minutes: u32, timezone: Option<&str>) -> String {
    let minutes = minutes % 1440;
    let mut s = format!("*-*-* {:02}:{:02}:00", minutes / 60, minutes % 60);
    if let Some(tz) = timezone {
        s.push(' ');
        s.push_str(tz);
    }
    s
}

fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", (minutes / 60) % 24, minutes % 60)
}

/// A path as one word of a unit file (systemd.syntax(7), systemd.service(5)): `%`
/// doubled (a specifier otherwise, `%h` would become a home directory); double-quoted,
/// with `\` and `"` escaped, when it holds whitespace (which would split it), a quote,
/// a backslash (a line continuation at the end) or `;` (which ends a command line).
/// Control characters (a newline would start a new directive) are refused by the
/// callers before.
fn unit_word(s: &str) -> String {
    let s = s.replace('%', "%%");
    if s.chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    } else {
        s
    }
}

/// `state.dir` as `ReadWritePaths=` takes it ([`unit_word`]).
///
/// # Errors
/// A path that is not absolute or not UTF-8, or holds a control character: each named
/// as the config key `state.dir`.
fn state_dir_word(dir: &Path) -> Result<String> {
    let bad = |reason: String| {
        UnitsError::Config(ConfigError::Invalid {
            key: "state.dir",
            reason,
        })
    };
    if !dir.is_absolute() {
        return Err(bad(format!(
            "{} is not an absolute path (a service has no working directory to resolve it)",
            dir.display()
        )));
    }
    let s = dir
        .to_str()
        .ok_or_else(|| bad(format!("{dir:?} is not UTF-8")))?;
    if s.chars().any(char::is_control) {
        return Err(bad(format!(
            "{s:?} holds a control character (a unit file cannot carry it)"
        )));
    }
    Ok(unit_word(s))
}

/// The executable as the first word of `ExecStart=` ([`unit_word`]).
///
/// # Errors
/// A path that is not absolute or not UTF-8, or holds a control character.
fn exec_path(bin: &Path) -> Result<String> {
    let bad = |reason: &str| UnitsError::Path {
        path: bin.to_path_buf(),
        reason: reason.to_string(),
    };
    if !bin.is_absolute() {
        return Err(bad("the executable must be an absolute path (--bin)"));
    }
    let s = bin
        .to_str()
        .ok_or_else(|| bad("the executable path is not UTF-8"))?;
    if s.chars().any(char::is_control) {
        return Err(bad("the executable path holds a control character"));
    }
    Ok(unit_word(s))
}

/// `MemoryMax=` of each service: a service that goes past it is stopped by the kernel
/// alone, never the whole Pi. Nightly's bound is above what a night of a million spoofed
/// sources and MACs takes since names, connections and findings are analysed too (1.0
/// to 1.09 GB peak, `tests/hostile.rs`); a normal night takes under 0.2 GB. Capture holds its ring buffer and writer queue; mail one message.
/// image/module.nix sets the same values.
pub const CAPTURE_MEMORY_MAX: &str = "256M";
pub const NIGHTLY_MEMORY_MAX: &str = "1536M";
pub const MAIL_MEMORY_MAX: &str = "256M";

/// Hardening shared by every service (the contract's list).
const HARDENING: &str = "\
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
SystemCallFilter=@system-service
SystemCallArchitectures=native
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
ProtectProc=invisible
ProcSubset=pid
";

/// Who a service runs as and which tree of the state directory it writes.
struct Identity {
    user: &'static str,
    /// Groups whose files it reads (the stages before it, see the module's table).
    groups: &'static [&'static str],
    /// Its tree under the state directory ([`crate::layout`]).
    tree: &'static str,
    umask: &'static str,
}

const CAPTURE: Identity = Identity {
    user: CAPTURE_USER,
    groups: &[USER],
    tree: crate::layout::CAPTURE_TREE,
    umask: "0027",
};
const NIGHTLY: Identity = Identity {
    user: USER,
    groups: &[CAPTURE_USER, MAIL_USER],
    tree: crate::layout::NIGHTS_DIR,
    umask: "0077",
};
const MAIL: Identity = Identity {
    user: MAIL_USER,
    groups: &[USER],
    tree: crate::layout::MAIL_TREE,
    umask: "0027",
};

/// The `[Service]` lines every service has, before its own. `state_dir` is the config's
/// `state.dir`.
fn common_service(exec: &str, args: &str, state_dir: &Path, id: &Identity) -> Result<String> {
    let user = id.user;
    let mut s = format!(
        "ExecStart={exec} {args}\n\
         User={user}\n\
         Group={user}\n"
    );
    if !id.groups.is_empty() {
        let _ = writeln!(s, "SupplementaryGroups={}", id.groups.join(" "));
    }
    let _ = write!(
        s,
        "StateDirectory=netdigest/{tree}\n\
         StateDirectoryMode=0750\n\
         UMask={umask}\n\
         EnvironmentFile=-{ENV_FILE}\n",
        tree = id.tree,
        umask = id.umask,
    );
    // A state.dir other than systemd's StateDirectory: the service's tree there must stay
    // writable under ProtectSystem=strict (it must exist and belong to the service's user).
    if state_dir != Path::new(DEFAULT_STATE_DIR) {
        let _ = writeln!(
            s,
            "ReadWritePaths={}",
            state_dir_word(&state_dir.join(id.tree))?
        );
    }
    s.push_str(HARDENING);
    Ok(s)
}

const HEADER: &str = "# Generated by `netdigest units` from the netdigest configuration:\n\
                      # change the config and run it again rather than editing this file.\n";

fn timer(what: &str, calendar: &str) -> String {
    format!(
        "{HEADER}[Unit]\n\
         Description=netdigest: {what}\n\
         \n\
         [Timer]\n\
         OnCalendar={calendar}\n\
         Persistent=true\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n"
    )
}

/// The six units (three services, three timers) for `cfg`, running `bin`.
///
/// # Errors
/// An invalid time in the config, or a `bin` that cannot be written into `ExecStart=`.
pub fn render(cfg: &Config, bin: &Path) -> Result<Vec<UnitFile>> {
    let sch = Schedule::from_config(cfg);
    state_dir_word(&cfg.state.dir)?;
    let exec = exec_path(bin)?;
    let zone = sch
        .timezone
        .as_deref()
        .map_or_else(String::new, |tz| format!(" {tz}"));
    let window = format!("{}-{}{zone}", hhmm(sch.start_min), hhmm(sch.end_min));
    let state = &cfg.state.dir;

    let capture = format!(
        "{HEADER}[Unit]\n\
         Description=netdigest: capture the night's traffic ({window})\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         {common}\
         AmbientCapabilities=CAP_NET_RAW\n\
         CapabilityBoundingSet=CAP_NET_RAW\n\
         RestrictAddressFamilies=AF_PACKET AF_NETLINK AF_UNIX AF_INET AF_INET6\n\
         RuntimeMaxSec={runtime}\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=60\n\
         MemoryMax={CAPTURE_MEMORY_MAX}\n",
        common = common_service(&exec, "capture", state, &CAPTURE)?,
        runtime = sch.runtime_max_sec(),
    );
    // Nightly: no network at all. The appliance's own addresses (left out of the pings
    // chart) come from capture.json, recorded at capture time: the analysis reads no
    // live system state.
    let nightly = format!(
        "{HEADER}[Unit]\n\
         Description=netdigest: convert, analyse and report the nights whose capture ended\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         {common}\
         CapabilityBoundingSet=\n\
         PrivateNetwork=yes\n\
         RestrictAddressFamilies=AF_UNIX\n\
         Nice=10\n\
         MemoryMax={NIGHTLY_MEMORY_MAX}\n",
        common = common_service(&exec, "nightly", state, &NIGHTLY)?,
    );
    // After= the nightly job: when both timers fire together (a Pi switched on in the
    // morning, Persistent=true), tonight's report is made before the mail goes out.
    // SetCredential= is systemd's fallback when LoadCredential= cannot read the file, so
    // the unit still starts without a password file (a relay without login). systemd 252
    // (Debian 12, Raspberry Pi OS) refuses an empty value, so the fallback is a newline:
    // the binary trims the password, and a login with an empty one is refused by name.
    let mail = format!(
        "{HEADER}[Unit]\n\
         Description=netdigest: mail every unsent night's report\n\
         Wants=network-online.target\n\
         After=network-online.target netdigest-nightly.service\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         {common}\
         CapabilityBoundingSet=\n\
         RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n\
         LoadCredential=smtp-password:{PASSWORD_FILE}\n\
         SetCredential=smtp-password:\\n\n\
         MemoryMax={MAIL_MEMORY_MAX}\n",
        common = common_service(&exec, "mail", state, &MAIL)?,
    );
    Ok(vec![
        UnitFile {
            name: "netdigest-capture.service".into(),
            text: capture,
        },
        UnitFile {
            name: "netdigest-capture.timer".into(),
            text: timer(
                &format!("start the night's capture ({window})"),
                &sch.capture_calendar(),
            ),
        },
        UnitFile {
            name: "netdigest-nightly.service".into(),
            text: nightly,
        },
        UnitFile {
            name: "netdigest-nightly.timer".into(),
            text: timer(
                "convert, analyse and report after the capture window",
                &sch.nightly_calendar(),
            ),
        },
        UnitFile {
            name: "netdigest-mail.service".into(),
            text: mail,
        },
        UnitFile {
            name: "netdigest-mail.timer".into(),
            text: timer("mail the morning report", &sch.mail_calendar()),
        },
    ])
}

/// Writes `units` into `dir` (created if missing), each file atomically, mode 0644.
/// Returns the paths written.
///
/// # Errors
/// The directory cannot be created or a file cannot be written (the path is named).
pub fn write(dir: &Path, units: &[UnitFile]) -> Result<Vec<PathBuf>> {
    let io = |path: &Path, e: std::io::Error| UnitsError::Path {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut written = Vec::with_capacity(units.len());
    for u in units {
        let path = dir.join(&u.name);
        write_atomic(&path, u.text.as_bytes()).map_err(|e| io(&path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| io(&path, e))?;
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn schedule(start: &str, end: &str, send_at: &str, tz: Option<&str>) -> Schedule {
        let mut cfg = Config::default();
        cfg.capture.start = start.parse().unwrap();
        cfg.capture.end = end.parse().unwrap();
        cfg.mail.send_at = send_at.parse().unwrap();
        cfg.capture.timezone = tz.map(|t| t.parse().unwrap());
        Schedule::from_config(&cfg)
    }

    #[test]
    fn calendar_values() {
        // (start, end, send_at, tz) -> (capture, nightly, mail, RuntimeMaxSec)
        let cases = [
            (
                ("22:00", "06:00", "06:30", None),
                (
                    "*-*-* 22:00:00",
                    "*-*-* 06:05:00",
                    "*-*-* 06:30:00",
                    (8 * 60 + 15) * 60,
                ),
            ),
            // Window crossing midnight, with a zone.
            (
                ("23:30", "05:15", "07:00", Some("Europe/Berlin")),
                (
                    "*-*-* 23:30:00 Europe/Berlin",
                    "*-*-* 05:20:00 Europe/Berlin",
                    "*-*-* 07:00:00 Europe/Berlin",
                    (5 * 60 + 45 + 15) * 60,
                ),
            ),
            // End + 5 min wraps past midnight; the window does not cross it.
            (
                ("20:00", "23:58", "00:30", Some("UTC")),
                (
                    "*-*-* 20:00:00 UTC",
                    "*-*-* 00:03:00 UTC",
                    "*-*-* 00:30:00 UTC",
                    (3 * 60 + 58 + 15) * 60,
                ),
            ),
            // The same start and end: a whole day.
            (
                ("00:00", "00:00", "09:05", None),
                (
                    "*-*-* 00:00:00",
                    "*-*-* 00:05:00",
                    "*-*-* 09:05:00",
                    (24 * 60 + 15) * 60,
                ),
            ),
        ];
        for ((start, end, send, tz), (cap, nightly, mail, runtime)) in cases {
            let s = schedule(start, end, send, tz);
            assert_eq!(s.capture_calendar(), cap, "{start}-{end}");
            assert_eq!(s.nightly_calendar(), nightly, "{start}-{end}");
            assert_eq!(s.mail_calendar(), mail, "{start}-{end}");
            assert_eq!(s.runtime_max_sec(), runtime, "{start}-{end}");
        }
    }

    #[test]
    fn units_carry_the_schedule_and_the_binary() {
        let mut cfg = Config::default();
        cfg.capture.start = "23:30".parse().unwrap();
        cfg.capture.end = "05:15".parse().unwrap();
        cfg.capture.timezone = Some("Europe/Berlin".parse().unwrap());
        let units = render(&cfg, Path::new("/opt/net digest/bin/netdigest")).unwrap();
        let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "netdigest-capture.service",
                "netdigest-capture.timer",
                "netdigest-nightly.service",
                "netdigest-nightly.timer",
                "netdigest-mail.service",
                "netdigest-mail.timer"
            ]
        );
        let text = |n: &str| &units.iter().find(|u| u.name == n).unwrap().text;
        assert!(
            text("netdigest-capture.service")
                .contains("ExecStart=\"/opt/net digest/bin/netdigest\" capture\n")
        );
        assert!(text("netdigest-capture.service").contains("RuntimeMaxSec=21600\n"));
        assert!(
            text("netdigest-nightly.timer").contains("OnCalendar=*-*-* 05:20:00 Europe/Berlin\n")
        );
        assert!(
            text("netdigest-mail.service").contains("\nSetCredential=smtp-password:\\n\n"),
            "systemd 252 needs a non-empty fallback value"
        );
        // Only the capture holds a capability.
        for u in &units {
            let ambient = u.text.contains("AmbientCapabilities=");
            assert_eq!(ambient, u.name == "netdigest-capture.service", "{}", u.name);
        }
    }

    #[test]
    fn bad_inputs_are_named() {
        let cfg = Config::default();
        let e = render(&cfg, Path::new("netdigest"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("netdigest: ") && e.contains("absolute"),
            "{e}"
        );
        assert_eq!(
            exec_path(Path::new("/a%b/netdigest")).unwrap(),
            "/a%%b/netdigest"
        );
    }
}

//! The state directory and each night's files: the one owner of every path the stages
//! hand to each other. No other module spells a file name of this layout.
//!
//! Each stage writes only under its own tree, so that each can run as its own user
//! (privilege separation: `netdigest units`, image/module.nix) and none needs write
//! access to another's files; the next stage reads them through a group:
//!
//! ```text
//! <state>/                         state.dir (default /var/lib/netdigest)
//!   capture/<YYYY-MM-DD>/          capture's: one night, named after the evening it started
//!     part-NNNN.pcap               rotated capture files, in name order
//!     capture.lock                 held by the capture of this night while it runs
//!     capture.json                 capture's account (health, windows, own addresses)
//!   nights/                        nightly's
//!     devices.parquet              every device seen, across nights (analyse)
//!     nightly.lock                 held by `netdigest nightly` while it runs
//!     <YYYY-MM-DD>/                the night directory
//!       packets.parquet            convert: one typed row per frame
//!       names.parquet              convert: the names the packets carry
//!       flows.parquet              convert: the connections (TCP, UDP)
//!       summary.json               analyse: the night's numbers (versioned)
//!       nightly.attempts           runs that started on the night and did not finish
//!       report/                    report: email.html, email.txt, index.html,
//!         charts/*.jpg               the chart images,
//!         message.json               the message's subject, Message-ID, date, parts,
//!         report.eml                 and the whole message, written last
//!   mail/<YYYY-MM-DD>/             mail's
//!     mail.json, mail.lock         the delivery record and its lock
//!   <tree>/<YYYY-MM-DD>.deleting/  a night being deleted (retention; never read)
//! ```
//!
//! Data flows one way through these files: capture parts + `capture.json` ->
//! `packets.parquet` -> `summary.json` -> `report/` -> `mail.json`.
//!
//! Nights made before the trees were split kept everything in `nights/<date>/`
//! (`capture/part-*.pcap`, `capture.json`, `capture.lock`, `mail.json`, `mail.lock`) and
//! devices.parquet in `<state>/`: such files are still read (and written) where they are.
//! A night directory that is not under a `nights/` folder (`run --out DIR`, a test's
//! directory) keeps every file in itself too.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

/// The folder of nights inside the state directory (nightly's tree).
pub const NIGHTS_DIR: &str = "nights";
/// Capture's tree inside the state directory: one folder per night.
pub const CAPTURE_TREE: &str = "capture";
/// Mail's tree inside the state directory: one folder per night.
pub const MAIL_TREE: &str = "mail";
/// Devices seen across nights, inside the state directory.
pub const DEVICES_FILE: &str = "devices.parquet";
/// Each device's habits over the last nights (hours, bytes, names, pings), in the
/// nights folder (see [`crate::baseline`]).
pub const BASELINE_FILE: &str = "baseline.json";
/// `state.dir` when it is not set: the directory under which systemd creates each
/// service's tree (`StateDirectory=netdigest/<tree>`; the directory itself stays root's,
/// 0755).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/netdigest";
/// A night directory's name: the date the window started.
pub const NIGHT_FORMAT: &str = "%Y-%m-%d";

/// The capture's files, inside a night directory of the old layout.
pub const CAPTURE_DIR: &str = "capture";
/// Capture's account of the night.
pub const CAPTURE_JSON: &str = "capture.json";
/// The converted night.
pub const PACKETS_PARQUET: &str = "packets.parquet";
/// The night's names (DHCP, mDNS, DNS answers, SNI, ...), written by convert.
pub const NAMES_PARQUET: &str = "names.parquet";
/// The night's connections, written by convert.
pub const FLOWS_PARQUET: &str = "flows.parquet";
/// What analysis sums from every packet, summed by convert as the packets stream
/// (see [`crate::parquet_schema::rollup`]).
pub const ROLLUP_PARQUET: &str = "rollup.parquet";
/// The analysed night.
pub const SUMMARY_JSON: &str = "summary.json";
/// The report's folder, inside a night.
pub const REPORT_DIR: &str = "report";
/// The report's chart images, inside the report folder.
pub const CHARTS_DIR: &str = "charts";
/// The HTML body of the email, inside the report folder.
pub const EMAIL_HTML: &str = "email.html";
/// The plain-text body of the email, inside the report folder.
pub const EMAIL_TXT: &str = "email.txt";
/// The interactive page, inside the report folder (also the message's attachment).
pub const INDEX_HTML: &str = "index.html";
/// The message's heading (subject, Message-ID, date, chart list), inside the report
/// folder: what mail reads, with the parts, to build the message it sends.
pub const MESSAGE_JSON: &str = "message.json";
/// The whole message, inside the report folder; written last, so its presence means the
/// report is complete.
pub const REPORT_EML: &str = "report.eml";
/// The delivery record of a night.
pub const MAIL_JSON: &str = "mail.json";
/// The lock held while a night is being mailed.
pub const MAIL_LOCK: &str = "mail.lock";
/// The lock held while a night is being captured.
pub const CAPTURE_LOCK: &str = "capture.lock";
/// How many `nightly` runs started work on the night and did not finish it (killed: the
/// OOM killer at `MemoryMax=`, a crash); removed when a run finishes the night.
pub const NIGHTLY_ATTEMPTS: &str = "nightly.attempts";
/// The lock held by `netdigest nightly`, inside the state directory.
pub const NIGHTLY_LOCK: &str = "nightly.lock";

/// Suffix of a night directory being deleted: `nights/<YYYY-MM-DD>.deleting` is renamed
/// there first, so an interrupted deletion never leaves a half-deleted night under its
/// name.
pub const DELETING_SUFFIX: &str = ".deleting";

const PART_PREFIX: &str = "part-";
const PART_SUFFIX: &str = ".pcap";

/// `<state>/nights`.
#[must_use]
pub fn nights_dir(state: &Path) -> PathBuf {
    state.join(NIGHTS_DIR)
}

/// `<state>/capture`: capture's tree.
#[must_use]
pub fn capture_tree(state: &Path) -> PathBuf {
    state.join(CAPTURE_TREE)
}

/// `<state>/mail`: mail's tree.
#[must_use]
pub fn mail_tree(state: &Path) -> PathBuf {
    state.join(MAIL_TREE)
}

/// `<state>/nights/devices.parquet`.
#[must_use]
pub fn devices_file(state: &Path) -> PathBuf {
    nights_dir(state).join(DEVICES_FILE)
}

/// `<state>/devices.parquet`: where devices were kept before the trees were split.
#[must_use]
pub fn legacy_devices_file(state: &Path) -> PathBuf {
    state.join(DEVICES_FILE)
}

/// `<state>/nights/baseline.json` (nightly's tree, beside devices.parquet).
#[must_use]
pub fn baseline_file(state: &Path) -> PathBuf {
    nights_dir(state).join(BASELINE_FILE)
}

/// `<state>/nights/nightly.lock`.
#[must_use]
pub fn nightly_lock(state: &Path) -> PathBuf {
    nights_dir(state).join(NIGHTLY_LOCK)
}

/// The directory name of a night (`YYYY-MM-DD`).
#[must_use]
pub fn night_name(night: NaiveDate) -> String {
    night.format(NIGHT_FORMAT).to_string()
}

/// Parses a night directory's name; `None` for anything else.
#[must_use]
pub fn parse_night_name(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name, NIGHT_FORMAT).ok()
}

/// The name a night directory is renamed to while it is deleted (`YYYY-MM-DD.deleting`).
#[must_use]
pub fn deleting_name(night: NaiveDate) -> String {
    format!("{}{DELETING_SUFFIX}", night_name(night))
}

/// The night of a directory being deleted (`YYYY-MM-DD.deleting`); `None` for any other
/// name.
#[must_use]
pub fn parse_deleting_name(name: &str) -> Option<NaiveDate> {
    parse_night_name(name.strip_suffix(DELETING_SUFFIX)?)
}

/// One night's directory and every file in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NightDir(PathBuf);

impl NightDir {
    /// The night directory at `path` (whatever its name).
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        NightDir(path.into())
    }

    /// `<state>/nights/<YYYY-MM-DD>`.
    #[must_use]
    pub fn of(state: &Path, night: NaiveDate) -> Self {
        NightDir(nights_dir(state).join(night_name(night)))
    }

    /// `<state>/nights/<name>` for a night given by its directory name.
    #[must_use]
    pub fn named(state: &Path, name: &str) -> Self {
        NightDir(nights_dir(state).join(name))
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The night's folder in another stage's tree (`<state>/<tree>/<date>`); `None`
    /// for a night directory that is not `<state>/nights/<date>`.
    fn in_tree(&self, tree: &str) -> Option<PathBuf> {
        let name = self.0.file_name()?;
        let nights = self.0.parent()?;
        if nights.file_name()? != NIGHTS_DIR {
            return None;
        }
        Some(nights.parent()?.join(tree).join(name))
    }
    /// True when capture's files are in the night directory itself: a night of the old
    /// layout, or a night directory outside a state directory.
    fn capture_inside(&self) -> bool {
        self.0.join(CAPTURE_JSON).exists()
            || self.0.join(CAPTURE_DIR).is_dir()
            || self.in_tree(CAPTURE_TREE).is_none()
    }
    /// Capture's folder of this night: `<state>/capture/<date>`, holding the parts,
    /// `capture.json` and `capture.lock` (the night directory itself for the old layout).
    #[must_use]
    pub fn capture_root(&self) -> PathBuf {
        match self.in_tree(CAPTURE_TREE) {
            Some(dir) if !self.capture_inside() => dir,
            _ => self.0.clone(),
        }
    }
    /// The folder of the capture files (`<state>/capture/<date>`; the night's
    /// `capture/` for the old layout).
    #[must_use]
    pub fn capture_dir(&self) -> PathBuf {
        if self.capture_inside() {
            self.0.join(CAPTURE_DIR)
        } else {
            self.capture_root()
        }
    }
    /// The `index`th capture file (`part-0001.pcap`, ...).
    #[must_use]
    pub fn part(&self, index: u32) -> PathBuf {
        self.capture_dir().join(part_name(index))
    }
    #[must_use]
    pub fn capture_lock(&self) -> PathBuf {
        self.capture_root().join(CAPTURE_LOCK)
    }
    /// Mail's folder of this night: `<state>/mail/<date>`, holding `mail.json` and
    /// `mail.lock` (the night directory itself when it has a `mail.json` of the old
    /// layout, or is not under a state directory).
    #[must_use]
    pub fn mail_dir(&self) -> PathBuf {
        match self.in_tree(MAIL_TREE) {
            Some(dir) if !self.0.join(MAIL_JSON).exists() => dir,
            _ => self.0.clone(),
        }
    }
    #[must_use]
    pub fn nightly_attempts(&self) -> PathBuf {
        self.0.join(NIGHTLY_ATTEMPTS)
    }
    #[must_use]
    pub fn capture_json(&self) -> PathBuf {
        self.capture_root().join(CAPTURE_JSON)
    }
    #[must_use]
    pub fn packets_parquet(&self) -> PathBuf {
        self.0.join(PACKETS_PARQUET)
    }
    #[must_use]
    pub fn names_parquet(&self) -> PathBuf {
        self.0.join(NAMES_PARQUET)
    }

    pub fn flows_parquet(&self) -> PathBuf {
        self.0.join(FLOWS_PARQUET)
    }
    #[must_use]
    pub fn rollup_parquet(&self) -> PathBuf {
        self.0.join(ROLLUP_PARQUET)
    }

    pub fn summary_json(&self) -> PathBuf {
        self.0.join(SUMMARY_JSON)
    }
    #[must_use]
    pub fn report_dir(&self) -> PathBuf {
        self.0.join(REPORT_DIR)
    }
    #[must_use]
    pub fn report_eml(&self) -> PathBuf {
        self.report_dir().join(REPORT_EML)
    }
    #[must_use]
    pub fn mail_json(&self) -> PathBuf {
        self.mail_dir().join(MAIL_JSON)
    }
    #[must_use]
    pub fn mail_lock(&self) -> PathBuf {
        self.mail_dir().join(MAIL_LOCK)
    }
}

/// A report folder and the files in it (a night's `report/`, or `run --out DIR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportDir(PathBuf);

impl ReportDir {
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ReportDir(path.into())
    }
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }
    #[must_use]
    pub fn charts_dir(&self) -> PathBuf {
        self.0.join(CHARTS_DIR)
    }
    #[must_use]
    pub fn email_html(&self) -> PathBuf {
        self.0.join(EMAIL_HTML)
    }
    #[must_use]
    pub fn email_txt(&self) -> PathBuf {
        self.0.join(EMAIL_TXT)
    }
    #[must_use]
    pub fn index_html(&self) -> PathBuf {
        self.0.join(INDEX_HTML)
    }
    #[must_use]
    pub fn message_json(&self) -> PathBuf {
        self.0.join(MESSAGE_JSON)
    }
    #[must_use]
    pub fn report_eml(&self) -> PathBuf {
        self.0.join(REPORT_EML)
    }
}

/// A capture file's name: `part-0001.pcap` (four digits at least; name order is capture
/// order up to 9999 parts, and the index is parsed back beyond that).
#[must_use]
pub fn part_name(index: u32) -> String {
    format!("{PART_PREFIX}{index:04}{PART_SUFFIX}")
}

/// The index of a capture file from its name; `None` for any other file.
#[must_use]
pub fn part_index(name: &str) -> Option<u32> {
    name.strip_prefix(PART_PREFIX)?
        .strip_suffix(PART_SUFFIX)?
        .parse()
        .ok()
}

/// True for a capture file's name (`part-*.pcap`).
#[must_use]
pub fn is_part_name(name: &str) -> bool {
    name.starts_with(PART_PREFIX) && name.ends_with(PART_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn night_paths() {
        let night = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
        let n = NightDir::of(Path::new("/s"), night);
        assert_eq!(n.path(), Path::new("/s/nights/2026-03-01"));
        assert_eq!(n.part(1), Path::new("/s/capture/2026-03-01/part-0001.pcap"));
        assert_eq!(
            n.capture_json(),
            Path::new("/s/capture/2026-03-01/capture.json")
        );
        assert_eq!(n.mail_json(), Path::new("/s/mail/2026-03-01/mail.json"));
        assert_eq!(n.mail_lock(), Path::new("/s/mail/2026-03-01/mail.lock"));
        assert_eq!(
            devices_file(Path::new("/s")),
            Path::new("/s/nights/devices.parquet")
        );
        // A night directory outside a state directory keeps everything in itself.
        let alone = NightDir::new("/tmp/out");
        assert_eq!(alone.part(1), Path::new("/tmp/out/capture/part-0001.pcap"));
        assert_eq!(alone.capture_json(), Path::new("/tmp/out/capture.json"));
        assert_eq!(alone.mail_json(), Path::new("/tmp/out/mail.json"));
        assert_eq!(
            n.report_eml(),
            Path::new("/s/nights/2026-03-01/report/report.eml")
        );
        assert_eq!(parse_night_name("2026-03-01"), Some(night));
        assert_eq!(parse_night_name("notes"), None);
        assert_eq!(deleting_name(night), "2026-03-01.deleting");
        assert_eq!(parse_deleting_name("2026-03-01.deleting"), Some(night));
        assert_eq!(parse_night_name("2026-03-01.deleting"), None);
        assert_eq!(parse_deleting_name("notes.deleting"), None);
        assert_eq!(parse_deleting_name("2026-03-01"), None);
    }

    /// A night made before the trees were split is read where it is.
    #[test]
    fn old_layout_is_read_in_place() {
        let tmp = std::env::temp_dir().join(format!("nd-layout-{}", std::process::id()));
        let night = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
        let n = NightDir::of(&tmp, night);
        std::fs::create_dir_all(n.path().join(CAPTURE_DIR)).expect("mkdir");
        std::fs::write(n.path().join(MAIL_JSON), b"{}").expect("write");
        assert_eq!(n.part(2), n.path().join("capture/part-0002.pcap"));
        assert_eq!(n.capture_json(), n.path().join(CAPTURE_JSON));
        assert_eq!(n.capture_lock(), n.path().join(CAPTURE_LOCK));
        assert_eq!(n.mail_json(), n.path().join(MAIL_JSON));
        assert_eq!(n.mail_lock(), n.path().join(MAIL_LOCK));
        std::fs::remove_dir_all(&tmp).expect("rm");
    }

    #[test]
    fn part_names_round_trip() {
        assert_eq!(part_name(7), "part-0007.pcap");
        assert_eq!(part_index("part-0007.pcap"), Some(7));
        assert_eq!(part_index(&part_name(12_345)), Some(12_345));
        assert_eq!(part_index("part-x.pcap"), None);
        assert!(is_part_name("part-0001.pcap"));
        assert!(!is_part_name("capture.json"));
    }
}

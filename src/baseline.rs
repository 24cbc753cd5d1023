//! The baseline: what each device usually does, kept across nights in
//! `<state>/nights/baseline.json` so that tonight can be compared with it (the findings
//! `new-device`, `awake`, `new-destination`, `volume-spike`, `gone-quiet`, and the
//! lowering of findings that come back every night; see `analyse::findings`).
//!
//! One [`NightEntry`] per night analysed: the local hours the capture covered, the ids of
//! the night's own findings, and per device ([`DeviceNight`], known by the identity keys
//! of [`crate::devices::Device::keys`]) its bytes per local hour, the remote names it
//! talked to (the busiest [`Limits::names`]), and the echo requests it got and answered.
//!
//! Invariants: analysing a night again replaces its entry (the file does not depend on
//! how often a night ran); at most [`Limits::nights`] nights are kept (the newest),
//! [`Limits::devices`] devices per night (the busiest; the rest are counted) and
//! [`Limits::names`] names per device, each name at most 253 bytes, 1,000 finding ids: the file's size is
//! bounded by configuration, not by the traffic. The file is written atomically; one
//! that does not read as a baseline is moved aside with a warning and the baseline
//! starts again (the night goes on).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fsutil::{set_aside_warn, write_atomic};

/// Version of `baseline.json`; a file of another version is set aside and relearnt.
pub const BASELINE_VERSION: u32 = 1;

/// Longest name kept (as DNS allows).
const MAX_NAME: usize = 253;
/// Finding ids kept per night.
const MAX_FINDINGS: usize = 1000;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Baseline {
    pub version: u32,
    /// Oldest night first.
    pub nights: Vec<NightEntry>,
}

/// One night of the baseline.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NightEntry {
    /// `YYYY-MM-DD`, as summary.json's `night`.
    pub night: String,
    /// Local hours (0..=23) the capture covered, from first to last packet.
    pub hours: Vec<u8>,
    /// Devices, busiest first.
    pub devices: Vec<DeviceNight>,
    /// Devices left out by [`Limits::devices`].
    pub more_devices: u64,
    /// Ids of the night's own findings above the lowest rank (beacons, long
    /// connections, DNS bursts, ...), before any baseline lowered them.
    pub findings: Vec<String>,
}

/// One device in one night.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeviceNight {
    /// Identity keys (`mac:..`, and for a private MAC `cid:..`, `host:..`).
    pub keys: Vec<String>,
    /// What the report called it (for reading the file; never compared).
    pub name: String,
    /// Bytes of its TCP and UDP connections, both ways, and those it sent.
    pub bytes: u64,
    pub sent: u64,
    /// Bytes per local hour (index 0 = 00:00..01:00).
    pub hour_bytes: [u64; 24],
    /// Remote names (or unnamed addresses) it talked to, most bytes first.
    pub names: Vec<String>,
    /// Echo requests to its addresses, and the replies it sent.
    pub ping_requests: u64,
    pub ping_replies: u64,
}

/// Bounds of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub nights: usize,
    pub devices: usize,
    pub names: usize,
}

impl Baseline {
    /// The nights before `night`, oldest first.
    #[must_use]
    pub fn before(&self, night: &str) -> Vec<&NightEntry> {
        self.nights
            .iter()
            .filter(|n| n.night.as_str() < night)
            .collect()
    }

    /// Puts `entry` in (replacing an entry of the same night), keeps the newest
    /// `limits.nights`, and cuts every entry to the limits.
    pub fn insert(&mut self, mut entry: NightEntry, limits: Limits) {
        bound(&mut entry, limits);
        self.nights.retain(|n| n.night != entry.night);
        self.nights.push(entry);
        self.nights.sort_by(|a, b| a.night.cmp(&b.night));
        let extra = self.nights.len().saturating_sub(limits.nights.max(1));
        self.nights.drain(..extra);
        for n in &mut self.nights {
            bound(n, limits);
        }
        self.version = BASELINE_VERSION;
    }
}

/// Cuts one night to the limits (devices busiest first).
fn bound(n: &mut NightEntry, limits: Limits) {
    n.devices
        .sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.keys.cmp(&b.keys)));
    if n.devices.len() > limits.devices {
        n.more_devices += (n.devices.len() - limits.devices) as u64;
        n.devices.truncate(limits.devices);
    }
    n.findings.truncate(MAX_FINDINGS);
    for d in &mut n.devices {
        d.names.truncate(limits.names);
        for name in &mut d.names {
            if name.len() > MAX_NAME {
                let mut cut = MAX_NAME;
                while !name.is_char_boundary(cut) {
                    cut -= 1;
                }
                name.truncate(cut);
            }
        }
        d.keys.truncate(8);
    }
}

/// Reads `path`; a missing file is an empty baseline. A file that does not read as a
/// baseline of this version is moved aside with a warning (the baseline starts again).
#[must_use]
pub fn read(path: &Path) -> Baseline {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Baseline::default(),
        Err(e) => {
            tracing::warn!(
                "{}: cannot read ({e}); baseline starts again",
                path.display()
            );
            return Baseline::default();
        }
    };
    let why = match serde_json::from_slice::<Baseline>(&bytes) {
        Ok(b) if b.version == BASELINE_VERSION => return b,
        Ok(b) => format!("version {} is not {BASELINE_VERSION}", b.version),
        Err(e) => format!("not a baseline ({e})"),
    };
    set_aside_warn(path, &why, "baseline starts again from tonight");
    Baseline::default()
}

/// Writes the baseline atomically.
///
/// # Errors
/// The file cannot be written.
pub fn write(path: &Path, b: &Baseline) -> std::io::Result<()> {
    let json = serde_json::to_vec(b).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic(path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(key: &str, bytes: u64, names: usize) -> DeviceNight {
        DeviceNight {
            keys: vec![format!("mac:{key}")],
            bytes,
            names: (0..names).map(|i| format!("n{i}.example.com")).collect(),
            ..DeviceNight::default()
        }
    }

    fn night(n: &str, devices: Vec<DeviceNight>) -> NightEntry {
        NightEntry {
            night: n.into(),
            devices,
            ..NightEntry::default()
        }
    }

    const LIMITS: Limits = Limits {
        nights: 3,
        devices: 2,
        names: 4,
    };

    #[test]
    fn a_night_again_replaces_its_entry_and_old_nights_go() {
        let mut b = Baseline::default();
        for d in ["2026-11-01", "2026-11-02", "2026-11-03"] {
            b.insert(night(d, vec![dev("aa", 10, 1)]), LIMITS);
        }
        b.insert(night("2026-11-02", vec![dev("bb", 20, 1)]), LIMITS);
        assert_eq!(b.nights.len(), 3);
        assert_eq!(b.nights[1].devices[0].keys, vec!["mac:bb"]);
        b.insert(night("2026-11-04", vec![]), LIMITS);
        let names: Vec<&str> = b.nights.iter().map(|n| n.night.as_str()).collect();
        assert_eq!(names, ["2026-11-02", "2026-11-03", "2026-11-04"]);
        assert_eq!(b.before("2026-11-04").len(), 2);
    }

    #[test]
    fn the_size_is_bounded_whatever_the_night() {
        let mut b = Baseline::default();
        let mut devices: Vec<DeviceNight> = (0..50).map(|i| dev(&format!("{i}"), i, 100)).collect();
        devices[7].names[0] = "é".repeat(300);
        b.insert(night("2026-11-01", devices), LIMITS);
        let n = &b.nights[0];
        assert_eq!(n.devices.len(), 2);
        assert_eq!(n.more_devices, 48);
        assert_eq!(n.devices[0].bytes, 49, "the busiest are kept");
        assert!(n.devices.iter().all(|d| d.names.len() == 4));
        let mut long = night("2026-11-02", vec![dev("x", 1, 1)]);
        long.devices[0].names[0] = "é".repeat(300);
        b.insert(long, LIMITS);
        assert!(b.nights[1].devices[0].names[0].len() <= MAX_NAME);
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_the_baseline_starts_again() {
        let dir = std::env::temp_dir().join(format!("nd-baseline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("baseline.json");
        assert_eq!(read(&path), Baseline::default(), "no file yet");
        let mut b = Baseline::default();
        b.insert(night("2026-11-01", vec![dev("aa", 10, 2)]), LIMITS);
        write(&path, &b).expect("written");
        assert_eq!(read(&path), b);
        std::fs::write(&path, b"{\"version\": 1, \"nights\": [{\"night\": 3").expect("write");
        assert_eq!(read(&path), Baseline::default());
        assert!(!path.exists(), "moved aside");
        let aside: Vec<_> = std::fs::read_dir(&dir)
            .expect("ls")
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("baseline.json.corrupt-")
            })
            .collect();
        assert_eq!(aside.len(), 1);
        std::fs::write(&path, b"{\"version\": 99, \"nights\": []}").expect("write");
        assert_eq!(read(&path), Baseline::default(), "another version");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}

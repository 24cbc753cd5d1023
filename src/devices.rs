//! Devices: every MAC+IP pair seen on the LAN, kept across nights in
//! `<state>/devices.parquet` (one row per device per night), so a report can list
//! new devices and devices that went silent. Re-running a night replaces its rows:
//! the answer for a night does not depend on how often it was analysed. The file stays
//! bounded: `analyse` hands over at most `report.max_rows` devices per night (the
//! busiest; the rest are only counted, in the summary's `omitted.devices`), and nights
//! beyond `state.keep_nights` are dropped.
//!
//! Depends on no analysis code: `analyse` lists a night's devices with the types here,
//! and both read DataFrames through [`crate::dataframe`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::fsutil::AtomicFile;

/// Why the devices file could not be read or written.
pub use crate::dataframe::FrameError as DevicesError;

pub type Result<T, E = DevicesError> = std::result::Result<T, E>;

/// One device in one night.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Device {
    pub mac: String,
    pub ip: String,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    /// Packets and bytes this device sent.
    pub packets: u64,
    pub bytes: u64,
}

/// Tonight's devices and how they compare with earlier nights.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceReport {
    pub devices: Vec<Device>,
    /// MACs seen tonight and in no earlier night on record (empty when there is no history).
    pub new: Vec<Device>,
    /// Devices seen in the `history_nights` before tonight but not tonight (their last sighting).
    pub silent: Vec<Device>,
    /// Earlier nights on record that the comparison used.
    pub nights_compared: usize,
}

/// True for addresses that belong to the local network: private, link-local, ULA.
/// A router forwards Internet traffic with its own MAC; those remote addresses are
/// not devices.
#[must_use]
pub fn is_local(ip: &str) -> bool {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_private() || v4.is_link_local(),
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments()[0];
            (s & 0xffc0) == 0xfe80 || (s & 0xfe00) == 0xfc00
        }
        Err(_) => false,
    }
}

fn pe(path: &Path) -> impl Fn(PolarsError) -> DevicesError + '_ {
    move |source| DevicesError::Polars {
        path: path.display().to_string(),
        source,
    }
}

fn rows(df: &DataFrame) -> PolarsResult<Vec<Device>> {
    use crate::dataframe::{i64s as i, strs as s, u64s as u};
    let (mac, ip, first, last, packets, bytes) = (
        s(df, "mac")?,
        s(df, "ip")?,
        i(df, "first")?,
        i(df, "last")?,
        u(df, "packets")?,
        u(df, "bytes")?,
    );
    Ok((0..mac.len())
        .map(|k| Device {
            mac: mac[k].clone(),
            ip: ip[k].clone(),
            first_seen_ns: first[k],
            last_seen_ns: last[k],
            packets: packets[k],
            bytes: bytes[k],
        })
        .collect())
}

/// The state file: rows of (night, mac, ip, first, last, packets, bytes).
fn read_state(path: &Path) -> Result<Vec<(String, Device)>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let f = std::fs::File::open(path).map_err(|source| DevicesError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let df = ParquetReader::new(f).finish().map_err(pe(path))?;
    let nights: Vec<String> = df
        .column("night")
        .and_then(|c| {
            c.str()
                .map(|s| s.iter().map(|v| v.unwrap_or("").to_string()).collect())
        })
        .map_err(pe(path))?;
    let devices = rows(&df).map_err(pe(path))?;
    Ok(nights.into_iter().zip(devices).collect())
}

/// [`read_state`], with a file that opens but does not read as the devices table (a
/// torn or damaged Parquet file) moved aside (`devices.parquet.corrupt-<time>`) with a
/// warning: the history starts again from tonight instead of failing every later night.
fn read_state_or_set_aside(path: &Path) -> Result<Vec<(String, Device)>> {
    match read_state(path) {
        Err(DevicesError::Polars { source, .. }) => {
            let aside = crate::fsutil::move_aside(path).map_err(|e| DevicesError::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(format!(
                    "unreadable ({source}) and cannot be moved aside: {e}"
                )),
            })?;
            tracing::warn!(
                "{}: unreadable ({source}); moved aside to {}, device history starts again from tonight",
                path.display(),
                aside.display()
            );
            Ok(Vec::new())
        }
        other => other,
    }
}

fn write_state(path: &Path, rows_in: &[(String, Device)]) -> Result<()> {
    let col_s = |name: &str, f: &dyn Fn(&(String, Device)) -> String| -> Column {
        Series::new(name.into(), rows_in.iter().map(f).collect::<Vec<_>>()).into()
    };
    let mut df = DataFrame::new(
        rows_in.len(),
        vec![
            col_s("night", &|r| r.0.clone()),
            col_s("mac", &|r| r.1.mac.clone()),
            col_s("ip", &|r| r.1.ip.clone()),
            Series::new(
                "first".into(),
                rows_in
                    .iter()
                    .map(|r| r.1.first_seen_ns)
                    .collect::<Vec<_>>(),
            )
            .into(),
            Series::new(
                "last".into(),
                rows_in.iter().map(|r| r.1.last_seen_ns).collect::<Vec<_>>(),
            )
            .into(),
            Series::new(
                "packets".into(),
                rows_in.iter().map(|r| r.1.packets).collect::<Vec<_>>(),
            )
            .into(),
            Series::new(
                "bytes".into(),
                rows_in.iter().map(|r| r.1.bytes).collect::<Vec<_>>(),
            )
            .into(),
        ],
    )
    .map_err(pe(path))?;
    let io = |source| DevicesError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = AtomicFile::create(path).map_err(io)?;
    let handle = file.writer().try_clone().map_err(io)?;
    ParquetWriter::new(handle)
        .finish(&mut df)
        .map_err(pe(path))?;
    file.commit().map_err(io)
}

/// Records tonight's devices in `<state>/devices.parquet` and compares them with the
/// `history_nights` nights before `night` (nights are `YYYY-MM-DD`, compared as text).
/// Nights older than `keep_nights` before tonight are dropped from the file. A state
/// file that does not read as one is moved aside with a warning (no history tonight).
///
/// # Errors
/// The state file cannot be opened or written.
pub fn update(
    state_file: &Path,
    night: &str,
    tonight: &[Device],
    history_nights: usize,
    keep_nights: usize,
) -> Result<DeviceReport> {
    let mut state = read_state_or_set_aside(state_file)?;
    state.retain(|(n, _)| n != night);
    let mut earlier: Vec<&str> = state
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n < night)
        .collect();
    earlier.sort_unstable();
    earlier.dedup();
    let recent: BTreeSet<&str> = earlier.iter().rev().take(history_nights).copied().collect();
    let known: BTreeSet<&str> = state
        .iter()
        .filter(|(n, _)| n.as_str() < night)
        .map(|(_, d)| d.mac.as_str())
        .collect();
    let tonight_macs: BTreeSet<&str> = tonight.iter().map(|d| d.mac.as_str()).collect();
    let new = if earlier.is_empty() {
        Vec::new()
    } else {
        tonight
            .iter()
            .filter(|d| !known.contains(d.mac.as_str()))
            .cloned()
            .collect()
    };
    let mut last_sighting: BTreeMap<(&str, &str), &Device> = BTreeMap::new();
    for (n, d) in &state {
        if recent.contains(n.as_str()) && !tonight_macs.contains(d.mac.as_str()) {
            let e = last_sighting
                .entry((d.mac.as_str(), d.ip.as_str()))
                .or_insert(d);
            if d.last_seen_ns > e.last_seen_ns {
                *e = d;
            }
        }
    }
    let silent: Vec<Device> = last_sighting.into_values().cloned().collect();
    let nights_compared = recent.len();

    let mut all_nights: Vec<String> = state.iter().map(|(n, _)| n.clone()).collect();
    all_nights.push(night.to_string());
    all_nights.sort_unstable();
    all_nights.dedup();
    let cutoff = all_nights.len().saturating_sub(keep_nights.max(1));
    let kept: BTreeSet<String> = all_nights.into_iter().skip(cutoff).collect();
    state.retain(|(n, _)| kept.contains(n));
    state.extend(tonight.iter().map(|d| (night.to_string(), d.clone())));
    state.sort();
    write_state(state_file, &state)?;
    Ok(DeviceReport {
        devices: tonight.to_vec(),
        new,
        silent,
        nights_compared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(mac: &str, ip: &str) -> Device {
        Device {
            mac: mac.into(),
            ip: ip.into(),
            first_seen_ns: 1,
            last_seen_ns: 2,
            packets: 3,
            bytes: 4,
        }
    }

    #[test]
    fn three_nights_new_and_silent() {
        let dir = std::env::temp_dir().join(format!("nd-devices-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = dir.join("devices.parquet");
        let (a, b, c) = (
            dev("aa", "192.168.1.2"),
            dev("bb", "192.168.1.3"),
            dev("cc", "192.168.1.4"),
        );
        let r1 = update(&state, "2026-11-25", &[a.clone(), b.clone()], 7, 30).expect("night 1");
        assert!(r1.new.is_empty(), "no history: nothing is called new");
        let r2 = update(&state, "2026-11-26", &[a.clone(), c.clone()], 7, 30).expect("night 2");
        assert_eq!(r2.new, vec![c.clone()]);
        assert_eq!(r2.silent, vec![b.clone()]);
        let r3 = update(
            &state,
            "2026-11-27",
            &[a.clone(), b.clone(), c.clone()],
            7,
            30,
        )
        .expect("night 3");
        assert!(r3.new.is_empty(), "b and c were seen before: {:?}", r3.new);
        assert!(r3.silent.is_empty());
        // Re-running night 2 gives the same answer.
        let r2b = update(&state, "2026-11-26", &[a, c.clone()], 7, 30).expect("night 2 again");
        assert_eq!(r2b.new, vec![c]);
        assert_eq!(r2b.silent, vec![b]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn local_addresses() {
        assert!(is_local("192.168.1.20"));
        assert!(is_local("fe80::1"));
        assert!(is_local("fd00::5"));
        assert!(!is_local("203.0.113.5"));
        assert!(!is_local("2001:db8::1"));
    }
}

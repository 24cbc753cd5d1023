//! Devices: every device seen on the LAN (a MAC, with the IPs it used and its name),
//! kept across nights in `<state>/devices.parquet` (one row per device per night), so a
//! report can list new devices and devices that went silent. A device is known by its
//! identity keys ([`Device::keys`]): each of its MACs, and for a device behind a
//! randomised MAC its DHCP client identifier and host name; a device whose IP changes,
//! or whose private MAC is linked to one seen before, is not new. Re-running a night
//! replaces its rows: the answer for a night does not depend on how often it was
//! analysed. The file stays bounded: `analyse` hands over at most `report.max_rows`
//! devices per night (the busiest; the rest are only counted, in the summary's
//! `omitted.devices`), each with at most [`MAX_IPS`] addresses, and nights beyond
//! `state.keep_nights` are dropped. A file written before names (columns night, mac,
//! ip, first, last, packets, bytes: one row per MAC and IP) still reads: its MACs are
//! the keys.
//!
//! Depends on no analysis code: `analyse` lists a night's devices with the types here,
//! and both read DataFrames through [`crate::dataframe`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Deserializer, Serialize};

use crate::fsutil::AtomicFile;

/// Why the devices file could not be read or written.
pub use crate::dataframe::FrameError as DevicesError;

pub type Result<T, E = DevicesError> = std::result::Result<T, E>;

/// Addresses kept per device (those it sent the most packets from); the rest are
/// counted in [`Device::more_ips`]. A spoofing device can use any number.
pub const MAX_IPS: usize = 16;

/// One device in one night.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(default)]
pub struct Device {
    /// Its MAC: a universally administered one when linked records have one, else the
    /// busiest.
    pub mac: String,
    /// Every MAC of the device, `mac` first: a randomised MAC linked to it by DHCP
    /// client identifier or host name adds its own.
    pub macs: Vec<String>,
    /// Local IPv4 and IPv6 addresses it sent from, the busiest first, at most
    /// [`MAX_IPS`]. (`ip`, one address, in summaries before schema version 2.)
    #[serde(alias = "ip", deserialize_with = "one_or_many")]
    pub ips: Vec<String>,
    /// Addresses beyond [`MAX_IPS`], not listed.
    pub more_ips: u64,
    /// What the report calls it (see `analyse` for the precedence); never empty.
    pub name: String,
    /// Where the name came from: `label` (the config's `[names]`), a names.parquet kind
    /// (`dhcp-hostname`, `mdns-friendly`, ...), or `vendor` (vendor and MAC).
    pub name_source: String,
    /// From the MAC's OUI; `private address` for a locally administered MAC.
    pub vendor: Option<String>,
    /// A model or product name the device announced (mDNS `md=`, DHCP vendor class).
    pub model: Option<String>,
    /// DHCP client identifier and host name, when it sent them (they link randomised MACs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp_name: Option<String>,
    /// First packet, RFC 3339 in the report's time zone.
    pub first_seen: String,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    /// Packets and bytes this device sent.
    pub packets: u64,
    pub bytes: u64,
}

impl Device {
    /// What identifies the device across nights: `mac:<mac>` for each MAC, and when one
    /// of them is randomised, `cid:<DHCP client id>` and `host:<DHCP host name>`.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.all_macs().map(|m| format!("mac:{m}")).collect();
        let private = self
            .all_macs()
            .any(|m| crate::vendor::parse_mac(m).is_some_and(crate::vendor::is_private));
        if private {
            if let Some(c) = &self.client_id {
                k.push(format!("cid:{c}"));
            }
            if let Some(h) = &self.dhcp_name {
                k.push(format!("host:{}", h.to_lowercase()));
            }
        }
        k.sort();
        k.dedup();
        k
    }

    /// Its MACs, `mac` first: `macs`, or `mac` alone for a device recorded before
    /// `macs` existed.
    pub fn all_macs(&self) -> impl Iterator<Item = &str> {
        let only = self.macs.is_empty().then_some(self.mac.as_str());
        only.into_iter()
            .chain(self.macs.iter().map(String::as_str))
            .filter(|m| !m.is_empty())
    }
}

/// Accepts `"ips": ["a", "b"]` and, from summaries before schema version 2, `"ip": "a"`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    use crate::config::OneOrMany;
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) if s.is_empty() => Vec::new(),
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
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

/// One row of the state file: a device in a night, and its identity keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct StateRow {
    night: String,
    device: Device,
    keys: Vec<String>,
}

/// Lists are stored as text, one item a line (names and addresses hold no line breaks:
/// names are sanitized, and [`write_state`] removes control characters anyway).
const SEP: char = '\n';

fn split(s: &str) -> Vec<String> {
    s.split(SEP)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

fn join<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(|x| x.replace(char::is_control, ""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn opt_text(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    if df.column(name).is_ok() {
        crate::dataframe::opt_strs(df, name)
    } else {
        Ok(vec![None; df.height()])
    }
}

fn rows(df: &DataFrame) -> PolarsResult<Vec<StateRow>> {
    use crate::dataframe::{i64s as i, strs as s, u64s as u};
    let (night, mac, ip, first, last, packets, bytes) = (
        s(df, "night")?,
        s(df, "mac")?,
        s(df, "ip")?,
        i(df, "first")?,
        i(df, "last")?,
        u(df, "packets")?,
        u(df, "bytes")?,
    );
    // Columns added with names (absent in older files).
    let (macs, name, vendor, keys) = (
        opt_text(df, "macs")?,
        opt_text(df, "name")?,
        opt_text(df, "vendor")?,
        opt_text(df, "keys")?,
    );
    Ok((0..mac.len())
        .map(|k| {
            let device = Device {
                mac: mac[k].clone(),
                macs: macs[k].as_deref().map(split).unwrap_or_default(),
                ips: split(&ip[k]),
                name: name[k].clone().unwrap_or_default(),
                vendor: vendor[k].clone().filter(|v| !v.is_empty()),
                first_seen_ns: first[k],
                last_seen_ns: last[k],
                packets: packets[k],
                bytes: bytes[k],
                ..Device::default()
            };
            let keys = match &keys[k] {
                Some(t) => split(t),
                None => device.keys(),
            };
            StateRow {
                night: night[k].clone(),
                device,
                keys,
            }
        })
        .collect())
}

/// The state file: rows of (night, mac, macs, ip, first, last, packets, bytes, name,
/// vendor, keys).
fn read_state(path: &Path) -> Result<Vec<StateRow>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let f = std::fs::File::open(path).map_err(|source| DevicesError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let df = ParquetReader::new(f).finish().map_err(pe(path))?;
    rows(&df).map_err(pe(path))
}

/// [`read_state`], with a file that opens but does not read as the devices table (a
/// torn or damaged Parquet file) moved aside (`devices.parquet.corrupt-<time>`) with a
/// warning: the history starts again from tonight instead of failing every later night.
fn read_state_or_set_aside(path: &Path) -> Result<Vec<StateRow>> {
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

fn write_state(path: &Path, rows_in: &[StateRow]) -> Result<()> {
    let text = |name: &str, f: &dyn Fn(&StateRow) -> String| -> Column {
        Series::new(name.into(), rows_in.iter().map(f).collect::<Vec<_>>()).into()
    };
    let num = |name: &str, f: &dyn Fn(&Device) -> i64| -> Column {
        Series::new(
            name.into(),
            rows_in.iter().map(|r| f(&r.device)).collect::<Vec<_>>(),
        )
        .into()
    };
    let count = |name: &str, f: &dyn Fn(&Device) -> u64| -> Column {
        Series::new(
            name.into(),
            rows_in.iter().map(|r| f(&r.device)).collect::<Vec<_>>(),
        )
        .into()
    };
    let mut df = DataFrame::new(
        rows_in.len(),
        vec![
            text("night", &|r| r.night.clone()),
            text("mac", &|r| r.device.mac.clone()),
            text("macs", &|r| join(&r.device.macs)),
            text("ip", &|r| join(&r.device.ips)),
            num("first", &|d| d.first_seen_ns),
            num("last", &|d| d.last_seen_ns),
            count("packets", &|d| d.packets),
            count("bytes", &|d| d.bytes),
            text("name", &|r| r.device.name.replace(char::is_control, "")),
            text("vendor", &|r| r.device.vendor.clone().unwrap_or_default()),
            text("keys", &|r| join(&r.keys)),
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
    // Buffered: the Parquet writer writes each page header and page on its own (1,864
    // writes for a week of devices, a tenth of an analysis).
    let mut out = std::io::BufWriter::new(file.writer().try_clone().map_err(io)?);
    ParquetWriter::new(&mut out)
        .finish(&mut df)
        .map_err(pe(path))?;
    std::io::Write::flush(&mut out).map_err(io)?;
    file.commit().map_err(io)
}

/// Records tonight's devices in `<state>/devices.parquet` and compares them with the
/// `history_nights` nights before `night` (nights are `YYYY-MM-DD`, compared as text):
/// a device is new when none of its identity keys ([`Device::keys`]) was seen in an
/// earlier night on record, silent when it was seen in one of the `history_nights`
/// before tonight and none of its keys is seen tonight. Nights older than `keep_nights`
/// before tonight are dropped from the file. A state file that does not read as one is
/// moved aside with a warning (no history tonight).
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
    state.retain(|r| r.night != night);
    let mut earlier: Vec<&str> = state
        .iter()
        .map(|r| r.night.as_str())
        .filter(|n| *n < night)
        .collect();
    earlier.sort_unstable();
    earlier.dedup();
    let recent: BTreeSet<&str> = earlier.iter().rev().take(history_nights).copied().collect();
    let known: BTreeSet<&str> = state
        .iter()
        .filter(|r| r.night.as_str() < night)
        .flat_map(|r| r.keys.iter().map(String::as_str))
        .collect();
    let tonight_keys: Vec<Vec<String>> = tonight.iter().map(Device::keys).collect();
    let seen_tonight: BTreeSet<&str> = tonight_keys.iter().flatten().map(String::as_str).collect();
    let new = if earlier.is_empty() {
        Vec::new()
    } else {
        tonight
            .iter()
            .zip(&tonight_keys)
            .filter(|(_, keys)| !keys.iter().any(|k| known.contains(k.as_str())))
            .map(|(d, _)| d.clone())
            .collect()
    };
    // The last sighting of each device not seen tonight (rows of one night and MAC,
    // from files that kept one row per MAC and IP, are one device).
    let mut last_sighting: BTreeMap<&str, (&str, Device)> = BTreeMap::new();
    for r in &state {
        if !recent.contains(r.night.as_str())
            || r.keys.iter().any(|k| seen_tonight.contains(k.as_str()))
        {
            continue;
        }
        match last_sighting.entry(r.device.mac.as_str()) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert((r.night.as_str(), r.device.clone()));
            }
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let (n, d) = e.get_mut();
                if *n == r.night.as_str() {
                    for ip in &r.device.ips {
                        if !d.ips.contains(ip) && d.ips.len() < MAX_IPS {
                            d.ips.push(ip.clone());
                        }
                    }
                    d.last_seen_ns = d.last_seen_ns.max(r.device.last_seen_ns);
                } else if r.night.as_str() > *n {
                    *e.get_mut() = (r.night.as_str(), r.device.clone());
                }
            }
        }
    }
    let silent: Vec<Device> = last_sighting.into_values().map(|(_, d)| d).collect();
    let nights_compared = recent.len();

    let mut all_nights: Vec<String> = state.iter().map(|r| r.night.clone()).collect();
    all_nights.push(night.to_string());
    all_nights.sort_unstable();
    all_nights.dedup();
    let cutoff = all_nights.len().saturating_sub(keep_nights.max(1));
    let kept: BTreeSet<String> = all_nights.into_iter().skip(cutoff).collect();
    state.retain(|r| kept.contains(&r.night));
    state.extend(tonight.iter().zip(tonight_keys).map(|(d, keys)| StateRow {
        night: night.to_string(),
        device: d.clone(),
        keys,
    }));
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
            ips: vec![ip.into()],
            first_seen_ns: 1,
            last_seen_ns: 2,
            packets: 3,
            bytes: 4,
            ..Device::default()
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
    fn a_new_ip_or_a_linked_private_mac_is_not_a_new_device() {
        let dir = std::env::temp_dir().join(format!("nd-devices-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = dir.join("devices.parquet");
        let phone = |mac: &str, ip: &str| Device {
            client_id: Some("01aabbccddeeff".into()),
            dhcp_name: Some("Pixel-7".into()),
            ..dev(mac, ip)
        };
        let tv = dev("00:1b:a9:77:50:50", "192.168.1.23");
        update(
            &state,
            "2026-11-25",
            &[tv.clone(), phone("da:00:00:00:00:01", "192.168.1.40")],
            7,
            30,
        )
        .expect("night 1");
        // The TV on another address, the phone on a new random MAC with the same
        // client id: neither is new, neither is silent.
        let r = update(
            &state,
            "2026-11-26",
            &[
                dev("00:1b:a9:77:50:50", "192.168.1.99"),
                phone("da:00:00:00:00:02", "192.168.1.41"),
            ],
            7,
            30,
        )
        .expect("night 2");
        assert!(r.new.is_empty(), "{:?}", r.new);
        assert!(r.silent.is_empty(), "{:?}", r.silent);
        // A universally administered MAC is not linked by host name alone.
        let other = Device {
            dhcp_name: Some("Pixel-7".into()),
            ..dev("00:1b:a9:00:00:01", "192.168.1.42")
        };
        let r = update(&state, "2026-11-27", std::slice::from_ref(&other), 7, 30).expect("night 3");
        assert_eq!(r.new, vec![other]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_devices_file_from_before_names_still_reads() {
        let dir = std::env::temp_dir().join(format!("nd-devices-old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let state = dir.join("devices.parquet");
        // The old layout: one row per (MAC, IP), no names.
        let mut df = df!(
            "night" => ["2026-11-25", "2026-11-25", "2026-11-25"],
            "mac" => ["aa:00:00:00:00:01", "aa:00:00:00:00:01", "00:1b:a9:77:50:50"],
            "ip" => ["192.168.1.2", "fe80::1", "192.168.1.3"],
            "first" => [1i64, 1, 1],
            "last" => [2i64, 3, 2],
            "packets" => [3u64, 3, 3],
            "bytes" => [4u64, 4, 4],
        )
        .expect("frame");
        ParquetWriter::new(std::fs::File::create(&state).expect("create"))
            .finish(&mut df)
            .expect("write");
        let r = update(
            &state,
            "2026-11-26",
            &[dev("00:1b:a9:77:50:50", "192.168.1.3")],
            7,
            30,
        )
        .expect("reads");
        assert!(r.new.is_empty());
        assert_eq!(r.silent.len(), 1, "{:?}", r.silent);
        assert_eq!(r.silent[0].ips, vec!["192.168.1.2", "fe80::1"]);
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

//! Analyse: polars (lazy) over a night's Parquet, handing out our own [`Summary`].
//!
//! Three queries read the night, and nothing holds its packets in memory: from the
//! roll-up convert summed (`rollup.parquet`, `summed`) when there is one, else streaming
//! over the Parquet: the cube (packets and bytes per time slot, protocol, address pair, IP
//! version, service port and source MAC: thousands of rows on a home network, whatever
//! the number of packets); the echo requests and replies, grouped per exchange for the
//! pings chart; and the ARP senders. The cube stays a DataFrame (keys as text), and
//! totals, timeline, protocols, talkers, conversations, ports, devices and floods are
//! rolled up from it in polars, each cut to its configured number of rows there
//! (`rollup::top_rows`), so a night of a million spoofed addresses costs compact
//! columns, not a Rust row each, and the summary stays small. Polars types stay in this
//! module; the report reads [`Summary`] (or `summary.json`).
//!
//! Modules: `summary` (the types of `summary.json`), `night` (reading a night: the three
//! queries), `tables` (the footer's id tables), `cube`, `pings`, `arp` (one query each,
//! and their rows), `summed` (the same three from the roll-up), `rollup` (the roll-ups
//! and top-K), `timeline` (totals, timeline), `floods` (spoofed-source floods and
//! scans), `remotes` (remote addresses named from `names.parquet`: talkers,
//! conversations, what each device talked to), `talkers` (Rust roll-ups for `tshark`),
//! `tshark` (the same counts shaped as tshark's statistics, for comparison).
//! Column names come from [`crate::parquet_schema`]; data flows one way, into
//! [`crate::devices`] for the device list, never back.

mod arp;
mod cube;
pub mod findings;
mod floods;
mod naming;
mod night;
mod pings;
mod remotes;
mod rollup;
mod summary;
mod summed;
mod tables;
mod talkers;
mod timeline;
mod tshark;

use std::net::IpAddr;
use std::path::Path;

pub use floods::{FLOOD_MIN_SOURCES, SCAN_MIN_PORTS};
pub use naming::{NAME_PRECEDENCE, clean, is_hidden, is_junk};
pub use remotes::clean_name;
pub use summary::{
    ArpRow, CaptureHealth, Conversation, DeviceRemotes, Flood, HistoryRow, Label, LowDiskStop,
    Omitted, PingRow, PortRow, ProtocolRow, RemoteRow, SUMMARY_SCHEMA_OLDEST,
    SUMMARY_SCHEMA_VERSION, Summary, Talker, TimeBin, Timeline, Totals, add_label,
};
pub use tshark::{all_conversations, endpoints, io_stat};

use crate::config::Zone;
use arp::{arp, local_pairs};
use night::{Night, read_night};
use polars::prelude::PolarsResult;
use timeline::{night_of, timeline, totals};

/// Why a night could not be analysed: its Parquet could not be read.
pub use crate::dataframe::FrameError as AnalyseError;

pub type Result<T, E = AnalyseError> = std::result::Result<T, E>;

/// What the analysis needs besides the packets.
#[derive(Debug, Clone)]
pub struct AnalyseOptions {
    /// Addresses of the appliance itself, left out of the pings chart.
    pub own_addresses: Vec<IpAddr>,
    /// Rows in each top-N list.
    pub top_n: usize,
    /// Rows at most in the lists that are otherwise whole: pings, ARP, devices.
    pub max_rows: usize,
    /// Timeline bin in seconds.
    pub interval_s: u64,
    /// Time zone for labels, bin alignment and the night's date.
    pub zone: Zone,
    /// Capture window start, minutes after local midnight (names the night).
    pub window_start_min: u32,
    /// The owner's names (`[names]`): address as the summary writes it -> label.
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Default for AnalyseOptions {
    fn default() -> Self {
        AnalyseOptions {
            own_addresses: Vec::new(),
            top_n: 10,
            max_rows: 100,
            interval_s: 600,
            zone: Zone::Local,
            window_start_min: 22 * 60,
            labels: std::collections::BTreeMap::new(),
        }
    }
}

/// Analyses one night's Parquet.
///
/// # Errors
/// The file cannot be read as the Parquet `convert` writes.
pub fn analyse(parquet: &Path, opts: &AnalyseOptions) -> Result<Summary> {
    analyse_with_devices(parquet, opts).map(|(s, _)| s)
}

/// Analyses one night's Parquet, and lists its devices (see [`crate::devices`]),
/// named from `names.parquet` beside it (none: a night converted before names) and
/// the owner's labels; every local address gets a label in the summary.
///
/// # Errors
/// The file cannot be read as the Parquet `convert` writes.
pub fn analyse_with_devices(
    parquet: &Path,
    opts: &AnalyseOptions,
) -> Result<(Summary, Vec<crate::devices::Device>)> {
    analyse_with_devices_then(parquet, opts, &mut |_| {})
}

/// [`analyse_with_devices`], calling `summed` as soon as the summary has the night's
/// traffic summed (totals, timeline, protocols, talkers, pings), before anything is
/// named: what needs no name can start from there.
///
/// # Errors
/// As [`analyse_with_devices`].
pub fn analyse_with_devices_then(
    parquet: &Path,
    opts: &AnalyseOptions,
    summed: &mut dyn FnMut(&Summary),
) -> Result<(Summary, Vec<crate::devices::Device>)> {
    let zone = opts.zone;
    // Checked here so that a missing file is named once (polars repeats the path).
    std::fs::metadata(parquet).map_err(|source| AnalyseError::Io {
        path: parquet.display().to_string(),
        source,
    })?;
    let pe = |source| AnalyseError::Polars {
        path: parquet.display().to_string(),
        source,
    };
    let lap = crate::logging::laps("analyse");
    let night = read_night(
        parquet,
        opts.interval_s,
        zone,
        &opts.own_addresses,
        opts.max_rows,
    )
    .map_err(pe)?;
    let mut summary = summarise(&night, opts, zone).map_err(pe)?;
    summed(&summary);
    let names_path = parquet.with_file_name(crate::layout::NAMES_PARQUET);
    let names = crate::namestore::read(&names_path).map_err(|source| AnalyseError::Polars {
        path: names_path.display().to_string(),
        source,
    })?;
    let pairs = local_pairs(&night).map_err(pe)?;
    let (devices, omitted) =
        naming::night_devices(&pairs, &names, &opts.labels, opts.max_rows, zone).map_err(pe)?;
    summary.omitted.devices = omitted;
    summary.labels = naming::labels_of(&devices, &opts.labels);
    lap("roll-ups and devices");
    remotes::name_remotes(&mut summary, &night, &names, opts.max_rows).map_err(pe)?;
    lap("remote names");
    Ok((summary, devices))
}

fn summarise(night: &Night, opts: &AnalyseOptions, zone: Zone) -> PolarsResult<Summary> {
    let lap = crate::logging::laps("roll-up");
    let slots = rollup::slots(&night.cube)?;
    let mut totals = totals(&slots, zone);
    let (timeline, protocols) = timeline(
        &slots,
        night.slot_ns,
        opts.interval_s,
        totals.first_ns,
        zone,
    );
    let pairs = rollup::pairs(&night.cube)?;
    lap("slots, pairs");
    totals.hosts = rollup::hosts(&pairs)?;
    lap("hosts");
    let (talkers_by_bytes, talkers_by_packets, more_talkers) = rollup::talkers(&pairs, opts.top_n)?;
    lap("talkers");
    let (conversations, more_conversations) = rollup::conversations(&pairs, opts.top_n)?;
    lap("talkers, conversations");
    let (ports, other) = rollup::ports(&night.cube, opts.top_n)?;
    let (arp, more_arp) = arp(&night.arp, opts.max_rows)?;
    lap("ports, arp");
    let floods = floods::floods(&night.cube)?;
    lap("floods");
    let omitted = Omitted {
        talkers: more_talkers,
        conversations: more_conversations,
        ports: other.services,
        ports_packets: other.packets,
        ports_bytes: other.bytes,
        ping_sources: night.pings.omitted_sources,
        ping_requests: night.pings.omitted_requests,
        arp: more_arp,
        devices: 0,
        talked_to: 0,
    };
    Ok(Summary {
        schema_version: SUMMARY_SCHEMA_VERSION,
        night: night_of(totals.first_ns, zone, opts.window_start_min),
        timezone: zone.name(),
        capture: None,
        totals,
        pings: night.pings.rows.clone(),
        timeline,
        protocols,
        talkers_by_bytes,
        talkers_by_packets,
        conversations,
        ports,
        arp,
        devices: None,
        history: Vec::new(),
        omitted,
        floods,
        labels: std::collections::BTreeMap::new(),
        findings: Vec::new(),
        baseline: None,
        talked_to: Vec::new(),
    })
}

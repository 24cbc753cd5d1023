//! The night's pipeline after capture: convert -> analyse -> report, each stage
//! writing its outputs atomically into the night directory:
//!
//! ```text
//! <night>/packets.parquet  <night>/summary.json
//! <night>/report/{email.html, email.txt, index.html, charts/*.jpg, message.json, report.eml}
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::analyse::{self, AnalyseOptions, CaptureHealth, LowDiskStop, Summary};
use crate::capture::CaptureReport;
use crate::chart;
use crate::config::Config;
use crate::convert::{self, ConvertOptions, ConvertSummary};
use crate::devices;
use crate::fsutil::write_atomic;
use crate::layout::{self, NightDir, ReportDir};
use crate::message::{self, Envelope};
use crate::report::{self, ChartImage, ReportOptions};

/// Chart image size in the email (CSS pixels; drawn at this size).
pub const CHART_WIDTH: u32 = 600;
pub const CHART_HEIGHT: u32 = 320;
const JPEG_QUALITY: u8 = 88;

/// What a pipeline run produced.
#[derive(Debug)]
pub struct NightOutcome {
    pub night_dir: PathBuf,
    pub convert: ConvertSummary,
    pub summary: Summary,
    pub eml: PathBuf,
}

/// Options of a run beyond the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// State directory for devices and history across nights (`None`: this night alone).
    pub state_dir: Option<PathBuf>,
    /// Also write the seed's tshark CSV here.
    pub csv: Option<PathBuf>,
    pub progress: bool,
}

/// Analyse options from the config (its values were checked when it was loaded).
#[must_use]
pub fn analyse_options(cfg: &Config) -> AnalyseOptions {
    AnalyseOptions {
        own_addresses: cfg.report.own_addresses.clone(),
        top_n: cfg.report.top_n,
        max_rows: cfg.report.max_rows,
        interval_s: cfg.report.interval.secs(),
        zone: cfg.capture.zone(),
        window_start_min: cfg.capture.start.minutes(),
        labels: cfg.labels().unwrap_or_default(),
    }
}

/// Convert, analyse and report the given captures into `night_dir`.
///
/// # Errors
/// A capture that cannot be read at all, or an output that cannot be written.
pub fn run(
    inputs: &[PathBuf],
    night_dir: &Path,
    cfg: &Config,
    opts: &RunOptions,
) -> anyhow::Result<NightOutcome> {
    std::fs::create_dir_all(night_dir)
        .with_context(|| format!("{}: creating directory", night_dir.display()))?;
    let parquet = NightDir::new(night_dir).packets_parquet();
    let names = NightDir::new(night_dir).names_parquet();
    let flows = NightDir::new(night_dir).flows_parquet();
    let rollup = NightDir::new(night_dir).rollup_parquet();
    tracing::info!(dir = %night_dir.display(), parts = inputs.len(), "convert: start");
    let conv = convert::convert(
        inputs,
        &ConvertOptions {
            parquet: Some(parquet),
            csv: opts.csv.clone(),
            names: Some(names),
            flows: Some(flows),
            rollup: Some(rollup),
            progress: opts.progress,
            ..Default::default()
        },
    )?;
    // The chart renderers start while the night is analysed.
    let engines = chart::Engines::start_alongside(CHART_ENGINES);
    let (summary, drawn) =
        analyse_night_drawing(night_dir, cfg, opts.state_dir.as_deref(), engines)?;
    let eml = write_report_drawn(&summary, night_dir, cfg, drawn)?;
    Ok(NightOutcome {
        night_dir: night_dir.to_path_buf(),
        convert: conv,
        summary,
        eml,
    })
}

/// The analyse stage: `<night>/packets.parquet` (+ `capture.json`) to `<night>/summary.json`,
/// with devices and history from the state directory when one is given.
///
/// # Errors
/// The Parquet cannot be read or summary.json cannot be written.
pub fn analyse_night(
    night_dir: &Path,
    cfg: &Config,
    state_dir: Option<&Path>,
) -> anyhow::Result<Summary> {
    analyse_night_then(night_dir, cfg, state_dir, &mut |_, _| {})
}

/// [`analyse_night`] that hands the report's charts to `engines` as soon as the
/// analysis has what they show, so they are drawn while it goes on: the timeline and
/// the protocols once the traffic is summed, the charts that name addresses once the
/// devices and remotes are named (no chart shows a finding or the state).
/// [`write_report_drawn`] takes them.
///
/// # Errors
/// As [`analyse_night`].
pub fn analyse_night_drawing(
    night_dir: &Path,
    cfg: &Config,
    state_dir: Option<&Path>,
    engines: chart::Engines,
) -> anyhow::Result<(Summary, DrawnCharts)> {
    let mut ahead = ChartsAhead::new(cfg, engines);
    let summary = analyse_night_then(night_dir, cfg, state_dir, &mut |s, named| {
        ahead.queue(s, named);
    })?;
    Ok((summary, ahead.drawn()))
}

/// [`analyse_night`], calling `ready(summary, false)` as soon as the summary has the
/// traffic summed and `ready(summary, true)` once its devices and remotes are named
/// (before the findings and the state).
fn analyse_night_then(
    night_dir: &Path,
    cfg: &Config,
    state_dir: Option<&Path>,
    ready: &mut dyn FnMut(&Summary, bool),
) -> anyhow::Result<Summary> {
    let night = NightDir::new(night_dir);
    tracing::info!(dir = %night_dir.display(), "analyse: start");
    let parquet = night.packets_parquet();
    let capture = read_capture_json(&night);
    let mut opts = analyse_options(cfg);
    opts.own_addresses = own_addresses(&opts.own_addresses, capture.as_ref());
    let (mut summary, tonight) =
        analyse::analyse_with_devices_then(&parquet, &opts, &mut |s| ready(s, false))?;
    let lap = crate::logging::laps("analyse");
    ready(&summary, true);
    lap("charts handed over");
    summary.capture = capture.as_ref().map(capture_health);
    if let Some(state) = state_dir {
        let rep = devices::update(
            &devices_file(state),
            &summary.night,
            &tonight,
            cfg.report.history_nights,
            usize::try_from(cfg.state.keep_nights).unwrap_or(usize::MAX),
        )?;
        summary.devices = Some(rep);
        lap("devices");
        let earlier = earlier_summaries(
            &layout::nights_dir(state),
            &summary.night,
            cfg.report.history_nights,
            night_dir,
        );
        summary.history = summary.compare(&earlier);
        lap("history");
    } else {
        summary.devices = Some(devices::DeviceReport {
            devices: tonight,
            ..Default::default()
        });
    }
    let (names, flows) = (night.names_parquet(), night.flows_parquet());
    let inputs = analyse::findings::FindingInputs {
        flows: &flows,
        names: &names,
        zone: cfg.capture.zone(),
    };
    if let Some(state) = state_dir {
        let file = layout::baseline_file(state);
        let packets = night.packets_parquet();
        let baseline = analyse::findings::BaselineInputs {
            file: &file,
            packets: &packets,
            limits: crate::baseline::Limits {
                nights: usize::try_from(cfg.state.keep_nights).unwrap_or(usize::MAX),
                devices: cfg.report.max_rows,
                names: cfg.findings.baseline_names,
            },
        };
        let (found, status) =
            analyse::findings::with_baseline(&summary, &inputs, &baseline, &cfg.findings);
        summary.findings = found;
        summary.baseline = Some(status);
    } else {
        summary.findings = analyse::findings::findings(&summary, &inputs, &cfg.findings);
    }
    lap("findings");
    let json = serde_json::to_vec_pretty(&summary).context("serialising summary.json")?;
    write_atomic(&night.summary_json(), &json)
        .with_context(|| format!("{}: writing summary.json", night_dir.display()))?;
    lap("summary.json");
    Ok(summary)
}

/// Reads `<night>/summary.json`.
///
/// # Errors
/// Missing (run `netdigest analyse` first) or not a summary of this version.
pub fn read_summary(night_dir: &Path) -> anyhow::Result<Summary> {
    let p = NightDir::new(night_dir).summary_json();
    let text = std::fs::read_to_string(&p).with_context(|| {
        format!(
            "{}: cannot read (run `netdigest analyse` first)",
            p.display()
        )
    })?;
    let s: Summary = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a netdigest summary", p.display()))?;
    anyhow::ensure!(
        (analyse::SUMMARY_SCHEMA_OLDEST..=analyse::SUMMARY_SCHEMA_VERSION)
            .contains(&s.schema_version),
        "{}: schema version {} is not {}..={} (re-run `netdigest analyse`)",
        p.display(),
        s.schema_version,
        analyse::SUMMARY_SCHEMA_OLDEST,
        analyse::SUMMARY_SCHEMA_VERSION
    );
    Ok(s)
}

/// `<night>/capture.json` (written by `netdigest capture`), when the night was captured live.
fn read_capture_json(night: &NightDir) -> Option<CaptureReport> {
    let text = std::fs::read_to_string(night.capture_json()).ok()?;
    serde_json::from_str(&text).ok()
}

/// The appliance's own addresses: `report.own_addresses` when set, else those the capture
/// recorded in capture.json (its interface's, when it started), else none.
fn own_addresses(configured: &[IpAddr], capture: Option<&CaptureReport>) -> Vec<IpAddr> {
    if configured.is_empty() {
        capture.map(|c| c.own_addresses.clone()).unwrap_or_default()
    } else {
        configured.to_vec()
    }
}

/// Capture health from capture.json: libpcap's counters plus our own queue and disk drops.
fn capture_health(capture: &CaptureReport) -> CaptureHealth {
    let s = &capture.stats;
    let (received, dk, di) = (s.received, s.dropped_kernel, s.dropped_interface);
    let ours = s.dropped_queue + s.dropped_disk;
    let dropped = dk + di + ours;
    let total = received + dk + di;
    #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
    let ratio = if total == 0 {
        0.0
    } else {
        dropped as f64 / total as f64
    };
    CaptureHealth {
        interface: capture.interface.clone(),
        received,
        dropped_kernel: dk,
        dropped_interface: di,
        dropped_ours: ours,
        drop_ratio: ratio,
        warning: ratio > 0.001,
        stopped_low_disk: capture.disk.stopped_low_disk.as_ref().map(|l| LowDiskStop {
            at: l.at.clone(),
            free_mb: l.free_mb,
            min_free_mb: capture.disk.min_free_mb,
        }),
    }
}

/// `<state>/nights/devices.parquet`, first copied from where the old layout kept it
/// (`<state>/devices.parquet`, left in place: the state directory itself may not be
/// nightly's to change).
fn devices_file(state: &Path) -> PathBuf {
    let path = layout::devices_file(state);
    let legacy = layout::legacy_devices_file(state);
    if !path.exists() && legacy.is_file() {
        let copied = std::fs::create_dir_all(layout::nights_dir(state))
            .and_then(|()| std::fs::copy(&legacy, &path));
        if let Err(e) = copied {
            tracing::warn!(
                "{}: cannot copy to {} ({e}); devices start afresh",
                legacy.display(),
                path.display()
            );
        }
    }
    path
}

/// Summaries of the `n` nights before `night` under `nights_dir` (skipping `this_dir`).
/// A summary.json that is not JSON at all (damaged) is moved aside with a warning; one
/// of another version is left alone and not compared.
fn earlier_summaries(nights_dir: &Path, night: &str, n: usize, this_dir: &Path) -> Vec<Summary> {
    let Ok(rd) = std::fs::read_dir(nights_dir) else {
        return Vec::new();
    };
    let this = this_dir.canonicalize().ok();
    let mut found: Vec<(String, Summary)> = rd
        .filter_map(Result::ok)
        .filter(|e| this.is_none() || e.path().canonicalize().ok() != this)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let s = earlier_summary(&NightDir::new(e.path()).summary_json())?;
            (s.night.as_str() < night && !s.night.is_empty()).then_some((name, s))
        })
        .collect();
    found.sort_by(|a, b| a.1.night.cmp(&b.1.night));
    found.into_iter().rev().take(n).map(|(_, s)| s).collect()
}

/// An earlier night's summary for the history; a damaged file is moved aside.
fn earlier_summary(path: &Path) -> Option<Summary> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) => serde_json::from_value(v).ok(),
        Err(e) => {
            crate::fsutil::set_aside_warn(
                path,
                &format!("damaged ({e})"),
                "left out of the history",
            );
            None
        }
    }
}

/// The envelope from the mail config (with local defaults when nothing is configured).
#[must_use]
pub fn envelope(s: &Summary, cfg: &Config) -> Envelope {
    let from = cfg
        .mail
        .from
        .clone()
        .or_else(|| cfg.mail.username.clone())
        .unwrap_or_else(|| "netdigest <netdigest@localhost>".to_string());
    let subject = cfg
        .mail
        .subject
        .replace("{night}", &s.night)
        .replace("{headline}", &report::headline(s));
    Envelope {
        from,
        to: cfg.mail.to.clone(),
        cc: Vec::new(),
        reply_to: None,
        subject,
    }
}

/// Renderers started at most (one per core, see [`chart::Engines::start`]): no
/// more than a report has charts.
pub const CHART_ENGINES: usize = 4;

/// The report's charts, handed to the renderers ([`analyse_night_drawing`]).
pub struct DrawnCharts {
    /// Each chart's ECharts option, to check they are the report's charts.
    options: Vec<String>,
    drawing: chart::Drawing,
}

/// The report's charts, queued on the renderers as the analysis makes what they show.
struct ChartsAhead {
    engines: chart::Engines,
    opts: ReportOptions,
    /// The options queued, by place among the report's charts.
    queued: std::collections::BTreeMap<usize, String>,
}

impl ChartsAhead {
    fn new(cfg: &Config, engines: chart::Engines) -> Self {
        ChartsAhead {
            engines,
            opts: ReportOptions::from(&cfg.report),
            queued: std::collections::BTreeMap::new(),
        }
    }

    /// Queues the charts of `s` not queued yet: all of them when its addresses are
    /// `named`, else those that show no name.
    fn queue(&mut self, s: &Summary, named: bool) {
        let defs = report::chart_defs(s, &self.opts);
        let mut jobs = Vec::new();
        for (i, d) in defs.into_iter().enumerate() {
            if (named || !d.names) && !self.queued.contains_key(&i) {
                let option = d.chart.to_string();
                self.queued.insert(i, option.clone());
                jobs.push((i, (option, CHART_WIDTH, CHART_HEIGHT, JPEG_QUALITY)));
            }
        }
        self.engines.queue(jobs);
    }

    /// What was queued, being drawn. Had the charts' number or order changed between
    /// the passes, their options would not be the final summary's and
    /// [`write_report_drawn`] would say so.
    fn drawn(self) -> DrawnCharts {
        let n = self.queued.len();
        DrawnCharts {
            options: self.queued.into_values().collect(),
            drawing: self.engines.drawing(n),
        }
    }
}

/// Hands the report's charts of `s` to `engines` (started ahead, see [`chart::Engines`]).
#[must_use]
pub fn draw_charts(s: &Summary, cfg: &Config, engines: chart::Engines) -> DrawnCharts {
    let mut ahead = ChartsAhead::new(cfg, engines);
    ahead.queue(s, true);
    ahead.drawn()
}

/// Renders charts and spools the message in `report/` ([`message::spool`]: email.html,
/// email.txt, index.html, charts/*.jpg, message.json and report.eml). Returns the `.eml`
/// path.
///
/// # Errors
/// Chart rendering or writing a file failed.
pub fn write_report(s: &Summary, night_dir: &Path, cfg: &Config) -> anyhow::Result<PathBuf> {
    let engines = chart::Engines::start(CHART_ENGINES);
    write_report_drawn(s, night_dir, cfg, draw_charts(s, cfg, engines))
}

/// [`write_report`] with the charts handed to the renderers earlier (by
/// [`analyse_night_drawing`], from the same summary): the text and the page are
/// written while they are drawn.
///
/// # Errors
/// As [`write_report`]; charts drawn from another summary than `s`.
pub fn write_report_drawn(
    s: &Summary,
    night_dir: &Path,
    cfg: &Config,
    drawn: DrawnCharts,
) -> anyhow::Result<PathBuf> {
    tracing::info!(dir = %night_dir.display(), "report: start");
    let dir = ReportDir::new(NightDir::new(night_dir).report_dir());
    let opts = ReportOptions::from(&cfg.report);
    let defs = report::chart_defs(s, &opts);
    anyhow::ensure!(
        defs.iter().map(|d| d.chart.to_string()).eq(drawn.options),
        "{}: the charts drawn are not this summary's",
        night_dir.display()
    );
    let text = report::email_text(s, &opts);
    let index = report::index_html(s, &defs, &opts);
    let env = envelope(s, cfg);
    let images = defs
        .iter()
        .zip(drawn.drawing.wait())
        .map(|(d, bytes)| {
            Ok(ChartImage {
                id: d.id().to_string(),
                title: d.title().to_string(),
                content_type: "image/jpeg".into(),
                bytes: bytes.with_context(|| format!("rendering chart {}", d.id()))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let html = report::email_html(s, &images, &opts);
    let message_id = message::message_id_for(&dir, &s.night)?;
    let parts = message::Parts {
        text: &text,
        html: &html,
        charts: &images,
        index: Some(&index),
    };
    let eml = message::spool(&dir, &env, &message_id, &parts)?;
    Ok(eml)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A capture.json as `netdigest capture` writes it (the fields these tests need).
    fn capture_json(text: &str) -> CaptureReport {
        serde_json::from_str(text).expect("a capture report")
    }

    #[test]
    fn capture_health_counts_our_own_drops() {
        let c = capture_json(
            r#"{"interface": "wlan0",
                "stats": {"received": 9990, "dropped_kernel": 10, "dropped_interface": 0,
                          "dropped_queue": 5, "dropped_disk": 0}}"#,
        );
        let h = capture_health(&c);
        assert_eq!(h.interface, "wlan0");
        assert_eq!(
            (h.received, h.dropped_kernel, h.dropped_ours),
            (9_990, 10, 5)
        );
        assert!((h.drop_ratio - 0.0015).abs() < 1e-9, "{}", h.drop_ratio);
        assert!(h.warning, "above 0.1 % the report warns");
        let quiet = capture_health(&capture_json(r#"{"stats": {"received": 100000}}"#));
        assert!(!quiet.warning && quiet.drop_ratio == 0.0);
        assert_eq!(
            quiet.stopped_low_disk, None,
            "a capture.json without the floor"
        );
    }

    #[test]
    fn capture_health_carries_the_stop_at_the_disk_floor() {
        let c = capture_json(
            r#"{"schema_version": 3, "stats": {"received": 10, "dropped_disk": 4},
                "disk": {"min_free_mb": 512,
                         "stopped_low_disk": {"at": "2026-11-28T23:41:07.250+01:00", "free_mb": 480}}}"#,
        );
        let stop = capture_health(&c).stopped_low_disk.expect("the stop");
        assert_eq!(
            (stop.at.as_str(), stop.free_mb, stop.min_free_mb),
            ("2026-11-28T23:41:07.250+01:00", 480, 512)
        );
    }

    #[test]
    fn own_addresses_come_from_the_config_else_from_capture_json() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
        let recorded =
            capture_json(r#"{"interface": "eth0", "own_addresses": ["192.168.1.2", "fe80::1"]}"#);
        assert_eq!(
            own_addresses(&[], Some(&recorded)),
            vec![ip("192.168.1.2"), ip("fe80::1")]
        );
        assert_eq!(
            own_addresses(&[ip("10.0.0.9")], Some(&recorded)),
            vec![ip("10.0.0.9")],
            "report.own_addresses wins"
        );
        assert!(own_addresses(&[], None).is_empty(), "no capture.json");
        let old = capture_json(r#"{"schema_version": 1, "interface": "eth0"}"#);
        assert!(
            own_addresses(&[], Some(&old)).is_empty(),
            "a capture.json from before the addresses were recorded"
        );
    }
}

//! `netdigest nightly`: every stage after capture that is not done yet, for every night
//! whose capture has ended (the nightly timer's job; safe to run again at any time).
//!
//! One `nightly` at a time: it holds `<state>/nightly.lock` (flock(2), [`crate::lock`])
//! for the whole run, and a second one refuses. For each `<state>/nights/<YYYY-MM-DD>/`,
//! oldest first (devices and history build up night by night):
//!
//! - a night whose `capture.lock` is held by a capture is still being captured: skipped.
//! - the capture must have ended: `capture.json` says `"complete"` or `"failed"` (a
//!   capture thread panicked: its files are still converted), or it says `"running"` but
//!   the window is over and the file has not been rewritten for [`STALE_AFTER_MIN`]
//!   minutes (a live capture rewrites it every 30 s: that run died, e.g. in a power cut).
//!   A night still being captured is skipped. A `capture.json` that does not parse is
//!   moved aside (`capture.json.corrupt-<time>`) with a warning and the night's parts
//!   are converted all the same.
//! - convert `capture/part-*.pcap` (in name order) into `packets.parquet`, analyse it into
//!   `summary.json` (with the state directory: devices and history), report into
//!   `report/` (through [`pipeline::run`], [`pipeline::analyse_night`] and
//!   [`pipeline::write_report`]).
//!
//! A stage whose output is complete is skipped unless `force`: `packets.parquet` not older
//! than any part, `summary.json` of this version and not older than `packets.parquet`,
//! `report/report.eml` (written last, with `report/message.json` beside it) not older
//! than `summary.json`. Every output is written atomically, so an output that exists is
//! whole.
//!
//! A convert that would obviously not fit on the disk (free space below a twentieth of
//! the capture files plus a MiB) is not started: the night fails this run with one line
//! saying how much is needed and free, and is converted by a later run once there is room.
//!
//! A corrupt part does not stop the night: the packets that can be read are converted
//! and reported, as `netdigest run` does, and the night is a failure of this run (one
//! line naming the file). The converted night is then complete: the damage cannot be
//! repaired by running again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::capfile::CaptureReader;
use crate::capture::{CaptureReport, CaptureStatus};
use crate::config::Config;
use crate::fsutil::{move_aside, write_atomic};
use crate::layout::{self, NightDir, ReportDir};
use crate::lock::{self, FileLock};
use crate::pipeline::{self, RunOptions};

/// A `"running"` capture.json not rewritten for this long, after the window's end, was
/// left by a capture that died.
pub const STALE_AFTER_MIN: i64 = 10;
/// Smallest capture file that can hold a packet-less pcap (its file header).
const PCAP_HEADER_LEN: u64 = pcapfmt::FILE_HEADER_LEN as u64;

/// What `netdigest nightly` does.
#[derive(Debug, Clone)]
pub struct NightlyOptions {
    /// State directory (holding `nights/`).
    pub state_dir: PathBuf,
    /// Only this night (`YYYY-MM-DD`).
    pub night: Option<String>,
    /// Redo every stage even when its output is complete.
    pub force: bool,
}

/// The stages after capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Convert,
    Analyse,
    Report,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Convert => "converted",
            Stage::Analyse => "analysed",
            Stage::Report => "reported",
        })
    }
}

/// What happened to one night.
#[derive(Debug)]
pub enum NightStatus {
    /// Not processed now (still capturing, nothing captured, no capture.json): why.
    Skipped(String),
    /// Every output was already complete.
    UpToDate,
    /// These stages ran; `headline` is the report's one-line summary.
    Done {
        stages: Vec<Stage>,
        headline: String,
    },
}

/// One night's account.
#[derive(Debug)]
pub struct NightReport {
    pub night: String,
    pub dir: PathBuf,
    /// `Err`: the night could not be processed at all.
    pub status: Result<NightStatus, NightError>,
    /// Damage and other problems that make this run a failure (one line each, naming the
    /// file); the night may still have been processed.
    pub errors: Vec<String>,
    /// Things worth a warning line (a part cut short, an interrupted capture).
    pub warnings: Vec<String>,
}

impl NightReport {
    /// True when this night makes the run fail (exit 1).
    #[must_use]
    pub fn failed(&self) -> bool {
        self.status.is_err() || !self.errors.is_empty()
    }
}

/// Why a night could not be processed at all.
#[derive(Debug, thiserror::Error)]
pub enum NightError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot list capture files: {source}", path.display())]
    ListParts {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a netdigest capture report: {source}", path.display())]
    CaptureJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no capture file could be read")]
    NoReadablePart,
    /// The converted night would obviously not fit on the disk: not started.
    #[error(
        "{}: not converted: packets.parquet and the report need about {need_mb} MiB and only \
         {free_mb} MiB is free; free some space (nights past state.keep_nights go once mailed) \
         and run nightly again",
        path.display()
    )]
    NoSpace {
        path: PathBuf,
        need_mb: u64,
        free_mb: u64,
    },
    /// A stage (convert, analyse, report) failed; its message names the file.
    #[error("{0:#}")]
    Stage(#[from] anyhow::Error),
}

/// Processes every night that needs it (or only `opts.night`), oldest first. `now` decides
/// whether a `"running"` capture is over.
///
/// # Errors
/// `nights/` cannot be listed, or the night asked for does not exist. A failing night is
/// not an error here: it is in its [`NightReport`], and the other nights still run.
pub fn run_nightly(
    cfg: &Config,
    opts: &NightlyOptions,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<NightReport>> {
    let nights_dir = layout::nights_dir(&opts.state_dir);
    let nights: Vec<(String, PathBuf)> = if let Some(n) = &opts.night {
        let night = NightDir::named(&opts.state_dir, n);
        anyhow::ensure!(
            night.path().is_dir() || night.capture_root().is_dir(),
            "{}: no such night directory (nights are under {} and {})",
            night.path().display(),
            nights_dir.display(),
            layout::capture_tree(&opts.state_dir).display()
        );
        vec![(n.clone(), night.path().to_path_buf())]
    } else {
        list_nights(&opts.state_dir)?
    };
    let _lock = nightly_lock(&opts.state_dir)?;
    let mut reports = Vec::with_capacity(nights.len());
    let policy = crate::retention::Policy::from_config(cfg);
    let today = now.with_timezone(&chrono::Local).date_naive();
    let total = nights.len();
    for (i, (night, dir)) in nights.into_iter().enumerate() {
        let newer = total - 1 - i;
        if opts.night.is_none()
            && crate::retention::deleted_before(&opts.state_dir, &night, newer, policy, today)
        {
            tracing::debug!("night {night}: deleted by retention, capture's files left; skipped");
            continue;
        }
        let mut rep = NightReport {
            night,
            dir,
            status: Ok(NightStatus::UpToDate),
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        rep.status = process_night(cfg, opts, now, &mut rep);
        reports.push(rep);
    }
    Ok(reports)
}

/// `<state>/nightly.lock`, held for the whole run: one `nightly` at a time (`None` when
/// there is no state directory, and so nothing to do).
fn nightly_lock(state_dir: &Path) -> anyhow::Result<Option<FileLock>> {
    if !state_dir.is_dir() {
        return Ok(None);
    }
    let path = layout::nightly_lock(state_dir);
    let nights = layout::nights_dir(state_dir);
    std::fs::create_dir_all(&nights)
        .map_err(|e| anyhow::anyhow!("{}: creating directory: {e}", nights.display()))?;
    match FileLock::acquire(&path, Duration::from_secs(1)) {
        Ok(Ok(l)) => Ok(Some(l)),
        Ok(Err(busy)) => anyhow::bail!(
            "another netdigest nightly is running on {}{}: not starting a second one ({} is locked)",
            state_dir.display(),
            busy.pid_note(),
            path.display()
        ),
        Err(e) => anyhow::bail!("{}: taking the lock: {e}", path.display()),
    }
}

/// The nights of the state directory, oldest first: every `YYYY-MM-DD` folder of
/// capture's tree and of `nights/` (a night of the old layout is only in `nights/`), as
/// the night directory `nights/<date>` (which may not exist yet). Missing trees have no
/// nights.
fn list_nights(state_dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut names = std::collections::BTreeSet::new();
    for tree in [
        layout::capture_tree(state_dir),
        layout::nights_dir(state_dir),
    ] {
        let rd = match std::fs::read_dir(&tree) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => anyhow::bail!("{}: cannot list nights: {e}", tree.display()),
        };
        for entry in rd {
            let entry = entry.map_err(|e| anyhow::anyhow!("{}: {e}", tree.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && layout::parse_night_name(&name).is_some() {
                names.insert(name);
            } else {
                tracing::debug!("{}: not a night directory", entry.path().display());
            }
        }
    }
    Ok(names
        .into_iter()
        .map(|n| {
            let dir = NightDir::named(state_dir, &n).path().to_path_buf();
            (n, dir)
        })
        .collect())
}

/// Whether a night's capture is over, from its `capture.json`.
#[derive(Debug, PartialEq, Eq)]
enum CaptureState {
    /// Ended as planned.
    Over,
    /// Over, with something to warn about (a failed thread, an interrupted run).
    OverWith(String),
    /// Not over (or not ours): skip the night, saying why.
    NotOver(String),
}

/// Why a capture is or is not over, from its `capture.json`.
fn capture_state(rep: &CaptureReport, now: DateTime<Utc>) -> CaptureState {
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    match rep.status {
        CaptureStatus::Complete => CaptureState::Over,
        CaptureStatus::Failed => CaptureState::OverWith(
            "the capture ended with a failed thread (see its log); converting what it wrote".into(),
        ),
        CaptureStatus::Running => {
            let ended = parse(&rep.window.end).is_some_and(|end| now >= end);
            let stale = parse(&rep.updated)
                .is_some_and(|u| now - u >= chrono::Duration::minutes(STALE_AFTER_MIN));
            if ended && stale {
                CaptureState::OverWith(format!(
                    "the capture was interrupted (capture.json last written {}, window ended {}); \
                     converting what it wrote",
                    rep.updated, rep.window.end
                ))
            } else {
                CaptureState::NotOver(format!(
                    "still capturing (window ends {}), skipped",
                    if rep.window.end.is_empty() {
                        "at an unknown time"
                    } else {
                        &rep.window.end
                    }
                ))
            }
        }
        CaptureStatus::Unknown => {
            CaptureState::NotOver("capture.json has no status netdigest writes, skipped".into())
        }
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// True when `output` exists and is not older than any of `inputs`.
fn up_to_date(output: &Path, inputs: &[PathBuf]) -> bool {
    let Some(out) = mtime(output) else {
        return false;
    };
    inputs.iter().all(|i| mtime(i).is_none_or(|t| t <= out))
}

/// The night's part files, in order: `capture/part-*.pcap`.
fn part_files(night: &NightDir) -> Result<Vec<PathBuf>, NightError> {
    let cdir = night.capture_dir();
    let rd = match std::fs::read_dir(&cdir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(NightError::ListParts { path: cdir, source }),
    };
    let mut parts: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(layout::is_part_name)
        })
        .collect();
    parts.sort();
    Ok(parts)
}

/// What a night's `capture.json` says.
enum CaptureJson {
    Report(Box<CaptureReport>),
    /// Unreadable, and moved aside (now, with this warning, or by an earlier run): the
    /// capture is over (no capture holds the night's lock), its parts are converted.
    MovedAside(Option<String>),
    /// No capture.json: skipped, saying why.
    Absent(NightStatus),
}

/// The night's `capture.json`. One that does not parse is moved aside
/// (`capture.json.corrupt-<time>`) with a warning, and the night's parts are still
/// converted. Call only when no capture holds the night's lock.
fn read_capture_json(night: &NightDir) -> Result<CaptureJson, NightError> {
    let json = night.capture_json();
    // Bytes, not a string: a file that is not even UTF-8 is corrupt like any other.
    let text = match std::fs::read(&json) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if moved_aside_before(night) {
                return Ok(CaptureJson::MovedAside(None));
            }
            return Ok(CaptureJson::Absent(NightStatus::Skipped(format!(
                "{}: absent (not a night of `netdigest capture`), skipped",
                json.display()
            ))));
        }
        Err(source) => return Err(NightError::Io { path: json, source }),
    };
    match serde_json::from_slice(&text) {
        Ok(r) => Ok(CaptureJson::Report(Box::new(r))),
        Err(source) => match move_aside(&json) {
            Ok(aside) => Ok(CaptureJson::MovedAside(Some(format!(
                "{}: not a netdigest capture report ({source}); moved aside to {}, converting the night's parts without it",
                json.display(),
                aside.display()
            )))),
            Err(_) => Err(NightError::CaptureJson { path: json, source }),
        },
    }
}

/// True when an earlier run moved the night's corrupt `capture.json` aside.
fn moved_aside_before(night: &NightDir) -> bool {
    let prefix = format!("{}.corrupt-", layout::CAPTURE_JSON);
    std::fs::read_dir(night.capture_root()).is_ok_and(|rd| {
        rd.filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
    })
}

fn process_night(
    cfg: &Config,
    opts: &NightlyOptions,
    now: DateTime<Utc>,
    rep: &mut NightReport,
) -> Result<NightStatus, NightError> {
    let night = NightDir::new(rep.dir.clone());
    if let Some(busy) = lock::is_held(&night.capture_lock()).map_err(|source| NightError::Io {
        path: night.capture_lock(),
        source,
    })? {
        return Ok(NightStatus::Skipped(format!(
            "still capturing (a capture{} holds {}), skipped",
            busy.pid_note(),
            night.capture_lock().display()
        )));
    }
    match read_capture_json(&night)? {
        CaptureJson::Report(capture) => match capture_state(&capture, now) {
            CaptureState::Over => {}
            CaptureState::OverWith(w) => rep
                .warnings
                .push(format!("{}: {w}", night.capture_json().display())),
            CaptureState::NotOver(why) => return Ok(NightStatus::Skipped(why)),
        },
        CaptureJson::MovedAside(warning) => rep.warnings.extend(warning),
        CaptureJson::Absent(skipped) => return Ok(skipped),
    }

    // Mail's user may enter the night directory (not list it) to read its report/.
    std::fs::create_dir_all(night.path())
        .and_then(|()| crate::fsutil::share_dir(night.path(), 0o010))
        .map_err(|source| NightError::Io {
            path: night.path().to_path_buf(),
            source,
        })?;
    let parquet = night.packets_parquet();
    let summary_json = night.summary_json();
    let all_parts = part_files(&night)?;
    // A night converted before names.parquet and flows.parquet existed is converted again.
    let convert_done = !opts.force
        && !all_parts.is_empty()
        && up_to_date(&parquet, &all_parts)
        && up_to_date(&night.names_parquet(), &all_parts)
        && up_to_date(&night.flows_parquet(), &all_parts);
    let analyse_done = convert_done
        && up_to_date(&summary_json, std::slice::from_ref(&parquet))
        && pipeline::read_summary(night.path()).is_ok();
    // A report spooled before message.json existed is written again, so mail can send it.
    let report_done = analyse_done
        && up_to_date(&night.report_eml(), std::slice::from_ref(&summary_json))
        && ReportDir::new(night.report_dir()).message_json().is_file();
    if report_done {
        return Ok(NightStatus::UpToDate);
    }
    // A night that stopped nightly twice (the OOM killer at MemoryMax=, a crash) is left
    // alone, so that it cannot hold back every later night; --force tries it again.
    let attempts = night.nightly_attempts();
    let tried = started_attempts(&attempts);
    if tried >= MAX_UNFINISHED_ATTEMPTS && !opts.force {
        rep.errors.push(format!(
            "{}: nightly was stopped {tried} times while working on this night (out of memory?); \
             skipped so that the later nights go on: run `netdigest nightly --night {} --force` \
             to try again",
            attempts.display(),
            rep.night
        ));
        return Ok(NightStatus::Skipped(
            "left alone after repeated failures".into(),
        ));
    }
    write_atomic(&attempts, (tried + 1).to_string().as_bytes()).map_err(|source| {
        NightError::Io {
            path: attempts.clone(),
            source,
        }
    })?;
    let status = work_on_night(
        cfg,
        opts,
        &night,
        &all_parts,
        convert_done,
        analyse_done,
        rep,
    );
    // Finished, one way or the other: not a run that was killed.
    let _ = std::fs::remove_file(&attempts);
    status
}

/// Runs that started work on a night without finishing it before it is left alone.
const MAX_UNFINISHED_ATTEMPTS: u32 = 2;

/// The count in `<night>/nightly.attempts` (0 when absent or unreadable).
fn started_attempts(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// The stages a night still needs: convert (and everything after it), or analyse and
/// report, or report alone.
fn work_on_night(
    cfg: &Config,
    opts: &NightlyOptions,
    night: &NightDir,
    all_parts: &[PathBuf],
    convert_done: bool,
    analyse_done: bool,
    rep: &mut NightReport,
) -> Result<NightStatus, NightError> {
    if !convert_done {
        return convert_night(cfg, opts, night, all_parts, rep);
    }
    let mut stages = Vec::new();
    let (summary, drawn) = if analyse_done {
        let engines = crate::chart::Engines::start(pipeline::CHART_ENGINES);
        let s = pipeline::read_summary(night.path())?;
        let drawn = pipeline::draw_charts(&s, cfg, engines);
        (s, drawn)
    } else {
        stages.push(Stage::Analyse);
        // The chart renderers start while the night is analysed.
        let engines = crate::chart::Engines::start_alongside(pipeline::CHART_ENGINES);
        pipeline::analyse_night_drawing(night.path(), cfg, Some(&opts.state_dir), engines)?
    };
    stages.push(Stage::Report);
    pipeline::write_report_drawn(&summary, night.path(), cfg, drawn)?;
    Ok(NightStatus::Done {
        stages,
        headline: crate::report::headline(&summary),
    })
}

/// Every stage from the parts on: convert, analyse, report. Damage in a part is an error
/// line (a cut-short end a warning); the packets before it are still reported.
fn convert_night(
    cfg: &Config,
    opts: &NightlyOptions,
    night: &NightDir,
    all_parts: &[PathBuf],
    rep: &mut NightReport,
) -> Result<NightStatus, NightError> {
    let parts = usable_parts(all_parts, rep);
    if parts.is_empty() {
        if rep.errors.is_empty() {
            return Ok(NightStatus::Skipped(format!(
                "{}: no packets captured (no part files), nothing to report",
                night.capture_dir().display()
            )));
        }
        return Err(NightError::NoReadablePart);
    }
    check_space(night, &parts)?;
    let run_opts = RunOptions {
        state_dir: Some(opts.state_dir.clone()),
        csv: None,
        progress: false,
    };
    let outcome = pipeline::run(&parts, night.path(), cfg, &run_opts)?;
    rep.warnings
        .extend(outcome.convert.warnings.iter().cloned());
    for d in &outcome.convert.damage {
        let line = format!(
            "{}: {}; converted the {} {}",
            d.path.display(),
            d.message,
            d.frames_before,
            if d.truncation {
                "complete packets before it"
            } else {
                "packets before the damage"
            }
        );
        if d.truncation {
            rep.warnings.push(line);
        } else {
            rep.errors.push(line);
        }
    }
    Ok(NightStatus::Done {
        stages: vec![Stage::Convert, Stage::Analyse, Stage::Report],
        headline: crate::report::headline(&outcome.summary),
    })
}

/// Refuses a convert that would obviously not fit: the night's Parquet takes at least a
/// twentieth of its capture files (5 % with whole packets, 11 % at snaplen 192) and the
/// report about a MiB. Free space that cannot be read is no reason to refuse.
fn check_space(night: &NightDir, parts: &[PathBuf]) -> Result<(), NightError> {
    let parts_bytes: u64 = parts
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let need = parts_bytes / 20 + crate::disk::MIB;
    match crate::disk::space(night.path()) {
        Ok(space) if space.available < need => Err(NightError::NoSpace {
            path: night.path().to_path_buf(),
            need_mb: need.div_ceil(crate::disk::MIB),
            free_mb: space.available_mb(),
        }),
        _ => Ok(()),
    }
}

/// The parts that can be converted. A part too short to hold a file header is what a
/// power cut leaves when it strikes as a part is created: it holds no packet and is left
/// out with a warning. A part whose header is unusable is left out as an error.
fn usable_parts(parts: &[PathBuf], rep: &mut NightReport) -> Vec<PathBuf> {
    let mut ok = Vec::with_capacity(parts.len());
    for p in parts {
        let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        if len < PCAP_HEADER_LEN {
            rep.warnings.push(format!(
                "{}: {len} bytes, shorter than a capture file header: left out (no packets)",
                p.display()
            ));
            continue;
        }
        match CaptureReader::open(p) {
            Ok(_) => ok.push(p.clone()),
            Err(e) => rep.errors.push(format!(
                "{}: {e}; left out, the night's other parts are converted",
                p.display()
            )),
        }
    }
    ok
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn report(status: &str, end: &str, updated: &str) -> CaptureReport {
        let mut r = CaptureReport {
            // As capture.json spells it: a word netdigest does not write reads as Unknown.
            status: serde_json::from_value(serde_json::Value::from(status)).unwrap(),
            updated: updated.into(),
            ..CaptureReport::default()
        };
        r.window.end = end.into();
        r
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn which_captures_are_over() {
        let end = "2026-11-28T06:00:00.000+01:00";
        let now = t("2026-11-28T05:05:00Z"); // 06:05 local, 5 min after the end
        // (status, updated, now) -> ended?
        let cases = [
            ("complete", "2026-11-28T06:00:01+01:00", now, true),
            ("failed", "2026-11-28T03:00:00+01:00", now, true),
            // Rewritten seconds ago: alive (shutting down).
            ("running", "2026-11-28T06:04:40+01:00", now, false),
            // Not rewritten for hours and the window is over: died.
            ("running", "2026-11-28T02:00:00+01:00", now, true),
            // Stale but the window is not over yet: leave it to the capture.
            (
                "running",
                "2026-11-28T02:00:00+01:00",
                t("2026-11-28T04:00:00Z"),
                false,
            ),
            ("running", "garbage", now, false),
            ("paused", "2026-11-28T02:00:00+01:00", now, false),
        ];
        for (status, updated, now, ended) in cases {
            let got = capture_state(&report(status, end, updated), now);
            let over = !matches!(got, CaptureState::NotOver(_));
            assert_eq!(over, ended, "{status} {updated}: {got:?}");
        }
    }

    #[test]
    fn nights_are_listed_oldest_first() {
        let d = std::env::temp_dir().join(format!("netdigest-nightly-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        // Nights of the old layout (only in nights/), captured ones not converted yet
        // (only in capture/), and converted ones (both).
        let nights = layout::nights_dir(&d);
        let captures = layout::capture_tree(&d);
        for n in ["2026-11-28", "2026-11-02", "lost+found"] {
            std::fs::create_dir_all(nights.join(n)).unwrap();
        }
        for n in ["2026-11-28", "2025-12-31", "2026-12-01", "notes"] {
            std::fs::create_dir_all(captures.join(n)).unwrap();
        }
        std::fs::write(nights.join("2026-11-30"), b"a file").unwrap();
        let got: Vec<(String, PathBuf)> = list_nights(&d).unwrap();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["2025-12-31", "2026-11-02", "2026-11-28", "2026-12-01"]
        );
        assert!(got.iter().all(|(n, p)| *p == nights.join(n)), "{got:?}");
        assert!(list_nights(&d.join("absent")).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }
}

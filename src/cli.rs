//! The command line: clap derive, one subcommand per stage. Each command returns an
//! [`Exit`] (0 done, 1 failed, 2 usage or config error); an error that ends a command is
//! mapped by [`exit::of_error`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::convert::{self, ConvertOptions};
use crate::exit::{self, Exit};
use crate::layout::{self, NightDir, ReportDir};
use crate::logging::{self, LogFormat};
use crate::{capture, mail, nightly, pipeline, retention, units};

/// What happened on the home network overnight: capture, convert, analyse, report, mail.
#[derive(Debug, Parser)]
#[command(name = "netdigest", version, about, propagate_version = true)]
pub struct Cli {
    /// Config file (default /etc/netdigest/netdigest.toml).
    #[arg(long, global = true, env = "NETDIGEST_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Log format: text on stderr, json lines, or auto (journald under systemd).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Live capture for the configured window (or --for/--until); stops at its end or on SIGTERM/SIGINT.
    Capture {
        /// Capture for this long from now (10m, 1h, 30s) instead of the configured window.
        #[arg(long = "for", value_name = "DURATION", conflicts_with = "until",
              value_parser = |s: &str| s.parse::<config::Interval>().map(|i| std::time::Duration::from_secs(i.secs())))]
        duration: Option<std::time::Duration>,
        /// Capture from now until this local time (HH:MM, next occurrence).
        #[arg(long, value_name = "HH:MM", value_parser = |s: &str| s.parse::<config::TimeOfDay>())]
        until: Option<config::TimeOfDay>,
        /// Interface (overrides capture.interface; "any" for all).
        #[arg(long, value_name = "NAME")]
        interface: Option<String>,
        /// State directory (overrides state.dir).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
    },
    /// Convert pcap/pcapng files to Parquet and/or the seed's tshark CSV.
    ///
    /// Several files (rotated parts of one night) are read in order as one capture.
    Convert {
        /// Capture files (pcap or pcapng), in order.
        #[arg(required = true, value_name = "PCAP")]
        inputs: Vec<PathBuf>,
        /// Parquet output.
        #[arg(short, long, value_name = "OUT.parquet")]
        output: Option<PathBuf>,
        /// tshark-compatible CSV output (the seed's columns, RFC 4180 quoting).
        #[arg(long, value_name = "OUT.csv")]
        csv: Option<PathBuf>,
        /// The names the packets carry (DHCP, mDNS, DNS answers, TLS/QUIC server names,
        /// ...), one row per distinct name: names.parquet.
        #[arg(long, value_name = "OUT.parquet")]
        names: Option<PathBuf>,
        /// The connections (TCP, UDP: 5-tuple, first/last packet, packets and bytes each
        /// way, TCP state), one row per connection: flows.parquet.
        #[arg(long, value_name = "OUT.parquet")]
        flows: Option<PathBuf>,
        /// With --output: what analysis sums from every packet (the traffic per 5
        /// minutes, the pings, the ARP senders), summed as the packets stream:
        /// rollup.parquet. Analysis of a night directory reads it when it lies beside
        /// packets.parquet, and is faster for it.
        #[arg(long, value_name = "OUT.parquet", requires = "output")]
        rollup: Option<PathBuf>,
        /// No progress bar or progress log lines.
        #[arg(long)]
        no_progress: bool,
    },
    /// Write a synthetic night capture (Ethernet pcap) with realistic home-network traffic.
    Sample(SampleArgs),
    /// Convert, analyse and report captures into a night directory (DIR/packets.parquet,
    /// DIR/summary.json, DIR/report/{email.html, index.html, charts/, report.eml}).
    Run {
        /// Capture files of the night, in order.
        #[arg(long = "pcap", required = true, num_args = 1.., value_name = "PCAP")]
        pcap: Vec<PathBuf>,
        /// Night directory to write.
        #[arg(long, default_value = "report")]
        out: PathBuf,
        /// State directory for devices and history across nights (default: none, this night alone).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// No progress bar or progress log lines.
        #[arg(long)]
        no_progress: bool,
    },
    /// Analyse a night directory's packets.parquet into summary.json.
    Analyse {
        /// The night directory (holding packets.parquet).
        #[arg(long, value_name = "DIR")]
        night_dir: PathBuf,
        /// State directory for devices and history across nights.
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Then write the report too, as `netdigest report` does (in one process, as
        /// nightly does: the chart renderers start while the night is analysed).
        #[arg(long)]
        report: bool,
    },
    /// Render a night directory's summary.json into report/ (charts, email, page, report.eml).
    Report {
        /// The night directory (holding summary.json).
        #[arg(long, value_name = "DIR")]
        night_dir: PathBuf,
    },
    /// Send every unsent night's report (oldest first, up to mail.max_age_days), or a test message.
    Mail {
        /// Send a small test message instead (nothing is spooled).
        #[arg(long, conflicts_with_all = ["night", "night_dir"])]
        test: bool,
        /// Only this night (YYYY-MM-DD) under the state directory.
        #[arg(long, value_name = "DATE")]
        night: Option<String>,
        /// Only this night directory (as written by `run --out`).
        #[arg(long, value_name = "DIR", conflicts_with = "night")]
        night_dir: Option<PathBuf>,
    },
    /// Delete the nights past state.keep_nights that were mailed or given up, then convert,
    /// analyse and report every night whose capture has ended and whose outputs are not
    /// complete, oldest first (the nightly timer's job; safe to run again).
    Nightly {
        /// State directory (overrides state.dir).
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Only this night (YYYY-MM-DD).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_night)]
        night: Option<String>,
        /// Redo every stage, even those whose output is complete.
        #[arg(long)]
        force: bool,
    },
    /// Write the systemd services and timers for the configured schedule into DIR.
    Units {
        /// Directory to write the six unit files into (e.g. /etc/systemd/system).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The netdigest executable the units run (default: this one).
        #[arg(long, value_name = "PATH")]
        bin: Option<PathBuf>,
    },
    /// Check the set-up without sending anything: config, state directory, SMTP login.
    Doctor,
    /// Run the main job on a sample capture the program makes itself, into DIR.
    Demo {
        /// Output directory.
        #[arg(long, default_value = "netdigest-demo")]
        out: PathBuf,
    },
    /// Validate the configuration (file and NETDIGEST_* environment).
    CheckConfig,
    /// Print the effective configuration with the source of every value (secrets redacted).
    PrintConfig,
}

/// `netdigest sample`'s arguments.
#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    /// Output pcap file.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Number of packets (about).
    #[arg(long, default_value_t = 20_000)]
    packets: u64,
    /// Random seed (the same seed gives the same file).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The night's date: the window starts at 21:00 UTC that day (22:00 in Central
    /// Europe in winter). Default 2024-11-15.
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: Option<chrono::NaiveDate>,
}

/// Entry point used by `main.rs`.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Done
            }
            .into();
        }
    };
    let config_path = cli.config.clone().unwrap_or_else(Config::config_path);
    let verbosity =
        i8::try_from(cli.verbose).unwrap_or(i8::MAX) - i8::try_from(cli.quiet).unwrap_or(i8::MAX);
    logging::init(cli.log_format, verbosity);
    let result = run(cli.command, &config_path);
    if let Some(kb) = logging::peak_rss_kb() {
        tracing::debug!(peak_rss_kb = kb, "memory: peak resident set");
    }
    match result {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("netdigest: {}", one_line(&error_chain(&e)));
            exit::of_error(&e).into()
        }
    }
}

/// Messages are one line: join anything multi-line.
/// An error and its causes, joined with ": ", leaving out a cause whose text the message
/// already holds (our errors name the file and include their source's text, so
/// anyhow's `{:#}` would print it twice).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs one command. An error ends it with the exit status [`exit::of_error`] gives.
fn run(cmd: Command, config_path: &Path) -> anyhow::Result<Exit> {
    let load = || Config::load_from(config_path);
    match cmd {
        Command::Capture {
            duration,
            until,
            interface,
            state,
        } => {
            let opts = capture::CaptureOptions {
                duration,
                until,
                interface,
                state_dir: state,
                ..Default::default()
            };
            capture_command(&load()?, &opts)
        }
        Command::Convert {
            inputs,
            output,
            csv,
            names,
            flows,
            rollup,
            no_progress,
        } => convert_and_report(
            &inputs,
            &ConvertOptions {
                parquet: output,
                csv,
                names,
                flows,
                rollup,
                progress: !no_progress,
                ..Default::default()
            },
        ),
        Command::Sample(args) => sample(&args),
        Command::Run {
            pcap,
            out,
            state,
            no_progress,
        } => {
            let opts = pipeline::RunOptions {
                state_dir: state,
                csv: None,
                progress: !no_progress,
            };
            run_night(&pcap, &out, &load()?, &opts)
        }
        Command::Analyse {
            night_dir,
            state,
            report,
        } => analyse(&night_dir, &load()?, state.as_deref(), report),
        Command::Report { night_dir } => {
            let s = pipeline::read_summary(&night_dir)?;
            let eml = pipeline::write_report(&s, &night_dir, &load()?)?;
            println!("message: {}", eml.display());
            Ok(Exit::Done)
        }
        Command::Mail {
            test,
            night,
            night_dir,
        } => mail_command(&load()?, test, night, night_dir),
        Command::Nightly {
            state,
            night,
            force,
        } => {
            let cfg = load()?;
            let opts = nightly::NightlyOptions {
                state_dir: state.unwrap_or_else(|| cfg.state.dir.clone()),
                night,
                force,
            };
            let now = chrono::Utc::now();
            // Retention first: a nearly full disk gets room for tonight's report. A night
            // is deleted only once mailed or given up, never one nightly still has to do.
            let pruned = if opts.night.is_none() {
                print_pruned(&prune_tree(&cfg, &opts.state_dir, retention::Tree::Nights))
            } else {
                Exit::Done
            };
            let reports = nightly::run_nightly(&cfg, &opts, now)?;
            Ok(print_nightly(&reports).and(pruned))
        }
        Command::Units { out, bin } => write_units(&load()?, &out, bin),
        Command::Doctor => doctor(config_path),
        Command::Demo { out } => demo(&out, &load()?),
        Command::CheckConfig => check_config(&load()?, config_path),
        Command::PrintConfig => {
            load()?;
            print_config(config_path)
        }
    }
}

/// `netdigest capture`: the error of a capture that could not run is printed as one line.
fn capture_command(cfg: &Config, opts: &capture::CaptureOptions) -> anyhow::Result<Exit> {
    let stop = capture::StopFlag::on_signals().context("installing signal handlers")?;
    // Capture's own old nights first (room for tonight); a failure there is logged by
    // retention and does not stop tonight's capture.
    let state = opts.state_dir.as_ref().unwrap_or(&cfg.state.dir);
    let _ = print_pruned(&prune_tree(cfg, state, retention::Tree::Capture));
    capture::run_capture(cfg, opts, &stop)?;
    Ok(Exit::Done)
}

/// `netdigest analyse`: the night's summary, and its report when asked (the chart
/// renderers then start while the night is analysed).
fn analyse(
    night_dir: &Path,
    cfg: &Config,
    state: Option<&Path>,
    report: bool,
) -> anyhow::Result<Exit> {
    if !report {
        let s = pipeline::analyse_night(night_dir, cfg, state)?;
        println!("night {}: {}", s.night, crate::report::headline(&s));
        return Ok(Exit::Done);
    }
    let engines = crate::chart::Engines::start_alongside(pipeline::CHART_ENGINES);
    let (s, drawn) = pipeline::analyse_night_drawing(night_dir, cfg, state, engines)?;
    println!("night {}: {}", s.night, crate::report::headline(&s));
    let eml = pipeline::write_report_drawn(&s, night_dir, cfg, drawn)?;
    println!("message: {}", eml.display());
    Ok(Exit::Done)
}

/// `netdigest sample`: a synthetic night of about `packets` packets.
fn sample(args: &SampleArgs) -> anyhow::Result<Exit> {
    let SampleArgs {
        output,
        packets,
        seed,
        date,
    } = args;
    let (output, packets, seed) = (output.as_path(), *packets, *seed);
    let demo = synth::NightSpec::demo();
    let start_ts_ns = match *date {
        Some(d) => d
            .and_hms_opt(21, 0, 0)
            .and_then(|t| t.and_utc().timestamp_nanos_opt())
            .with_context(|| format!("{d}: not a date a capture can have"))?,
        None => demo.start_ts_ns,
    };
    let spec = synth::NightSpec {
        packets,
        seed,
        start_ts_ns,
        ..demo
    };
    let truth = synth::write_night_file(output, &spec)
        .with_context(|| format!("{}: writing sample capture", output.display()))?;
    tracing::info!(
        "wrote {} packets ({} bytes) to {}",
        truth.frames,
        truth.bytes,
        output.display()
    );
    Ok(Exit::Done)
}

/// `netdigest units`: the six unit files for the configured schedule.
fn write_units(cfg: &Config, out: &Path, bin: Option<PathBuf>) -> anyhow::Result<Exit> {
    let bin =
        match bin {
            Some(b) => std::path::absolute(&b)
                .with_context(|| format!("{}: resolving --bin", b.display()))?,
            None => std::env::current_exe()
                .context("finding this executable's path (give --bin PATH)")?,
        };
    let files = units::render(cfg, &bin)?;
    for p in units::write(out, &files)? {
        println!("wrote {}", p.display());
    }
    Ok(Exit::Done)
}

/// `netdigest check-config`: the config loaded (every typed value parsed); the capture
/// filter is compiled by libpcap as well.
fn check_config(cfg: &Config, config_path: &Path) -> anyhow::Result<Exit> {
    capture::validate_filter(&cfg.capture.filter, &cfg.capture.interface)?;
    let file = if config_path.exists() {
        config_path.display().to_string()
    } else {
        format!(
            "{} (absent: defaults and environment only)",
            config_path.display()
        )
    };
    warn_state_size(cfg);
    println!("config OK: {file}");
    Ok(Exit::Done)
}

/// A warning (not an error) when the state directory may outgrow its filesystem: the
/// nights kept times `capture.max_disk_mb`, plus `capture.min_free_mb`, against its size
/// (that of `state.dir`, or of its parent before it is created; else no check: at build
/// time in a sandbox, the disk is another machine's).
fn warn_state_size(cfg: &Config) {
    let bound = retention::state_bound_mb(cfg);
    let need = bound.saturating_add(cfg.capture.min_free_mb);
    match crate::disk::space_for(&cfg.state.dir) {
        Ok((at, space)) if need > space.total_mb() => tracing::warn!(
            "state.dir {}: up to {} nights (state.keep_nights {}, mail.max_age_days {}, and \
             tonight) of capture.max_disk_mb {} MiB with their reports take {bound} MiB, plus \
             capture.min_free_mb {} MiB, more than the {} MiB filesystem of {}: the disk floor \
             will cut nights short; lower capture.max_disk_mb or state.keep_nights",
            cfg.state.dir.display(),
            retention::nights_on_disk(retention::Policy::from_config(cfg)),
            cfg.state.keep_nights,
            cfg.mail.max_age_days,
            cfg.capture.max_disk_mb,
            cfg.capture.min_free_mb,
            space.total_mb(),
            at.display()
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!("{}: size unknown: {e}", cfg.state.dir.display()),
    }
}

/// `netdigest print-config`: every key, its value and where it came from.
fn print_config(config_path: &Path) -> anyhow::Result<Exit> {
    let lines = config::sourced_values(&Config::figment_with_file(config_path))?;
    let width = lines
        .iter()
        .map(|l| l.key.len() + l.value.len() + 3)
        .max()
        .unwrap_or(0);
    for l in lines {
        let kv = format!("{} = {}", l.key, l.value);
        println!("{kv:width$}  # {}", l.source);
    }
    Ok(Exit::Done)
}

/// Runs a conversion and reports it: warnings for a file cut short, an error line and
/// exit 1 for corruption (the frames before it are still written).
fn convert_and_report(inputs: &[PathBuf], opts: &ConvertOptions) -> anyhow::Result<Exit> {
    if opts.parquet.is_none() && opts.csv.is_none() && opts.names.is_none() && opts.flows.is_none()
    {
        bail!(
            "convert: nothing to write: give -o OUT.parquet, --csv OUT.csv, --names OUT.parquet and/or --flows OUT.parquet"
        );
    }
    let summary = convert::convert(inputs, opts)?;
    let outputs: Vec<PathBuf> = [&opts.parquet, &opts.csv, &opts.names, &opts.flows]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    Ok(report_conversion(inputs, &summary, &outputs))
}

/// Logs a conversion's account; exit 1 when some input was corrupt in the middle.
fn report_conversion(
    inputs: &[PathBuf],
    summary: &convert::ConvertSummary,
    outputs: &[PathBuf],
) -> Exit {
    for w in &summary.warnings {
        tracing::warn!("{w}");
    }
    for (link, n) in &summary.undecoded_by_link {
        tracing::warn!(
            "{n} frames of link type {} are not decoded (kept with frame-level fields only)",
            crate::linktype::LinkType(*link)
        );
    }
    let outputs: Vec<String> = outputs.iter().map(|p| p.display().to_string()).collect();
    tracing::info!(
        "converted {} packets ({} bytes) from {} file(s) to {}{}",
        summary.frames,
        summary.bytes,
        inputs.len(),
        outputs.join(" and "),
        if summary.decode_errors > 0 {
            format!(
                "; {} frames malformed or cut short (decode_error set)",
                summary.decode_errors
            )
        } else {
            String::new()
        }
    );
    let mut code = Exit::Done;
    for d in &summary.damage {
        if d.truncation {
            tracing::warn!(
                "{}: {}; converted the {} complete packets before it",
                d.path.display(),
                d.message,
                d.frames_before
            );
        } else {
            eprintln!(
                "netdigest: {}: {}; converted the {} packets before the damage",
                d.path.display(),
                one_line(&d.message),
                d.frames_before
            );
            code = Exit::Failed;
        }
    }
    code
}

/// `netdigest mail`: exit 1 when a night could not be sent (it stays spooled), 2 for a
/// mail config error.
fn mail_command(
    cfg: &Config,
    test: bool,
    night: Option<String>,
    night_dir: Option<PathBuf>,
) -> anyhow::Result<Exit> {
    let settings = mail::Settings::from_config(&cfg.mail)?;
    if test {
        let d = mail::send_test(&settings)?;
        println!(
            "test message sent via {} ({}), Message-ID {}",
            d.server, d.reply, d.message_id
        );
        return Ok(Exit::Done);
    }
    let outcomes = match (night, night_dir) {
        (_, Some(dir)) => vec![mail::send_night(&dir, &settings)],
        (Some(n), None) => vec![mail::send_night(
            NightDir::named(&cfg.state.dir, &n).path(),
            &settings,
        )],
        (None, None) => {
            let outcomes = mail::send_pending(&cfg.state.dir, &settings, chrono::Utc::now())?;
            // Then mail's own records of nights nightly has deleted.
            let pruned = print_pruned(&prune_tree(cfg, &cfg.state.dir, retention::Tree::Mail));
            return Ok(print_mail_outcomes(&outcomes).and(pruned));
        }
    };
    Ok(print_mail_outcomes(&outcomes))
}

fn print_mail_outcomes(outcomes: &[mail::Outcome]) -> Exit {
    for o in outcomes {
        match o {
            mail::Outcome::AlreadySent { .. } | mail::Outcome::NoReport { .. } => {
                tracing::debug!("{o}")
            }
            _ => println!("{o}"),
        }
    }
    match mail::first_failure(outcomes) {
        Some(e) => {
            eprintln!("netdigest: {}", one_line(&e.to_string()));
            Exit::Failed
        }
        None => Exit::Done,
    }
}

/// A night name for `--night`: a date `YYYY-MM-DD`.
fn parse_night(s: &str) -> Result<String, String> {
    layout::parse_night_name(s)
        .map(|_| s.to_string())
        .ok_or_else(|| format!("{s:?} is not a night date YYYY-MM-DD"))
}

/// `netdigest nightly`'s account: a line on stdout per night processed, log lines for
/// the rest, one error line per failure; exit 1 when some night failed.
fn print_nightly(reports: &[nightly::NightReport]) -> Exit {
    let mut code = Exit::Done;
    let mut worked = false;
    for r in reports {
        for w in &r.warnings {
            tracing::warn!("night {}: {}", r.night, one_line(w));
        }
        match &r.status {
            Ok(nightly::NightStatus::Skipped(why)) => {
                tracing::info!("night {}: {}", r.night, one_line(why));
            }
            Ok(nightly::NightStatus::UpToDate) => {
                tracing::debug!("night {}: up to date", r.night);
            }
            Ok(nightly::NightStatus::Done { stages, headline }) => {
                worked = true;
                let stages: Vec<String> = stages.iter().map(ToString::to_string).collect();
                println!("night {}: {}: {headline}", r.night, stages.join(", "));
            }
            Err(e) => eprintln!("netdigest: night {}: {}", r.night, one_line(&e.to_string())),
        }
        for e in &r.errors {
            eprintln!("netdigest: night {}: {}", r.night, one_line(e));
        }
        if r.failed() {
            code = Exit::Failed;
        }
    }
    if !worked && code == Exit::Done {
        tracing::info!("nightly: nothing to do ({} night(s) seen)", reports.len());
    }
    code
}

/// Retention of one stage's tree under `state`, today being the local date (as mail
/// counts a night's age).
fn prune_tree(cfg: &Config, state: &Path, tree: retention::Tree) -> retention::Pruned {
    let today = chrono::Local::now().date_naive();
    retention::prune_tree(state, tree, retention::Policy::from_config(cfg), today)
}

/// Retention's account (each deletion is logged by [`retention::prune`]): one error line
/// per night that could not be deleted, and exit 1 then.
fn print_pruned(p: &retention::Pruned) -> Exit {
    for e in &p.errors {
        eprintln!("netdigest: retention: {}", one_line(e));
    }
    Exit::from_ok(p.errors.is_empty())
}

/// `netdigest doctor`: each check on one line, exit 1 when one fails.
fn doctor(config_path: &Path) -> anyhow::Result<Exit> {
    let cfg = match Config::load_from(config_path) {
        Ok(c) => {
            println!("ok    config: {}", config_path.display());
            c
        }
        Err(e) => {
            println!("FAIL  config: {}", one_line(&e.to_string()));
            return Ok(Exit::Usage);
        }
    };
    let state_ok = doctor_state_dir(&cfg.state.dir);
    let mail_ok = doctor_mail(&cfg);
    Ok(Exit::from_ok(state_ok && mail_ok))
}

fn doctor_state_dir(state: &Path) -> bool {
    let probe = state.join(".netdigest-doctor");
    match std::fs::create_dir_all(state).and_then(|()| std::fs::write(&probe, b"ok")) {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            println!("ok    state directory {} is writable", state.display());
            true
        }
        Err(e) => {
            println!(
                "FAIL  state directory {}: {e} (set state.dir or NETDIGEST_STATE__DIR)",
                state.display()
            );
            false
        }
    }
}

fn doctor_mail(cfg: &Config) -> bool {
    if cfg.mail.to.is_empty() {
        println!("skip  mail: mail.to is not set; reports are kept as report.eml");
        return true;
    }
    match mail::Settings::from_config(&cfg.mail).and_then(|s| mail::check_login(&s)) {
        Ok(c) => {
            println!("ok    mail: {c}");
            true
        }
        Err(e) => {
            println!("FAIL  mail: {}", one_line(&e.to_string()));
            false
        }
    }
}

/// Runs the pipeline on a night and says what it wrote; damage is reported as by `convert`.
fn run_night(
    inputs: &[PathBuf],
    out: &Path,
    cfg: &Config,
    opts: &pipeline::RunOptions,
) -> anyhow::Result<Exit> {
    let outcome = pipeline::run(inputs, out, cfg, opts)?;
    let night = NightDir::new(outcome.night_dir.clone());
    let code = report_conversion(inputs, &outcome.convert, &[night.packets_parquet()]);
    let s = &outcome.summary;
    println!("night {}: {}", s.night, crate::report::headline(s));
    println!(
        "report: {}",
        ReportDir::new(night.report_dir()).email_html().display()
    );
    println!("message: {}", outcome.eml.display());
    if cfg.mail.to.is_empty() {
        return Ok(code);
    }
    // Mail configured: send this night now (it stays spooled if that fails).
    let settings = mail::Settings::from_config(&cfg.mail)?;
    let sent = print_mail_outcomes(&[mail::send_night(night.path(), &settings)]);
    Ok(code.and(sent))
}

/// The main job on an embedded default: a sample night the program makes itself, run
/// through the whole pipeline. With no SMTP server configured the message stays a `.eml`.
fn demo(out: &Path, cfg: &Config) -> anyhow::Result<Exit> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: creating directory", out.display()))?;
    let pcap = out.join("sample-night.pcap");
    let truth = synth::write_night_file(&pcap, &synth::NightSpec::demo())
        .with_context(|| format!("{}: writing sample capture", pcap.display()))?;
    tracing::info!(
        "demo: wrote a sample night of {} packets to {}",
        truth.frames,
        pcap.display()
    );
    let csv = out.join("packets.csv");
    // The sample night is a home in Central Europe; its own addresses are the appliance's.
    let mut cfg = cfg.clone();
    cfg.report.own_addresses.clone_from(&truth.own_addresses);
    cfg.capture
        .timezone
        .get_or_insert(config::ZoneName(chrono_tz::Europe::Berlin));
    let opts = pipeline::RunOptions {
        state_dir: None,
        csv: Some(csv.clone()),
        progress: true,
    };
    let code = run_night(&[pcap], out, &cfg, &opts)?;
    println!("demo: tshark-style CSV: {}", csv.display());
    Ok(code)
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_chain_prints_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = anyhow::Error::new(crate::convert::ConvertError::Output {
            path: "/x/packets.parquet".into(),
            source: io,
        })
        .context("writing the night");
        assert_eq!(
            super::error_chain(&e),
            "writing the night: /x/packets.parquet: No such file or directory"
        );
        let plain = anyhow::anyhow!("outer").context("ctx");
        assert_eq!(super::error_chain(&plain), "ctx: outer");
    }
}

//! Logs: journald when its socket exists (under systemd), otherwise stderr;
//! `--log-format json` for machines. Level from `--verbose`/`--quiet` or
//! `NETDIGEST_LOG` (an `EnvFilter` directive such as `netdigest=debug`).

use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
    /// journald when its socket exists, else text on stderr.
    Auto,
}

const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";

/// True when stderr is connected to the journal (systemd sets `JOURNAL_STREAM`).
#[must_use]
pub fn under_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some() && Path::new(JOURNALD_SOCKET).exists()
}

/// Installs the global subscriber. `verbosity`: 0 = info, 1 = debug, 2+ = trace, -1 = warn, -2 = error.
pub fn init(format: LogFormat, verbosity: i8) {
    let default = match verbosity {
        i8::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter =
        EnvFilter::try_from_env("NETDIGEST_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let registry = tracing_subscriber::registry().with(filter);
    let use_journald = match format {
        LogFormat::Auto => under_journal(),
        LogFormat::Text | LogFormat::Json => false,
    };
    if use_journald {
        // tracing_journald::layer() fails when the socket is absent; fall back to stderr.
        if let Ok(layer) = tracing_journald::layer() {
            let _ = registry
                .with(layer.with_syslog_identifier("netdigest".into()))
                .try_init();
            return;
        }
    }
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text | LogFormat::Auto => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_target(false)
                    .without_time()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// Times the steps of a stage in debug lines `"{stage}: {step}"`, each with the
/// milliseconds since this call and the peak memory so far:
/// `let lap = laps("analyse"); ...; lap("devices");`.
pub fn laps(stage: &'static str) -> impl Fn(&str) {
    let t = std::time::Instant::now();
    move |step| {
        tracing::debug!(
            ms = t.elapsed().as_millis(),
            peak_rss_kb = peak_rss_kb(),
            "{stage}: {step}"
        );
    }
}

/// This process's peak resident memory in kB (`VmHWM` of /proc/self/status), on Linux.
#[must_use]
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

//! Progress of a conversion: a bar on a terminal, log lines otherwise.

use std::time::{Duration, Instant};

/// Progress: a bar on a terminal, log lines every 10 s otherwise.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    log: bool,
    start: Instant,
    last_log: std::cell::Cell<Instant>,
    total: u64,
}

impl Progress {
    pub(super) fn new(enabled: bool, total: u64) -> Self {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = (enabled && tty).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {binary_bytes}/{binary_total_bytes} {msg} (eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            log: enabled && !tty,
            start: Instant::now(),
            last_log: std::cell::Cell::new(Instant::now()),
            total,
        }
    }

    pub(super) fn update(&self, bytes: u64, frames: u64) {
        let elapsed = self.start.elapsed().as_secs_f64().max(1e-9);
        #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
        let pps = frames as f64 / elapsed;
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            bar.set_message(format!("{frames} packets, {pps:.0} pkt/s"));
        } else if self.log && self.last_log.get().elapsed() >= Duration::from_secs(10) {
            self.last_log.set(Instant::now());
            tracing::info!(
                "converting: {} of {} MiB read, {frames} packets, {pps:.0} packets/s",
                bytes >> 20,
                self.total >> 20
            );
        }
    }

    pub(super) fn finish(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            bar.finish_and_clear();
        }
    }
}

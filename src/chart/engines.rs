//! Chart renderers started ahead of the charts: each on a thread of its own (QuickJS is
//! single-threaded; starting one with ECharts takes 10-16 ms), the fonts loaded once
//! meanwhile, so a night's analysis runs while they start and its charts are drawn
//! as soon as the summary is there.
//!
//! Invariants: every chart [`Engines::queue`]d gets an image or an error, at the
//! place given; a renderer that failed to start answers each chart with
//! that error; the threads end when the engines are dropped or their charts are done
//! (each frees its renderer then, off the caller's path).

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use super::{ChartError, ChartRenderer, Fonts};

/// One chart to draw: its place in the answer, its ECharts option (`Chart`'s Display),
/// width, height, JPEG quality.
struct Job {
    index: usize,
    option: String,
    size: (u32, u32),
    quality: u8,
}

type Answer = (usize, Result<Vec<u8>, ChartError>);

/// Chart renderers starting or started, waiting for charts.
pub struct Engines {
    jobs: Option<mpsc::Sender<Job>>,
    answers: mpsc::Receiver<Answer>,
}

impl Engines {
    /// Starts one renderer per core (at most `max`), each on its own thread.
    #[must_use]
    pub fn start(max: usize) -> Self {
        Self::with_threads(cores().clamp(1, max.max(1)))
    }

    /// [`Engines::start`] for charts drawn while the night is analysed: one renderer
    /// per core but one (at least one), leaving a core to the analysis that the charts
    /// wait for anyway. On two cores, two renderers beside the analysis had the report
    /// done 15-20 ms later than one: each started and drew slower, and slowed the
    /// analysis.
    #[must_use]
    pub fn start_alongside(max: usize) -> Self {
        Self::with_threads(cores().saturating_sub(1).clamp(1, max.max(1)))
    }

    fn with_threads(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let (answer, answers) = mpsc::channel::<Answer>();
        let fonts: Arc<OnceLock<Result<Fonts, String>>> = Arc::new(OnceLock::new());
        for n in 0..threads {
            let (queue, answer, fonts) = (Arc::clone(&queue), answer.clone(), Arc::clone(&fonts));
            let spawned = std::thread::Builder::new()
                .name(format!("chart-{n}"))
                .spawn(move || {
                    // The first thread loads the fonts before its engine; the others
                    // start their engines meanwhile and wait for the fonts after.
                    if n == 0 {
                        let _ = fonts.set(Fonts::load().map_err(|e| e.to_string()));
                    }
                    let renderer = ChartRenderer::with_fonts(|| {
                        fonts.wait().clone().map_err(ChartError::Engine)
                    });
                    serve(&renderer, &queue, &answer);
                });
            if let Err(e) = spawned {
                tracing::warn!("charts: no thread for a renderer: {e}");
            }
        }
        Engines {
            jobs: Some(jobs),
            answers,
        }
    }

    /// Hands some of the charts to the renderers, each with its place among all of them
    /// (`(place, (option, width, height, JPEG quality))`, the option serialised as
    /// `Chart`'s Display), biggest option first; returns at once. More can be queued
    /// until [`Engines::drawing`].
    pub fn queue(&mut self, mut charts: Vec<(usize, (String, u32, u32, u8))>) {
        charts.sort_by_key(|(_, (option, ..))| std::cmp::Reverse(option.len()));
        let Some(jobs) = &self.jobs else {
            return;
        };
        for (index, (option, w, h, quality)) in charts {
            let job = Job {
                index,
                option,
                size: (w, h),
                quality,
            };
            if jobs.send(job).is_err() {
                break;
            }
        }
    }

    /// The charts queued, `n` in all (places `0..n`), being drawn; no more can be
    /// queued (each thread ends once the queue is empty). A place no chart was queued
    /// for is answered with an error.
    #[must_use]
    pub fn drawing(mut self, n: usize) -> Drawing {
        self.jobs = None;
        Drawing {
            n,
            answers: self.answers,
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Charts queued on the renderers ([`Engines::queue`]), being drawn.
pub struct Drawing {
    n: usize,
    answers: mpsc::Receiver<Answer>,
}

impl Drawing {
    /// For each place, its chart's image or why it could not be drawn.
    #[must_use]
    pub fn wait(self) -> Vec<Result<Vec<u8>, ChartError>> {
        let mut out: Vec<Option<Result<Vec<u8>, ChartError>>> = (0..self.n).map(|_| None).collect();
        for _ in 0..self.n {
            let Ok((i, r)) = self.answers.recv() else {
                break;
            };
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(r);
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ChartError::Engine(
                        "a chart renderer stopped before drawing its chart".into(),
                    ))
                })
            })
            .collect()
    }
}

/// Draws the queue's charts until it is closed.
fn serve(
    renderer: &Result<ChartRenderer, ChartError>,
    queue: &Mutex<mpsc::Receiver<Job>>,
    answer: &mpsc::Sender<Answer>,
) {
    loop {
        let job = match queue.lock() {
            Ok(q) => q.recv(),
            Err(p) => p.into_inner().recv(),
        };
        let Ok(job) = job else {
            return;
        };
        let t = std::time::Instant::now();
        let r = match renderer {
            Ok(r) => r.option_jpeg(&job.option, job.size.0, job.size.1, job.quality),
            Err(e) => Err(ChartError::Engine(e.to_string())),
        };
        tracing::debug!(
            ms = t.elapsed().as_millis(),
            index = job.index,
            "charts: rendered"
        );
        if answer.send((job.index, r)).is_err() {
            return;
        }
    }
}

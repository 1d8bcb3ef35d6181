//! Stats: the live progress display.
//!
//! Input: [`Progress`] snapshots (cumulative, so a lost one costs nothing). On a terminal it
//! draws a status line (indicatif) with events/s, pending, rows flushed, files and lag;
//! otherwise it logs one structured line every few seconds. The final summary is assembled by
//! the pipeline driver from the actors' own replies, not from here.

use std::time::{Duration, Instant};

use actix::prelude::*;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::messages::Progress;

/// Interval between log lines when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Snapshot {
    published: u64,
    consumed: u64,
    rows: u64,
    files: u64,
    committed_offsets: u64,
    high: u64,
    restarts: u32,
}

pub struct Stats {
    now: Snapshot,
    bar: Option<ProgressBar>,
    last: (Instant, u64),
    last_log: Instant,
    /// Whether a sink runs (otherwise only publishing figures are shown).
    with_sink: bool,
}

impl Stats {
    pub fn new(terminal: bool, with_sink: bool) -> Self {
        let bar = terminal.then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .expect("valid template"),
            );
            b
        });
        Stats {
            now: Snapshot::default(),
            bar,
            last: (Instant::now(), 0),
            last_log: Instant::now(),
            with_sink,
        }
    }

    fn render(&mut self) {
        let (t0, p0) = self.last;
        let dt = t0.elapsed().as_secs_f64().max(1e-3);
        let rate = (self.now.published.saturating_sub(p0)) as f64 / dt;
        self.last = (Instant::now(), self.now.published);
        let s = &self.now;
        let lag = s.high.saturating_sub(s.committed_offsets);
        // Published in this run but not yet durable in the lake.
        let pending = s.published.saturating_sub(s.rows);
        if let Some(bar) = &self.bar {
            let msg = if self.with_sink {
                format!(
                    "{rate:>10.0} ev/s | published {} | pending {pending} | rows {} | files {} | lag {lag} | restarts {}",
                    s.published, s.rows, s.files, s.restarts
                )
            } else {
                format!("{rate:>10.0} ev/s | published {}", s.published)
            };
            bar.set_message(msg);
            bar.tick();
        } else if self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            tracing::info!(
                events_per_s = rate as u64,
                published = s.published,
                consumed = s.consumed,
                rows = s.rows,
                files = s.files,
                lag,
                restarts = s.restarts,
                "progress"
            );
        }
    }
}

impl Actor for Stats {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(Duration::from_millis(500), |act, _| act.render());
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Handler<Progress> for Stats {
    type Result = ();

    fn handle(&mut self, msg: Progress, _ctx: &mut Self::Context) {
        match msg {
            Progress::Published(c) => self.now.published = c.published,
            Progress::Consumed(c) => self.now.consumed = c.consumed,
            Progress::Committed {
                rows,
                files,
                offsets,
            } => {
                self.now.rows = rows;
                self.now.files = files;
                self.now.committed_offsets = offsets;
            }
            Progress::HighWatermarks(h) => self.now.high = h,
            Progress::Restarts(r) => self.now.restarts = r,
        }
    }
}

/// Stops the progress display (clears the status line before the summary prints).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Finish;

impl Handler<Finish> for Stats {
    type Result = ();

    fn handle(&mut self, _: Finish, ctx: &mut Self::Context) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        ctx.stop();
    }
}

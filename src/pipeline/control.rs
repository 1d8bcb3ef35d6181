//! The run's control: its threads (arbiters), the supervisor and progress display, and the
//! triggers that stop it (signals, `--duration`).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::actors::stats::{Finish, Stats};
use crate::actors::supervisor::Supervisor;
use crate::config::RunOptions;
use crate::messages::{GetRestarts, StopReason, StopRun};

use super::drain::DrainError;

/// One arbiter per stage, plus the listener workers.
pub(super) struct Arbiters {
    pub publish: Arbiter,
    pub sink: Arbiter,
    pub flush: Arbiter,
    /// The Kafka consumer: its poll blocks, so it gets a thread of its own.
    pub consume: Arbiter,
    pub workers: Vec<Arbiter>,
}

impl Arbiters {
    pub fn new(workers: usize) -> Self {
        Arbiters {
            publish: Arbiter::new(),
            sink: Arbiter::new(),
            flush: Arbiter::new(),
            consume: Arbiter::new(),
            workers: (0..workers.max(1)).map(|_| Arbiter::new()).collect(),
        }
    }

    /// Stops every arbiter, then waits for all: each drops its actors (a client's threads
    /// joined, buffers freed) at the same time as the others, not in turn (~60 ms of a
    /// sink's end, measured).
    pub fn stop(self) {
        let all: Vec<Arbiter> = [self.publish, self.sink, self.flush, self.consume]
            .into_iter()
            .chain(self.workers)
            .collect();
        for a in &all {
            a.stop();
        }
        for a in all {
            let _ = a.join();
        }
    }
}

/// The progress display (when asked for), the supervisor, and the channel on which the run
/// learns why it must stop.
pub(super) struct Control {
    pub started: Instant,
    pub stats: Option<Addr<Stats>>,
    pub supervisor: Addr<Supervisor>,
    pub stops: mpsc::UnboundedReceiver<StopReason>,
    pub arbiters: Arbiters,
}

impl Control {
    /// `budget` restarts within `window` before a failing stage stops the run; `sink` says
    /// whether the display shows the sink's side.
    pub fn start(
        opts: RunOptions,
        (budget, window): (u32, Duration),
        workers: usize,
        sink: bool,
    ) -> Self {
        let started = Instant::now();
        let stats = opts
            .progress
            .then(|| Stats::new(std::io::stderr().is_terminal(), sink).start());
        let (stop_tx, stops) = mpsc::unbounded_channel();
        let supervisor = Supervisor::new(budget, window, stop_tx, stats.clone()).start();
        if opts.handle_signals {
            watch_signals(supervisor.clone());
        }
        Control {
            started,
            stats,
            supervisor,
            stops,
            arbiters: Arbiters::new(workers),
        }
    }

    /// Stops the run with `StopReason::Duration` after `d`.
    pub fn arm_duration(&self, d: Option<Duration>) {
        if let Some(d) = d {
            let s = self.supervisor.clone();
            actix::spawn(async move {
                tokio::time::sleep(d).await;
                s.do_send(StopRun {
                    reason: StopReason::Duration,
                });
            });
        }
    }

    /// The first reason to stop.
    pub async fn wait(&mut self) -> StopReason {
        let reason = self.stops.recv().await.unwrap_or(StopReason::Duration);
        tracing::debug!(reason = %super::summary::describe(&reason), "draining");
        reason
    }

    /// Awaits `fut` unless a fatal stop reason arrives first.
    pub async fn unless_fatal<T>(
        &mut self,
        fut: impl std::future::Future<Output = Result<T, DrainError>>,
    ) -> Result<T, DrainError> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                v = &mut fut => return v,
                r = self.stops.recv() => match r {
                    Some(StopReason::Fatal(e)) => return Err(DrainError::Fatal(e)),
                    Some(_) => continue,
                    None => return fut.await,
                },
            }
        }
    }

    /// Finishes the progress display; the restarts the supervisor counted.
    pub async fn finish_display(&self) -> u32 {
        let restarts = self.supervisor.send(GetRestarts).await.unwrap_or(0);
        if let Some(s) = &self.stats {
            let _ = s.send(Finish).await;
        }
        restarts
    }
}

/// Spawns the signal handler: the first SIGINT/SIGTERM drains, a second aborts.
fn watch_signals(supervisor: Addr<Supervisor>) {
    use tokio::signal::unix::{SignalKind, signal};
    actix::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!("cannot install signal handlers");
            return;
        };
        let mut seen = 0;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            seen += 1;
            if seen == 1 {
                crate::say!("encore: {name} received: draining (send it again to abort)");
                supervisor.do_send(StopRun {
                    reason: StopReason::Signal(name),
                });
            } else {
                crate::say!("encore: second {name}: aborting without draining");
                std::process::exit(130);
            }
        }
    });
}

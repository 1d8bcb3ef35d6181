//! Supervisor: counts failures against the restart budget and decides when the run ends.
//!
//! Inputs: [`ActorFailed`] (an actor failed and is being restarted by actix's `Supervisor`
//! with the caller retrying after backoff), [`StopRun`], [`GetRestarts`]. More than `budget`
//! failures within `window` turn into a fatal [`StopReason`]. Output: stop reasons on a channel
//! read by the pipeline driver, which runs the shutdown sequence.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::messages::{ActorFailed, GetRestarts, Progress, StopReason, StopRun};

use super::stats::Stats;

pub struct Supervisor {
    budget: u32,
    window: Duration,
    recent: VecDeque<Instant>,
    restarts: u32,
    stop: mpsc::UnboundedSender<StopReason>,
    stats: Option<Addr<Stats>>,
}

impl Supervisor {
    pub fn new(
        budget: u32,
        window: Duration,
        stop: mpsc::UnboundedSender<StopReason>,
        stats: Option<Addr<Stats>>,
    ) -> Self {
        Supervisor {
            budget,
            window,
            recent: VecDeque::new(),
            restarts: 0,
            stop,
            stats,
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

impl Handler<ActorFailed> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ActorFailed, _ctx: &mut Self::Context) {
        let now = Instant::now();
        self.restarts += 1;
        crate::metrics::restarted(msg.actor);
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.recent.pop_front();
        }
        if let Some(s) = &self.stats {
            s.do_send(Progress::Restarts(self.restarts));
        }
        if self.recent.len() as u32 > self.budget {
            let reason = format!(
                "{} failed {} times within {}s (restart budget {}); last error: {}",
                msg.actor,
                self.recent.len(),
                self.window.as_secs(),
                self.budget,
                msg.error
            );
            tracing::error!(actor = msg.actor, "{reason}");
            let _ = self.stop.send(StopReason::Fatal(reason));
        } else {
            tracing::warn!(actor = msg.actor, restarts = self.restarts, error = %msg.error, "actor restarted");
        }
    }
}

impl Handler<StopRun> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: StopRun, _ctx: &mut Self::Context) {
        let _ = self.stop.send(msg.reason);
    }
}

impl Handler<GetRestarts> for Supervisor {
    type Result = u32;

    fn handle(&mut self, _: GetRestarts, _ctx: &mut Self::Context) -> u32 {
        self.restarts
    }
}

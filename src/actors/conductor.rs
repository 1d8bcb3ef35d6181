//! Conductor: owns the listener actors; in `--max-rate` mode it is the simulated clock.
//!
//! Inputs: [`StartListeners`], [`StopListening`]. In max-rate mode it advances simulated time
//! in ticks: every listener emits its events of the tick and replies once the publisher has
//! accepted them, then the next tick starts. The clock thus runs exactly as fast as the pipeline
//! accepts events, listeners stay in step with each other (event times from all listeners move
//! forward together), and at most one tick of events is in flight. Ticks are sized to carry
//! about `target_events` events. Output: [`StopRun`] when every listener has used its quota.

use actix::prelude::*;
use futures::future::join_all;

use crate::messages::{Advance, StartListeners, StopListening, StopReason, StopRun};

use super::listener::ListenerActor;
use super::supervisor::Supervisor;

/// Smallest and largest tick of simulated time, ms.
const MIN_TICK_MS: i64 = 10;
const MAX_TICK_MS: i64 = 6 * 3600 * 1000;

pub struct Conductor {
    listeners: Vec<Addr<ListenerActor>>,
    done: Vec<bool>,
    max_rate: Option<MaxRate>,
    supervisor: Addr<Supervisor>,
    stopping: bool,
    /// Events emitted by all listeners so far (sizes the next tick).
    emitted: u64,
}

/// The simulated clock of max-rate mode.
#[derive(Clone, Copy, Debug)]
pub struct MaxRate {
    pub now_ms: i64,
    pub tick_ms: i64,
    pub target_events: u64,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

impl Conductor {
    pub fn new(
        listeners: Vec<Addr<ListenerActor>>,
        max_rate: Option<MaxRate>,
        supervisor: Addr<Supervisor>,
    ) -> Self {
        Conductor {
            done: vec![false; listeners.len()],
            listeners,
            max_rate,
            supervisor,
            stopping: false,
            emitted: 0,
        }
    }
}

impl Actor for Conductor {
    type Context = Context<Self>;
}

impl Handler<StartListeners> for Conductor {
    type Result = ();

    fn handle(&mut self, _: StartListeners, ctx: &mut Self::Context) {
        if self.max_rate.is_some() {
            ctx.notify(Tick);
        }
    }
}

impl Handler<Tick> for Conductor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Tick, _ctx: &mut Self::Context) -> Self::Result {
        let clock = self.max_rate.expect("ticks only in max-rate mode");
        let until_ms = clock.now_ms + clock.tick_ms;
        let active: Vec<(usize, Addr<ListenerActor>)> = self
            .listeners
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.done[*i])
            .map(|(i, a)| (i, a.clone()))
            .collect();
        let sends = join_all(
            active
                .into_iter()
                .map(|(i, a)| async move { (i, a.send(Advance { until_ms }).await) }),
        );
        Box::pin(sends.into_actor(self).map(move |replies, act, ctx| {
            let mut emitted_in_tick = 0u64;
            for (i, r) in replies {
                match r {
                    Ok(s) => {
                        emitted_in_tick += s.emitted;
                        if s.done {
                            act.done[i] = true;
                        }
                    }
                    Err(_) => act.done[i] = true,
                }
            }
            act.emitted += emitted_in_tick;
            tracing::trace!(
                emitted = act.emitted,
                done = act.done.iter().filter(|d| **d).count(),
                "tick"
            );
            let clock = act.max_rate.as_mut().expect("max-rate");
            clock.now_ms = until_ms;
            // Aim the next tick at the target; grow at most 4x per tick after an idle tick.
            let scale = if emitted_in_tick == 0 {
                4.0
            } else {
                (clock.target_events as f64 / emitted_in_tick as f64).clamp(0.25, 4.0)
            };
            clock.tick_ms = ((clock.tick_ms as f64 * scale) as i64).clamp(MIN_TICK_MS, MAX_TICK_MS);
            if act.done.iter().all(|d| *d) {
                act.supervisor.do_send(StopRun {
                    reason: StopReason::EventLimit,
                });
            } else if !act.stopping {
                ctx.notify(Tick);
            }
        }))
    }
}

impl Handler<StopListening> for Conductor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopListening, _ctx: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        let listeners = self.listeners.clone();
        Box::pin(async move {
            join_all(listeners.iter().map(|l| l.send(StopListening))).await;
        })
    }
}

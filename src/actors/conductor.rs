//! Conductor: owns the listener actors; in `--max-rate` mode it is the simulated clock.
//!
//! Inputs: [`StartListeners`], [`StopListening`]. In max-rate mode it advances simulated time
//! in ticks: every listener replies with its events of the tick, and the conductor hands them
//! to the publisher in listener order (so each listener's events reach the topic in order), in
//! chunks, as the replies come in; the next tick starts once the publisher has accepted the
//! whole tick. The clock thus runs exactly as fast as the pipeline accepts events, and
//! listeners stay in step with each other (event times from all listeners move forward
//! together). Ticks are sized to carry about `target_events` events; within a tick at most
//! [`WINDOW`] listeners are asked at a time, which bounds the events in memory.
//! Output: [`SimEvents`] to the publisher, [`StopRun`] when every listener has used its quota.

use std::cell::Cell;
use std::rc::Rc;

use actix::prelude::*;
use futures::StreamExt;
use futures::stream::FuturesOrdered;

use crate::messages::{
    Advance, ListenerStatus, OutRecord, SimEvents, StartListeners, StopListening, StopReason,
    StopRun,
};

use super::listener::ListenerActor;
use super::publisher::Publisher;
use super::supervisor::Supervisor;

/// Listeners asked at a time within a tick: bounds the events held in replies and chunks to
/// about WINDOW × events per listener, whatever the number of listeners and the tick's size,
/// so ticks can be long (few messages per event) without holding a whole tick in memory.
const WINDOW: usize = 1024;

/// Records per message to the publisher: large enough to amortise a message, small enough
/// that the bus and the sink start on a tick before all of it is handed over.
const PUBLISH_CHUNK: usize = 8192;

/// Smallest and largest tick of simulated time, ms.
const MIN_TICK_MS: i64 = 10;
const MAX_TICK_MS: i64 = 6 * 3600 * 1000;

pub struct Conductor {
    listeners: Vec<Addr<ListenerActor>>,
    done: Vec<bool>,
    max_rate: Option<MaxRate>,
    publisher: Addr<Publisher>,
    supervisor: Addr<Supervisor>,
    /// Events emitted by all listeners so far (sizes the next tick).
    emitted: u64,
    /// Set at [`StopListening`], or when the publisher takes no more (the `--events` limit, an
    /// error): no tick follows, and no record is handed to the publisher after it, so the
    /// drain's count of published records is final.
    halted: Rc<Cell<bool>>,
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
        publisher: Addr<Publisher>,
        supervisor: Addr<Supervisor>,
    ) -> Self {
        Conductor {
            done: vec![false; listeners.len()],
            listeners,
            max_rate,
            publisher,
            supervisor,
            emitted: 0,
            halted: Rc::new(Cell::new(false)),
        }
    }
}

/// What a tick did: per listener whether it is done, the events emitted, and whether
/// publishing may go on.
struct TickOutcome {
    done: Vec<usize>,
    emitted: u64,
    published: bool,
}

/// Sends `Advance` to the listeners and hands their records to the publisher in listener
/// order, in chunks, as the replies come in. Stops publishing (not listening) at the run's
/// `--events` limit, a publisher error, or [`StopListening`] (`halted`): no record reaches the
/// publisher after the drain has counted what it published.
async fn tick(
    listeners: Vec<(usize, Addr<ListenerActor>)>,
    until_ms: i64,
    publisher: Addr<Publisher>,
    halted: Rc<Cell<bool>>,
) -> TickOutcome {
    let mut waiting = listeners.into_iter();
    let mut replies: FuturesOrdered<_> = waiting
        .by_ref()
        .take(WINDOW)
        .map(|(i, a)| ask(i, a, until_ms))
        .collect();
    let mut out = TickOutcome {
        done: Vec::new(),
        emitted: 0,
        published: true,
    };
    let mut chunk = Vec::with_capacity(PUBLISH_CHUNK);
    while let Some((i, reply)) = replies.next().await {
        // Once publishing has stopped, no more events are asked for.
        if !halted.get()
            && let Some((j, a)) = waiting.next()
        {
            replies.push_back(ask(j, a, until_ms));
        }
        let status = reply.unwrap_or(ListenerStatus {
            done: true,
            ..Default::default()
        });
        out.emitted += status.emitted;
        if status.done {
            out.done.push(i);
        }
        for record in status.records {
            chunk.push(record);
            if chunk.len() == PUBLISH_CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(PUBLISH_CHUNK));
                out.published &= publish(&publisher, full, &halted).await;
            }
        }
    }
    if !chunk.is_empty() {
        out.published &= publish(&publisher, chunk, &halted).await;
    }
    out
}

async fn ask(
    i: usize,
    listener: Addr<ListenerActor>,
    until_ms: i64,
) -> (usize, Result<ListenerStatus, MailboxError>) {
    (i, listener.send(Advance { until_ms }).await)
}

/// Hands one chunk to the publisher; false once publishing must stop.
async fn publish(
    publisher: &Addr<Publisher>,
    records: Vec<OutRecord>,
    halted: &Cell<bool>,
) -> bool {
    if halted.get() {
        return false;
    }
    match publisher.send(SimEvents { records }).await {
        Ok(Ok(a)) if !a.limit_reached => true,
        // The publisher reports the limit and its errors to the supervisor itself.
        Ok(_) | Err(_) => {
            halted.set(true);
            false
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
        let run = tick(
            active,
            until_ms,
            self.publisher.clone(),
            self.halted.clone(),
        );
        Box::pin(run.into_actor(self).map(move |out, act, ctx| {
            for i in out.done {
                act.done[i] = true;
            }
            act.emitted += out.emitted;
            tracing::trace!(
                emitted = act.emitted,
                done = act.done.iter().filter(|d| **d).count(),
                "tick"
            );
            let clock = act.max_rate.as_mut().expect("max-rate");
            clock.now_ms = until_ms;
            // Aim the next tick at the target; grow at most 4x per tick after an idle tick.
            let scale = if out.emitted == 0 {
                4.0
            } else {
                (clock.target_events as f64 / out.emitted as f64).clamp(0.25, 4.0)
            };
            clock.tick_ms = ((clock.tick_ms as f64 * scale) as i64).clamp(MIN_TICK_MS, MAX_TICK_MS);
            // A tick that could not publish all it had has set `halted`.
            let all_done = act.done.iter().all(|d| *d);
            if out.published && all_done {
                act.supervisor.do_send(StopRun {
                    reason: StopReason::EventLimit,
                });
            } else if !all_done && !act.halted.get() {
                ctx.notify(Tick);
            }
        }))
    }
}

impl Handler<StopListening> for Conductor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopListening, _ctx: &mut Self::Context) -> Self::Result {
        self.halted.set(true);
        // Every listener is told at once (`send` queues the message); the replies are then
        // awaited in turn. One join over 90 000 replies took seconds (its wake-ups grew faster
        // than the count); in turn, the wait is the slowest listener's.
        let replies: Vec<_> = self
            .listeners
            .iter()
            .map(|l| l.send(StopListening))
            .collect();
        Box::pin(async move {
            for reply in replies {
                let _ = reply.await;
            }
        })
    }
}

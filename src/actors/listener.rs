//! ListenerActor: one simulated listener.
//!
//! Inputs: [`Advance`] (max-rate clock ticks), [`StopListening`]; in realtime mode it wakes
//! itself at its next event's wall-clock time. Output: [`SimEvents`] batches to the publisher,
//! awaited one at a time so that its events reach the topic in order. Failure: none of its own;
//! a publisher error stops the listener (the run is ending).

use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::{BufMut, Bytes, BytesMut};

use crate::event::WireEvent;
use crate::messages::{
    Admission, Advance, ListenerStatus, OutRecord, PublishError, SimEvents, StopListening,
};
use crate::sim::Listener;

use super::publisher::Publisher;

/// Most events a listener puts in one message (max-rate ticks).
const MAX_BATCH: usize = 1024;
/// Most events per message in realtime mode. Every listener may have one message queued beyond
/// the publisher's mailbox, so this bounds memory when the pipeline cannot keep up.
const MAX_REALTIME_BATCH: usize = 64;

/// How the simulated clock maps to wall-clock time.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// Events at wall-clock pace times `speed`, simulated time starting at `start_ms` at
    /// `started`.
    Realtime {
        started: Instant,
        start_ms: i64,
        speed: f64,
    },
    /// Simulated time driven by the conductor's [`Advance`] ticks.
    MaxRate,
}

impl Clock {
    fn sim_now_ms(&self) -> i64 {
        match self {
            Clock::Realtime {
                started,
                start_ms,
                speed,
            } => start_ms + (started.elapsed().as_secs_f64() * 1000.0 * speed) as i64,
            Clock::MaxRate => i64::MAX,
        }
    }

    fn wall_delay(&self, sim_ms: i64) -> Duration {
        match self {
            Clock::Realtime { speed, .. } => {
                let ahead = (sim_ms - self.sim_now_ms()).max(0) as f64;
                Duration::from_secs_f64(ahead / 1000.0 / speed)
            }
            Clock::MaxRate => Duration::ZERO,
        }
    }
}

pub struct ListenerActor {
    model: Listener,
    key: Bytes,
    publisher: Addr<Publisher>,
    clock: Clock,
    /// Events this listener may still emit (`--events` split over listeners in max-rate mode).
    quota: Option<u64>,
    emitted: u64,
    stopped: bool,
}

impl ListenerActor {
    pub fn new(
        model: Listener,
        publisher: Addr<Publisher>,
        clock: Clock,
        quota: Option<u64>,
    ) -> Self {
        let key = Bytes::from(model.profile().user_id.hyphenated().to_string());
        ListenerActor {
            model,
            key,
            publisher,
            clock,
            quota,
            emitted: 0,
            stopped: false,
        }
    }

    fn quota_left(&self) -> u64 {
        self.quota
            .map_or(u64::MAX, |q| q.saturating_sub(self.emitted))
    }

    /// Takes every event before `until_ms` (at most [`MAX_BATCH`]) and encodes them into one
    /// buffer, sliced per record: one allocation per batch, not per event.
    fn take_due(&mut self, until_ms: i64, max: usize) -> Vec<OutRecord> {
        let n_max = self.quota_left().min(max as u64) as usize;
        let mut buf = BytesMut::with_capacity(n_max.min(64) * 480);
        let mut meta = Vec::new();
        while meta.len() < n_max && self.model.peek().ts_ms < until_ms {
            let ev = self.model.next_event();
            let start = buf.len();
            let mut w = (&mut buf).writer();
            serde_json::to_writer(&mut w, &WireEvent::new(self.model.profile(), &ev))
                .expect("WireEvent serialises infallibly");
            meta.push((start, buf.len(), ev.event_type, ev.ts_ms));
        }
        self.emitted += meta.len() as u64;
        let frozen = buf.freeze();
        meta.into_iter()
            .map(|(a, b, event_type, ts_ms)| OutRecord {
                key: self.key.clone(),
                value: frozen.slice(a..b),
                event_type,
                ts_ms,
            })
            .collect()
    }

    /// Realtime: emit what is due now, then sleep until the next event is.
    fn tick_realtime(&mut self, ctx: &mut Context<Self>) {
        if self.stopped || self.quota_left() == 0 {
            return;
        }
        let records = self.take_due(self.clock.sim_now_ms() + 1, MAX_REALTIME_BATCH);
        if records.is_empty() {
            let delay = self.clock.wall_delay(self.model.peek().ts_ms);
            ctx.run_later(delay, |act, ctx| act.tick_realtime(ctx));
            return;
        }
        let send = self.publisher.send(SimEvents { records });
        ctx.wait(send.into_actor(self).map(|res, act, ctx| {
            match res {
                // Yield to the mailbox before the next batch: a listener that always has events
                // due must still see StopListening.
                Ok(Ok(Admission {
                    limit_reached: false,
                    ..
                })) => {
                    ctx.run_later(Duration::ZERO, |act, ctx| act.tick_realtime(ctx));
                }
                // Limit reached or the publisher is gone: this listener is finished.
                Ok(Ok(_)) | Ok(Err(_)) | Err(_) => act.stopped = true,
            }
        }));
    }
}

impl Actor for ListenerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if matches!(self.clock, Clock::Realtime { .. }) {
            self.tick_realtime(ctx);
        }
    }
}

impl Handler<Advance> for ListenerActor {
    type Result = ResponseActFuture<Self, ListenerStatus>;

    fn handle(&mut self, msg: Advance, _ctx: &mut Self::Context) -> Self::Result {
        let mut batches = Vec::new();
        let before = self.emitted;
        if !self.stopped {
            loop {
                let records = self.take_due(msg.until_ms, MAX_BATCH);
                let full = records.len() == MAX_BATCH;
                if !records.is_empty() {
                    batches.push(records);
                }
                if !full {
                    break;
                }
            }
        }
        let publisher = self.publisher.clone();
        Box::pin(
            async move {
                for records in batches {
                    match publisher.send(SimEvents { records }).await {
                        Ok(Ok(a)) if !a.limit_reached => {}
                        Ok(Ok(_)) => return Err(None),
                        Ok(Err(e)) => return Err(Some(e)),
                        Err(_) => return Err(Some(PublishError::BusClosed)),
                    }
                }
                Ok(())
            }
            .into_actor(self)
            .map(move |res, act, _| {
                if res.is_err() {
                    act.stopped = true;
                }
                ListenerStatus {
                    emitted: act.emitted - before,
                    done: act.stopped || act.quota_left() == 0,
                }
            }),
        )
    }
}

impl Handler<StopListening> for ListenerActor {
    type Result = ();

    fn handle(&mut self, _: StopListening, ctx: &mut Self::Context) {
        self.stopped = true;
        ctx.stop();
    }
}

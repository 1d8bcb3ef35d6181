//! ListenerActor: one simulated listener.
//!
//! Inputs: [`Advance`] (max-rate clock ticks), [`StopListening`]; in realtime mode it wakes
//! itself at its next event's wall-clock time. Output: in realtime mode its due events, posted
//! to its worker's [`Outbox`] (shared with the worker's other listeners) and awaited before it
//! posts again, so that its events reach the topic in order; in
//! max-rate mode its events of the tick, in its reply to [`Advance`] (the conductor publishes
//! the tick: one message per listener and tick instead of three). Failure: none of its own; a
//! publisher error stops the listener (the run is ending).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;

use crate::event::{EventEncoder, EventType, WireFormat};
use crate::messages::{Admission, Advance, Injected, ListenerStatus, OutRecord, StopListening};
use crate::sim::{Injector, Listener};

use super::outbox::Outbox;

/// Most events a listener puts in one message (max-rate ticks).
const MAX_BATCH: usize = 1024;
/// Most events a listener posts at once in realtime mode. Every listener may have one post
/// waiting in its outbox, so this bounds memory when the pipeline cannot keep up.
const MAX_REALTIME_BATCH: usize = 64;
/// Earlier events a listener keeps for `--inject duplicate` to replay.
const REPLAY_MEMORY: usize = 8;

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
    outbox: Arc<Outbox>,
    clock: Clock,
    /// Events this listener may still emit (`--events` split over listeners in max-rate mode).
    quota: Option<u64>,
    emitted: u64,
    stopped: bool,
    /// `--inject`: faults to add, and the last events sent (for replays).
    injector: Option<Injector>,
    recent: std::collections::VecDeque<(Bytes, EventType, i64)>,
    /// Writes the records in the JSON layout of `--format`.
    encoder: EventEncoder,
    /// Bytes to reserve for the next batch: what the last one used, plus a quarter. Every
    /// record of a batch is a slice of one buffer that lives until the last is consumed, so
    /// reserving for the worst case (a full batch) held ~30 KB per listener per max-rate tick
    /// that carried a few events: 300 MB at 10 000 listeners.
    size_hint: usize,
    /// Records of the last max-rate tick: the reply's reservation for the next.
    count_hint: usize,
    /// Scratch: each record's place in the batch buffer, its type, time and injection.
    meta: Vec<RecordMeta>,
}

type RecordMeta = (usize, usize, EventType, i64, Option<Injected>);

/// The first batch's reservation: a few events.
const FIRST_SIZE_HINT: usize = 4 * 480;

impl ListenerActor {
    pub fn new(
        model: Listener,
        outbox: Arc<Outbox>,
        clock: Clock,
        quota: Option<u64>,
        injector: Option<Injector>,
    ) -> Self {
        let key = Bytes::from(model.profile().user_id.hyphenated().to_string());
        let encoder = EventEncoder::new(WireFormat::Encore, model.profile());
        ListenerActor {
            model,
            key,
            outbox,
            clock,
            quota,
            emitted: 0,
            stopped: false,
            injector,
            recent: std::collections::VecDeque::new(),
            encoder,
            size_hint: FIRST_SIZE_HINT,
            count_hint: 0,
            meta: Vec::new(),
        }
    }

    /// Sends records in `format` instead of encore's.
    pub fn with_format(mut self, format: WireFormat) -> Self {
        self.encoder = EventEncoder::new(format, self.model.profile());
        self
    }

    fn quota_left(&self) -> u64 {
        self.quota
            .map_or(u64::MAX, |q| q.saturating_sub(self.emitted))
    }

    /// Takes every event before `until_ms` (at most [`MAX_BATCH`]) and encodes them into one
    /// buffer, sliced per record: one allocation per batch, not per event.
    fn take_due(&mut self, until_ms: i64, max: usize) -> Vec<OutRecord> {
        let mut records = Vec::new();
        self.take_due_into(until_ms, max, &mut records);
        records
    }

    /// `take_due`, appending to `records`; returns the number of events taken (injected
    /// records come on top).
    fn take_due_into(&mut self, until_ms: i64, max: usize, records: &mut Vec<OutRecord>) -> usize {
        let n_max = self.quota_left().min(max as u64) as usize;
        let mut buf = Vec::with_capacity(self.size_hint);
        // Reused between batches: one allocation per listener, not per tick.
        let mut meta = std::mem::take(&mut self.meta);
        let mut events = 0;
        while events < n_max && self.model.peek().ts_ms < until_ms {
            let mut ev = self.model.next_event();
            events += 1;
            let d = self
                .injector
                .as_mut()
                .map(|i| i.decide())
                .unwrap_or_default();
            if d.late {
                ev.ts_ms -= self.injector.as_ref().map_or(0, |i| i.late_by_ms());
            }
            let start = buf.len();
            self.encoder.encode(self.model.profile(), &ev, &mut buf);
            let end = buf.len();
            meta.push((
                start,
                end,
                ev.event_type,
                ev.ts_ms,
                d.late.then_some(Injected::Late),
            ));
            let Some(inj) = self.injector.as_mut() else {
                continue;
            };
            // Extra records, each appended to the same buffer.
            let this = (
                Bytes::copy_from_slice(&buf[start..end]),
                ev.event_type,
                ev.ts_ms,
            );
            let mut extra = |buf: &mut Vec<u8>, (bytes, t, ts): &(Bytes, EventType, i64), what| {
                let a = buf.len();
                buf.extend_from_slice(bytes);
                meta.push((a, buf.len(), *t, *ts, Some(what)));
            };
            if d.duplicate {
                // An earlier event (or this one, for a listener's first).
                let pick = (ev.event_id.as_u128() as usize) % self.recent.len().max(1);
                let replay = self.recent.get(pick).unwrap_or(&this).clone();
                extra(&mut buf, &replay, Injected::Duplicate);
            }
            if d.malformed {
                let bad = (inj.malformed(&this.0), ev.event_type, ev.ts_ms);
                extra(&mut buf, &bad, Injected::Malformed);
            }
            if d.oversized {
                let big = (inj.oversized(&this.0), ev.event_type, ev.ts_ms);
                extra(&mut buf, &big, Injected::Oversized);
            }
            if self.recent.len() == REPLAY_MEMORY {
                self.recent.pop_front();
            }
            self.recent.push_back(this);
        }
        self.emitted += events as u64;
        if events > 0 {
            self.size_hint = (buf.len() + buf.len() / 4).max(FIRST_SIZE_HINT);
        }
        // The buffer lives until the sink has taken its last record off the bus, and its slack
        // with it (a quarter of the bus's memory). Shrinking in place is a realloc, not a copy.
        if buf.capacity() - buf.len() > buf.len() / 32 {
            buf.shrink_to_fit();
        }
        let frozen = Bytes::from(buf);
        records.extend(
            meta.drain(..)
                .map(|(a, b, event_type, ts_ms, injected)| OutRecord {
                    key: self.key.clone(),
                    value: frozen.slice(a..b),
                    event_type,
                    ts_ms,
                    injected,
                }),
        );
        self.meta = meta;
        events
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
        let posted = self.outbox.post(records);
        ctx.wait(posted.into_actor(self).map(|res, act, ctx| {
            match res {
                // Yield to the mailbox before the next batch: a listener that always has events
                // due must still see StopListening.
                Ok(Some(Admission {
                    limit_reached: false,
                    ..
                })) => {
                    ctx.run_later(Duration::ZERO, |act, ctx| act.tick_realtime(ctx));
                }
                // Limit reached, the publisher refused or is gone: this listener is finished.
                Ok(_) | Err(_) => act.stopped = true,
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
    type Result = ListenerStatus;

    fn handle(&mut self, msg: Advance, _ctx: &mut Self::Context) -> ListenerStatus {
        let before = self.emitted;
        let mut records = Vec::with_capacity(self.count_hint);
        if !self.stopped {
            // One buffer per MAX_BATCH events, as in realtime mode.
            while self.take_due_into(msg.until_ms, MAX_BATCH, &mut records) == MAX_BATCH {}
        }
        self.count_hint = records.len() + records.len() / 4;
        ListenerStatus {
            emitted: self.emitted - before,
            records,
            done: self.stopped || self.quota_left() == 0,
        }
    }
}

impl Handler<StopListening> for ListenerActor {
    type Result = ();

    fn handle(&mut self, _: StopListening, ctx: &mut Self::Context) {
        self.stopped = true;
        ctx.stop();
    }
}

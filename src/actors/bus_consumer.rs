//! BusConsumer: reads the in-process bus and hands records to the accumulator.
//!
//! A self-driven poll loop: fetch (long poll) → `send(Records).await` → next fetch. Because it
//! awaits the accumulator, a sink that falls behind pauses consumption. Input: [`DrainTo`]
//! (replies once everything below the targets was handed over). Positions start where the lake
//! says the data ends.

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::messages::{DrainTo, Fetch, Records};

use super::accumulator::Accumulator;
use super::bus::Bus;

/// Records per fetch.
const FETCH_MAX: usize = 8192;
/// How long a fetch waits for data before returning empty.
const FETCH_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

pub struct BusConsumer {
    bus: Addr<Bus>,
    accumulator: Addr<Accumulator>,
    positions: Vec<i64>,
    consumed: u64,
    drain: Option<(Vec<i64>, oneshot::Sender<u64>)>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Poll;

impl BusConsumer {
    pub fn new(bus: Addr<Bus>, accumulator: Addr<Accumulator>, positions: Vec<i64>) -> Self {
        BusConsumer {
            bus,
            accumulator,
            positions,
            consumed: 0,
            drain: None,
        }
    }

    fn check_drain(&mut self) {
        let reached = match &self.drain {
            Some((targets, _)) => targets.iter().zip(&self.positions).all(|(t, p)| p >= t),
            None => false,
        };
        if reached && let Some((_, tx)) = self.drain.take() {
            let _ = tx.send(self.consumed);
        }
    }
}

impl Actor for BusConsumer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(Poll);
    }
}

impl Handler<Poll> for BusConsumer {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Poll, _ctx: &mut Self::Context) -> Self::Result {
        let fetch = self.bus.send(Fetch {
            positions: self.positions.clone(),
            max_records: FETCH_MAX,
            wait: FETCH_WAIT,
        });
        let accumulator = self.accumulator.clone();
        let mut positions = self.positions.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let records = fetch.await.ok()?;
                let n = records.len() as u64;
                for r in &records {
                    positions[r.partition as usize] = r.offset + 1;
                }
                if n > 0 {
                    accumulator.send(Records { records }).await.ok()?;
                }
                Some((positions, n))
            }
            .into_actor(self)
            .map(|res, act, ctx| match res {
                Some((positions, n)) => {
                    act.positions = positions;
                    act.consumed += n;
                    act.check_drain();
                    ctx.notify(Poll);
                }
                // The bus or the accumulator is gone: the pipeline is stopping.
                None => ctx.stop(),
            }),
        ))
    }
}

impl Handler<DrainTo> for BusConsumer {
    type Result = MessageResult<DrainTo>;

    fn handle(&mut self, msg: DrainTo, _ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.drain = Some((msg.targets, tx));
        self.check_drain();
        MessageResult(rx)
    }
}

//! Accumulator: decodes records into per-partition buffers and decides when to flush.
//!
//! Input: [`Records`] (from the consumer), [`FlushAll`], [`FlushDone`]. For each partition a
//! [`PartitionBuffer`] fills until the [`FlushPolicy`] fires (rows, bytes or age); the batch is
//! then handed to the flusher by a flush task. Guarantees:
//! - one batch per partition in flight at a time, in offset order, so commits are ordered;
//! - at most `max_unflushed` batches exist beyond the buffers; when that many wait, the
//!   accumulator stops taking records (the consumer pauses): memory stays bounded;
//! - a failed flush keeps its batch and retries with exponential backoff, reporting each
//!   failure to the supervisor (which counts restarts against the budget). Nothing is dropped.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::messages::{ActorFailed, Flush, FlushAll, FlushDone, Progress, Records, SinkCounters};
use crate::sink::{FlushPolicy, PartitionBuffer, PendingBatch};

use super::committer::Committer;
use super::flusher::Flusher;
use super::stats::Stats;
use super::supervisor::Supervisor;

/// Mailbox size: a few fetches queued at most.
const MAILBOX: usize = 4;
/// Retry delays of a failing flush: doubling from the first up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_CAP: Duration = Duration::from_secs(10);

pub struct Accumulator {
    policy: FlushPolicy,
    buffers: BTreeMap<i32, PartitionBuffer>,
    queued: BTreeMap<i32, VecDeque<(Arc<PendingBatch>, OwnedSemaphorePermit)>>,
    inflight: BTreeSet<i32>,
    permits: Arc<Semaphore>,
    max_unflushed: u32,
    flusher: Addr<Flusher>,
    committer: Addr<Committer>,
    supervisor: Addr<Supervisor>,
    stats: Option<Addr<Stats>>,
    counters: SinkCounters,
}

impl Accumulator {
    pub fn new(
        policy: FlushPolicy,
        max_unflushed: u32,
        flusher: Addr<Flusher>,
        committer: Addr<Committer>,
        supervisor: Addr<Supervisor>,
        stats: Option<Addr<Stats>>,
    ) -> Self {
        let max_unflushed = max_unflushed.max(1);
        Accumulator {
            policy,
            buffers: BTreeMap::new(),
            queued: BTreeMap::new(),
            inflight: BTreeSet::new(),
            permits: Arc::new(Semaphore::new(max_unflushed as usize)),
            max_unflushed,
            flusher,
            committer,
            supervisor,
            stats,
            counters: SinkCounters::default(),
        }
    }

    /// Takes the buffers that must be flushed now (all non-empty ones when `all`).
    fn take_ready(&mut self, all: bool) -> Vec<PendingBatch> {
        let now = Instant::now();
        let policy = self.policy;
        self.buffers
            .values_mut()
            .filter(|b| all && !b.is_empty() || policy.should_flush(&b.stats(now)).is_some())
            .filter_map(PartitionBuffer::take)
            .collect()
    }

    /// Gets a permit for each batch, blocking this actor's mailbox until there are enough,
    /// then queues the batches and starts the flushes that may start.
    fn hand_over(&mut self, ready: Vec<PendingBatch>, ctx: &mut Context<Self>) {
        if ready.is_empty() {
            return;
        }
        let mut permits = Vec::with_capacity(ready.len());
        for _ in 0..ready.len() {
            match self.permits.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let missing = ready.len() - permits.len();
        if missing == 0 {
            self.enqueue(ready, permits, ctx);
            return;
        }
        let sem = self.permits.clone();
        ctx.wait(
            async move {
                for _ in 0..missing {
                    permits.push(sem.clone().acquire_owned().await.expect("never closed"));
                }
                permits
            }
            .into_actor(self)
            .map(move |permits, act, ctx| act.enqueue(ready, permits, ctx)),
        );
    }

    fn enqueue(
        &mut self,
        ready: Vec<PendingBatch>,
        permits: Vec<OwnedSemaphorePermit>,
        ctx: &mut Context<Self>,
    ) {
        for (batch, permit) in ready.into_iter().zip(permits) {
            self.queued
                .entry(batch.range.partition)
                .or_default()
                .push_back((Arc::new(batch), permit));
        }
        self.dispatch(ctx);
    }

    /// Starts a flush for every partition that has a queued batch and none in flight.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        for (partition, queue) in self.queued.iter_mut() {
            if self.inflight.contains(partition) {
                continue;
            }
            let Some((batch, permit)) = queue.pop_front() else {
                continue;
            };
            self.inflight.insert(*partition);
            actix::spawn(flush_task(
                batch,
                permit,
                self.flusher.clone(),
                self.committer.clone(),
                self.supervisor.clone(),
                ctx.address(),
            ));
        }
    }
}

/// Flushes one batch until it is durable, then tells the committer, frees its permit and
/// reports back. Runs outside the actor's context so that it progresses while the actor
/// waits for permits.
async fn flush_task(
    batch: Arc<PendingBatch>,
    permit: OwnedSemaphorePermit,
    flusher: Addr<Flusher>,
    committer: Addr<Committer>,
    supervisor: Addr<Supervisor>,
    me: Addr<Accumulator>,
) {
    let partition = batch.range.partition;
    let mut delay = RETRY_FIRST;
    loop {
        let error = match flusher
            .send(Flush {
                batch: batch.clone(),
            })
            .await
        {
            Ok(Ok(durable)) => {
                let _ = committer.send(durable).await;
                break;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("flusher unreachable: {e}"),
        };
        tracing::warn!(
            partition,
            first = batch.range.first,
            last = batch.range.last,
            retry_in_ms = delay.as_millis() as u64,
            %error,
            "flush failed; batch kept for retry"
        );
        if supervisor
            .send(ActorFailed {
                actor: "flusher",
                error,
            })
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RETRY_CAP);
    }
    drop(permit);
    me.do_send(FlushDone { partition });
}

impl Actor for Accumulator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        let tick =
            (self.policy.max_age / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        ctx.run_interval(tick, |act, ctx| {
            let ready = act.take_ready(false);
            act.hand_over(ready, ctx);
            if let Some(s) = &act.stats {
                s.do_send(Progress::Consumed(act.counters));
            }
        });
    }
}

impl Handler<Records> for Accumulator {
    type Result = ();

    fn handle(&mut self, msg: Records, ctx: &mut Self::Context) {
        let now = Instant::now();
        let mut touched = BTreeSet::new();
        for rec in &msg.records {
            let buf = self
                .buffers
                .entry(rec.partition)
                .or_insert_with(|| PartitionBuffer::new(rec.partition));
            if !buf.push(rec, now) {
                self.counters.rejected += 1;
                tracing::warn!(
                    partition = rec.partition,
                    offset = rec.offset,
                    "record is not a valid event; recorded as rejected in its commit marker"
                );
            }
            touched.insert(rec.partition);
        }
        self.counters.consumed += msg.records.len() as u64;
        let policy = self.policy;
        let ready: Vec<PendingBatch> = touched
            .into_iter()
            .filter_map(|p| {
                let b = self.buffers.get_mut(&p)?;
                policy.should_flush(&b.stats(now))?;
                b.take()
            })
            .collect();
        self.hand_over(ready, ctx);
    }
}

impl Handler<FlushDone> for Accumulator {
    type Result = ();

    fn handle(&mut self, msg: FlushDone, ctx: &mut Self::Context) {
        self.inflight.remove(&msg.partition);
        self.dispatch(ctx);
    }
}

impl Handler<FlushAll> for Accumulator {
    type Result = ResponseActFuture<Self, SinkCounters>;

    fn handle(&mut self, _: FlushAll, ctx: &mut Self::Context) -> Self::Result {
        let ready = self.take_ready(true);
        self.hand_over(ready, ctx);
        let sem = self.permits.clone();
        let all = self.max_unflushed;
        // Every permit free again means every batch is committed.
        Box::pin(
            async move {
                let _all = sem.acquire_many_owned(all).await.expect("never closed");
            }
            .into_actor(self)
            .map(|_, act, _| act.counters),
        )
    }
}

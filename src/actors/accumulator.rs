//! Accumulator: decodes records into per-partition buffers and decides when to flush.
//!
//! Input: [`Records`] (from the consumer), [`FlushAll`], [`FlushDone`], [`Revoke`] (a Kafka
//! rebalance took partitions away: their unflushed records are dropped, the new owner reads
//! them again from the last committed offset). For each partition a
//! [`PartitionBuffer`] fills until the [`FlushPolicy`] fires (rows, bytes or age); the batch is
//! then handed to the flusher by a flush task. Guarantees:
//! - one batch per partition in flight at a time, in offset order, so commits are ordered;
//! - when more than `max_unflushed` batches wait for the lake, the reply to [`Records`] is
//!   held back until enough are committed; the consumer awaits that reply, so it pauses and
//!   memory stays bounded. The mailbox itself never blocks, so flush completions keep flowing;
//! - a failed flush keeps its batch and retries with exponential backoff, reporting each
//!   failure to the supervisor (which counts restarts against the budget). Nothing is dropped.
//!   While the lake fails, one partition's batch probes it and the others wait: an outage costs
//!   one failure per backoff step, not one per partition, so a budget of 30 rides out minutes
//!   of an S3 outage while consumption is paused.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::event::DerivedIds;
use crate::lake::LakeError;
use crate::messages::{
    AdvanceTo, FlushAll, FlushDone, PartitionLost, Progress, Records, ResumeAt, Resync, Revoke,
    SinkCounters, StopReason, StopRun,
};
use crate::sink::{FlushPolicy, PartitionBuffer, PendingBatch};

use super::committer::Committer;
use super::flush_task::{LakeHealth, flush_task};
use super::flusher::Flusher;
use super::stats::Stats;
use super::supervisor::Supervisor;

/// Mailbox size: a few fetches queued at most.
const MAILBOX: usize = 4;
pub struct Accumulator {
    health: Arc<LakeHealth>,
    /// Event ids of reference-format records, derived per record from the topic.
    ids: DerivedIds,
    policy: FlushPolicy,
    buffers: BTreeMap<i32, PartitionBuffer>,
    queued: BTreeMap<i32, VecDeque<Arc<PendingBatch>>>,
    inflight: BTreeSet<i32>,
    /// Batches taken from the buffers and not yet committed (queued or in flight).
    unflushed: usize,
    max_unflushed: usize,
    /// Replies held back until `unflushed <= max_unflushed`.
    paused: Vec<oneshot::Sender<()>>,
    /// Replies held back until `unflushed == 0` (drain).
    drained: Vec<oneshot::Sender<()>>,
    /// Revocations waiting for these partitions' in-flight batches to finish.
    revoking: Vec<(BTreeSet<i32>, oneshot::Sender<()>)>,
    /// Per partition, set when it is revoked: its flush task stops retrying (the batch is
    /// abandoned; the next owner's recovery removes what it left). Replaced on revocation, so
    /// a partition that comes back starts with a clear flag.
    revoked: BTreeMap<i32, Arc<AtomicBool>>,
    flusher: Addr<Flusher>,
    committer: Addr<Committer>,
    supervisor: Addr<Supervisor>,
    stats: Option<Addr<Stats>>,
    counters: SinkCounters,
    /// The Kafka consumer, which can recover a partition again when another writer committed
    /// part of it first; None with the in-process bus, where that means two runs share a lake.
    resync: Option<Recipient<Resync>>,
}

/// Pipeline → Accumulator: where to ask for a partition to be recovered again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ResyncWith(pub Recipient<Resync>);

impl Accumulator {
    /// An accumulator of `topic`'s records.
    pub fn new(
        topic: &str,
        policy: FlushPolicy,
        max_unflushed: u32,
        flusher: Addr<Flusher>,
        committer: Addr<Committer>,
        supervisor: Addr<Supervisor>,
        stats: Option<Addr<Stats>>,
    ) -> Self {
        Accumulator {
            health: Arc::default(),
            ids: DerivedIds::new(topic),
            policy,
            buffers: BTreeMap::new(),
            queued: BTreeMap::new(),
            inflight: BTreeSet::new(),
            unflushed: 0,
            max_unflushed: max_unflushed.max(1) as usize,
            paused: Vec::new(),
            drained: Vec::new(),
            revoking: Vec::new(),
            revoked: BTreeMap::new(),
            flusher,
            committer,
            supervisor,
            stats,
            counters: SinkCounters::default(),
            resync: None,
        }
    }

    /// Takes the buffers that must be flushed now (all non-empty ones when `all`).
    fn take_ready(&mut self, all: bool) -> Vec<PendingBatch> {
        let now = Instant::now();
        let policy = self.policy;
        self.buffers
            .values_mut()
            .filter(|b| {
                all && !b.is_empty() || b.policy(&policy).should_flush(&b.stats(now)).is_some()
            })
            .filter_map(PartitionBuffer::take)
            .collect()
    }

    /// Queues batches and starts the flushes that may start.
    fn hand_over(&mut self, ready: Vec<PendingBatch>, ctx: &mut Context<Self>) {
        for batch in ready {
            self.unflushed += 1;
            self.queued
                .entry(batch.range.partition)
                .or_default()
                .push_back(Arc::new(batch));
        }
        self.dispatch(ctx);
    }

    /// Releases the held-back replies whose condition now holds.
    fn release(&mut self) {
        if self.unflushed <= self.max_unflushed && !self.paused.is_empty() {
            tracing::info!("consumption resumed");
            for tx in self.paused.drain(..) {
                let _ = tx.send(());
            }
        }
        if self.unflushed == 0 {
            for tx in self.drained.drain(..) {
                let _ = tx.send(());
            }
        }
        for (parts, _) in &mut self.revoking {
            parts.retain(|p| self.inflight.contains(p));
        }
        let (done, waiting) = std::mem::take(&mut self.revoking)
            .into_iter()
            .partition(|(parts, _)| parts.is_empty());
        self.revoking = waiting;
        for (_, tx) in done {
            let _ = tx.send(());
        }
    }

    /// Starts a flush for every partition that has a queued batch and none in flight.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        for (partition, queue) in self.queued.iter_mut() {
            if self.inflight.contains(partition) {
                continue;
            }
            let Some(batch) = queue.pop_front() else {
                continue;
            };
            self.inflight.insert(*partition);
            let revoked = self.revoked.entry(*partition).or_default().clone();
            actix::spawn(flush_task(
                batch,
                revoked,
                self.health.clone(),
                self.flusher.clone(),
                self.committer.clone(),
                self.supervisor.clone(),
                ctx.address(),
            ));
        }
    }
}

impl Accumulator {
    /// Stops writing partition `p`: its in-flight batch is abandoned, its queued and buffered
    /// records dropped (the next writer reads them again). Returns the records dropped.
    fn give_up(&mut self, p: i32) -> usize {
        let mut dropped = 0;
        if let Some(flag) = self.revoked.remove(&p) {
            flag.store(true, Ordering::Release);
        }
        if let Some(b) = self.buffers.remove(&p) {
            dropped += b.stats(Instant::now()).records;
        }
        if let Some(q) = self.queued.remove(&p) {
            self.unflushed -= q.len();
            dropped += q.iter().map(|b| b.rows() + b.rejected.len()).sum::<usize>();
        }
        dropped
    }
}

impl Actor for Accumulator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        // Checked often enough that a batch flushes within 100 ms of its age limit (checking
        // every quarter of the age, up to 1 s, added up to that much to the lake's latency); a
        // check is a loop over the partitions' sizes.
        let tick =
            (self.policy.max_age / 50).clamp(Duration::from_millis(10), Duration::from_millis(100));
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
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Records, ctx: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        let mut touched = BTreeSet::new();
        for rec in &msg.records {
            // A partition is written only after it was resumed (and claimed): records of one
            // revoked or lost meanwhile are another writer's to commit.
            let Some(buf) = self
                .buffers
                .get_mut(&rec.partition)
                .filter(|b| !b.is_behind(rec.offset))
            else {
                continue;
            };
            if let Err(kind) = buf.push(rec, now) {
                self.counters.rejected += 1;
                tracing::debug!(
                    partition = rec.partition,
                    offset = rec.offset,
                    kind,
                    "record is not a valid event"
                );
                // Once per kind every few seconds: a flood of bad records must not flood the log.
                crate::kafka::warn_throttled(&format!(
                    "records that are not valid events ({kind}): kept as dead letters and counted in their commit markers"
                ));
            }
            touched.insert(rec.partition);
        }
        self.counters.consumed += msg.records.len() as u64;
        crate::metrics::consumed(msg.records.len() as u64);
        let policy = self.policy;
        let ready: Vec<PendingBatch> = touched
            .into_iter()
            .filter_map(|p| {
                let b = self.buffers.get_mut(&p)?;
                b.policy(&policy).should_flush(&b.stats(now))?;
                b.take()
            })
            .collect();
        self.hand_over(ready, ctx);
        if self.unflushed <= self.max_unflushed {
            return Box::pin(async {});
        }
        // Too much waits for the lake: hold the reply back, which pauses the consumer.
        if self.paused.is_empty() {
            tracing::info!(
                waiting = self.unflushed,
                "batches wait for the lake: consumption paused"
            );
        }
        let (tx, rx) = oneshot::channel();
        self.paused.push(tx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<FlushDone> for Accumulator {
    type Result = ();

    fn handle(&mut self, msg: FlushDone, ctx: &mut Self::Context) {
        self.inflight.remove(&msg.partition);
        self.unflushed -= 1;
        self.dispatch(ctx);
        self.release();
    }
}

impl Handler<ResumeAt> for Accumulator {
    type Result = ();

    fn handle(&mut self, msg: ResumeAt, _ctx: &mut Self::Context) {
        let n = msg.positions.len();
        let mut rank = 0;
        for r in msg.positions {
            crate::metrics::resumed(r.partition, r.offset);
            // A recovery that finished after a newer one (a resync overtaken by a rebalance)
            // holds a stale claim: its commits would all be fenced.
            if self
                .buffers
                .get(&r.partition)
                .is_some_and(|b| b.epoch() > r.epoch)
            {
                continue;
            }
            // Revocation removed the partition's buffer before this assignment; records still
            // buffered would predate the lake's resume point.
            let fresh = PartitionBuffer::resuming_at(self.ids, r.partition, r.offset, r.epoch)
                .stagger((n - rank) as f64 / n as f64);
            rank += 1;
            if let Some(old) = self.buffers.insert(r.partition, fresh)
                && old.stats(Instant::now()).records > 0
            {
                tracing::warn!(
                    partition = r.partition,
                    records = old.stats(Instant::now()).records,
                    "records from before the assignment dropped (the lake resumes at {:?})",
                    r.offset
                );
            }
        }
    }
}

impl Handler<AdvanceTo> for Accumulator {
    type Result = ();

    fn handle(&mut self, msg: AdvanceTo, _ctx: &mut Self::Context) {
        if let Some(b) = self.buffers.get_mut(&msg.partition) {
            b.advance_to(msg.start, msg.to, Instant::now());
        }
    }
}

impl Handler<Revoke> for Accumulator {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Revoke, _ctx: &mut Self::Context) -> Self::Result {
        let dropped: usize = msg.partitions.iter().map(|p| self.give_up(*p)).sum();
        if dropped > 0 {
            tracing::info!(partitions = ?msg.partitions, records = dropped, "revoked partitions: unflushed records dropped (the next owner reads them again)");
        }
        let waiting: BTreeSet<i32> = msg
            .partitions
            .iter()
            .copied()
            .filter(|p| self.inflight.contains(p))
            .collect();
        let (tx, rx) = oneshot::channel();
        self.revoking.push((waiting, tx));
        self.release();
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<PartitionLost> for Accumulator {
    type Result = ();

    fn handle(&mut self, msg: PartitionLost, _ctx: &mut Self::Context) {
        let p = msg.partition;
        // Revoked since, or assigned again under a newer claim: that writer's business.
        if self.buffers.get(&p).is_none_or(|b| b.epoch() != msg.epoch) {
            return;
        }
        let dropped = self.give_up(p);
        self.release();
        let stale = match &*msg.error {
            LakeError::Lost { stale, .. } => *stale,
            _ => true,
        };
        match &self.resync {
            // Still this writer's partition, a stale writer's commit got in first: go on from
            // the lake's new end.
            Some(resync) if !stale => {
                tracing::warn!(
                    partition = p,
                    records = dropped,
                    "another writer committed first; recovering the partition again"
                );
                resync.do_send(Resync { partition: p });
            }
            Some(_) => tracing::warn!(
                partition = p,
                records = dropped,
                "the partition is another writer's now: not written here until it is assigned again"
            ),
            None => self.supervisor.do_send(StopRun {
                reason: StopReason::Fatal(format!(
                    "{}; another run writes this lake's table from the same source",
                    msg.error
                )),
            }),
        }
    }
}

impl Handler<ResyncWith> for Accumulator {
    type Result = ();

    fn handle(&mut self, msg: ResyncWith, _ctx: &mut Self::Context) {
        self.resync = Some(msg.0);
    }
}

impl Handler<FlushAll> for Accumulator {
    type Result = ResponseActFuture<Self, SinkCounters>;

    fn handle(&mut self, _: FlushAll, ctx: &mut Self::Context) -> Self::Result {
        let ready = self.take_ready(true);
        self.hand_over(ready, ctx);
        let (tx, rx) = oneshot::channel();
        if self.unflushed == 0 {
            let _ = tx.send(());
        } else {
            self.drained.push(tx);
        }
        Box::pin(
            async move {
                let _ = rx.await;
            }
            .into_actor(self)
            .map(|_, act, _| act.counters),
        )
    }
}

//! KafkaSource: a consumer-group member feeding the accumulator.
//!
//! Runs on its own arbiter because librdkafka's `poll` blocks (at most `POLL_WAIT`) and runs
//! the rebalance callback on the polling thread. A self-driven loop: poll a batch (one buffer
//! per poll, `batch.rs`) → hand it to the accumulator → poll the next while up to `IN_FLIGHT`
//! hand-overs wait for their replies. The accumulator holds its reply back while too much
//! waits for the lake; when the slots have been full for `BACKPRESSURE_AFTER`, the member
//! pauses the assigned partitions in librdkafka and goes on polling, with nothing fetched:
//! polls are what serve the group's rebalances and `max.poll.interval.ms`, so a member behind
//! a slow lake still hands its partitions over when the group asks (memory stays bounded by
//! librdkafka's prefetch queue plus `--max-unflushed` batches). Positions come from the lake on
//! every assignment (see `kafka::consumer`); records of revoked partitions polled in the same
//! batch are discarded. Inputs: [`DrainTo`](crate::messages::DrainTo) and
//! [`StopConsuming`](crate::messages::StopConsuming) (`drain.rs`: reply once every owned
//! partition reached its target), [`CloseConsumer`], [`Resync`] (another writer committed part
//! of a partition first: recover it again, seek to the lake's new end, resume the accumulator
//! there). Group offsets are committed by the committer after the lake has the data. The
//! rebalance hooks are in `sink_hooks.rs`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use tokio::sync::oneshot;

use crate::kafka::consumer::{AssignmentChange, SinkContext};
use crate::lake::{Lake, LakeError, PartitionRecovery};
use crate::messages::{CloseConsumer, Records, Resume, ResumeAt, Resync};
use crate::sink::SourceRecord;

use super::accumulator::Accumulator;
use super::sink_hooks::recover_one;

mod batch;
mod drain;

use batch::ReadBatch;

/// Records per hand-over to the accumulator.
const BATCH_MAX: usize = 8192;
/// How long one poll waits for a record. Messages to this actor (a drain, the close) wait for
/// the poll in progress: at 100 ms that was a tenth of a second at each step of a sink's end.
const POLL_WAIT: Duration = Duration::from_millis(20);
/// Hand-overs that may wait for the accumulator at once. With one, reading and decoding took
/// turns; with two, the next batch is read (and librdkafka's queue drained) meanwhile.
const IN_FLIGHT: usize = 2;

pub struct KafkaSource {
    consumer: Option<Arc<BaseConsumer<SinkContext>>>,
    accumulator: Addr<Accumulator>,
    /// Owned partitions → next offset to hand over (None: not known until the first record).
    positions: BTreeMap<i32, Option<i64>>,
    consumed: u64,
    drain: Option<(Vec<i64>, oneshot::Sender<u64>)>,
    stopped: bool,
    /// Since when (and why) the broker has denied the group or the topic, with neither a
    /// record nor an assignment since.
    denied_since: Option<(std::time::Instant, String)>,
    /// How to recover a partition again (the lake, on the lake's arbiter).
    recovery: Recovery,
    /// Hand-overs to the accumulator waiting for their replies: number and since when, oldest
    /// first. Up to `IN_FLIGHT`: the next batch is read while the accumulator decodes one.
    handing_over: VecDeque<(u64, Instant)>,
    handovers: u64,
    /// Partitions paused in librdkafka while a hand-over waits.
    paused: bool,
    /// Records polled while a hand-over waited (fetched before the pause took hold): the next
    /// hand-over's first.
    held: Vec<SourceRecord>,
    /// Bytes of the last batch that held records: the next one's room.
    batch_bytes: usize,
}

/// What recovering a partition needs: the lake, the source identity, the topic to seek in and
/// the arbiter that runs the lake's I/O.
#[derive(Clone)]
pub struct Recovery {
    pub lake: Lake,
    pub source: String,
    pub topic: String,
    pub io: ArbiterHandle,
}

/// A partition recovered again after a [`Resync`].
#[derive(Message)]
#[rtype(result = "()")]
struct Recovered(Result<PartitionRecovery, LakeError>);

/// How long authorization errors may go on before the sink stops: ACL changes take a moment
/// to reach every broker, and tools that rewrite ACLs remove before they add.
const DENIED_PATIENCE: Duration = Duration::from_secs(10);

#[derive(Message)]
#[rtype(result = "()")]
struct Poll;

/// While the hand-over numbered so waits: pause, and poll for the group's sake.
#[derive(Message)]
#[rtype(result = "()")]
struct KeepAlive(u64);

/// How long a hand-over may wait before the partitions are paused and polling goes on.
const BACKPRESSURE_AFTER: Duration = Duration::from_millis(500);

impl KafkaSource {
    pub fn new(
        consumer: Arc<BaseConsumer<SinkContext>>,
        accumulator: Addr<Accumulator>,
        recovery: Recovery,
    ) -> Self {
        KafkaSource {
            recovery,
            consumer: Some(consumer),
            accumulator,
            positions: BTreeMap::new(),
            consumed: 0,
            drain: None,
            stopped: false,
            denied_since: None,
            handing_over: VecDeque::new(),
            handovers: 0,
            paused: false,
            held: Vec::new(),
            batch_bytes: 0,
        }
    }

    /// Applies assignment changes; the partitions revoked, whose records the caller drops.
    fn apply(&mut self, changes: Vec<AssignmentChange>) -> Vec<i32> {
        let mut revoked = Vec::new();
        for c in changes {
            match c {
                AssignmentChange::Assigned(list) => {
                    for (p, start) in list {
                        self.positions.insert(p, start);
                    }
                }
                AssignmentChange::Revoked(list) => {
                    for p in &list {
                        self.positions.remove(p);
                    }
                    self.held.retain(|r| !list.contains(&r.partition));
                    revoked.extend(list);
                }
            }
        }
        revoked
    }

    /// Polls up to `BATCH_MAX` records, applying assignment changes as they happen.
    fn poll_batch(&mut self) -> Vec<SourceRecord> {
        let Some(consumer) = self.consumer.clone() else {
            return Vec::new();
        };
        // Room for the previous batch's bytes and an eighth more.
        let room = self.batch_bytes + self.batch_bytes / 8;
        let mut batch = ReadBatch::with_room(room, BATCH_MAX);
        let mut wait = POLL_WAIT;
        while batch.records.len() < BATCH_MAX {
            let polled = consumer.poll(wait);
            let changes = consumer.context().take_changes();
            if !changes.is_empty() {
                let revoked = self.apply(changes);
                batch.records.retain(|r| !revoked.contains(&r.partition));
                // librdkafka keeps a partition's pause across a revocation: one paused while a
                // hand-over waited and assigned again must fetch.
                if !self.paused {
                    self.set_paused(false);
                }
            }
            match polled {
                None => break,
                Some(Err(e))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::AutoOffsetReset) =>
                {
                    // The lake's position is outside what the partition holds.
                    consumer.context().fatal(format!(
                        "the lake's position is outside the topic ({e}): records expired before \
                         the sink read them, or the topic was recreated under the same name; \
                         the lake is left as it is"
                    ));
                    self.stopped = true;
                    break;
                }
                Some(Err(e)) if is_fatal(&e, consumer.client()) => {
                    // e.g. another sink runs with the same --instance-id and fenced this one.
                    consumer.context().fatal(format!("Kafka consumer: {e}"));
                    self.stopped = true;
                    break;
                }
                Some(Err(e))
                    if matches!(
                        e.rdkafka_error_code(),
                        Some(
                            rdkafka::types::RDKafkaErrorCode::GroupAuthorizationFailed
                                | rdkafka::types::RDKafkaErrorCode::TopicAuthorizationFailed
                        )
                    ) =>
                {
                    if self.denied_since.is_none() {
                        self.denied_since = Some((std::time::Instant::now(), e.to_string()));
                    }
                    crate::kafka::warn_throttled(&format!("Kafka consumer: {e}"));
                    break;
                }
                Some(Err(e)) => {
                    // Broker-side hiccups; librdkafka retries and reconnects on its own.
                    crate::kafka::warn_throttled(&format!("Kafka consumer: {e}"));
                    break;
                }
                Some(Ok(m)) => {
                    self.denied_since = None;
                    let p = m.partition();
                    let Some(pos) = self.positions.get_mut(&p) else {
                        continue; // not (or no longer) ours
                    };
                    if pos.is_some_and(|next| m.offset() < next) {
                        continue; // already handed over (a re-fetch after a seek)
                    }
                    *pos = Some(m.offset() + 1);
                    let timestamp_ms = match m.timestamp() {
                        Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
                        Timestamp::NotAvailable => -1,
                    };
                    batch.push(p, m.offset(), timestamp_ms, m.key(), m.payload());
                }
            }
            wait = Duration::ZERO;
        }
        if !self.positions.is_empty() {
            self.denied_since = None;
        }
        if let Some((since, e)) = &self.denied_since
            && since.elapsed() >= DENIED_PATIENCE
        {
            // Retrying cannot help: the member would wait forever, reading nothing.
            consumer.context().fatal(format!(
                "Kafka denies this sink's principal what a group member needs ({e}) for {}s: \
                 it needs READ on the consumer group and READ on the topic; grant them, e.g. \
                 `kafka-acls --add --allow-principal User:NAME --operation Read --group GROUP`",
                DENIED_PATIENCE.as_secs()
            ));
            self.stopped = true;
            self.denied_since = None;
        }
        if !batch.records.is_empty() {
            self.batch_bytes = batch.len_bytes();
        }
        batch.into_records()
    }
}

impl Actor for KafkaSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify(Poll);
    }
}

impl Handler<Poll> for KafkaSource {
    type Result = ();

    fn handle(&mut self, _: Poll, ctx: &mut Self::Context) {
        if self.stopped {
            return;
        }
        // A resume that failed is tried again (paused with no hand-over waiting reads nothing).
        if self.paused && !self.backed_up() {
            self.set_paused(false);
        }
        // Polled first, so that a revocation inside the poll drops its partitions' records from
        // `held` before they are taken; held records are older and go first.
        let polled = self.poll_batch();
        let mut records = std::mem::take(&mut self.held);
        records.extend(polled);
        if records.is_empty() {
            self.check_drain();
            ctx.notify(Poll);
            return;
        }
        let n = records.len() as u64;
        // Counted when handed over: a drain that stops consuming meanwhile finds them in the
        // accumulator's mailbox ahead of its flush.
        self.consumed += n;
        self.handovers += 1;
        let number = self.handovers;
        self.handing_over.push_back((number, Instant::now()));
        ctx.run_later(BACKPRESSURE_AFTER, move |_, ctx| {
            ctx.notify(KeepAlive(number))
        });
        // Enqueued now (before a drain can learn the positions were reached and ask the
        // accumulator to flush): the drain's flush comes after these records.
        let send = self.accumulator.send(Records { records });
        self.check_drain();
        // Read on while a slot is free; otherwise the reply that frees one resumes reading.
        if !self.backed_up() {
            ctx.notify(Poll);
        }
        ctx.spawn(async move { send.await.is_ok() }.into_actor(self).map(
            move |alive, act, ctx| {
                let was_backed_up = act.backed_up();
                act.handing_over.retain(|(n, _)| *n != number);
                if act.paused {
                    act.set_paused(false);
                }
                if !alive {
                    // The accumulator is gone: the pipeline is stopping; a waiting drain
                    // learns it now (its caller checks the lake) rather than after its patience.
                    act.stopped = true;
                    act.check_drain();
                    return;
                }
                act.check_drain();
                if was_backed_up {
                    ctx.notify(Poll);
                }
            },
        ));
    }
}

impl Handler<KeepAlive> for KafkaSource {
    type Result = ();

    fn handle(&mut self, KeepAlive(number): KeepAlive, ctx: &mut Self::Context) {
        // Only the newest hand-over's: the slots filled up when it was sent, and one loop
        // polls for the group however many hand-overs wait.
        let newest = self.handing_over.back().is_some_and(|(n, _)| *n == number);
        match self.handing_over.front() {
            Some(&(_, since)) if newest && self.backed_up() && !self.stopped => {
                if !self.paused {
                    tracing::debug!(
                        waited_ms = since.elapsed().as_millis() as u64,
                        "the accumulator is full: partitions paused, polling goes on"
                    );
                }
                // Again on every round: partitions assigned meanwhile are paused too.
                self.set_paused(true);
                let polled = self.poll_batch();
                self.held.extend(polled);
                self.check_drain();
                ctx.notify(KeepAlive(number));
            }
            _ => {}
        }
    }
}

impl KafkaSource {
    /// Every hand-over slot waits for the accumulator: reading pauses.
    fn backed_up(&self) -> bool {
        self.handing_over.len() >= IN_FLIGHT
    }

    /// Pauses (or resumes) fetching for every assigned partition.
    fn set_paused(&mut self, pause: bool) {
        let Some(c) = &self.consumer else { return };
        let result = match c.assignment() {
            Ok(tpl) if pause => c.pause(&tpl),
            Ok(tpl) => c.resume(&tpl),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.paused = pause;
                crate::metrics::paused(pause);
            }
            Err(e) => tracing::warn!(%e, pause, "pausing or resuming the assigned partitions"),
        }
    }
}

impl Handler<CloseConsumer> for KafkaSource {
    type Result = ();

    fn handle(&mut self, _: CloseConsumer, _ctx: &mut Self::Context) {
        self.stopped = true;
        // Dropping the last handle leaves the group at once (partitions move without waiting
        // for the session timeout); the revoke callback finds nothing left to drop.
        if let Some(c) = self.consumer.take() {
            match Arc::try_unwrap(c) {
                Ok(c) => crate::kafka::consumer::leave_group(c),
                Err(c) => {
                    tracing::debug!(
                        "consumer handle still shared; it leaves the group when released"
                    );
                    drop(c);
                }
            }
        }
    }
}

impl Handler<Resync> for KafkaSource {
    type Result = ();

    fn handle(&mut self, msg: Resync, ctx: &mut Self::Context) {
        if !self.positions.contains_key(&msg.partition) {
            return;
        }
        let r = self.recovery.clone();
        let me = ctx.address();
        r.io.clone().spawn(async move {
            // With the same patience for a lake hiccup as an assignment's recovery.
            let started = std::time::Instant::now();
            let rec = recover_one(&r.lake, &r.source, msg.partition, started).await;
            me.do_send(Recovered(rec));
        });
    }
}

impl Handler<Recovered> for KafkaSource {
    type Result = ();

    fn handle(&mut self, msg: Recovered, _ctx: &mut Self::Context) {
        let rec = match msg.0 {
            Ok(rec) => rec,
            Err(e) => {
                let error = format!("recovering a partition again: {e}");
                if let Some(c) = &self.consumer {
                    c.context().fatal(error);
                }
                return;
            }
        };
        let p = rec.partition;
        // Revoked meanwhile: the next owner recovers it.
        if !self.positions.contains_key(&p) {
            return;
        }
        // Another writer committed, so the lake has an end; from the start otherwise.
        let to = rec
            .next_offset
            .map_or(rdkafka::Offset::Beginning, rdkafka::Offset::Offset);
        if let Some(c) = &self.consumer
            && let Err(e) = c.seek(&self.recovery.topic, p, to, Duration::from_secs(10))
        {
            c.context()
                .fatal(format!("seeking partition {p} to {to:?}: {e}"));
            return;
        }
        self.positions.insert(p, rec.next_offset);
        // Records held from before the seek are behind (or beside) the new position.
        self.held.retain(|r| r.partition != p);
        tracing::info!(
            partition = p,
            offset = ?rec.next_offset,
            epoch = rec.epoch,
            "partition resumed after another writer's commit"
        );
        // After the seek, before any record fetched from the new position.
        self.accumulator.do_send(ResumeAt {
            positions: vec![Resume {
                partition: p,
                offset: rec.next_offset,
                epoch: rec.epoch,
            }],
        });
    }
}

/// Errors after which librdkafka's consumer cannot go on (fenced static member, …).
fn is_fatal<C: rdkafka::client::ClientContext>(
    e: &rdkafka::error::KafkaError,
    client: &rdkafka::client::Client<C>,
) -> bool {
    matches!(e, rdkafka::error::KafkaError::MessageConsumptionFatal(_))
        || client.fatal_error().is_some()
}

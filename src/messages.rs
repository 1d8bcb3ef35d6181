//! Every message that flows between encore's actors: the single catalogue of what moves where.
//!
//! Data paths carry batches (many events per message) and are sent with `send().await`, so a
//! full mailbox slows the sender down instead of growing memory or dropping data.

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;

use crate::bus::BusRecord;
use crate::event::{EVENT_TYPES, EventType};
use crate::lake::{LakeError, Range};
use crate::sink::{PendingBatch, SourceRecord};

/// One encoded event on its way to the topic.
#[derive(Clone, Debug)]
pub struct OutRecord {
    /// The user id (per-listener ordering on the topic).
    pub key: Bytes,
    /// The JSON event.
    pub value: Bytes,
    pub event_type: EventType,
    pub ts_ms: i64,
    /// Set for records `--inject` added or altered.
    pub injected: Option<Injected>,
}

/// What `--inject` did to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    /// Not a valid event (`event_type` is that of the event it was made from).
    Malformed,
    /// A 2 MiB record, not a valid event.
    Oversized,
    /// An earlier event of the same listener, sent again.
    Duplicate,
    /// A valid event stamped hours earlier.
    Late,
}

/// Listener (realtime) or Conductor (max-rate, a tick of every listener's events) → Publisher:
/// records in the order they must reach the topic.
#[derive(Message, Debug)]
#[rtype(result = "Result<Admission, PublishError>")]
pub struct SimEvents {
    pub records: Vec<OutRecord>,
}

/// Publisher → sender: how much of a [`SimEvents`] batch was published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    pub accepted: usize,
    /// The run's `--events` limit is reached: the listener stops.
    pub limit_reached: bool,
}

/// Why publishing failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    #[error("the bus is gone (pipeline stopping)")]
    BusClosed,
    #[error("writing to stdout: {0}")]
    Stdout(String),
    #[error("Kafka: {0}")]
    Kafka(String),
    #[error("{0}")]
    Undelivered(String),
}

/// Conductor → Listener (`--max-rate`): emit every event before `until_ms` on the simulated
/// clock (within the listener's quota) and reply with them; the conductor publishes the tick.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "ListenerStatus")]
pub struct Advance {
    pub until_ms: i64,
}

/// A listener's reply to [`Advance`].
#[derive(Debug, Default, MessageResponse)]
pub struct ListenerStatus {
    /// Events emitted during this tick.
    pub emitted: u64,
    /// Its records of the tick, in order (injected ones included).
    pub records: Vec<OutRecord>,
    /// Its quota is used up: it will emit nothing more.
    pub done: bool,
}

/// Conductor → Listener: stop emitting (shutdown step 1).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct StopListening;

/// Pipeline driver → Conductor: start driving the listeners.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct StartListeners;

/// Pipeline driver → Publisher: everything sent before is on the topic when this returns
/// (shutdown step 2).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<PublisherCounters, PublishError>")]
pub struct DrainPublisher;

/// Cumulative publisher counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublisherCounters {
    /// Events handed to the back end.
    pub published: u64,
    pub by_type: [u64; EVENT_TYPES],
    pub bytes: u64,
    /// Kafka only: delivery reports, acknowledged by the broker (acks=all) or failed.
    pub acked: u64,
    pub failed: u64,
    /// Sent again after a transient delivery failure (a broker restart).
    pub retried: u64,
    /// Of `retried`, those the broker may already have written (possible duplicates).
    pub possibly_duplicated: u64,
    /// `--inject`: records that are not valid events (malformed and oversized), counted in
    /// `published` but not in `by_type`.
    pub malformed: u64,
    /// `--inject`: valid events sent again, and valid events stamped late (both in `by_type`).
    pub duplicates: u64,
    pub late: u64,
}

impl PublisherCounters {
    /// Valid events published (every record minus the injected malformed ones).
    pub fn events(&self) -> u64 {
        self.published - self.malformed
    }
}

/// Publisher → Bus: append records (partition, record) in order.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Append {
    pub records: Vec<(usize, BusRecord)>,
}

/// Consumer → Bus: up to `max_records` from the given positions (next offset per partition,
/// indexed by partition); waits up to `wait` for data when there is none.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Vec<SourceRecord>")]
pub struct Fetch {
    pub positions: Vec<i64>,
    pub max_records: usize,
    pub wait: std::time::Duration,
}

/// Committer → source (bus or Kafka consumer): `next_offset` of `partition` is durable in the
/// lake; the source may forget what lies below it.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct CommitOffset {
    pub partition: i32,
    pub next_offset: i64,
}

/// Anyone → Bus: the next offset to be written, per partition.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Vec<i64>")]
pub struct GetHighWatermarks;

/// Consumer → Accumulator: records in offset order per partition.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Records {
    pub records: Vec<SourceRecord>,
}

/// Pipeline driver → Consumer: the reply is a receiver that resolves (to the records consumed) once
/// every record below `targets` (per partition) has been handed to the accumulator (shutdown
/// step 3). A receiver rather than a future reply: the consumers' poll loops keep their
/// contexts busy, and a pending reply future could starve behind them.
#[derive(Message, Debug, Clone)]
#[rtype(result = "tokio::sync::oneshot::Receiver<u64>")]
pub struct DrainTo {
    pub targets: Vec<i64>,
}

/// Kafka consumer (rebalance) → Accumulator: these partitions left this member. Drop their
/// buffered and queued batches; reply once none of their batches is being committed.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Revoke {
    pub partitions: Vec<i32>,
}

/// Kafka consumer (rebalance) → Accumulator: these partitions arrive and the lake resumes each
/// at this offset. A partition's first batch starts there even when its first record comes
/// later (offsets of aborted transactions and transaction markers hold no record), so that
/// committed ranges stay contiguous.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ResumeAt {
    pub positions: Vec<Resume>,
}

/// Kafka source → Accumulator (at a drain): the consumer's position in `partition` reached
/// `to` with no record after those handed over; the range to commit reaches it.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct AdvanceTo {
    pub partition: i32,
    /// Where reading began, for a partition the lake had nothing of (its low watermark).
    pub start: Option<i64>,
    pub to: i64,
}

/// Where one partition resumes, and the epoch of this writer's claim on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    pub partition: i32,
    /// The first offset not in the lake; None: nothing committed yet (the first record's).
    pub offset: Option<i64>,
    pub epoch: u64,
}

/// Flush task → Accumulator: this writer may not commit the partition any more (revoked,
/// superseded, or another writer committed the same offsets first).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct PartitionLost {
    pub partition: i32,
    /// The epoch the batch was written under: a loss from before a newer assignment of the
    /// partition is not the new one's.
    pub epoch: u64,
    pub error: Arc<LakeError>,
}

/// Accumulator → Kafka consumer: another writer committed part of this partition first;
/// recover it again and read on from the lake's new end.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Resync {
    pub partition: i32,
}

/// Pipeline driver → Kafka consumer: stop polling; replies with the records handed over so far
/// (all of them are with the accumulator by then).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "u64")]
pub struct StopConsuming;

/// Pipeline driver → Kafka consumer: leave the group now (after the final flush).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct CloseConsumer;

/// Pipeline driver → Accumulator: flush every buffer now and reply when all are committed
/// (shutdown step 4).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "SinkCounters")]
pub struct FlushAll;

/// Cumulative accumulator counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkCounters {
    pub consumed: u64,
    pub rejected: u64,
}

/// Accumulator (flush task) → Flusher: encode and commit one batch to the lake.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Durable, Arc<LakeError>>")]
pub struct Flush {
    pub batch: Arc<PendingBatch>,
    /// Who commits it: the epoch and the revocation flag of its partition.
    pub fence: crate::lake::Fence,
    /// A retry first looks whether an earlier attempt committed (its answer lost).
    pub attempt: crate::lake::Attempt,
}

/// Flusher → Committer (via the flush task): a range is committed in the lake.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Durable {
    pub range: Range,
    pub rows: u64,
    pub rejected: u64,
    pub files: u64,
    pub bytes: u64,
    /// For the metrics: the rejected records by reason, the latest event time committed.
    pub rejected_by_reason: std::collections::BTreeMap<&'static str, u64>,
    pub last_event_ms: Option<i64>,
}

/// Flush task → Accumulator: the partition's in-flight batch is committed; send the next.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct FlushDone {
    pub partition: i32,
}

/// Anyone → Committer: what is committed so far.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "CommitCounters")]
pub struct GetCommitted;

/// Cumulative committer counters: what is durable in the lake.
#[derive(Clone, Debug, Default, PartialEq, Eq, MessageResponse)]
pub struct CommitCounters {
    pub rows: u64,
    pub rejected: u64,
    pub files: u64,
    pub bytes: u64,
    pub batches: u64,
    /// Next offset per partition (what the lake holds below).
    pub positions: Vec<i64>,
}

/// Any actor → Supervisor: an actor failed and is being restarted.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ActorFailed {
    pub actor: &'static str,
    pub error: String,
}

/// Any actor → Supervisor: the run should end (drain and stop).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct StopRun {
    pub reason: StopReason,
}

/// Why a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `--duration` elapsed.
    Duration,
    /// `--events` reached.
    EventLimit,
    /// SIGINT or SIGTERM.
    Signal(&'static str),
    /// Whoever read the output (stdout) went away.
    OutputClosed,
    /// `encore sink --exit-at-end`: the topic's end as it was at start is read.
    EndOfTopic,
    /// The restart budget is exhausted: stop without a full drain, exit non-zero.
    Fatal(String),
}

/// Anyone → Supervisor: restarts counted so far.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "u32")]
pub struct GetRestarts;

/// Actors → Stats: a cumulative snapshot for the live progress display.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum Progress {
    Published(PublisherCounters),
    Consumed(SinkCounters),
    Committed { rows: u64, files: u64, offsets: u64 },
    HighWatermarks(u64),
    Restarts(u32),
}

/// Pipeline → ClickHouseDdl: make the ClickHouse schema match what encore expects (create what
/// is missing; with `recreate`, drop and create everything). Connection failures are retried
/// within the patience of the actor's client; a server error or drift ends the request at once.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(
    result = "Result<crate::clickhouse::setup::SetupReport, crate::clickhouse::setup::SetupError>"
)]
pub struct ApplySchema {
    pub recreate: bool,
}

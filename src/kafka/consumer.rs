//! The consuming half of the Kafka glue: a group member whose positions come from the lake.
//!
//! librdkafka calls the rebalance callback on the thread that polls (the consumer actor's own
//! arbiter). On revocation the [`RebalanceHooks`] drop the partitions' unflushed state and wait
//! until none of their batches is being committed; on assignment they recover each partition
//! from the lake, and the consumer starts exactly after the last committed offset. The group's
//! committed offsets are never used to position the consumer: the lake is the source of truth.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use super::{KafkaConnection, KafkaSetupError, log_client_error, log_to_tracing};

/// Why assigned partitions could not be recovered from the lake.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("the lake's arbiter is gone")]
    ArbiterGone,
    #[error("recovery was interrupted")]
    Interrupted,
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
}

/// What the pipeline does when partitions come and go. Both calls block the polling thread;
/// they must not need that thread to make progress.
pub trait RebalanceHooks: Send + Sync {
    /// The partitions leave this member: drop their unflushed records; return once none of
    /// their batches is still being committed.
    fn revoke(&self, partitions: &[i32]);
    /// The partitions arrive: recover each from the lake; the next offset to read for each
    /// (None: from the beginning of the partition).
    fn assign(&self, partitions: &[i32]) -> Result<Vec<Option<i64>>, RecoveryError>;
    /// Assignment failed for good: the run must stop.
    fn fatal(&self, error: String);
}

/// A change of assignment, for the consumer actor to apply after `poll` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentChange {
    /// (partition, next offset to read; None = from the beginning)
    Assigned(Vec<(i32, Option<i64>)>),
    Revoked(Vec<i32>),
}

/// The consumer's context: logging plus the lake-driven rebalance.
pub struct SinkContext {
    topic: String,
    hooks: OnceLock<Box<dyn RebalanceHooks>>,
    changes: Mutex<Vec<AssignmentChange>>,
}

impl SinkContext {
    /// Stops the run (through the hooks) with `error`.
    pub fn fatal(&self, error: String) {
        match self.hooks.get() {
            Some(h) => h.fatal(error),
            None => tracing::error!("{error}"),
        }
    }

    /// Changes since the last call, in order.
    pub fn take_changes(&self) -> Vec<AssignmentChange> {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn push(&self, c: AssignmentChange) {
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c);
    }

    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }
}

impl ClientContext for SinkContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }

    /// With metrics on, librdkafka reports each fetched partition's high watermark as it saw
    /// it in fetch responses: lag without a request of ours.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for topic in statistics.topics.values() {
            for p in topic.partitions.values().filter(|p| p.partition >= 0) {
                crate::metrics::high_watermark(p.partition, p.hi_offset);
            }
        }
    }
}

impl ConsumerContext for SinkContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let Some(hooks) = self.hooks.get() else {
            tracing::error!("rebalance before the sink was wired; assigning nothing");
            let _ = consumer.unassign();
            return;
        };
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let parts = self.partitions(tpl);
                match hooks.assign(&parts) {
                    Ok(starts) => {
                        let mut assigned = Vec::with_capacity(parts.len());
                        for (p, start) in parts.iter().zip(starts) {
                            let offset = start.map_or(Offset::Beginning, Offset::Offset);
                            if let Err(e) = tpl.set_partition_offset(&self.topic, *p, offset) {
                                tracing::error!(partition = p, %e, "setting the start offset");
                            }
                            assigned.push((*p, start));
                        }
                        tracing::info!(?assigned, "partitions assigned; positions from the lake");
                        if let Err(e) = consumer.assign(tpl) {
                            hooks.fatal(format!("assigning partitions: {e}"));
                            return;
                        }
                        self.push(AssignmentChange::Assigned(assigned));
                    }
                    Err(e) => {
                        let _ = consumer.assign(&TopicPartitionList::new());
                        hooks.fatal(format!(
                            "cannot recover assigned partitions {parts:?} from the lake: {e}"
                        ));
                    }
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let parts = self.partitions(tpl);
                tracing::info!(partitions = ?parts, "partitions revoked; dropping their unflushed records");
                hooks.revoke(&parts);
                self.push(AssignmentChange::Revoked(parts));
                let _ = consumer.unassign();
            }
            other => {
                tracing::error!(error = ?other, "rebalance error; unassigning");
                let parts = self.partitions(tpl);
                hooks.revoke(&parts);
                self.push(AssignmentChange::Revoked(parts));
                let _ = consumer.unassign();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        // Group offsets only serve lag monitoring: a failed commit is worth a debug line.
        if let Err(e) = result {
            tracing::debug!(%e, "group offset commit failed");
        }
    }
}

/// A group member for `topic`, not yet subscribed (wire the hooks first).
pub struct SinkConsumer {
    pub consumer: Arc<BaseConsumer<SinkContext>>,
    topic: String,
}

impl SinkConsumer {
    /// `instance_id`: static membership (`group.instance.id`): a member restarted under the
    /// same id takes its partitions back at once instead of after the session timeout.
    pub fn new(
        cfg: &KafkaConnection,
        topic: &str,
        group: &str,
        instance_id: Option<&str>,
    ) -> Result<Self, KafkaSetupError> {
        let mut c = cfg.client_config();
        if let Some(id) = instance_id {
            c.set("group.instance.id", id);
        }
        if crate::metrics::enabled() {
            c.set("statistics.interval.ms", "1000");
        }
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // The lake gives every start position; one the partition no longer has (records
            // expired, or the topic was recreated) is an error, never a silent jump.
            .set("auto.offset.reset", "error")
            // librdkafka stops fetching a partition once its local queue holds
            // queued.min.messages / queued.max.messages.kbytes and retries after this backoff
            // (1 s by default): a sink that drains the queue in 0.3 s then idled 0.7 s of
            // every second (105 000 rows/s where 220 000 are possible, measured).
            // (Larger fetches, max.partition.fetch.bytes 8 MiB, gained nothing and cost
            // 230 MB of RSS.)
            .set("fetch.queue.backoff.ms", "20");
        // session.timeout.ms stays at librdkafka's 45 s: a member rides out a broker that is
        // away for a while without losing its partitions. Faster failover of a member that
        // dies: --kafka-config session.timeout.ms=10000; of one that restarts: --instance-id.
        for (k, v) in &cfg.extra {
            c.set(k, v);
        }
        let consumer: BaseConsumer<SinkContext> = c
            .create_with_context(SinkContext {
                topic: topic.to_string(),
                hooks: OnceLock::new(),
                changes: Mutex::new(Vec::new()),
            })
            .map_err(KafkaSetupError::settings("Kafka consumer"))?;
        Ok(SinkConsumer {
            consumer: Arc::new(consumer),
            topic: topic.to_string(),
        })
    }

    /// Wires the rebalance hooks and joins the group.
    pub fn subscribe(&self, hooks: Box<dyn RebalanceHooks>) -> Result<(), KafkaSetupError> {
        if self.consumer.context().hooks.set(hooks).is_err() {
            return Err(KafkaSetupError::AlreadySubscribed);
        }
        self.consumer
            .subscribe(&[&self.topic])
            .map_err(|source| KafkaSetupError::Subscribe {
                topic: self.topic.clone(),
                source,
            })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

/// Leaves the group and waits until the consumer is closed, polling in short steps (the
/// revoke callback runs in them), then destroys it on a thread of its own. rust-rdkafka's
/// drop does the same 100 ms at a time, and its last poll waits out the whole 100 ms after
/// the close is done; the drop that follows finds the consumer closed, and only joins
/// librdkafka's threads (~15 ms that the caller need not wait for).
pub fn leave_group(c: BaseConsumer<SinkContext>) {
    if c.close_queue().is_ok() {
        let deadline = Instant::now() + CLOSE_WAIT;
        while !c.closed() && Instant::now() < deadline {
            // Records polled now belong to partitions being handed over: dropped, as by the
            // drop.
            let _ = c.poll(Duration::from_millis(5));
        }
    }
    if c.closed() {
        drop(super::teardown::Detached::new(c));
    }
    // Otherwise (the close was refused, or timed out) the drop here tries again, and logs why.
}

/// How long the close may take here before the drop takes over.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// A consumer for reading by assignment (`tail`, `status`). librdkafka's assign() needs a
/// group.id, but `unused_group` is never joined and nothing is committed to it.
/// `partition_eof`: report the end of each partition (an end can be a transaction marker,
/// which no record reaches).
pub fn reader(
    cfg: &KafkaConnection,
    unused_group: &str,
    partition_eof: bool,
) -> Result<BaseConsumer<super::EncoreContext>, KafkaSetupError> {
    let mut c = cfg.client_config();
    c.set("group.id", unused_group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A start offset removed by retention between the plan and the fetch: the oldest left.
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set(
            "enable.partition.eof",
            if partition_eof { "true" } else { "false" },
        );
    c.create_with_context(super::EncoreContext)
        .map_err(KafkaSetupError::settings("Kafka consumer"))
}

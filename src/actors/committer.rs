//! Committer: the lake says a range is durable; tell the source and keep the totals.
//!
//! Input: [`Durable`] (in offset order per partition), [`GetCommitted`]. Output:
//! [`CommitOffset`] to the source: the bus notes it; Kafka gets the group offset committed
//! (asynchronously), for lag monitoring only: the lake is the source of truth for progress.
//! Never awaited: a Kafka consumer blocked in a rebalance waits for in-flight batches, whose
//! completion passes through here.

use actix::prelude::*;

use crate::messages::{CommitCounters, CommitOffset, Durable, GetCommitted, Progress};

use super::stats::Stats;

/// Tells the source that a position is durable.
pub type CommitTarget = Box<dyn Fn(CommitOffset)>;

/// The in-process bus as a commit target.
pub fn bus_target(bus: Recipient<CommitOffset>) -> CommitTarget {
    Box::new(move |c| bus.do_send(c))
}

/// A Kafka consumer as a commit target: an asynchronous group offset commit. A weak handle:
/// closing the consumer (leaving the group) must not wait for the committer to go away.
pub fn kafka_target(
    consumer: std::sync::Weak<rdkafka::consumer::BaseConsumer<crate::kafka::consumer::SinkContext>>,
    topic: String,
) -> CommitTarget {
    use rdkafka::consumer::{CommitMode, Consumer};
    Box::new(move |c| {
        let Some(consumer) = consumer.upgrade() else {
            return; // closed: the group offset only served monitoring
        };
        let mut tpl = rdkafka::TopicPartitionList::new();
        if tpl
            .add_partition_offset(&topic, c.partition, rdkafka::Offset::Offset(c.next_offset))
            .is_ok()
            && let Err(e) = consumer.commit(&tpl, CommitMode::Async)
        {
            tracing::debug!(%e, partition = c.partition, "group offset commit not sent");
        }
    })
}

pub struct Committer {
    source: CommitTarget,
    counters: CommitCounters,
    stats: Option<Addr<Stats>>,
}

impl Committer {
    /// `positions`: next offset per partition at start (from lake recovery).
    pub fn new(source: CommitTarget, positions: Vec<i64>, stats: Option<Addr<Stats>>) -> Self {
        Committer {
            source,
            counters: CommitCounters {
                positions,
                ..CommitCounters::default()
            },
            stats,
        }
    }
}

impl Actor for Committer {
    type Context = Context<Self>;
}

impl Handler<Durable> for Committer {
    type Result = ();

    fn handle(&mut self, msg: Durable, _ctx: &mut Self::Context) {
        let c = &mut self.counters;
        c.rows += msg.rows;
        c.rejected += msg.rejected;
        c.files += msg.files;
        c.bytes += msg.bytes;
        c.batches += 1;
        let p = msg.range.partition as usize;
        if c.positions.len() <= p {
            c.positions.resize(p + 1, 0);
        }
        c.positions[p] = c.positions[p].max(msg.range.last + 1);
        crate::metrics::committed(&crate::metrics::Committed {
            partition: msg.range.partition,
            next_offset: msg.range.last + 1,
            rows: msg.rows,
            files: msg.files,
            bytes: msg.bytes,
            rejected: &msg.rejected_by_reason,
            last_event_ms: msg.last_event_ms,
        });
        tracing::debug!(
            partition = msg.range.partition,
            first = msg.range.first,
            last = msg.range.last,
            rows = msg.rows,
            "range committed"
        );
        if let Some(s) = &self.stats {
            s.do_send(Progress::Committed {
                rows: c.rows,
                files: c.files,
                offsets: c.positions.iter().map(|o| *o as u64).sum(),
            });
        }
        (self.source)(CommitOffset {
            partition: msg.range.partition,
            next_offset: msg.range.last + 1,
        });
    }
}

impl Handler<GetCommitted> for Committer {
    type Result = CommitCounters;

    fn handle(&mut self, _: GetCommitted, _ctx: &mut Self::Context) -> CommitCounters {
        self.counters.clone()
    }
}

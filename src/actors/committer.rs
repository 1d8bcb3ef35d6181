//! Committer: the lake says a range is durable; tell the source and keep the totals.
//!
//! Input: [`Durable`] (in offset order per partition), [`GetCommitted`]. Output:
//! [`CommitOffset`] to the source (the bus frees memory; a Kafka consumer commits the group
//! offset, for lag monitoring only: the lake is the source of truth for progress).

use actix::prelude::*;

use crate::messages::{CommitCounters, CommitOffset, Durable, GetCommitted, Progress};

use super::stats::Stats;

pub struct Committer {
    source: Recipient<CommitOffset>,
    counters: CommitCounters,
    stats: Option<Addr<Stats>>,
}

impl Committer {
    /// `positions`: next offset per partition at start (from lake recovery).
    pub fn new(
        source: Recipient<CommitOffset>,
        positions: Vec<i64>,
        stats: Option<Addr<Stats>>,
    ) -> Self {
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
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Durable, _ctx: &mut Self::Context) -> Self::Result {
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
        let send = self.source.send(CommitOffset {
            partition: msg.range.partition,
            next_offset: msg.range.last + 1,
        });
        Box::pin(async move {
            let _ = send.await;
        })
    }
}

impl Handler<GetCommitted> for Committer {
    type Result = CommitCounters;

    fn handle(&mut self, _: GetCommitted, _ctx: &mut Self::Context) -> CommitCounters {
        self.counters.clone()
    }
}

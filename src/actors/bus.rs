//! Bus: the in-process stand-in for a Kafka topic (the default of `encore run`).
//!
//! Inputs: [`Append`] from the publisher (waits while the log is over capacity), [`Fetch`]
//! from the consumer (long poll; its positions also release what the consumer has taken),
//! [`CommitOffset`] from the committer (nothing to do here: records are already released on
//! fetch, and the committer reports the durable position for lag), and
//! [`GetHighWatermarks`]. The log itself is the pure [`crate::bus::Log`].

use std::collections::VecDeque;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::bus::{BusRecord, Log};
use crate::messages::{Append, CommitOffset, Fetch, GetHighWatermarks, Progress};
use crate::sink::SourceRecord;

use super::stats::Stats;

struct Waiter {
    positions: Vec<i64>,
    max_records: usize,
    reply: oneshot::Sender<Vec<SourceRecord>>,
}

/// An append waiting for room, with its reply.
type BlockedAppend = (Vec<(usize, BusRecord)>, oneshot::Sender<()>);

pub struct Bus {
    log: Log,
    waiters: Vec<Waiter>,
    blocked: VecDeque<BlockedAppend>,
    /// Partition to read first on the next fetch, rotated for fairness.
    next_first: usize,
    stats: Option<Addr<Stats>>,
}

impl Bus {
    pub fn new(log: Log, stats: Option<Addr<Stats>>) -> Self {
        Bus {
            log,
            waiters: Vec::new(),
            blocked: VecDeque::new(),
            next_first: 0,
            stats,
        }
    }

    fn apply(&mut self, records: Vec<(usize, BusRecord)>) {
        for (p, r) in records {
            self.log.append(p, r);
        }
    }

    fn read(&mut self, positions: &[i64], max: usize) -> Vec<SourceRecord> {
        let mut out = Vec::new();
        let n = self.log.partitions();
        // Share one fetch among partitions so none starves.
        let per_partition = (max / n.max(1)).max(1);
        for i in 0..n {
            let p = (self.next_first + i) % n;
            if out.len() >= max {
                break;
            }
            let from = positions.get(p).copied().unwrap_or(0);
            self.log
                .read(p, from, per_partition.min(max - out.len()), &mut out);
        }
        self.next_first = (self.next_first + 1) % n.max(1);
        out
    }

    fn wake_waiters(&mut self) {
        for w in std::mem::take(&mut self.waiters) {
            if w.reply.is_closed() {
                continue;
            }
            let records = self.read(&w.positions, w.max_records);
            if records.is_empty() {
                self.waiters.push(w);
            } else {
                let _ = w.reply.send(records);
            }
        }
    }

    /// Applies blocked appends while there is room.
    fn unblock(&mut self) {
        let mut applied = false;
        while self.log.has_room() {
            let Some((records, reply)) = self.blocked.pop_front() else {
                break;
            };
            self.apply(records);
            let _ = reply.send(());
            applied = true;
        }
        if applied {
            self.wake_waiters();
        }
    }

    fn high_total(&self) -> u64 {
        (0..self.log.partitions())
            .map(|p| self.log.high_watermark(p) as u64)
            .sum()
    }

    /// The gauges: each partition's high watermark, the bytes held and the capacity.
    fn report_metrics(&self) {
        for p in 0..self.log.partitions() {
            crate::metrics::high_watermark(p as i32, self.log.high_watermark(p));
        }
        crate::metrics::bus_fill(self.log.retained_bytes(), self.log.capacity_bytes());
    }
}

impl Actor for Bus {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if crate::metrics::enabled() {
            // At once too: a scrape in the first second (the first batches are cut early)
            // must find the gauges.
            self.report_metrics();
            ctx.run_interval(std::time::Duration::from_secs(1), |act, _| {
                act.report_metrics()
            });
        }
        if self.stats.is_some() {
            ctx.run_interval(std::time::Duration::from_millis(500), |act, _| {
                if let Some(s) = &act.stats {
                    s.do_send(Progress::HighWatermarks(act.high_total()));
                }
            });
        }
    }
}

impl Handler<Append> for Bus {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Append, _ctx: &mut Self::Context) -> Self::Result {
        if self.blocked.is_empty() && self.log.has_room() {
            self.apply(msg.records);
            self.wake_waiters();
            return Box::pin(async {});
        }
        let (tx, rx) = oneshot::channel();
        self.blocked.push_back((msg.records, tx));
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<Fetch> for Bus {
    type Result = ResponseFuture<Vec<SourceRecord>>;

    fn handle(&mut self, msg: Fetch, _ctx: &mut Self::Context) -> Self::Result {
        for (p, next) in msg.positions.iter().enumerate().take(self.log.partitions()) {
            self.log.trim(p, *next);
        }
        self.unblock();
        let records = self.read(&msg.positions, msg.max_records);
        if !records.is_empty() || msg.wait.is_zero() {
            return Box::pin(async move { records });
        }
        self.waiters.retain(|w| !w.reply.is_closed());
        let (tx, rx) = oneshot::channel();
        self.waiters.push(Waiter {
            positions: msg.positions,
            max_records: msg.max_records,
            reply: tx,
        });
        let wait = msg.wait;
        Box::pin(async move {
            match tokio::time::timeout(wait, rx).await {
                Ok(Ok(records)) => records,
                _ => Vec::new(),
            }
        })
    }
}

impl Handler<CommitOffset> for Bus {
    type Result = ();

    fn handle(&mut self, _: CommitOffset, _ctx: &mut Self::Context) {}
}

impl Handler<GetHighWatermarks> for Bus {
    type Result = Vec<i64>;

    fn handle(&mut self, _: GetHighWatermarks, _ctx: &mut Self::Context) -> Vec<i64> {
        (0..self.log.partitions())
            .map(|p| self.log.high_watermark(p))
            .collect()
    }
}

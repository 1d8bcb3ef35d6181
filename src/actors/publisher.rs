//! Publisher: puts listeners' events on the topic.
//!
//! Input: [`SimEvents`] batches, [`DrainPublisher`]. Back ends behind one interface: the
//! in-process [`Bus`] (default of `encore run`), or stdout as JSON lines (`encore simulate`
//! without brokers). Messages are handled one at a time (`AtomicResponse`) and the mailbox is
//! bounded, so a slow topic slows the listeners down. Records are partitioned by key with
//! Kafka's murmur2 partitioner. Enforces the realtime `--events` limit and reports
//! [`StopRun`] when it is reached.

use std::io::Write;

use actix::prelude::*;

use crate::bus::BusRecord;
use crate::messages::{
    Admission, Append, DrainPublisher, Progress, PublishError, PublisherCounters, SimEvents,
    StopReason, StopRun,
};
use crate::partition::partition_for;

use super::bus::Bus;
use super::stats::Stats;
use super::supervisor::Supervisor;

/// Batches queued in the publisher's mailbox before listeners wait.
const MAILBOX: usize = 64;

/// Where published records go.
pub enum Backend {
    Bus(Addr<Bus>),
    /// JSON lines on stdout.
    Stdout(std::io::BufWriter<std::io::Stdout>),
}

pub struct Publisher {
    backend: Backend,
    partitions: u32,
    limit: Option<u64>,
    counters: PublisherCounters,
    supervisor: Addr<Supervisor>,
    stats: Option<Addr<Stats>>,
    limit_signalled: bool,
}

impl Publisher {
    pub fn new(
        backend: Backend,
        partitions: u32,
        limit: Option<u64>,
        supervisor: Addr<Supervisor>,
        stats: Option<Addr<Stats>>,
    ) -> Self {
        Publisher {
            backend,
            partitions: partitions.max(1),
            limit,
            counters: PublisherCounters::default(),
            supervisor,
            stats,
            limit_signalled: false,
        }
    }

    fn count(&mut self, records: &[crate::messages::OutRecord]) {
        for r in records {
            self.counters.by_type[r.event_type.index()] += 1;
            self.counters.bytes += r.value.len() as u64;
        }
        self.counters.published += records.len() as u64;
    }
}

impl Actor for Publisher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        if self.stats.is_some() {
            ctx.run_interval(std::time::Duration::from_millis(500), |act, _| {
                if let Some(s) = &act.stats {
                    s.do_send(Progress::Published(act.counters));
                }
            });
        }
    }
}

impl Handler<SimEvents> for Publisher {
    type Result = AtomicResponse<Self, Result<Admission, PublishError>>;

    fn handle(&mut self, msg: SimEvents, _ctx: &mut Self::Context) -> Self::Result {
        let mut records = msg.records;
        let mut limit_reached = false;
        if let Some(limit) = self.limit {
            let left = limit.saturating_sub(self.counters.published) as usize;
            if records.len() >= left {
                records.truncate(left);
                limit_reached = true;
            }
        }
        if limit_reached && !self.limit_signalled {
            self.limit_signalled = true;
            self.supervisor.do_send(StopRun {
                reason: StopReason::EventLimit,
            });
        }
        let admission = Admission {
            accepted: records.len(),
            limit_reached,
        };
        match &mut self.backend {
            Backend::Stdout(out) => {
                let res = records.iter().try_for_each(|r| {
                    out.write_all(&r.value)?;
                    out.write_all(b"\n")
                });
                let res = match res {
                    Ok(()) => {
                        self.count(&records);
                        Ok(admission)
                    }
                    Err(e) => {
                        // A closed pipe (`encore simulate | head`) ends the run normally.
                        self.supervisor.do_send(StopRun {
                            reason: StopReason::OutputClosed,
                        });
                        Err(PublishError::Stdout(e.to_string()))
                    }
                };
                AtomicResponse::new(Box::pin(fut::ready(res)))
            }
            Backend::Bus(bus) => {
                let now = chrono::Utc::now().timestamp_millis();
                let parts = self.partitions;
                let appends: Vec<(usize, BusRecord)> = records
                    .iter()
                    .map(|r| {
                        (
                            partition_for(&r.key, parts) as usize,
                            BusRecord {
                                key: r.key.clone(),
                                value: r.value.clone(),
                                timestamp_ms: now,
                            },
                        )
                    })
                    .collect();
                let send = bus.send(Append { records: appends });
                AtomicResponse::new(Box::pin(send.into_actor(self).map(
                    move |res, act, _| match res {
                        Ok(()) => {
                            act.count(&records);
                            Ok(admission)
                        }
                        Err(_) => Err(PublishError::BusClosed),
                    },
                )))
            }
        }
    }
}

impl Handler<DrainPublisher> for Publisher {
    type Result = Result<PublisherCounters, PublishError>;

    fn handle(&mut self, _: DrainPublisher, _ctx: &mut Self::Context) -> Self::Result {
        // Earlier batches were handled atomically, so the bus already holds them; stdout only
        // needs its buffer flushed.
        if let Backend::Stdout(out) = &mut self.backend {
            out.flush()
                .map_err(|e| PublishError::Stdout(e.to_string()))?;
        }
        if let Some(s) = &self.stats {
            s.do_send(Progress::Published(self.counters));
        }
        Ok(self.counters)
    }
}

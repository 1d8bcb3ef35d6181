//! Publisher: puts listeners' events on the topic.
//!
//! Input: [`SimEvents`] batches, [`DrainPublisher`]. Back ends behind one interface: Kafka
//! (an idempotent librdkafka producer, acks=all; a full local queue means wait and retry, never
//! drop; delivery failures stop the run with the broker's reason), the in-process [`Bus`]
//! (default of `encore run`), or stdout as JSON lines (`encore simulate` without brokers). Messages are handled one at a time (`AtomicResponse`) and the mailbox is
//! bounded, so a slow topic slows the listeners down. Records are partitioned by key with
//! Kafka's murmur2 partitioner. Enforces the realtime `--events` limit and reports
//! [`StopRun`] when it is reached.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::prelude::*;

use crate::bus::BusRecord;
use crate::kafka::producer::{Batch, Enqueue, KafkaProducer};
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
/// Pause before retrying when librdkafka's local queue is full.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(5);
/// Longest wait for outstanding deliveries at drain: librdkafka's default message.timeout.ms
/// (5 min) plus a margin; every record is acknowledged or failed by then.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(330);

/// Where published records go.
pub enum Backend {
    Bus(Addr<Bus>),
    Kafka(Arc<KafkaProducer>),
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
    failure_signalled: bool,
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
            failure_signalled: false,
        }
    }

    fn count(&mut self, records: &[crate::messages::OutRecord]) {
        self.add(tally(records));
    }

    /// Adds a batch's [`tally`] to the counters (and to the metrics, when served).
    fn add(&mut self, t: PublisherCounters) {
        let c = &mut self.counters;
        for (all, n) in c.by_type.iter_mut().zip(t.by_type) {
            *all += n;
        }
        c.malformed += t.malformed;
        c.duplicates += t.duplicates;
        c.late += t.late;
        c.bytes += t.bytes;
        c.published += t.published;
        if crate::metrics::enabled() {
            crate::metrics::published(t.published, &t.by_type);
        }
    }

    /// Records librdkafka refused to take (a fatal producer state, a record over the size
    /// limit): failed deliveries, which stop the run at once.
    fn refused(&mut self, n: usize, error: &impl std::fmt::Display) {
        if let Backend::Kafka(p) = &self.backend {
            let d = p.deliveries();
            d.failed.fetch_add(n as u64, Ordering::Relaxed);
            d.first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(|| format!("producing to Kafka: {error}"));
        }
        self.check_deliveries();
    }

    /// Folds the delivery reports into the counters; a failed delivery stops the run.
    fn check_deliveries(&mut self) {
        let Backend::Kafka(p) = &self.backend else {
            return;
        };
        if let Err(e) = p.resend() {
            // Counted as failed by `resend`: the check below stops the run.
            tracing::error!("sending records again: {e}");
        }
        let d = p.deliveries();
        self.counters.acked = d.acked.load(Ordering::Relaxed);
        self.counters.failed = d.failed.load(Ordering::Relaxed);
        self.counters.retried = d.retried.load(Ordering::Relaxed);
        self.counters.possibly_duplicated = d.possibly_duplicated.load(Ordering::Relaxed);
        let c = &self.counters;
        crate::metrics::deliveries(c.acked, c.failed, c.retried);
        if self.counters.failed > 0 && !self.failure_signalled {
            self.failure_signalled = true;
            self.supervisor.do_send(StopRun {
                reason: StopReason::Fatal(undelivered(&self.counters, p)),
            });
        }
    }
}

/// What a batch adds to the counters.
fn tally(records: &[crate::messages::OutRecord]) -> PublisherCounters {
    use crate::messages::Injected;
    let mut c = PublisherCounters::default();
    for r in records {
        match r.injected {
            Some(Injected::Malformed | Injected::Oversized) => c.malformed += 1,
            other => {
                c.by_type[r.event_type.index()] += 1;
                c.duplicates += u64::from(other == Some(Injected::Duplicate));
                c.late += u64::from(other == Some(Injected::Late));
            }
        }
        c.bytes += r.value.len() as u64;
    }
    c.published = records.len() as u64;
    c
}

fn undelivered(c: &PublisherCounters, p: &KafkaProducer) -> String {
    let first = p
        .deliveries()
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default();
    format!(
        "{} of {} events were not delivered to Kafka ({first})",
        c.failed, c.published
    )
}

impl Actor for Publisher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_interval(Duration::from_millis(500), |act, _| {
            act.check_deliveries();
            if let Some(s) = &act.stats {
                s.do_send(Progress::Published(act.counters));
            }
        });
    }
}

/// A batch of records the producer reads in place.
struct Records(Vec<crate::messages::OutRecord>);

impl Batch for Records {
    fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.0.iter().map(|r| (&r.key[..], &r.value[..]))
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
            Backend::Kafka(p) => {
                let p = p.clone();
                // librdkafka reads the values where they are; each record holds the batch
                // until its delivery report.
                let records = Arc::new(Records(records));
                let enqueue = async move {
                    let mut sent = 0;
                    loop {
                        match p.enqueue_in_place(&records, sent) {
                            Ok(_) => return (records, Ok(())),
                            // Deliveries free the queue; the listeners wait meanwhile.
                            Err(Enqueue::QueueFull { sent: s }) => {
                                sent = s;
                                crate::metrics::publish_waited(QUEUE_FULL_WAIT);
                                tokio::time::sleep(QUEUE_FULL_WAIT).await;
                            }
                            Err(Enqueue::Failed { sent, error }) => {
                                return (records, Err((sent, error)));
                            }
                        }
                    }
                };
                AtomicResponse::new(Box::pin(enqueue.into_actor(self).map(
                    move |(records, res), act, _| match res {
                        Ok(()) => {
                            act.count(&records.0);
                            Ok(admission)
                        }
                        Err((sent, error)) => {
                            // The enqueued part is on its way (its reports will count); the
                            // rest is refused for good: counted as failed, and the run stops.
                            act.count(&records.0[..sent]);
                            act.refused(records.0.len() - sent, &error);
                            Err(PublishError::Kafka(error.to_string()))
                        }
                    },
                )))
            }
            Backend::Bus(bus) => {
                let now = chrono::Utc::now().timestamp_millis();
                let parts = self.partitions;
                // Counted now, added once the bus has the records (moved, not copied, into it).
                let tally = tally(&records);
                let appends: Vec<(usize, BusRecord)> = records
                    .into_iter()
                    .map(|r| {
                        (
                            partition_for(&r.key, parts) as usize,
                            BusRecord {
                                key: r.key,
                                value: r.value,
                                timestamp_ms: now,
                            },
                        )
                    })
                    .collect();
                let send = bus.send(Append { records: appends });
                AtomicResponse::new(Box::pin(send.into_actor(self).map(
                    move |res, act, _| match res {
                        Ok(()) => {
                            act.add(tally);
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
    type Result = ResponseActFuture<Self, Result<PublisherCounters, PublishError>>;

    fn handle(&mut self, _: DrainPublisher, _ctx: &mut Self::Context) -> Self::Result {
        // Earlier batches were handled atomically, so the bus already holds them; stdout only
        // needs its buffer flushed; Kafka needs every delivery report.
        let flushed: futures::future::BoxFuture<'static, Result<(), PublishError>> =
            match &mut self.backend {
                Backend::Stdout(out) => {
                    let r = out.flush().map_err(|e| PublishError::Stdout(e.to_string()));
                    Box::pin(fut::ready(r))
                }
                Backend::Bus(_) => Box::pin(fut::ready(Ok(()))),
                Backend::Kafka(p) => {
                    let p = p.clone();
                    Box::pin(async move {
                        tokio::task::spawn_blocking(move || p.flush_all(DRAIN_TIMEOUT))
                            .await
                            .map_err(|e| PublishError::Kafka(e.to_string()))?
                            .map_err(|e| PublishError::Kafka(e.to_string()))
                    })
                }
            };
        Box::pin(flushed.into_actor(self).map(|res, act, _| {
            res?;
            act.check_deliveries();
            if let Some(s) = &act.stats {
                s.do_send(Progress::Published(act.counters));
            }
            if let Backend::Kafka(p) = &act.backend
                && act.counters.failed > 0
            {
                return Err(PublishError::Undelivered(undelivered(&act.counters, p)));
            }
            Ok(act.counters)
        }))
    }
}

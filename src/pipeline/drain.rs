//! The end of a run, one sequence for every source:
//!
//! stop the front (listeners, then the publisher) → read where each partition ends → consume
//! up to there → flush every batch and commit → check the lake reaches the ends, while leaving
//! the group → summary.
//!
//! A fatal stop (restart budget exhausted) skips the drain: what is committed stays committed.
//! With the in-process bus, events published but not yet committed existed only in memory: the
//! summary reports them, and the next run continues after the last committed offset.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;

use crate::actors::bus::Bus;
use crate::actors::bus_consumer::BusConsumer;
use crate::actors::kafka_source::KafkaSource;
use crate::actors::supervisor::Supervisor;
use crate::kafka::producer::KafkaProducer;
use crate::kafka::{WatermarkError, fetch_high_watermarks};
use crate::lake::{Lake, LakeError};
use crate::messages::{
    CloseConsumer, CommitCounters, DrainTo, FlushAll, GetCommitted, GetHighWatermarks,
    PublishError, PublisherCounters, StopConsuming, StopReason, StopRun,
};

use super::control::Control;
use super::front::Front;
use super::sink::Stages;
use super::summary::{Counts, RunError, RunFacts, Summary};

/// How long closing the consumer (leaving the group) may take at the end of a run.
const CLOSE_PATIENCE: Duration = Duration::from_secs(15);

/// How long the drain of `encore run --brokers` waits for the sink to read every partition up to
/// the end of what was published.
const DRAIN_PATIENCE: Duration = Duration::from_secs(180);

/// Why the drain could not bring the lake up to what was published.
#[derive(Debug, thiserror::Error)]
pub(super) enum DrainError {
    /// The supervisor stopped the run (restart budget exhausted) during the drain.
    #[error("{0}")]
    Fatal(String),
    /// An actor went away while the drain asked it `what`.
    #[error("{what}: {source}")]
    Mailbox {
        what: &'static str,
        source: MailboxError,
    },
    #[error(transparent)]
    Publisher(#[from] PublishError),
    #[error("the consumer stopped before it caught up")]
    ConsumerStopped,
    #[error(
        "the sink did not read the topic up to {ends:?} within {}: the group `{group}` did \
         not give this member every partition (another member owns some, or the broker \
         has not reassigned them); what is committed is safe and a later `encore sink` \
         resumes from it",
        humantime::format_duration(*.patience)
    )]
    TimedOut {
        ends: Vec<i64>,
        group: String,
        patience: Duration,
    },
    /// The bus: the committed positions are not the topic's ends.
    #[error("drain incomplete: committed {committed:?}, topic ends at {ends:?}")]
    Incomplete { committed: Vec<i64>, ends: Vec<i64> },
    /// A Kafka topic: one partition's lake stops short of the topic's end.
    #[error(
        "drain incomplete: partition {partition} is committed up to offset {end}, the topic ends at {target}"
    )]
    PartitionIncomplete {
        partition: usize,
        end: i64,
        target: i64,
    },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Watermarks(#[from] WatermarkError),
    /// The blocking watermark read did not finish (it panicked).
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

impl DrainError {
    /// A mailbox failure while doing `what` (for `map_err`).
    pub(super) fn mailbox(what: &'static str) -> impl FnOnce(MailboxError) -> DrainError {
        move |source| DrainError::Mailbox { what, source }
    }
}

/// What the sink reads: the in-process bus or a Kafka topic.
pub(super) trait Source {
    /// Where each partition ends once the front has stopped; None when nothing bounds the
    /// read (a sink alone stops where it is).
    async fn ends(&self) -> Result<Option<Vec<i64>>, DrainError>;
    /// Consumes up to `ends`, or stops consuming when there are none.
    async fn catch_up(&self, ends: Option<&[i64]>) -> Result<(), DrainError>;
    /// After the commit: the lake reaches `ends`.
    async fn check(&self, ends: &[i64], committed: &CommitCounters) -> Result<(), DrainError>;
    /// Leaves the source (a Kafka group) at the end, drained or not; again, does nothing.
    async fn close(&self) {}
}

/// A started run with a sink, waiting for its end.
pub(super) struct Run<S> {
    pub control: Control,
    pub seed: u64,
    pub lake: Lake,
    pub front: Option<Front>,
    pub stages: Stages,
    pub source: S,
}

impl<S: Source> Run<S> {
    /// Waits for a reason to stop, drains (unless fatal), and reports.
    pub async fn finish(mut self) -> Result<Summary, RunError> {
        let reason = self.control.wait().await;
        let outcome = match &reason {
            StopReason::Fatal(e) => Err(DrainError::Fatal(e.clone())),
            _ => {
                let drain = drain(self.front.as_ref(), &self.source, &self.stages);
                self.control.unless_fatal(drain).await
            }
        };
        self.source.close().await;
        let result = self.conclude(&reason, outcome).await;
        self.control.arbiters.stop();
        result
    }

    /// Finishes the progress display and turns the drain's outcome into the run's result.
    async fn conclude(
        &self,
        reason: &StopReason,
        outcome: Result<Counts, DrainError>,
    ) -> Result<Summary, RunError> {
        let restarts = self.control.finish_display().await;
        let facts = RunFacts {
            seed: self.seed,
            started: self.control.started,
            lake: Some(&self.lake),
        };
        match outcome {
            Ok(counts) => Ok(Summary::new(reason, &facts, restarts, counts)),
            Err(e) => {
                let published = match &self.front {
                    Some(f) => f.counts_quickly().await,
                    None => PublisherCounters::default(),
                };
                let committed = self
                    .stages
                    .committer
                    .send(GetCommitted)
                    .await
                    .unwrap_or_default();
                let counts = Counts {
                    published,
                    consumed: 0,
                    committed,
                };
                // Fatal reasons are text (the supervisor's too): the one place a drain error
                // becomes a string.
                Err(RunError::Fatal {
                    reason: e.to_string(),
                    summary: Box::new(Summary::new(reason, &facts, restarts, counts)),
                })
            }
        }
    }
}

/// The drain sequence.
async fn drain(
    front: Option<&Front>,
    source: &impl Source,
    stages: &Stages,
) -> Result<Counts, DrainError> {
    let published = match front {
        Some(f) => f.stop().await?,
        None => PublisherCounters::default(),
    };
    let ends = source.ends().await?;
    source.catch_up(ends.as_deref()).await?;
    let sink = stages
        .accumulator
        .send(FlushAll)
        .await
        .map_err(DrainError::mailbox("flushing"))?;
    let committed = stages
        .committer
        .send(GetCommitted)
        .await
        .map_err(DrainError::mailbox("reading commits"))?;
    // Nothing is read after the flush: the group is left while the lake is checked (the
    // run's end closes the source again, which is then a no-op).
    let check = async {
        match &ends {
            Some(ends) => source.check(ends, &committed).await,
            None => Ok(()),
        }
    };
    futures::join!(check, source.close()).0?;
    Ok(Counts {
        published,
        consumed: sink.consumed,
        committed,
    })
}

/// Once the consumer has read up to `ends`, stops the run (the drain then commits up to them).
pub(super) fn stop_at(
    consumer: &Addr<KafkaSource>,
    ends: Vec<i64>,
    reached: Arc<AtomicBool>,
    supervisor: Addr<Supervisor>,
) {
    let consumer = consumer.clone();
    actix::spawn(async move {
        let Ok(caught_up) = consumer.send(DrainTo { targets: ends }).await else {
            return;
        };
        if caught_up.await.is_ok() {
            reached.store(true, Ordering::Release);
            supervisor.do_send(StopRun {
                reason: StopReason::EndOfTopic,
            });
        }
    });
}

/// The in-process bus and its consumer.
pub(super) struct BusSource {
    pub bus: Addr<Bus>,
    pub consumer: Addr<BusConsumer>,
}

impl Source for BusSource {
    async fn ends(&self) -> Result<Option<Vec<i64>>, DrainError> {
        let ends = self.bus.send(GetHighWatermarks).await;
        let ends = ends.map_err(DrainError::mailbox("reading watermarks"))?;
        Ok(Some(ends))
    }

    async fn catch_up(&self, ends: Option<&[i64]>) -> Result<(), DrainError> {
        let targets = ends.unwrap_or_default().to_vec();
        self.consumer
            .send(DrainTo { targets })
            .await
            .map_err(DrainError::mailbox("draining consumer"))?
            .await
            .map(drop)
            .map_err(|_| DrainError::ConsumerStopped)
    }

    async fn check(&self, ends: &[i64], committed: &CommitCounters) -> Result<(), DrainError> {
        if committed.positions != ends {
            return Err(DrainError::Incomplete {
                committed: committed.positions.clone(),
                ends: ends.to_vec(),
            });
        }
        Ok(())
    }
}

/// A Kafka group member; with the run's producer, the drain reads up to the end of what was
/// published, without (a sink alone) it stops where it is.
pub(super) struct KafkaTopic {
    pub consumer: Addr<KafkaSource>,
    pub producer: Option<(Arc<KafkaProducer>, u32)>,
    /// `--exit-at-end`: the high watermarks at start, and whether they were reached (a signal
    /// before that stops where the sink is, like any sink).
    pub at_end: Option<(Vec<i64>, Arc<AtomicBool>)>,
    pub lake: Lake,
    pub group: String,
}

impl Source for KafkaTopic {
    async fn ends(&self) -> Result<Option<Vec<i64>>, DrainError> {
        if let Some((ends, reached)) = &self.at_end {
            return Ok(reached.load(Ordering::Acquire).then(|| ends.clone()));
        }
        let Some((p, parts)) = self.producer.clone() else {
            return Ok(None);
        };
        let ends = tokio::task::spawn_blocking(move || {
            fetch_high_watermarks(p.client(), p.topic(), parts, Duration::from_secs(30))
        })
        .await??;
        Ok(Some(ends))
    }

    async fn catch_up(&self, ends: Option<&[i64]>) -> Result<(), DrainError> {
        let Some(ends) = ends else {
            self.consumer
                .send(StopConsuming)
                .await
                .map_err(DrainError::mailbox("stopping consumer"))?;
            return Ok(());
        };
        let targets = ends.to_vec();
        let caught_up = self
            .consumer
            .send(DrainTo { targets })
            .await
            .map_err(DrainError::mailbox("draining consumer"))?;
        match tokio::time::timeout(DRAIN_PATIENCE, caught_up).await {
            Ok(Ok(_)) if self.at_end.is_some() => {
                // A sink reads on while the topic grows: the ends seen at start are the end.
                self.consumer
                    .send(StopConsuming)
                    .await
                    .map_err(DrainError::mailbox("stopping consumer"))?;
                Ok(())
            }
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(DrainError::ConsumerStopped),
            Err(_) => Err(DrainError::TimedOut {
                ends: ends.to_vec(),
                group: self.group.clone(),
                patience: DRAIN_PATIENCE,
            }),
        }
    }

    async fn check(&self, ends: &[i64], _: &CommitCounters) -> Result<(), DrainError> {
        // Read from each partition's checkpoint (bounded whatever the lake's age), all at once.
        let reads = (0..ends.len()).map(|p| self.lake.committed_end(p as i32));
        let reached = futures::future::try_join_all(reads).await?;
        for (p, (&target, end)) in ends.iter().zip(reached).enumerate() {
            if target > 0 && end < target {
                return Err(DrainError::PartitionIncomplete {
                    partition: p,
                    end,
                    target,
                });
            }
        }
        Ok(())
    }

    async fn close(&self) {
        // Bounded: a consumer stuck behind a lake that does not answer must not hold the exit.
        let _ = tokio::time::timeout(CLOSE_PATIENCE, self.consumer.send(CloseConsumer)).await;
    }
}

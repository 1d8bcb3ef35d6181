//! The end of a run, one sequence for every source:
//!
//! stop the front (listeners, then the publisher) → read where each partition ends → consume
//! up to there → flush every batch and commit → check the lake reaches the ends → summary.
//!
//! A fatal stop (restart budget exhausted) skips the drain: what is committed stays committed.
//! With the in-process bus, events published but not yet committed existed only in memory: the
//! summary reports them, and the next run continues after the last committed offset.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::actors::bus::Bus;
use crate::actors::bus_consumer::BusConsumer;
use crate::actors::kafka_source::KafkaSource;
use crate::kafka::fetch_high_watermarks;
use crate::kafka::producer::KafkaProducer;
use crate::lake::Lake;
use crate::messages::{
    CloseConsumer, CommitCounters, DrainTo, FlushAll, GetCommitted, GetHighWatermarks,
    PublisherCounters, StopConsuming, StopReason,
};

use super::control::{Control, mailbox};
use super::front::Front;
use super::sink::Stages;
use super::summary::{Counts, RunError, RunFacts, Summary};

/// How long closing the consumer (leaving the group) may take at the end of a run.
const CLOSE_PATIENCE: Duration = Duration::from_secs(15);

/// How long the drain of `encore run --brokers` waits for the sink to read every partition up to
/// the end of what was published.
const DRAIN_PATIENCE: Duration = Duration::from_secs(180);

/// What the sink reads: the in-process bus or a Kafka topic.
pub(super) trait Source {
    /// Where each partition ends once the front has stopped; None when nothing bounds the
    /// read (a sink alone stops where it is).
    async fn ends(&self) -> Result<Option<Vec<i64>>, String>;
    /// Consumes up to `ends`, or stops consuming when there are none.
    async fn catch_up(&self, ends: Option<&[i64]>) -> Result<(), String>;
    /// After the commit: the lake reaches `ends`.
    async fn check(&self, ends: &[i64], committed: &CommitCounters) -> Result<(), String>;
    /// Leaves the source (a Kafka group) at the end, drained or not.
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
            StopReason::Fatal(e) => Err(e.clone()),
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
        outcome: Result<Counts, String>,
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
                Err(RunError::Fatal {
                    reason: e,
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
) -> Result<Counts, String> {
    let published = match front {
        Some(f) => f.stop().await?,
        None => PublisherCounters::default(),
    };
    let ends = source.ends().await?;
    source.catch_up(ends.as_deref()).await?;
    let sink = mailbox(stages.accumulator.send(FlushAll).await, "flushing")?;
    let committed = mailbox(stages.committer.send(GetCommitted).await, "reading commits")?;
    if let Some(ends) = &ends {
        source.check(ends, &committed).await?;
    }
    Ok(Counts {
        published,
        consumed: sink.consumed,
        committed,
    })
}

/// The in-process bus and its consumer.
pub(super) struct BusSource {
    pub bus: Addr<Bus>,
    pub consumer: Addr<BusConsumer>,
}

impl Source for BusSource {
    async fn ends(&self) -> Result<Option<Vec<i64>>, String> {
        mailbox(self.bus.send(GetHighWatermarks).await, "reading watermarks").map(Some)
    }

    async fn catch_up(&self, ends: Option<&[i64]>) -> Result<(), String> {
        let targets = ends.unwrap_or_default().to_vec();
        mailbox(
            self.consumer.send(DrainTo { targets }).await,
            "draining consumer",
        )?
        .await
        .map(drop)
        .map_err(|_| "the consumer stopped before it caught up".to_string())
    }

    async fn check(&self, ends: &[i64], committed: &CommitCounters) -> Result<(), String> {
        if committed.positions != ends {
            return Err(format!(
                "drain incomplete: committed {:?}, topic ends at {ends:?}",
                committed.positions
            ));
        }
        Ok(())
    }
}

/// A Kafka group member; with the run's producer, the drain reads up to the end of what was
/// published, without (a sink alone) it stops where it is.
pub(super) struct KafkaTopic {
    pub consumer: Addr<KafkaSource>,
    pub producer: Option<(Arc<KafkaProducer>, u32)>,
    pub lake: Lake,
    pub group: String,
}

impl Source for KafkaTopic {
    async fn ends(&self) -> Result<Option<Vec<i64>>, String> {
        let Some((p, parts)) = self.producer.clone() else {
            return Ok(None);
        };
        tokio::task::spawn_blocking(move || {
            fetch_high_watermarks(p.client(), p.topic(), parts, Duration::from_secs(30))
        })
        .await
        .map_err(|e| e.to_string())?
        .map(Some)
    }

    async fn catch_up(&self, ends: Option<&[i64]>) -> Result<(), String> {
        let Some(ends) = ends else {
            mailbox(self.consumer.send(StopConsuming).await, "stopping consumer")?;
            return Ok(());
        };
        let targets = ends.to_vec();
        let caught_up = mailbox(
            self.consumer.send(DrainTo { targets }).await,
            "draining consumer",
        )?;
        match tokio::time::timeout(DRAIN_PATIENCE, caught_up).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err("the consumer stopped before it caught up".to_string()),
            Err(_) => Err(format!(
                "the sink did not read the topic up to {ends:?} within {}: the group `{}` did \
                 not give this member every partition (another member owns some, or the broker \
                 has not reassigned them); what is committed is safe and a later `encore sink` \
                 resumes from it",
                humantime::format_duration(DRAIN_PATIENCE),
                self.group
            )),
        }
    }

    async fn check(&self, ends: &[i64], _: &CommitCounters) -> Result<(), String> {
        for (p, &target) in ends.iter().enumerate() {
            let end = self
                .lake
                .committed_ranges(p as i32)
                .await
                .map_err(|e| e.to_string())?
                .last()
                .map_or(0, |r| r.last + 1);
            if target > 0 && end < target {
                return Err(format!(
                    "drain incomplete: partition {p} is committed up to offset {end}, the topic ends at {target}"
                ));
            }
        }
        Ok(())
    }

    async fn close(&self) {
        // Bounded: a consumer stuck behind a lake that does not answer must not hold the exit.
        let _ = tokio::time::timeout(CLOSE_PATIENCE, self.consumer.send(CloseConsumer)).await;
    }
}

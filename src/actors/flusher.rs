//! Flusher: encodes batches as Parquet and commits them to the lake, many partitions at once.
//!
//! Input: [`Flush`]; reply: [`Durable`] once the data files and the commit marker are written
//! (see `lake::protocol`). Flushes of different partitions run concurrently: encoding on the
//! blocking pool (one per two cores), uploads interleaved on this actor's thread. The
//! accumulator sends a partition's next batch only after its previous one is committed, so each
//! partition's commits stay in order, and a revoked partition's flush waits for no other.
//! On an error the flush replies with it and the lake client is opened afresh for the next
//! ones (dropping broken connections); the accumulator's flush task retries with backoff.
//!
//! With a dead-letter topic, a batch's rejected records are written there (and acknowledged)
//! before its commit marker: a committed range never has a rejected record that is not in it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use actix::prelude::*;
use parquet::file::properties::WriterProperties;
use tokio::sync::Semaphore;

use crate::kafka::dlq::DeadLetterWriter;
use crate::lake::{
    Attempt, CommitMarker, Fence, Lake, LakeConfig, LakeError, MANIFEST_EVERY, PreparedBatch,
};
use crate::messages::{Durable, Flush};
use crate::sink::{PendingBatch, prepare};

pub struct Flusher {
    /// What every flush needs; its lake client is replaced after a failure.
    job: FlushJob,
    config: LakeConfig,
}

impl Flusher {
    pub fn new(
        lake: Lake,
        config: LakeConfig,
        props: WriterProperties,
        source: String,
        dead_letters: Option<Arc<DeadLetterWriter>>,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let encoders = cores.max(1);
        let job = FlushJob {
            lake,
            props: Arc::new(props),
            source: source.into(),
            dead_letters,
            encoders: Arc::new(Semaphore::new(encoders)),
            commits: Arc::default(),
        };
        Flusher { job, config }
    }

    /// A new client drops broken connections; the old one stays if the lake cannot be
    /// reopened right now (the next flush reports the error).
    fn reopen(&mut self) {
        if !self.config.url.is_empty()
            && let Ok(lake) = Lake::open(&self.config, self.job.lake.table())
        {
            self.job.lake = lake;
        }
    }
}

impl Actor for Flusher {
    type Context = Context<Self>;
}

impl Handler<Flush> for Flusher {
    type Result = ResponseActFuture<Self, Result<Durable, Arc<LakeError>>>;

    fn handle(&mut self, msg: Flush, _ctx: &mut Self::Context) -> Self::Result {
        let job = self.job.clone();
        Box::pin(
            job.run(msg.batch, msg.fence, msg.attempt)
                .into_actor(self)
                .map(|res, act, _| {
                    res.map_err(|e| {
                        if e.is_retriable() {
                            act.reopen();
                        }
                        Arc::new(e)
                    })
                }),
        )
    }
}

/// What a flush needs, cloned into each one so that it runs independently of the actor.
#[derive(Clone)]
struct FlushJob {
    lake: Lake,
    props: Arc<WriterProperties>,
    /// Identity of the source, written into every marker.
    source: Arc<str>,
    /// Where rejected records go (Kafka sources); the in-process bus has none.
    dead_letters: Option<Arc<DeadLetterWriter>>,
    /// Encodings running at once: one per core, so that partitions (and dates) are encoded in
    /// parallel; `--max-unflushed` bounds the batches held meanwhile.
    encoders: Arc<Semaphore>,
    /// What was committed per partition and epoch: the first commit clears what beaten writers
    /// left, every so often one moves the partition's checkpoint or writes a manifest.
    commits: Arc<std::sync::Mutex<BTreeMap<(i32, u64), Written>>>,
}

/// A writer's commits to one partition under one claim.
#[derive(Default)]
struct Written {
    commits: u64,
    /// The markers committed since the last manifest, in order.
    since_manifest: Vec<CommitMarker>,
}

impl FlushJob {
    async fn run(
        self,
        batch: Arc<PendingBatch>,
        fence: Fence,
        attempt: Attempt,
    ) -> Result<Durable, LakeError> {
        let started = Instant::now();
        let prepared = self.encode(batch.clone()).await?;
        let encoded = started.elapsed();
        self.send_dead_letters(&batch).await?;
        let committing = Instant::now();
        let marker = self
            .lake
            .commit_batch(&self.source, &prepared, &fence, attempt)
            .await?;
        crate::metrics::flushed(encoded, committing.elapsed(), started.elapsed());
        self.after_commit(&marker).await;
        let mut rejected_by_reason = BTreeMap::new();
        for d in &batch.rejected {
            *rejected_by_reason.entry(d.kind).or_default() += 1;
        }
        Ok(Durable {
            range: marker.range(),
            rows: marker.rows,
            rejected: marker.rejected_count,
            files: marker.files.len() as u64,
            bytes: marker.files.iter().map(|f| f.bytes).sum(),
            rejected_by_reason,
            last_event_ms: batch.parts.iter().map(|p| p.3).max(),
        })
    }

    /// Parquet encoding is CPU work: off the actor's thread, a bounded number at once.
    async fn encode(&self, batch: Arc<PendingBatch>) -> Result<PreparedBatch, LakeError> {
        let _permit = self.encoders.acquire().await.expect("never closed");
        let props = self.props.clone();
        tokio::task::spawn_blocking(move || prepare(&batch, &props))
            .await
            .expect("encoding does not panic")
    }

    async fn send_dead_letters(&self, batch: &PendingBatch) -> Result<(), LakeError> {
        let unsent = !batch.rejected.is_empty() && !batch.letters_sent.load(Ordering::Acquire);
        let Some(dlq) = self.dead_letters.as_ref().filter(|_| unsent) else {
            return Ok(());
        };
        dlq.write(batch.range.partition, &batch.rejected)
            .await
            .map_err(|source| LakeError::DeadLetters {
                topic: dlq.topic().to_string(),
                count: batch.rejected.len(),
                source,
            })?;
        batch.letters_sent.store(true, Ordering::Release);
        crate::metrics::dead_letters_sent(batch.rejected.len() as u64);
        Ok(())
    }

    /// Housekeeping after the commit point: a failure here loses nothing (the next recovery
    /// does the same).
    async fn after_commit(&self, marker: &CommitMarker) {
        let (n, segment) = {
            let mut c = self.commits.lock().unwrap_or_else(|p| p.into_inner());
            // Earlier claims of the partition are over.
            c.retain(|(p, e), _| *p != marker.partition || *e >= marker.epoch);
            let w = c.entry((marker.partition, marker.epoch)).or_default();
            w.commits += 1;
            w.since_manifest.push(marker.clone());
            let full = w.since_manifest.len() >= MANIFEST_EVERY;
            (
                w.commits,
                full.then(|| std::mem::take(&mut w.since_manifest)),
            )
        };
        let p = marker.partition;
        if n == 1
            && let Err(e) = self
                .lake
                .clear_beaten(p, marker.first_offset, marker.epoch)
                .await
        {
            tracing::warn!(partition = p, error = %e, "leftovers of beaten writers not removed yet");
        }
        if let Err(e) = self.lake.checkpoint_if_due(marker, n).await {
            tracing::warn!(partition = p, error = %e, "checkpoint not moved");
        }
        // Only readers of the whole history use manifests: without one they read the markers.
        if let Some(segment) = segment
            && let Err(e) = self.lake.write_manifest(&segment).await
        {
            tracing::warn!(partition = p, error = %e, "manifest not written");
        }
    }
}

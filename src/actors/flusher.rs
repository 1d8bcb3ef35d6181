//! Flusher: encodes a batch as Parquet and commits it to the lake.
//!
//! Input: [`Flush`]; reply: [`Durable`] once the data files and the commit marker are written
//! (see `lake::protocol`). One batch at a time. On any error it replies with the error and stops;
//! actix's `Supervisor` restarts it with a freshly opened lake client, and the accumulator's
//! flush task retries the batch with backoff.
//!
//! With a dead-letter topic, a batch's rejected records are written there (and acknowledged)
//! before its commit marker: a committed range never has a rejected record that is not in it.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use parquet::file::properties::WriterProperties;

use crate::kafka::dlq::DeadLetterWriter;
use crate::lake::{Lake, LakeConfig, LakeError};
use crate::messages::{Durable, Flush};
use crate::sink::prepare;

pub struct Flusher {
    lake: Lake,
    config: LakeConfig,
    props: WriterProperties,
    /// Identity of the source, written into every marker.
    source: String,
    /// Where rejected records go (Kafka sources); the in-process bus has none.
    dead_letters: Option<Arc<DeadLetterWriter>>,
    /// Commits per partition and epoch so far: the first clears what beaten writers left, and
    /// every so often one moves the partition's checkpoint.
    commits: Arc<std::sync::Mutex<BTreeMap<(i32, u64), u64>>>,
}

impl Flusher {
    pub fn new(
        lake: Lake,
        config: LakeConfig,
        props: WriterProperties,
        source: String,
        dead_letters: Option<Arc<DeadLetterWriter>>,
    ) -> Self {
        Flusher {
            lake,
            config,
            props,
            source,
            dead_letters,
            commits: Arc::default(),
        }
    }
}

impl Actor for Flusher {
    type Context = Context<Self>;
}

impl Supervised for Flusher {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        // A new client drops broken connections; keep the old one if the lake cannot be
        // reopened right now (the next flush reports the error).
        if !self.config.url.is_empty()
            && let Ok(lake) = Lake::open(&self.config, self.lake.table())
        {
            self.lake = lake;
        }
    }
}

impl Handler<Flush> for Flusher {
    type Result = AtomicResponse<Self, Result<Durable, Arc<LakeError>>>;

    fn handle(&mut self, msg: Flush, ctx: &mut Self::Context) -> Self::Result {
        let prepared = match prepare(&msg.batch, &self.props) {
            Ok(p) => p,
            Err(e) => {
                ctx.stop();
                return AtomicResponse::new(Box::pin(fut::ready(Err(Arc::new(e)))));
            }
        };
        let lake = self.lake.clone();
        let source = self.source.clone();
        let dead_letters = self.dead_letters.clone();
        let commits = self.commits.clone();
        let (batch, fence) = (msg.batch, msg.fence);
        AtomicResponse::new(Box::pin(
            async move {
                let unsent = !batch.rejected.is_empty()
                    && !batch
                        .letters_sent
                        .load(std::sync::atomic::Ordering::Acquire);
                if let Some(dlq) = dead_letters.filter(|_| unsent) {
                    dlq.write(batch.range.partition, &batch.rejected)
                        .await
                        .map_err(|source| LakeError::DeadLetters {
                            topic: dlq.topic().to_string(),
                            count: batch.rejected.len(),
                            source,
                        })?;
                    batch
                        .letters_sent
                        .store(true, std::sync::atomic::Ordering::Release);
                }
                let marker = lake.commit_batch(&source, &prepared, &fence).await?;
                let n = {
                    let mut c = commits.lock().unwrap_or_else(|p| p.into_inner());
                    let n = c.entry((marker.partition, marker.epoch)).or_default();
                    *n += 1;
                    *n
                };
                // Housekeeping after the commit point: a failure here loses nothing (the next
                // recovery does the same).
                let p = marker.partition;
                if n == 1
                    && let Err(e) = lake.clear_beaten(p, marker.first_offset, marker.epoch).await
                {
                    tracing::warn!(partition = p, error = %e, "leftovers of beaten writers not removed yet");
                }
                if let Err(e) = lake.checkpoint_if_due(&marker, n).await {
                    tracing::warn!(partition = p, error = %e, "checkpoint not moved");
                }
                Ok::<_, LakeError>(Durable {
                    range: marker.range(),
                    rows: marker.rows,
                    rejected: marker.rejected_count,
                    files: marker.files.len() as u64,
                    bytes: marker.files.iter().map(|f| f.bytes).sum(),
                })
            }
            .into_actor(self)
            .map(|res, _act, ctx| {
                res.map_err(|e| {
                    ctx.stop();
                    Arc::new(e)
                })
            }),
        ))
    }
}

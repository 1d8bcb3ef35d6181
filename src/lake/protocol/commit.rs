//! Writing one batch: intent, data files, a last look at the claims, the marker created only if
//! its name is free, then the intent removed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{PutPayload, WriteMultipart};

use super::super::naming::{self, MarkerName};
use super::super::{Lake, LakeError};
use super::claims::Created;
use super::marker::{CommitMarker, PreparedBatch};
use crate::failpoint;

/// Files above this size are uploaded in parts (S3 multipart), in chunks of this size.
const MULTIPART_THRESHOLD: usize = 32 << 20;
const MULTIPART_CHUNK: usize = 16 << 20;
/// A checkpoint every this many commits of a writer to a partition, so that finding the end of
/// the partition's chain reads at most about this many markers, whatever the lake's age.
/// (On a server that answers a GET in tens of milliseconds, s3s-fs on loopback, 16 keeps the
/// walk well under a second.)
pub const CHECKPOINT_EVERY: u64 = 16;

/// Whether a batch was tried before. Only a retry can find its range already committed by
/// itself (an earlier attempt whose answer was lost), so only a retry pays the look for it; a
/// first attempt that meets another writer's marker learns it when creating its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    First,
    Retry,
}

/// Who commits: the epoch its claim of the partition holds, and a flag its owner raises when
/// the partition is taken away (a rebalance) so that nothing is committed after.
#[derive(Clone, Debug, Default)]
pub struct Fence {
    pub epoch: u64,
    pub revoked: Option<Arc<AtomicBool>>,
}

impl Fence {
    pub fn new(epoch: u64, revoked: Arc<AtomicBool>) -> Fence {
        Fence {
            epoch,
            revoked: Some(revoked),
        }
    }

    fn is_revoked(&self) -> bool {
        self.revoked
            .as_ref()
            .is_some_and(|r| r.load(Ordering::Acquire))
    }
}

impl Lake {
    async fn put(&self, path: &Path, bytes: Bytes, action: &'static str) -> Result<(), LakeError> {
        let err = |e| LakeError::store(action, path, e);
        if bytes.len() > MULTIPART_THRESHOLD {
            let upload = self.store.put_multipart(path).await.map_err(err)?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK);
            w.put(bytes);
            w.finish().await.map_err(err)?;
            Ok(())
        } else {
            self.store
                .put(path, PutPayload::from_bytes(bytes))
                .await
                .map(drop)
                .map_err(err)
        }
    }

    /// Writes a batch with the intent → data → marker → cleanup sequence. When this returns
    /// `Ok`, the range is durable and committed. [`LakeError::Fenced`]: the writer no longer
    /// owns the partition; [`LakeError::Lost`]: another writer committed from the same offset
    /// first. In both cases this writer's files are removed again.
    pub async fn commit_batch(
        &self,
        source: &str,
        batch: &PreparedBatch,
        fence: &Fence,
        attempt: Attempt,
    ) -> Result<CommitMarker, LakeError> {
        let (range, epoch) = (batch.range, fence.epoch);
        let intent = naming::intent_path(&self.root, &self.table, &range, epoch);
        // A retry must not touch a range that is already decided: its own marker means the
        // earlier attempt committed (its answer was lost, or a step after the marker failed),
        // and anyone else's means it lost. Nothing of a committed range is ever rewritten or
        // deleted.
        if attempt == Attempt::Retry {
            match self.settled(range, epoch, &intent).await? {
                Some(Ok(m)) => return Ok(m),
                Some(Err(lost)) => return Err(lost),
                None => {}
            }
        }
        let marker = self.marker_for(source, batch, epoch);
        let json = Bytes::from(serde_json::to_vec_pretty(&marker).expect("marker serialises"));
        self.put(&intent, json.clone(), "writing intent").await?;
        failpoint::at(failpoint::COMMIT_AFTER_INTENT).await;
        for (file, entry) in batch.files.iter().zip(&marker.files) {
            let path = self.abs(&entry.path);
            self.put(&path, file.bytes.clone(), "writing data file")
                .await?;
            failpoint::at(failpoint::COMMIT_AFTER_FILE).await;
        }
        if let Err(e) = self.check_fence(range.partition, fence).await {
            self.abandon(&intent, &marker).await?;
            return Err(e);
        }
        failpoint::at(failpoint::COMMIT_BEFORE_MARKER).await;
        let path = naming::marker_path(&self.root, &self.table, range.partition, range.first);
        if let Created::Taken = self.create(&path, json, "writing commit marker").await? {
            // Taken between the first look and now: settled by whoever holds it.
            return match self.settled(range, epoch, &intent).await? {
                Some(Ok(m)) => Ok(m),
                Some(Err(lost)) => {
                    self.abandon(&intent, &marker).await?;
                    Err(lost)
                }
                None => Err(LakeError::BadMarker {
                    path: path.to_string(),
                    reason: "taken, then gone".into(),
                }),
            };
        }
        failpoint::at(failpoint::COMMIT_AFTER_MARKER).await;
        self.delete_if_exists(&intent).await?;
        failpoint::at(failpoint::COMMIT_DONE).await;
        Ok(marker)
    }

    /// Whether the name of the marker of `range` is taken: by this writer (committed: the
    /// intent goes) or by another (lost). None while it is free.
    async fn settled(
        &self,
        range: naming::Range,
        epoch: u64,
        intent: &Path,
    ) -> Result<Option<Result<CommitMarker, LakeError>>, LakeError> {
        let Some(m) = self
            .marker_at(range.partition, MarkerName::at(range.first))
            .await?
        else {
            return Ok(None);
        };
        if m.epoch == epoch && m.range() == range {
            self.delete_if_exists(intent).await?;
            return Ok(Some(Ok(m)));
        }
        Ok(Some(Err(self.lost(range, epoch, m).await)))
    }

    /// Moves the partition's checkpoint to this commit when it is due.
    pub async fn checkpoint_if_due(
        &self,
        marker: &CommitMarker,
        commits: u64,
    ) -> Result<(), LakeError> {
        if !commits.is_multiple_of(CHECKPOINT_EVERY) {
            return Ok(());
        }
        let end = super::chain::ChainEnd {
            next: Some(marker.last_offset + 1),
            source: Some(marker.source.clone()),
        };
        self.write_checkpoint(marker.partition, &end, marker.epoch)
            .await
    }

    /// A writer that lost the partition must not commit.
    async fn check_fence(&self, partition: i32, fence: &Fence) -> Result<(), LakeError> {
        let why = if fence.is_revoked() {
            "the partition was revoked"
        } else if fence.epoch > 0 && self.superseded(partition, fence.epoch).await? {
            "another writer claimed the partition since"
        } else {
            return Ok(());
        };
        Err(LakeError::Fenced {
            partition,
            epoch: fence.epoch,
            why,
        })
    }

    /// What a writer that lost the name of its marker learns: who won, and whether it is stale
    /// (when the claims cannot be read, it is not: it recovers again, which settles it).
    async fn lost(&self, range: naming::Range, epoch: u64, winner: CommitMarker) -> LakeError {
        let stale = self
            .superseded(range.partition, epoch)
            .await
            .unwrap_or(false);
        LakeError::Lost {
            partition: range.partition,
            first: range.first,
            winner_last: Some(winner.last_offset),
            winner_epoch: Some(winner.epoch),
            stale,
        }
    }

    /// Removes this writer's own files and intent (their names carry its epoch).
    async fn abandon(&self, intent: &Path, marker: &CommitMarker) -> Result<(), LakeError> {
        for f in &marker.files {
            self.delete_if_exists(&self.abs(&f.path)).await?;
        }
        self.delete_if_exists(intent).await.map(drop)
    }

    pub(super) fn abs(&self, rel_path: &str) -> Path {
        rel_path
            .split('/')
            .fold(self.root.clone(), |p, s| p.child(s))
    }
}

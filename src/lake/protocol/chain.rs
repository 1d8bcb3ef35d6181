//! Reading what a partition has committed: its markers, and where its chain of ranges ends.
//!
//! Markers chain: the range after one starts at its `last + 1`, and its marker is named by that
//! offset. So the end of a partition is found by walking from a known point (the partition's
//! checkpoint) marker by marker until a name is free: a few reads, whatever the number of
//! markers before, and no listing (whose cost grows with the directory on every store).

use bytes::Bytes;
use object_store::PutPayload;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::super::naming::{self, MarkerName, Range};
use super::super::{Lake, LakeError};
use super::marker::CommitMarker;

/// A known point of a partition's chain: walking on from here finds its end.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Checkpoint {
    /// A position the chain passes: the offset where a committed range ends + 1 (0: the
    /// start).
    pub next: i64,
    /// An epoch that was claimed: claims are consecutive, so the latest is found from here.
    pub epoch: u64,
    /// The source of the ranges before `next` (empty when there are none).
    pub source: String,
    pub written_at_ms: i64,
}

/// Where a partition's committed ranges end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ChainEnd {
    /// The first offset not committed; None when nothing ever was.
    pub next: Option<i64>,
    /// The source the committed ranges were read from.
    pub source: Option<String>,
}

impl Lake {
    pub(super) async fn put_bytes(
        &self,
        path: &Path,
        bytes: Bytes,
        action: &'static str,
    ) -> Result<(), LakeError> {
        self.store
            .put(path, PutPayload::from_bytes(bytes))
            .await
            .map(drop)
            .map_err(|e| LakeError::store(action, path, e))
    }

    pub(super) async fn delete_if_exists(&self, path: &Path) -> Result<bool, LakeError> {
        match self.store.delete(path).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(LakeError::store("deleting", path, e)),
        }
    }

    /// File names in `dir` (its direct children: the protocol's directories are flat), sorted.
    /// A delimited listing, so that a store that walks objects to list them (s3s-fs does, for
    /// any recursive listing) stays inside `dir` instead of walking the whole lake.
    pub(super) async fn list_names(&self, dir: &Path) -> Result<Vec<String>, LakeError> {
        let listed = self
            .store
            .list_with_delimiter(Some(dir))
            .await
            .map_err(|e| LakeError::store("listing", dir, e))?;
        let mut names: Vec<String> = listed
            .objects
            .into_iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
    ) -> Result<Option<T>, LakeError> {
        let bytes = match self.store.get(path).await {
            Ok(r) => r.bytes().await,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => Err(e),
        }
        .map_err(|e| LakeError::store("reading", path, e))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LakeError::BadMarker {
                path: path.to_string(),
                reason: e.to_string(),
            })
    }

    /// The partition's checkpoint; None when it has none or it cannot be read (the callers
    /// then list, which is slower and always right).
    pub(super) async fn checkpoint(&self, partition: i32) -> Result<Option<Checkpoint>, LakeError> {
        let path = naming::checkpoint_path(&self.root, &self.table, partition);
        match self.read_json::<Checkpoint>(&path).await {
            Ok(c) => Ok(c.filter(|c| !c.source.is_empty())),
            Err(LakeError::BadMarker { reason, .. }) => {
                tracing::warn!(partition, %reason, "checkpoint unreadable; listing instead");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Records a known point of the chain. Only ever a point the chain passes, so a stale
    /// writer that overwrites it with an older one only makes the next walk longer.
    pub(super) async fn write_checkpoint(
        &self,
        partition: i32,
        end: &ChainEnd,
        epoch: u64,
    ) -> Result<(), LakeError> {
        let c = Checkpoint {
            next: end.next.unwrap_or(0),
            epoch,
            source: end.source.clone().unwrap_or_default(),
            written_at_ms: chrono::Utc::now().timestamp_millis(),
        };
        let json = Bytes::from(serde_json::to_vec(&c).expect("checkpoint serialises"));
        let path = naming::checkpoint_path(&self.root, &self.table, partition);
        self.put_bytes(&path, json, "writing checkpoint").await
    }

    /// Every marker name of a partition, in offset order (a listing: verify, and a partition
    /// without a checkpoint yet).
    pub(super) async fn marker_names(&self, partition: i32) -> Result<Vec<MarkerName>, LakeError> {
        let dir = naming::commits_dir(&self.root, &self.table, partition);
        let names = self.list_names(&dir).await?;
        Ok(names
            .iter()
            .filter_map(|n| naming::parse_marker_name(n))
            .collect())
    }

    /// Where the partition's chain ends: walked from its checkpoint, or found by listing when
    /// it has none (a new partition, or a lake written before checkpoints).
    pub(super) async fn chain_end(&self, partition: i32) -> Result<ChainEnd, LakeError> {
        let start = match self.checkpoint(partition).await? {
            Some(c) => ChainEnd {
                next: Some(c.next),
                source: Some(c.source),
            },
            None => self.listed_end(partition).await?,
        };
        self.walk(partition, start).await
    }

    /// Follows the chain from `end` until a marker's name is free.
    async fn walk(&self, partition: i32, mut end: ChainEnd) -> Result<ChainEnd, LakeError> {
        let Some(from) = end.next else {
            // Nothing committed: the listing found no marker, there is no chain to follow.
            return Ok(end);
        };
        let mut at = MarkerName::at(from);
        while let Some(m) = self.marker_at(partition, at).await? {
            // A marker under another range's name (copied, or damaged) must not send the walk
            // elsewhere, or round in circles.
            if m.first_offset != at.first || m.last_offset < m.first_offset {
                let path = naming::marker_path(&self.root, &self.table, partition, at.first);
                return Err(LakeError::BadMarker {
                    path: path.to_string(),
                    reason: format!(
                        "it holds offsets {}-{}, its name says it starts at {}",
                        m.first_offset, m.last_offset, at.first
                    ),
                });
            }
            at = MarkerName::at(m.last_offset + 1);
            end = ChainEnd {
                next: Some(m.last_offset + 1),
                source: Some(m.source),
            };
        }
        Ok(end)
    }

    /// The end of the committed ranges from a listing: the marker that ends furthest (names
    /// from before epochs carry their range; of the others the newest is read).
    async fn listed_end(&self, partition: i32) -> Result<ChainEnd, LakeError> {
        let names = self.marker_names(partition).await?;
        let newest = names.iter().rev().find(|n| n.last.is_none());
        let legacy = names
            .iter()
            .filter(|n| n.last.is_some())
            .max_by_key(|n| n.last);
        let mut best: Option<CommitMarker> = None;
        for n in newest.into_iter().chain(legacy) {
            if let Some(m) = self.marker_at(partition, *n).await?
                && best.as_ref().is_none_or(|b| m.last_offset > b.last_offset)
            {
                best = Some(m);
            }
        }
        Ok(ChainEnd {
            next: best.as_ref().map(|m| m.last_offset + 1),
            source: best.map(|m| m.source),
        })
    }

    /// The marker of the range that starts at `first` (in either naming).
    pub(super) async fn marker_at(
        &self,
        partition: i32,
        name: MarkerName,
    ) -> Result<Option<CommitMarker>, LakeError> {
        let path = match name.last {
            None => naming::marker_path(&self.root, &self.table, partition, name.first),
            Some(last) => naming::legacy_marker_path(
                &self.root,
                &self.table,
                &Range {
                    partition,
                    first: name.first,
                    last,
                },
            ),
        };
        self.read_json(&path).await
    }

    /// The marker committed for `range` (by its first offset; lakes written before epochs by
    /// its whole range).
    pub async fn read_marker(&self, range: &Range) -> Result<CommitMarker, LakeError> {
        let new = MarkerName {
            first: range.first,
            last: None,
        };
        if let Some(m) = self.marker_at(range.partition, new).await? {
            return Ok(m);
        }
        let legacy = naming::legacy_marker_path(&self.root, &self.table, range);
        self.read_json(&legacy)
            .await?
            .ok_or_else(|| LakeError::store("reading", &legacy, not_found(&legacy)))
    }

    /// Committed ranges of a partition, in offset order.
    pub async fn committed_ranges(&self, partition: i32) -> Result<Vec<Range>, LakeError> {
        Ok(self
            .committed_markers(partition)
            .await?
            .iter()
            .map(CommitMarker::range)
            .collect())
    }

    /// The first offset not committed yet (0 when nothing is): a walk from the checkpoint.
    pub async fn committed_end(&self, partition: i32) -> Result<i64, LakeError> {
        Ok(self.committed_next(partition).await?.unwrap_or(0))
    }

    /// Like [`Lake::committed_end`], None when the partition never committed anything.
    pub async fn committed_next(&self, partition: i32) -> Result<Option<i64>, LakeError> {
        Ok(self.chain_end(partition).await?.next)
    }

    /// Partitions that have at least one commit marker.
    pub async fn committed_partitions(&self) -> Result<Vec<i32>, LakeError> {
        self.partitions_under("commits").await
    }

    /// Partitions with bookkeeping (markers or intents): what recovery must look at, whatever
    /// the current partition count is.
    pub async fn known_partitions(&self) -> Result<Vec<i32>, LakeError> {
        let mut all = self.partitions_under("commits").await?;
        all.extend(self.partitions_under("pending").await?);
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    async fn partitions_under(&self, kind: &str) -> Result<Vec<i32>, LakeError> {
        let dir = naming::join(&self.root, &[naming::META_DIR, &self.table, kind]);
        let listing = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|e| LakeError::store("listing", &dir, e))?;
        let mut parts: Vec<i32> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename()?.strip_prefix('p')?.parse().ok())
            .collect();
        parts.sort_unstable();
        Ok(parts)
    }
}

pub(super) fn not_found(path: &Path) -> object_store::Error {
    object_store::Error::NotFound {
        path: path.to_string(),
        source: "no commit marker".into(),
    }
}

//! Reading what a partition has committed: its markers, listed from the partition's
//! checkpoint, and the checkpoint itself.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::super::naming::{self, MarkerName, Range};
use super::super::{Lake, LakeError};
use super::marker::CommitMarker;

/// Markers read at once when a listing's ranges need their markers.
const READ_AHEAD: usize = 16;

/// Where a partition's listings may start: everything before is older than what it names.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Checkpoint {
    /// First offset of a committed marker: no later commit starts before it.
    pub slot: i64,
    /// An epoch that was claimed: every later claim is greater.
    pub epoch: u64,
    pub written_at_ms: i64,
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

    /// File names in `dir`, those after `from` (inclusive of names that start with it) when
    /// given: S3 lists from there, so the cost follows what comes after.
    pub(super) async fn list_names(
        &self,
        dir: &Path,
        from: Option<&str>,
    ) -> Result<Vec<String>, LakeError> {
        let listing = match from {
            // Every name that starts with `from` sorts after it.
            Some(f) => self.store.list_with_offset(Some(dir), &dir.child(f)),
            None => self.store.list(Some(dir)),
        };
        let metas: Vec<_> = listing
            .try_collect()
            .await
            .map_err(|e| LakeError::store("listing", dir, e))?;
        let mut names: Vec<String> = metas
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

    pub(super) async fn checkpoint(&self, partition: i32) -> Result<Checkpoint, LakeError> {
        let path = naming::checkpoint_path(&self.root, &self.table, partition);
        Ok(self.read_json(&path).await?.unwrap_or_default())
    }

    /// Moves the checkpoint to a committed marker and a claimed epoch. Never past what was
    /// committed, so a stale writer that overwrites it with older values only makes the next
    /// listing longer.
    pub(super) async fn write_checkpoint(
        &self,
        partition: i32,
        slot: i64,
        epoch: u64,
    ) -> Result<(), LakeError> {
        let c = Checkpoint {
            slot,
            epoch,
            written_at_ms: chrono::Utc::now().timestamp_millis(),
        };
        let json = Bytes::from(serde_json::to_vec(&c).expect("checkpoint serialises"));
        let path = naming::checkpoint_path(&self.root, &self.table, partition);
        self.put_bytes(&path, json, "writing checkpoint").await
    }

    /// Marker names of a partition in offset order: all of them, or from its checkpoint on.
    async fn marker_names(
        &self,
        partition: i32,
        from_checkpoint: bool,
    ) -> Result<Vec<MarkerName>, LakeError> {
        let from = match from_checkpoint {
            true => self.checkpoint(partition).await?.slot,
            false => 0,
        };
        let dir = naming::commits_dir(&self.root, &self.table, partition);
        let from = (from > 0).then(|| format!("{from:020}"));
        let names = self.list_names(&dir, from.as_deref()).await?;
        Ok(names
            .iter()
            .filter_map(|n| naming::parse_marker_name(n))
            .collect())
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

    /// Every marker of a partition, read (a few at a time), in offset order.
    pub async fn committed_markers(&self, partition: i32) -> Result<Vec<CommitMarker>, LakeError> {
        let names = self.marker_names(partition, false).await?;
        futures::stream::iter(names)
            .map(|n| async move {
                self.marker_at(partition, n).await?.ok_or_else(|| {
                    let p = naming::commits_dir(&self.root, &self.table, partition);
                    LakeError::store("reading", &p, not_found(&p))
                })
            })
            .buffered(READ_AHEAD)
            .try_collect()
            .await
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

    /// The committed marker that ends furthest: where the partition resumes. Reads one marker
    /// of the new naming; names from before epochs carry their range.
    pub async fn last_marker(&self, partition: i32) -> Result<Option<CommitMarker>, LakeError> {
        let names = self.marker_names(partition, true).await?;
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
        Ok(best)
    }

    /// The first offset not committed yet (0 when nothing is).
    pub async fn committed_end(&self, partition: i32) -> Result<i64, LakeError> {
        Ok(self
            .last_marker(partition)
            .await?
            .map_or(0, |m| m.last_offset + 1))
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

fn not_found(path: &Path) -> object_store::Error {
    object_store::Error::NotFound {
        path: path.to_string(),
        source: "no commit marker".into(),
    }
}

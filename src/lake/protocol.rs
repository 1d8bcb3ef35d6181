//! The commit protocol that makes lake output exactly-once.
//!
//! A batch is one contiguous offset range of one source partition, written as one Parquet file
//! per event date. Writing it:
//!
//! 1. put the *intent* (`_encore/<table>/pending/p…/<first>-<last>.json`): the files about to
//!    be written;
//! 2. put every data file (each put is atomic: no reader sees half a file);
//! 3. put the *commit marker* (`_encore/<table>/commits/p…/<first>-<last>.json`): from here
//!    the range is committed;
//! 4. delete the intent.
//!
//! Recovery of a partition (at start and on assignment), before anything else writes it:
//! every intent whose marker exists is deleted (the crash hit step 4); every other intent's
//! files are deleted, then the intent (the crash hit steps 1-3). The partition then resumes
//! after the highest committed `last`. Batches of one partition are committed one at a time and
//! in offset order, so the highest marker ends the committed prefix. A crash at any instant
//! therefore leaves each range either wholly committed or wholly absent after recovery.

use std::collections::BTreeSet;

use bytes::Bytes;
use chrono::NaiveDate;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};

use super::naming::{self, Range};
use super::{Lake, LakeError};

/// Marker format version.
const MARKER_VERSION: u32 = 1;
/// Files above this size are uploaded in parts (S3 multipart), in chunks of this size.
const MULTIPART_THRESHOLD: usize = 32 << 20;
const MULTIPART_CHUNK: usize = 16 << 20;
/// Rejected records listed by offset in a marker; the count is always exact.
const MAX_LISTED_REJECTS: usize = 1000;

/// A record of the range that is not a valid event: accounted for, not silently dropped.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rejected {
    pub offset: i64,
    pub reason: String,
}

/// One encoded data file of a batch, ready to be written.
#[derive(Clone, Debug)]
pub struct PreparedFile {
    pub date: NaiveDate,
    pub bytes: Bytes,
    pub rows: u64,
    pub min_event_time_ms: i64,
    pub max_event_time_ms: i64,
}

/// A batch ready to be committed: its range, its files (one per date), its rejected records.
#[derive(Clone, Debug)]
pub struct PreparedBatch {
    pub range: Range,
    pub files: Vec<PreparedFile>,
    pub rejected: Vec<Rejected>,
}

impl PreparedBatch {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes.len() as u64).sum()
    }
}

/// A data file as listed in a marker.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the lake root.
    pub path: String,
    pub date: String,
    pub rows: u64,
    pub bytes: u64,
    pub min_event_time_ms: i64,
    pub max_event_time_ms: i64,
}

/// The commit marker (and, before commit, the intent) of one range.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CommitMarker {
    pub version: u32,
    pub table: String,
    /// Identity of the source (bus or Kafka cluster/topic): a lake follows one source.
    pub source: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub rows: u64,
    pub rejected_count: u64,
    pub rejected: Vec<Rejected>,
    pub files: Vec<FileEntry>,
    pub committed_at_ms: i64,
}

impl CommitMarker {
    pub fn range(&self) -> Range {
        Range {
            partition: self.partition,
            first: self.first_offset,
            last: self.last_offset,
        }
    }
}

/// What recovering one partition found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionRecovery {
    pub partition: i32,
    /// The first offset not yet in the lake; `None` if nothing was ever committed.
    pub next_offset: Option<i64>,
    /// Uncommitted leftovers removed (relative paths).
    pub removed: Vec<String>,
    /// Intents resolved (committed ones cleaned, uncommitted ones rolled back).
    pub intents: usize,
}

fn rel(root: &Path, p: &Path) -> String {
    match p.prefix_match(root) {
        Some(parts) => parts
            .map(|s| s.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/"),
        None => p.to_string(),
    }
}

impl Lake {
    fn abs(&self, rel_path: &str) -> Path {
        rel_path
            .split('/')
            .fold(self.root.clone(), |p, s| p.child(s))
    }

    async fn put(&self, path: &Path, bytes: Bytes, action: &'static str) -> Result<(), LakeError> {
        let err = |e| LakeError::store(action, path, e);
        if bytes.len() > MULTIPART_THRESHOLD {
            let upload = self.store.put_multipart(path).await.map_err(err)?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK);
            w.put(bytes);
            w.finish().await.map_err(err)?;
        } else {
            self.store
                .put(path, PutPayload::from_bytes(bytes))
                .await
                .map_err(err)?;
        }
        Ok(())
    }

    async fn delete_if_exists(&self, path: &Path) -> Result<bool, LakeError> {
        match self.store.delete(path).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(LakeError::store("deleting", path, e)),
        }
    }

    /// Builds the marker a batch will be committed with.
    pub fn marker_for(&self, source: &str, batch: &PreparedBatch) -> CommitMarker {
        let files = batch
            .files
            .iter()
            .map(|f| FileEntry {
                path: rel(
                    &self.root,
                    &naming::data_path(&self.root, &self.table, f.date, &batch.range),
                ),
                date: f.date.format("%Y-%m-%d").to_string(),
                rows: f.rows,
                bytes: f.bytes.len() as u64,
                min_event_time_ms: f.min_event_time_ms,
                max_event_time_ms: f.max_event_time_ms,
            })
            .collect();
        CommitMarker {
            version: MARKER_VERSION,
            table: self.table.clone(),
            source: source.to_string(),
            partition: batch.range.partition,
            first_offset: batch.range.first,
            last_offset: batch.range.last,
            rows: batch.rows(),
            rejected_count: batch.rejected.len() as u64,
            rejected: batch
                .rejected
                .iter()
                .take(MAX_LISTED_REJECTS)
                .cloned()
                .collect(),
            files,
            committed_at_ms: chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Writes a batch with the intent → data → marker → cleanup sequence. When this returns
    /// `Ok`, the range is durable and committed.
    pub async fn commit_batch(
        &self,
        source: &str,
        batch: &PreparedBatch,
    ) -> Result<CommitMarker, LakeError> {
        let marker = self.marker_for(source, batch);
        let json = Bytes::from(serde_json::to_vec_pretty(&marker).expect("marker serialises"));
        let intent = naming::intent_path(&self.root, &self.table, &batch.range);
        self.put(&intent, json.clone(), "writing intent").await?;
        for (file, entry) in batch.files.iter().zip(&marker.files) {
            self.put(
                &self.abs(&entry.path),
                file.bytes.clone(),
                "writing data file",
            )
            .await?;
        }
        let marker_path = naming::marker_path(&self.root, &self.table, &batch.range);
        self.put(&marker_path, json, "writing commit marker")
            .await?;
        self.delete_if_exists(&intent).await?;
        Ok(marker)
    }

    async fn list_names(&self, dir: &Path) -> Result<Vec<String>, LakeError> {
        let metas: Vec<_> = self
            .store
            .list(Some(dir))
            .try_collect()
            .await
            .map_err(|e| LakeError::store("listing", dir, e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect())
    }

    /// Committed ranges of a partition, in offset order.
    pub async fn committed_ranges(&self, partition: i32) -> Result<Vec<Range>, LakeError> {
        let dir = naming::commits_dir(&self.root, &self.table, partition);
        let set: BTreeSet<Range> = self
            .list_names(&dir)
            .await?
            .iter()
            .filter_map(|n| naming::parse_marker_name(partition, n))
            .collect();
        Ok(set.into_iter().collect())
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

    async fn read_json(&self, path: &Path) -> Result<CommitMarker, LakeError> {
        let bytes = self
            .store
            .get(path)
            .await
            .map_err(|e| LakeError::store("reading", path, e))?
            .bytes()
            .await
            .map_err(|e| LakeError::store("reading", path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| LakeError::BadMarker {
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    pub async fn read_marker(&self, range: &Range) -> Result<CommitMarker, LakeError> {
        self.read_json(&naming::marker_path(&self.root, &self.table, range))
            .await
    }

    /// Removes local staging leftovers (`<name>#<n>`) of a data file; a no-op on object stores.
    fn remove_local_staging(&self, rel_path: &str, removed: &mut Vec<String>) {
        let Some(root) = &self.local_root else { return };
        let full = root.join(rel_path);
        let (Some(dir), Some(name)) = (full.parent(), full.file_name()) else {
            return;
        };
        let prefix = format!("{}#", name.to_string_lossy());
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let n = entry.file_name().to_string_lossy().to_string();
            if n.starts_with(&prefix) && std::fs::remove_file(entry.path()).is_ok() {
                removed.push(format!("{}#{}", rel_path, &n[prefix.len()..]));
            }
        }
    }

    /// Resolves leftovers of interrupted commits and returns where the partition resumes.
    /// Fails if the partition was committed from another source.
    pub async fn recover_partition(
        &self,
        partition: i32,
        source: &str,
    ) -> Result<PartitionRecovery, LakeError> {
        let mut out = PartitionRecovery {
            partition,
            ..PartitionRecovery::default()
        };
        let pending = naming::pending_dir(&self.root, &self.table, partition);
        for name in self.list_names(&pending).await? {
            let Some(range) = naming::parse_marker_name(partition, &name) else {
                continue;
            };
            let intent_path = pending.child(name.as_str());
            let marker_path = naming::marker_path(&self.root, &self.table, &range);
            let committed = match self.store.head(&marker_path).await {
                Ok(_) => true,
                Err(object_store::Error::NotFound { .. }) => false,
                Err(e) => return Err(LakeError::store("checking", &marker_path, e)),
            };
            if !committed {
                let intent = self.read_json(&intent_path).await?;
                for f in &intent.files {
                    if self.delete_if_exists(&self.abs(&f.path)).await? {
                        out.removed.push(f.path.clone());
                    }
                    self.remove_local_staging(&f.path, &mut out.removed);
                }
            }
            self.delete_if_exists(&intent_path).await?;
            out.intents += 1;
        }
        if let Some(last) = self.committed_ranges(partition).await?.last() {
            let marker = self.read_marker(last).await?;
            check_source(partition, &marker.source, source)?;
            out.next_offset = Some(last.last + 1);
        }
        Ok(out)
    }
}

/// Whether a partition committed from `found` may be continued by a run reading `expected`.
/// Kafka identities are `kafka:CLUSTER/TOPIC#TOPIC_ID`; a marker written before topic ids
/// were recorded (no `#`) matches any id of the same cluster and topic.
fn check_source(partition: i32, found: &str, expected: &str) -> Result<(), LakeError> {
    if found == expected {
        return Ok(());
    }
    let (found_base, found_id) = found.split_once('#').unwrap_or((found, ""));
    let (expected_base, expected_id) = expected.split_once('#').unwrap_or((expected, ""));
    if found_base == expected_base {
        if found_id.is_empty() || expected_id.is_empty() {
            return Ok(());
        }
        return Err(LakeError::TopicRecreated {
            partition,
            topic: found_base
                .rsplit('/')
                .next()
                .unwrap_or(found_base)
                .to_string(),
            found: found_id.to_string(),
            expected: expected_id.to_string(),
        });
    }
    Err(LakeError::SourceMismatch {
        partition,
        found: found.to_string(),
        expected: expected.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_continued_only_by_itself() {
        let a = "kafka:C/t#AAAA";
        assert!(check_source(0, a, a).is_ok());
        // Markers from before topic ids were recorded match the same cluster and topic.
        assert!(check_source(0, "kafka:C/t", a).is_ok());
        assert!(matches!(
            check_source(3, a, "kafka:C/t#BBBB"),
            Err(LakeError::TopicRecreated { partition: 3, ref topic, .. }) if topic == "t"
        ));
        assert!(matches!(
            check_source(0, a, "kafka:D/t#AAAA"),
            Err(LakeError::SourceMismatch { .. })
        ));
        assert!(matches!(
            check_source(0, "bus:x", a),
            Err(LakeError::SourceMismatch { .. })
        ));
    }
}

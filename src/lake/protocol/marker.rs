//! What a commit writes: the prepared batch, and the marker (also the intent) that lists it.

use bytes::Bytes;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::super::Lake;
use super::super::naming::{self, Range};

/// Marker format version: 2 adds the writer's epoch (version 1 markers read as epoch 0).
const MARKER_VERSION: u32 = 2;
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
    /// The epoch of the claim its writer held (0: written before epochs).
    #[serde(default)]
    pub epoch: u64,
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
    /// The epoch this writer claimed: its commits carry it.
    pub epoch: u64,
    /// The first offset not yet in the lake; `None` if nothing was ever committed.
    pub next_offset: Option<i64>,
    /// Uncommitted leftovers removed (relative paths).
    pub removed: Vec<String>,
    /// Intents resolved (committed ones cleaned, lost ones rolled back).
    pub intents: usize,
    /// Intents of earlier writers left in place: their range is not taken yet, and a writer
    /// still alive may commit it (whoever takes the name first wins; the loser's files are
    /// removed by the loser or by the next recovery).
    pub contested: usize,
}

pub(super) fn rel(root: &object_store::path::Path, p: &object_store::path::Path) -> String {
    match p.prefix_match(root) {
        Some(parts) => parts
            .map(|s| s.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/"),
        None => p.to_string(),
    }
}

impl Lake {
    /// Builds the marker a writer of `epoch` commits a batch with.
    pub fn marker_for(&self, source: &str, batch: &PreparedBatch, epoch: u64) -> CommitMarker {
        let files = batch
            .files
            .iter()
            .map(|f| FileEntry {
                path: rel(
                    &self.root,
                    &naming::data_path(&self.root, &self.table, f.date, &batch.range, epoch),
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
            epoch,
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
}

//! Recovering a partition before writing it: claim it, settle the intents earlier writers
//! left, and find where it resumes.

use object_store::path::Path;

use super::super::naming::{self, MarkerName, Range};
use super::super::{Lake, LakeError};
use super::marker::{CommitMarker, PartitionRecovery};
use crate::failpoint;

/// What became of an intent an earlier writer left.
enum Fate {
    /// Its marker is there: only the intent is left to delete.
    Committed,
    /// Another marker holds its name, or the committed ranges passed it: never committable.
    Lost,
    /// Its name is free and its writer may be alive: left for whoever takes the name.
    Open,
}

impl Lake {
    /// Claims the partition, resolves what interrupted or beaten commits left, and returns
    /// where the partition resumes with the epoch this writer now holds. Fails if the
    /// partition was committed from another source.
    pub async fn recover_partition(
        &self,
        partition: i32,
        source: &str,
    ) -> Result<PartitionRecovery, LakeError> {
        // The claim comes first: from here every earlier writer is stale, and its next commit
        // fails its last look at the claims.
        let epoch = self.claim(partition).await?;
        let end = self.chain_end(partition).await?;
        if let Some(found) = &end.source {
            check_source(partition, found, source)?;
        }
        let next_offset = end.next;
        let mut out = PartitionRecovery {
            partition,
            epoch,
            next_offset,
            ..PartitionRecovery::default()
        };
        let pending = naming::pending_dir(&self.root, &self.table, partition);
        for name in self.list_names(&pending).await? {
            let Some((range, writer)) = naming::parse_intent_name(partition, &name) else {
                continue;
            };
            let intent = pending.child(name.as_str());
            match self.fate(range, writer, next_offset).await? {
                Fate::Open => {
                    out.contested += 1;
                    continue;
                }
                Fate::Committed => {}
                Fate::Lost => self.roll_back(&intent, &mut out.removed).await?,
            }
            self.delete_if_exists(&intent).await?;
            out.intents += 1;
        }
        // The next recovery walks from here (a partition with nothing committed has no known
        // point yet: its first offset need not be 0).
        failpoint::at(failpoint::RECOVERY_BEFORE_CHECKPOINT).await;
        if end.next.is_some() {
            self.write_checkpoint(partition, &end, epoch).await?;
        }
        Ok(out)
    }

    /// After this writer's first commit at `first` since it recovered the partition: the
    /// intents earlier writers left for the same offset lost, and go with their files.
    pub async fn clear_beaten(
        &self,
        partition: i32,
        first: i64,
        epoch: u64,
    ) -> Result<Vec<String>, LakeError> {
        let pending = naming::pending_dir(&self.root, &self.table, partition);
        let mut removed = Vec::new();
        for name in self.list_names(&pending).await? {
            match naming::parse_intent_name(partition, &name) {
                Some((r, writer)) if r.first == first && writer != epoch && writer != 0 => {
                    let intent = pending.child(name.as_str());
                    self.roll_back(&intent, &mut removed).await?;
                    failpoint::at(failpoint::BEATEN_AFTER_FILES).await;
                    self.delete_if_exists(&intent).await?;
                }
                _ => {}
            }
        }
        Ok(removed)
    }

    async fn fate(&self, r: Range, writer: u64, next: Option<i64>) -> Result<Fate, LakeError> {
        if writer == 0 {
            // Written before epochs, by the only writer there was: its marker or nothing.
            let legacy = MarkerName {
                first: r.first,
                last: Some(r.last),
            };
            let found = self.marker_at(r.partition, legacy).await?;
            return Ok(if found.is_some() {
                Fate::Committed
            } else {
                Fate::Lost
            });
        }
        match self.marker_at(r.partition, MarkerName::at(r.first)).await? {
            Some(m) if m.epoch == writer && m.range() == r => Ok(Fate::Committed),
            Some(_) => Ok(Fate::Lost),
            None if next.is_some_and(|n| r.first < n) => Ok(Fate::Lost),
            None => Ok(Fate::Open),
        }
    }

    /// Deletes the files an intent lists (they carry its writer's epoch: nobody else's).
    async fn roll_back(&self, intent: &Path, removed: &mut Vec<String>) -> Result<(), LakeError> {
        let Some(listed) = self.read_json::<CommitMarker>(intent).await? else {
            return Ok(());
        };
        for f in &listed.files {
            if self.delete_if_exists(&self.abs(&f.path)).await? {
                removed.push(f.path.clone());
            }
            self.remove_local_staging(&f.path, removed);
        }
        Ok(())
    }

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

//! Manifests: every `MANIFEST_EVERY` commits in a row, a writer stores copies of their markers
//! in one object, so that a reader of the whole history (`verify`) reads one object per
//! `MANIFEST_EVERY` commits instead of one per commit. Markers stay where they are: they are
//! what the protocol decides with. A manifest only copies markers its writer's commits created
//! (never changed or deleted afterwards), so a copy is as good as the marker; a marker name no
//! manifest covers is read itself.

use std::collections::HashMap;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::super::naming;
use super::super::{Lake, LakeError};
use super::claims::Created;
use super::marker::CommitMarker;

/// Commits per manifest.
pub const MANIFEST_EVERY: usize = 256;
/// Reads in flight at once when markers or manifests are read one by one.
const READ_AHEAD: usize = 16;

#[derive(Serialize, Deserialize)]
struct Manifest {
    version: u32,
    partition: i32,
    first: i64,
    last: i64,
    markers: Vec<CommitMarker>,
}

impl Lake {
    /// Stores copies of `markers` (consecutive commits of one partition, in order) as one
    /// manifest named by their first offset.
    pub async fn write_manifest(&self, markers: &[CommitMarker]) -> Result<(), LakeError> {
        let (Some(first), Some(last)) = (markers.first(), markers.last()) else {
            return Ok(());
        };
        let manifest = Manifest {
            version: 1,
            partition: first.partition,
            first: first.first_offset,
            last: last.last_offset,
            markers: markers.to_vec(),
        };
        let json = Bytes::from(serde_json::to_vec(&manifest).expect("manifest serialises"));
        let path = naming::manifest_path(&self.root, &self.table, first.partition, manifest.first);
        // Taken: the same commits' manifest, written by an earlier attempt.
        let _: Created = self.create(&path, json, "writing manifest").await?;
        Ok(())
    }

    /// Every marker of a partition, in offset order: the names listed, the bodies from the
    /// manifests that cover them, the rest read one by one.
    pub async fn committed_markers(&self, partition: i32) -> Result<Vec<CommitMarker>, LakeError> {
        self.each_committed_marker(partition)
            .await?
            .into_iter()
            .collect()
    }

    /// Like [`Lake::committed_markers`], with each marker that cannot be read as its own error
    /// (verify reports it and goes on with the others).
    pub async fn each_committed_marker(
        &self,
        partition: i32,
    ) -> Result<Vec<Result<CommitMarker, LakeError>>, LakeError> {
        let names = self.marker_names(partition).await?;
        let mut copies = self.manifest_copies(partition).await?;
        Ok(futures::stream::iter(names)
            .map(|n| {
                let copy = match n.last {
                    None => copies.remove(&n.first),
                    Some(_) => None,
                };
                async move {
                    if let Some(m) = copy {
                        return Ok(m);
                    }
                    self.marker_at(partition, n).await?.ok_or_else(|| {
                        let p = naming::commits_dir(&self.root, &self.table, partition);
                        LakeError::store("reading", &p, super::chain::not_found(&p))
                    })
                }
            })
            .buffered(READ_AHEAD)
            .collect()
            .await)
    }

    /// The copies the partition's manifests hold, by first offset. A manifest that cannot be
    /// parsed is skipped (its markers are read instead).
    async fn manifest_copies(
        &self,
        partition: i32,
    ) -> Result<HashMap<i64, CommitMarker>, LakeError> {
        let dir = naming::manifests_dir(&self.root, &self.table, partition);
        let names = self.list_names(&dir).await?;
        let manifests: Vec<Option<Manifest>> = futures::stream::iter(names)
            .map(|name| {
                let path = dir.child(name.as_str());
                async move {
                    match self.read_json::<Manifest>(&path).await {
                        Ok(m) => Ok(m),
                        Err(LakeError::BadMarker { .. }) => {
                            tracing::warn!(%path, "unreadable manifest: its markers are read instead");
                            Ok(None)
                        }
                        Err(e) => Err(e),
                    }
                }
            })
            .buffered(READ_AHEAD)
            .try_collect()
            .await?;
        Ok(manifests
            .into_iter()
            .flatten()
            .flat_map(|m| m.markers)
            .filter(|m| m.partition == partition)
            .map(|m| (m.first_offset, m))
            .collect())
    }
}

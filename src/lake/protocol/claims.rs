//! Claims: each writer of a partition takes the next epoch by creating its claim only if
//! absent, so two writers never share an epoch, and a writer learns it is stale from the claim
//! after its own.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::super::naming;
use super::super::{Lake, LakeError};
use crate::failpoint;

/// Claims a writer attempts before it gives up (each lost one means another writer claimed
/// the same epoch at the same moment).
const CLAIM_ATTEMPTS: usize = 8;

#[derive(Serialize, Deserialize)]
struct Claim {
    epoch: u64,
    /// Who claimed (host and process), for people reading the lake.
    by: String,
    claimed_at_ms: i64,
}

/// How a create-only put ended.
pub(super) enum Created {
    Yes,
    /// Something already has the name.
    Taken,
}

impl Lake {
    /// Puts `bytes` at `path` only if nothing is there (S3 `If-None-Match: *`, a no-clobber
    /// link on a local disk).
    pub(super) async fn create(
        &self,
        path: &Path,
        bytes: Bytes,
        action: &'static str,
    ) -> Result<Created, LakeError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from_bytes(bytes), opts)
            .await
        {
            Ok(_) => Ok(Created::Yes),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::Taken),
            Err(e) => Err(LakeError::store(action, path, e)),
        }
    }

    /// Refuses a store that does not honour create-only writes: fencing rests on them, and a
    /// store that ignores `If-None-Match` would let two writers both commit.
    pub(crate) async fn check_create_only(&self) -> Result<(), LakeError> {
        let path = naming::join(
            &self.root,
            &[
                naming::META_DIR,
                &format!(".probe-create-{}", uuid::Uuid::now_v7()),
            ],
        );
        let unsupported = |what: &str| LakeError::Location {
            url: self.display.clone(),
            reason: format!(
                "the store {what}: encore needs create-only writes (S3 `If-None-Match: *`) to \
                 keep two writers of a partition from both committing; AWS S3, MinIO, Cloudflare \
                 R2 and s3s-fs provide them"
            ),
        };
        let first = match self
            .create(
                &path,
                Bytes::from_static(b"1"),
                "probing create-only writes",
            )
            .await
        {
            Err(LakeError::Store {
                source: object_store::Error::NotImplemented,
                ..
            }) => {
                return Err(unsupported("does not support conditional writes"));
            }
            other => other?,
        };
        let second = self
            .create(
                &path,
                Bytes::from_static(b"2"),
                "probing create-only writes",
            )
            .await;
        self.delete_if_exists(&path).await?;
        match (first, second?) {
            (Created::Yes, Created::Taken) => Ok(()),
            _ => Err(unsupported(
                "overwrote an object a create-only write found in place",
            )),
        }
    }

    /// Takes the next epoch of `partition`. Before it, nothing of the partition is deleted.
    pub(super) async fn claim(&self, partition: i32) -> Result<u64, LakeError> {
        for _ in 0..CLAIM_ATTEMPTS {
            let epoch = self.latest_claim(partition).await? + 1;
            let claim = Claim {
                epoch,
                by: whoami(),
                claimed_at_ms: chrono::Utc::now().timestamp_millis(),
            };
            let json = Bytes::from(serde_json::to_vec(&claim).expect("claim serialises"));
            let path = naming::claim_path(&self.root, &self.table, partition, epoch);
            failpoint::at(failpoint::CLAIM_BEFORE).await;
            if let Created::Yes = self.create(&path, json, "claiming the partition").await? {
                failpoint::at(failpoint::CLAIM_AFTER).await;
                return Ok(epoch);
            }
        }
        Err(LakeError::Contended { partition })
    }

    /// The highest epoch claimed (0: none). Claims are consecutive: from the checkpoint's
    /// epoch the next ones are looked up one by one; without a checkpoint they are listed.
    async fn latest_claim(&self, partition: i32) -> Result<u64, LakeError> {
        let Some(cp) = self.checkpoint(partition).await? else {
            let dir = naming::claims_dir(&self.root, &self.table, partition);
            let names = self.list_names(&dir).await?;
            return Ok(names
                .iter()
                .filter_map(|n| naming::parse_claim_name(n))
                .max()
                .unwrap_or(0));
        };
        let mut epoch = cp.epoch;
        while self.superseded(partition, epoch).await? {
            epoch += 1;
        }
        Ok(epoch)
    }

    /// Whether a writer claimed `partition` after the writer of `epoch` (claims are never
    /// deleted, so the next epoch's claim exists exactly then).
    pub(super) async fn superseded(&self, partition: i32, epoch: u64) -> Result<bool, LakeError> {
        let path = naming::claim_path(&self.root, &self.table, partition, epoch + 1);
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(LakeError::store("checking the claims", &path, e)),
        }
    }
}

fn whoami() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}/pid {}", std::process::id())
}

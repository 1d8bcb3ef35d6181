//! The rebalance hooks of a sink's group member: a revocation goes through the accumulator
//! (bounded), an assignment is recovered from the lake first, all partitions at once, on the
//! lake's arbiter; the accumulator learns where each partition resumes and with which epoch.

use std::time::Duration;

use actix::prelude::*;

use crate::kafka::consumer::{RebalanceHooks, RecoveryError};
use crate::lake::{Lake, LakeError, PartitionRecovery};
use crate::messages::{Resume, ResumeAt, Revoke, StopReason, StopRun};

use super::accumulator::Accumulator;
use super::supervisor::Supervisor;

/// How long a revocation waits for the revoked partitions' commit in progress.
const REVOKE_PATIENCE: Duration = Duration::from_secs(30);
/// How long recovery of assigned partitions may keep failing (lake unreachable) before the
/// run stops.
const RECOVERY_PATIENCE: Duration = Duration::from_secs(60);

/// The rebalance hooks of a sink: revocation goes through the accumulator, recovery through
/// the lake on another arbiter (the polling thread must not run the lake's I/O itself).
pub struct SinkHooks {
    pub accumulator: Addr<Accumulator>,
    pub supervisor: Addr<Supervisor>,
    pub lake: Lake,
    pub source: String,
    /// Where recovery runs.
    pub io: ArbiterHandle,
}

impl RebalanceHooks for SinkHooks {
    fn revoke(&self, partitions: &[i32]) {
        let (tx, rx) = std::sync::mpsc::channel();
        let send = self.accumulator.send(Revoke {
            partitions: partitions.to_vec(),
        });
        // Awaited on the lake's arbiter, bounded here: the polling thread must not hang on a
        // lake that does not answer. The accumulator stops retrying revoked batches, so the
        // wait normally ends with the commit attempt in progress.
        let spawned = self.io.spawn(async move {
            let _ = tx.send(send.await.is_ok());
        });
        if spawned && rx.recv_timeout(REVOKE_PATIENCE).is_err() {
            tracing::error!(
                ?partitions,
                "a batch of revoked partitions is still being written after {}s; its commit is fenced by the next owner's claim",
                REVOKE_PATIENCE.as_secs()
            );
        }
    }

    fn assign(&self, partitions: &[i32]) -> Result<Vec<Option<i64>>, RecoveryError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (lake, source, parts) = (self.lake.clone(), self.source.clone(), partitions.to_vec());
        let spawned = self.io.spawn(async move {
            let _ = tx.send(recover_all(&lake, &source, &parts).await);
        });
        if !spawned {
            return Err(RecoveryError::ArbiterGone);
        }
        let recovered = rx.recv().map_err(|_| RecoveryError::Interrupted)??;
        // Sent before the consumer can fetch this assignment's records: the accumulator sees
        // it first, so each partition's first range starts where the lake resumes.
        let positions = recovered
            .iter()
            .map(|r| Resume {
                partition: r.partition,
                offset: r.next_offset,
                epoch: r.epoch,
            })
            .collect();
        self.accumulator.do_send(ResumeAt { positions });
        Ok(recovered.iter().map(|r| r.next_offset).collect())
    }

    fn fatal(&self, error: String) {
        tracing::error!("{error}");
        self.supervisor.do_send(StopRun {
            reason: StopReason::Fatal(error),
        });
    }
}

/// Recovers the partitions, at once, each retrying transient lake errors with backoff for a
/// while; in the order given.
async fn recover_all(
    lake: &Lake,
    source: &str,
    parts: &[i32],
) -> Result<Vec<PartitionRecovery>, LakeError> {
    let started = std::time::Instant::now();
    futures::future::try_join_all(parts.iter().map(|&p| recover_one(lake, source, p, started)))
        .await
}

pub(super) async fn recover_one(
    lake: &Lake,
    source: &str,
    p: i32,
    started: std::time::Instant,
) -> Result<PartitionRecovery, LakeError> {
    let mut delay = Duration::from_millis(200);
    loop {
        match lake.recover_partition(p, source).await {
            Ok(rec) => {
                if !rec.removed.is_empty() {
                    tracing::info!(partition = p, removed = ?rec.removed, "removed uncommitted leftovers");
                }
                return Ok(rec);
            }
            Err(e) if e.is_retriable() && started.elapsed() < RECOVERY_PATIENCE => {
                tracing::warn!(partition = p, %e, "recovering from the lake failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

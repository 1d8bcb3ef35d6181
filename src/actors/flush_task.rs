//! The flush task: takes one batch of one partition to the lake, retrying with backoff until
//! it is durable, then tells the committer. One runs per partition with a batch in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;

use crate::lake::{Attempt, Fence, LakeError};
use crate::messages::{ActorFailed, Flush, FlushDone, PartitionLost, StopReason, StopRun};
use crate::sink::PendingBatch;

use super::accumulator::Accumulator;
use super::committer::Committer;
use super::flusher::Flusher;
use super::supervisor::Supervisor;

/// Retry delays of a failing flush: doubling from the first up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_CAP: Duration = Duration::from_secs(10);

/// Whether the lake is failing, shared by the flush tasks: while it is, one of them at a time
/// retries (holding `probe`, which keeps the next delay).
#[derive(Default)]
pub(super) struct LakeHealth {
    failing: AtomicBool,
    probe: tokio::sync::Mutex<Option<Duration>>,
}

/// Flushes one batch until it is durable, then tells the committer and reports back. Runs
/// outside the actor's context, as a plain task, so that retries with backoff never hold up
/// the actor.
pub(super) async fn flush_task(
    batch: Arc<PendingBatch>,
    revoked: Arc<AtomicBool>,
    health: Arc<LakeHealth>,
    flusher: Addr<Flusher>,
    committer: Addr<Committer>,
    supervisor: Addr<Supervisor>,
    me: Addr<Accumulator>,
) {
    let partition = batch.range.partition;
    let fence = Fence::new(batch.epoch, revoked.clone());
    let mut attempt = Attempt::First;
    loop {
        // While the lake fails, attempts go one at a time, each after the shared delay.
        let mut probe = if health.failing.load(Ordering::Acquire) {
            let guard = health.probe.lock().await;
            health.failing.load(Ordering::Acquire).then_some(guard)
        } else {
            None
        };
        if revoked.load(Ordering::Acquire) {
            tracing::info!(
                partition,
                first = batch.range.first,
                last = batch.range.last,
                "partition revoked: batch abandoned (the next owner reads it again)"
            );
            break;
        }
        let error = match flusher
            .send(Flush {
                batch: batch.clone(),
                fence: fence.clone(),
                attempt,
            })
            .await
        {
            Ok(Ok(durable)) => {
                if let Some(delay) = probe.as_deref_mut() {
                    *delay = None;
                    health.failing.store(false, Ordering::Release);
                    tracing::info!(partition, "the lake answers again; flushing resumes");
                }
                let _ = committer.send(durable).await;
                break;
            }
            Ok(Err(e)) if matches!(*e, LakeError::Fenced { .. } | LakeError::Lost { .. }) => {
                tracing::warn!(partition, error = %e, "batch not committed");
                me.do_send(PartitionLost {
                    partition,
                    epoch: batch.epoch,
                    error: e,
                });
                break;
            }
            // Denied access, a bad path, an encoding failure: retrying cannot help, and the
            // batch stays unacknowledged in Kafka, so the run stops instead of spinning.
            Ok(Err(e)) if !e.is_retriable() => {
                let error = format!("partition {partition}: the lake refused a batch: {e}");
                tracing::error!("{error}");
                supervisor.do_send(StopRun {
                    reason: StopReason::Fatal(error),
                });
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("flusher unreachable: {e}"),
        };
        attempt = Attempt::Retry;
        health.failing.store(true, Ordering::Release);
        let mut guard = match probe.take() {
            Some(g) => g,
            None => health.probe.lock().await,
        };
        let delay = guard.map_or(RETRY_FIRST, |d| (d * 2).min(RETRY_CAP));
        *guard = Some(delay);
        tracing::warn!(
            partition,
            first = batch.range.first,
            last = batch.range.last,
            retry_in_ms = delay.as_millis() as u64,
            %error,
            "flush failed; batch kept for retry"
        );
        if supervisor
            .send(ActorFailed {
                actor: "flusher",
                error,
            })
            .await
            .is_err()
        {
            return;
        }
        // Holding the probe: the other partitions wait rather than fail too.
        tokio::time::sleep(delay).await;
    }
    // Control message, one per batch: bounded, and must not wait for mailbox room.
    me.do_send(FlushDone { partition });
}

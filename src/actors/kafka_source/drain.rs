//! The source's part of a drain: reading up to given offsets (the high watermarks at the
//! drain's start, or `--exit-at-end`'s), and ends of partitions made of transaction markers.

use std::time::Duration;

use actix::prelude::*;
use rdkafka::consumer::Consumer;
use tokio::sync::oneshot;

use crate::messages::{AdvanceTo, DrainTo, StopConsuming};

use super::KafkaSource;

/// How long reading a partition's low watermark may take at the end of a drain.
const WATERMARK_PATIENCE: Duration = Duration::from_secs(5);

impl KafkaSource {
    /// Replies to a waiting drain once every partition reached its target (or the source
    /// stopped).
    pub(super) fn check_drain(&mut self) {
        if self.held.is_empty()
            && let Some((targets, tx)) = self.drain.take()
        {
            self.advance_over_markers(&targets);
            self.drain = Some((targets, tx));
        }
        let reached = match &self.drain {
            // Every partition with records must be owned here and read up to its target: a
            // partition revoked mid-run (a session lost while the broker was away) is waited
            // for until the group gives it back. Records held back from a hand-over are not
            // with the accumulator yet.
            Some(_) if !self.held.is_empty() => false,
            Some((targets, _)) => targets.iter().enumerate().all(|(p, &target)| {
                target <= 0
                    || self
                        .positions
                        .get(&(p as i32))
                        .is_some_and(|pos| pos.unwrap_or(0) >= target)
            }),
            None => false,
        };
        if (reached || self.stopped)
            && let Some((_, tx)) = self.drain.take()
        {
            let _ = tx.send(self.consumed);
        }
    }

    /// A partition whose last offsets are transaction markers (or aborted records) never
    /// delivers a record at them: librdkafka's position passes them. Once it is at the target
    /// with every record handed over, the accumulator's range is advanced to it, so that the
    /// lake reaches the target too. A partition the lake had nothing of and that gave no record
    /// (only aborted ones) starts at its low watermark, where reading began.
    fn advance_over_markers(&mut self, targets: &[i64]) {
        let short: Vec<(i32, i64, bool)> = targets
            .iter()
            .enumerate()
            .filter_map(|(p, &t)| {
                let pos = *self.positions.get(&(p as i32))?;
                (pos.unwrap_or(0) < t).then_some((p as i32, t, pos.is_none()))
            })
            .collect();
        let Some(c) = self.consumer.as_ref().filter(|_| !short.is_empty()) else {
            return;
        };
        let Ok(at) = c.position() else { return };
        for (p, target, unstarted) in short {
            let fetched =
                at.find_partition(&self.recovery.topic, p)
                    .and_then(|e| match e.offset() {
                        rdkafka::Offset::Offset(o) => Some(o),
                        _ => None,
                    });
            if fetched.is_some_and(|f| f >= target) {
                let start = if unstarted {
                    match c.fetch_watermarks(&self.recovery.topic, p, WATERMARK_PATIENCE) {
                        Ok((low, _)) => Some(low),
                        Err(e) => {
                            tracing::warn!(partition = p, %e, "reading the low watermark");
                            continue;
                        }
                    }
                } else {
                    None
                };
                tracing::debug!(
                    partition = p,
                    to = target,
                    "offsets without a record at the end"
                );
                self.accumulator.do_send(AdvanceTo {
                    partition: p,
                    start,
                    to: target,
                });
                self.positions.insert(p, Some(target));
            }
        }
    }
}

impl Handler<DrainTo> for KafkaSource {
    type Result = MessageResult<DrainTo>;

    fn handle(&mut self, msg: DrainTo, _ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        tracing::debug!(targets = ?msg.targets, positions = ?self.positions, "draining to the high watermarks");
        self.drain = Some((msg.targets, tx));
        self.check_drain();
        MessageResult(rx)
    }
}

impl Handler<StopConsuming> for KafkaSource {
    type Result = u64;

    fn handle(&mut self, _: StopConsuming, _ctx: &mut Self::Context) -> u64 {
        // Every record handed over is in the accumulator's mailbox, ahead of the drain's flush;
        // records held back (polled while a hand-over waited) are left to the next reader.
        self.stopped = true;
        self.check_drain();
        self.consumed
    }
}

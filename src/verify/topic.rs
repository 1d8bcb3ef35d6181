//! The topic as the lake is compared with it (with `--brokers` and the whole lake only): each
//! partition's low and high watermark, and the dead-letter topic read to its end.

use std::collections::{BTreeMap, BTreeSet};

use super::dead_letters::{self, DeadLetters, NO_LETTERS};
use super::report::Report;
use super::{Sources, VerifyError, VerifyOptions, blocking, source_error};
use crate::kafka::KafkaConnection;
use crate::lake::Lake;

/// Low and high watermark per partition.
pub(super) type Watermarks = BTreeMap<i32, (i64, i64)>;

/// The topic as the offsets are compared with it: with `--brokers` and the whole lake only.
#[derive(Default)]
pub(super) struct Topic {
    pub watermarks: Option<Watermarks>,
    pub dead: Option<DeadLetters>,
}

impl Topic {
    pub async fn read(
        lake: &Lake,
        opts: &VerifyOptions,
        sources: &Sources,
        report: &mut Report,
    ) -> Result<Topic, VerifyError> {
        let watermarks = match &sources.kafka {
            Some(cfg) if !opts.filtered() => Some(watermarks(cfg, lake.table()).await?),
            Some(_) => {
                let note = "--date-from/--date-to: offsets are not compared with the topic";
                report.notes.push(note.into());
                None
            }
            None => None,
        };
        let dead = dead_letters::read(lake, opts, sources, report).await?;
        Ok(Topic { watermarks, dead })
    }

    /// The dead letters of partition `p` (none without the dead-letter topic).
    pub fn letters(&self, p: i32) -> &BTreeSet<i64> {
        self.dead.as_ref().map_or(&NO_LETTERS, |d| d.letters(p))
    }
}

/// Low and high watermark per partition of `topic`.
async fn watermarks(cfg: &KafkaConnection, topic: &str) -> Result<Watermarks, VerifyError> {
    let (cfg, topic) = (cfg.clone(), topic.to_string());
    let marks = blocking(move || crate::kafka::watermarks(&cfg, &topic))
        .await?
        .map_err(source_error)?
        .ok_or_else(|| source_error("the topic does not exist on these brokers"))?;
    Ok((0..).zip(marks).collect())
}

//! `encore verify`: what the lake holds, whether it is sound, and whether it agrees with the
//! topic and with ClickHouse.
//!
//! [`verify`] runs its phases in order, one module each: the commit markers (`markers`), the
//! files and their footers (`files`), the rows of six projected columns (`rows`, with a few
//! `samples`), event ids held twice (`duplicates`), the topic's watermarks and dead letters
//! (`topic`, `dead_letters`), the offsets per Kafka partition (`offsets`, whose pure range
//! logic is `coverage`), the sum of every record (`accounting`) and ClickHouse (`clickhouse`).
//! Findings go into the [`Report`] (`report`); an error means only that the lake or a source
//! could not be read at all.

mod accounting;
mod clickhouse;
pub mod command;
pub mod coverage;
mod dead_letters;
mod duplicates;
mod files;
mod markers;
mod offsets;
mod report;
mod rows;
mod samples;
mod topic;

use std::fmt;

use chrono::NaiveDate;

use crate::clickhouse::ClickHouse;
use crate::kafka::KafkaConnection;
use crate::lake::{Lake, LakeError};

pub use report::{
    Accounting, ClickHouseReport, DateCount, DeadLetterReport, FileReport, PartitionReport,
    Problem, Report,
};

/// What to check and how much to print.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// track_playback rows to show.
    pub samples: usize,
    /// Only these dates (inclusive); the offset checks against the topic need the whole lake.
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
    /// How many ids or offsets a finding lists.
    pub list: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            samples: 10,
            date_from: None,
            date_to: None,
            list: 10,
        }
    }
}

impl VerifyOptions {
    /// Whether only some dates are checked (then offsets are not compared across the lake).
    fn filtered(&self) -> bool {
        self.date_from.is_some() || self.date_to.is_some()
    }

    /// Whether a `date=` directory's date is checked; a malformed one only without a filter.
    fn includes(&self, date: &str) -> bool {
        let Ok(d) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
            return !self.filtered();
        };
        self.date_from.is_none_or(|f| d >= f) && self.date_to.is_none_or(|t| d <= t)
    }
}

/// The other places the events should be.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// The topic the lake was written from (same name as the lake table).
    pub kafka: Option<KafkaConnection>,
    /// The sink's dead-letter topic (with `kafka`); None: `<table>.dlq`.
    pub dlq_topic: Option<String>,
    /// ClickHouse and the database holding encore's tables.
    pub clickhouse: Option<(ClickHouse, String)>,
}

/// Why verify could not check at all (exit 2): the lake cannot be listed, a source does not
/// answer.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{0}")]
    Source(String),
}

/// A source that did not answer.
fn source_error(e: impl fmt::Display) -> VerifyError {
    VerifyError::Source(e.to_string())
}

/// Runs a blocking librdkafka call on a blocking thread, so that it does not stall the async
/// runtime; a panic in it is a source error.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> T + Send + 'static,
) -> Result<T, VerifyError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(source_error)
}

fn uuid_text(id: u128) -> String {
    uuid::Uuid::from_u128(id).to_string()
}

/// Checks the lake's table, and with `sources` reconciles it with the topic and ClickHouse.
/// Errors only when the lake cannot be listed or a source does not answer; everything else is
/// a problem in the report.
pub async fn verify(
    lake: &Lake,
    opts: &VerifyOptions,
    sources: &Sources,
) -> Result<Report, VerifyError> {
    let mut report = Report {
        location: lake.location().to_string(),
        table: lake.table().to_string(),
        ..Report::default()
    };
    // The markers are read before the files are listed, so that a commit landing meanwhile
    // shows up as files the listing has (re-checked there), never as files that are missing.
    let mut committed = markers::read(lake, &mut report).await?;
    let mut scanned = files::check(lake, opts, &mut committed, &mut report).await?;
    let duplicates = duplicates::dedup_ids(&mut scanned.rows.ids, opts.list);
    report.distinct_events = scanned.rows.ids.len() as u64;
    report.per_type = scanned.rows.per_type;
    if let Some(cfg) = &sources.kafka {
        markers::check_topic(cfg, lake.table(), &committed.sources, &mut report).await?;
    }
    let mut topic = topic::Topic::read(lake, opts, sources, &mut report).await?;
    let partitions = offsets::partitions(scanned.rows.offsets, committed.ranges, &topic);
    let totals = offsets::check(partitions, &mut topic, opts, &mut report);
    duplicates::note_replays(&duplicates, totals.offset_copies, &mut report);
    if let Some(watermarks) = &topic.watermarks {
        accounting::finish(totals.accounting, watermarks, lake.table(), &mut report);
        report.dead_letters = topic.dead.map(|d| d.report);
    }
    if let Some(found) =
        clickhouse::reconcile(lake.table(), sources, &scanned.rows.ids, opts).await?
    {
        clickhouse::add_findings(found, totals.accounting.in_flight, &mut report);
    }
    scanned.samples.finish(&mut report);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_included_by_the_filter() {
        let all = VerifyOptions::default();
        assert!(!all.filtered());
        assert!(all.includes("2026-01-02") && all.includes("not-a-date"));
        let day = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let some = VerifyOptions {
            date_from: day("2026-01-02"),
            date_to: day("2026-01-03"),
            ..VerifyOptions::default()
        };
        assert!(some.filtered());
        assert!(some.includes("2026-01-02") && some.includes("2026-01-03"));
        assert!(!some.includes("2026-01-01") && !some.includes("2026-01-04"));
        assert!(!some.includes("not-a-date"));
    }
}

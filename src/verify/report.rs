//! The verdict of `encore verify`: the [`Report`] every phase adds to, serialized as is for
//! `--json`; its text form is in `text`.

mod text;

use std::collections::BTreeMap;
use std::fmt;

use arrow::array::RecordBatch;
use serde::Serialize;

use super::coverage::{PartitionCheck, Span};
use crate::event::EVENT_TYPES;

/// One finding: what kind, where, and what exactly.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub subject: String,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.detail)
    }
}

/// One data file's facts.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    /// Path relative to the table directory (`date=…/p….parquet`).
    pub path: String,
    pub date: String,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct DateCount {
    pub files: u64,
    pub rows: u64,
}

/// One Kafka partition as the lake holds it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PartitionReport {
    pub rows: u64,
    /// Records the commit markers count as rejected (not valid events).
    pub rejected: u64,
    /// Offset runs held by data files (and rejected records listed by markers).
    pub ranges: Vec<Span>,
    /// Against the topic, with `--brokers`.
    pub topic: Option<PartitionCheck>,
}

/// ClickHouse against the lake.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClickHouseReport {
    pub table: String,
    pub version: String,
    pub rows: u64,
    pub distinct: u64,
    /// Extra copies not merged away yet (FINAL and merges remove them).
    pub duplicates_before_merges: u64,
    pub duplicate_ids: Vec<String>,
    pub missing: u64,
    pub missing_ids: Vec<String>,
    /// Events in ClickHouse that the lake does not have.
    pub extra: u64,
    pub extra_ids: Vec<String>,
    /// Per Kafka partition (servers with the source columns): rows, distinct, first and last
    /// offset.
    pub per_partition: BTreeMap<i32, (u64, u64, i64, i64)>,
    /// Records ClickHouse's queue has not consumed yet (with `--brokers`).
    pub queue_lag: Option<i64>,
}

/// The dead-letter topic against the commit markers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DeadLetterReport {
    pub topic: String,
    /// Records in the topic for this source, copies included.
    pub records: u64,
    /// Distinct source records.
    pub distinct: u64,
    /// Distinct source records per reason.
    pub reasons: BTreeMap<String, u64>,
    /// Of `distinct`, those inside committed ranges.
    pub committed: u64,
}

/// Every record of the topic, accounted for (with `--brokers`, whole lake). Counts cover the
/// offsets the topic still has (from its low watermark): rows and dead letters of older
/// offsets, deleted from the topic by retention, are in `older_rows`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Records between the low and high watermarks.
    pub topic_records: i64,
    /// Lake rows inside committed ranges.
    pub lake_rows: u64,
    /// Distinct dead letters inside committed ranges.
    pub dead_letters: u64,
    /// Offsets of committed ranges that hold neither (transaction markers, compaction).
    pub no_record: i64,
    pub in_flight: i64,
    /// Lake rows below the topic's low watermark.
    pub older_rows: u64,
}

impl Accounting {
    pub fn accounted(&self) -> i64 {
        self.lake_rows as i64 + self.dead_letters as i64 + self.no_record + self.in_flight
    }
}

/// The result of checking a lake.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub location: String,
    pub table: String,
    pub files: Vec<FileReport>,
    pub per_date: BTreeMap<String, DateCount>,
    pub rows: u64,
    pub bytes: u64,
    /// Rows per event type id (index id - 1).
    pub per_type: [u64; EVENT_TYPES],
    pub distinct_events: u64,
    /// Extra copies of events found at other offsets (the topic's replays, not lake faults).
    pub replayed_events: u64,
    pub partitions: BTreeMap<i32, PartitionReport>,
    pub clickhouse: Option<ClickHouseReport>,
    pub dead_letters: Option<DeadLetterReport>,
    pub accounting: Option<Accounting>,
    /// Everything wrong.
    pub problems: Vec<Problem>,
    /// Worth knowing, not wrong (records in flight, duplicates ClickHouse will merge).
    pub notes: Vec<String>,
    /// The first track_playback rows (by file order), for eyeballing.
    #[serde(skip)]
    pub samples: Option<RecordBatch>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    pub(super) fn problem(
        &mut self,
        kind: &'static str,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.problems.push(Problem {
            kind,
            subject: subject.into(),
            detail: detail.into(),
        });
    }

    /// A problem of one Kafka partition.
    pub(super) fn partition_problem(
        &mut self,
        kind: &'static str,
        partition: i32,
        detail: impl Into<String>,
    ) {
        self.problem(kind, format!("partition {partition}"), detail);
    }

    /// Counts a readable data file in the totals and its date.
    pub(super) fn add_file(&mut self, file: FileReport) {
        let date = self.per_date.entry(file.date.clone()).or_default();
        date.files += 1;
        date.rows += file.rows;
        self.rows += file.rows;
        self.bytes += file.bytes;
        self.files.push(file);
    }

    /// Problems as text, one per line.
    pub fn problem_text(&self) -> String {
        self.problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two files of one date.
    pub(super) fn small() -> Report {
        let mut r = Report {
            location: "file:///lake".into(),
            table: "music".into(),
            ..Report::default()
        };
        for (path, date, rows) in [("a", "2026-01-01", 3), ("b", "2026-01-01", 2)] {
            let (path, date) = (path.to_string(), date.to_string());
            r.add_file(FileReport {
                path,
                date,
                rows,
                bytes: 1024 * 1024,
            });
        }
        r
    }

    #[test]
    fn files_add_up_per_date_and_in_total() {
        let r = small();
        let day = r.per_date["2026-01-01"];
        assert_eq!((day.files, day.rows), (2, 5));
        assert_eq!((r.rows, r.bytes, r.files.len()), (5, 2 * 1024 * 1024, 2));
    }
}

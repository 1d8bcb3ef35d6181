//! What `encore status` reports, and its arithmetic: per partition, where each stage stands
//! and how far behind the topic's end it is, in records and in seconds.
//!
//! A stage's position is the next offset it reads. Its lag in records is what the topic still
//! holds past that position (records removed by retention are not waited for); its lag in
//! seconds is the age of the oldest record it has still to read (now − that record's Kafka
//! timestamp), 0 when there is none. The age of the oldest waiting record rather than of the
//! last one read: after a quiet hour, a record that arrived a second ago is a second late,
//! not an hour.

use std::collections::BTreeMap;

use serde::Serialize;

/// What reading a stage's first waiting record found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// The record at or after the position, with its timestamp (ms since the epoch).
    Record(i64),
    /// No record past the position (transaction markers or aborted records only).
    None,
}

/// The first waiting record read for (partition, offset); absent: not read in time.
pub type Times = BTreeMap<(i32, i64), Waiting>;

/// Where one stage stands in one partition.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Position {
    /// The next offset the stage reads; None when it never committed one.
    pub offset: Option<i64>,
    pub lag_records: i64,
    /// None when the waiting record could not be read in time.
    pub lag_seconds: Option<f64>,
}

/// The offsets of one partition of the topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marks {
    pub low: i64,
    pub high: i64,
}

impl Marks {
    /// The first record a stage at `offset` has still to read; None when it is at the end.
    /// A stage that never committed starts at the oldest record left, as one that is behind
    /// the records retention removed.
    pub fn waiting(&self, offset: Option<i64>) -> Option<i64> {
        let from = offset.unwrap_or(self.low).max(self.low);
        (from < self.high).then_some(from)
    }

    /// Where a stage at `offset` stands, with the waiting records' `times`, at `now_ms`.
    pub fn position(
        &self,
        partition: i32,
        offset: Option<i64>,
        times: &Times,
        now_ms: i64,
    ) -> Position {
        let from = offset.unwrap_or(self.low).max(self.low);
        let lag_seconds = match self.waiting(offset) {
            None => Some(0.0),
            Some(at) => match times.get(&(partition, at)) {
                Some(Waiting::Record(ts)) => Some((now_ms - ts).max(0) as f64 / 1000.0),
                Some(Waiting::None) => Some(0.0),
                None => None,
            },
        };
        Position {
            offset,
            lag_records: (self.high - from).max(0),
            lag_seconds,
        }
    }
}

/// One partition's row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartitionStatus {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
    /// None when the stage was not read (no lake, no ClickHouse queue, not asked).
    pub lake: Option<Position>,
    pub group: Option<Position>,
    pub clickhouse: Option<Position>,
}

/// A stage over all partitions: its lag summed, the oldest waiting record's age.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StageTotal {
    pub lag_records: i64,
    /// The largest of the partitions' (None when one of them is unknown).
    pub lag_seconds: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Totals {
    /// Records the topic holds (high − low, summed).
    pub records: i64,
    pub high: i64,
    pub lake: Option<StageTotal>,
    pub group: Option<StageTotal>,
    pub clickhouse: Option<StageTotal>,
}

/// The stages' sources, as read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Sources {
    /// The lake's location.
    pub lake: String,
    /// The consumer group (`--group`).
    pub group: String,
    /// ClickHouse's Kafka table of the topic and its consumer group, when one was found.
    pub clickhouse: Option<ClickHouseQueue>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClickHouseQueue {
    pub database: String,
    pub table: String,
    pub group: String,
}

/// The whole report (`--json` prints it as it is).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub topic: String,
    /// When the report was made (ms since the epoch): the seconds count up to it.
    pub read_at_ms: i64,
    pub sources: Sources,
    pub partitions: Vec<PartitionStatus>,
    pub totals: Totals,
    /// What could not be read, or is not there (a missing lake, a group without offsets).
    pub notes: Vec<String>,
}

/// Sums a stage over the partitions; None when no partition has it.
fn total(
    rows: &[PartitionStatus],
    stage: impl Fn(&PartitionStatus) -> Option<Position>,
) -> Option<StageTotal> {
    let ps: Vec<Position> = rows.iter().filter_map(stage).collect();
    if ps.is_empty() {
        return None;
    }
    Some(StageTotal {
        lag_records: ps.iter().map(|p| p.lag_records).sum(),
        // Unknown when one partition's is: its waiting records may be the oldest.
        lag_seconds: ps
            .iter()
            .map(|p| p.lag_seconds)
            .try_fold(0.0, |max: f64, s| s.map(|s| max.max(s))),
    })
}

impl Totals {
    pub fn of(rows: &[PartitionStatus]) -> Totals {
        Totals {
            records: rows.iter().map(|r| (r.high - r.low).max(0)).sum(),
            high: rows.iter().map(|r| r.high).sum(),
            lake: total(rows, |r| r.lake),
            group: total(rows, |r| r.group),
            clickhouse: total(rows, |r| r.clickhouse),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    #[test]
    fn lag_counts_the_records_past_the_position() {
        let m = Marks { low: 10, high: 100 };
        let times = Times::from([((0, 60), Waiting::Record(NOW - 2_500))]);
        let p = m.position(0, Some(60), &times, NOW);
        assert_eq!(
            (p.offset, p.lag_records, p.lag_seconds),
            (Some(60), 40, Some(2.5))
        );
        let caught_up = m.position(0, Some(100), &Times::new(), NOW);
        assert_eq!(
            (caught_up.lag_records, caught_up.lag_seconds),
            (0, Some(0.0))
        );
    }

    #[test]
    fn a_stage_without_offsets_or_behind_retention_waits_for_what_is_left() {
        let m = Marks { low: 10, high: 100 };
        assert_eq!(m.waiting(None), Some(10));
        assert_eq!(m.waiting(Some(3)), Some(10));
        assert_eq!(m.waiting(Some(100)), None);
        let p = m.position(0, None, &Times::new(), NOW);
        assert_eq!((p.offset, p.lag_records, p.lag_seconds), (None, 90, None));
        assert_eq!(m.position(0, Some(3), &Times::new(), NOW).lag_records, 90);
        // Ahead of the end (a topic recreated under the lake): never a negative lag.
        assert_eq!(m.position(0, Some(150), &Times::new(), NOW).lag_records, 0);
        let empty = Marks { low: 0, high: 0 };
        assert_eq!(empty.position(0, None, &Times::new(), NOW).lag_records, 0);
    }

    #[test]
    fn seconds_are_the_age_of_the_oldest_waiting_record() {
        let m = Marks { low: 0, high: 10 };
        let times = Times::from([
            ((1, 4), Waiting::Record(NOW + 5_000)),
            ((2, 4), Waiting::None),
        ]);
        // A clock behind the producer's: 0, not negative.
        assert_eq!(m.position(1, Some(4), &times, NOW).lag_seconds, Some(0.0));
        // Only markers wait: nothing to read is late.
        assert_eq!(m.position(2, Some(4), &times, NOW).lag_seconds, Some(0.0));
        assert_eq!(m.position(3, Some(4), &times, NOW).lag_seconds, None);
    }

    #[test]
    fn totals_sum_records_and_take_the_oldest_age() {
        let pos = |lag, secs| Position {
            offset: Some(0),
            lag_records: lag,
            lag_seconds: secs,
        };
        let row = |p, low, high, lake| PartitionStatus {
            partition: p,
            low,
            high,
            lake,
            group: None,
            clickhouse: None,
        };
        let rows = [
            row(0, 0, 10, Some(pos(4, Some(1.5)))),
            row(1, 5, 20, Some(pos(6, None))),
            row(2, 0, 7, Some(pos(0, Some(0.0)))),
        ];
        let t = Totals::of(&rows);
        assert_eq!((t.records, t.high), (32, 37));
        assert_eq!(
            t.lake,
            Some(StageTotal {
                lag_records: 10,
                lag_seconds: None
            })
        );
        assert_eq!((t.group, t.clickhouse), (None, None));
        let known = [rows[0].clone(), rows[2].clone()];
        let t = Totals::of(&known).lake.unwrap();
        assert_eq!((t.lag_records, t.lag_seconds), (4, Some(1.5)));
    }
}

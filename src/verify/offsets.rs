//! The offsets per Kafka partition: every commit holds the rows its marker lists, no offset is
//! held twice, no hole lies between commits, and with `--brokers` how the commits compare with
//! the topic's watermarks (records after the last commit are in flight, not missing). The pure
//! range logic is in `coverage`.

use std::collections::{BTreeMap, BTreeSet};

use super::coverage::{self, PartitionCheck, Span, against_topic, span};
use super::markers::Commit;
use super::report::{Accounting, PartitionReport, Report};
use super::topic::Topic;
use super::{VerifyOptions, accounting};

/// One Kafka partition as the lake holds it.
#[derive(Debug, Default)]
pub(super) struct Partition {
    pub id: i32,
    /// The offsets of its rows, sorted.
    pub offsets: Vec<i64>,
    /// Its commits, in the order they were read.
    pub commits: Vec<Commit>,
}

impl Partition {
    /// Rows at offsets `first..=last`.
    pub fn rows_in(&self, first: i64, last: i64) -> u64 {
        let o = &self.offsets;
        (o.partition_point(|x| *x <= last) - o.partition_point(|x| *x < first)) as u64
    }

    /// Each commit's span and rows, by span.
    fn sorted_commits(&self) -> Vec<(Span, u64)> {
        let mut out: Vec<(Span, u64)> = self.commits.iter().map(|c| (c.span, c.rows)).collect();
        out.sort_unstable();
        out
    }
}

/// Every partition the rows, the commits or the topic know, in order.
pub(super) fn partitions(
    mut offsets: BTreeMap<i32, Vec<i64>>,
    mut commits: BTreeMap<i32, Vec<Commit>>,
    topic: &Topic,
) -> Vec<Partition> {
    let mut ids: BTreeSet<i32> = offsets.keys().copied().collect();
    ids.extend(commits.keys().copied());
    ids.extend(topic.watermarks.iter().flat_map(|w| w.keys().copied()));
    let one = |id| {
        let mut offsets = offsets.remove(&id).unwrap_or_default();
        offsets.sort_unstable();
        let commits = commits.remove(&id).unwrap_or_default();
        Partition {
            id,
            offsets,
            commits,
        }
    };
    ids.into_iter().map(one).collect()
}

/// What the partitions add up to.
#[derive(Debug, Default)]
pub(super) struct Totals {
    /// The sum of every record (with `--brokers`); its records in flight also tell the
    /// ClickHouse check which events cannot be in the lake yet.
    pub accounting: Accounting,
    /// Rows held twice at the same offset.
    pub offset_copies: u64,
}

/// Checks each partition and puts it into the report.
pub(super) fn check(
    partitions: Vec<Partition>,
    topic: &mut Topic,
    opts: &VerifyOptions,
    report: &mut Report,
) -> Totals {
    let mut totals = Totals::default();
    for part in partitions {
        let id = part.id;
        let checked = check_partition(part, topic, opts, &mut totals, report);
        report.partitions.insert(id, checked);
    }
    totals
}

/// One partition, its problems in this order: commits against rows, dead letters, offsets held
/// twice, then the topic's watermarks (or, without them, holes between commits).
fn check_partition(
    mut part: Partition,
    topic: &mut Topic,
    opts: &VerifyOptions,
    totals: &mut Totals,
    report: &mut Report,
) -> PartitionReport {
    let p = part.id;
    if !opts.filtered() {
        check_commits(&part, report);
    }
    let watermarks = topic.watermarks.as_ref().map(|w| w.get(&p).copied());
    if let Some(Some((low, _))) = watermarks {
        accounting::add_partition(&mut totals.accounting, &part, topic.letters(p), low);
    }
    if let Some(dead) = &mut topic.dead {
        dead.check(&part, opts.list, report);
    }
    let (rows, rejected) = (
        part.offsets.len() as u64,
        part.commits.iter().map(|c| c.rejected).sum(),
    );
    // Handed over rather than copied: 8 bytes a row.
    let offsets = std::mem::take(&mut part.offsets);
    totals.offset_copies += check_overlaps(p, offsets, opts.list, report);
    let ranges = coverage::merge(part.sorted_commits().into_iter().map(|(s, _)| s));
    let mut checked = PartitionReport {
        rows,
        rejected,
        ranges: ranges.clone(),
        topic: None,
    };
    match watermarks {
        Some(Some((low, high))) => {
            let check = against_topic(p, &ranges, low, high);
            totals.accounting.in_flight += report_against_topic(&check, report);
            checked.topic = Some(check);
        }
        Some(None) => {
            let detail = "the lake holds a partition the topic does not have";
            report.partition_problem("beyond_topic", p, detail);
        }
        None if !opts.filtered() => {
            for g in coverage::gaps(&ranges) {
                let detail = format!("offsets {} are missing between committed ranges", span(g));
                report.partition_problem("gap", p, detail);
            }
        }
        None => {}
    }
    checked
}

/// Offsets held more than once; returns how many extra copies.
fn check_overlaps(p: i32, offsets: Vec<i64>, list: usize, report: &mut Report) -> u64 {
    let cov = coverage::coverage(offsets, list);
    if cov.duplicate_copies > 0 {
        let detail = format!(
            "{} offsets held more than once, e.g. {:?}",
            cov.duplicate_copies, cov.duplicated
        );
        report.partition_problem("overlap", p, detail);
    }
    cov.duplicate_copies
}

/// Each commit must hold the rows its marker lists (offsets inside a range need not be
/// contiguous: rejected records, transaction markers, compaction).
fn check_commits(part: &Partition, report: &mut Report) {
    for ((first, last), want) in part.sorted_commits() {
        let have = part.rows_in(first, last);
        let offsets = span((first, last));
        if have < want {
            report.partition_problem("gap", part.id, format!(
                "offsets {offsets} are in the topic but not in the lake (the commit marker lists {want} rows, the lake has {have})"
            ));
        } else if have > want {
            report.partition_problem(
                "offsets",
                part.id,
                format!(
                    "offsets {offsets}: the lake has {have} rows, the commit marker lists {want}"
                ),
            );
        }
    }
}

/// The partition against the topic as problems and notes; returns its records in flight.
fn report_against_topic(check: &PartitionCheck, report: &mut Report) -> i64 {
    let p = check.partition;
    for g in &check.gaps {
        let detail = format!(
            "offsets {} are in the topic but no commit covers them",
            span(*g)
        );
        report.partition_problem("gap", p, detail);
    }
    if let Some(b) = check.beyond {
        let detail = format!(
            "offsets {} are in the lake but the topic ends at {}",
            span(b),
            check.high
        );
        report.partition_problem("beyond_topic", p, detail);
    }
    if let Some(l) = check.lost {
        report.partition_problem(
            "lost",
            p,
            format!(
                "offsets {} were deleted from the topic (retention) before the lake had them",
                span(l)
            ),
        );
    }
    let Some(f) = check.in_flight else {
        return 0;
    };
    report.notes.push(format!(
        "partition {p}: offsets {} not committed to the lake yet (in flight)",
        span(f)
    ));
    f.1 - f.0 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(span: Span, rows: u64) -> Commit {
        let c = Commit::default();
        Commit { span, rows, ..c }
    }

    /// Each problem as `[kind] detail`.
    fn found(report: &Report) -> Vec<String> {
        let text = |p: &crate::verify::Problem| format!("[{}] {}", p.kind, p.detail);
        report.problems.iter().map(text).collect()
    }

    #[test]
    fn partitions_without_a_topic_show_overlaps_and_holes() {
        let offsets = BTreeMap::from([(0, vec![3, 1, 2, 2]), (2, vec![9])]);
        let commits = BTreeMap::from([
            (0, vec![commit((1, 3), 3)]),
            // Out of order: the checks go by offset.
            (1, vec![commit((8, 9), 2), commit((0, 4), 5)]),
        ]);
        let mut topic = Topic::default();
        let parts = partitions(offsets, commits, &topic);
        assert_eq!(parts.iter().map(|p| p.id).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(parts[0].offsets, [1, 2, 2, 3]);
        assert_eq!((parts[0].rows_in(2, 3), parts[0].rows_in(4, 9)), (3, 0));
        let mut report = Report::default();
        let totals = check(parts, &mut topic, &VerifyOptions::default(), &mut report);
        assert_eq!(totals.offset_copies, 1);
        assert_eq!(report.partitions[&0].rows, 4);
        assert_eq!(report.partitions[&1].ranges, [(0, 4), (8, 9)]);
        // A row no commit lists is counted, in no range.
        assert_eq!(report.partitions[&2].rows, 1);
        assert!(report.partitions[&2].ranges.is_empty());
        assert_eq!(
            found(&report),
            [
                "[offsets] offsets 1-3: the lake has 4 rows, the commit marker lists 3",
                "[overlap] 1 offsets held more than once, e.g. [2]",
                "[gap] offsets 0-4 are in the topic but not in the lake (the commit marker lists 5 rows, the lake has 0)",
                "[gap] offsets 8-9 are in the topic but not in the lake (the commit marker lists 2 rows, the lake has 0)",
                "[gap] offsets 5-7 are missing between committed ranges",
            ]
        );
    }

    #[test]
    fn partitions_against_the_topic_are_accounted_for() {
        let offsets = BTreeMap::from([(0, vec![0, 1, 2]), (5, vec![0])]);
        let commits = BTreeMap::from([(0, vec![commit((0, 3), 3)]), (5, vec![commit((0, 0), 1)])]);
        let mut topic = Topic {
            watermarks: Some(BTreeMap::from([(0, (1, 6))])),
            dead: None,
        };
        let parts = partitions(offsets, commits, &topic);
        let mut report = Report::default();
        let totals = check(parts, &mut topic, &VerifyOptions::default(), &mut report);
        // From the low watermark 1: rows 1 and 2, offset 3 without a record, 4-5 in flight.
        let a = totals.accounting;
        assert_eq!(
            (a.lake_rows, a.no_record, a.in_flight, a.older_rows),
            (2, 1, 2, 1)
        );
        assert_eq!(
            report.partitions[&0].topic.as_ref().map(|c| c.high),
            Some(6)
        );
        assert_eq!(
            report.notes,
            ["partition 0: offsets 4-5 not committed to the lake yet (in flight)"]
        );
        assert_eq!(
            found(&report),
            ["[beyond_topic] the lake holds a partition the topic does not have"]
        );
        assert_eq!(report.problems[0].subject, "partition 5");
    }

    #[test]
    fn against_the_topic_problems_and_in_flight() {
        let check = against_topic(1, &[(0, 9), (20, 29)], 0, 40);
        let mut report = Report::default();
        assert_eq!(report_against_topic(&check, &mut report), 10);
        assert_eq!(
            found(&report),
            ["[gap] offsets 10-19 are in the topic but no commit covers them"]
        );
        let beyond = against_topic(1, &[(0, 59)], 0, 50);
        let mut report = Report::default();
        assert_eq!(report_against_topic(&beyond, &mut report), 0);
        assert_eq!(
            found(&report),
            ["[beyond_topic] offsets 50-59 are in the lake but the topic ends at 50"]
        );
    }
}

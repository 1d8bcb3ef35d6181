//! Every record of the topic accounted for (with `--brokers`, whole lake): over the offsets the
//! topic still has, records = lake rows + dead letters + offsets without a record + in flight.

use std::collections::BTreeSet;

use super::offsets::Partition;
use super::report::{Accounting, Report};
use super::topic::Watermarks;

/// Adds what partition `part` holds of the offsets the topic still has (from `low`): per
/// commit, its rows, its dead letters and the offsets that hold neither.
pub(super) fn add_partition(
    acc: &mut Accounting,
    part: &Partition,
    letters: &BTreeSet<i64>,
    low: i64,
) {
    for c in &part.commits {
        let (first, last) = c.span;
        let start = first.max(low);
        if start > last {
            continue;
        }
        let rows = part.rows_in(start, last) as i64;
        let dead = letters.range(start..=last).count() as i64;
        acc.lake_rows += rows as u64;
        acc.dead_letters += dead as u64;
        acc.no_record += (last - start + 1 - rows - dead).max(0);
    }
    acc.older_rows += part.offsets.partition_point(|o| *o < low) as u64;
}

/// Completes the sum with the topic's records and puts it into the report; a sum that is off
/// is a problem only when nothing more specific (a gap, an overlap) explains it.
pub(super) fn finish(
    mut acc: Accounting,
    watermarks: &Watermarks,
    topic: &str,
    report: &mut Report,
) {
    acc.topic_records = watermarks.values().map(|(l, h)| h - l).sum();
    let accounted = acc.accounted();
    if acc.older_rows > 0 {
        report.notes.push(format!(
            "{} lake rows are older than the topic's low watermark (retention deleted them from the topic)",
            acc.older_rows
        ));
    }
    if accounted != acc.topic_records && report.problems.is_empty() {
        report.problem(
            "accounting",
            format!("topic {topic}"),
            format!(
                "{} records, but lake rows {} + dead letters {} + offsets without a record {} + in flight {} = {accounted}",
                acc.topic_records, acc.lake_rows, acc.dead_letters, acc.no_record, acc.in_flight
            ),
        );
    }
    report.accounting = Some(acc);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::markers::Commit;
    use std::collections::BTreeMap;

    #[test]
    fn rows_letters_and_empty_offsets_from_the_low_watermark() {
        // Offsets 0-9 committed: rows at 0-5 and 8, a dead letter at 6, nothing at 7 and 9.
        let part = Partition {
            id: 0,
            offsets: vec![0, 1, 2, 3, 4, 5, 8],
            commits: vec![Commit {
                span: (0, 9),
                rows: 7,
                ..Commit::default()
            }],
        };
        let letters = BTreeSet::from([6]);
        let mut acc = Accounting::default();
        add_partition(&mut acc, &part, &letters, 2);
        // Retention deleted 0 and 1: two older rows, the rest counted from 2.
        let want = Accounting {
            lake_rows: 5,
            dead_letters: 1,
            no_record: 2,
            older_rows: 2,
            ..Accounting::default()
        };
        assert_eq!(acc, want);
        // A commit wholly below the low watermark counts only as older rows.
        let mut old = Accounting::default();
        add_partition(&mut old, &part, &letters, 20);
        assert_eq!((old.lake_rows, old.no_record, old.older_rows), (0, 0, 7));
    }

    #[test]
    fn the_sum_is_checked_against_the_topic() {
        let acc = Accounting {
            lake_rows: 5,
            dead_letters: 1,
            no_record: 2,
            in_flight: 3,
            older_rows: 2,
            ..Accounting::default()
        };
        let mut report = Report::default();
        finish(acc, &BTreeMap::from([(0, (2, 13))]), "t", &mut report);
        assert!(report.is_clean());
        assert_eq!(report.accounting.map(|a| a.topic_records), Some(11));
        assert!(report.notes[0].starts_with("2 lake rows are older"));

        let mut off = Report::default();
        finish(acc, &BTreeMap::from([(0, (2, 14))]), "t", &mut off);
        assert_eq!(
            off.problem_text(),
            "topic t: 12 records, but lake rows 5 + dead letters 1 + offsets without a record 2 + in flight 3 = 11"
        );
        // Another problem explains the difference: no accounting problem on top.
        let mut explained = Report::default();
        explained.partition_problem("gap", 0, "offsets 13 are missing");
        finish(acc, &BTreeMap::from([(0, (2, 14))]), "t", &mut explained);
        assert_eq!(explained.problems.len(), 1);
    }
}

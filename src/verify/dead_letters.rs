//! The dead-letter topic against the commit markers (with `--brokers`, whole lake): each
//! commit's rejected records must be there, and no record may be both a lake row and a dead
//! letter.

use std::collections::BTreeSet;

use super::coverage::span;
use super::offsets::Partition;
use super::report::{DeadLetterReport, Report};
use super::{Sources, VerifyError, VerifyOptions, blocking};
use crate::kafka::dlq::{self, DeadLetterScan};
use crate::lake::Lake;

/// The dead letters of a partition without any.
pub(super) static NO_LETTERS: BTreeSet<i64> = BTreeSet::new();

/// The dead-letter topic as read.
pub(super) struct DeadLetters {
    /// None: the topic does not exist.
    scan: Option<DeadLetterScan>,
    pub report: DeadLetterReport,
}

/// Reads the whole dead-letter topic, with `--brokers` and the whole lake only.
pub(super) async fn read(
    lake: &Lake,
    opts: &VerifyOptions,
    sources: &Sources,
    report: &mut Report,
) -> Result<Option<DeadLetters>, VerifyError> {
    let Some(cfg) = sources.kafka.clone().filter(|_| !opts.filtered()) else {
        return Ok(None);
    };
    let topic = sources
        .dlq_topic
        .clone()
        .unwrap_or_else(|| dlq::default_topic(lake.table()));
    let (t, src) = (topic.clone(), lake.table().to_string());
    let scan = blocking(move || dlq::scan(&cfg, &t, &src))
        .await?
        .map_err(|e| VerifyError::Source(format!("dead-letter topic: {e}")))?;
    let unreadable = scan.as_ref().map_or(0, |d| d.unreadable);
    if unreadable > 0 {
        report.problem(
            "dead_letter",
            format!("topic {topic}"),
            format!("{unreadable} records without encore.partition/encore.offset headers"),
        );
    }
    Ok(Some(DeadLetters::new(topic, scan)))
}

impl DeadLetters {
    fn new(topic: String, scan: Option<DeadLetterScan>) -> DeadLetters {
        let report = DeadLetterReport {
            topic,
            records: scan.as_ref().map_or(0, |d| d.records),
            distinct: scan.as_ref().map_or(0, |d| d.distinct()),
            reasons: scan.as_ref().map(|d| d.reasons.clone()).unwrap_or_default(),
            committed: 0,
        };
        DeadLetters { scan, report }
    }

    /// The source offsets of partition `p`'s dead letters.
    pub fn letters(&self, p: i32) -> &BTreeSet<i64> {
        self.scan
            .as_ref()
            .and_then(|d| d.offsets.get(&p))
            .unwrap_or(&NO_LETTERS)
    }

    /// One partition's commits against the dead-letter topic; counts the dead letters inside
    /// its commits.
    pub fn check(&mut self, part: &Partition, list: usize, report: &mut Report) {
        let inside = self.check_commits(part, list, report);
        self.report.committed += inside;
    }

    fn check_commits(&self, part: &Partition, list: usize, report: &mut Report) -> u64 {
        let p = part.id;
        if self.scan.is_none() {
            let rejected: u64 = part.commits.iter().map(|c| c.rejected).sum();
            if rejected > 0 {
                report.partition_problem("dead_letter", p, format!(
                    "the commit markers count {rejected} rejected records, but there is no dead-letter topic `{}`",
                    self.report.topic
                ));
            }
            return 0;
        }
        let letters = self.letters(p);
        let mut inside = 0u64;
        for c in &part.commits {
            let ((first, last), count) = (c.span, c.rejected);
            let have = letters.range(first..=last).count() as u64;
            inside += have;
            if have >= count {
                continue;
            }
            let absent: Vec<i64> = c
                .rejected_offsets
                .iter()
                .copied()
                .filter(|o| !letters.contains(o))
                .take(list)
                .collect();
            report.partition_problem("dead_letter", p, format!(
                "offsets {}: the commit marker counts {count} rejected records, the dead-letter topic has {have} (absent e.g. {absent:?})",
                span(c.span)
            ));
        }
        let both: Vec<i64> = part
            .offsets
            .iter()
            .copied()
            .filter(|o| letters.contains(o))
            .take(list.max(1))
            .collect();
        if !both.is_empty() {
            let detail = format!("offsets {both:?} are both lake rows and dead letters");
            report.partition_problem("dead_letter", p, detail);
        }
        inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::markers::Commit;
    use std::collections::BTreeMap;

    fn partition() -> Partition {
        let commit = |span, rejected_offsets: Vec<i64>| Commit {
            span,
            rows: 8,
            rejected: rejected_offsets.len() as u64,
            rejected_offsets,
        };
        Partition {
            id: 1,
            offsets: vec![0, 1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 16, 17, 18],
            commits: vec![commit((0, 9), vec![2, 9]), commit((10, 19), vec![14, 19])],
        }
    }

    fn scan(letters: &[i64]) -> DeadLetterScan {
        DeadLetterScan {
            offsets: BTreeMap::from([(1, letters.iter().copied().collect())]),
            records: letters.len() as u64 + 1,
            reasons: BTreeMap::from([("bad_json".to_string(), letters.len() as u64)]),
            unreadable: 0,
        }
    }

    #[test]
    fn every_rejected_record_is_a_dead_letter() {
        let mut dead = DeadLetters::new("t.dlq".into(), Some(scan(&[2, 9, 14, 19])));
        assert_eq!((dead.report.records, dead.report.distinct), (5, 4));
        let mut report = Report::default();
        dead.check(&partition(), 10, &mut report);
        assert!(report.is_clean(), "{}", report.problem_text());
        assert_eq!(dead.report.committed, 4);
    }

    #[test]
    fn absent_letters_and_rows_that_are_letters_are_problems() {
        // 19 is absent; 4 is a lake row and a dead letter.
        let mut dead = DeadLetters::new("t.dlq".into(), Some(scan(&[2, 4, 9, 14])));
        let mut report = Report::default();
        dead.check(&partition(), 10, &mut report);
        assert_eq!(
            report.problem_text(),
            "partition 1: offsets 10-19: the commit marker counts 2 rejected records, the dead-letter topic has 1 (absent e.g. [19])\n\
             partition 1: offsets [4] are both lake rows and dead letters"
        );
        assert_eq!(dead.report.committed, 4);
    }

    #[test]
    fn rejected_records_without_a_dead_letter_topic() {
        let mut dead = DeadLetters::new("t.dlq".into(), None);
        assert!(dead.letters(1).is_empty());
        let mut report = Report::default();
        dead.check(&partition(), 10, &mut report);
        assert_eq!(
            report.problem_text(),
            "partition 1: the commit markers count 4 rejected records, but there is no dead-letter topic `t.dlq`"
        );
        assert_eq!(dead.report.committed, 0);
    }
}

//! The report as text: one small writer per section, each leaving itself out when it has
//! nothing to say, then the verdict.

use std::fmt;

use super::Report;
use crate::event::EventType;
use crate::verify::coverage::{Span, span};
use crate::verify::samples;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_dates(f)?;
        self.write_types(f)?;
        self.write_partitions(f)?;
        self.write_accounting(f)?;
        self.write_dead_letters(f)?;
        self.write_clickhouse(f)?;
        self.write_samples(f)?;
        self.write_notes(f)?;
        self.write_verdict(f)
    }
}

impl Report {
    fn write_dates(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "lake {} table {}", self.location, self.table)?;
        writeln!(f, "{:<14}{:>8}{:>14}", "date", "files", "rows")?;
        for (date, c) in &self.per_date {
            writeln!(f, "{date:<14}{:>8}{:>14}", c.files, c.rows)?;
        }
        writeln!(
            f,
            "{:<14}{:>8}{:>14}   ({:.1} MiB, {} distinct events)",
            "total",
            self.files.len(),
            self.rows,
            self.bytes as f64 / (1024.0 * 1024.0),
            self.distinct_events
        )
    }

    fn write_types(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.per_type.iter().all(|n| *n == 0) {
            return Ok(());
        }
        writeln!(f, "\n{:<4}{:<26}{:>14}", "id", "event_type", "rows")?;
        for t in EventType::ALL {
            let rows = self.per_type[t.index()];
            writeln!(f, "{:<4}{:<26}{rows:>14}", t.id(), t.name())?;
        }
        Ok(())
    }

    fn write_partitions(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.partitions.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "\n{:<10}{:>12}{:>12}{:>12}  lake offsets",
            "partition", "rows", "low", "high"
        )?;
        for (p, r) in &self.partitions {
            let (low, high) = r.topic.as_ref().map_or(("-".into(), "-".into()), |c| {
                (c.low.to_string(), c.high.to_string())
            });
            let ranges = runs_text(&r.ranges);
            writeln!(f, "{p:<10}{:>12}{low:>12}{high:>12}  {ranges}", r.rows)?;
        }
        Ok(())
    }

    fn write_accounting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(a) = &self.accounting else {
            return Ok(());
        };
        let no_record = if a.no_record > 0 {
            format!(" + offsets without a record {}", a.no_record)
        } else {
            String::new()
        };
        writeln!(
            f,
            "\nKafka: {} records = lake rows {} + dead letters {}{no_record} + in flight {}",
            a.topic_records, a.lake_rows, a.dead_letters, a.in_flight
        )
    }

    fn write_dead_letters(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(d) = self.dead_letters.as_ref().filter(|d| d.records > 0) else {
            return Ok(());
        };
        let reasons: Vec<String> = d.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
        writeln!(
            f,
            "dead-letter topic {}: {} distinct records ({} copies): {}",
            d.topic,
            d.distinct,
            d.records,
            reasons.join(", ")
        )
    }

    fn write_clickhouse(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(c) = &self.clickhouse else {
            return Ok(());
        };
        writeln!(
            f,
            "\nClickHouse {} ({}): {} rows, {} distinct events; missing {}, not in the lake {}, copies not merged yet {}",
            c.table, c.version, c.rows, c.distinct, c.missing, c.extra, c.duplicates_before_merges
        )?;
        for (p, (n, d, lo, hi)) in &c.per_partition {
            let lake = self.partitions.get(p).map_or(0, |r| r.rows);
            writeln!(
                f,
                "  partition {p}: {n} rows, {d} distinct, offsets {lo}-{hi} (lake {lake} rows)"
            )?;
        }
        Ok(())
    }

    fn write_samples(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(s) = &self.samples else {
            return Ok(());
        };
        match samples::table(s) {
            Ok(t) => writeln!(f, "\nfirst {} track_playback events:\n{t}", s.num_rows()),
            Err(e) => writeln!(f, "\n(sample rows cannot be shown: {e})"),
        }
    }

    fn write_notes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.notes.is_empty() {
            return Ok(());
        }
        writeln!(f, "\nnotes:")?;
        for n in &self.notes {
            writeln!(f, "  - {n}")?;
        }
        Ok(())
    }

    fn write_verdict(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problems.is_empty() {
            return write!(
                f,
                "\nverdict: CLEAN ({} rows in {} files, every schema matches)",
                self.rows,
                self.files.len()
            );
        }
        writeln!(f, "\nproblems:")?;
        for p in &self.problems {
            writeln!(f, "  - [{}] {p}", p.kind)?;
        }
        write!(f, "verdict: PROBLEMS ({} found)", self.problems.len())
    }
}

/// The first four offset runs, then how many there are.
fn runs_text(runs: &[Span]) -> String {
    let mut shown: Vec<String> = runs.iter().take(4).map(|s| span(*s)).collect();
    if runs.len() > 4 {
        shown.push(format!("… ({} runs)", runs.len()));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use crate::verify::report::tests::small;
    use crate::verify::report::{Accounting, PartitionReport};

    #[test]
    fn a_clean_report_shows_its_dates_and_verdict() {
        let text = small().to_string();
        assert!(
            text.starts_with("lake file:///lake table music\n"),
            "{text}"
        );
        assert!(
            text.contains("2026-01-01           2             5\n"),
            "{text}"
        );
        assert!(text.contains("(2.0 MiB, 0 distinct events)"), "{text}");
        // No types, partitions or sources: their sections are left out.
        assert!(!text.contains("event_type") && !text.contains("partition"));
        assert!(text.ends_with("verdict: CLEAN (5 rows in 2 files, every schema matches)"));
    }

    #[test]
    fn problems_notes_partitions_and_accounting_are_shown() {
        let mut r = small();
        r.partition_problem("gap", 3, "offsets 5-9 are missing");
        r.notes.push("worth knowing".into());
        r.partitions.insert(
            3,
            PartitionReport {
                rows: 5,
                ranges: vec![(0, 4), (10, 10), (12, 13), (15, 15), (20, 21)],
                ..PartitionReport::default()
            },
        );
        r.accounting = Some(Accounting {
            topic_records: 7,
            lake_rows: 5,
            no_record: 2,
            ..Accounting::default()
        });
        assert!(!r.is_clean());
        assert_eq!(r.problem_text(), "partition 3: offsets 5-9 are missing");
        let text = r.to_string();
        assert!(text.contains("0-4, 10, 12-13, 15, … (5 runs)"), "{text}");
        assert!(text.contains(
            "Kafka: 7 records = lake rows 5 + dead letters 0 + offsets without a record 2 + in flight 0"
        ));
        assert!(text.contains("\nnotes:\n  - worth knowing\n"), "{text}");
        assert!(text.ends_with(
            "problems:\n  - [gap] partition 3: offsets 5-9 are missing\nverdict: PROBLEMS (1 found)"
        ));
    }
}

//! The human view of `encore status`: a line naming the sources, then one aligned row per
//! partition and a total; "—" where a stage has nothing to show.

use std::fmt::{self, Write as _};

use super::report::{Position, Report, StageTotal};

const NONE: &str = "—";

/// A lag in seconds, short: `0s`, `2.5s`, `42s`, `3m07s`, `2h05m`, `3d04h`.
pub fn seconds(s: f64) -> String {
    if s < 10.0 {
        let r = (s * 10.0).round() / 10.0;
        return if r == r.trunc() {
            format!("{r:.0}s")
        } else {
            format!("{r:.1}s")
        };
    }
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// A lag cell: records, and the seconds when there are records waiting.
fn lag(records: i64, secs: Option<f64>) -> String {
    match (records, secs) {
        (0, _) => "0".into(),
        (n, Some(s)) => format!("{n} ({})", seconds(s)),
        (n, None) => format!("{n} (?)"),
    }
}

fn offset(p: &Option<Position>) -> String {
    p.and_then(|p| p.offset)
        .map_or(NONE.into(), |o| o.to_string())
}

fn position_lag(p: &Option<Position>) -> String {
    p.map_or(NONE.into(), |p| lag(p.lag_records, p.lag_seconds))
}

fn total_lag(t: &Option<StageTotal>) -> String {
    t.map_or(NONE.into(), |t| lag(t.lag_records, t.lag_seconds))
}

/// Writes `rows` in columns: the first left-aligned, the others right-aligned.
fn columns(f: &mut impl fmt::Write, rows: &[Vec<String>]) -> fmt::Result {
    let n = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            match i {
                0 => write!(line, "{cell}{}", " ".repeat(pad))?,
                _ => write!(line, "  {}{cell}", " ".repeat(pad))?,
            }
        }
        writeln!(f, "{}", line.trim_end())?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.sources;
        let with_ch = self.partitions.iter().any(|p| p.clickhouse.is_some());
        writeln!(
            f,
            "topic `{}`: {} partitions, {} records",
            self.topic,
            self.partitions.len(),
            self.totals.records
        )?;
        write!(f, "lake {} · group {}", s.lake, s.group)?;
        if let Some(q) = &s.clickhouse {
            write!(
                f,
                " · ClickHouse {}.{} (group {})",
                q.database, q.table, q.group
            )?;
        }
        writeln!(f, "\n")?;
        let mut header = vec![
            "PARTITION",
            "LOW",
            "HIGH",
            "LAKE",
            "LAKE LAG",
            "GROUP",
            "GROUP LAG",
        ];
        if with_ch {
            header.extend(["CLICKHOUSE", "CLICKHOUSE LAG"]);
        }
        let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
        for p in &self.partitions {
            let mut r = vec![
                p.partition.to_string(),
                p.low.to_string(),
                p.high.to_string(),
                offset(&p.lake),
                position_lag(&p.lake),
                offset(&p.group),
                position_lag(&p.group),
            ];
            if with_ch {
                r.extend([offset(&p.clickhouse), position_lag(&p.clickhouse)]);
            }
            rows.push(r);
        }
        let t = &self.totals;
        let mut r = vec![
            "TOTAL".into(),
            String::new(),
            t.high.to_string(),
            String::new(),
            total_lag(&t.lake),
            String::new(),
            total_lag(&t.group),
        ];
        if with_ch {
            r.extend([String::new(), total_lag(&t.clickhouse)]);
        }
        rows.push(r);
        columns(f, &rows)?;
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::{PartitionStatus, Sources, Totals};
    use super::*;

    #[test]
    fn seconds_are_short_and_exact_enough() {
        assert_eq!(seconds(0.0), "0s");
        assert_eq!(seconds(2.46), "2.5s");
        assert_eq!(seconds(9.99), "10s");
        assert_eq!(seconds(42.4), "42s");
        assert_eq!(seconds(187.0), "3m07s");
        assert_eq!(seconds(7500.0), "2h05m");
        assert_eq!(seconds(3.0 * 86400.0 + 4.0 * 3600.0), "3d04h");
    }

    #[test]
    fn rows_align_and_missing_stages_show_a_dash() {
        let pos = |o, lag, s| {
            Some(Position {
                offset: o,
                lag_records: lag,
                lag_seconds: s,
            })
        };
        let partitions = vec![
            PartitionStatus {
                partition: 0,
                low: 0,
                high: 1200,
                lake: pos(Some(1000), 200, Some(3.0)),
                group: pos(None, 1200, None),
                clickhouse: None,
            },
            PartitionStatus {
                partition: 1,
                low: 5,
                high: 7,
                lake: pos(Some(7), 0, Some(0.0)),
                group: pos(Some(7), 0, Some(0.0)),
                clickhouse: None,
            },
        ];
        let report = Report {
            topic: "t".into(),
            read_at_ms: 0,
            sources: Sources {
                lake: "s3://b/p".into(),
                group: "g".into(),
                clickhouse: None,
            },
            totals: Totals::of(&partitions),
            partitions,
            notes: vec!["the group `g` has no offsets in partition 0".into()],
        };
        let text = report.to_string();
        let expected = "\
topic `t`: 2 partitions, 1202 records
lake s3://b/p · group g

PARTITION  LOW  HIGH  LAKE  LAKE LAG  GROUP  GROUP LAG
0            0  1200  1000  200 (3s)      —   1200 (?)
1            5     7     7         0      7          0
TOTAL           1207        200 (3s)          1200 (?)
note: the group `g` has no offsets in partition 0
";
        assert_eq!(text, expected, "\n{text}");
        assert!(!text.contains("CLICKHOUSE"));
    }
}

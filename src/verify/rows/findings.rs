//! One file's row findings: each row of a batch checked against what the file's date and name
//! say it should be, counted with the first few examples, and told as problems.

use arrow::array::Array;
use chrono::NaiveDate;

use super::Rows;
use super::columns::Columns;
use crate::event::EventType;
use crate::lake::Range;

/// A count and its first `list` examples.
#[derive(Debug, Default, PartialEq)]
struct Examples<T> {
    count: u64,
    first: Vec<T>,
}

impl<T> Examples<T> {
    fn note(&mut self, list: usize, example: impl FnOnce() -> T) {
        self.count += 1;
        if self.first.len() < list {
            self.first.push(example());
        }
    }
}

/// One file's row findings and what its rows should be.
#[derive(Debug, Default)]
pub(super) struct Findings {
    /// The file's date as `[start, end)` in ms.
    day: Option<(i64, i64)>,
    /// The partition and offsets of the file's name.
    named: Option<Range>,
    list: usize,
    null_ids: u64,
    bad_ids: Examples<String>,
    /// Offsets of rows whose type id and name disagree.
    types: Examples<i64>,
    /// Offsets and times of rows outside the file's date.
    dates: Examples<(i64, i64)>,
    wrong_partition: u64,
    outside_name: u64,
}

impl Findings {
    /// For a file of date `day` whose name claims the offsets `named`.
    pub fn new(day: Option<NaiveDate>, named: Option<Range>, list: usize) -> Findings {
        let day = day.map(|d| {
            let start = d
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default()
                .and_utc()
                .timestamp_millis();
            (start, start + 86_400_000)
        });
        Findings {
            day,
            named,
            list,
            ..Findings::default()
        }
    }

    /// Checks each row and collects its id, offset and type into `rows`.
    pub fn check_batch(&mut self, c: &Columns, rows: &mut Rows) {
        let list = self.list;
        for i in 0..c.len() {
            let (p, o) = (c.partitions.value(i), c.offsets.value(i));
            if c.ids.is_null(i) {
                self.null_ids += 1;
            } else {
                match uuid::Uuid::try_parse(c.ids.value(i)) {
                    Ok(u) => rows.ids.push(u.as_u128()),
                    Err(_) => self
                        .bad_ids
                        .note(list, || format!("{:?} at offset {p}/{o}", c.ids.value(i))),
                }
            }
            match EventType::from_id(c.type_ids.value(i) as u8) {
                Some(t) if c.type_by_name(i) == Some(t.id() as i8) => rows.per_type[t.index()] += 1,
                _ => self.types.note(list, || o),
            }
            let t = c.times.value(i);
            if let Some((start, end)) = self.day
                && (t < start || t >= end)
            {
                self.dates.note(list, || (o, t));
            }
            if let Some(r) = self.named {
                self.wrong_partition += u64::from(p != r.partition);
                self.outside_name += u64::from(o < r.first || o > r.last);
            }
            rows.offsets.entry(p).or_default().push(o);
        }
    }

    /// The findings as problems of the file: kind and detail.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.null_ids > 0 {
            out.push((
                "null_id",
                format!("{} rows without an event id", self.null_ids),
            ));
        }
        if self.bad_ids.count > 0 {
            let (n, ex) = (self.bad_ids.count, self.bad_ids.first.join(", "));
            out.push(("bad_id", format!("{n} event ids are not UUIDs, e.g. {ex}")));
        }
        if self.types.count > 0 {
            let (n, ex) = (self.types.count, &self.types.first);
            let detail =
                format!("{n} rows whose event_type_id and event_type disagree (offsets {ex:?})");
            out.push(("event_type", detail));
        }
        if self.dates.count > 0 {
            let ex: Vec<String> = self
                .dates
                .first
                .iter()
                .map(|(o, t)| format!("offset {o} at {}", ms_to_text(*t)))
                .collect();
            let n = self.dates.count;
            let detail = format!(
                "{n} rows outside the file's date partition: {}",
                ex.join(", ")
            );
            out.push(("wrong_date", detail));
        }
        if self.wrong_partition > 0 || self.outside_name > 0 {
            out.push(("offsets", format!(
                "{} rows of another Kafka partition, {} rows outside the offset range in the file's name",
                self.wrong_partition, self.outside_name
            )));
        }
        out
    }
}

fn ms_to_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::rows::columns::tests::batch;
    use crate::verify::uuid_text;

    #[test]
    fn each_row_is_checked_and_collected() {
        let (one, two) = (uuid_text(1), uuid_text(2));
        let noon = 1_767_355_200_000; // 2026-01-02T12:00:00Z
        let b = batch(&[
            (Some(&one), 1, Some("track_playback"), noon, 2),
            (None, 1, Some("track_playback"), noon, 2),
            (Some("x"), 2, Some("pause_track"), noon, 2),
            (Some(&two), 2, Some("track_like"), noon - 86_400_000, 2),
            (Some("y"), 9, Some("nope"), noon, 2),
            (Some("z"), 1, Some("track_playback"), noon, 3),
        ]);
        // Rows of 2026-01-02, named for partition 2 offsets 10-14, two examples listed.
        let named = Range {
            partition: 2,
            first: 10,
            last: 14,
        };
        let mut f = Findings::new(NaiveDate::from_ymd_opt(2026, 1, 2), Some(named), 2);
        let mut rows = Rows::default();
        f.check_batch(&Columns::of(&b).unwrap(), &mut rows);
        assert_eq!(rows.ids, [1, 2]);
        assert_eq!(rows.offsets[&2], [10, 11, 12, 13, 14]);
        assert_eq!(rows.offsets[&3], [15]);
        assert_eq!(rows.per_type[..2], [3, 1]);
        assert_eq!((f.null_ids, f.wrong_partition, f.outside_name), (1, 1, 1));
        assert_eq!(f.bad_ids.count, 3);
        let listed = ["\"x\" at offset 2/12", "\"y\" at offset 2/14"];
        assert_eq!(f.bad_ids.first, listed);
        assert_eq!((f.types.count, &f.types.first[..]), (2, &[13, 14][..]));
        assert_eq!(
            (f.dates.count, &f.dates.first[..]),
            (1, &[(13, noon - 86_400_000)][..])
        );
        let problems = f.problems();
        let kinds: Vec<&str> = problems.iter().map(|p| p.0).collect();
        assert_eq!(
            kinds,
            ["null_id", "bad_id", "event_type", "wrong_date", "offsets"]
        );
        assert_eq!(
            problems[3].1,
            "1 rows outside the file's date partition: offset 13 at 2026-01-01T12:00:00.000Z"
        );
    }

    #[test]
    fn clean_rows_have_no_problems() {
        let b = batch(&[(Some(&uuid_text(7)), 3, Some("resume_track"), 0, 0)]);
        let mut f = Findings::new(None, None, 10);
        let mut rows = Rows::default();
        f.check_batch(&Columns::of(&b).unwrap(), &mut rows);
        assert!(f.problems().is_empty());
        assert_eq!(rows.per_type[2], 1);
    }
}

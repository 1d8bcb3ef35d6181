//! The files of the table: each listed file's place and name, whether a commit lists it, its
//! footer (rows, schema), then its rows (`rows`) and samples; afterwards the committed files
//! the listing lacks.

mod data_file;

use std::collections::BTreeSet;

use arrow::datatypes::Schema;
use futures::TryStreamExt;
use object_store::ObjectMeta;

use super::coverage::span;
use super::markers::Committed;
use super::report::{FileReport, Report};
use super::rows::{self, Rows};
use super::samples::Samples;
use super::{VerifyError, VerifyOptions};
use crate::lake::schema::lake_schema;
use crate::lake::{Lake, LakeError};
pub(super) use data_file::{DataFile, open};

/// What the file phase hands on: the rows' ids and offsets, and the samples.
#[derive(Default)]
pub(super) struct Scanned {
    pub rows: Rows,
    pub samples: Samples,
}

/// Lists the table, checks each file of the chosen dates, and reports committed files that are
/// missing and a table without files.
pub(super) async fn check(
    lake: &Lake,
    opts: &VerifyOptions,
    committed: &mut Committed,
    report: &mut Report,
) -> Result<Scanned, VerifyError> {
    let table = lake.table_path();
    let mut metas: Vec<ObjectMeta> = lake
        .store()
        .list(Some(&table))
        .try_collect()
        .await
        .map_err(|e| LakeError::store("listing", &table, e))?;
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let mut listing = Listing {
        lake,
        opts,
        committed,
        report,
        present: BTreeSet::new(),
        scanned: Scanned::default(),
    };
    for meta in &metas {
        if let Some(file) = DataFile::of(meta, &table, lake.table()) {
            listing.file(&file).await;
        }
    }
    missing_files(listing.committed, &listing.present, opts, listing.report);
    let commits = !listing.committed.ranges.is_empty();
    no_files(lake.table(), commits, opts, listing.report);
    Ok(listing.scanned)
}

/// The file phase's state while it walks the listing.
struct Listing<'a> {
    lake: &'a Lake,
    opts: &'a VerifyOptions,
    committed: &'a mut Committed,
    report: &'a mut Report,
    /// Every listed data file (as the markers name them), whatever its date.
    present: BTreeSet<String>,
    scanned: Scanned,
}

impl Listing<'_> {
    async fn file(&mut self, file: &DataFile<'_>) {
        self.present.insert(file.lake_path.clone());
        if !self.opts.includes(&file.date) {
            return;
        }
        file.check_layout(self.report);
        self.check_committed(file).await;
        if !self.footer(file).await {
            return;
        }
        let (lake, list) = (self.lake, self.opts.list);
        rows::check(lake, file, list, &mut self.scanned.rows, self.report).await;
        let samples = &mut self.scanned.samples;
        samples
            .take_from(lake, file, self.opts.samples, self.report)
            .await;
    }

    /// A file no marker lists is an uncommitted leftover, unless its commit landed after the
    /// markers were read.
    async fn check_committed(&mut self, file: &DataFile<'_>) {
        if self.committed.files.contains_key(&file.lake_path)
            || self.committed.committed_late(self.lake, file).await
        {
            return;
        }
        let detail = "not listed by any commit marker (uncommitted leftover)";
        self.report.problem("leftover", &file.rel_path, detail);
    }

    /// Counts a readable file and checks its schema; returns whether the row checks can read
    /// it.
    async fn footer(&mut self, file: &DataFile<'_>) -> bool {
        let builder = match open(self.lake, file.meta).await {
            Ok(b) => b,
            Err(e) => {
                let detail = format!("unreadable Parquet: {e}");
                self.report.problem("unreadable", &file.rel_path, detail);
                return false;
            }
        };
        let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let (found, want) = (builder.schema(), lake_schema());
        let differences = schema_differences(found, &want);
        // The row checks need only their six columns.
        let checkable = differences.is_empty() || rows::checkable(found, &want);
        for d in differences {
            self.report
                .problem("schema", &file.rel_path, format!("schema: {d}"));
        }
        self.report.add_file(FileReport {
            path: file.rel_path.clone(),
            date: file.date.clone(),
            rows,
            bytes: file.meta.size,
        });
        checkable
    }
}

/// Compares field names, types and nullability (not metadata).
fn schema_differences(found: &Schema, want: &Schema) -> Vec<String> {
    let nullable = |n: bool| if n { " (nullable)" } else { "" };
    let mut out = Vec::new();
    for w in want.fields() {
        match found.field_with_name(w.name()) {
            Err(_) => out.push(format!("missing column `{}`", w.name())),
            Ok(f) if f.data_type() != w.data_type() || f.is_nullable() != w.is_nullable() => out
                .push(format!(
                    "column `{}` is {}{} instead of {}{}",
                    w.name(),
                    f.data_type(),
                    nullable(f.is_nullable()),
                    w.data_type(),
                    nullable(w.is_nullable()),
                )),
            Ok(_) => {}
        }
    }
    for f in found.fields() {
        if want.field_with_name(f.name()).is_err() {
            out.push(format!("unexpected column `{}`", f.name()));
        }
    }
    out
}

/// Committed files of the chosen dates that the listing lacks.
fn missing_files(
    committed: &Committed,
    present: &BTreeSet<String>,
    opts: &VerifyOptions,
    report: &mut Report,
) {
    for (path, r) in &committed.files {
        let date = path
            .split('/')
            .find_map(|s| s.strip_prefix("date="))
            .unwrap_or("");
        if present.contains(path) || !opts.includes(date) {
            continue;
        }
        report.problem(
            "missing_file",
            path,
            format!(
                "committed but missing: partition {} offsets {} are not in the lake",
                r.partition,
                span((r.first, r.last))
            ),
        );
    }
}

/// A table without files is a problem, unless only some dates were asked for or its commits
/// hold no row (a topic of aborted transactions: the accounting shows where its offsets went).
fn no_files(table: &str, commits: bool, opts: &VerifyOptions, report: &mut Report) {
    if !report.files.is_empty() {
        return;
    }
    // The date filter first: commits of other dates say nothing of these.
    if opts.filtered() {
        let note = format!("no data files of `{table}` in these dates");
        report.notes.push(note);
    } else if commits {
        let note = format!("`{table}` has commits but no row: no data file to read");
        report.notes.push(note);
    } else {
        let detail = format!("no data files for table `{table}`");
        report.problem("empty", "lake", detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::Range;
    use arrow::datatypes::{DataType, Field};
    use chrono::NaiveDate;

    #[test]
    fn schema_differences_name_each_column() {
        let want = lake_schema();
        assert!(schema_differences(&want, &want).is_empty());
        let mut fields: Vec<Field> = want.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[1] = Field::new("event_type_id", DataType::Int64, false);
        fields.pop();
        fields.push(Field::new("extra", DataType::Utf8, true));
        let d = schema_differences(&Schema::new(fields), &want);
        assert_eq!(d.len(), 3, "{d:?}");
        assert_eq!(d[0], "column `event_type_id` is Int64 instead of Int8");
        assert!(
            d.iter()
                .any(|x| x.contains("missing column `kafka_timestamp`"))
        );
        assert!(d.iter().any(|x| x.contains("unexpected column `extra`")));
    }

    #[test]
    fn committed_files_missing_from_the_listing_in_the_chosen_dates() {
        let r = Range {
            partition: 1,
            first: 5,
            last: 9,
        };
        let mut committed = Committed::default();
        for d in ["2026-01-01", "2026-01-02", "2026-01-03"] {
            committed.files.insert(format!("t/date={d}/p"), r);
        }
        let present = BTreeSet::from(["t/date=2026-01-02/p".to_string()]);
        let opts = VerifyOptions {
            date_to: NaiveDate::from_ymd_opt(2026, 1, 2),
            ..VerifyOptions::default()
        };
        let mut report = Report::default();
        missing_files(&committed, &present, &opts, &mut report);
        assert_eq!(
            report.problem_text(),
            "t/date=2026-01-01/p: committed but missing: partition 1 offsets 5-9 are not in the lake"
        );
        no_files("t", false, &opts, &mut report);
        assert_eq!(report.notes, ["no data files of `t` in these dates"]);
        no_files("t", false, &VerifyOptions::default(), &mut report);
        assert_eq!(report.problems[1].kind, "empty");
        no_files("t", true, &VerifyOptions::default(), &mut report);
        assert_eq!(
            report.problems.len(),
            2,
            "commits without rows are no problem"
        );
        assert_eq!(
            report.notes[1],
            "`t` has commits but no row: no data file to read"
        );
        // Dates without files: the commits of other dates do not matter.
        no_files("t", true, &opts, &mut report);
        assert_eq!(report.notes[2], "no data files of `t` in these dates");
    }
}

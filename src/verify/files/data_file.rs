//! One object of the table's listing as a data file: where it sits (date directory), what its
//! name claims (partition and offsets), and how its Parquet footer is opened.

use chrono::NaiveDate;
use object_store::ObjectMeta;
use object_store::path::Path;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::async_reader::ParquetObjectReader;
use parquet::errors::ParquetError;

use crate::lake::{Lake, Range, parse_data_file_name};
use crate::verify::report::Report;

/// One listed data file.
pub(in crate::verify) struct DataFile<'a> {
    pub meta: &'a ObjectMeta,
    /// Below the table directory: `date=…/p….parquet`.
    pub rel_path: String,
    /// As the commit markers name it: `<table>/date=…/p….parquet`.
    pub lake_path: String,
    /// The `date=` directory's value.
    pub date: String,
    /// That date, when it is one.
    pub day: Option<NaiveDate>,
    /// Whether the file sits right inside its `date=` directory.
    pub in_date_dir: bool,
    /// The partition and offsets the file's name claims.
    pub named: Option<Range>,
}

impl<'a> DataFile<'a> {
    /// None for objects outside the table and for bookkeeping (`_…`, `.…`).
    pub(super) fn of(meta: &'a ObjectMeta, table_path: &Path, table: &str) -> Option<DataFile<'a>> {
        let rel: Vec<String> = meta
            .location
            .prefix_match(table_path)?
            .map(|p| p.as_ref().to_string())
            .collect();
        let name = rel.last().cloned().unwrap_or_default();
        if name.starts_with('_') || name.starts_with('.') || rel.iter().any(|s| s.starts_with('_'))
        {
            return None;
        }
        let rel_path = rel.join("/");
        let date = rel
            .first()
            .and_then(|d| d.strip_prefix("date="))
            .unwrap_or("");
        let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok();
        Some(DataFile {
            meta,
            lake_path: format!("{table}/{rel_path}"),
            rel_path,
            date: date.to_string(),
            day,
            in_date_dir: rel.len() == 2,
            named: parse_data_file_name(&name),
        })
    }

    /// A file outside a `date=` directory or not named as encore names them.
    pub(super) fn check_layout(&self, report: &mut Report) {
        if self.day.is_none() || !self.in_date_dir {
            let detail = "not inside a date=YYYY-MM-DD directory";
            report.problem("layout", &self.rel_path, detail);
        }
        if self.named.is_none() {
            report.problem("layout", &self.rel_path, "not an encore data file name");
        }
    }
}

/// Opens a file's Parquet footer.
pub(in crate::verify) async fn open(
    lake: &Lake,
    meta: &ObjectMeta,
) -> Result<ParquetRecordBatchStreamBuilder<ParquetObjectReader>, ParquetError> {
    let reader = ParquetObjectReader::new(lake.store().clone(), meta.location.clone())
        .with_file_size(meta.size);
    ParquetRecordBatchStreamBuilder::new(reader).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(path: &str) -> ObjectMeta {
        ObjectMeta {
            location: Path::from(path),
            last_modified: chrono::Utc::now(),
            size: 10,
            e_tag: None,
            version: None,
        }
    }

    #[test]
    fn listed_objects_are_named_below_the_table() {
        let table = Path::from("root/t");
        let name = crate::lake::data_file_name(
            &Range {
                partition: 2,
                first: 10,
                last: 19,
            },
            3,
        );
        let m = meta(&format!("root/t/date=2026-01-02/{name}"));
        let f = DataFile::of(&m, &table, "t").unwrap();
        assert_eq!(f.rel_path, format!("date=2026-01-02/{name}"));
        assert_eq!(f.lake_path, format!("t/date=2026-01-02/{name}"));
        assert_eq!(f.date, "2026-01-02");
        assert_eq!(f.day, NaiveDate::from_ymd_opt(2026, 1, 2));
        assert_eq!(
            f.named.map(|r| (r.partition, r.first, r.last)),
            Some((2, 10, 19))
        );
        assert!(f.in_date_dir);
        let mut clean = Report::default();
        f.check_layout(&mut clean);
        assert!(clean.is_clean());
        // Too deep, or not in a date directory: a layout problem.
        let deep = meta("root/t/date=2026-01-02/x/y.parquet");
        assert!(!DataFile::of(&deep, &table, "t").unwrap().in_date_dir);
        let flat = meta("root/t/y.parquet");
        let f = DataFile::of(&flat, &table, "t").unwrap();
        assert_eq!((f.date.as_str(), f.day, f.named), ("", None, None));
        let mut report = Report::default();
        f.check_layout(&mut report);
        assert_eq!(
            report.problem_text(),
            "y.parquet: not inside a date=YYYY-MM-DD directory\ny.parquet: not an encore data file name"
        );
        // Bookkeeping and other tables are not data files.
        for other in [
            "root/t/_meta/x",
            "root/t/date=2026-01-02/.tmp",
            "root/u/a.parquet",
        ] {
            assert!(DataFile::of(&meta(other), &table, "t").is_none(), "{other}");
        }
    }
}

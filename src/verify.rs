//! `encore verify`: what the lake holds and whether it is sound.
//!
//! Reads only Parquet footers for counts and schemas, the event_type_id column for the counts
//! per event type, and the rows of a few files for samples.
//! Reports files and rows per date partition, files whose schema differs from the declared one,
//! unreadable files, data files that no commit marker lists (uncommitted leftovers), and
//! committed files that are missing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int8Type, Schema};
use futures::TryStreamExt;
use object_store::ObjectMeta;
use parquet::arrow::async_reader::ParquetObjectReader;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};

use crate::event::{EVENT_TYPES, EventType};
use crate::lake::{Lake, LakeError, parse_data_file_name};
use crate::schema::lake_schema;

/// One data file's facts.
#[derive(Clone, Debug)]
pub struct FileReport {
    /// Path relative to the table directory (`date=…/p….parquet`).
    pub path: String,
    pub date: String,
    pub rows: u64,
    pub bytes: u64,
}

/// The result of checking a lake.
#[derive(Debug, Default)]
pub struct Report {
    pub location: String,
    pub table: String,
    pub files: Vec<FileReport>,
    /// Date → (files, rows).
    pub per_date: BTreeMap<String, (u64, u64)>,
    pub rows: u64,
    pub bytes: u64,
    /// Everything wrong, one line each.
    pub problems: Vec<String>,
    /// The first track_playback rows (by file order), for eyeballing.
    pub samples: Option<RecordBatch>,
    /// Rows per event type id (index id - 1); ids outside 1..=8 are counted in `problems`.
    pub per_type: [u64; EVENT_TYPES],
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Compares field names, types and nullability (not metadata).
fn schema_differences(found: &Schema, want: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for w in want.fields() {
        match found.field_with_name(w.name()) {
            Err(_) => out.push(format!("missing column `{}`", w.name())),
            Ok(f) if f.data_type() != w.data_type() || f.is_nullable() != w.is_nullable() => out
                .push(format!(
                    "column `{}` is {}{} instead of {}{}",
                    w.name(),
                    f.data_type(),
                    if f.is_nullable() { " (nullable)" } else { "" },
                    w.data_type(),
                    if w.is_nullable() { " (nullable)" } else { "" },
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

/// Rows per event type of one file, reading only its event_type_id column; the count of rows
/// with an id outside 1..=8 comes second.
async fn count_types(
    lake: &Lake,
    meta: &ObjectMeta,
) -> Result<([u64; EVENT_TYPES], u64), parquet::errors::ParquetError> {
    let reader = ParquetObjectReader::new(lake.store().clone(), meta.location.clone())
        .with_file_size(meta.size);
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
    let idx = builder
        .schema()
        .index_of("event_type_id")
        .map_err(|e| parquet::errors::ParquetError::General(e.to_string()))?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [idx]);
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(65536)
        .build()?;
    let (mut counts, mut unknown) = ([0u64; EVENT_TYPES], 0u64);
    while let Some(batch) = stream.try_next().await? {
        let ids = batch
            .column(0)
            .as_primitive_opt::<Int8Type>()
            .ok_or_else(|| {
                parquet::errors::ParquetError::General("event_type_id is not Int8".into())
            })?;
        for id in ids.values() {
            match EventType::from_id(*id as u8) {
                Some(t) => counts[t.index()] += 1,
                None => unknown += 1,
            }
        }
    }
    Ok((counts, unknown))
}

async fn sample_rows(
    lake: &Lake,
    meta: &ObjectMeta,
    want: usize,
) -> Result<Vec<RecordBatch>, parquet::errors::ParquetError> {
    let reader = ParquetObjectReader::new(lake.store().clone(), meta.location.clone())
        .with_file_size(meta.size);
    let mut stream = ParquetRecordBatchStreamBuilder::new(reader)
        .await?
        .with_batch_size(4096)
        .build()?;
    let mut out = Vec::new();
    let mut have = 0;
    while have < want {
        let Some(batch) = stream.try_next().await? else {
            break;
        };
        let ids = batch
            .column_by_name("event_type_id")
            .and_then(|c| c.as_primitive_opt::<Int8Type>())
            .ok_or_else(|| parquet::errors::ParquetError::General("no event_type_id".into()))?;
        let mask = arrow::compute::kernels::cmp::eq(ids, &arrow::array::Int8Array::new_scalar(1))
            .map_err(|e| parquet::errors::ParquetError::General(e.to_string()))?;
        let picked = filter_record_batch(&batch, &mask)
            .map_err(|e| parquet::errors::ParquetError::General(e.to_string()))?;
        let take = picked.num_rows().min(want - have);
        have += take;
        out.push(picked.slice(0, take));
    }
    Ok(out)
}

/// Checks the lake's table. Errors only when the lake cannot be listed at all; everything
/// else is a problem in the report.
pub async fn verify(lake: &Lake, samples: usize) -> Result<Report, LakeError> {
    let table = lake.table_path();
    let mut metas: Vec<ObjectMeta> = lake
        .store()
        .list(Some(&table))
        .try_collect()
        .await
        .map_err(|e| LakeError::Store {
            action: "listing",
            path: table.to_string(),
            source: e,
        })?;
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let mut report = Report {
        location: lake.location().to_string(),
        table: lake.table().to_string(),
        ..Report::default()
    };

    // What the commit markers say should be there.
    let mut committed: BTreeSet<String> = BTreeSet::new();
    for p in lake.committed_partitions().await? {
        for r in lake.committed_ranges(p).await? {
            match lake.read_marker(&r).await {
                Ok(m) => committed.extend(m.files.into_iter().map(|f| f.path)),
                Err(e) => report.problems.push(e.to_string()),
            }
        }
    }

    let want = lake_schema();
    let mut sample_batches = Vec::new();
    let mut sampled = 0;
    let mut present = BTreeSet::new();
    for meta in &metas {
        let rel: Vec<String> = match meta.location.prefix_match(&table) {
            Some(parts) => parts.map(|p| p.as_ref().to_string()).collect(),
            None => continue,
        };
        let rel_path = rel.join("/");
        let name = rel.last().cloned().unwrap_or_default();
        if name.starts_with('_') || name.starts_with('.') || rel.iter().any(|s| s.starts_with('_'))
        {
            continue;
        }
        let lake_rel = format!("{}/{}", lake.table(), rel_path);
        present.insert(lake_rel.clone());
        let date = rel
            .first()
            .and_then(|d| d.strip_prefix("date="))
            .unwrap_or("")
            .to_string();
        if date.is_empty() || rel.len() != 2 {
            report.problems.push(format!(
                "{rel_path}: not inside a date=YYYY-MM-DD directory"
            ));
        }
        if parse_data_file_name(&name).is_none() {
            report
                .problems
                .push(format!("{rel_path}: not an encore data file name"));
        }
        if !committed.contains(&lake_rel) {
            report.problems.push(format!(
                "{rel_path}: not listed by any commit marker (uncommitted leftover)"
            ));
        }
        let reader = ParquetObjectReader::new(lake.store().clone(), meta.location.clone())
            .with_file_size(meta.size);
        let builder = match ParquetRecordBatchStreamBuilder::new(reader).await {
            Ok(b) => b,
            Err(e) => {
                report
                    .problems
                    .push(format!("{rel_path}: unreadable Parquet: {e}"));
                continue;
            }
        };
        let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let differences = schema_differences(builder.schema(), &want);
        let schema_ok = differences.is_empty();
        for d in differences {
            report.problems.push(format!("{rel_path}: schema: {d}"));
        }
        let entry = report.per_date.entry(date.clone()).or_default();
        entry.0 += 1;
        entry.1 += rows;
        report.rows += rows;
        report.bytes += meta.size;
        report.files.push(FileReport {
            path: rel_path.clone(),
            date,
            rows,
            bytes: meta.size,
        });
        if schema_ok {
            match count_types(lake, meta).await {
                Ok((counts, unknown)) => {
                    for (total, n) in report.per_type.iter_mut().zip(counts) {
                        *total += n;
                    }
                    if unknown > 0 {
                        report.problems.push(format!(
                            "{rel_path}: {unknown} rows with an event_type_id outside 1..8"
                        ));
                    }
                }
                Err(e) => report
                    .problems
                    .push(format!("{rel_path}: rows unreadable: {e}")),
            }
        }
        if sampled < samples {
            match sample_rows(lake, meta, samples - sampled).await {
                Ok(batches) => {
                    sampled += batches.iter().map(|b| b.num_rows()).sum::<usize>();
                    sample_batches.extend(batches);
                }
                Err(e) => report
                    .problems
                    .push(format!("{rel_path}: rows unreadable: {e}")),
            }
        }
    }
    for missing in committed.difference(&present) {
        report
            .problems
            .push(format!("{missing}: committed but missing"));
    }
    if report.files.is_empty() {
        report
            .problems
            .push(format!("no data files for table `{}`", lake.table()));
    }
    if let Some(first) = sample_batches.first() {
        match arrow::compute::concat_batches(&first.schema(), &sample_batches) {
            Ok(b) => report.samples = Some(b),
            Err(e) => report.problems.push(format!("sample rows: {e}")),
        }
    }
    Ok(report)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "lake {} table {}", self.location, self.table)?;
        writeln!(f, "{:<14}{:>8}{:>14}", "date", "files", "rows")?;
        for (date, (files, rows)) in &self.per_date {
            writeln!(f, "{date:<14}{files:>8}{rows:>14}")?;
        }
        writeln!(
            f,
            "{:<14}{:>8}{:>14}   ({:.1} MiB)",
            "total",
            self.files.len(),
            self.rows,
            self.bytes as f64 / (1024.0 * 1024.0)
        )?;
        if self.per_type.iter().any(|n| *n > 0) {
            writeln!(f, "\n{:<4}{:<26}{:>14}", "id", "event_type", "rows")?;
            for t in EventType::ALL {
                writeln!(
                    f,
                    "{:<4}{:<26}{:>14}",
                    t.id(),
                    t.name(),
                    self.per_type[t.index()]
                )?;
            }
        }
        if let Some(s) = &self.samples {
            let cols = [
                "event_time",
                "event_type",
                "user_id",
                "track_id",
                "previous_track_id",
                "platform",
                "country",
                "kafka_partition",
                "kafka_offset",
            ];
            let idx: Vec<usize> = cols
                .iter()
                .filter_map(|c| s.schema().index_of(c).ok())
                .collect();
            match s
                .project(&idx)
                .and_then(|p| arrow::util::pretty::pretty_format_batches(&[p]))
            {
                Ok(t) => writeln!(f, "\nfirst {} track_playback events:\n{t}", s.num_rows())?,
                Err(e) => writeln!(f, "\n(sample rows cannot be shown: {e})")?,
            }
        }
        if self.problems.is_empty() {
            write!(
                f,
                "\nverdict: CLEAN ({} rows in {} files, every schema matches)",
                self.rows,
                self.files.len()
            )
        } else {
            writeln!(f, "\nproblems:")?;
            for p in &self.problems {
                writeln!(f, "  - {p}")?;
            }
            write!(f, "verdict: PROBLEMS ({} found)", self.problems.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field};

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
        assert!(d[0].contains("event_type_id"));
        assert!(
            d.iter()
                .any(|x| x.contains("missing column `kafka_timestamp`"))
        );
        assert!(d.iter().any(|x| x.contains("unexpected column `extra`")));
    }
}

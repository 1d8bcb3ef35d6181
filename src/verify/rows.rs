//! The row checks: six projected columns of each file (never whole rows) for null or malformed
//! event ids, type ids that disagree with type names, events outside their file's date and
//! rows outside the partition and offsets of the file's name; the ids, offsets and types they
//! collect serve the later phases and the report.

mod columns;
mod findings;

use std::collections::BTreeMap;

use arrow::datatypes::Schema;
use futures::TryStreamExt;
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;

use super::files::{DataFile, open};
use super::report::Report;
use crate::event::EVENT_TYPES;
use crate::lake::Lake;
use columns::Columns;
use findings::Findings;

/// The columns the row checks read.
const CHECKED: [&str; 6] = [
    "event_id",
    "event_type_id",
    "event_type",
    "event_time",
    "kafka_partition",
    "kafka_offset",
];

/// Whether the row checks can read a file whose schema differs: their columns have the
/// declared types.
pub(super) fn checkable(found: &Schema, want: &Schema) -> bool {
    CHECKED.iter().all(|n| {
        matches!((found.field_with_name(n), want.field_with_name(n)),
            (Ok(f), Ok(w)) if f.data_type() == w.data_type())
    })
}

/// What the row checks collect across files.
#[derive(Default)]
pub(super) struct Rows {
    /// Valid event ids, in file order until `duplicates::dedup_ids`.
    pub ids: Vec<u128>,
    /// Row offsets per Kafka partition.
    pub offsets: BTreeMap<i32, Vec<i64>>,
    /// Rows per event type (index id - 1) whose type id and name agree.
    pub per_type: [u64; EVENT_TYPES],
}

/// Checks one file's rows: its findings are problems of the file.
pub(super) async fn check(
    lake: &Lake,
    file: &DataFile<'_>,
    list: usize,
    rows: &mut Rows,
    report: &mut Report,
) {
    let mut f = Findings::new(file.day, file.named, list);
    match scan(lake, file, &mut f, rows).await {
        Ok(()) => {
            for (kind, detail) in f.problems() {
                report.problem(kind, &file.rel_path, detail);
            }
        }
        Err(e) => {
            let detail = format!("rows unreadable: {e}");
            report.problem("unreadable", &file.rel_path, detail);
        }
    }
}

/// Reads the checked columns of one file, batch by batch.
async fn scan(
    lake: &Lake,
    file: &DataFile<'_>,
    f: &mut Findings,
    rows: &mut Rows,
) -> Result<(), ParquetError> {
    let builder = open(lake, file.meta).await?;
    let idx: Vec<usize> = CHECKED
        .iter()
        .map(|n| builder.schema().index_of(n))
        .collect::<Result<_, _>>()
        .map_err(|e| ParquetError::General(e.to_string()))?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(65536)
        .build()?;
    while let Some(b) = stream.try_next().await? {
        f.check_batch(&Columns::of(&b)?, rows);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field};

    #[test]
    fn only_files_with_the_checked_columns_typed_as_declared_are_scanned() {
        let want = crate::lake::schema::lake_schema();
        assert!(checkable(&want, &want));
        let mut fields: Vec<Field> = want.fields().iter().map(|f| f.as_ref().clone()).collect();
        // Another type for an unchecked column does not matter, for a checked one it does.
        fields[3] = Field::new("user_id", DataType::Int64, false);
        assert!(checkable(&Schema::new(fields.clone()), &want));
        fields[16] = Field::new("kafka_offset", DataType::Int32, false);
        assert!(!checkable(&Schema::new(fields), &want));
    }
}

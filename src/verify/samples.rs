//! The few track_playback rows the report shows for eyeballing: read from the first files only,
//! nine columns, never more rows than asked for.

use arrow::array::{AsArray, Int8Array, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::Int8Type;
use arrow::error::ArrowError;
use futures::TryStreamExt;
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;

use super::files::{DataFile, open};
use super::report::Report;
use crate::lake::Lake;

/// The columns of the sample table.
const SAMPLE_COLUMNS: [&str; 9] = [
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

/// Files tried for samples: a lake without track_playback rows is not read in full for them.
const SAMPLE_FILES: usize = 5;

/// The sample rows gathered so far.
#[derive(Default)]
pub(super) struct Samples {
    batches: Vec<RecordBatch>,
    rows: usize,
    files: usize,
}

impl Samples {
    /// Takes track_playback rows from `file` while fewer than `want` are gathered and few
    /// files were tried.
    pub async fn take_from(
        &mut self,
        lake: &Lake,
        file: &DataFile<'_>,
        want: usize,
        report: &mut Report,
    ) {
        if self.rows >= want || self.files >= SAMPLE_FILES {
            return;
        }
        self.files += 1;
        match read(lake, file, want - self.rows).await {
            Ok(batches) => {
                self.rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
                self.batches.extend(batches);
            }
            Err(e) => report.problem(
                "unreadable",
                &file.rel_path,
                format!("rows unreadable: {e}"),
            ),
        }
    }

    /// Puts the rows into the report as one batch.
    pub fn finish(self, report: &mut Report) {
        let Some(first) = self.batches.first() else {
            return;
        };
        match arrow::compute::concat_batches(&first.schema(), &self.batches) {
            Ok(b) => report.samples = Some(b),
            Err(e) => report.problem("samples", "sample rows", e.to_string()),
        }
    }
}

/// Up to `want` track_playback rows of one file, in the sample columns (and the type id).
async fn read(
    lake: &Lake,
    file: &DataFile<'_>,
    want: usize,
) -> Result<Vec<RecordBatch>, ParquetError> {
    let general = |e: ArrowError| ParquetError::General(e.to_string());
    let builder = open(lake, file.meta).await?;
    // Only the columns the sample table shows, plus the type to filter on.
    let idx: Vec<usize> = SAMPLE_COLUMNS
        .iter()
        .chain(&["event_type_id"])
        .filter_map(|c| builder.schema().index_of(c).ok())
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
    let mut stream = builder
        .with_projection(mask)
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
            .ok_or_else(|| ParquetError::General("no event_type_id".into()))?;
        let playback =
            arrow::compute::kernels::cmp::eq(ids, &Int8Array::new_scalar(1)).map_err(general)?;
        let picked = filter_record_batch(&batch, &playback).map_err(general)?;
        let take = picked.num_rows().min(want - have);
        have += take;
        out.push(picked.slice(0, take));
    }
    Ok(out)
}

/// The sample rows as a text table of the sample columns.
pub(super) fn table(samples: &RecordBatch) -> Result<String, ArrowError> {
    let idx: Vec<usize> = SAMPLE_COLUMNS
        .iter()
        .filter_map(|c| samples.schema().index_of(c).ok())
        .collect();
    let shown = samples.project(&idx)?;
    Ok(arrow::util::pretty::pretty_format_batches(&[shown])?.to_string())
}

//! `encore verify`: what the lake holds, whether it is sound, and whether it agrees with the
//! topic and with ClickHouse.
//!
//! Reads Parquet footers for counts and schemas and a projection of six columns (event id,
//! type id and name, event time, Kafka partition and offset) for the row checks, never whole
//! rows except for the few samples. Reports files and rows per date and per event type, files
//! whose schema differs, unreadable files, files no commit marker lists (uncommitted leftovers),
//! committed files that are missing, null or malformed event ids, type ids that disagree with
//! type names, events outside their file's date, duplicate event ids, and per Kafka partition
//! the offsets the lake holds: gaps and overlaps, and with `--brokers` how they compare with the
//! topic's watermarks (records after the last flush are in flight, not missing). With
//! ClickHouse, the events missing on either side and the duplicates not merged yet.

pub mod coverage;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int8Type, Int32Type, Int64Type, Schema, TimestampMillisecondType};
use chrono::NaiveDate;
use futures::TryStreamExt;
use object_store::ObjectMeta;
use parquet::arrow::async_reader::ParquetObjectReader;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use serde::Serialize;

use crate::clickhouse::schema::{Dialect, queue_group};
use crate::clickhouse::{ClickHouse, quote_ident, quote_str};
use crate::event::{EVENT_TYPES, EventType};
use crate::kafka::KafkaConnection;
use crate::lake::schema::lake_schema;
use crate::lake::{Lake, LakeError, parse_data_file_name};
use coverage::{PartitionCheck, Span, against_topic, difference, span};

/// What to check and how much to print.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// track_playback rows to show.
    pub samples: usize,
    /// Only these dates (inclusive); the offset checks against the topic need the whole lake.
    pub date_from: Option<NaiveDate>,
    pub date_to: Option<NaiveDate>,
    /// How many ids or offsets a finding lists.
    pub list: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            samples: 10,
            date_from: None,
            date_to: None,
            list: 10,
        }
    }
}

/// The other places the events should be.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// The topic the lake was written from (same name as the lake table).
    pub kafka: Option<KafkaConnection>,
    /// The sink's dead-letter topic (with `kafka`); None: `<table>.dlq`.
    pub dlq_topic: Option<String>,
    /// ClickHouse and the database holding encore's tables.
    pub clickhouse: Option<(ClickHouse, String)>,
}

/// One finding: what kind, where, and what exactly.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub subject: String,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.detail)
    }
}

/// One data file's facts.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    /// Path relative to the table directory (`date=…/p….parquet`).
    pub path: String,
    pub date: String,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct DateCount {
    pub files: u64,
    pub rows: u64,
}

/// One Kafka partition as the lake holds it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PartitionReport {
    pub rows: u64,
    /// Records the commit markers count as rejected (not valid events).
    pub rejected: u64,
    /// Offset runs held by data files (and rejected records listed by markers).
    pub ranges: Vec<Span>,
    /// Against the topic, with `--brokers`.
    pub topic: Option<PartitionCheck>,
}

/// ClickHouse against the lake.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClickHouseReport {
    pub table: String,
    pub version: String,
    pub rows: u64,
    pub distinct: u64,
    /// Extra copies not merged away yet (FINAL and merges remove them).
    pub duplicates_before_merges: u64,
    pub duplicate_ids: Vec<String>,
    pub missing: u64,
    pub missing_ids: Vec<String>,
    /// Events in ClickHouse that the lake does not have.
    pub extra: u64,
    pub extra_ids: Vec<String>,
    /// Per Kafka partition (servers with the source columns): rows, distinct, first and last
    /// offset.
    pub per_partition: BTreeMap<i32, (u64, u64, i64, i64)>,
    /// Records ClickHouse's queue has not consumed yet (with `--brokers`).
    pub queue_lag: Option<i64>,
}

/// The dead-letter topic against the commit markers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DeadLetterReport {
    pub topic: String,
    /// Records in the topic for this source, copies included.
    pub records: u64,
    /// Distinct source records.
    pub distinct: u64,
    /// Distinct source records per reason.
    pub reasons: BTreeMap<String, u64>,
    /// Of `distinct`, those inside committed ranges.
    pub committed: u64,
}

/// Every record of the topic, accounted for (with `--brokers`, whole lake). Counts cover the
/// offsets the topic still has (from its low watermark): rows and dead letters of older
/// offsets, deleted from the topic by retention, are in `older_rows`.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Accounting {
    /// Records between the low and high watermarks.
    pub topic_records: i64,
    /// Lake rows inside committed ranges.
    pub lake_rows: u64,
    /// Distinct dead letters inside committed ranges.
    pub dead_letters: u64,
    /// Offsets of committed ranges that hold neither (transaction markers, compaction).
    pub no_record: i64,
    pub in_flight: i64,
    /// Lake rows below the topic's low watermark.
    pub older_rows: u64,
}

impl Accounting {
    pub fn accounted(&self) -> i64 {
        self.lake_rows as i64 + self.dead_letters as i64 + self.no_record + self.in_flight
    }
}

/// The result of checking a lake.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub location: String,
    pub table: String,
    pub files: Vec<FileReport>,
    pub per_date: BTreeMap<String, DateCount>,
    pub rows: u64,
    pub bytes: u64,
    /// Rows per event type id (index id - 1).
    pub per_type: [u64; EVENT_TYPES],
    pub distinct_events: u64,
    /// Extra copies of events found at other offsets (the topic's replays, not lake faults).
    pub replayed_events: u64,
    pub partitions: BTreeMap<i32, PartitionReport>,
    pub clickhouse: Option<ClickHouseReport>,
    pub dead_letters: Option<DeadLetterReport>,
    pub accounting: Option<Accounting>,
    /// Everything wrong.
    pub problems: Vec<Problem>,
    /// Worth knowing, not wrong (records in flight, duplicates ClickHouse will merge).
    pub notes: Vec<String>,
    /// The first track_playback rows (by file order), for eyeballing.
    #[serde(skip)]
    pub samples: Option<RecordBatch>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(
        &mut self,
        kind: &'static str,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.problems.push(Problem {
            kind,
            subject: subject.into(),
            detail: detail.into(),
        });
    }

    /// Problems as text, one per line.
    pub fn problem_text(&self) -> String {
        self.problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Why verify could not check at all (exit 2): the lake cannot be listed, a source does not
/// answer.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{0}")]
    Source(String),
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

async fn sample_rows(
    lake: &Lake,
    meta: &ObjectMeta,
    want: usize,
) -> Result<Vec<RecordBatch>, parquet::errors::ParquetError> {
    let reader = ParquetObjectReader::new(lake.store().clone(), meta.location.clone())
        .with_file_size(meta.size);
    // Only the columns the sample table shows, plus the type to filter on.
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
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

/// The columns the row checks read.
const CHECKED: [&str; 6] = [
    "event_id",
    "event_type_id",
    "event_type",
    "event_time",
    "kafka_partition",
    "kafka_offset",
];

fn checked_columns_match(found: &Schema, want: &Schema) -> bool {
    CHECKED.iter().all(|n| {
        matches!((found.field_with_name(n), want.field_with_name(n)),
            (Ok(f), Ok(w)) if f.data_type() == w.data_type())
    })
}

/// Per-file row findings, merged into the report.
#[derive(Default)]
struct RowFindings {
    null_ids: u64,
    bad_ids: Vec<String>,
    bad_id_count: u64,
    type_mismatch: u64,
    type_examples: Vec<i64>,
    wrong_date: u64,
    date_examples: Vec<(i64, i64)>,
    wrong_partition: u64,
    outside_name: u64,
}

/// Reads the six checked columns of one file and records ids, offsets and findings.
#[allow(clippy::too_many_arguments)]
async fn scan_rows(
    lake: &Lake,
    meta: &ObjectMeta,
    date: Option<NaiveDate>,
    named: Option<crate::lake::Range>,
    list: usize,
    ids: &mut Vec<u128>,
    offsets: &mut BTreeMap<i32, Vec<i64>>,
    per_type: &mut [u64; EVENT_TYPES],
) -> Result<RowFindings, parquet::errors::ParquetError> {
    let general = |e: String| parquet::errors::ParquetError::General(e);
    let reader = ParquetObjectReader::new(lake.store().clone(), meta.location.clone())
        .with_file_size(meta.size);
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
    let idx: Vec<usize> = CHECKED
        .iter()
        .map(|n| {
            builder
                .schema()
                .index_of(n)
                .map_err(|e| general(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(65536)
        .build()?;
    let day = date.map(|d| {
        let start = d
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp_millis();
        (start, start + 86_400_000)
    });
    let mut f = RowFindings::default();
    while let Some(b) = stream.try_next().await? {
        let col = |n: &str| {
            b.column_by_name(n)
                .ok_or_else(|| general(format!("no {n}")))
        };
        let id_col = col("event_id")?;
        let id_arr = id_col
            .as_string_opt::<i32>()
            .ok_or_else(|| general("event_id is not Utf8".into()))?;
        let type_ids = col("event_type_id")?
            .as_primitive_opt::<Int8Type>()
            .ok_or_else(|| general("event_type_id is not Int8".into()))?
            .clone();
        let names_col = col("event_type")?;
        let dict = names_col
            .as_any_dictionary_opt()
            .ok_or_else(|| general("event_type is not dictionary-encoded".into()))?;
        let dict_values = dict.values().as_string_opt::<i32>().map(|v| {
            (0..v.len())
                .map(|i| EventType::from_name(v.value(i)).map(|t| t.id() as i8))
                .collect::<Vec<_>>()
        });
        let dict_values =
            dict_values.ok_or_else(|| general("event_type values are not Utf8".into()))?;
        let keys = dict.normalized_keys();
        let times = col("event_time")?
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| general("event_time is not Timestamp(ms)".into()))?
            .clone();
        let parts = col("kafka_partition")?
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| general("kafka_partition is not Int32".into()))?
            .clone();
        let offs = col("kafka_offset")?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| general("kafka_offset is not Int64".into()))?
            .clone();
        for (i, key) in keys.iter().enumerate() {
            let (p, o) = (parts.value(i), offs.value(i));
            if id_arr.is_null(i) {
                f.null_ids += 1;
            } else {
                match uuid::Uuid::try_parse(id_arr.value(i)) {
                    Ok(u) => ids.push(u.as_u128()),
                    Err(_) => {
                        f.bad_id_count += 1;
                        if f.bad_ids.len() < list {
                            f.bad_ids
                                .push(format!("{:?} at offset {p}/{o}", id_arr.value(i)));
                        }
                    }
                }
            }
            let tid = type_ids.value(i);
            let by_name = if names_col.is_null(i) {
                None
            } else {
                dict_values.get(*key).copied().flatten()
            };
            match EventType::from_id(tid as u8) {
                Some(t) if by_name == Some(t.id() as i8) => per_type[t.index()] += 1,
                _ => {
                    f.type_mismatch += 1;
                    if f.type_examples.len() < list {
                        f.type_examples.push(o);
                    }
                }
            }
            if let Some((start, end)) = day {
                let t = times.value(i);
                if t < start || t >= end {
                    f.wrong_date += 1;
                    if f.date_examples.len() < list {
                        f.date_examples.push((o, t));
                    }
                }
            }
            if let Some(r) = named {
                if p != r.partition {
                    f.wrong_partition += 1;
                }
                if o < r.first || o > r.last {
                    f.outside_name += 1;
                }
            }
            offsets.entry(p).or_default().push(o);
        }
    }
    Ok(f)
}

fn ms_to_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn uuid_text(id: u128) -> String {
    uuid::Uuid::from_u128(id).to_string()
}

/// Checks the lake's table, and with `sources` reconciles it with the topic and ClickHouse.
/// Errors only when the lake cannot be listed or a source does not answer; everything else is
/// a problem in the report.
pub async fn verify(
    lake: &Lake,
    opts: &VerifyOptions,
    sources: &Sources,
) -> Result<Report, VerifyError> {
    let table = lake.table_path();
    let mut report = Report {
        location: lake.location().to_string(),
        table: lake.table().to_string(),
        ..Report::default()
    };
    let in_dates = |d: &str| {
        let Ok(d) = NaiveDate::parse_from_str(d, "%Y-%m-%d") else {
            return opts.date_from.is_none() && opts.date_to.is_none();
        };
        opts.date_from.is_none_or(|f| d >= f) && opts.date_to.is_none_or(|t| d <= t)
    };
    let filtered = opts.date_from.is_some() || opts.date_to.is_some();

    // What the commit markers say should be there. Read before the files are listed, so that a
    // commit landing meanwhile shows up as files the listing has (re-checked below), never as
    // files that are missing.
    let mut committed: BTreeMap<String, crate::lake::Range> = BTreeMap::new();
    // Per partition: each committed range with the data rows its marker lists.
    let mut markers: BTreeMap<i32, Vec<(Span, u64)>> = BTreeMap::new();
    // Per partition: each committed range's rejected count and the offsets its marker lists.
    let mut rejects: BTreeMap<i32, Vec<(Span, u64, Vec<i64>)>> = BTreeMap::new();
    let mut marker_problems = Vec::new();
    // Which sources wrote the markers (a topic deleted and created again is another source).
    let mut marker_sources: BTreeSet<String> = BTreeSet::new();
    for p in lake.committed_partitions().await? {
        for r in lake.committed_ranges(p).await? {
            match lake.read_marker(&r).await {
                Ok(m) => {
                    if !marker_sources.contains(&m.source) {
                        marker_sources.insert(m.source.clone());
                    }
                    markers
                        .entry(p)
                        .or_default()
                        .push(((r.first, r.last), m.rows));
                    rejects.entry(p).or_default().push((
                        (r.first, r.last),
                        m.rejected_count,
                        m.rejected.iter().map(|x| x.offset).collect(),
                    ));
                    committed.extend(m.files.into_iter().map(|f| (f.path, r)));
                }
                Err(e) => marker_problems.push(e.to_string()),
            }
        }
    }
    for e in marker_problems {
        report.problem("marker", "commit marker", e);
    }
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
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

    let want = lake_schema();
    let mut sample_batches = Vec::new();
    let mut sampled = 0;
    let mut sample_files = 0;
    let mut present = BTreeSet::new();
    let mut ids: Vec<u128> = Vec::new();
    let list = opts.list;
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
        if !in_dates(&date) {
            continue;
        }
        let day = NaiveDate::parse_from_str(&date, "%Y-%m-%d").ok();
        if day.is_none() || rel.len() != 2 {
            report.problem(
                "layout",
                &rel_path,
                "not inside a date=YYYY-MM-DD directory",
            );
        }
        let named = parse_data_file_name(&name);
        if named.is_none() {
            report.problem("layout", &rel_path, "not an encore data file name");
        }
        if !committed.contains_key(&lake_rel) {
            // A commit may have landed after the markers were read.
            let late = match named {
                Some(r) => lake
                    .read_marker(&r)
                    .await
                    .ok()
                    .filter(|m| m.files.iter().any(|f| f.path == lake_rel)),
                None => None,
            };
            match late {
                Some(m) => {
                    let r = m.range();
                    markers
                        .entry(r.partition)
                        .or_default()
                        .push(((r.first, r.last), m.rows));
                    rejects.entry(r.partition).or_default().push((
                        (r.first, r.last),
                        m.rejected_count,
                        m.rejected.iter().map(|x| x.offset).collect(),
                    ));
                    committed.extend(m.files.into_iter().map(|f| (f.path, r)));
                }
                None => report.problem(
                    "leftover",
                    &rel_path,
                    "not listed by any commit marker (uncommitted leftover)",
                ),
            }
        }
        let reader = ParquetObjectReader::new(lake.store().clone(), meta.location.clone())
            .with_file_size(meta.size);
        let builder = match ParquetRecordBatchStreamBuilder::new(reader).await {
            Ok(b) => b,
            Err(e) => {
                report.problem("unreadable", &rel_path, format!("unreadable Parquet: {e}"));
                continue;
            }
        };
        let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let file_schema = builder.schema().clone();
        let differences = schema_differences(&file_schema, &want);
        let schema_ok = differences.is_empty();
        for d in differences {
            report.problem("schema", &rel_path, format!("schema: {d}"));
        }
        drop(builder);
        let entry = report.per_date.entry(date.clone()).or_default();
        entry.files += 1;
        entry.rows += rows;
        report.rows += rows;
        report.bytes += meta.size;
        report.files.push(FileReport {
            path: rel_path.clone(),
            date,
            rows,
            bytes: meta.size,
        });
        // The row checks need only their six columns.
        if !schema_ok && !checked_columns_match(&file_schema, &want) {
            continue;
        }
        match scan_rows(
            lake,
            meta,
            day,
            named,
            list,
            &mut ids,
            &mut offsets,
            &mut report.per_type,
        )
        .await
        {
            Ok(f) => {
                if f.null_ids > 0 {
                    report.problem(
                        "null_id",
                        &rel_path,
                        format!("{} rows without an event id", f.null_ids),
                    );
                }
                if f.bad_id_count > 0 {
                    report.problem(
                        "bad_id",
                        &rel_path,
                        format!(
                            "{} event ids are not UUIDs, e.g. {}",
                            f.bad_id_count,
                            f.bad_ids.join(", ")
                        ),
                    );
                }
                if f.type_mismatch > 0 {
                    report.problem(
                        "event_type",
                        &rel_path,
                        format!(
                            "{} rows whose event_type_id and event_type disagree (offsets {:?})",
                            f.type_mismatch, f.type_examples
                        ),
                    );
                }
                if f.wrong_date > 0 {
                    let ex: Vec<String> = f
                        .date_examples
                        .iter()
                        .map(|(o, t)| format!("offset {o} at {}", ms_to_text(*t)))
                        .collect();
                    report.problem(
                        "wrong_date",
                        &rel_path,
                        format!(
                            "{} rows outside the file's date partition: {}",
                            f.wrong_date,
                            ex.join(", ")
                        ),
                    );
                }
                if f.wrong_partition > 0 || f.outside_name > 0 {
                    report.problem(
                        "offsets",
                        &rel_path,
                        format!(
                            "{} rows of another Kafka partition, {} rows outside the offset range in the file's name",
                            f.wrong_partition, f.outside_name
                        ),
                    );
                }
            }
            Err(e) => report.problem("unreadable", &rel_path, format!("rows unreadable: {e}")),
        }
        if sampled < opts.samples && sample_files < SAMPLE_FILES {
            sample_files += 1;
            match sample_rows(lake, meta, opts.samples - sampled).await {
                Ok(batches) => {
                    sampled += batches.iter().map(|b| b.num_rows()).sum::<usize>();
                    sample_batches.extend(batches);
                }
                Err(e) => report.problem("unreadable", &rel_path, format!("rows unreadable: {e}")),
            }
        }
    }
    for (missing, r) in &committed {
        if !present.contains(missing) {
            let date = missing
                .split('/')
                .find_map(|s| s.strip_prefix("date="))
                .unwrap_or("");
            if in_dates(date) {
                report.problem(
                    "missing_file",
                    missing,
                    format!(
                        "committed but missing: partition {} offsets {} are not in the lake",
                        r.partition,
                        span((r.first, r.last))
                    ),
                );
            }
        }
    }
    if report.files.is_empty() {
        let table = lake.table().to_string();
        if filtered {
            report
                .notes
                .push(format!("no data files of `{table}` in these dates"));
        } else {
            report.problem(
                "empty",
                "lake",
                format!("no data files for table `{table}`"),
            );
        }
    }

    // Duplicate event ids across the lake.
    ids.sort_unstable();
    let mut dup_examples = Vec::new();
    let mut dup_copies = 0u64;
    for w in ids.windows(2) {
        if w[0] == w[1] {
            dup_copies += 1;
            if dup_examples.len() < list && dup_examples.last() != Some(&w[0]) {
                dup_examples.push(w[0]);
            }
        }
    }
    ids.dedup();
    report.distinct_events = ids.len() as u64;

    if let Some(cfg) = &sources.kafka {
        let current = topic_identity(cfg, lake.table()).await?;
        for id in recreated_from(&marker_sources, &current) {
            report.problem(
                "topic_recreated",
                format!("topic {}", lake.table()),
                format!(
                    "the lake holds records of topic id {id}, the topic now has id {}: it was deleted and created again, so its offsets are another topic's",
                    current.split_once('#').map_or("?", |x| x.1)
                ),
            );
        }
    }

    // Offsets per Kafka partition.
    let watermarks = match &sources.kafka {
        Some(cfg) if !filtered => Some(topic_watermarks(cfg, lake.table()).await?),
        Some(_) => {
            report
                .notes
                .push("--date-from/--date-to: offsets are not compared with the topic".into());
            None
        }
        None => None,
    };
    let dlq_topic = sources
        .dlq_topic
        .clone()
        .unwrap_or_else(|| crate::kafka::dlq::default_topic(lake.table()));
    let dead = match &sources.kafka {
        Some(cfg) if !filtered => {
            let (cfg, t, src) = (cfg.clone(), dlq_topic.clone(), lake.table().to_string());
            tokio::task::spawn_blocking(move || crate::kafka::dlq::scan(&cfg, &t, &src))
                .await
                .map_err(|e| VerifyError::Source(e.to_string()))?
                .map_err(|e| VerifyError::Source(format!("dead-letter topic: {e}")))?
        }
        _ => None,
    };
    let mut dead_report = DeadLetterReport {
        topic: dlq_topic.clone(),
        records: dead.as_ref().map_or(0, |d| d.records),
        distinct: dead.as_ref().map_or(0, |d| d.distinct()),
        reasons: dead.as_ref().map(|d| d.reasons.clone()).unwrap_or_default(),
        committed: 0,
    };
    if let Some(d) = &dead
        && d.unreadable > 0
    {
        report.problem(
            "dead_letter",
            format!("topic {dlq_topic}"),
            format!(
                "{} records without encore.partition/encore.offset headers",
                d.unreadable
            ),
        );
    }
    let mut all_partitions: BTreeSet<i32> = offsets.keys().copied().collect();
    all_partitions.extend(markers.keys().copied());
    if let Some(w) = &watermarks {
        all_partitions.extend(w.keys().copied());
    }
    let mut in_flight_total = 0i64;
    let mut offset_copies = 0u64;
    let mut acc = Accounting::default();
    let no_letters = BTreeSet::new();
    for p in all_partitions {
        let mut offs = offsets.remove(&p).unwrap_or_default();
        offs.sort_unstable();
        let rows = offs.len() as u64;
        let mut committed_ranges = markers.remove(&p).unwrap_or_default();
        committed_ranges.sort_unstable();
        // Each committed range must hold the rows its marker lists (offsets inside a range
        // need not be contiguous: rejected records, transaction markers, compaction).
        if !filtered {
            for ((first, last), want_rows) in &committed_ranges {
                let have = (offs.partition_point(|o| *o <= *last)
                    - offs.partition_point(|o| *o < *first)) as u64;
                if have < *want_rows {
                    report.problem(
                        "gap",
                        format!("partition {p}"),
                        format!(
                            "offsets {} are in the topic but not in the lake (the commit marker lists {want_rows} rows, the lake has {have})",
                            span((*first, *last))
                        ),
                    );
                } else if have > *want_rows {
                    report.problem(
                        "offsets",
                        format!("partition {p}"),
                        format!(
                            "offsets {}: the lake has {have} rows, the commit marker lists {want_rows}",
                            span((*first, *last))
                        ),
                    );
                }
            }
        }
        let part_rejects = rejects.remove(&p).unwrap_or_default();
        let rejected: u64 = part_rejects.iter().map(|r| r.1).sum();
        let letters = dead
            .as_ref()
            .and_then(|d| d.offsets.get(&p))
            .unwrap_or(&no_letters);
        if let Some(&(low, _)) = watermarks.as_ref().and_then(|w| w.get(&p)) {
            // What the topic still has (from `low`), per committed range.
            for ((first, last), _) in &committed_ranges {
                let start = (*first).max(low);
                if start > *last {
                    continue;
                }
                let rows_in = (offs.partition_point(|o| *o <= *last)
                    - offs.partition_point(|o| *o < start)) as i64;
                let letters_in = letters.range(start..=*last).count() as i64;
                acc.lake_rows += rows_in as u64;
                acc.dead_letters += letters_in as u64;
                acc.no_record += (*last - start + 1 - rows_in - letters_in).max(0);
            }
            acc.older_rows += offs.partition_point(|o| *o < low) as u64;
        }
        if !filtered && sources.kafka.is_some() {
            dead_report.committed += check_dead_letters(
                &mut report,
                p,
                &part_rejects,
                letters,
                &offs,
                dead.is_some(),
                &dlq_topic,
                list,
            );
        }
        let cov = coverage::coverage(offs, list);
        offset_copies += cov.duplicate_copies;
        if cov.duplicate_copies > 0 {
            report.problem(
                "overlap",
                format!("partition {p}"),
                format!(
                    "{} offsets held more than once, e.g. {:?}",
                    cov.duplicate_copies, cov.duplicated
                ),
            );
        }
        let ranges = coverage::merge(committed_ranges.iter().map(|(r, _)| *r));
        let mut pr = PartitionReport {
            rows,
            rejected,
            ranges: ranges.clone(),
            topic: None,
        };
        match watermarks.as_ref().map(|w| w.get(&p).copied()) {
            Some(Some((low, high))) => {
                let check = against_topic(p, &ranges, low, high);
                for g in &check.gaps {
                    report.problem(
                        "gap",
                        format!("partition {p}"),
                        format!(
                            "offsets {} are in the topic but no commit covers them",
                            span(*g)
                        ),
                    );
                }
                if let Some(b) = check.beyond {
                    report.problem(
                        "beyond_topic",
                        format!("partition {p}"),
                        format!(
                            "offsets {} are in the lake but the topic ends at {high}",
                            span(b)
                        ),
                    );
                }
                if let Some(l) = check.lost {
                    report.problem(
                        "lost",
                        format!("partition {p}"),
                        format!(
                            "offsets {} were deleted from the topic (retention) before the lake had them",
                            span(l)
                        ),
                    );
                }
                if let Some(f) = check.in_flight {
                    in_flight_total += f.1 - f.0 + 1;
                    report.notes.push(format!(
                        "partition {p}: offsets {} not committed to the lake yet (in flight)",
                        span(f)
                    ));
                }
                pr.topic = Some(check);
            }
            Some(None) => report.problem(
                "beyond_topic",
                format!("partition {p}"),
                "the lake holds a partition the topic does not have",
            ),
            None if !filtered => {
                for g in coverage::gaps(&ranges) {
                    report.problem(
                        "gap",
                        format!("partition {p}"),
                        format!("offsets {} are missing between committed ranges", span(g)),
                    );
                }
            }
            None => {}
        }
        report.partitions.insert(p, pr);
    }

    // A row held twice (same partition and offset) is also an id held twice: the overlap
    // problem above names it. Ids beyond that are the same event at different offsets: the
    // topic holds it more than once (a producer retried or replayed it), and the lake, which
    // keeps every record once, does too.
    let replays = dup_copies.saturating_sub(offset_copies);
    if replays > 0 {
        let ex: Vec<String> = dup_examples.iter().map(|i| uuid_text(*i)).collect();
        report.replayed_events = replays;
        report.notes.push(format!(
            "{replays} events are in the topic more than once, at different offsets (replays; ClickHouse keeps one copy), e.g. {}",
            ex.join(", ")
        ));
    }
    if let Some(w) = &watermarks {
        acc.topic_records = w.values().map(|(l, h)| h - l).sum();
        acc.in_flight = in_flight_total;
        let accounted = acc.accounted();
        if acc.older_rows > 0 {
            report.notes.push(format!(
                "{} lake rows are older than the topic's low watermark (retention deleted them from the topic)",
                acc.older_rows
            ));
        }
        if accounted != acc.topic_records && report.problems.is_empty() {
            // Only when nothing more specific (a gap, an overlap) explains it.
            report.problem(
                "accounting",
                format!("topic {}", lake.table()),
                format!(
                    "{} records, but lake rows {} + dead letters {} + offsets without a record {} + in flight {} = {accounted}",
                    acc.topic_records, acc.lake_rows, acc.dead_letters, acc.no_record, acc.in_flight
                ),
            );
        }
        report.accounting = Some(acc);
        report.dead_letters = Some(dead_report);
    }

    if let Some((ch, db)) = &sources.clickhouse {
        let r =
            clickhouse_reconcile(ch, db, &ids, opts, sources.kafka.as_ref(), lake.table()).await?;
        if r.missing > 0 {
            let ids = r.missing_ids.join(", ");
            match r.queue_lag {
                Some(lag) if lag >= r.missing as i64 => report.notes.push(format!(
                    "ClickHouse has not consumed {lag} records yet; {} lake events not there yet (e.g. {ids})",
                    r.missing
                )),
                _ => report.problem(
                    "clickhouse_missing",
                    format!("ClickHouse {}", r.table),
                    format!("{} lake events are missing, e.g. {ids}", r.missing),
                ),
            }
        }
        if r.extra > 0 && in_flight_total >= r.extra as i64 {
            report.notes.push(format!(
                "ClickHouse {}: {} events not in the lake yet, which has {in_flight_total} records in flight",
                r.table, r.extra
            ));
        } else if r.extra > 0 {
            report.problem(
                "clickhouse_extra",
                format!("ClickHouse {}", r.table),
                format!(
                    "{} events are not in the lake, e.g. {}",
                    r.extra,
                    r.extra_ids.join(", ")
                ),
            );
        }
        if r.duplicates_before_merges > 0 {
            report.notes.push(format!(
                "ClickHouse {}: {} extra copies not merged yet (FINAL hides them), e.g. {}",
                r.table,
                r.duplicates_before_merges,
                r.duplicate_ids.join(", ")
            ));
        }
        report.clickhouse = Some(r);
    }

    if let Some(first) = sample_batches.first() {
        match arrow::compute::concat_batches(&first.schema(), &sample_batches) {
            Ok(b) => report.samples = Some(b),
            Err(e) => report.problem("samples", "sample rows", e.to_string()),
        }
    }
    Ok(report)
}

/// One partition's commit markers against the dead-letter topic: every committed range must
/// have exactly its rejected records there, and no lake row may also be a dead letter. Returns
/// how many dead letters fall inside committed ranges.
#[allow(clippy::too_many_arguments)]
fn check_dead_letters(
    report: &mut Report,
    p: i32,
    ranges: &[(Span, u64, Vec<i64>)],
    letters: &BTreeSet<i64>,
    lake_offsets: &[i64],
    topic_exists: bool,
    topic: &str,
    list: usize,
) -> u64 {
    let rejected: u64 = ranges.iter().map(|r| r.1).sum();
    if !topic_exists {
        if rejected > 0 {
            report.problem(
                "dead_letter",
                format!("partition {p}"),
                format!(
                    "the commit markers count {rejected} rejected records, but there is no dead-letter topic `{topic}`"
                ),
            );
        }
        return 0;
    }
    let mut inside = 0u64;
    for ((first, last), count, listed) in ranges {
        let have = letters.range(*first..=*last).count() as u64;
        inside += have;
        if have < *count {
            let absent: Vec<i64> = listed
                .iter()
                .copied()
                .filter(|o| !letters.contains(o))
                .take(list)
                .collect();
            report.problem(
                "dead_letter",
                format!("partition {p}"),
                format!(
                    "offsets {}: the commit marker counts {count} rejected records, the dead-letter topic has {have} (absent e.g. {absent:?})",
                    span((*first, *last))
                ),
            );
        }
    }
    let both: Vec<i64> = lake_offsets
        .iter()
        .copied()
        .filter(|o| letters.contains(o))
        .take(list.max(1))
        .collect();
    if !both.is_empty() {
        report.problem(
            "dead_letter",
            format!("partition {p}"),
            format!("offsets {both:?} are both lake rows and dead letters"),
        );
    }
    inside
}

/// Low and high watermark per partition of `topic`.
/// The topic's identity as the sink writes it into markers (`kafka:CLUSTER/TOPIC#ID`).
async fn topic_identity(cfg: &KafkaConnection, topic: &str) -> Result<String, VerifyError> {
    let (cfg, topic) = (cfg.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || crate::kafka::source_identity(&cfg, &topic))
        .await
        .map_err(|e| VerifyError::Source(e.to_string()))?
        .map_err(|e| VerifyError::Source(e.to_string()))
}

/// Topic ids in the markers' sources that are not the topic's current id (same cluster and
/// name: the topic was deleted and created again).
fn recreated_from(marker_sources: &BTreeSet<String>, current: &str) -> Vec<String> {
    let Some((base, id)) = current.split_once('#') else {
        return Vec::new();
    };
    marker_sources
        .iter()
        .filter_map(|s| s.split_once('#'))
        .filter(|(b, old)| *b == base && *old != id)
        .map(|(_, old)| old.to_string())
        .collect()
}

async fn topic_watermarks(
    cfg: &KafkaConnection,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, VerifyError> {
    let (cfg, topic) = (cfg.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || crate::kafka::watermarks(&cfg, &topic))
        .await
        .map_err(|e| VerifyError::Source(e.to_string()))?
        .map_err(|e| VerifyError::Source(e.to_string()))?
        .ok_or_else(|| VerifyError::Source("the topic does not exist on these brokers".into()))
        .map(|w| {
            w.into_iter()
                .enumerate()
                .map(|(p, lh)| (p as i32, lh))
                .collect()
        })
}

async fn clickhouse_reconcile(
    ch: &ClickHouse,
    db: &str,
    lake_ids: &[u128],
    opts: &VerifyOptions,
    kafka: Option<&KafkaConnection>,
    topic: &str,
) -> Result<ClickHouseReport, VerifyError> {
    let src = |e: crate::clickhouse::ChError| VerifyError::Source(format!("ClickHouse: {e}"));
    let version = ch.version().await.map_err(src)?;
    let dialect = Dialect::for_version(version);
    let qdb = quote_ident(db).map_err(src)?;
    let t = format!("{qdb}.`music_events`");
    let time = |d: NaiveDate| quote_str(&d.format("%Y-%m-%d").to_string());
    let mut conds = Vec::new();
    if let Some(f) = opts.date_from {
        conds.push(format!("toDate(event_time) >= toDate({})", time(f)));
    }
    if let Some(to) = opts.date_to {
        conds.push(format!("toDate(event_time) <= toDate({})", time(to)));
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    let counts = ch
        .query(&format!(
            "SELECT count(), uniqExact(event_id) FROM {t}{filter}"
        ))
        .await
        .map_err(src)?;
    let mut it = counts
        .split_whitespace()
        .map(|n| n.parse::<u64>().unwrap_or(0));
    let (rows, distinct) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    let dups = ch
        .query(&format!(
            "SELECT event_id FROM {t}{filter} GROUP BY event_id HAVING count() > 1 ORDER BY event_id LIMIT {}",
            opts.list
        ))
        .await
        .map_err(src)?;
    let body = ch
        .query(&format!("SELECT DISTINCT event_id FROM {t}{filter}"))
        .await
        .map_err(src)?;
    let mut ch_ids: Vec<u128> = body
        .lines()
        .filter_map(|l| uuid::Uuid::try_parse(l.trim()).ok())
        .map(|u| u.as_u128())
        .collect();
    ch_ids.sort_unstable();
    ch_ids.dedup();
    let ((missing, missing_ids), (extra, extra_ids)) = difference(lake_ids, &ch_ids, opts.list);
    let mut per_partition = BTreeMap::new();
    if dialect == Dialect::Modern {
        let body = ch
            .query(&format!(
                "SELECT kafka_partition, count(), uniqExact(event_id), min(kafka_offset), max(kafka_offset) \
                 FROM {t}{filter} GROUP BY kafka_partition ORDER BY kafka_partition"
            ))
            .await
            .map_err(src)?;
        for l in body.lines() {
            let v: Vec<i64> = l.split('\t').filter_map(|x| x.parse().ok()).collect();
            if let [p, n, d, lo, hi] = v[..] {
                per_partition.insert(p as i32, (n as u64, d as u64, lo, hi));
            }
        }
    }
    // How far ClickHouse's own queue is behind: lake events it lacks may simply not be read yet.
    let mut queue_lag = None;
    if let Some(cfg) = kafka {
        let full = ch
            .query(&format!(
                "SELECT engine_full FROM system.tables WHERE database = {} AND name = 'music_events_queue'",
                quote_str(db)
            ))
            .await
            .map_err(src)?;
        if let Some(group) = queue_group(full.replace("\\'", "'").trim()) {
            let (cfg, topic) = (cfg.clone(), topic.to_string());
            let lag =
                tokio::task::spawn_blocking(move || crate::kafka::group_lag(&cfg, &group, &topic))
                    .await
                    .map_err(|e| VerifyError::Source(e.to_string()))?
                    .map_err(|e| VerifyError::Source(e.to_string()))?;
            queue_lag = lag.map(|parts| parts.iter().map(|p| p.lag()).sum());
        }
    }
    Ok(ClickHouseReport {
        table: format!("{db}.music_events"),
        version: version.to_string(),
        rows,
        distinct,
        duplicates_before_merges: rows.saturating_sub(distinct),
        duplicate_ids: dups.lines().map(|l| l.trim().to_string()).collect(),
        missing,
        missing_ids: missing_ids.into_iter().map(uuid_text).collect(),
        extra,
        extra_ids: extra_ids.into_iter().map(uuid_text).collect(),
        per_partition,
        queue_lag,
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        if !self.partitions.is_empty() {
            writeln!(
                f,
                "\n{:<10}{:>12}{:>12}{:>12}  lake offsets",
                "partition", "rows", "low", "high"
            )?;
            for (p, r) in &self.partitions {
                let (low, high) = r.topic.as_ref().map_or(("-".into(), "-".into()), |c| {
                    (c.low.to_string(), c.high.to_string())
                });
                let mut ranges: Vec<String> = r.ranges.iter().take(4).map(|s| span(*s)).collect();
                if r.ranges.len() > 4 {
                    ranges.push(format!("… ({} runs)", r.ranges.len()));
                }
                writeln!(
                    f,
                    "{p:<10}{:>12}{low:>12}{high:>12}  {}",
                    r.rows,
                    ranges.join(", ")
                )?;
            }
        }
        if let Some(a) = &self.accounting {
            let no_record = if a.no_record > 0 {
                format!(" + offsets without a record {}", a.no_record)
            } else {
                String::new()
            };
            writeln!(
                f,
                "\nKafka: {} records = lake rows {} + dead letters {}{no_record} + in flight {}",
                a.topic_records, a.lake_rows, a.dead_letters, a.in_flight
            )?;
        }
        if let Some(d) = &self.dead_letters
            && d.records > 0
        {
            let reasons: Vec<String> = d.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
            writeln!(
                f,
                "dead-letter topic {}: {} distinct records ({} copies): {}",
                d.topic,
                d.distinct,
                d.records,
                reasons.join(", ")
            )?;
        }
        if let Some(c) = &self.clickhouse {
            writeln!(
                f,
                "\nClickHouse {} ({}): {} rows, {} distinct events; missing {}, not in the lake {}, copies not merged yet {}",
                c.table,
                c.version,
                c.rows,
                c.distinct,
                c.missing,
                c.extra,
                c.duplicates_before_merges
            )?;
            for (p, (n, d, lo, hi)) in &c.per_partition {
                let lake = self.partitions.get(p).map_or(0, |r| r.rows);
                writeln!(
                    f,
                    "  partition {p}: {n} rows, {d} distinct, offsets {lo}-{hi} (lake {lake} rows)"
                )?;
            }
        }
        if let Some(s) = &self.samples {
            let idx: Vec<usize> = SAMPLE_COLUMNS
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
        if !self.notes.is_empty() {
            writeln!(f, "\nnotes:")?;
            for n in &self.notes {
                writeln!(f, "  - {n}")?;
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
                writeln!(f, "  - [{}] {p}", p.kind)?;
            }
            write!(f, "verdict: PROBLEMS ({} found)", self.problems.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recreated_topics_are_told_by_their_ids() {
        let sources: BTreeSet<String> =
            ["kafka:C/t#OLD", "kafka:C/t#NEW", "kafka:C/t", "kafka:D/t#X"]
                .into_iter()
                .map(String::from)
                .collect();
        assert_eq!(recreated_from(&sources, "kafka:C/t#NEW"), ["OLD"]);
        assert!(recreated_from(&sources, "kafka:C/t").is_empty());
    }
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

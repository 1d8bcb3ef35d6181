//! Shared helpers of the integration tests: pipeline configs, reading a lake back with the
//! parquet crate, and `encore verify` of a local lake. `process` runs the encore binary. For
//! the tests against the real stack of `scripts/stack.sh up` (the `stack-tests` feature):
//! `stack` (where it is), `kafka`, `lake` (on its S3) and `clickhouse` (its services), and
//! `checks` (what a run must have done). Every test binary compiles all of them, using some.

#![allow(dead_code)]

pub mod checks;
pub mod clickhouse;
pub mod kafka;
pub mod lake;
pub mod process;
pub mod stack;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type, TimestampMillisecondType};
use encore::config::{ClockMode, RunOptions, SimConfig, SinkConfig};
use encore::lake::{Compression, LakeConfig};
use encore::pipeline::Summary;
use encore::sim::BehaviourConfig;
use encore::sink::FlushPolicy;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;

pub const MIDNIGHT_MINUS_10MIN: i64 = 1_767_225_000_000; // 2025-12-31T23:50:00Z

pub fn sim(events: u64, users: u32, seed: u64) -> SimConfig {
    SimConfig {
        users,
        workers: 2,
        seed,
        tracks: 5_000,
        behaviour: BehaviourConfig::default(),
        clock: ClockMode::MaxRate,
        start_ms: MIDNIGHT_MINUS_10MIN,
        events: Some(events),
        duration: None,
        partitions: 4,
        inject: Default::default(),
        topic: "music_events".into(),
    }
}

pub fn sink(lake: &Path, batch_rows: usize) -> SinkConfig {
    SinkConfig {
        lake: LakeConfig {
            url: lake.display().to_string(),
            ..LakeConfig::default()
        },
        policy: FlushPolicy {
            max_rows: batch_rows,
            max_bytes: 64 << 20,
            max_age: Duration::from_millis(500),
        },
        compression: Compression::default(),
        max_unflushed: 4,
        bus_capacity: 64 << 20,
        restart_budget: 30,
        restart_window: Duration::from_secs(300),
    }
}

pub const QUIET: RunOptions = RunOptions {
    progress: false,
    handle_signals: false,
};

/// Runs the whole pipeline in its own actix system on this thread.
pub fn run(sim: SimConfig, sink: SinkConfig) -> Result<Summary, encore::pipeline::RunError> {
    actix::System::new().block_on(encore::pipeline::run(sim, sink, QUIET))
}

/// One lake row, as far as the tests look at it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub user_id: String,
    pub event_time: i64,
    pub event_id: String,
    pub event_type_id: i8,
    pub track_id: i64,
    pub partition: i32,
    pub offset: i64,
}

/// Every data file of the table: (path relative to the table dir, its batches).
pub fn read_files(lake: &Path) -> Vec<(String, Vec<RecordBatch>)> {
    let table = lake.join("music_events");
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&table)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files {
            let rel = f.strip_prefix(&table).unwrap().display().to_string();
            let file = batches(std::fs::File::open(&f).unwrap(), &rel);
            out.push((rel, file));
        }
    }
    out
}

/// The batches of one Parquet file (`name` says which when it is not readable).
pub fn batches(data: impl ChunkReader + 'static, name: &str) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(data)
        .unwrap_or_else(|e| panic!("{name} is not readable Parquet: {e}"))
        .build()
        .unwrap()
        .map(|b| b.unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

pub fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for b in batches {
        let s = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let (uid, eid) = (s("user_id"), s("event_id"));
        let et = b
            .column_by_name("event_type_id")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int8Type>();
        let tr = b
            .column_by_name("track_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let tm = b
            .column_by_name("event_time")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        let kp = b
            .column_by_name("kafka_partition")
            .unwrap()
            .as_primitive::<Int32Type>();
        let ko = b
            .column_by_name("kafka_offset")
            .unwrap()
            .as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            assert!(!uid.is_null(i) && !eid.is_null(i));
            out.push(Row {
                user_id: uid.value(i).to_string(),
                event_time: tm.value(i),
                event_id: eid.value(i).to_string(),
                event_type_id: et.value(i),
                track_id: tr.value(i),
                partition: kp.value(i),
                offset: ko.value(i),
            });
        }
    }
    out
}

/// All rows of the lake.
pub fn all_rows(lake: &Path) -> Vec<Row> {
    read_files(lake).iter().flat_map(|(_, b)| rows(b)).collect()
}

/// Per partition, the sorted offsets present in the lake.
pub fn offsets_by_partition(rows: &[Row]) -> BTreeMap<i32, Vec<i64>> {
    let mut m: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in rows {
        m.entry(r.partition).or_default().push(r.offset);
    }
    for v in m.values_mut() {
        v.sort_unstable();
    }
    m
}

/// Polls `cond` every 20 ms until it holds or `deadline` passes.
pub fn wait_for(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + deadline;
    while !cond() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A runtime for the async clients the tests call directly.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `encore verify` of a local lake must pass with exactly `rows` rows; returns its report.
pub fn verify_clean(lake: &Path, rows: u64) -> String {
    let out = process::encore()
        .args(["verify", "--lake"])
        .arg(lake)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains(&format!("verdict: CLEAN ({rows} rows")),
        "{report}"
    );
    report
}

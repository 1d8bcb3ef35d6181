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
use encore::event::{EventType, Platform, Profile, SimEvent, WireEvent};
use encore::lake::{Compression, Lake, LakeConfig, PreparedBatch};
use encore::pipeline::Summary;
use encore::sim::BehaviourConfig;
use encore::sink::{FlushPolicy, PartitionBuffer, SourceRecord, prepare};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;

pub const MIDNIGHT_MINUS_10MIN: i64 = 1_767_225_000_000; // 2025-12-31T23:50:00Z
/// 2026-01-01T00:00:00Z.
pub const DAY: i64 = 1_767_225_600_000;

/// The `music_events` table of a lake in a local directory.
pub fn local_lake(dir: &Path) -> Lake {
    let cfg = LakeConfig {
        url: dir.display().to_string(),
        ..Default::default()
    };
    Lake::open(&cfg, "music_events").unwrap()
}

/// Records `first..=last` of `partition` encoded as a batch ready to commit: valid
/// track_playback events, event times from `ts_ms` on (one per ms, so a batch can straddle
/// midnight), ids unique across partitions.
pub fn prepared_batch(partition: i32, first: i64, last: i64, ts_ms: i64) -> PreparedBatch {
    let p = Profile {
        user_id: uuid::Uuid::from_u128(1),
        platform: Platform::Android,
        platform_token: "android-1".into(),
        ipv4: std::net::Ipv4Addr::new(8, 8, 8, 8),
        country: "BR",
        playlists: vec![1],
    };
    let mut buf = PartitionBuffer::new(encore::event::DerivedIds::new("music_events"), partition);
    for off in first..=last {
        let ev = SimEvent {
            event_id: uuid::Uuid::from_u128(off as u128 + 1_000_000 * partition as u128),
            event_type: EventType::TrackPlayback,
            session_id: uuid::Uuid::from_u128(2),
            ts_ms: ts_ms + off - first,
            track_id: 1,
            previous_track_id: None,
            playlist_id: None,
            liked: false,
            position_ms: Some(0),
        };
        let mut v = Vec::new();
        WireEvent::new(&p, &ev).encode_into(&mut v);
        let rec = SourceRecord {
            partition,
            offset: off,
            timestamp_ms: 0,
            key: None,
            value: v.into(),
        };
        buf.push(&rec, std::time::Instant::now())
            .expect("a valid event");
    }
    let props = encore::lake::writer_properties(Default::default());
    prepare(&buf.take().unwrap(), &props).unwrap()
}

pub fn sim(events: u64, users: u32, seed: u64) -> SimConfig {
    SimConfig {
        users,
        workers: 2,
        seed,
        tracks: 5_000,
        behaviour: BehaviourConfig::default(),
        clock: ClockMode::MaxRate,
        start_ms: MIDNIGHT_MINUS_10MIN,
        start_now: false,
        events: Some(events),
        duration: None,
        partitions: 4,
        inject: Default::default(),
        format: Default::default(),
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

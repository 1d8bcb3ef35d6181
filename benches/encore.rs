//! Offline benchmarks of encore's hot paths (no services). Each group reports
//! `Throughput::Elements` (events or rows), with setup outside the measured loop.
//!
//! `cargo bench` runs them all; `cargo bench -- simulation` one group.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use encore::event::{DerivedIds, EventEncoder, WireEvent, WireFormat};
use encore::lake::{Compression, encode, writer_properties};
use encore::sim::{BehaviourConfig, Catalog, Listener};
use encore::sink::{PartitionBuffer, SourceRecord};

const START: i64 = 1_767_225_600_000;
const N: usize = 50_000;

fn listeners(n: u64) -> Vec<Listener> {
    let cat = Arc::new(Catalog::new(100_000, 1).unwrap());
    let cfg = BehaviourConfig::default();
    (0..n)
        .map(|i| Listener::new(i, 7, START, &cfg, cat.clone()))
        .collect()
}

/// N encoded events from 100 listeners.
fn encoded() -> Vec<SourceRecord> {
    let mut ls = listeners(100);
    (0..N)
        .map(|i| {
            let l = &mut ls[i % 100];
            let ev = l.next_event();
            let mut v = Vec::with_capacity(512);
            WireEvent::new(l.profile(), &ev).encode_into(&mut v);
            SourceRecord {
                partition: 0,
                offset: i as i64,
                timestamp_ms: START,
                key: None,
                value: Bytes::from(v),
            }
        })
        .collect()
}

fn simulation(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulation");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("listener_model_1000_listeners", |b| {
        b.iter_batched_ref(
            || listeners(1000),
            |ls| {
                for i in 0..N {
                    std::hint::black_box(ls[i % 1000].next_event());
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn json(c: &mut Criterion) {
    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Elements(N as u64));
    let mut ls = listeners(100);
    let events: Vec<_> = (0..N)
        .map(|i| (i % 100, ls[i % 100].next_event()))
        .collect();
    g.bench_function("encode", |b| {
        let mut buf = Vec::with_capacity(N * 480);
        b.iter(|| {
            buf.clear();
            for (i, ev) in &events {
                WireEvent::new(ls[*i].profile(), ev).encode_into(&mut buf);
            }
            std::hint::black_box(buf.len())
        })
    });
    // What a listener runs: its profile rendered once, each event's own fields written.
    let encoders: Vec<_> = ls
        .iter()
        .map(|l| EventEncoder::new(WireFormat::Encore, l.profile()))
        .collect();
    g.bench_function("encode_listener", |b| {
        let mut buf = Vec::with_capacity(N * 480);
        b.iter(|| {
            buf.clear();
            for (i, ev) in &events {
                encoders[*i].encode(ls[*i].profile(), ev, &mut buf);
            }
            std::hint::black_box(buf.len())
        })
    });
    // Arrow columns built straight from the events (no JSON): the builder's own cost.
    g.bench_function("arrow_build", |b| {
        b.iter(|| {
            let mut builder = encore::lake::schema::EventBatchBuilder::new();
            for (n, (i, ev)) in events.iter().enumerate() {
                builder.push(
                    &WireEvent::new(ls[*i].profile(), ev),
                    encore::lake::schema::SourcePos {
                        partition: 0,
                        offset: n as i64,
                        timestamp_ms: START,
                    },
                );
            }
            std::hint::black_box(builder.finish())
        })
    });
    let recs = encoded();
    g.bench_function("decode", |b| {
        b.iter(|| {
            for r in &recs {
                std::hint::black_box(WireEvent::decode(&r.value).unwrap());
            }
        })
    });
    // The sink's decoder alone (borrowed, no conversion to `WireEvent`), and serde's, which
    // decides whatever the fast one leaves.
    g.bench_function("decode_fast", |b| {
        b.iter(|| {
            for r in &recs {
                std::hint::black_box(encore::event::fast::decode(&r.value).unwrap());
            }
        })
    });
    g.bench_function("decode_serde", |b| {
        b.iter(|| {
            for r in &recs {
                std::hint::black_box(WireEvent::decode_serde(&r.value).unwrap());
            }
        })
    });
    // Arrow columns from what the fast decoder read (decoded outside the loop).
    let flat: Vec<_> = recs
        .iter()
        .map(|r| encore::event::fast::decode(&r.value).unwrap())
        .collect();
    g.bench_function("arrow_build_flat", |b| {
        b.iter(|| {
            let mut builder = encore::lake::schema::EventBatchBuilder::new();
            for (n, ev) in flat.iter().enumerate() {
                builder.push_flat(
                    ev,
                    encore::lake::schema::SourcePos {
                        partition: 0,
                        offset: n as i64,
                        timestamp_ms: START,
                    },
                );
            }
            std::hint::black_box(builder.finish())
        })
    });
    g.finish();
}

fn accumulate_and_parquet(c: &mut Criterion) {
    let recs = encoded();
    let mut g = c.benchmark_group("sink");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("accumulate_decode_to_arrow", |b| {
        b.iter(|| {
            let mut buf = PartitionBuffer::new(DerivedIds::new("music_events"), 0);
            let now = Instant::now();
            for r in &recs {
                buf.push(r, now).expect("a valid event");
            }
            std::hint::black_box(buf.take().unwrap())
        })
    });
    let mut buf = PartitionBuffer::new(DerivedIds::new("music_events"), 0);
    for r in &recs {
        buf.push(r, Instant::now()).expect("a valid event");
    }
    let batch = buf.take().unwrap();
    let rb = &batch.parts[0].1;
    for (name, codec) in [
        ("parquet_zstd1", Compression::Zstd(1)),
        ("parquet_zstd3", Compression::Zstd(3)),
        ("parquet_snappy", Compression::Snappy),
        ("parquet_lz4", Compression::Lz4),
    ] {
        let props = writer_properties(codec);
        let size = encode(rb, &props).unwrap().len();
        eprintln!("{name}: {size} bytes for {} rows", rb.num_rows());
        g.bench_function(name, |b| {
            b.iter(|| std::hint::black_box(encode(rb, &props).unwrap()))
        });
    }
    g.finish();
}

/// Object naming: a data file's name and path from its range, and parsing a name back (what
/// recovery and verify do for every listed object).
fn naming(c: &mut Criterion) {
    use encore::lake::{Range, data_file_name, parse_data_file_name};
    let mut g = c.benchmark_group("naming");
    let n = 10_000u64;
    g.throughput(Throughput::Elements(n));
    let ranges: Vec<Range> = (0..n as i64)
        .map(|i| Range {
            partition: (i % 12) as i32,
            first: i * 50_000,
            last: i * 50_000 + 49_999,
        })
        .collect();
    g.bench_function("data_file_name", |b| {
        b.iter(|| {
            for r in &ranges {
                std::hint::black_box(data_file_name(r, 7));
            }
        })
    });
    let names: Vec<String> = ranges.iter().map(|r| data_file_name(r, 7)).collect();
    g.bench_function("parse_data_file_name", |b| {
        b.iter(|| {
            for name in &names {
                std::hint::black_box(parse_data_file_name(name).unwrap());
            }
        })
    });
    g.finish();
}

/// Runs the in-process pipeline at max rate into a lake at `dir`; returns the rows written.
fn write_lake(dir: &std::path::Path, users: u32, seed: u64, events: u64) -> u64 {
    let sim = encore::config::SimConfig {
        users,
        workers: 2,
        seed,
        tracks: 100_000,
        behaviour: BehaviourConfig::default(),
        clock: encore::config::ClockMode::MaxRate,
        start_ms: START,
        start_now: false,
        events: Some(events),
        duration: None,
        partitions: 6,
        topic: "music_events".into(),
        inject: Default::default(),
        format: Default::default(),
    };
    let sink = encore::config::SinkConfig {
        lake: encore::lake::LakeConfig {
            url: dir.display().to_string(),
            ..Default::default()
        },
        policy: encore::sink::FlushPolicy::default(),
        compression: Compression::default(),
        max_unflushed: 8,
        bus_capacity: 128 << 20,
        restart_budget: 0,
        restart_window: Duration::from_secs(60),
    };
    let opts = encore::config::RunOptions {
        progress: false,
        handle_signals: false,
    };
    actix::System::new()
        .block_on(encore::pipeline::run(sim, sink, opts))
        .unwrap()
        .rows
}

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    let events = 200_000u64;
    g.throughput(Throughput::Elements(events));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    // The second has ten times the listeners, so that the max-rate ticks' cost per listener
    // (the conductor's window of Advance requests and their replies) shows.
    for (name, users) in [
        ("in_process_max_rate_200k", 1000),
        ("in_process_max_rate_200k_10k_listeners", 10_000),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |dir| {
                    assert_eq!(write_lake(dir.path(), users, 1, events), events);
                    dir
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// A lake of `ENCORE_BENCH_VERIFY_ROWS` rows (default 10 million) written once by the
/// in-process pipeline, then `encore verify`'s scan of it next to a full decode of every
/// column of every file (the baseline: what a naive check would read).
fn verify(c: &mut Criterion) {
    let rows: u64 = std::env::var("ENCORE_BENCH_VERIFY_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    assert_eq!(write_lake(dir.path(), 10_000, 3, rows), rows);
    eprintln!(
        "verify bench: wrote a {rows}-row lake in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let lake = encore::lake::Lake::open(
        &encore::lake::LakeConfig {
            url: dir.path().display().to_string(),
            ..Default::default()
        },
        "music_events",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(rows));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(60));
    g.bench_function("verify_lake", |b| {
        b.iter(|| {
            let r = rt
                .block_on(encore::verify::verify(
                    &lake,
                    &encore::verify::VerifyOptions::default(),
                    &encore::verify::Sources::default(),
                ))
                .unwrap();
            assert!(r.is_clean() && r.rows == rows, "{r}");
        })
    });
    g.bench_function("full_decode_baseline", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for date in std::fs::read_dir(dir.path().join("music_events")).unwrap() {
                let date = date.unwrap().path();
                if date.file_name().unwrap().to_string_lossy().starts_with('_') {
                    continue;
                }
                for f in std::fs::read_dir(&date).unwrap() {
                    let file = std::fs::File::open(f.unwrap().path()).unwrap();
                    let reader =
                        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                            file,
                        )
                        .unwrap()
                        .with_batch_size(65536)
                        .build()
                        .unwrap();
                    for b in reader {
                        n += b.unwrap().num_rows() as u64;
                    }
                }
            }
            assert_eq!(n, rows);
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    simulation,
    json,
    accumulate_and_parquet,
    naming,
    pipeline,
    verify
);
criterion_main!(benches);

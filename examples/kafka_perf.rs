//! encore's Kafka stages next to bare rdkafka clients, on the same broker, in one run.
//!
//!     cargo build --release && cargo run --release --example kafka_perf -- [EVENTS] [REPS]
//!
//! Needs the stack (`scripts/stack.sh up`; addresses from `scripts/stack.sh env` or defaults).
//! Each repetition, on fresh topics:
//!   1. encore publish: `encore simulate --brokers … --max-rate` of EVENTS events (process);
//!   2. bare consumer: a BaseConsumer reads that topic to its end, keeping every record;
//!   3. bare producer: a ThreadedProducer with encore's settings (idempotent, acks=all, lz4,
//!      linger 10 ms, 1 MB batches) sends those same records to a second topic, then flushes;
//!   4. encore sink: `encore sink --flush-interval 1s` reads the first topic into a new S3 lake
//!      until its commit markers reach the end of every partition (process start, group join
//!      and the last flush included).
//!
//! Prints events/s per stage (medians over REPS, default 3) and the median of the per-repetition
//! ratios.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use encore::kafka::{KafkaConfig, ensure_topic};
use encore::lake::{Lake, LakeConfig};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

const PARTITIONS: u32 = 6;

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.into())
}

fn encore_bin() -> std::path::PathBuf {
    // target/release/examples/kafka_perf → target/release/encore
    let exe = std::env::current_exe().expect("own path");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("encore"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release` first",
        bin.display()
    );
    bin
}

fn stamp() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}-{}", t.as_secs(), t.subsec_micros())
}

struct Rep {
    publish: f64,
    bare_consume: f64,
    bare_produce: f64,
    sink: f64,
}

fn encore_publish(brokers: &str, topic: &str, events: u64) -> f64 {
    let t0 = Instant::now();
    let out = Command::new(encore_bin())
        .args([
            "simulate",
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--max-rate",
        ])
        .args([
            "--users",
            "10000",
            "--events",
            &events.to_string(),
            "--no-progress",
        ])
        .stdout(Stdio::null())
        .output()
        .expect("encore simulate");
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "encore simulate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    events as f64 / secs
}

/// Records as (key, value).
type Kept = Vec<(Vec<u8>, Vec<u8>)>;

fn bare_consume(brokers: &str, topic: &str, events: u64) -> (f64, Kept) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bare-{}", stamp()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    let t0 = Instant::now();
    c.assign(&tpl).expect("assign");
    let mut kept = Vec::with_capacity(events as usize);
    while (kept.len() as u64) < events {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => kept.push((
                m.key().unwrap_or_default().to_vec(),
                m.payload().unwrap_or_default().to_vec(),
            )),
            Some(Err(e)) => panic!("bare consumer: {e}"),
            None => assert!(
                t0.elapsed() < Duration::from_secs(600),
                "bare consumer stalled"
            ),
        }
    }
    (events as f64 / t0.elapsed().as_secs_f64(), kept)
}

fn bare_produce(brokers: &str, topic: &str, records: &[(Vec<u8>, Vec<u8>)]) -> f64 {
    let p: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("compression.type", "lz4")
        .set("linger.ms", "10")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "10000")
        .create()
        .expect("producer");
    let t0 = Instant::now();
    for (k, v) in records {
        let mut rec = BaseRecord::to(topic).key(&k[..]).payload(&v[..]);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    // Queue full: wait for deliveries, like encore does.
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    p.flush(Duration::from_secs(600)).expect("flush");
    records.len() as f64 / t0.elapsed().as_secs_f64()
}

fn encore_sink(brokers: &str, s3: &str, topic: &str, events: u64) -> f64 {
    let bucket = format!("perf-{}", stamp()).replace('.', "-");
    let url = format!("s3://{bucket}/lake");
    let t0 = Instant::now();
    let mut child = Command::new(encore_bin())
        .args([
            "sink",
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--group",
            &bucket,
        ])
        .args(["--lake", &url, "--s3-endpoint", s3, "--no-progress"])
        // The tail of the run waits for the age trigger; 1 s keeps that from dominating.
        .args(["--flush-interval", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("encore sink");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cfg = LakeConfig {
        url: url.clone(),
        s3_endpoint: Some(s3.to_string()),
        s3_region: Some("us-east-1".into()),
        s3_access_key: Some(var("AWS_ACCESS_KEY_ID", "minioadmin")),
        s3_secret_key: Some(var("AWS_SECRET_ACCESS_KEY", "minioadmin")),
    };
    let lake = Lake::open(&cfg, topic).expect("lake");
    let secs = loop {
        let mut done = 0u64;
        for p in 0..PARTITIONS as i32 {
            if let Ok(r) = rt.block_on(lake.committed_ranges(p)) {
                done += r.iter().map(|r| r.len()).sum::<u64>();
            }
        }
        if done >= events {
            break t0.elapsed().as_secs_f64();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "encore sink exited early"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "encore sink stalled"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    events as f64 / secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events: u64 = args.get(1).map_or(500_000, |a| a.parse().expect("EVENTS"));
    let reps: usize = args.get(2).map_or(3, |a| a.parse().expect("REPS"));
    let brokers = var("ENCORE_BROKERS", "127.0.0.1:9092");
    let s3 = var("ENCORE_S3_ENDPOINT", "http://127.0.0.1:9000");
    let cfg = KafkaConfig {
        brokers: brokers.clone(),
        extra: Vec::new(),
        connect_timeout: Duration::from_secs(10),
    };
    let mut runs = Vec::new();
    for rep in 1..=reps {
        let id = stamp();
        let (enc_topic, bare_topic) = (format!("perf-enc-{id}"), format!("perf-bare-{id}"));
        for t in [&enc_topic, &bare_topic] {
            ensure_topic(&cfg, t, PARTITIONS, 1).expect("creating a topic");
        }
        let publish = encore_publish(&brokers, &enc_topic, events);
        let (bare_consume, records) = bare_consume(&brokers, &enc_topic, events);
        let bare_produce = bare_produce(&brokers, &bare_topic, &records);
        drop(records);
        let sink = encore_sink(&brokers, &s3, &enc_topic, events);
        eprintln!(
            "rep {rep}: publish {publish:.0}/s, bare producer {bare_produce:.0}/s, \
             sink {sink:.0}/s, bare consumer {bare_consume:.0}/s"
        );
        runs.push(Rep {
            publish,
            bare_consume,
            bare_produce,
            sink,
        });
    }
    let m = |f: fn(&Rep) -> f64| median(runs.iter().map(f).collect());
    let (publish, bare_p, sink, bare_c) = (
        m(|r| r.publish),
        m(|r| r.bare_produce),
        m(|r| r.sink),
        m(|r| r.bare_consume),
    );
    println!("{events} events × {reps} repetitions, medians (events/s), broker {brokers}");
    println!(
        "  {:<34}{:>12}",
        "bare rdkafka producer",
        format!("{bare_p:.0}")
    );
    // Ratios per repetition (both sides measured minutes apart at most), then their median.
    let pub_ratio = m(|r| r.publish / r.bare_produce);
    let sink_ratio = m(|r| r.sink / r.bare_consume);
    println!(
        "  {:<34}{:>12}   {pub_ratio:.2}× the bare producer (target ≥ 0.9×)",
        "encore publish (simulate --brokers)",
        format!("{publish:.0}"),
    );
    println!(
        "  {:<34}{:>12}",
        "bare rdkafka consumer",
        format!("{bare_c:.0}")
    );
    println!(
        "  {:<34}{:>12}   {sink_ratio:.2}× the bare consumer (target ≥ 0.8×)",
        "encore sink (Kafka → Parquet on S3)",
        format!("{sink:.0}"),
    );
}

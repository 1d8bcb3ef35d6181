//! encore's Kafka stages next to bare rdkafka clients, on the same broker, in one run.
//!
//!     cargo build --release && cargo run --release --example kafka_perf -- [EVENTS] [REPS] [LATENCY_SECS]
//!
//! Needs the stack (`scripts/stack.sh up`; addresses from `scripts/stack.sh env` or defaults).
//! Each repetition, on fresh topics:
//!   1. encore publish: `encore simulate --brokers … --max-rate` of EVENTS events (process);
//!   2. bare consumer: a BaseConsumer reads that topic to its end, assigned its partitions
//!      (timed from the assignment: the target's baseline), then again as a new group's member
//!      (timed from its creation, group join included, as the sink pays it); then, untimed,
//!      once more keeping every record for step 3;
//!   3. bare producer: a ThreadedProducer with encore's settings (idempotent, acks=all, lz4,
//!      linger 10 ms, 1 MB batches) sends those same records to a second topic, then flushes
//!      (timed from when it has its producer id);
//!   4. encore sink: `encore sink --exit-at-end` reads the first topic into a new S3 lake and
//!      exits (process start, group join and the last flush included); its committed offset
//!      ranges must then cover every record.
//!
//! Then, once, the latency stage: `encore run --brokers … --lake s3://…` in realtime (speed 1)
//! at about half the sink's measured rate for LATENCY_SECS (default 60), and from the lake
//! itself, per row, the time from its event time to the commit of its file (the marker's
//! commit time): p50 / p99 / max.
//!
//! Prints events/s and MB/s per stage (medians over REPS, default 3), the median of the
//! per-repetition ratios, each stage's CPU per million records (the client's own, and the
//! broker's and S3 server's, read from the stack's pid files), the cores they kept busy, the
//! rate that CPU allows on this machine's cores, and the peak RSS of encore's processes
//! (VmHWM, polled).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use encore::kafka::{KafkaConnection, ensure_topic};
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

/// An `encore` child: quiet, and without ClickHouse (the stack's env enables it; the harness
/// measures Kafka and S3).
fn encore() -> Command {
    let mut c = Command::new(encore_bin());
    c.env_remove("ENCORE_CLICKHOUSE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// `encore run --brokers` into a fresh topic and S3 lake named after `what`; (command, topic,
/// lake URL).
fn run_to_s3(brokers: &str, s3: &str, what: &str) -> (Command, String, String) {
    let id = stamp().replace('.', "-");
    let (topic, url) = (
        format!("perf-{what}-{id}"),
        format!("s3://perf-{what}-{id}/lake"),
    );
    let mut c = encore();
    c.args([
        "run",
        "--brokers",
        brokers,
        "--topic",
        &topic,
        "--group",
        &topic,
    ])
    .args(["--lake", &url, "--s3-endpoint", s3, "--no-progress"]);
    (c, topic, url)
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
    /// The bare consumer as a group member, timed with its join.
    bare_group: f64,
    bare_produce: f64,
    sink: f64,
    /// Mean record size (key + value), bytes.
    record_bytes: f64,
    publish_rss_kb: u64,
    sink_rss_kb: u64,
    cpu: Cpu,
}

/// What each stage cost in CPU (see [`Load`]).
struct Cpu {
    publish: Load,
    bare_produce: Load,
    sink: Load,
    bare_consume: Load,
}

/// One stage's CPU (user + system) per million records: the client's own process (what the
/// stage costs besides the rest of the machine), the stack's (the broker and the S3 server
/// serving it, when their pids are known), and the cores both kept busy on average.
#[derive(Clone, Copy)]
struct Load {
    own: f64,
    stack: Option<f64>,
    cores: Option<f64>,
}

/// CPU and wall clock from a stage's start.
struct Meter {
    t0: Instant,
    own: (f64, f64),
    stack: Option<f64>,
}

impl Meter {
    fn start() -> Self {
        Meter {
            t0: Instant::now(),
            own: cpu_secs(),
            stack: stack_cpu_secs(),
        }
    }

    /// The stage's [`Load`] over `records`: `child` counts the children waited for since the
    /// start (an `encore` process) instead of this process.
    fn stop(&self, child: bool, records: u64) -> Load {
        let wall = self.t0.elapsed().as_secs_f64();
        let now = cpu_secs();
        let own = if child {
            now.1 - self.own.1
        } else {
            now.0 - self.own.0
        };
        let stack = match (self.stack, stack_cpu_secs()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let per_million = |s: f64| s * 1e6 / records as f64;
        Load {
            own: per_million(own),
            stack: stack.map(per_million),
            cores: stack.map(|st| (own + st) / wall),
        }
    }
}

/// The peak resident set of a running process (VmHWM), in KiB.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU seconds (user + system) so far of a process (all its threads: librdkafka's too) and
/// of its children waited for, from /proc/PID/stat in Linux's clock ticks (1/100 s).
fn proc_cpu_secs(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (which may hold spaces): state, then fields 4…; utime is 14.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<i64> = rest
        .split(' ')
        .skip(11)
        .take(4)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    Some(((f[0] + f[1]) as f64 / 100.0, (f[2] + f[3]) as f64 / 100.0))
}

/// [`proc_cpu_secs`] of this process.
fn cpu_secs() -> (f64, f64) {
    proc_cpu_secs("self").expect("/proc/self/stat")
}

/// The processes of `scripts/stack.sh` that serve a stage: the broker and the S3 server, from
/// the stack's pid files (ClickHouse is left out: the harness does not use it).
fn stack_pids() -> Vec<String> {
    let dir = std::env::var("ENCORE_STACK_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| format!("{}/.cache/encore/stack", var("HOME", "/root")));
    ["kafka", "s3s-fs"]
        .iter()
        .filter_map(|svc| std::fs::read_to_string(format!("{dir}/pids/{svc}.pid")).ok())
        .map(|pid| pid.trim().to_string())
        .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        .collect()
}

/// CPU seconds so far of the broker and the S3 server together; None unless both are known
/// (a stack started some other way has no pid files here).
fn stack_cpu_secs() -> Option<f64> {
    let pids = stack_pids();
    if pids.len() < 2 {
        return None;
    }
    pids.iter()
        .map(|p| proc_cpu_secs(p).map(|c| c.0))
        .sum::<Option<f64>>()
}

/// Waits for `child`, polling its peak RSS; (exit status, peak RSS KiB).
fn wait_with_rss(child: &mut std::process::Child) -> (std::process::ExitStatus, u64) {
    let mut peak = 0;
    loop {
        if let Some(kb) = peak_rss_kb(child.id()) {
            peak = peak.max(kb);
        }
        if let Some(st) = child.try_wait().expect("waiting for encore") {
            return (st, peak);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn encore_publish(brokers: &str, topic: &str, events: u64) -> (f64, u64, Load) {
    let meter = Meter::start();
    let mut child = encore()
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
        .spawn()
        .expect("encore simulate");
    let (status, rss) = wait_with_rss(&mut child);
    let secs = meter.t0.elapsed().as_secs_f64();
    let load = meter.stop(true, events);
    assert!(status.success(), "encore simulate failed: {status}");
    (events as f64 / secs, rss, load)
}

/// Records as (key, value).
type Kept = Vec<(Vec<u8>, Vec<u8>)>;

/// How the bare consumer gets its partitions.
#[derive(Clone, Copy, PartialEq)]
enum Join {
    /// `assign` from the beginning, timed from the assignment (no group protocol).
    Assign,
    /// `subscribe` as a new group's only member, timed from the client's creation: the
    /// group join a sink pays too.
    Group,
}

/// Reads `topic` to its end; (records/s, the records when `keep`). Timed runs do not keep
/// them: copying 1 M records into the heap is not a bare consumer's work and would flatter
/// encore's ratio.
fn bare_consume(
    brokers: &str,
    topic: &str,
    events: u64,
    join: Join,
    keep: bool,
) -> (f64, Kept, Load) {
    // CPU counts from the client's creation, as a sink's counts its whole process; the
    // assigned read's rate counts from `assign` (the broker's pace, the baseline).
    let meter = Meter::start();
    let t_create = meter.t0;
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bare-{}", stamp()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let t0 = match join {
        Join::Assign => {
            let mut tpl = TopicPartitionList::new();
            for p in 0..PARTITIONS as i32 {
                tpl.add_partition_offset(topic, p, Offset::Beginning)
                    .unwrap();
            }
            let t0 = Instant::now();
            c.assign(&tpl).expect("assign");
            t0
        }
        Join::Group => {
            c.subscribe(&[topic]).expect("subscribe");
            t_create
        }
    };
    let mut kept = Vec::with_capacity(if keep { events as usize } else { 0 });
    let (mut seen, mut bytes) = (0u64, 0usize);
    while seen < events {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                seen += 1;
                let (k, v) = (m.key().unwrap_or_default(), m.payload().unwrap_or_default());
                bytes += k.len() + v.len();
                if keep {
                    kept.push((k.to_vec(), v.to_vec()));
                }
            }
            Some(Err(e)) => panic!("bare consumer: {e}"),
            None => assert!(
                t0.elapsed() < Duration::from_secs(600),
                "bare consumer stalled"
            ),
        }
    }
    let rate = events as f64 / t0.elapsed().as_secs_f64();
    let load = meter.stop(false, events);
    assert!(bytes > 0, "the topic holds records");
    (rate, kept, load)
}

fn bare_produce(brokers: &str, topic: &str, records: &[(Vec<u8>, Vec<u8>)]) -> (f64, Load) {
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
    // Timed once it has its producer id, at the broker's pace: an idempotent producer asks on
    // a 500 ms timer or when metadata arrives (see `KafkaProducer::request_id_now`).
    for _ in 0..2 {
        p.client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
    }
    let meter = Meter::start();
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
    // librdkafka's flush itself, as encore's producer calls it: rust-rdkafka's `flush` can
    // oversleep its polling thread's delivery reports by up to 100 ms.
    // SAFETY: the producer's own handle, alive for the call.
    let code = unsafe { rdkafka::bindings::rd_kafka_flush(p.client().native_ptr(), 600_000) };
    assert_eq!(
        code,
        rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
        "flush"
    );
    let rate = records.len() as f64 / meter.t0.elapsed().as_secs_f64();
    (rate, meter.stop(false, records.len() as u64))
}

fn encore_sink(brokers: &str, s3: &str, topic: &str, events: u64) -> (f64, u64, Load) {
    let bucket = format!("perf-{}", stamp()).replace('.', "-");
    let url = format!("s3://{bucket}/lake");
    // A backfill, as a user runs one: the whole process, from start to its last commit
    // (the drain at the topic's end flushes what is left), like `encore publish` above.
    let meter = Meter::start();
    let mut child = encore()
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
        .arg("--exit-at-end")
        .spawn()
        .expect("encore sink");
    let (status, rss) = wait_with_rss(&mut child);
    let secs = meter.t0.elapsed().as_secs_f64();
    let cpu = meter.stop(true, events);
    assert!(status.success(), "encore sink failed: {status}");
    // Counted after the clock stops: the lake must hold every record, exactly once.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lake = Lake::open(&lake_config(s3, &url), topic).expect("lake");
    let mut done = 0u64;
    for p in 0..PARTITIONS as i32 {
        let r = rt
            .block_on(lake.committed_ranges(p))
            .expect("committed ranges");
        done += r.iter().map(|r| r.len()).sum::<u64>();
    }
    assert_eq!(done, events, "rows committed to the lake");
    (events as f64 / secs, rss, cpu)
}

fn lake_config(s3: &str, url: &str) -> LakeConfig {
    LakeConfig {
        url: url.to_string(),
        s3_endpoint: Some(s3.to_string()),
        s3_region: Some("us-east-1".into()),
        s3_access_key: Some(var("AWS_ACCESS_KEY_ID", "minioadmin")),
        s3_secret_key: Some(var("AWS_SECRET_ACCESS_KEY", "minioadmin")),
    }
}

/// Event time → commit of the row's file, per row of the lake: sorted milliseconds.
fn lake_latencies(lake: &Lake) -> Vec<i64> {
    use arrow::array::AsArray;
    use arrow::datatypes::TimestampMillisecondType;
    use futures::TryStreamExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        for p in lake.committed_partitions().await.expect("partitions") {
            for r in lake.committed_ranges(p).await.expect("ranges") {
                let m = lake.read_marker(&r).await.expect("marker");
                for f in &m.files {
                    let path =
                        object_store::path::Path::from(format!("{}/{}", lake.root(), f.path));
                    let meta = lake.store().head(&path).await.expect("data file");
                    let reader = parquet::arrow::async_reader::ParquetObjectReader::new(
                        lake.store().clone(),
                        path,
                    )
                    .with_file_size(meta.size);
                    let builder = parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader)
                        .await
                        .unwrap();
                    let idx = builder.schema().index_of("event_time").unwrap();
                    let mask =
                        parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [idx]);
                    let mut stream = builder.with_projection(mask).build().unwrap();
                    while let Some(b) = stream.try_next().await.unwrap() {
                        let t = b.column(0).as_primitive::<TimestampMillisecondType>();
                        out.extend(t.values().iter().map(|et| m.committed_at_ms - et));
                    }
                }
            }
        }
        out.sort_unstable();
        out
    })
}

/// `encore run --brokers --max-rate` of `events`: the whole pipeline's maximum rate through this
/// broker (publishing and consuming share it).
fn pipeline_max_rate(brokers: &str, s3: &str, events: u64) -> f64 {
    let (mut cmd, _, _) = run_to_s3(brokers, s3, "max");
    let t0 = Instant::now();
    let st = cmd
        .args([
            "--max-rate",
            "--users",
            "10000",
            "--events",
            &events.to_string(),
        ])
        .status()
        .expect("encore run");
    assert!(st.success(), "encore run --max-rate failed: {st}");
    events as f64 / t0.elapsed().as_secs_f64()
}

/// `encore run` in realtime at about `rate` events/s for `secs`; (events/s achieved,
/// sorted latencies in ms, peak RSS KiB).
fn latency_run(brokers: &str, s3: &str, rate: f64, secs: u64) -> (f64, Vec<i64>, u64) {
    // A listener in a session acts every --event-gap on average, but spends part of its time
    // between sessions: about 1.5 listeners per event/s at a 1 s gap (the achieved rate is
    // measured and printed).
    let users = ((rate * 1.5) as u64).max(100);
    let (mut cmd, topic, url) = run_to_s3(brokers, s3, "lat");
    let mut child = cmd
        .args(["--users", &users.to_string(), "--event-gap", "1s"])
        .args(["--duration", &format!("{secs}s"), "--flush-interval", "5s"])
        .spawn()
        .expect("encore run");
    let (status, rss) = wait_with_rss(&mut child);
    assert!(status.success(), "encore run (latency) failed: {status}");
    let lake = Lake::open(&lake_config(s3, &url), &topic).expect("lake");
    let lat = lake_latencies(&lake);
    (lat.len() as f64 / secs as f64, lat, rss)
}

/// Seconds, or `?` when unknown.
fn show(secs: Option<f64>) -> String {
    secs.map_or("?".into(), |s| format!("{s:.2} s"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events: u64 = args.get(1).map_or(500_000, |a| a.parse().expect("EVENTS"));
    let reps: usize = args.get(2).map_or(3, |a| a.parse().expect("REPS"));
    let latency_secs: u64 = args.get(3).map_or(60, |a| a.parse().expect("LATENCY_SECS"));
    let brokers = var("ENCORE_BROKERS", "127.0.0.1:9092");
    let s3 = var("ENCORE_S3_ENDPOINT", "http://127.0.0.1:9000");
    let cfg = KafkaConnection {
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
        let (publish, publish_rss_kb, publish_cpu) = encore_publish(&brokers, &enc_topic, events);
        let (bare_read, _, bare_consume_cpu) =
            bare_consume(&brokers, &enc_topic, events, Join::Assign, false);
        let (bare_group, _, _) = bare_consume(&brokers, &enc_topic, events, Join::Group, false);
        // The bare producer's input, read again outside any measurement.
        let (_, records, _) = bare_consume(&brokers, &enc_topic, events, Join::Assign, true);
        let record_bytes = records
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as f64)
            .sum::<f64>()
            / records.len().max(1) as f64;
        let (bare_produce, bare_produce_cpu) = bare_produce(&brokers, &bare_topic, &records);
        drop(records);
        let (sink, sink_rss_kb, sink_cpu) = encore_sink(&brokers, &s3, &enc_topic, events);
        eprintln!(
            "rep {rep}: publish {publish:.0}/s, bare producer {bare_produce:.0}/s, \
             sink {sink:.0}/s, bare consumer {bare_read:.0}/s (in a group {bare_group:.0}/s); \
             stack CPU per million: {}, {}, {}, {}",
            show(publish_cpu.stack),
            show(bare_produce_cpu.stack),
            show(sink_cpu.stack),
            show(bare_consume_cpu.stack),
        );
        runs.push(Rep {
            publish,
            bare_consume: bare_read,
            bare_group,
            bare_produce,
            sink,
            cpu: Cpu {
                publish: publish_cpu,
                bare_produce: bare_produce_cpu,
                sink: sink_cpu,
                bare_consume: bare_consume_cpu,
            },
            record_bytes,
            publish_rss_kb,
            sink_rss_kb,
        });
    }
    if reps > 0 {
        report(&runs, events, reps, &brokers);
    }
    if latency_secs > 0 {
        let max = pipeline_max_rate(&brokers, &s3, 300_000);
        let target_rate = max / 2.0;
        let (rate, lat, rss_kb) = latency_run(&brokers, &s3, target_rate, latency_secs);
        let pct = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
        println!(
            "latency, realtime `encore run --brokers` for {latency_secs}s at {rate:.0} events/s \
             (half of `encore run --brokers --max-rate`: {max:.0}/s), flush interval 5s, {} rows:",
            lat.len()
        );
        if lat.is_empty() {
            println!("  no rows reached the lake");
        } else {
            println!(
                "  event time → committed in the lake: p50 {:.2}s, p99 {:.2}s, max {:.2}s \
                 (target p99 ≤ 5.5s, the flush interval + 0.5 s); peak RSS {:.0} MB",
                pct(0.5),
                pct(0.99),
                pct(1.0),
                rss_kb as f64 / 1024.0
            );
        }
    }
}

fn report(runs: &[Rep], events: u64, reps: usize, brokers: &str) {
    let m = |f: fn(&Rep) -> f64| median(runs.iter().map(f).collect());
    let (publish, bare_p, sink, bare_c) = (
        m(|r| r.publish),
        m(|r| r.bare_produce),
        m(|r| r.sink),
        m(|r| r.bare_consume),
    );
    let bytes = m(|r| r.record_bytes);
    let mb = |eps: f64| eps * bytes / 1e6;
    println!(
        "{events} events × {reps} repetitions, medians, broker {brokers}, {bytes:.0} bytes/record"
    );
    println!("  {:<36}{:>10}{:>9}", "stage", "events/s", "MB/s");
    println!(
        "  {:<36}{:>10.0}{:>9.1}",
        "bare rdkafka producer",
        bare_p,
        mb(bare_p)
    );
    // Ratios per repetition (both sides measured minutes apart at most), then their median.
    let pub_ratio = m(|r| r.publish / r.bare_produce);
    let sink_ratio = m(|r| r.sink / r.bare_consume);
    let group_ratio = m(|r| r.sink / r.bare_group);
    println!(
        "  {:<36}{:>10.0}{:>9.1}   {pub_ratio:.2}× the bare producer (target ≥ 0.9×)",
        "encore publish (simulate --brokers)",
        publish,
        mb(publish)
    );
    println!(
        "  {:<36}{:>10.0}{:>9.1}",
        "bare rdkafka consumer",
        bare_c,
        mb(bare_c)
    );
    let bare_g = m(|r| r.bare_group);
    println!(
        "  {:<36}{:>10.0}{:>9.1}",
        "bare rdkafka consumer, group join",
        bare_g,
        mb(bare_g)
    );
    println!(
        "  {:<36}{:>10.0}{:>9.1}   {sink_ratio:.2}× the bare consumer (target ≥ 0.9×), \
         {group_ratio:.2}× the one that joins a group",
        "encore sink (Kafka → Parquet on S3)",
        sink,
        mb(sink)
    );
    cpu_report(runs, (bare_p, bare_c));
    let rss = |f: fn(&Rep) -> u64| runs.iter().map(f).max().unwrap_or(0) as f64 / 1024.0;
    println!(
        "  peak RSS: encore simulate {:.0} MB, encore sink {:.0} MB",
        rss(|r| r.publish_rss_kb),
        rss(|r| r.sink_rss_kb)
    );
}

/// Each stage's CPU per million records (medians), and the most encore's stages could do at
/// that cost: every core busy, a record costing the machine what it costs the client and the
/// stack. `bare`: the bare producer's and consumer's rates, to put those ceilings against.
fn cpu_report(runs: &[Rep], bare: (f64, f64)) {
    let loads = |f: fn(&Cpu) -> Load| runs.iter().map(|r| f(&r.cpu)).collect::<Vec<_>>();
    let stages = [
        ("encore publish", loads(|c| c.publish)),
        ("bare producer", loads(|c| c.bare_produce)),
        ("encore sink", loads(|c| c.sink)),
        ("bare consumer", loads(|c| c.bare_consume)),
    ];
    println!(
        "  CPU per million records (user + system, medians): own + the stack's (broker, S3 \
         server), cores busy"
    );
    let mut total = Vec::new();
    for (name, l) in stages {
        let o = median(l.iter().map(|l| l.own).collect());
        let opt = |g: fn(&Load) -> Option<f64>| l.iter().map(g).collect::<Option<_>>().map(median);
        let (st, cores) = (opt(|l| l.stack), opt(|l| l.cores));
        match (st, cores) {
            (Some(st), Some(cores)) => {
                println!(
                    "    {name:<16}{o:>6.2} s + {st:.2} s = {:.2} s   {cores:.1} cores",
                    o + st
                );
                total.push(Some(o + st));
            }
            _ => {
                println!("    {name:<16}{o:>6.2} s (the stack's share unknown: no pid files)");
                total.push(None);
            }
        }
    }
    if let [Some(p), _, Some(s), _] = total[..] {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let (ceil_p, ceil_s) = (cores * 1e6 / p, cores * 1e6 / s);
        println!(
            "  at that CPU per record, {cores} cores allow encore publish {ceil_p:.0}/s ({:.2}× \
             the bare producer), encore sink {ceil_s:.0}/s ({:.2}× the bare consumer)",
            ceil_p / bare.0,
            ceil_s / bare.1
        );
    }
}

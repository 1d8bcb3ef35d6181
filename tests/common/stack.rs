//! Helpers for tests against the real stack of `scripts/stack.sh up`: Apache Kafka, S3
//! (s3s-fs), ClickHouse. Addresses come from the same variables `scripts/stack.sh env` prints, with the
//! stack's defaults; a service that does not answer fails the test loudly.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int32Type, Int64Type, TimestampMillisecondType};
use arrow::util::display::array_value_to_string;
use bytes::Bytes;
use encore::lake::{Lake, LakeConfig, Range};
use futures::TryStreamExt;
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Where the running stack is.
#[derive(Clone, Debug)]
pub struct Stack {
    pub brokers: String,
    pub s3_endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn reachable(what: &str, addr: &str) {
    let sock = addr
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("{what} address `{addr}`: {e}"))
        .next()
        .unwrap_or_else(|| panic!("{what} address `{addr}` resolves to nothing"));
    if let Err(e) = TcpStream::connect_timeout(&sock, Duration::from_secs(3)) {
        panic!(
            "{what} is not reachable at {addr} ({e}). These tests need the real stack: run \
             `scripts/stack.sh up` (the README's test command does)."
        );
    }
}

impl Stack {
    /// The running stack; panics when Kafka or S3 does not answer.
    pub fn get() -> Stack {
        let s = Stack {
            brokers: var("ENCORE_BROKERS", "127.0.0.1:9092"),
            s3_endpoint: var("ENCORE_S3_ENDPOINT", "http://127.0.0.1:9000"),
            access_key: var("AWS_ACCESS_KEY_ID", "minioadmin"),
            secret_key: var("AWS_SECRET_ACCESS_KEY", "minioadmin"),
        };
        let first_broker = s.brokers.split(',').next().unwrap_or_default().to_string();
        reachable("Kafka", &first_broker);
        let s3 = s
            .s3_endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string();
        reachable("S3", &s3);
        s
    }

    /// The encore binary, configured for this stack and nothing else from the caller's
    /// environment.
    pub fn encore(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_encore"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ENCORE_") {
                c.env_remove(k);
            }
        }
        c.env("ENCORE_BROKERS", &self.brokers)
            .env("ENCORE_S3_ENDPOINT", &self.s3_endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_REGION", "us-east-1")
            .env("ENCORE_NO_PROGRESS", "1")
            .env("ENCORE_LOG", "info");
        c
    }

    pub fn lake_config(&self, url: &str) -> LakeConfig {
        LakeConfig {
            url: url.to_string(),
            s3_endpoint: Some(self.s3_endpoint.clone()),
            s3_region: Some("us-east-1".into()),
            s3_access_key: Some(self.access_key.clone()),
            s3_secret_key: Some(self.secret_key.clone()),
        }
    }

    /// `encore simulate` of `events` max-rate events into `topic` (created with `partitions`).
    pub fn produce(&self, topic: &str, partitions: u32, events: u64, seed: u64) {
        let out = self
            .encore()
            .args([
                "simulate",
                "--max-rate",
                "--users",
                "300",
                "--tracks",
                "5000",
            ])
            .args(["--topic", topic])
            .args(["--partitions", &partitions.to_string()])
            .args(["--events", &events.to_string()])
            .args(["--seed", &seed.to_string()])
            .output()
            .expect("running encore simulate");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "encore simulate failed:\n{stderr}");
        assert!(
            stderr.contains(&format!("{events} acknowledged by Kafka, 0 failed")),
            "simulate did not report every event acknowledged:\n{stderr}"
        );
    }

    /// Whether the broker knows `topic`.
    pub fn topic_exists(&self, topic: &str) -> bool {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("allow.auto.create.topics", "false")
            .create()
            .expect("a plain consumer");
        let md = c
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("topic metadata");
        md.topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
    }

    /// Per partition, the next offset to be written (the topic must exist).
    pub fn high_watermarks(&self, topic: &str) -> Vec<i64> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .expect("a plain consumer");
        let timeout = Duration::from_secs(10);
        let md = c
            .fetch_metadata(Some(topic), timeout)
            .expect("topic metadata");
        let n = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len())
            .expect("the topic exists");
        (0..n as i32)
            .map(|p| c.fetch_watermarks(topic, p, timeout).expect("watermarks").1)
            .collect()
    }
}

/// The stack's ClickHouse (fails loudly when it does not answer).
pub fn clickhouse() -> encore::clickhouse::ClickHouseConnection {
    let url = var("ENCORE_CLICKHOUSE_URL", "http://127.0.0.1:8123");
    let hostport = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    reachable("ClickHouse", &hostport);
    encore::clickhouse::ClickHouseConnection {
        url,
        user: var("ENCORE_CLICKHOUSE_USER", "click"),
        password: Some(var("ENCORE_CLICKHOUSE_PASSWORD", "click")),
    }
}

/// A ClickHouse database of one test, dropped (with its Kafka tables, which would otherwise
/// consume forever) when the guard goes.
pub struct ChDatabase {
    pub ch: encore::clickhouse::ClickHouse,
    pub name: String,
}

impl ChDatabase {
    /// A fresh name from `prefix` on the stack's ClickHouse (nothing is created yet).
    pub fn new(prefix: &str) -> ChDatabase {
        ChDatabase {
            ch: encore::clickhouse::ClickHouse::new(clickhouse()).unwrap(),
            name: unique(prefix).replace('-', "_"),
        }
    }
}

impl Drop for ChDatabase {
    fn drop(&mut self) {
        if let Ok(q) = encore::clickhouse::quote_ident(&self.name) {
            let _ = rt().block_on(self.ch.query(&format!("DROP DATABASE IF EXISTS {q}")));
        }
    }
}

/// Runs `scripts/stack.sh ARGS` (stopping, starting and granting on the stack); it must succeed.
pub fn stack_sh(args: &[&str]) {
    let st = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack.sh"))
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("running scripts/stack.sh");
    assert!(st.success(), "scripts/stack.sh {args:?} failed");
}

/// A runtime for the async clients the tests call directly.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A name nobody else uses, so that tests running at once never share a topic, group or
/// bucket. Lower case: valid for topics, groups and buckets.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A child `encore` process whose stderr goes to a log file (shown when an assertion fails).
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Proc {
    pub fn spawn(cmd: Command, name: &str, dir: &std::path::Path) -> Proc {
        Self::start(cmd, name, dir, Stdio::null())
    }

    /// Like `spawn`, with stdout kept for `wait_output`.
    pub fn spawn_capturing(cmd: Command, name: &str, dir: &std::path::Path) -> Proc {
        Self::start(cmd, name, dir, Stdio::piped())
    }

    fn start(mut cmd: Command, name: &str, dir: &std::path::Path, out: Stdio) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let err = File::create(&log).unwrap();
        let child = cmd
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc {
            child,
            log,
            name: name.to_string(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig} {}", self.name);
    }

    /// SIGKILL, and reap.
    pub fn kill(mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the drain (at most `patience`).
    pub fn term(mut self, patience: Duration) -> (ExitStatus, String) {
        self.signal("-TERM");
        let end = Instant::now() + patience;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st, self.log());
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not stop within {patience:?} of SIGTERM:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to end by itself (at most `patience`): its status and stdout
    /// (see `spawn_capturing`).
    pub fn wait_output(&mut self, patience: Duration) -> (ExitStatus, String) {
        use std::io::Read;
        let mut out = String::new();
        let reader = self.child.stdout.take().map(|mut s| {
            std::thread::spawn(move || {
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                buf
            })
        });
        let end = Instant::now() + patience;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                Instant::now() < end,
                "{} did not finish within {patience:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        if let Some(r) = reader {
            out = r.join().unwrap_or_default();
        }
        (status, out)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A failed assertion must not leave a sink consuming in the background.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One lake row as the exactly-once checks see it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LakeRow {
    pub partition: i32,
    pub offset: i64,
    pub event_id: String,
}

/// A lake on the stack's S3, read with object_store and the parquet crate.
pub struct LakeView {
    lake: Lake,
    rt: tokio::runtime::Runtime,
}

impl LakeView {
    pub fn open(stack: &Stack, url: &str, table: &str) -> LakeView {
        let lake = Lake::open(&stack.lake_config(url), table).expect("opening the lake");
        LakeView { lake, rt: rt() }
    }

    /// Committed ranges of `partition`, in offset order.
    pub fn committed(&self, partition: i32) -> Vec<Range> {
        let mut r = self
            .rt
            .block_on(self.lake.committed_ranges(partition))
            .expect("listing commit markers");
        r.sort();
        r
    }

    /// Per partition, the offset after the last committed one (0 when none; all 0 while the
    /// sink has not created the bucket yet).
    pub fn committed_ends(&self, partitions: usize) -> Vec<i64> {
        (0..partitions as i32)
            .map(|p| match self.rt.block_on(self.lake.committed_ranges(p)) {
                Ok(r) => r.iter().map(|r| r.last + 1).max().unwrap_or(0),
                Err(e) if e.to_string().contains("NoSuchBucket") => 0,
                Err(e) => panic!("listing commit markers: {e}"),
            })
            .collect()
    }

    /// Commits begun and not finished: an intent whose commit marker does not exist (a commit
    /// in progress, or one a crash interrupted before its marker).
    pub fn interrupted_commits(&self) -> usize {
        let store = self.lake.store().clone();
        let dir = self
            .lake
            .root()
            .child(encore::lake::META_DIR)
            .child(self.lake.table())
            .child("pending");
        self.rt.block_on(async move {
            let metas = match store.list(Some(&dir)).try_collect::<Vec<_>>().await {
                Ok(m) => m,
                Err(e) if e.to_string().contains("NoSuchBucket") => return 0,
                Err(e) => panic!("listing commit intents: {e}"),
            };
            let mut n = 0;
            for m in metas
                .iter()
                .filter(|m| m.location.as_ref().ends_with(".json"))
            {
                let marker = object_store::path::Path::from(m.location.as_ref().replacen(
                    "/pending/",
                    "/commits/",
                    1,
                ));
                match store.head(&marker).await {
                    Ok(_) => {}
                    Err(object_store::Error::NotFound { .. }) => n += 1,
                    Err(e) => panic!("checking {marker}: {e}"),
                }
            }
            n
        })
    }

    /// Every Parquet file under the table (committed or not), with its bytes.
    pub fn parquet_objects(&self) -> Vec<(String, Bytes)> {
        let store = self.lake.store().clone();
        let prefix = self.lake.table_path();
        self.rt.block_on(async move {
            let metas: Vec<_> = store
                .list(Some(&prefix))
                .try_collect()
                .await
                .expect("listing the table");
            let mut out = Vec::new();
            for m in metas {
                if !m.location.as_ref().ends_with(".parquet") {
                    continue;
                }
                let bytes: Bytes = store
                    .get(&m.location)
                    .await
                    .expect("reading a data file")
                    .bytes()
                    .await
                    .expect("reading a data file");
                out.push((m.location.to_string(), bytes));
            }
            out.sort();
            out
        })
    }

    /// Writes an object (a full path in the store, as `parquet_objects` names them).
    pub fn put(&self, location: &str, bytes: Bytes) {
        let store = self.lake.store().clone();
        let path = object_store::path::Path::from(location);
        self.rt
            .block_on(store.put(&path, bytes.into()))
            .expect("writing to the lake");
    }

    pub fn delete(&self, location: &str) {
        let store = self.lake.store().clone();
        let path = object_store::path::Path::from(location);
        self.rt
            .block_on(store.delete(&path))
            .expect("deleting from the lake");
    }

    /// Every Parquet file under the table (committed or not), with its rows.
    pub fn files(&self) -> Vec<(String, Vec<LakeRow>)> {
        self.parquet_objects()
            .into_iter()
            .map(|(name, bytes)| {
                let rows = parquet_rows(bytes, &name);
                (name, rows)
            })
            .collect()
    }
}

fn parquet_rows(bytes: Bytes, name: &str) -> Vec<LakeRow> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap_or_else(|e| panic!("{name} is not readable Parquet: {e}"))
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for b in reader {
        let b = b.unwrap_or_else(|e| panic!("{name}: {e}"));
        let ids = b.column_by_name("event_id").unwrap().as_string::<i32>();
        let parts = b
            .column_by_name("kafka_partition")
            .unwrap()
            .as_primitive::<Int32Type>();
        let offs = b
            .column_by_name("kafka_offset")
            .unwrap()
            .as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            assert!(!ids.is_null(i), "{name}: null event id");
            rows.push(LakeRow {
                partition: parts.value(i),
                offset: offs.value(i),
                event_id: ids.value(i).to_string(),
            });
        }
    }
    rows
}

/// Waits until the lake's committed ranges reach the topic's high watermarks.
pub fn wait_caught_up(
    view: &LakeView,
    targets: &[i64],
    deadline: Duration,
    logs: impl Fn() -> String,
) {
    let end = Instant::now() + deadline;
    loop {
        let ends = view.committed_ends(targets.len());
        if ends.as_slice() == targets {
            return;
        }
        assert!(
            Instant::now() < end,
            "the lake did not catch up within {deadline:?}: committed up to {ends:?}, topic at {targets:?}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The exactly-once contract, checked from both sides: per partition the commit markers form
/// one contiguous run from offset 0 to the high watermark, and the Parquet files hold each of
/// those offsets exactly once, each event id once, `expected` rows in all.
pub fn assert_exactly_once(view: &LakeView, targets: &[i64], expected: u64) {
    assert_eq!(
        targets.iter().sum::<i64>() as u64,
        expected,
        "the topic holds {targets:?} records, not {expected}"
    );
    for (p, &high) in targets.iter().enumerate() {
        let ranges = view.committed(p as i32);
        let mut next = 0;
        for r in &ranges {
            assert_eq!(
                r.first, next,
                "partition {p}: committed ranges are not contiguous: {ranges:?}"
            );
            next = r.last + 1;
        }
        assert_eq!(
            next, high,
            "partition {p}: committed up to {next}, topic at {high}"
        );
    }
    let files = view.files();
    let mut seen: BTreeMap<(i32, i64), String> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    let mut total = 0u64;
    for (name, rows) in &files {
        for r in rows {
            total += 1;
            if let Some(other) = seen.insert((r.partition, r.offset), name.clone()) {
                panic!(
                    "offset {}/{} is in both {other} and {name}",
                    r.partition, r.offset
                );
            }
            assert!(
                ids.insert(r.event_id.clone()),
                "duplicate event id {}",
                r.event_id
            );
        }
    }
    assert_eq!(total, expected, "lake rows vs events produced");
    for (p, &high) in targets.iter().enumerate() {
        // Unique keys, `high` of them, from 0 to high-1: exactly the offsets 0..high.
        let keys: Vec<i64> = seen
            .range((p as i32, i64::MIN)..(p as i32 + 1, i64::MIN))
            .map(|(k, _)| k.1)
            .collect();
        assert_eq!(
            keys.len() as i64,
            high,
            "partition {p}: rows for {} of {high} offsets",
            keys.len()
        );
        if high > 0 {
            assert_eq!(
                (keys[0], keys[keys.len() - 1]),
                (0, high - 1),
                "partition {p}: offsets"
            );
        }
    }
}

impl Stack {
    /// Sends each value as one record (no key) and waits until every one is acknowledged;
    /// a record the broker refuses fails the test.
    pub fn produce_raw(&self, topic: &str, values: &[Vec<u8>]) {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let p: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("message.max.bytes", "4000000")
            .create()
            .expect("creating a producer");
        rt().block_on(async {
            for (i, v) in values.iter().enumerate() {
                p.send(
                    FutureRecord::<(), _>::to(topic).payload(v),
                    Duration::from_secs(30),
                )
                .await
                .unwrap_or_else(|(e, _)| {
                    panic!("record {i} ({} bytes) not acknowledged: {e}", v.len())
                });
            }
        });
    }
}

impl LakeView {
    /// Every committed-or-not row with the given columns, rendered as text (NULL as ""),
    /// keyed by event id.
    pub fn columns(&self, names: &[&str]) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (name, bytes) in self.parquet_objects() {
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap_or_else(|e| panic!("{name} is not readable Parquet: {e}"))
                .build()
                .unwrap();
            for b in reader {
                let b = b.unwrap_or_else(|e| panic!("{name}: {e}"));
                let ids = b.column_by_name("event_id").unwrap().as_string::<i32>();
                for i in 0..b.num_rows() {
                    let row = names
                        .iter()
                        .map(|n| {
                            let col = b
                                .column_by_name(n)
                                .unwrap_or_else(|| panic!("lake has no column {n}"));
                            let v = if col.is_null(i) {
                                String::new()
                            } else if let DataType::Timestamp(..) = col.data_type() {
                                // Epoch milliseconds: what ClickHouse keeps as ts_ms.
                                col.as_primitive::<TimestampMillisecondType>()
                                    .value(i)
                                    .to_string()
                            } else {
                                array_value_to_string(col, i).unwrap()
                            };
                            (n.to_string(), v)
                        })
                        .collect();
                    out.insert(ids.value(i).to_string(), row);
                }
            }
        }
        out
    }
}

impl Stack {
    /// `encore verify` with the topic (and so the dead-letter topic) must be clean and exact:
    /// every record of the topic is a lake row or a dead letter, none in flight.
    pub fn verify_exact(&self, topic: &str, lake: &str, rows: u64, dead_letters: u64) -> String {
        let (code, report) = self.verify(topic, lake, &[]);
        assert_eq!(code, Some(0), "encore verify:\n{report}");
        assert!(
            report.contains(&format!("verdict: CLEAN ({rows} rows")),
            "expected {rows} rows:\n{report}"
        );
        let records: i64 = self.high_watermarks(topic).iter().sum();
        assert_eq!(
            records as u64,
            rows + dead_letters,
            "the topic holds {records} records, not {rows} rows + {dead_letters} dead letters"
        );
        assert!(
            report.contains(&format!(
                "Kafka: {records} records = lake rows {rows} + dead letters {dead_letters} + in flight 0"
            )),
            "{report}"
        );
        report
    }

    /// `encore verify` of `lake` against `topic` with `extra` arguments: its exit code and
    /// everything it printed.
    pub fn verify(&self, topic: &str, lake: &str, extra: &[&str]) -> (Option<i32>, String) {
        let out = self
            .encore()
            .args(["verify", "--topic", topic, "--lake", lake])
            .args(extra)
            .output()
            .expect("running encore verify");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), report)
    }

    /// `encore sink` of `topic` into `lake` (new group, `extra` arguments) until the lake holds
    /// the whole topic, then SIGTERM, which must drain with exit 0. Returns the sink's log.
    pub fn sink_until_caught_up(
        &self,
        topic: &str,
        lake: &str,
        extra: &[&str],
        dir: &std::path::Path,
    ) -> String {
        let mut sink = self.encore();
        sink.args([
            "sink",
            "--topic",
            topic,
            "--group",
            &unique("g"),
            "--lake",
            lake,
        ])
        .args(extra);
        let sink = Proc::spawn(sink, &unique("sink"), dir);
        let view = LakeView::open(self, lake, topic);
        let targets = self.high_watermarks(topic);
        wait_caught_up(&view, &targets, Duration::from_secs(120), || sink.log());
        let (st, log) = sink.term(Duration::from_secs(30));
        assert!(st.success(), "sink exit {st}:\n{log}");
        log
    }

    /// Every record of `topic` (blocking): (partition, offset, key, value, headers).
    pub fn read_all(&self, topic: &str) -> Vec<TopicRecord> {
        use rdkafka::Message;
        use rdkafka::message::Headers;
        let highs = self.high_watermarks(topic);
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", "encore-tests-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("a plain consumer");
        let mut tpl = rdkafka::TopicPartitionList::new();
        for (p, &h) in highs.iter().enumerate() {
            if h > 0 {
                tpl.add_partition_offset(topic, p as i32, rdkafka::Offset::Beginning)
                    .unwrap();
            }
        }
        c.assign(&tpl).expect("assigning partitions");
        let mut next = vec![0i64; highs.len()];
        let mut out = Vec::new();
        let end = Instant::now() + Duration::from_secs(60);
        while next.iter().zip(&highs).any(|(n, h)| n < h) {
            assert!(
                Instant::now() < end,
                "reading {topic}: at {next:?} of {highs:?} after 60 s"
            );
            let Some(m) = c.poll(Duration::from_millis(200)) else {
                continue;
            };
            let m = m.expect("a record");
            next[m.partition() as usize] = m.offset() + 1;
            let headers = m
                .headers()
                .map(|h| {
                    (0..h.count())
                        .map(|i| {
                            let hd = h.get(i);
                            (
                                hd.key.to_string(),
                                String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(TopicRecord {
                partition: m.partition(),
                offset: m.offset(),
                value: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
        out
    }
}

/// One record as `Stack::read_all` returns it.
#[derive(Clone, Debug)]
pub struct TopicRecord {
    pub partition: i32,
    pub offset: i64,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

/// The number after `label` in encore's summary.
pub fn figure(summary: &str, label: &str) -> u64 {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` in the summary:\n{summary}"));
    line.trim_start()[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no figure in `{line}`"))
}

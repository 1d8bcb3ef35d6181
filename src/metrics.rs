//! Prometheus metrics (`--metrics-addr`): every name with its unit and help in one place, and
//! the calls the actors make. Without `--metrics-addr` no recorder is installed and a call
//! costs one relaxed load. docs/metrics.md lists the names; compose/ scrapes them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

use crate::event::{EVENT_TYPES, EventType};

const SIMULATED: &str = "encore_events_simulated_total";
const PUBLISHED: &str = "encore_records_published_total";
const ACKED: &str = "encore_records_acknowledged_total";
const FAILED: &str = "encore_records_failed_total";
const RESENT: &str = "encore_records_resent_total";
const WAITED: &str = "encore_publish_wait_milliseconds_total";
const CONSUMED: &str = "encore_records_consumed_total";
const ROWS: &str = "encore_rows_committed_total";
const FILES: &str = "encore_files_committed_total";
const BYTES: &str = "encore_bytes_committed_total";
const BATCHES: &str = "encore_batches_committed_total";
const REJECTED: &str = "encore_records_rejected_total";
const LETTERS: &str = "encore_dead_letters_sent_total";
const RESTARTS: &str = "encore_restarts_total";
const PAUSED: &str = "encore_consumption_paused";
const HIGH: &str = "encore_partition_high_watermark";
const COMMITTED: &str = "encore_lake_committed_offset";
const LAG_RECORDS: &str = "encore_consumer_lag_records";
const LAG_SECONDS: &str = "encore_consumer_lag_seconds";
const FLUSH: &str = "encore_flush_duration_seconds";
const ENCODE: &str = "encore_encode_duration_seconds";
const COMMIT: &str = "encore_commit_duration_seconds";
const BUS_BYTES: &str = "encore_bus_retained_bytes";
const BUS_CAPACITY: &str = "encore_bus_capacity_bytes";
const INFO: &str = "encore_build_info";

/// Every name encore exposes (histograms add `_bucket`, `_sum` and `_count`).
pub const NAMES: &[&str] = &[
    SIMULATED,
    PUBLISHED,
    ACKED,
    FAILED,
    RESENT,
    WAITED,
    CONSUMED,
    ROWS,
    FILES,
    BYTES,
    BATCHES,
    REJECTED,
    LETTERS,
    RESTARTS,
    PAUSED,
    HIGH,
    COMMITTED,
    LAG_RECORDS,
    LAG_SECONDS,
    FLUSH,
    ENCODE,
    COMMIT,
    BUS_BYTES,
    BUS_CAPACITY,
    INFO,
];

/// Histogram buckets of the durations: a local disk commits in milliseconds, a slow S3 in
/// seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static ENABLED: AtomicBool = AtomicBool::new(false);

/// What lag is computed from, per partition this process owns or owned.
#[derive(Default, Clone, Copy)]
struct PartitionState {
    high: Option<i64>,
    committed: Option<i64>,
    last_event_ms: Option<i64>,
}

static PARTITIONS: Mutex<BTreeMap<i32, PartitionState>> = Mutex::new(BTreeMap::new());

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("--metrics-addr {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: BuildError,
    },
    #[error("starting the metrics thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Serves `/metrics` on `addr` from a thread of its own (a busy run never delays a scrape);
/// the address is bound before this returns, so a port in use is an error at start.
pub fn serve(addr: SocketAddr) -> Result<(), MetricsError> {
    let listen = |source| MetricsError::Listen { addr, source };
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Suffix("_duration_seconds".into()),
            DURATION_BUCKETS,
        )
        .map_err(listen)?
        .install()
        .map_err(listen)?;
    describe();
    gauge!(INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    ENABLED.store(true, Ordering::Relaxed);
    // Lag in seconds grows while nothing is committed: refreshed on a clock, not on commits.
    std::thread::Builder::new()
        .name("metrics-lag".into())
        .spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                refresh_lag_seconds();
            }
        })?;
    tracing::info!(%addr, "serving Prometheus metrics at http://{addr}/metrics");
    Ok(())
}

/// Whether metrics are served (callers skip work that only feeds them).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn describe() {
    describe_counter!(SIMULATED, "Valid events handed to the topic, by type");
    describe_counter!(
        PUBLISHED,
        "Records handed to the topic (injected bad ones too)"
    );
    describe_counter!(ACKED, "Records Kafka acknowledged (acks=all)");
    describe_counter!(FAILED, "Records whose delivery to Kafka failed for good");
    describe_counter!(
        RESENT,
        "Records sent again after a transient delivery failure"
    );
    describe_counter!(
        WAITED,
        "Milliseconds the publisher waited for room in the Kafka producer's queue"
    );
    describe_counter!(CONSUMED, "Records the sink read from the topic");
    describe_counter!(ROWS, "Rows committed to the lake, by partition");
    describe_counter!(FILES, "Parquet files committed to the lake, by partition");
    describe_counter!(BYTES, Unit::Bytes, "Parquet bytes committed, by partition");
    describe_counter!(BATCHES, "Batches (commit markers) committed, by partition");
    describe_counter!(
        REJECTED,
        "Committed records that were not valid events, by reason"
    );
    describe_counter!(LETTERS, "Records copied to the dead-letter topic");
    describe_counter!(RESTARTS, "Actor failures retried, by actor");
    describe_gauge!(
        PAUSED,
        "1 while the sink has paused fetching (the lake is behind)"
    );
    describe_gauge!(HIGH, "The topic's high watermark, by partition");
    describe_gauge!(COMMITTED, "Next offset the lake holds below, by partition");
    describe_gauge!(
        LAG_RECORDS,
        "High watermark minus the lake's position, by partition"
    );
    describe_gauge!(
        LAG_SECONDS,
        Unit::Seconds,
        "Now minus the event time of the last committed row, by partition"
    );
    describe_histogram!(
        FLUSH,
        Unit::Seconds,
        "One batch: encode, dead letters, commit"
    );
    describe_histogram!(ENCODE, Unit::Seconds, "Parquet encoding of one batch");
    describe_histogram!(
        COMMIT,
        Unit::Seconds,
        "Writing one batch's files and marker"
    );
    describe_gauge!(BUS_BYTES, Unit::Bytes, "Bytes the in-process bus holds");
    describe_gauge!(BUS_CAPACITY, Unit::Bytes, "The in-process bus's capacity");
    describe_gauge!(INFO, "encore's version (value 1)");
}

/// Events and records one publisher batch handed to the topic.
pub fn published(records: u64, by_type: &[u64; EVENT_TYPES]) {
    if !enabled() {
        return;
    }
    counter!(PUBLISHED).increment(records);
    for (i, &n) in by_type.iter().enumerate().filter(|(_, n)| **n > 0) {
        let name = EventType::ALL[i].name();
        counter!(SIMULATED, "event_type" => name).increment(n);
    }
}

/// Kafka's delivery reports so far (cumulative).
pub fn deliveries(acked: u64, failed: u64, resent: u64) {
    if enabled() {
        counter!(ACKED).absolute(acked);
        counter!(FAILED).absolute(failed);
        counter!(RESENT).absolute(resent);
    }
}

/// The publisher waited `wait` for room in the producer's queue. Counted as time, not as
/// waits, so that the share of time waiting needs no knowledge of one wait's length.
pub fn publish_waited(wait: std::time::Duration) {
    if enabled() {
        counter!(WAITED).increment(wait.as_millis() as u64);
    }
}

pub fn consumed(n: u64) {
    if enabled() {
        counter!(CONSUMED).increment(n);
    }
}

/// One committed batch.
pub struct Committed<'a> {
    pub partition: i32,
    pub next_offset: i64,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub rejected: &'a BTreeMap<&'static str, u64>,
    pub last_event_ms: Option<i64>,
}

pub fn committed(c: &Committed) {
    if !enabled() {
        return;
    }
    let p = c.partition.to_string();
    counter!(ROWS, "partition" => p.clone()).increment(c.rows);
    counter!(FILES, "partition" => p.clone()).increment(c.files);
    counter!(BYTES, "partition" => p.clone()).increment(c.bytes);
    counter!(BATCHES, "partition" => p).increment(1);
    for (&reason, &n) in c.rejected {
        counter!(REJECTED, "reason" => reason).increment(n);
    }
    update(c.partition, |s| {
        s.committed = Some(s.committed.unwrap_or(0).max(c.next_offset));
        s.last_event_ms = s.last_event_ms.max(c.last_event_ms);
    });
}

/// Where the lake resumes a partition (at start or when it is assigned).
pub fn resumed(partition: i32, next_offset: Option<i64>) {
    if enabled() {
        update(partition, |s| s.committed = next_offset.or(s.committed));
    }
}

pub fn high_watermark(partition: i32, high: i64) {
    if enabled() && high >= 0 {
        update(partition, |s| s.high = Some(high));
    }
}

pub fn dead_letters_sent(n: u64) {
    if enabled() {
        counter!(LETTERS).increment(n);
    }
}

pub fn restarted(actor: &'static str) {
    if enabled() {
        counter!(RESTARTS, "actor" => actor).increment(1);
    }
}

pub fn paused(paused: bool) {
    if enabled() {
        gauge!(PAUSED).set(if paused { 1.0 } else { 0.0 });
    }
}

/// Durations of one batch's flush: encoding, commit (files and marker), the whole.
pub fn flushed(encode: Duration, commit: Duration, total: Duration) {
    if enabled() {
        histogram!(ENCODE).record(encode.as_secs_f64());
        histogram!(COMMIT).record(commit.as_secs_f64());
        histogram!(FLUSH).record(total.as_secs_f64());
    }
}

pub fn bus_fill(retained: usize, capacity: usize) {
    if enabled() {
        gauge!(BUS_BYTES).set(retained as f64);
        gauge!(BUS_CAPACITY).set(capacity as f64);
    }
}

/// Changes a partition's state and sets the gauges that follow from it.
fn update(partition: i32, f: impl FnOnce(&mut PartitionState)) {
    let s = {
        let mut all = PARTITIONS.lock().unwrap_or_else(|e| e.into_inner());
        let s = all.entry(partition).or_default();
        f(s);
        *s
    };
    let p = partition.to_string();
    if let Some(h) = s.high {
        gauge!(HIGH, "partition" => p.clone()).set(h as f64);
    }
    if let Some(c) = s.committed {
        gauge!(COMMITTED, "partition" => p.clone()).set(c as f64);
    }
    if let Some(lag) = lag_records(&s) {
        gauge!(LAG_RECORDS, "partition" => p).set(lag as f64);
    }
    if let Some(ms) = s.last_event_ms {
        set_lag_seconds(partition, ms, chrono::Utc::now().timestamp_millis());
    }
}

fn set_lag_seconds(partition: i32, last_event_ms: i64, now_ms: i64) {
    let lag = (now_ms - last_event_ms).max(0) as f64 / 1000.0;
    gauge!(LAG_SECONDS, "partition" => partition.to_string()).set(lag);
}

fn lag_records(s: &PartitionState) -> Option<i64> {
    Some((s.high? - s.committed.unwrap_or(0)).max(0))
}

fn refresh_lag_seconds() {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let all = PARTITIONS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (p, s) in all {
        if let Some(ms) = s.last_event_ms {
            set_lag_seconds(p, ms, now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Grafana dashboard kept in compose/ asks only for names encore exposes.
    #[test]
    fn the_dashboard_uses_only_exposed_names() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../compose/grafana/dashboards/encore.json"))
                .expect("the dashboard is JSON");
        let mut used = std::collections::BTreeSet::new();
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("expr");
                for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if !word.starts_with("encore_") {
                        continue;
                    }
                    let base = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| word.strip_suffix(s))
                        .filter(|b| NAMES.contains(b))
                        .unwrap_or(word);
                    assert!(NAMES.contains(&base), "{word} in `{expr}`");
                    used.insert(base.to_string());
                }
            }
        }
        let unused: Vec<_> = NAMES.iter().filter(|n| !used.contains(**n)).collect();
        assert_eq!(
            unused,
            [&INFO],
            "every metric but the version is on the dashboard"
        );
    }

    #[test]
    fn lag_in_records_is_the_high_watermark_minus_the_lake_position() {
        let mut s = PartitionState::default();
        assert_eq!(lag_records(&s), None, "no high watermark known yet");
        s.high = Some(120);
        assert_eq!(lag_records(&s), Some(120), "nothing committed");
        s.committed = Some(100);
        assert_eq!(lag_records(&s), Some(20));
        s.committed = Some(130);
        assert_eq!(
            lag_records(&s),
            Some(0),
            "a stale high watermark is no negative lag"
        );
    }
}

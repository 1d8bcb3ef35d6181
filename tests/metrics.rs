//! `--metrics-addr`: the endpoint scraped while a real sink and a real run work, parsed by
//! Python's prometheus_client (scripts/scrape_metrics.py), agrees with the topic, the lake and
//! the run's summary.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{Proc, figure};
use common::stack::{Stack, unique};

const PARTITIONS: u32 = 3;

#[derive(serde::Deserialize, Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One scrape, parsed.
struct Scrape(Vec<Sample>);

impl Scrape {
    /// None while the endpoint does not answer yet; a text that does not parse fails.
    fn take(addr: &str) -> Option<Scrape> {
        let out = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/scrape_metrics.py"
            ))
            .arg(format!("http://{addr}/metrics"))
            .output()
            .expect("python3 runs scripts/scrape_metrics.py (pip install prometheus_client)");
        match out.status.code() {
            Some(0) => Some(Scrape(
                serde_json::from_slice(&out.stdout).expect("the script prints JSON"),
            )),
            Some(3) => None,
            _ => panic!(
                "the exposition text does not parse:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    fn sum(&self, name: &str) -> f64 {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    }

    /// Per value of `label`, the samples of `name`.
    fn by(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| Some((s.labels.get(label)?.clone(), s.value)))
            .collect()
    }
}

/// A port nobody listens on now.
fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Scrapes until `done` holds (at most `deadline`): that scrape.
fn scrape_until(
    addr: &str,
    deadline: Duration,
    p: &Proc,
    done: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let end = Instant::now() + deadline;
    loop {
        if let Some(s) = Scrape::take(addr)
            && done(&s)
        {
            return s;
        }
        assert!(
            Instant::now() < end,
            "the scrapes did not get there within {deadline:?}:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_sink_scraped_while_it_runs_agrees_with_the_topic_and_its_summary() {
    let stack = Stack::get();
    let topic = unique("metrics");
    let lake = format!("s3://{}/m", unique("lake"));
    let dir = tempfile::tempdir().unwrap();
    stack.produce(&topic, PARTITIONS, 3_000, 61);
    let bad: Vec<Vec<u8>> = (0..7)
        .map(|i| format!("not json {i}").into_bytes())
        .collect();
    stack.produce_raw(&topic, &bad);
    let targets = stack.high_watermarks(&topic);
    let total: i64 = targets.iter().sum();

    let addr = free_addr();
    let mut c = stack.encore();
    c.args([
        "sink",
        "--topic",
        &topic,
        "--group",
        &unique("g"),
        "--lake",
        &lake,
    ])
    .args(["--flush-interval", "1s", "--metrics-addr", &addr]);
    let mut sink = Proc::spawn_capturing(c, "sink", dir.path());
    let s = scrape_until(&addr, Duration::from_secs(120), &sink, |s| {
        let lag = s.by("encore_consumer_lag_records", "partition");
        s.sum("encore_rows_committed_total") + s.sum("encore_records_rejected_total")
            == total as f64
            && lag.len() == PARTITIONS as usize
            && lag.values().all(|&v| v == 0.0)
    });

    assert_eq!(s.sum("encore_rows_committed_total"), 3_000.0);
    assert_eq!(s.sum("encore_records_rejected_total"), 7.0);
    assert_eq!(s.sum("encore_dead_letters_sent_total"), 7.0);
    assert_eq!(s.sum("encore_records_consumed_total"), total as f64);
    let high = s.by("encore_partition_high_watermark", "partition");
    let committed = s.by("encore_lake_committed_offset", "partition");
    for (p, &t) in targets.iter().enumerate() {
        assert_eq!(high.get(&p.to_string()), Some(&(t as f64)), "{high:?}");
        assert_eq!(
            committed.get(&p.to_string()),
            Some(&(t as f64)),
            "{committed:?}"
        );
    }
    let seconds = s.by("encore_consumer_lag_seconds", "partition");
    assert_eq!(seconds.len(), PARTITIONS as usize, "{seconds:?}");
    assert!(seconds.values().all(|&v| v >= 0.0), "{seconds:?}");
    // Histograms, not summaries: one observation per committed batch.
    let batches = s.sum("encore_batches_committed_total");
    assert!(batches >= PARTITIONS as f64);
    assert_eq!(s.sum("encore_flush_duration_seconds_count"), batches);
    let buckets = s.by("encore_commit_duration_seconds_bucket", "le");
    assert_eq!(buckets.get("+Inf"), Some(&batches), "{buckets:?}");
    assert_eq!(s.sum("encore_consumption_paused"), 0.0);

    sink.interrupt();
    let (status, out) = sink.wait_output(Duration::from_secs(60));
    assert!(status.success(), "exit {status}:\n{out}\n{}", sink.log());
    assert_eq!(
        figure(&out, "rows written") as f64,
        s.sum("encore_rows_committed_total")
    );
    assert_eq!(
        figure(&out, "rejected") as f64,
        s.sum("encore_records_rejected_total")
    );
    assert_eq!(
        figure(&out, "files") as f64,
        s.sum("encore_files_committed_total")
    );
}

#[test]
fn an_embedded_run_is_scraped_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut c = common::process::encore();
    c.args([
        "run",
        "--users",
        "300",
        "--duration",
        "60s",
        "--speed",
        "50",
    ])
    .args([
        "--flush-interval",
        "1s",
        "--no-progress",
        "--metrics-addr",
        &addr,
    ])
    .arg("--lake")
    .arg(dir.path().join("lake"));
    let mut run = Proc::spawn_capturing(c, "run", dir.path());
    let first = scrape_until(&addr, Duration::from_secs(60), &run, |s| {
        s.sum("encore_rows_committed_total") > 0.0
    });
    let later = scrape_until(&addr, Duration::from_secs(60), &run, |s| {
        s.sum("encore_rows_committed_total") > first.sum("encore_rows_committed_total")
    });
    let simulated = later.by("encore_events_simulated_total", "event_type");
    assert!(simulated.contains_key("track_playback"), "{simulated:?}");
    assert!(
        later.sum("encore_records_published_total") >= later.sum("encore_rows_committed_total")
    );
    assert!(later.sum("encore_bus_capacity_bytes") > 0.0);
    assert_eq!(later.by("encore_build_info", "version").len(), 1);

    run.interrupt();
    let (status, out) = run.wait_output(Duration::from_secs(60));
    assert!(status.success(), "exit {status}:\n{out}\n{}", run.log());
    // Counters only grow: the summary is at least the last scrape.
    assert!(figure(&out, "rows written") as f64 >= later.sum("encore_rows_committed_total"));
    assert!(figure(&out, "events") as f64 >= later.sum("encore_records_published_total"));
}

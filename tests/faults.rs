//! Faults while encore runs against the real stack, each ending with an exact `encore verify`
//! (every record of the topic is a lake row, nothing in flight, nothing twice):
//! the broker hanging for 20 s, the broker stopped and started again, the S3 server down for
//! 30 s, ClickHouse down at start, the whole
//! run SIGKILLed and restarted, SIGTERM mid-run. One binary whose tests run one at a time
//! (`serial`): stopping a shared service would disturb any test running alongside; cargo runs
//! test binaries one after another.

mod common;

use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::clickhouse::{ChDatabase, clickhouse};
use common::lake::LakeView;
use common::process::{Proc, figure};
use common::stack::{Stack, stack_sh, unique};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A service made unavailable, and made available again however the test ends.
struct Outage {
    undo: [&'static str; 2],
}

impl Outage {
    /// SIGSTOP: the service keeps its connections and answers nothing.
    fn pause(svc: &'static str) -> Outage {
        stack_sh(&["pause", svc]);
        Outage {
            undo: ["resume", svc],
        }
    }

    /// Stopped: connections are refused until it is started again.
    fn stop(svc: &'static str) -> Outage {
        stack_sh(&["down", svc]);
        Outage { undo: ["up", svc] }
    }

    fn end(self) {}
}

impl Drop for Outage {
    fn drop(&mut self) {
        stack_sh(&self.undo);
    }
}

/// A topic, group and lake of one test.
struct Names {
    topic: String,
    group: String,
    lake: String,
}

impl Names {
    fn new(prefix: &str) -> Names {
        Names {
            topic: unique(prefix),
            group: unique("g"),
            lake: format!("s3://{}/f", unique("lake")),
        }
    }
}

/// Partitions of the fault tests' topics.
const PARTITIONS: usize = 6;

/// A realtime `encore run` (about 2000 events/s, so that listeners keep publishing through
/// a fault) on 6 partitions with 2 s flushes.
fn realtime_run(stack: &Stack, n: &Names, duration: &str) -> Command {
    let mut run = stack.encore();
    run.args(["run", "--users", "1000", "--speed", "50"])
        .args(["--duration", duration])
        .args(["--topic", &n.topic, "--group", &n.group, "--lake", &n.lake])
        .args(["--partitions", &PARTITIONS.to_string()])
        .args(["--batch-rows", "20000", "--flush-interval", "2s"]);
    run
}

/// A `realtime_run` of `duration` under way: its stdout kept, a commit in its lake.
struct Running {
    /// Holds the run's log (bind it first, so that it goes after the run).
    _dir: tempfile::TempDir,
    n: Names,
    proc: Proc,
    view: LakeView,
}

fn start_realtime(stack: &Stack, prefix: &str, duration: &str) -> Running {
    let n = Names::new(prefix);
    let dir = tempfile::tempdir().unwrap();
    let mut proc = Proc::spawn_capturing(realtime_run(stack, &n, duration), "run", dir.path());
    let view = LakeView::open(stack, &n.lake, &n.topic);
    wait_first_commit(&mut proc, &view);
    Running {
        _dir: dir,
        n,
        proc,
        view,
    }
}

/// Waits until the lake holds a commit (the run is under way).
fn wait_first_commit(proc: &mut Proc, view: &LakeView) {
    let started = Instant::now();
    while view.committed_ends(PARTITIONS).iter().sum::<i64>() == 0 {
        assert!(proc.running(), "encore run ended early:\n{}", proc.log());
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no commit within 60 s:\n{}",
            proc.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The run's summary says every event was acknowledged and written; returns how many.
fn completed(summary: &str, log: &str) -> u64 {
    let published = figure(summary, "delivered");
    assert!(
        summary.contains(&format!("{published} acknowledged by Kafka, 0 failed")),
        "{summary}\n{log}"
    );
    assert_eq!(
        figure(summary, "rows written"),
        published,
        "{summary}\n{log}"
    );
    published
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// What a realtime run did around a broker outage.
struct Survived {
    /// Records in the topic when the outage began.
    published_before: i64,
    /// Records committed to the lake when the outage ended.
    committed_before: i64,
    published: u64,
    committed_after: i64,
}

/// A realtime run of `duration` through an outage of the broker begun after its first commit
/// and held for `hold`: the run must stay up through it, end with exit 0 and every event
/// acknowledged and written.
fn through_broker_outage(
    prefix: &str,
    duration: &str,
    begin: fn() -> Outage,
    hold: Duration,
) -> (Names, Survived) {
    let stack = Stack::get();
    let Running {
        _dir,
        n,
        mut proc,
        view,
    } = start_realtime(&stack, prefix, duration);
    let published_before: i64 = stack.high_watermarks(&n.topic).iter().sum();
    let outage = begin();
    std::thread::sleep(hold);
    assert!(
        proc.running(),
        "encore run died while the broker was away:\n{}",
        proc.log()
    );
    // The lake may still take what the sink had read before the outage; what comes after it
    // must go through the broker again.
    let committed_before: i64 = view.committed_ends(PARTITIONS).iter().sum();
    outage.end();

    let (st, summary) = proc.wait_output(Duration::from_secs(300));
    let log = proc.log();
    assert!(st.success(), "encore run exit {st}:\n{log}");
    let published = completed(&summary, &log);
    let committed_after = view.committed_ends(PARTITIONS).iter().sum();
    (
        n,
        Survived {
            published_before,
            committed_before,
            published,
            committed_after,
        },
    )
}

#[test]
fn broker_away_for_20s_mid_run_loses_nothing_and_the_run_completes() {
    let _serial = serial();
    let (n, s) = through_broker_outage(
        "pause",
        "45s",
        || Outage::pause("kafka"),
        Duration::from_secs(20),
    );
    assert!(s.published > 20_000, "too few events to mean anything");
    Stack::get().verify_exact(&n.topic, &n.lake, s.published, 0);
}

#[test]
fn broker_restarted_mid_run_loses_nothing() {
    let _serial = serial();
    // A clean stop (SIGTERM: the broker closes its logs and its connections), 10 s away, then
    // a start on the same data, under the live idempotent producer and group member.
    let (n, s) = through_broker_outage(
        "restart",
        "90s",
        || Outage::stop("kafka"),
        Duration::from_secs(10),
    );
    assert!(
        s.committed_after > s.committed_before && s.published as i64 > s.published_before,
        "nothing was published and committed after the restart ({} records, {} committed at the restart)",
        s.published_before,
        s.committed_before
    );
    eprintln!(
        "broker restart: {} records committed at the restart, {} exact at the end",
        s.committed_before, s.published
    );
    // Every event once: no duplicates from the producer's retries, no loss.
    let report = Stack::get().verify_exact(&n.topic, &n.lake, s.published, 0);
    assert!(!report.contains("more than once"), "{report}");
}

#[test]
fn s3_down_for_30s_pauses_the_sink_with_bounded_memory_and_loses_nothing() {
    let _serial = serial();
    let stack = Stack::get();
    let Running {
        _dir, n, mut proc, ..
    } = start_realtime(&stack, "s3down", "60s");
    let pid = proc.child.id();
    let before = rss_kib(pid);
    let outage = Outage::stop("s3s-fs");
    let mut peak = before;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            proc.running(),
            "encore run died while S3 was down:\n{}",
            proc.log()
        );
        peak = peak.max(rss_kib(pid));
    }
    outage.end();
    // Listeners published about 60 000 events meanwhile; the sink paused after
    // --max-unflushed batches instead of buffering them all.
    assert!(
        peak < before + 300 * 1024,
        "RSS grew from {before} KiB to {peak} KiB during the outage"
    );

    let (st, summary) = proc.wait_output(Duration::from_secs(300));
    let log = proc.log();
    assert!(st.success(), "encore run exit {st}:\n{log}");
    assert!(
        log.contains("flush failed; batch kept for retry"),
        "the outage was noticed:\n{log}"
    );
    assert!(log.contains("the lake answers again"), "{log}");
    assert!(
        log.contains("consumption paused") && log.contains("consumption resumed"),
        "the sink paused its consumer while batches waited:\n{log}"
    );
    // One partition probes the failing lake while the five others wait: far fewer restarts
    // than one per partition per backoff step (which would exhaust the budget of 30).
    let restarts = figure(&summary, "restarts");
    assert!(
        (1..=15).contains(&restarts),
        "restarts: {restarts}\n{summary}"
    );
    let published = completed(&summary, &log);
    eprintln!(
        "S3 outage of 30 s: RSS {before} KiB before, peak {peak} KiB; {restarts} restarts; {published} events exact"
    );
    stack.verify_exact(&n.topic, &n.lake, published, 0);
}

#[test]
fn clickhouse_down_at_start_is_retried_and_the_lake_path_is_unaffected() {
    let _serial = serial();
    let stack = Stack::get();
    let db = ChDatabase::new("chdown");
    let n = Names::new("chdown");
    let dir = tempfile::tempdir().unwrap();
    let outage = Outage::stop("clickhouse");
    let mut run = realtime_run(&stack, &n, "40s");
    db.flags(&mut run);
    let mut proc = Proc::spawn_capturing(run, "run", dir.path());
    let view = LakeView::open(&stack, &n.lake, &n.topic);
    // The lake fills while ClickHouse is away.
    wait_first_commit(&mut proc, &view);
    assert!(
        proc.log()
            .contains("ClickHouse is not reachable; the run goes on"),
        "{}",
        proc.log()
    );
    outage.end();

    let (st, summary) = proc.wait_output(Duration::from_secs(300));
    let log = proc.log();
    assert!(st.success(), "encore run exit {st}:\n{summary}\n{log}");
    assert!(log.contains("ClickHouse schema ready"), "{log}");
    let published = completed(&summary, &log);
    // ClickHouse's queues read the topic from its start: every event arrives.
    // Its tables are named after the run's topic.
    let table = encore::clickhouse::schema::table_name(&n.topic).unwrap();
    let q = format!("SELECT uniqExact(event_id) FROM {}", db.table(&table));
    let have = db.wait_for_count(&q, published, Duration::from_secs(180));
    assert_eq!(
        have, published,
        "ClickHouse holds {have} of {published} events"
    );
    stack.verify_exact(&n.topic, &n.lake, published, 0);
    let out = db
        .flags(
            stack
                .encore()
                .args(["verify", "--topic", &n.topic, "--lake", &n.lake]),
        )
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains(&format!(
            "{published} distinct events; missing 0, not in the lake 0"
        )),
        "{report}"
    );
}

#[test]
fn clickhouse_down_for_a_whole_run_fails_it_clearly_with_the_lake_complete() {
    let _serial = serial();
    let stack = Stack::get();
    let cfg = clickhouse();
    let db = ChDatabase::new("chgone");
    let n = Names::new("chgone");
    let outage = Outage::stop("clickhouse");
    let out = stack
        .encore()
        .args(["run", "--users", "100", "--max-rate", "--events", "3000"])
        .args(["--topic", &n.topic, "--group", &n.group, "--lake", &n.lake])
        .args(["--clickhouse-url", &cfg.url, "--clickhouse-user", &cfg.user])
        .args(["--clickhouse-database", &db.name])
        .output()
        .unwrap();
    outage.end();
    let (summary, log) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{summary}\n{log}");
    assert!(
        log.contains("ClickHouse stayed unreachable for the whole run"),
        "{log}"
    );
    assert_eq!(figure(&summary, "rows written"), 3000, "{summary}");
    stack.verify_exact(&n.topic, &n.lake, 3000, 0);
}

#[test]
fn sigkill_of_the_whole_run_then_a_restart_with_the_same_group_is_exact() {
    let _serial = serial();
    let stack = Stack::get();
    let n = Names::new("kill");
    let dir = tempfile::tempdir().unwrap();
    // A 6 s session: the restarted run's member gets the partitions once the killed one's
    // session has expired (librdkafka's default would make it wait 45 s).
    let mut first = realtime_run(&stack, &n, "120s");
    first.args(["--kafka-config", "session.timeout.ms=6000"]);
    let mut proc = Proc::spawn(first, "run1", dir.path());
    let view = LakeView::open(&stack, &n.lake, &n.topic);
    wait_first_commit(&mut proc, &view);
    // Mid-flush, most likely: batches are cut every 2 s.
    std::thread::sleep(Duration::from_millis(3300));
    proc.kill();
    let after_kill: i64 = stack.high_watermarks(&n.topic).iter().sum();
    let committed: i64 = view.committed_ends(PARTITIONS).iter().sum();
    assert!(
        committed < after_kill,
        "the kill left records to resume from ({committed} of {after_kill} committed)"
    );

    // Same topic, group and lake: the sink resumes from the lake, removes leftovers, and
    // the new events follow.
    let out = stack
        .encore()
        .args(["run", "--users", "200", "--max-rate", "--events", "5000"])
        .args(["--topic", &n.topic, "--group", &n.group, "--lake", &n.lake])
        .args(["--partitions", &PARTITIONS.to_string()])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total: i64 = stack.high_watermarks(&n.topic).iter().sum();
    assert_eq!(total, after_kill + 5000);
    eprintln!(
        "SIGKILL: {committed} of {after_kill} records committed at the kill; {total} exact after the restart"
    );
    stack.verify_exact(&n.topic, &n.lake, total as u64, 0);
}

#[test]
fn sigterm_drains_the_run_with_nothing_in_flight() {
    let _serial = serial();
    let stack = Stack::get();
    let Running {
        _dir, n, mut proc, ..
    } = start_realtime(&stack, "term", "300s");
    std::thread::sleep(Duration::from_secs(3));
    let reader = {
        let mut stdout = proc.child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
            s
        })
    };
    let (st, log) = proc.term(Duration::from_secs(120));
    let summary = reader.join().unwrap();
    assert!(st.success(), "exit {st} after SIGTERM:\n{summary}\n{log}");
    assert!(summary.contains("SIGTERM (drained)"), "{summary}");
    let published = completed(&summary, &log);
    assert!(published > 0);
    stack.verify_exact(&n.topic, &n.lake, published, 0);
}

//! Against the real stack (`scripts/stack.sh up`): encore's Kafka producer and group-member
//! sink with tansu, the lake on s3s-fs. Each test uses its own topic, group and bucket.
//!
//! tansu 0.6 does not hand a SIGKILLed member's partitions to anyone (docs/real-stack-notes.md),
//! so after a kill the restarted sink joins a fresh group. That changes nothing about what is
//! tested: the sink positions itself from the lake's commit markers, never from group offsets.

mod common;

use std::time::{Duration, Instant};

use common::stack::{LakeView, Proc, Stack, assert_exactly_once, unique, wait_caught_up};

const PARTITIONS: u32 = 4;

/// `encore sink` with small batches (many commits, so kills land between and inside them).
fn sink_cmd(stack: &Stack, topic: &str, group: &str, lake: &str) -> std::process::Command {
    let mut c = stack.encore();
    c.args(["sink", "--topic", topic, "--group", group, "--lake", lake])
        .args([
            "--batch-rows",
            "2000",
            "--flush-interval",
            "1s",
            "--max-unflushed",
            "2",
        ]);
    c
}

/// A topic holding `n` events from `encore simulate`, and an empty lake for it.
struct Produced {
    topic: String,
    lake: String,
    targets: Vec<i64>,
    dir: tempfile::TempDir,
    view: LakeView,
}

impl Produced {
    fn new(stack: &Stack, prefix: &str, n: u64, seed: u64) -> Produced {
        let topic = unique(prefix);
        let lake = format!("s3://{}/p", unique("lake"));
        stack.produce(&topic, PARTITIONS, n, seed);
        let targets = stack.high_watermarks(&topic);
        let view = LakeView::open(stack, &lake, &topic);
        Produced {
            topic,
            lake,
            targets,
            dir: tempfile::tempdir().unwrap(),
            view,
        }
    }
}

#[test]
fn run_end_to_end_through_kafka_and_s3_is_exactly_once() {
    let stack = Stack::get();
    let (topic, group, bucket) = (unique("e2e"), unique("g"), unique("lake"));
    let lake = format!("s3://{bucket}/dev");
    let n = 50_000u64;
    let out = stack
        .encore()
        .args(["run", "--max-rate", "--users", "500", "--tracks", "5000"])
        .args(["--topic", &topic, "--group", &group, "--lake", &lake])
        .args([
            "--partitions",
            &PARTITIONS.to_string(),
            "--events",
            &n.to_string(),
        ])
        .args(["--batch-rows", "10000"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "encore run failed:\n{stderr}");
    assert!(
        stdout.contains(&format!("{n} acknowledged by Kafka, 0 failed"))
            && stdout.contains(&format!("rows written    {n}")),
        "summary:\n{stdout}\n{stderr}"
    );
    let targets = stack.high_watermarks(&topic);
    assert_eq!(targets.len(), PARTITIONS as usize);
    let view = LakeView::open(&stack, &lake, &topic);
    assert_exactly_once(&view, &targets, n);

    // `encore verify` reads the same lake from S3 and agrees.
    let v = stack
        .encore()
        .args(["verify", "--lake", &lake, "--topic", &topic])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success(), "verify:\n{report}");
    assert!(
        report.contains(&format!("verdict: CLEAN ({n} rows")),
        "{report}"
    );
}

#[test]
fn simulate_then_sink_is_exactly_once_and_a_second_sink_adds_nothing() {
    let stack = Stack::get();
    let n = 30_000u64;
    let Produced {
        topic,
        lake,
        targets,
        dir,
        view,
    } = Produced::new(&stack, "sim", n, 7);

    let sink = Proc::spawn(
        sink_cmd(&stack, &topic, &unique("g"), &lake),
        "sink",
        dir.path(),
    );
    wait_caught_up(&view, &targets, Duration::from_secs(120), || sink.log());
    let (st, log) = sink.term(Duration::from_secs(30));
    assert!(st.success(), "sink exit {st}:\n{log}");
    assert_exactly_once(&view, &targets, n);
    let files_before = view.files().len();

    // A restart in another group resumes from the lake, not from offset 0: nothing is added.
    let again = Proc::spawn(
        sink_cmd(&stack, &topic, &unique("g"), &lake),
        "again",
        dir.path(),
    );
    std::thread::sleep(Duration::from_secs(4));
    let (st, log) = again.term(Duration::from_secs(30));
    assert!(st.success(), "second sink exit {st}:\n{log}");
    assert!(
        log.contains("assigned=[(0, Some("),
        "the second sink never got its partitions:\n{log}"
    );
    assert_eq!(
        view.files().len(),
        files_before,
        "the second sink wrote data:\n{log}"
    );
    assert_exactly_once(&view, &targets, n);
}

#[test]
fn sink_killed_five_times_mid_run_leaves_every_event_exactly_once() {
    let stack = Stack::get();
    let n = 300_000u64;
    let Produced {
        topic,
        lake,
        targets,
        dir,
        view,
    } = Produced::new(&stack, "crash", n, 11);

    // Kill moments spread over a sink's life: before its first commit, between commits and in
    // the middle of writing one (pseudo-random, reproducible from the printed seed).
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    eprintln!("crash test kill-moment seed: {seed}");
    let mut x = seed | 1;
    let mut progress = vec![0i64];
    // At least 5 kills, and at least 3 of them after the lake moved (so that kills land
    // between and inside commits, not only before the first one).
    let moved = |p: &Vec<i64>| p.windows(2).filter(|w| w[1] > w[0]).count();
    let mut kills = 0;
    while (kills < 6 || moved(&progress) < 3) && kills < 12 {
        let sink = Proc::spawn(
            sink_cmd(&stack, &topic, &unique("g"), &lake),
            &format!("sink{kills}"),
            dir.path(),
        );
        // Wait for this member to own its partitions.
        let joined = Instant::now();
        while !sink.log().contains("partitions assigned") {
            assert!(
                joined.elapsed() < Duration::from_secs(60),
                "no assignment:\n{}",
                sink.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if kills % 2 == 0 {
            // Anywhere in the first seconds: recovery, first fetch, first writes.
            std::thread::sleep(Duration::from_millis(300 + x % 4000));
        } else {
            // Shortly after this member's first commit: between or inside later ones.
            let before: i64 = progress.last().copied().unwrap_or(0);
            while view.committed_ends(targets.len()).iter().sum::<i64>() <= before {
                assert!(
                    joined.elapsed() < Duration::from_secs(90),
                    "no commit:\n{}",
                    sink.log()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(x % 1000));
        }
        sink.kill();
        kills += 1;
        let ends = view.committed_ends(targets.len());
        progress.push(ends.iter().sum::<i64>());
        if ends == targets {
            break; // everything is in: more kills would test nothing
        }
    }
    eprintln!("committed after each kill: {progress:?} of {n}");
    assert!(
        kills >= 5 && moved(&progress) >= 3,
        "{kills} kills, {} of them after progress, before the sink caught up: make the run longer",
        moved(&progress)
    );

    let last = Proc::spawn(
        sink_cmd(&stack, &topic, &unique("g"), &lake),
        "final",
        dir.path(),
    );
    wait_caught_up(&view, &targets, Duration::from_secs(300), || last.log());
    let (st, log) = last.term(Duration::from_secs(30));
    assert!(st.success(), "final sink exit {st}:\n{log}");
    assert_exactly_once(&view, &targets, n);
}

#[test]
fn a_member_leaving_mid_run_hands_its_partitions_over_exactly_once() {
    let stack = Stack::get();
    let n = 120_000u64;
    let Produced {
        topic,
        lake,
        targets,
        dir,
        view,
    } = Produced::new(&stack, "rebal", n, 13);
    let group = unique("g");

    let a = Proc::spawn(sink_cmd(&stack, &topic, &group, &lake), "a", dir.path());
    let b = Proc::spawn(sink_cmd(&stack, &topic, &group, &lake), "b", dir.path());
    // Both members own partitions and the lake has moved, but is far from done.
    let started = Instant::now();
    loop {
        let shared = [&a, &b].iter().all(|p| {
            p.log()
                .lines()
                .rfind(|l| l.contains("partitions assigned"))
                .is_some_and(|l| !l.contains("assigned=[]"))
        });
        let done: i64 = view.committed_ends(targets.len()).iter().sum();
        if shared && done > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the two members never shared the topic:\n--- a\n{}\n--- b\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let at_stop: i64 = view.committed_ends(targets.len()).iter().sum();
    assert!(
        at_stop < n as i64,
        "the lake was complete before a member left"
    );
    let (st, log_a) = a.term(Duration::from_secs(60));
    assert!(st.success(), "member a exit {st}:\n{log_a}");

    // a's drain may already have committed everything it owned; either way its partitions must
    // move to b (the group rebalances when a leaves), and the lake must end complete.
    let end = Instant::now() + Duration::from_secs(90);
    while b.log().matches("partitions assigned").count() < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_caught_up(&view, &targets, Duration::from_secs(300), || b.log());
    let log_b = b.log();
    let (st, _) = b.term(Duration::from_secs(30));
    assert!(st.success(), "member b exit {st}:\n{log_b}");
    assert!(
        log_b.matches("partitions assigned").count() >= 2,
        "member b never took over a's partitions:\n{log_b}"
    );
    assert_exactly_once(&view, &targets, n);
}

#[test]
fn unreachable_brokers_fail_fast_with_exit_2() {
    let stack = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = stack
        .encore()
        .args(["run", "--brokers", "127.0.0.1:1", "--connect-timeout", "2s"])
        .args(["--events", "10", "--max-rate", "--lake"])
        .arg(dir.path().join("lake"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot reach Kafka at `127.0.0.1:1` within 2s"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn sink_refuses_a_missing_topic_and_creates_nothing() {
    let stack = Stack::get();
    let topic = unique("missing");
    let dir = tempfile::tempdir().unwrap();
    let out = stack
        .encore()
        .args(["sink", "--topic", &topic, "--lake"])
        .arg(dir.path().join("lake"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("topic `{topic}` does not exist")),
        "{stderr}"
    );
    let c: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.brokers)
        .create()
        .unwrap();
    use rdkafka::consumer::Consumer;
    let md = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    assert!(
        md.topics().iter().all(|t| t.name() != topic),
        "the sink created the topic"
    );
}

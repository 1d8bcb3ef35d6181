//! Against the real stack (`scripts/stack.sh up`): encore's Kafka producer and group-member
//! sink with Apache Kafka, the lake on s3s-fs. Each test uses its own topic, group and bucket.
//! Restarted sinks rejoin the same group, as in production: the broker hands a dead member's
//! partitions over after its session timeout, or at once to a static member (`--instance-id`).

mod common;

use std::time::{Duration, Instant};

use common::checks::{assert_exactly_once, term_when_caught_up, wait_caught_up};
use common::lake::LakeView;
use common::process::Proc;
use common::stack::{Stack, unique};

const PARTITIONS: u32 = 4;

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
    let (code, report) = stack.verify(&topic, &lake, &[]);
    assert_eq!(code, Some(0), "verify:\n{report}");
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
        stack.small_batch_sink(&topic, &unique("g"), &lake),
        "sink",
        dir.path(),
    );
    term_when_caught_up(sink, &view, &targets, Duration::from_secs(120));
    assert_exactly_once(&view, &targets, n);
    let files_before = view.files().len();

    // A restart in another group resumes from the lake, not from offset 0: nothing is added.
    // Once it owns its partitions (positions from the lake) it has nothing to read; its drain
    // on SIGTERM flushes whatever it did read, which must be nothing.
    let again = Proc::spawn(
        stack.small_batch_sink(&topic, &unique("g"), &lake),
        "again",
        dir.path(),
    );
    again.wait_log("assigned=[(0, Some(", Duration::from_secs(60));
    let log = again.term_ok(Duration::from_secs(30));
    assert_eq!(
        view.files().len(),
        files_before,
        "the second sink wrote data:\n{log}"
    );
    assert_exactly_once(&view, &targets, n);
}

/// Where a SIGKILL landed, read from the lake after the kill (the lake no longer changes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum KillMoment {
    /// This member had committed nothing yet (recovery, first fetches, first writes).
    BeforeFirstCommit,
    /// A commit intent without its marker was left behind: the kill interrupted a commit.
    IntentPending,
    /// After this member's commits, none in progress.
    BetweenCommits,
}

/// The crash test, restarting in the same group each time: with `static_id`, as a static
/// member (`--instance-id`) that takes its partitions back at once; without, as a new member
/// that gets them once the dead one's 6 s session has expired.
fn crash_in_the_same_group(prefix: &str, seed: u64, static_id: bool) {
    let stack = Stack::get();
    let n = 300_000u64;
    let Produced {
        topic,
        lake,
        targets,
        dir,
        view,
    } = Produced::new(&stack, prefix, n, seed);
    let group = unique("g");
    let instance = unique("sink");
    // A member held at its first commit once a data file is written (its intent pending):
    // killing it there does not depend on hitting a commit's few milliseconds.
    let never = dir.path().join("never-created");
    let member = |held: bool| {
        let mut c = stack.small_batch_sink(&topic, &group, &lake);
        if held {
            let hold = format!("commit.after_file=hold:{}", never.display());
            c.env("ENCORE_FAILPOINTS", hold);
        }
        if static_id {
            c.args(["--instance-id", &instance]);
        } else {
            c.args(["--kafka-config", "session.timeout.ms=6000"]);
        }
        c
    };
    // Kill moments spread over a sink's life (pseudo-random, reproducible from the seed).
    let kill_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    eprintln!("crash test kill-moment seed: {kill_seed}");
    let mut x = kill_seed | 1;
    let mut moments = std::collections::BTreeMap::<KillMoment, u32>::new();
    let mut kills = 0;
    let mut slowest_assignment = Duration::ZERO;
    while (kills < 5 || moments.len() < 3) && kills < 16 {
        let before: i64 = view.committed_ends(targets.len()).iter().sum();
        // Intents an earlier kill left stay until the next commit from their offset (their
        // writer might have been alive): only new ones are this kill's.
        let open_before = view.interrupted_intents();
        let new_intent = || !view.interrupted_intents().is_subset(&open_before);
        if before == n as i64 {
            break; // everything is in: more kills would test nothing
        }
        let sink = Proc::spawn(member(kills % 3 == 2), &format!("sink{kills}"), dir.path());
        let joined = Instant::now();
        sink.wait_log("partitions assigned", Duration::from_secs(60));
        slowest_assignment = slowest_assignment.max(joined.elapsed());
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        match kills % 3 {
            // Right after the assignment: recovery, first fetch, first writes.
            0 => std::thread::sleep(Duration::from_millis(x % 50)),
            // Inside a commit: its intent and a data file written, its marker not yet.
            2 => sink.wait_log("failpoint commit.after_file", Duration::from_secs(90)),
            // Just after this member's first commit: inside or between later ones.
            _ => {
                while view.committed_ends(targets.len()).iter().sum::<i64>() <= before {
                    assert!(
                        joined.elapsed() < Duration::from_secs(90),
                        "no commit:\n{}",
                        sink.log()
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::thread::sleep(Duration::from_millis(x % 400));
            }
        }
        sink.kill();
        kills += 1;
        let after: i64 = view.committed_ends(targets.len()).iter().sum();
        let moment = if new_intent() {
            KillMoment::IntentPending
        } else if after > before {
            KillMoment::BetweenCommits
        } else {
            KillMoment::BeforeFirstCommit
        };
        *moments.entry(moment).or_default() += 1;
    }
    eprintln!(
        "{kills} kills in one group (static membership: {static_id}): {moments:?}; slowest assignment {slowest_assignment:?}"
    );
    assert_eq!(
        moments.len(),
        3,
        "every kind of kill moment must happen: {moments:?} after {kills} kills"
    );
    if static_id {
        // A static member gets its partitions back without waiting for the dead one's
        // session (librdkafka's 45 s default) to expire: a bound on behaviour, not on speed.
        assert!(
            slowest_assignment < Duration::from_secs(30),
            "a restarted static member waited {slowest_assignment:?} for its partitions"
        );
    }

    let last = Proc::spawn(member(false), "final", dir.path());
    term_when_caught_up(last, &view, &targets, Duration::from_secs(300));
    assert_eq!(
        view.interrupted_commits(),
        0,
        "an interrupted commit survived recovery"
    );
    assert_exactly_once(&view, &targets, n);
}

#[test]
fn sink_killed_repeatedly_and_restarted_in_its_group_is_exactly_once() {
    crash_in_the_same_group("crash", 11, false);
}

#[test]
fn static_member_killed_repeatedly_takes_its_partitions_back_and_is_exactly_once() {
    crash_in_the_same_group("crashstatic", 17, true);
}

#[test]
fn rolling_restart_of_three_sinks_in_one_group_is_exactly_once() {
    let stack = Stack::get();
    let topic = unique("roll");
    let lake = format!("s3://{}/r", unique("lake"));
    let group = unique("g");
    let dir = tempfile::tempdir().unwrap();
    // Listeners publish in real time for the whole restart, so that members come and go
    // while records arrive.
    let mut producer = stack.encore();
    producer
        .args(["simulate", "--users", "1000", "--speed", "50"])
        .args(["--duration", "1h", "--topic", &topic])
        .args(["--partitions", "6", "--seed", "23"]);
    let mut producer = Proc::spawn(producer, "simulate", dir.path());
    let view = LakeView::open(&stack, &lake, &topic);
    let started = Instant::now();
    while !stack.topic_exists(&topic) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no topic:\n{}",
            producer.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let spawn = |name: &str| {
        let p = Proc::spawn(
            stack.small_batch_sink(&topic, &group, &lake),
            name,
            dir.path(),
        );
        p.wait_log("partitions assigned", Duration::from_secs(60));
        p
    };
    let mut members = vec![spawn("a0"), spawn("b0"), spawn("c0")];
    let mut committed_during = Vec::new();
    for round in 1..=2 {
        for i in 0..3 {
            let before: i64 = view.committed_ends(6).iter().sum();
            // Wait for the lake to move before the next member leaves.
            let t = Instant::now();
            while view.committed_ends(6).iter().sum::<i64>() <= before {
                assert!(
                    t.elapsed() < Duration::from_secs(60),
                    "no progress:\n{}",
                    members[i].log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            let old = std::mem::replace(
                &mut members[i],
                Proc::spawn(
                    stack.small_batch_sink(&topic, &group, &lake),
                    &format!("{}{round}", ["a", "b", "c"][i]),
                    dir.path(),
                ),
            );
            old.term_ok(Duration::from_secs(60));
            members[i].wait_log("partitions assigned", Duration::from_secs(60));
            committed_during.push(view.committed_ends(6).iter().sum::<i64>());
        }
    }
    // Publishing went on through every change; SIGTERM stops it with every record
    // acknowledged.
    assert!(
        producer.running(),
        "the producer ended early:\n{}",
        producer.log()
    );
    producer.term_ok(Duration::from_secs(60));
    let targets = stack.high_watermarks(&topic);
    let total: i64 = targets.iter().sum();
    eprintln!(
        "rolling restart: committed {committed_during:?} while members changed; {total} records"
    );
    wait_caught_up(&view, &targets, Duration::from_secs(300), || {
        members
            .iter()
            .map(|m| m.log())
            .collect::<Vec<_>>()
            .join("\n----\n")
    });
    for m in members {
        m.term_ok(Duration::from_secs(60));
    }
    assert_exactly_once(&view, &targets, total as u64);
    stack.verify_exact(&topic, &lake, total as u64, 0);
}

#[test]
fn a_member_leaving_mid_run_hands_its_partitions_over_exactly_once() {
    let stack = Stack::get();
    // Half before the members start, half once one has left: however fast the sinks are,
    // the lake cannot be complete when a member leaves, and what comes after goes to b.
    let n = 120_000u64;
    let Produced {
        topic,
        lake,
        targets,
        dir,
        view,
    } = Produced::new(&stack, "rebal", n / 2, 13);
    let group = unique("g");

    let a = Proc::spawn(
        stack.small_batch_sink(&topic, &group, &lake),
        "a",
        dir.path(),
    );
    let b = Proc::spawn(
        stack.small_batch_sink(&topic, &group, &lake),
        "b",
        dir.path(),
    );
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
    a.term_ok(Duration::from_secs(60));
    stack.produce(&topic, PARTITIONS, n / 2, 14);
    let targets = stack.high_watermarks(&topic);

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
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = stack.kafka_config().create().unwrap();
    let md = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    assert!(
        md.topics().iter().all(|t| t.name() != topic),
        "the sink created the topic"
    );
}

/// `--exit-at-end` on a topic that keeps growing (a producer writes all along): the sink reads
/// at least up to the ends it saw at start, commits and exits 0.
#[test]
fn exit_at_end_stops_at_the_start_ends_while_the_topic_grows() {
    let stack = Stack::get();
    let Produced {
        topic,
        lake,
        targets,
        dir,
        view,
    } = Produced::new(&stack, "growing", 50_000, 51);
    let mut simulate = stack.encore();
    simulate.args(["simulate", "--topic", &topic, "--users", "2000"]);
    simulate.args(["--duration", "5m"]);
    let producer = Proc::spawn(simulate, "producer", dir.path());
    let before: i64 = targets.iter().sum();
    common::wait_for("the topic to grow", Duration::from_secs(60), || {
        stack.high_watermarks(&topic).iter().sum::<i64>() > before
    });
    let mut c = stack.small_batch_sink(&topic, &unique("g"), &lake);
    c.arg("--exit-at-end");
    let mut sink = Proc::spawn_capturing(c, "sink", dir.path());
    let (status, out) = sink.wait_output(Duration::from_secs(180));
    assert!(status.success(), "exit {status}:\n{out}\n{}", sink.log());
    assert!(out.contains("--exit-at-end"), "the stop reason:\n{out}");
    let ends = view.committed_ends(targets.len());
    assert!(
        ends.iter().zip(&targets).all(|(e, t)| e >= t),
        "committed up to {ends:?}, the topic held {targets:?} before the sink started"
    );
    drop(producer);
}

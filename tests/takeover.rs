//! Against the real stack: sink members that lose their partitions while they write, and the
//! lake protocol interrupted at each of its steps by failpoints in the real code
//! (`ENCORE_FAILPOINTS`, compiled in with the `stack-tests` feature). Every test ends with the
//! lake holding every record of the topic exactly once, no file of a lost batch left.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::checks::{assert_exactly_once, term_when_caught_up, wait_caught_up};
use common::lake::LakeView;
use common::process::Proc;
use common::stack::{Stack, unique};
use encore::failpoint;

const PARTITIONS: u32 = 4;

/// A topic of `n` events and a lake for it (`lake` is an S3 URL or a local directory).
fn topic_and_view(stack: &Stack, prefix: &str, n: u64, seed: u64, lake: &str) -> Topic {
    let topic = unique(prefix);
    stack.produce(&topic, PARTITIONS, n, seed);
    let targets = stack.high_watermarks(&topic);
    let view = LakeView::open(stack, lake, &topic);
    Topic {
        name: topic,
        targets,
        view,
    }
}

struct Topic {
    name: String,
    targets: Vec<i64>,
    view: LakeView,
}

/// The partitions of a member's latest assignment, from its log
/// (`assigned=[(0, Some(12)), (2, None)]`).
fn assigned(log: &str) -> Vec<i32> {
    let Some(line) = log.lines().rfind(|l| l.contains("partitions assigned")) else {
        return Vec::new();
    };
    line.split('(')
        .skip(1)
        .filter_map(|s| s.split(',').next()?.trim().parse().ok())
        .collect()
}

/// The steps to crash at, with which hit of each: early enough that the topic is not consumed
/// yet, late enough that commits happened before (and, with four partitions written at once,
/// others are in flight). A crash after an intent leaves it to the next member, whose first
/// commit from that offset clears it: that member crashes there.
const STEPS: &[(&str, u32)] = &[
    (failpoint::CLAIM_BEFORE, 1),
    (failpoint::CLAIM_AFTER, 2),
    (failpoint::COMMIT_AFTER_INTENT, 3),
    (failpoint::BEATEN_AFTER_FILES, 1),
    (failpoint::RECOVERY_BEFORE_CHECKPOINT, 3),
    (failpoint::COMMIT_AFTER_FILE, 2),
    (failpoint::COMMIT_BEFORE_MARKER, 3),
    (failpoint::COMMIT_AFTER_MARKER, 3),
    (failpoint::COMMIT_DONE, 3),
];

#[test]
fn a_crash_at_every_step_of_the_protocol_is_recovered_exactly_once() {
    assert_eq!(
        STEPS.len(),
        failpoint::NAMES.len(),
        "every failpoint is crashed at"
    );
    let stack = Stack::get();
    let n = 200_000u64;
    let lake = format!("s3://{}/p", unique("lake"));
    let t = topic_and_view(&stack, "steps", n, 23, &lake);
    let dir = tempfile::tempdir().unwrap();
    let group = unique("g");
    // A static member takes its partitions back at once after a crash.
    let instance = unique("sink");
    let member = || {
        let mut c = stack.small_batch_sink(&t.name, &group, &lake);
        c.args(["--instance-id", &instance]);
        c
    };
    for (i, &(step, hit)) in STEPS.iter().enumerate() {
        let mut cmd = member();
        cmd.env("ENCORE_FAILPOINTS", format!("{step}=abort@{hit}"));
        let mut sink = Proc::spawn(cmd, &format!("crash{i}"), dir.path());
        let (status, _) = sink.wait_output(Duration::from_secs(180));
        assert_eq!(
            status.signal(),
            Some(6),
            "{step}@{hit}: the member must abort there, not {status}:\n{}",
            sink.log()
        );
        assert!(
            sink.log().contains(&format!("failpoint {step}: abort")),
            "{step}@{hit}: aborted elsewhere:\n{}",
            sink.log()
        );
        let ends: i64 = t.view.committed_ends(t.targets.len()).iter().sum();
        assert!(
            ends < n as i64,
            "{step}: the topic was consumed before the last steps were crashed at"
        );
    }
    let last = Proc::spawn(member(), "final", dir.path());
    term_when_caught_up(last, &t.view, &t.targets, Duration::from_secs(300));
    assert_eq!(
        t.view.interrupted_commits(),
        0,
        "an interrupted commit survived recovery"
    );
    assert_exactly_once(&t.view, &t.targets, n);
    stack.verify_exact(&t.name, &lake, n, 0);
}

/// The data-loss scenario, made deterministic: member A's commits are held at `step`
/// (its S3 writes stall) past its revocation; B joins, takes half the partitions, recovers
/// them and commits from the offsets A is holding; then A is released. A must not make its
/// held ranges of B's partitions visible, and must remove what it wrote of them.
fn held_past_revocation(step: &str, prefix: &str, seed: u64) {
    let stack = Stack::get();
    let n = 100_000u64;
    let lake = format!("s3://{}/p", unique("lake"));
    let t = topic_and_view(&stack, prefix, n, seed, &lake);
    let dir = tempfile::tempdir().unwrap();
    let group = unique("g");
    let release = dir.path().join("release");

    let mut a_cmd = stack.small_batch_sink(&t.name, &group, &lake);
    a_cmd.env(
        "ENCORE_FAILPOINTS",
        format!("{step}=hold:{}", release.display()),
    );
    let a = Proc::spawn(a_cmd, "a", dir.path());
    a.wait_log(
        &format!("failpoint {step}: holding"),
        Duration::from_secs(90),
    );
    assert_eq!(
        t.view.committed_ends(t.targets.len()).iter().sum::<i64>(),
        0,
        "A committed although every commit of it is held"
    );

    let b = Proc::spawn(
        stack.small_batch_sink(&t.name, &group, &lake),
        "b",
        dir.path(),
    );
    // B owns some partitions and has committed on each of them: from the offsets A holds.
    let started = Instant::now();
    let taken = loop {
        let mine = assigned(&b.log());
        let ends = t.view.committed_ends(t.targets.len());
        if !mine.is_empty() && mine.iter().all(|&p| ends[p as usize] > 0) {
            break mine;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "B never committed on its partitions {mine:?} (ends {ends:?}):\n--- a\n{}\n--- b\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::fs::write(&release, b"").unwrap();
    wait_caught_up(&t.view, &t.targets, Duration::from_secs(300), || {
        format!("--- a\n{}\n--- b\n{}", a.log(), b.log())
    });
    let log_a = a.term_ok(Duration::from_secs(60));
    b.term_ok(Duration::from_secs(60));
    assert!(
        log_a.contains("batch not committed"),
        "A's held batches of B's partitions {taken:?} were not refused:\n{log_a}"
    );
    assert_eq!(t.view.interrupted_commits(), 0, "an intent was left behind");
    assert_exactly_once(&t.view, &t.targets, n);
    stack.verify_exact(&t.name, &lake, n, 0);
}

#[test]
fn a_member_held_after_its_intent_past_its_revocation_is_fenced() {
    held_past_revocation(failpoint::COMMIT_AFTER_INTENT, "heldintent", 29);
}

#[test]
fn a_member_held_before_its_marker_loses_the_name_to_the_new_owner() {
    held_past_revocation(failpoint::COMMIT_BEFORE_MARKER, "heldmarker", 31);
}

/// A member frozen (SIGSTOP) beyond its session timeout while it writes: the group hands its
/// partitions to the other member, which claims them; thawed, the frozen one must not commit
/// anything it wrote before, rejoin, and the run must end with every event exactly once, as
/// `encore verify` and pyarrow read the lake.
#[test]
fn a_member_frozen_past_its_session_is_fenced_and_every_event_lands_once() {
    let stack = Stack::get();
    let n = 600_000u64;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    let t = topic_and_view(&stack, "frozen", n, 37, &lake);
    let group = unique("g");
    let member = |name: &str| {
        let mut c = stack.small_batch_sink(&t.name, &group, &lake);
        c.args(["--kafka-config", "session.timeout.ms=6000"]);
        Proc::spawn(c, name, dir.path())
    };
    let a = member("a");
    a.wait_log("partitions assigned", Duration::from_secs(60));
    let started = Instant::now();
    while t.view.committed_ends(t.targets.len()).iter().sum::<i64>() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "A never committed:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    a.freeze();
    let at_freeze: i64 = t.view.committed_ends(t.targets.len()).iter().sum();
    let b = member("b");
    // B gets every partition once A's session has expired, and moves the lake on.
    let started = Instant::now();
    loop {
        let done: i64 = t.view.committed_ends(t.targets.len()).iter().sum();
        if assigned(&b.log()).len() == PARTITIONS as usize && done > at_freeze {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "B never took A's partitions over:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    a.thaw();
    wait_caught_up(&t.view, &t.targets, Duration::from_secs(300), || {
        format!("--- a\n{}\n--- b\n{}", a.log(), b.log())
    });
    a.term_ok(Duration::from_secs(60));
    b.term_ok(Duration::from_secs(60));
    assert_eq!(t.view.interrupted_commits(), 0, "an intent was left behind");
    assert_exactly_once(&t.view, &t.targets, n);
    stack.verify_exact(&t.name, &lake, n, 0);
    let out = std::process::Command::new("python3")
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check_lake.py"),
            &lake,
            &n.to_string(),
            &t.name,
        ])
        .output()
        .expect("python3 runs scripts/check_lake.py");
    assert!(
        out.status.success(),
        "pyarrow's reading of the lake:\n{}",
        common::process::text(&out)
    );
}

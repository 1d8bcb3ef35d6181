//! What a real Apache Kafka broker does to a topic, against the stack: transactions (aborted
//! records and markers leave offsets without records), a topic deleted and created again under
//! the same name, and SASL/PLAIN authentication with ACLs on the stack's second listener.

mod common;

use std::time::{Duration, Instant};

use common::checks::{term_when_caught_up, wait_caught_up};
use common::lake::LakeView;
use common::process::{Proc, text};
use common::rt;
use common::stack::{Stack, stack_sh, unique};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

const PARTITIONS: u32 = 4;

fn admin(stack: &Stack) -> AdminClient<DefaultClientContext> {
    stack.kafka_config().create().expect("an admin client")
}

/// Writes `n` records per partition of `value` in one transaction, then commits or aborts it.
fn transaction(stack: &Stack, topic: &str, n: usize, value: &[u8], commit: bool) {
    let p: ThreadedProducer<DefaultProducerContext> = stack
        .kafka_config()
        .set("transactional.id", unique("tx"))
        .create()
        .expect("a transactional producer");
    let t = Duration::from_secs(30);
    p.init_transactions(t).expect("init_transactions");
    p.begin_transaction().expect("begin_transaction");
    for part in 0..PARTITIONS as i32 {
        for _ in 0..n {
            p.send(
                BaseRecord::<(), _>::to(topic)
                    .partition(part)
                    .payload(value),
            )
            .map_err(|(e, _)| e)
            .expect("queueing a record");
        }
    }
    if commit {
        p.commit_transaction(t).expect("commit_transaction");
    } else {
        p.flush(t).expect("flush");
        p.abort_transaction(t).expect("abort_transaction");
    }
}

/// A sink of `topic` into `lake` with 1 s flushes, so that batches end where the topic ends.
fn sink(
    stack: &Stack,
    topic: &str,
    group: &str,
    lake: &str,
    name: &str,
    dir: &std::path::Path,
) -> Proc {
    let mut c = stack.encore();
    c.args(["sink", "--topic", topic, "--group", group, "--lake", lake])
        .args(["--flush-interval", "1s"]);
    Proc::spawn(c, name, dir)
}

#[test]
fn aborted_transactions_leave_holes_the_sink_drains_and_verify_accepts() {
    let stack = Stack::get();
    let topic = unique("txn");
    let group = unique("g");
    let lake = format!("s3://{}/t", unique("lake"));
    let dir = tempfile::tempdir().unwrap();
    let view = LakeView::open(&stack, &lake, &topic);
    stack.produce(&topic, PARTITIONS, 8_000, 31);

    // A running sink, caught up: its last batches end at the topic's last records.
    let running = sink(&stack, &topic, &group, &lake, "sink1", dir.path());
    wait_caught_up(
        &view,
        &stack.high_watermarks(&topic),
        Duration::from_secs(120),
        || running.log(),
    );
    // Aborted: records no read_committed consumer sees, then an abort marker.
    transaction(&stack, &topic, 500, b"{\"aborted\": true}", false);
    // Committed: records that are not events (dead letters), then a commit marker.
    transaction(&stack, &topic, 25, b"{\"not\": \"an event\"}", true);
    transaction(&stack, &topic, 300, b"{\"aborted\": 2}", false);
    stack.produce(&topic, PARTITIONS, 8_000, 32);
    let targets = stack.high_watermarks(&topic);
    term_when_caught_up(running, &view, &targets, Duration::from_secs(120));

    // While no sink runs: the next one resumes from the lake just before another hole.
    transaction(&stack, &topic, 200, b"{\"aborted\": 3}", false);
    stack.produce(&topic, PARTITIONS, 4_000, 33);
    let resumed = sink(&stack, &topic, &group, &lake, "sink2", dir.path());
    let targets = stack.high_watermarks(&topic);
    term_when_caught_up(resumed, &view, &targets, Duration::from_secs(120));

    let records: i64 = stack.high_watermarks(&topic).iter().sum();
    let letters = 25 * PARTITIONS as u64;
    // 1000 aborted records and 4 markers per partition hold no record.
    let holes = records - 20_000 - letters as i64;
    assert_eq!(
        holes,
        (1000 + 4) * PARTITIONS as i64,
        "offsets without a record"
    );
    let (code, report) = stack.verify(&topic, &lake, &[]);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("verdict: CLEAN (20000 rows"), "{report}");
    assert!(
        report.contains(&format!(
            "Kafka: {records} records = lake rows 20000 + dead letters {letters} + offsets without a record {holes} + in flight 0"
        )),
        "{report}"
    );
    assert!(!report.contains("[gap]"), "{report}");
}

/// Partitions that end on transaction markers (a commit's, then an abort's): `encore sink
/// --exit-at-end` reaches the end it saw at start (librdkafka's position passes the markers,
/// no record does), commits ranges that cover them, and exits 0; verify finds nothing in
/// flight.
#[test]
fn exit_at_end_reaches_an_end_made_of_transaction_markers() {
    let stack = Stack::get();
    let topic = unique("txnend");
    let lake = format!("s3://{}/e", unique("lake"));
    let dir = tempfile::tempdir().unwrap();
    stack.produce(&topic, PARTITIONS, 4_000, 35);
    transaction(&stack, &topic, 20, b"{\"not\": \"an event\"}", true);
    transaction(&stack, &topic, 50, b"{\"aborted\": 4}", false);
    let targets = stack.high_watermarks(&topic);
    let out = stack.sink_to_end(&topic, &unique("g"), &lake, dir.path());
    assert!(out.contains("--exit-at-end"), "the stop reason:\n{out}");
    let view = LakeView::open(&stack, &lake, &topic);
    assert_eq!(
        view.committed_ends(PARTITIONS as usize),
        targets,
        "the lake reaches the markers"
    );
    let letters = 20 * PARTITIONS as u64;
    let (code, report) = stack.verify(&topic, &lake, &[]);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("verdict: CLEAN (4000 rows"), "{report}");
    assert!(
        report.contains(&format!("dead letters {letters} + ")) && report.contains("in flight 0"),
        "{report}"
    );
}

/// A partition the lake never had, holding only an aborted transaction and its marker: the
/// sink gets no record from it, and still reaches its end (the range starts at its low
/// watermark) instead of waiting for a record that never comes.
#[test]
fn exit_at_end_reaches_the_end_of_partitions_with_only_aborted_records() {
    let stack = Stack::get();
    let topic = unique("aborted");
    let lake = format!("s3://{}/a", unique("lake"));
    let dir = tempfile::tempdir().unwrap();
    let new = NewTopic::new(&topic, PARTITIONS as i32, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let created = rt().block_on(admin(&stack).create_topics([&new], &opts));
    assert!(
        created
            .expect("creating the topic")
            .iter()
            .all(|r| r.is_ok())
    );
    transaction(&stack, &topic, 30, b"{\"aborted\": 1}", false);
    let targets = stack.high_watermarks(&topic);
    assert!(
        targets.iter().all(|&t| t > 30),
        "records and markers: {targets:?}"
    );
    stack.sink_to_end(&topic, &unique("g"), &lake, dir.path());
    let view = LakeView::open(&stack, &lake, &topic);
    assert_eq!(view.committed_ends(PARTITIONS as usize), targets);
    let (code, report) = stack.verify(&topic, &lake, &[]);
    assert_eq!(code, Some(0), "{report}");
    let none = targets.iter().sum::<i64>();
    assert!(
        report.contains(&format!(
            "lake rows 0 + dead letters 0 + offsets without a record {none}"
        )),
        "{report}"
    );
}

#[test]
fn a_topic_deleted_and_created_again_is_refused_by_the_sink() {
    let stack = Stack::get();
    let topic = unique("recreate");
    let lake = format!("s3://{}/r", unique("lake"));
    let dir = tempfile::tempdir().unwrap();
    stack.produce(&topic, PARTITIONS, 4_000, 41);
    stack.sink_until_caught_up(&topic, &lake, &[], dir.path());

    let a = admin(&stack);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let res = rt()
        .block_on(a.delete_topics(&[&topic], &opts))
        .expect("deleting the topic");
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    // Deletion is asynchronous: create again once the broker lets us.
    let new = NewTopic::new(&topic, PARTITIONS as i32, TopicReplication::Fixed(1));
    let started = Instant::now();
    loop {
        let r = rt()
            .block_on(a.create_topics([&new], &opts))
            .expect("creating the topic");
        if r.iter().all(|r| r.is_ok()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{r:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    stack.produce(&topic, PARTITIONS, 1_000, 42);

    let out = stack
        .encore()
        .args([
            "sink",
            "--topic",
            &topic,
            "--group",
            &unique("g"),
            "--lake",
            &lake,
        ])
        .args(["--duration", "60s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("topic `{topic}` was deleted and created again")),
        "{stderr}"
    );
    // Nothing of the new topic reached the lake, and verify says why the offsets differ.
    let (code, report) = stack.verify(&topic, &lake, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains("4000 distinct events"), "{report}");
    assert!(
        report.contains(&format!(
            "[topic_recreated] topic {topic}: the lake holds records of topic id"
        )),
        "{report}"
    );
}

/// The stack's SASL listener and its users (scripts/stack.sh defines them).
fn sasl_brokers() -> String {
    std::env::var("ENCORE_KAFKA_SASL_BROKERS").unwrap_or_else(|_| "127.0.0.1:9094".into())
}

fn acls(args: &[&str]) {
    let mut all = vec!["kafka-acls"];
    all.extend_from_slice(args);
    stack_sh(&all);
}

/// A librdkafka properties file with `user`'s SASL/PLAIN credentials.
fn credentials(dir: &std::path::Path, user: &str, password: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{user}.properties"));
    std::fs::write(
        &path,
        format!(
            "# SASL/PLAIN on the stack's second listener\nsecurity.protocol=sasl_plaintext\nsasl.mechanism=PLAIN\nsasl.username={user}\nsasl.password={password}\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn sasl_credentials_from_a_file_work_and_missing_acls_are_named_with_exit_2() {
    let stack = Stack::get();
    let sasl = sasl_brokers();
    let topic = unique("sasl");
    let group = unique("g");
    let dlq = format!("{topic}.dlq");
    let lake = format!("s3://{}/s", unique("lake"));
    let dir = tempfile::tempdir().unwrap();
    let (writer, reader) = (
        credentials(dir.path(), "encore-writer", "writer-secret"),
        credentials(dir.path(), "encore-reader", "reader-secret"),
    );
    // Topics made by the super user (the PLAINTEXT listener).
    stack.produce(&topic, PARTITIONS, 2_000, 51);
    let a = admin(&stack);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    rt().block_on(a.create_topics(
        [&NewTopic::new(
            &dlq,
            PARTITIONS as i32,
            TopicReplication::Fixed(1),
        )],
        &opts,
    ))
    .expect("creating the dead-letter topic");
    acls(&[
        "--add",
        "--allow-principal",
        "User:encore-writer",
        "--operation",
        "Write",
        "--operation",
        "Describe",
        "--topic",
        &topic,
    ]);
    acls(&[
        "--add",
        "--allow-principal",
        "User:encore-reader",
        "--operation",
        "Read",
        "--operation",
        "Describe",
        "--topic",
        &topic,
    ]);
    acls(&[
        "--add",
        "--allow-principal",
        "User:encore-reader",
        "--operation",
        "Describe",
        "--topic",
        &dlq,
    ]);

    let encore = |creds: &std::path::Path| {
        let mut c = stack.encore();
        c.env("ENCORE_BROKERS", &sasl)
            .env("ENCORE_KAFKA_CONFIG_FILE", creds);
        c
    };
    let no_secret = |out: &std::process::Output| {
        let all = text(out);
        assert!(
            !all.contains("writer-secret") && !all.contains("reader-secret"),
            "a password was printed:\n{all}"
        );
        all
    };

    // The writer publishes with credentials from the file.
    let out = encore(&writer)
        .args([
            "simulate",
            "--max-rate",
            "--users",
            "50",
            "--events",
            "1000",
        ])
        .args(["--topic", &topic, "--seed", "52"])
        .output()
        .unwrap();
    let all = no_secret(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("1000 acknowledged by Kafka, 0 failed"),
        "{all}"
    );

    // The reader may not write: simulate names the missing permission, exit 2.
    let out = encore(&reader)
        .args(["simulate", "--max-rate", "--users", "5", "--events", "10"])
        .args(["--topic", &topic])
        .output()
        .unwrap();
    let all = no_secret(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains(&format!(
            "Kafka denies User:encore-reader the WRITE permission on topic `{topic}`"
        )),
        "{all}"
    );

    // The sink needs WRITE on the dead-letter topic too: named before anything is read.
    let sink = |extra: &[&str]| {
        encore(&reader)
            .args([
                "sink", "--topic", &topic, "--group", &group, "--lake", &lake,
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = sink(&["--duration", "30s"]);
    let all = no_secret(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains(&format!(
            "Kafka denies User:encore-reader the WRITE permission on topic `{dlq}`"
        )),
        "{all}"
    );

    // With WRITE on the dead-letter topic but without READ on its consumer group, the member
    // would wait forever: it stops, naming what is missing.
    acls(&[
        "--add",
        "--allow-principal",
        "User:encore-reader",
        "--operation",
        "Write",
        "--topic",
        &dlq,
    ]);
    let out = sink(&["--duration", "30s"]);
    let all = no_secret(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("Kafka denies this sink's principal what a group member needs")
            && all.contains("Group authorization failed"),
        "{all}"
    );
    acls(&[
        "--add",
        "--allow-principal",
        "User:encore-reader",
        "--operation",
        "Read",
        "--group",
        &group,
    ]);

    // Granted, the same sink reads the whole topic into the lake.
    let targets = stack.high_watermarks(&topic);
    let mut p = encore(&reader);
    p.args([
        "sink", "--topic", &topic, "--group", &group, "--lake", &lake,
    ]);
    let proc = Proc::spawn(p, "sasl-sink", dir.path());
    let view = LakeView::open(&stack, &lake, &topic);
    let log = term_when_caught_up(proc, &view, &targets, Duration::from_secs(120));
    assert!(!log.contains("reader-secret"), "{log}");
    stack.verify_exact(&topic, &lake, 3_000, 0);
}

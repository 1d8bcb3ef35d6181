//! Faults of the real stack's broker while encore runs. A separate test binary: pausing the
//! shared broker would disturb the other Kafka tests, and cargo runs test binaries one at a time.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::stack::{LakeView, Proc, Stack, assert_exactly_once, unique};

fn stack_sh(args: &[&str]) {
    let st = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack.sh"))
        .args(args)
        .status()
        .expect("running scripts/stack.sh");
    assert!(st.success(), "scripts/stack.sh {args:?} failed");
}

/// Resumes the broker however the test ends.
struct Paused;

impl Paused {
    fn broker() -> Paused {
        stack_sh(&["pause", "tansu"]);
        Paused
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        stack_sh(&["resume", "tansu"]);
    }
}

/// The number after `label` in encore's summary.
fn figure(summary: &str, label: &str) -> u64 {
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

#[test]
fn broker_away_for_20s_mid_run_loses_nothing_and_the_run_completes() {
    let stack = Stack::get();
    let (topic, group, bucket) = (unique("pause"), unique("g"), unique("lake"));
    let lake = format!("s3://{bucket}/p");
    let dir = tempfile::tempdir().unwrap();
    let mut run = stack.encore();
    // Realtime, so that listeners keep publishing through the outage (~2000 events/s).
    run.args([
        "run",
        "--users",
        "1000",
        "--speed",
        "50",
        "--duration",
        "45s",
    ])
    .args(["--topic", &topic, "--group", &group, "--lake", &lake])
    .args([
        "--partitions",
        "4",
        "--batch-rows",
        "20000",
        "--flush-interval",
        "2s",
    ]);
    let mut proc = Proc::spawn_capturing(run, "run", dir.path());
    let view = LakeView::open(&stack, &lake, &topic);

    // Once the lake has data, the broker stops answering for 20 s.
    let started = Instant::now();
    while view.committed_ends(4).iter().sum::<i64>() == 0 {
        assert!(proc.running(), "encore run ended early:\n{}", proc.log());
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no commit within 60 s:\n{}",
            proc.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    {
        let _paused = Paused::broker();
        std::thread::sleep(Duration::from_secs(20));
        assert!(
            proc.running(),
            "encore run died while the broker was away:\n{}",
            proc.log()
        );
    }

    let out = proc.wait_output(Duration::from_secs(300));
    let log = proc.log();
    assert!(out.0.success(), "encore run exit {}:\n{log}", out.0);
    let summary = out.1;
    let published = figure(&summary, "delivered");
    assert!(
        published > 20_000,
        "too few events to mean anything:\n{summary}"
    );
    assert!(
        summary.contains(&format!("{published} acknowledged by Kafka, 0 failed")),
        "{summary}"
    );
    assert_eq!(
        figure(&summary, "rows written"),
        published,
        "{summary}\n{log}"
    );
    let targets = stack.high_watermarks(&topic);
    assert_exactly_once(&view, &targets, published);
}

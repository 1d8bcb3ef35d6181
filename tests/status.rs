//! `encore status` against the real stack: a topic a sink backfilled into an S3 lake, then
//! grew; per partition the topic's watermarks, the lake's position and lag, the sink group's
//! offset and, after `encore clickhouse setup`, ClickHouse's queue caught up to the end.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::clickhouse::ChDatabase;
use common::lake::LakeView;
use common::process::text;
use common::stack::{Stack, unique};
use serde_json::Value;

const PARTITIONS: u32 = 3;
/// Events the sink backfills, then events produced after it.
const FIRST: u64 = 3_000;
const MORE: u64 = 700;
/// ClickHouse's Kafka engine polls and flushes on its own clock: generous.
const INGEST_DEADLINE: Duration = Duration::from_secs(120);

fn status(stack: &Stack, args: &[&str], db: Option<&ChDatabase>) -> Output {
    let mut c = stack.encore();
    c.arg("status").args(args);
    if let Some(db) = db {
        db.flags(&mut c);
    }
    c.output().expect("running encore status")
}

/// `encore status --json`, which must succeed.
fn json(stack: &Stack, args: &[&str], db: Option<&ChDatabase>) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = status(stack, &all, db);
    assert!(out.status.success(), "status failed: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// Field `stage.key` of every partition, as integers (None where absent).
fn column(report: &Value, stage: &str, key: &str) -> Vec<Option<i64>> {
    report["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p[stage][key].as_i64())
        .collect()
}

#[test]
fn status_reports_each_stage_per_partition() {
    let stack = Stack::get();
    let topic = unique("status");
    let group = unique("g");
    let lake = format!("s3://{}/s", unique("lake"));
    let dir = tempfile::tempdir().unwrap();
    stack.produce(&topic, PARTITIONS, FIRST, 61);
    stack.sink_to_end(&topic, &group, &lake, dir.path());
    stack.produce(&topic, PARTITIONS, MORE, 62);

    let args = ["--topic", &topic, "--group", &group, "--lake", &lake];
    let report = json(&stack, &args, None);
    let highs = stack.high_watermarks(&topic);
    let ends = LakeView::open(&stack, &lake, &topic).committed_ends(PARTITIONS as usize);
    let some = |v: &[i64]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
    assert_eq!(report["topic"], topic.as_str());
    let at = |key: &str| -> Vec<Option<i64>> {
        report["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[key].as_i64())
            .collect()
    };
    assert_eq!(at("high"), some(&highs), "{report:#}");
    assert_eq!(at("low"), vec![Some(0); PARTITIONS as usize]);
    assert_eq!(column(&report, "lake", "offset"), some(&ends), "{report:#}");
    let lake_lag: Vec<i64> = highs.iter().zip(&ends).map(|(h, e)| h - e).collect();
    assert_eq!(column(&report, "lake", "lag_records"), some(&lake_lag));
    assert_eq!(lake_lag.iter().sum::<i64>(), MORE as i64, "{report:#}");
    assert_eq!(report["totals"]["lake"]["lag_records"], MORE);
    // The waiting records were produced moments ago: a small, known age.
    let age = report["totals"]["lake"]["lag_seconds"].as_f64();
    assert!(age.is_some_and(|a| (0.0..600.0).contains(&a)), "{report:#}");
    // The sink's group committed offsets (for monitoring), never past the lake.
    let offsets = column(&report, "group", "offset");
    assert!(
        offsets
            .iter()
            .zip(&ends)
            .all(|(o, e)| o.is_some_and(|o| o <= *e)),
        "{report:#}"
    );
    assert_eq!(report["sources"]["group"], group.as_str());
    assert!(report["sources"]["clickhouse"].is_null());

    // The human view: one row per partition and a total.
    let out = status(&stack, &args, None);
    assert!(out.status.success(), "{}", text(&out));
    let human = String::from_utf8_lossy(&out.stdout);
    for (p, h) in highs.iter().enumerate() {
        let row = human
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&p.to_string()))
            .unwrap_or_else(|| panic!("no row of partition {p}:\n{human}"));
        assert!(row.split_whitespace().any(|w| w == h.to_string()), "{row}");
    }
    assert!(
        human.contains("PARTITION") && human.contains("TOTAL"),
        "{human}"
    );
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("TOTAL") && l.contains(&format!("{MORE} ("))),
        "{human}"
    );

    // ClickHouse set up for the topic in a fresh database: it reads the whole topic.
    let db = ChDatabase::new("status");
    let simple = unique("status-simple");
    let mut setup = stack.encore();
    setup
        .args([
            "clickhouse",
            "setup",
            "--topic",
            &topic,
            "--simple-topic",
            &simple,
        ])
        .args(["--partitions", &PARTITIONS.to_string()]);
    db.flags(&mut setup);
    let s = setup.output().unwrap();
    assert!(s.status.success(), "setup: {}", text(&s));
    let with_ch = [&args[..], &["--simple-topic", &simple]].concat();
    let end = Instant::now() + INGEST_DEADLINE;
    let report = loop {
        let r = json(&stack, &with_ch, Some(&db));
        let caught_up = r["totals"]["clickhouse"]["lag_records"].as_i64() == Some(0);
        if caught_up || Instant::now() > end {
            break r;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        report["totals"]["clickhouse"]["lag_records"], 0,
        "{report:#}"
    );
    assert_eq!(
        report["totals"]["clickhouse"]["lag_seconds"], 0.0,
        "{report:#}"
    );
    assert_eq!(column(&report, "clickhouse", "offset"), some(&highs));
    let queue = &report["sources"]["clickhouse"];
    assert_eq!(queue["database"], db.name.as_str(), "{report:#}");
    assert!(
        queue["table"]
            .as_str()
            .is_some_and(|t| t.ends_with("_queue"))
    );
    let out = status(&stack, &with_ch, Some(&db));
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("CLICKHOUSE LAG"), "{human}");
}

#[test]
fn what_is_not_there_is_a_dash_and_bad_flags_exit_2() {
    let stack = Stack::get();
    let topic = unique("status-empty");
    stack.produce(&topic, 2, 200, 63);
    // No lake at the location, a group that never committed: not errors.
    let lake = format!("s3://{}/none", unique("nolake"));
    let group = unique("never");
    let report = json(
        &stack,
        &["--topic", &topic, "--lake", &lake, "--group", &group],
        None,
    );
    assert!(report["partitions"][0]["lake"].is_null(), "{report:#}");
    assert_eq!(
        column(&report, "group", "offset"),
        [None, None],
        "{report:#}"
    );
    assert_eq!(report["totals"]["group"]["lag_records"], 200, "{report:#}");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("no lake") && notes.contains("no offsets"),
        "{notes}"
    );

    for (args, why) in [
        (vec!["--topic", "nope-no-such-topic-xyz"], "does not exist"),
        (
            vec!["--topic", &topic, "--connect-timeout", "0s"],
            "--connect-timeout",
        ),
        (vec!["--topic", "_bad"], "--topic"),
        (vec!["--topic", &topic, "--no-such-flag"], "--no-such-flag"),
        (
            vec!["--topic", &topic, "--clickhouse-url", "ftp://h"],
            "http",
        ),
    ] {
        let out = status(&stack, &args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(why), "{args:?}: {}", text(&out));
    }
    let out = stack
        .encore()
        .env_remove("ENCORE_BROKERS")
        .args(["lag", "--topic", &topic])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--brokers"), "{}", text(&out));
}

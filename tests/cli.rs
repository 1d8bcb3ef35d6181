//! The binary's contract: help on every subcommand, usage errors exit 2 and write nothing,
//! a run leaves a lake that `verify` passes.

mod common;

use std::process::Command;

use common::process::{encore, figure, text};
use common::verify_clean;

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "run",
        "simulate",
        "sink",
        "produce-simple",
        "verify",
        "tail",
        "status",
        "lag",
    ] {
        let out = encore().args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: encore"), "{sub}: {text}");
    }
}

#[test]
fn bad_flags_and_unusable_lakes_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let cases: Vec<Vec<String>> = vec![
        vec!["run".into(), "--users".into(), "zero".into()],
        vec![
            "run".into(),
            "--lake".into(),
            file.display().to_string(),
            "--events".into(),
            "10".into(),
        ],
        vec!["run".into(), "--lake".into(), "ftp://host/x".into()],
        vec!["run".into(), "--weights".into(), "1,2".into()],
        vec!["verify".into(), "--lake".into(), file.display().to_string()],
        // Without --brokers, and with a topic that cannot be a lake table: before any read.
        vec!["status".into()],
        vec![
            "status".into(),
            "--brokers".into(),
            "127.0.0.1:1".into(),
            "--topic".into(),
            "_x".into(),
        ],
    ];
    for args in cases {
        let out = encore()
            .args(&args)
            .env("ENCORE_LAKE", dir.path().join("lake"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error"), "{args:?}: {err}");
    }
    assert!(!dir.path().join("lake").exists(), "nothing written");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

/// An S3-compatible endpoint without credentials is refused at start, naming the variables,
/// without asking the cloud's instance-metadata service (the endpoint does not even listen).
#[test]
fn an_s3_endpoint_without_credentials_is_refused_naming_the_variables() {
    let mut c = encore();
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        c.env_remove(v);
    }
    let out = c
        .args(["run", "--lake", "s3://bucket/x", "--events", "10"])
        .args(["--s3-endpoint", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no S3 credentials for http://127.0.0.1:9")
            && err.contains("AWS_ACCESS_KEY_ID is not set"),
        "{err}"
    );
    assert!(!err.contains("169.254.169.254"), "{err}");
}

#[test]
fn run_then_verify_and_env_vars_work() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = encore()
        .args(["run", "--max-rate", "--seed", "7", "--no-progress"])
        .env("ENCORE_USERS", "100")
        .env("ENCORE_EVENTS", "3000")
        .env("ENCORE_LAKE", &lake)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("rows written    3000"), "{summary}");
    let report = verify_clean(&lake, 3000);
    assert!(
        report.contains("first 10 track_playback events"),
        "{report}"
    );
}

#[test]
fn simulate_and_produce_simple_write_json_lines() {
    let out = encore()
        .args([
            "simulate",
            "--max-rate",
            "--seed",
            "1",
            "--users",
            "10",
            "--events",
            "50",
            "--no-progress",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 50);
    assert!(lines.iter().all(|v| {
        v["event_type_id"]
            .as_u64()
            .is_some_and(|t| (1..=8).contains(&t))
    }));
    let out = encore()
        .args([
            "produce-simple",
            "--count",
            "3",
            "--rate",
            "1000",
            "--seed",
            "2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let people: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(people.len(), 3);
    for p in people {
        for k in [
            "uuid",
            "first_name",
            "last_name",
            "middle_name",
            "timestamp",
        ] {
            assert!(p[k].is_string(), "{k} in {p}");
        }
    }
}

/// `--format reference`: simulate writes the nested format to stdout, and a run over the
/// in-process bus lands it in a lake verify passes, with ids derived from the record's place.
#[test]
fn the_reference_format_is_written_and_read() {
    let out = encore()
        .args([
            "simulate",
            "--format",
            "reference",
            "--max-rate",
            "--no-progress",
        ])
        .args(["--seed", "1", "--users", "10", "--events", "50"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 50);
    for l in lines {
        assert!(l.starts_with(r#"{"event_params":{"event_type_id":"#), "{l}");
        let id = encore::event::DerivedIds::new("music_events").event_id(0, 0);
        encore::event::ReferenceEvent::decode(l.as_bytes(), id).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = encore()
        .args([
            "run",
            "--format",
            "reference",
            "--max-rate",
            "--no-progress",
        ])
        .args(["--seed", "3", "--users", "50", "--events", "2000"])
        .arg("--lake")
        .arg(&lake)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    verify_clean(&lake, 2000);
    let rows = common::all_rows(&lake);
    let ids = encore::event::DerivedIds::new("music_events");
    assert_eq!(rows.len(), 2000);
    for r in rows {
        assert_eq!(r.event_id, ids.event_id(r.partition, r.offset).to_string());
    }
    let bad = encore()
        .args(["simulate", "--format", "nested"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

#[test]
fn a_closed_stderr_neither_crashes_nor_loses_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // `encore run 2>&1 | head`: every log line and the closing notes meet a closed pipe.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = encore()
        .args(["run", "--max-rate", "--users", "100", "--events", "3000"])
        .args(["--no-progress", "--log", "debug", "--lake"])
        .arg(&lake)
        .stderr(writer)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{summary}");
    assert!(summary.contains("rows written    3000"), "{summary}");
    verify_clean(&lake, 3000);
}

#[test]
fn sigterm_drains_everything_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let child = encore()
        .args([
            "run",
            "--users",
            "300",
            "--speed",
            "200",
            "--flush-interval",
            "200ms",
            "--no-progress",
        ])
        .arg("--lake")
        .arg(&lake)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the sink has committed something, so the signal lands mid-stream.
    let commits = lake.join("_encore/music_events/commits");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !commits.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no commit within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(summary.contains("SIGTERM (drained)"), "{summary}");
    let (published, rows) = (figure(&summary, "events"), figure(&summary, "rows written"));
    assert!(published > 0);
    assert_eq!(rows, published, "everything published reached the lake");
    verify_clean(&lake, rows);
}

#[test]
fn an_overloaded_realtime_run_still_stops_on_time() {
    // Listeners far ahead of what the pipeline accepts must still see the stop request.
    let dir = tempfile::tempdir().unwrap();
    let mut child = encore()
        .args([
            "run",
            "--users",
            "3000",
            "--speed",
            "1000000",
            "--duration",
            "2s",
            "--no-progress",
        ])
        .arg("--lake")
        .arg(dir.path().join("lake"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not stop within 90 s of a 2 s duration");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.contains("--duration elapsed"), "{out}");
}

/// `clickhouse setup --print` needs no server: the statements for the version asked for
/// (the errors tables only from 21.12 on); a version that is not one is a usage error.
#[test]
fn clickhouse_setup_print_writes_the_ddl_for_a_version_without_a_server() {
    let print = |version: &str| {
        encore()
            .args(["clickhouse", "setup", "--print", "--brokers", "kafka:9092"])
            .args(["--server-version", version])
            .output()
            .unwrap()
    };
    let modern = print("24.8");
    let sql = String::from_utf8_lossy(&modern.stdout);
    assert!(modern.status.success(), "{}", text(&modern));
    assert!(
        sql.contains("CREATE DATABASE IF NOT EXISTS `music`;"),
        "{sql}"
    );
    assert!(sql.contains("`music`.`music_events_queue`"), "{sql}");
    assert!(sql.contains("'kafka:9092'"), "{sql}");
    assert!(sql.contains("`music`.`music_events_errors`"), "{sql}");
    let legacy = print("18.16");
    let old = String::from_utf8_lossy(&legacy.stdout);
    assert!(legacy.status.success(), "{}", text(&legacy));
    assert!(old.contains("`music`.`music_events_mv`"), "{old}");
    assert!(!old.contains("_errors"), "{old}");
    let bad = print("latest");
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        text(&bad).contains("--server-version `latest`"),
        "{}",
        text(&bad)
    );

    // Another topic: its own names (`.` and `-` as `_`); the simple topic keeps `my_topic`.
    let topic = |t: &str, simple: &str| {
        encore()
            .args(["clickhouse", "setup", "--print", "--brokers", "kafka:9092"])
            .args(["--topic", t, "--simple-topic", simple])
            .output()
            .unwrap()
    };
    let shop = topic("shop.clicks-v2", "my_topic");
    let sql = String::from_utf8_lossy(&shop.stdout);
    assert!(shop.status.success(), "{}", text(&shop));
    assert!(sql.contains("`music`.`shop_clicks_v2_queue`"), "{sql}");
    assert!(sql.contains("kafka_topic_list = 'shop.clicks-v2'"), "{sql}");
    assert!(sql.contains("`music`.`my_topic_queue`"), "{sql}");
    assert!(!sql.contains("music_events"), "{sql}");
    // Two topics of one command that would share a table name.
    let clash = topic("a.b", "a-b");
    assert_eq!(clash.status.code(), Some(2), "{}", text(&clash));
    assert!(
        text(&clash).contains("topics `a.b` and `a-b` would both use the ClickHouse table `a_b`"),
        "{}",
        text(&clash)
    );
}

/// A metrics address already taken stops the command at start (exit 2), naming the flag,
/// before anything is written.
#[test]
fn a_metrics_address_in_use_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let lake = dir.path().join("lake");
    let out = encore()
        .args(["run", "--events", "10", "--metrics-addr", &addr])
        .arg("--lake")
        .arg(&lake)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("--metrics-addr {addr}")), "{err}");
    assert!(!lake.exists(), "nothing written");
    let out = encore()
        .args(["sink", "--metrics-addr", "localhost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--metrics-addr"));
}

/// On AWS proper (no --s3-endpoint) with no credentials in the environment, the chain ends at
/// the instance-metadata service: the start log names that source, and its failure says that
/// no credentials were set (exit 2), within the start's bound.
#[test]
fn s3_without_credentials_names_the_instance_metadata_source() {
    let mut c = encore();
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "ENCORE_S3_ENDPOINT",
    ] {
        c.env_remove(v);
    }
    // A metadata endpoint that refuses at once, so the test does not depend on the network.
    c.env("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9");
    let started = std::time::Instant::now();
    let out = c
        .args(["run", "--lake", "s3://bucket/x", "--events", "10"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("S3 credentials: the EC2 instance-metadata service"),
        "{err}"
    );
    assert!(
        err.contains("no AWS credentials are set in the environment"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

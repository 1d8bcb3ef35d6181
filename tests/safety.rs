//! Safety against the real stack: secrets never appear in output or logs (even at debug level
//! and in error paths), secrets typed on the command line are refused, TLS/SASL settings reach
//! librdkafka, and names that would reach an object key, a topic or SQL are validated first.

mod common;

use common::clickhouse::clickhouse;
use common::process::text;
use common::stack::{Stack, unique};

/// Distinctive secrets: if any of them shows up in output, it leaked.
const KAFKA_SECRET: &str = "Zq9-kafka-secret-771";
const S3_SECRET: &str = "Xw4-s3-secret-339";
const CH_SECRET: &str = "Pd7-clickhouse-secret-205";

fn assert_no_secret(what: &str, out: &str) {
    for s in [KAFKA_SECRET, S3_SECRET, CH_SECRET] {
        assert!(!out.contains(s), "{what} printed a secret:\n{out}");
    }
}

#[test]
fn secrets_never_reach_output_or_logs() {
    let stack = Stack::get();
    let ch = clickhouse();
    let (topic, bucket) = (unique("secret"), unique("lake"));
    let lake = format!("s3://{bucket}/s");

    // A full run at debug level with a SASL password in the Kafka settings (unused on this
    // plaintext broker, but handed to librdkafka), the real S3 and ClickHouse credentials.
    let out = stack
        .encore()
        .env("ENCORE_LOG", "debug")
        .env(
            "ENCORE_KAFKA_CONFIG",
            format!("sasl.username=alice;sasl.password={KAFKA_SECRET}"),
        )
        .env(
            "ENCORE_CLICKHOUSE_PASSWORD",
            ch.password.as_deref().unwrap_or(""),
        )
        .args(["run", "--users", "50", "--max-rate", "--events", "2000"])
        .args(["--topic", &topic, "--lake", &lake])
        .args(["--clickhouse-url", &ch.url, "--clickhouse-user", &ch.user])
        .args(["--clickhouse-database", &unique("sec").replace('-', "_")])
        .output()
        .unwrap();
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("DEBUG"), "debug logging was on:\n{all}");
    assert_no_secret("a debug-level run", &all);

    // Error paths: a rejected S3 secret, a rejected ClickHouse password.
    let out = stack
        .encore()
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
        .env("ENCORE_LOG", "debug")
        .args(["verify", "--lake", &lake, "--topic", &topic])
        .output()
        .unwrap();
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert_no_secret("verify with a wrong S3 secret", &all);

    let out = stack
        .encore()
        .env("ENCORE_CLICKHOUSE_PASSWORD", CH_SECRET)
        .env("ENCORE_LOG", "debug")
        .args(["clickhouse", "status", "--clickhouse-url", &ch.url])
        .args(["--clickhouse-user", &ch.user])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("193"), "ClickHouse's code is shown:\n{all}");
    assert_no_secret("clickhouse status with a wrong password", &all);
}

#[test]
fn secrets_on_the_command_line_are_refused_and_tls_sasl_reach_librdkafka() {
    let stack = Stack::get();
    let out = stack
        .encore()
        .args(["simulate", "--events", "10"])
        .args(["--kafka-config", &format!("sasl.password={KAFKA_SECRET}")])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("visible to every user"), "{all}");
    assert_no_secret("a refused command line", &all);

    // From a properties file, SASL settings reach librdkafka: this broker speaks no SASL, so
    // the client that insists on it cannot connect, and says so within --connect-timeout.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kafka.properties");
    std::fs::write(
        &file,
        format!(
            "# SASL over plaintext\nsecurity.protocol=sasl_plaintext\nsasl.mechanisms=PLAIN\nsasl.username=alice\nsasl.password={KAFKA_SECRET}\n"
        ),
    )
    .unwrap();
    let out = stack
        .encore()
        .args(["simulate", "--events", "10", "--topic", &unique("sasl")])
        .arg("--kafka-config-file")
        .arg(&file)
        .args(["--connect-timeout", "5s"])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("cannot reach Kafka"), "{all}");
    assert_no_secret("a SASL client", &all);
    // The same command without the file works: it was the SASL settings.
    let out = stack
        .encore()
        .args(["simulate", "--events", "10", "--topic", &unique("plain")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // TLS is handed to librdkafka too; a build without it says how to get it.
    std::fs::write(&file, "security.protocol=ssl\n").unwrap();
    let out = stack
        .encore()
        .args(["simulate", "--events", "10"])
        .arg("--kafka-config-file")
        .arg(&file)
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("--features kafka-tls") || all.contains("cannot reach Kafka"),
        "{all}"
    );
}

#[test]
fn names_that_reach_keys_topics_or_sql_are_validated_before_anything_is_written() {
    let stack = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let ch = clickhouse();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--topic".into(), "../etc".into()],
            "not a valid topic/table name",
        ),
        (
            vec!["--topic".into(), "a/b".into()],
            "not a valid topic/table name",
        ),
        (vec!["--topic".into(), "_hidden".into()], "starts with `_`"),
        (
            vec!["--lake".into(), "s3://Bad_Bucket/x".into()],
            "not a valid S3 bucket name",
        ),
        (
            vec!["--lake".into(), "s3://ab/x".into()],
            "not a valid S3 bucket name",
        ),
        (
            vec![
                "--brokers".into(),
                stack.brokers.clone(),
                "--dlq-topic".into(),
                "dead letters".into(),
            ],
            "--dlq-topic",
        ),
        (
            vec![
                "--brokers".into(),
                stack.brokers.clone(),
                "--dlq-topic".into(),
                "music_events".into(),
            ],
            "is the topic the sink reads",
        ),
        (
            vec![
                "--brokers".into(),
                stack.brokers.clone(),
                "--clickhouse-url".into(),
                ch.url.clone(),
                "--clickhouse-database".into(),
                "x`; DROP DATABASE system; --".into(),
            ],
            "database",
        ),
    ];
    for (args, says) in cases {
        let out = stack
            .encore()
            .env("ENCORE_LAKE", &lake)
            .args(["run", "--events", "10"])
            .args(&args)
            .output()
            .unwrap();
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}:\n{all}");
        assert!(all.contains(says), "{args:?} should say `{says}`:\n{all}");
    }
    assert!(!lake.exists(), "nothing written");
}

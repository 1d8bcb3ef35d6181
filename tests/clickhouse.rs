//! encore's ClickHouse schema against the real stack: Apache Kafka, s3s-fs for the lake and
//! the stack's ClickHouse (Debian's 18.16 here, so the legacy dialect; the modern one is covered
//! by the unit tests of `clickhouse::schema`). Each test has its own database, topics and bucket,
//! and drops its database at the end (Kafka tables would otherwise consume forever).

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::clickhouse::{ChDatabase, clickhouse};
use common::lake::LakeView;
use common::process::text;
use common::stack::{Stack, unique};
use encore::clickhouse::schema::table_name;
use serde_json::Value;

/// ClickHouse's Kafka engine flushes every 7.5 s on 18.16 and polls in between: generous.
const INGEST_DEADLINE: Duration = Duration::from_secs(120);

/// A database of this test, its topics, and the way to run encore against them.
struct Fixture {
    stack: Stack,
    topic: String,
    simple: String,
    /// Dropped (with the database) at the end.
    db: ChDatabase,
}

impl Fixture {
    /// The name of this fixture's clickstream object with `suffix` (tables are named after
    /// the topic).
    fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", table_name(&self.topic).unwrap())
    }

    /// The same for the simple topic.
    fn simple_name(&self, suffix: &str) -> String {
        format!("{}{suffix}", table_name(&self.simple).unwrap())
    }

    fn new(prefix: &str) -> Fixture {
        Fixture {
            db: ChDatabase::new(prefix),
            stack: Stack::get(),
            topic: unique(prefix),
            simple: unique(&format!("{prefix}-simple")),
        }
    }

    /// `encore` with this fixture's ClickHouse flags after `args`.
    fn encore(&self, args: &[&str]) -> Command {
        let mut c = self.stack.encore();
        c.args(args)
            .args(["--topic", &self.topic, "--simple-topic", &self.simple]);
        self.db.flags(&mut c);
        c
    }

    /// `setup --recreate`, which must succeed and drop the existing objects.
    fn recreate(&self) {
        let re = self.setup(&["--recreate"]);
        assert!(re.status.success(), "{}", text(&re));
        assert!(
            String::from_utf8_lossy(&re.stdout).contains("dropped: "),
            "{}",
            text(&re)
        );
    }

    fn setup(&self, extra: &[&str]) -> Output {
        let mut args = vec!["clickhouse", "setup"];
        args.extend_from_slice(extra);
        self.encore(&args).output().unwrap()
    }
}

#[test]
fn run_with_clickhouse_ingests_every_event_typed_like_the_lake() {
    let f = Fixture::new("chrun");
    let lake = format!("s3://{}/dev", unique("chlake"));
    let n = 6_000u64;
    let out = f
        .encore(&["run", "--max-rate", "--users", "300", "--tracks", "5000"])
        .args([
            "--lake",
            &lake,
            "--partitions",
            "3",
            "--events",
            &n.to_string(),
        ])
        .args(["--group", &unique("g")])
        .output()
        .unwrap();
    assert!(out.status.success(), "encore run:\n{}", text(&out));
    assert!(
        text(&out).contains("ClickHouse schema ready"),
        "{}",
        text(&out)
    );

    let events = f.db.table(&f.name(""));
    let seen = f.db.wait_for_count(
        &format!("SELECT uniqExact(event_id) FROM {events}"),
        n,
        INGEST_DEADLINE,
    );
    assert_eq!(seen, n, "distinct events in ClickHouse");
    let total: u64 =
        f.db.sql(&format!("SELECT count() FROM {events} FINAL"))
            .trim()
            .parse()
            .unwrap();
    assert_eq!(total, n, "rows after deduplication");

    // Every event of the lake is in ClickHouse with the same values.
    let cols = [
        "event_id",
        "event_type",
        "event_type_id",
        "user_id",
        "session_id",
        "platform",
        "platform_token",
        "ipv4",
        "country",
        "track_id",
        "previous_track_id",
        "playlist_id",
        "liked",
        "position_ms",
        "event_time",
    ];
    let lake_rows = LakeView::open(&f.stack, &lake, &f.topic).columns(&cols);
    assert_eq!(lake_rows.len() as u64, n);
    let answer = f.db.sql(&format!(
        "SELECT {}, ts_ms, toUnixTimestamp(event_time) AS secs FROM {events} FINAL FORMAT JSONEachRow",
        cols[..cols.len() - 1].join(", ")
    ));
    let mut compared = 0;
    for line in answer.lines() {
        let row: BTreeMap<String, Value> = serde_json::from_str(line).unwrap();
        let get = |k: &str| match &row[k] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            v => v.to_string(),
        };
        let id = get("event_id");
        let want = lake_rows
            .get(&id)
            .unwrap_or_else(|| panic!("{id} is in ClickHouse, not in the lake"));
        for c in &cols[..cols.len() - 1] {
            let (mut have, mut lake) = (get(c), want[*c].clone());
            if *c == "liked" {
                // UInt8 on 18.16, Bool on current servers; true/false in the lake.
                have = (have == "1" || have == "true").to_string();
                lake = (lake == "true").to_string();
            }
            assert_eq!(have, lake, "{c} of {id}");
        }
        assert_eq!(get("ts_ms"), want["event_time"], "event time of {id}");
        let ms: i64 = want["event_time"].parse().unwrap();
        assert_eq!(get("secs"), (ms / 1000).to_string(), "event_time of {id}");
        compared += 1;
    }
    assert_eq!(compared, n, "rows compared");

    // The counts preset agrees with the lake, type by type.
    let q = f
        .encore(&["clickhouse", "query", "counts"])
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", text(&q));
    let report = String::from_utf8_lossy(&q.stdout);
    let mut per_type: BTreeMap<String, u64> = BTreeMap::new();
    for r in lake_rows.values() {
        *per_type.entry(r["event_type"].clone()).or_default() += 1;
    }
    for (t, k) in &per_type {
        assert!(
            report
                .lines()
                .any(|l| l.contains(&format!(" {t} ")) && l.trim_end().ends_with(&format!(" {k}"))),
            "{t} {k} missing from:\n{report}"
        );
    }
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("total") && l.trim_end().ends_with(&format!(" {n}"))),
        "{report}"
    );

    // status: every object present, no drift, the queue caught up (18.16 commits its offsets
    // after writing the block: poll).
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s = f.encore(&["clickhouse", "status"]).output().unwrap();
        let status = text(&s);
        assert!(s.status.success(), "{status}");
        assert!(status.contains(&format!(", {n} distinct")), "{status}");
        if status.contains(&format!("consumer lag 0 of {n} records")) || Instant::now() > end {
            break status;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(
        status.contains(&format!("consumer lag 0 of {n} records")),
        "{status}"
    );

    // --recreate empties the tables and the new queue (a new consumer group) reads the topic
    // again from its start.
    let group = || {
        f.db.sql(&format!(
            "SELECT engine_full FROM system.tables WHERE database = '{}' AND name = '{}'",
            f.db.name,
            f.name("_queue")
        ))
    };
    let before = group();
    f.recreate();
    assert_ne!(
        group(),
        before,
        "the recreated queue must use a new consumer group"
    );
    let again = f.db.wait_for_count(
        &format!("SELECT uniqExact(event_id) FROM {events}"),
        n,
        INGEST_DEADLINE,
    );
    assert_eq!(again, n, "events after --recreate");
}

/// `setup --print` writes, without contacting a server, the statements setup sends: run by
/// hand on the stack's ClickHouse (for the version it reports), they make exactly what setup
/// expects, so a setup afterwards creates and changes nothing.
#[test]
fn setup_print_is_what_setup_applies() {
    let f = Fixture::new("chprint");
    let version = f.db.sql("SELECT version()").trim().to_string();
    let mut c = f.stack.encore();
    c.args([
        "clickhouse",
        "setup",
        "--print",
        "--server-version",
        &version,
    ])
    .args(["--topic", &f.topic, "--simple-topic", &f.simple])
    .args(["--clickhouse-database", &f.db.name]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let script = String::from_utf8_lossy(&out.stdout).to_string();
    let mut statements = 0;
    for stmt in script.split(";\n") {
        let stmt: String = stmt
            .lines()
            .filter(|l| !l.starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if !stmt.trim().is_empty() {
            f.db.sql(&stmt);
            statements += 1;
        }
    }
    assert!(statements >= 7, "{script}");
    let after = f.setup(&[]);
    assert!(after.status.success(), "{}", text(&after));
    let said = String::from_utf8_lossy(&after.stdout);
    assert!(!said.contains("created"), "{said}");
    assert!(
        said.contains(&format!("unchanged: {}, {}", f.name(""), f.name("_queue"))),
        "{said}"
    );
}

#[test]
fn setup_is_idempotent_and_detects_drift() {
    let f = Fixture::new("chsetup");
    let first = f.setup(&[]);
    assert!(first.status.success(), "{}", text(&first));
    let created = format!(
        "created: {}, {}, {}, {}, {}, {}",
        f.name(""),
        f.name("_queue"),
        f.name("_mv"),
        f.simple_name(""),
        f.simple_name("_queue"),
        f.simple_name("_mv")
    );
    assert!(
        String::from_utf8_lossy(&first.stdout).contains(&created),
        "{}",
        text(&first)
    );
    let listing = format!(
        "SELECT name, metadata_modification_time FROM system.tables WHERE database = '{}' ORDER BY name",
        f.db.name
    );
    let before = f.db.sql(&listing);

    // Again: nothing changes.
    let second = f.setup(&[]);
    assert!(second.status.success(), "{}", text(&second));
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(!out.contains("created"), "{out}");
    assert!(
        out.contains(&format!("unchanged: {}, {}", f.name(""), f.name("_queue"))),
        "{out}"
    );
    assert_eq!(f.db.sql(&listing), before, "setup twice changed the tables");

    // A hand-made change is found by setup (which then changes nothing) and by status.
    let events = f.db.table(&f.name(""));
    f.db.sql(&format!("ALTER TABLE {events} ADD COLUMN note String"));
    f.db.sql(&format!(
        "ALTER TABLE {events} MODIFY COLUMN country FixedString(2)"
    ));
    let drifted = f.setup(&[]);
    assert_eq!(drifted.status.code(), Some(1), "{}", text(&drifted));
    let msg = text(&drifted);
    assert!(
        msg.contains(&format!(
            "{}: column country is FixedString(2), expected String",
            f.name("")
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{}: unexpected column note String", f.name(""))),
        "{msg}"
    );
    assert!(
        f.db.sql(&listing).contains(&f.name("_queue")),
        "drift must not drop anything"
    );
    let s = f.encore(&["clickhouse", "status"]).output().unwrap();
    assert_eq!(s.status.code(), Some(1), "{}", text(&s));
    assert!(text(&s).contains("DRIFT: column country"), "{}", text(&s));

    // --recreate puts it right.
    f.recreate();
    let s = f.encore(&["clickhouse", "status"]).output().unwrap();
    assert!(s.status.success(), "{}", text(&s));

    // A queue that lost one of its views is rebuilt with its views (a new consumer group).
    f.db.sql(&format!("DROP TABLE {}", f.db.table(&f.name("_mv"))));
    let s = f.encore(&["clickhouse", "status"]).output().unwrap();
    assert_eq!(s.status.code(), Some(1), "{}", text(&s));
    assert!(
        text(&s).lines().any(
            |l| l.trim_start().starts_with(&format!("{} ", f.name("_mv")))
                && l.contains("MaterializedView")
                && l.trim_end().ends_with("MISSING")
        ),
        "{}",
        text(&s)
    );
    let fix = f.setup(&[]);
    assert!(fix.status.success(), "{}", text(&fix));
    assert!(
        text(&fix).contains(&format!("rebuilt {}, {}", f.name("_queue"), f.name("_mv"))),
        "{}",
        text(&fix)
    );
    let s = f.encore(&["clickhouse", "status"]).output().unwrap();
    assert!(s.status.success(), "{}", text(&s));

    // drop removes every object, and a second drop finds nothing.
    let d = f.encore(&["clickhouse", "drop"]).output().unwrap();
    assert!(d.status.success(), "{}", text(&d));
    assert_eq!(
        f.db.sql(&format!(
            "SELECT count() FROM system.tables WHERE database = '{}'",
            f.db.name
        ))
        .trim(),
        "0"
    );
    let d = f.encore(&["clickhouse", "drop"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&d.stdout).contains("nothing to drop"),
        "{}",
        text(&d)
    );
}

#[test]
fn malformed_messages_do_not_stop_ingestion() {
    let f = Fixture::new("chbad");
    let setup = f.setup(&["--partitions", "1"]);
    assert!(setup.status.success(), "{}", text(&setup));

    // Valid events from `encore simulate` (JSON lines on stdout without --brokers).
    let sim = f
        .stack
        .encore()
        .env_remove("ENCORE_BROKERS")
        .args([
            "simulate",
            "--max-rate",
            "--users",
            "20",
            "--events",
            "40",
            "--seed",
            "7",
        ])
        .output()
        .unwrap();
    assert!(sim.status.success(), "{}", text(&sim));
    let good: Vec<Vec<u8>> = sim
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(good.len(), 40);
    let bad: Vec<Vec<u8>> = vec![
        b"not json at all".to_vec(),
        br#"{"event_id":"not-a-uuid","event_type":"track_playback"}"#.to_vec(),
        br#"{"event_id":"019b76f3-1e29-7d50-974a-d6739915387b","event_type":"no_such_type"}"#
            .to_vec(),
        vec![0xff, 0xfe, 0x00, 0x01],
        // Valid JSON without an id or a time: defaults, not an event.
        b"{}".to_vec(),
    ];
    let mut values = good[..20].to_vec();
    values.extend(bad.iter().cloned());
    values.extend(good[20..].iter().cloned());
    f.stack.produce_raw(&f.topic, &values);

    let events = f.db.table(&f.name(""));
    let seen = f.db.wait_for_count(
        &format!("SELECT uniqExact(event_id) FROM {events}"),
        40,
        INGEST_DEADLINE,
    );
    assert_eq!(
        seen, 40,
        "the valid events after the malformed ones must arrive"
    );
    // None of the malformed messages became a row.
    assert_eq!(
        f.db.sql(&format!("SELECT count() FROM {events}")).trim(),
        "40"
    );
    let stray = f.db.sql(&format!(
        "SELECT count() FROM {events} WHERE toString(event_id) IN ('00000000-0000-0000-0000-000000000000', '019b76f3-1e29-7d50-974a-d6739915387b')"
    ));
    assert_eq!(stray.trim(), "0");
}

#[test]
fn clickhouse_flags_are_checked_before_anything_runs() {
    let stack = Stack::get();
    let run = |args: &[&str]| stack.encore().args(args).output().unwrap();

    let o = stack
        .encore()
        .env_remove("ENCORE_BROKERS")
        .args([
            "run",
            "--events",
            "1",
            "--clickhouse-url",
            "http://127.0.0.1:8123",
        ])
        .args(["--clickhouse-kafka-brokers", "kafka:29092"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--clickhouse-url needs --brokers"),
        "{}",
        text(&o)
    );

    let o = run(&["run", "--recreate", "--events", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--recreate needs --clickhouse-url"));

    let o = run(&[
        "clickhouse",
        "status",
        "--clickhouse-url",
        "http://127.0.0.1:8123",
        "--clickhouse-database",
        "music; DROP DATABASE system",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not a valid ClickHouse name"),
        "{}",
        text(&o)
    );

    let o = run(&["clickhouse", "status"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--clickhouse-url"), "{}", text(&o));

    // Unreachable: retried, then a clear error and exit 2.
    let o = run(&[
        "clickhouse",
        "status",
        "--clickhouse-url",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot reach ClickHouse at http://127.0.0.1:1"));

    // Wrong password: ClickHouse's own refusal, the password never echoed.
    let o = stack
        .encore()
        .args(["clickhouse", "status", "--clickhouse-url"])
        .arg(clickhouse().url)
        .args(["--clickhouse-user", "click"])
        .env("ENCORE_CLICKHOUSE_PASSWORD", "wrong-Pa55word")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("code 193"), "{}", text(&o));
    assert!(!text(&o).contains("wrong-Pa55word"));
}

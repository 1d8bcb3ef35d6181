//! Several topics in one ClickHouse database (the real stack): each topic's tables are named
//! after it, setup for one never touches another's, and `encore verify` compares a lake only
//! with the tables that ingest its topic, even when tables under the expected names ingest
//! another topic (a database made before tables were named after their topic).

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::clickhouse::ChDatabase;
use common::process::text;
use common::stack::{Stack, unique};
use encore::clickhouse::schema::table_name;

/// ClickHouse's Kafka engine flushes every 7.5 s on 18.16 and polls in between: generous.
const INGEST_DEADLINE: Duration = Duration::from_secs(120);

struct Topics {
    stack: Stack,
    /// `a`'s name has `-`, `b`'s a `.` too: both become `_` in table names.
    a: String,
    b: String,
    simple: String,
}

impl Topics {
    /// `encore ARGS` on `topic`, pointed at `db`.
    fn encore(&self, db: &ChDatabase, topic: &str, args: &[&str]) -> Command {
        let mut c = self.stack.encore();
        c.args(args)
            .args(["--topic", topic, "--simple-topic", &self.simple]);
        db.flags(&mut c);
        c
    }

    fn run(&self, db: &ChDatabase, topic: &str, args: &[&str]) -> Output {
        self.encore(db, topic, args).output().unwrap()
    }
}

/// `uniqExact(event_id)` of `table` in `db` once it reaches `n` (or the deadline passes).
fn events_in(db: &ChDatabase, table: &str, n: u64) -> u64 {
    let q = format!("SELECT uniqExact(event_id) FROM {}", db.table(table));
    db.wait_for_count(&q, n, INGEST_DEADLINE)
}

#[test]
fn two_topics_share_a_database_and_verify_compares_only_its_own() {
    let t = Topics {
        stack: Stack::get(),
        a: unique("cht-a"),
        b: unique("cht.b"),
        simple: unique("cht-simple"),
    };
    let (ta, tb) = (table_name(&t.a).unwrap(), table_name(&t.b).unwrap());
    assert!(!ta.contains('-') && !tb.contains('.'), "{ta} {tb}");
    let db = ChDatabase::new("chtopics");

    // setup --print names the topic's tables.
    let print = t.run(&db, &t.b, &["clickhouse", "setup", "--print"]);
    assert!(print.status.success(), "{}", text(&print));
    let script = String::from_utf8_lossy(&print.stdout);
    assert!(
        script.contains(&format!("`{}`.`{tb}_queue`", db.name)),
        "{script}"
    );
    assert!(
        script.contains(&format!("kafka_topic_list = '{}'", t.b)),
        "{script}"
    );
    assert!(!script.contains("music_events"), "{script}");

    // Both topics set up in one database; the second creates only its own tables.
    for topic in [&t.a, &t.b] {
        let s = t.run(&db, topic, &["clickhouse", "setup", "--partitions", "2"]);
        assert!(s.status.success(), "setup {topic}: {}", text(&s));
    }
    let s = t.run(&db, &t.b, &["clickhouse", "setup"]);
    assert!(
        String::from_utf8_lossy(&s.stdout).contains(&format!("unchanged: {tb}, {tb}_queue")),
        "{}",
        text(&s)
    );

    // A through a real run into a lake; B straight into Kafka.
    let lake = format!("s3://{}/dev", unique("chtlake"));
    let (na, nb) = (2_000u64, 1_500u64);
    let run = t
        .encore(&db, &t.a, &["run", "--max-rate", "--users", "100"])
        .args(["--events", &na.to_string(), "--lake", &lake])
        .args(["--group", &unique("g")])
        .output()
        .unwrap();
    assert!(run.status.success(), "run {}: {}", t.a, text(&run));
    let sim = t
        .stack
        .encore()
        .args(["simulate", "--max-rate", "--users", "100", "--topic", &t.b])
        .args(["--events", &nb.to_string()])
        .output()
        .unwrap();
    assert!(sim.status.success(), "simulate {}: {}", t.b, text(&sim));
    assert_eq!(events_in(&db, &ta, na), na, "{ta}");
    assert_eq!(events_in(&db, &tb, nb), nb, "{tb}");

    // verify of A compares with A's table only: B's events are not "not in the lake".
    let verify = |db: &ChDatabase| {
        let o = t
            .encore(db, &t.a, &["verify", "--lake", &lake])
            .output()
            .unwrap();
        (o.status.code(), text(&o))
    };
    let (code, report) = verify(&db);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains(&format!(
            "{na} rows, {na} distinct events; missing 0, not in the lake 0"
        )),
        "{report}"
    );
    assert!(report.contains(&format!("{}.{ta}", db.name)), "{report}");
    assert!(!report.contains("clickhouse_extra"), "{report}");

    // The database: tables under A's names that ingest B (as every topic's did before
    // tables were named after their topic), loaded with B's events.
    let old = ChDatabase::new("chtold");
    let version = old.sql("SELECT version()").trim().to_string();
    let print = t.run(
        &old,
        &t.b,
        &[
            "clickhouse",
            "setup",
            "--print",
            "--server-version",
            &version,
        ],
    );
    assert!(print.status.success(), "{}", text(&print));
    let script = String::from_utf8_lossy(&print.stdout).replace(&tb, &ta);
    for stmt in script.split(";\n") {
        let stmt: String = stmt
            .lines()
            .filter(|l| !l.starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if !stmt.trim().is_empty() {
            old.sql(&stmt);
        }
    }
    assert_eq!(events_in(&old, &ta, nb), nb, "B's events under A's names");
    let (code, report) = verify(&old);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains(&format!(
            "ClickHouse {}.{ta}_queue ingests topic `{}`, not `{}`: its tables are not compared",
            old.name, t.b, t.a
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "ClickHouse: no table in `{}` ingests topic `{}`",
            old.name, t.a
        )),
        "{report}"
    );
    assert!(!report.contains("not in the lake, e.g."), "{report}");

    // There, A's setup refuses, even with --recreate, and drops nothing of B's.
    for extra in [&[][..], &["--recreate"][..]] {
        let mut args = vec!["clickhouse", "setup"];
        args.extend_from_slice(extra);
        let s = t.run(&old, &t.a, &args);
        assert_eq!(s.status.code(), Some(1), "{}", text(&s));
        assert!(
            text(&s).contains(&format!(
                "`{ta}_queue` ingests topic `{}`, not `{}`",
                t.b, t.a
            )),
            "{}",
            text(&s)
        );
    }
    let d = t.run(&old, &t.a, &["clickhouse", "drop"]);
    assert_eq!(d.status.code(), Some(1), "{}", text(&d));
    assert_eq!(events_in(&old, &ta, nb), nb, "B's events survive");

    // A topic whose names are A's (`-` and `.` both become `_`) is refused next to A.
    let twin = t.a.replace('-', ".");
    assert_eq!(table_name(&twin).unwrap(), ta);
    let s = t.run(&db, &twin, &["clickhouse", "setup", "--recreate"]);
    assert_eq!(s.status.code(), Some(1), "{}", text(&s));
    assert!(
        text(&s).contains(&format!(
            "`{ta}_queue` ingests topic `{}`, not `{twin}`",
            t.a
        )),
        "{}",
        text(&s)
    );
    assert_eq!(events_in(&db, &ta, na), na, "A's events survive");

    // drop of A drops A's tables only; the simple topic's stay for B's.
    let d = t.run(&db, &t.a, &["clickhouse", "drop"]);
    assert!(d.status.success(), "{}", text(&d));
    let said = String::from_utf8_lossy(&d.stdout);
    assert!(
        said.contains(&format!("dropped: {ta}_mv, {ta}_queue, {ta}")),
        "{said}"
    );
    assert!(
        said.contains(&format!("kept: {}", table_name(&t.simple).unwrap())),
        "{said}"
    );
    let left = db.sql(&format!(
        "SELECT name FROM system.tables WHERE database = '{}' ORDER BY name",
        db.name
    ));
    assert!(!left.lines().any(|l| l.starts_with(&ta)), "{left}");
    let s = t.run(&db, &t.b, &["clickhouse", "status"]);
    assert!(s.status.success(), "status of {}: {}", t.b, text(&s));
    assert!(text(&s).contains(&format!("{nb} distinct")), "{}", text(&s));
}

//! `encore verify` against a real lake (s3s-fs), the real topic (Apache Kafka) and the real ClickHouse
//! of the stack: a clean pipeline passes with exact counts, and each kind of damage injected
//! into the lake or ClickHouse is found and named precisely (file, partition, offsets, ids).
//! The damage is undone after each check, so every check starts from the clean lake.

mod common;

use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::TimestampMillisecondType;
use bytes::Bytes;
use common::batches;
use common::clickhouse::ChDatabase;
use common::lake::LakeView;
use common::process::text;
use common::stack::{Stack, unique};
use encore::clickhouse::schema::table_name;
use encore::lake::{Compression, encode, parse_data_file_name, writer_properties};

struct Pipeline {
    stack: Stack,
    topic: String,
    lake: String,
    view: LakeView,
    /// Dropped (with the database) at the end.
    db: ChDatabase,
}

impl Pipeline {
    /// `n` events through Kafka into the lake and ClickHouse, in small files.
    fn run(n: u64) -> Pipeline {
        let stack = Stack::get();
        let (topic, lake) = (unique("vfy"), format!("s3://{}/dev", unique("vfylake")));
        let p = Pipeline {
            view: LakeView::open(&stack, &lake, &topic),
            db: ChDatabase::new("vfy"),
            topic,
            lake,
            stack,
        };
        let out = p
            .encore(&["run", "--max-rate", "--users", "200", "--tracks", "3000"])
            .args(["--seed", "11", "--partitions", "6", "--batch-rows", "1500"])
            .args(["--events", &n.to_string(), "--group", &unique("g")])
            .args(["--simple-topic", &unique("vfy-simple")])
            .output()
            .unwrap();
        assert!(out.status.success(), "encore run:\n{}", text(&out));
        // ClickHouse reads the topic on its own: wait until it has every event.
        let q = format!(
            "SELECT uniqExact(event_id) FROM {}",
            p.db.table(&p.events())
        );
        let n_ch = p.db.wait_for_count(&q, n, Duration::from_secs(120));
        assert_eq!(n_ch, n, "ClickHouse holds {n_ch} of {n} events");
        p
    }

    /// ClickHouse's table of the topic (named after it).
    fn events(&self) -> String {
        table_name(&self.topic).unwrap()
    }

    fn encore(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.stack.encore();
        c.args(args)
            .args(["--lake", &self.lake, "--topic", &self.topic]);
        self.db.flags(&mut c);
        c
    }

    /// `encore verify` with the topic and ClickHouse: (exit code, report).
    fn verify(&self) -> (i32, String) {
        let o = self.encore(&["verify"]).output().unwrap();
        (o.status.code().unwrap_or(-1), text(&o))
    }

    /// The data files: (object location, bytes), sorted.
    fn files(&self) -> Vec<(String, Bytes)> {
        self.view.parquet_objects()
    }

    /// `verify` of the pipeline damaged by `damage`, which must fail it (exit 1), with the
    /// damage undone by `undo` after: the report.
    fn verify_damaged(&self, damage: impl FnOnce(), undo: impl FnOnce()) -> String {
        damage();
        let (code, report) = self.verify();
        undo();
        assert_eq!(code, 1, "{report}");
        report
    }
}

/// The path relative to the table (`date=…/p….parquet`), as verify names files.
fn rel(location: &str) -> String {
    let parts: Vec<&str> = location.rsplitn(3, '/').collect();
    format!("{}/{}", parts[1], parts[0])
}

fn reencode(batches: &[RecordBatch]) -> Bytes {
    let one = arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap();
    encode(&one, &writer_properties(Compression::default())).unwrap()
}

#[test]
fn verify_passes_a_clean_pipeline_and_names_each_kind_of_damage() {
    let n = 18_000u64;
    let p = Pipeline::run(n);

    // Clean: exact counts from all three sources.
    let (code, report) = p.verify();
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains(&format!("verdict: CLEAN ({n} rows")),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "{n} rows, {n} distinct events; missing 0, not in the lake 0"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "Kafka: {n} records = lake rows {n} + dead letters 0 + in flight 0"
        )),
        "{report}"
    );
    assert!(!report.contains("(in flight)"), "{report}");
    let json = p.encore(&["verify", "--json"]).output().unwrap();
    assert!(json.status.success(), "{}", text(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["rows"], n);
    assert_eq!(v["distinct_events"], n);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
    assert_eq!(v["clickhouse"]["missing"], 0);
    let partitions = v["partitions"].as_object().unwrap();
    assert_eq!(partitions.len(), 6);
    for (_, part) in partitions {
        let (high, ranges) = (&part["topic"]["high"], part["ranges"].as_array().unwrap());
        assert_eq!(ranges.len(), 1, "one run of offsets: {part}");
        assert_eq!(ranges[0][0], 0);
        assert_eq!(ranges[0][1].as_i64().unwrap() + 1, high.as_i64().unwrap());
    }

    // Some dates only: the seeded run is all on 2026-01-01.
    let day = p
        .encore(&[
            "verify",
            "--date-from",
            "2026-01-01",
            "--date-to",
            "2026-01-01",
        ])
        .output()
        .unwrap();
    assert!(day.status.success(), "{}", text(&day));
    assert!(
        text(&day).contains(&format!("verdict: CLEAN ({n} rows")),
        "{}",
        text(&day)
    );
    let none = p
        .encore(&["verify", "--date-from", "2030-01-01"])
        .output()
        .unwrap();
    assert!(none.status.success(), "{}", text(&none));
    assert!(text(&none).contains("no data files of"), "{}", text(&none));

    let files = p.files();
    assert!(files.len() >= 6, "{} files", files.len());

    // 1. A deleted file: its partition and offset range are a gap, the file is named.
    {
        let (loc, bytes) = &files[1];
        let r = parse_data_file_name(loc.rsplit('/').next().unwrap()).unwrap();
        let report = p.verify_damaged(|| p.view.delete(loc), || p.view.put(loc, bytes.clone()));
        assert!(
            report.contains(&format!(
                "[gap] partition {}: offsets {}-{} are in the topic but not in the lake",
                r.partition, r.first, r.last
            )),
            "{report}"
        );
        assert!(
            report.contains(&format!("[missing_file] {}/{}", p.topic, rel(loc))),
            "{report}"
        );
        // ClickHouse still has those events: the lake is the side missing them.
        assert!(report.contains("[clickhouse_extra]"), "{report}");
    }

    // 2. A duplicated file (copied under another committed-looking name).
    {
        let (loc, bytes) = &files[2];
        let r = parse_data_file_name(loc.rsplit('/').next().unwrap()).unwrap();
        // Files carry their writer's epoch after the range: `…-<last>-e<epoch>.parquet`.
        let copy = loc.replace(
            &format!("-{:020}-e", r.last),
            &format!("-{:020}-e", r.last + 1_000_000),
        );
        assert_ne!(&copy, loc, "the copy has a name of its own");
        let report = p.verify_damaged(|| p.view.put(&copy, bytes.clone()), || p.view.delete(&copy));
        let rows = batches(bytes.clone(), loc)
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>();
        // The copies are the same offsets twice: a lake fault, not replays in the topic.
        assert!(
            !report.contains("at different offsets (replays"),
            "{report}"
        );
        assert!(
            report.contains(&format!(
                "[overlap] partition {}: {rows} offsets held more than once",
                r.partition
            )),
            "{report}"
        );
        assert!(
            report.contains(&format!("[leftover] {}", rel(&copy))),
            "{report}"
        );
    }

    // 3. A file with another schema.
    {
        let (loc, bytes) = &files[3];
        let b = batches(bytes.clone(), loc);
        let idx: Vec<usize> = (0..b[0].num_columns() - 1).collect();
        let narrowed: Vec<RecordBatch> = b.iter().map(|x| x.project(&idx).unwrap()).collect();
        let report = p.verify_damaged(
            || p.view.put(loc, reencode(&narrowed)),
            || p.view.put(loc, bytes.clone()),
        );
        assert!(
            report.contains(&format!(
                "[schema] {}: schema: missing column `kafka_timestamp`",
                rel(loc)
            )),
            "{report}"
        );
    }

    // 4. A truncated file.
    {
        let (loc, bytes) = &files[4];
        let report = p.verify_damaged(
            || p.view.put(loc, bytes.slice(..bytes.len() / 2)),
            || p.view.put(loc, bytes.clone()),
        );
        assert!(
            report.contains(&format!("[unreadable] {}: unreadable Parquet", rel(loc))),
            "{report}"
        );
    }

    // 5. A row moved to the wrong date (its event time two days later, same file).
    {
        let (loc, bytes) = &files[5];
        let mut b = batches(bytes.clone(), loc);
        let first = b[0].clone();
        let t = first.column_by_name("event_time").unwrap();
        let times = t.as_primitive::<TimestampMillisecondType>();
        let mut values: Vec<i64> = times.values().to_vec();
        values[0] += 2 * 86_400_000;
        let moved = TimestampMillisecondArray::from(values).with_timezone("UTC");
        let idx = first.schema().index_of("event_time").unwrap();
        let mut cols = first.columns().to_vec();
        cols[idx] = std::sync::Arc::new(moved);
        b[0] = RecordBatch::try_new(first.schema(), cols).unwrap();
        let offset = b[0]
            .column_by_name("kafka_offset")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0);
        let report = p.verify_damaged(
            || p.view.put(loc, reencode(&b)),
            || p.view.put(loc, bytes.clone()),
        );
        assert!(
            report.contains(&format!(
                "[wrong_date] {}: 1 rows outside the file's date partition: offset {offset} at",
                rel(loc)
            )),
            "{report}"
        );
    }

    // 6. An event missing from ClickHouse.
    {
        let events = p.db.table(&p.events());
        let id =
            p.db.sql(&format!(
                "SELECT event_id FROM {events} ORDER BY event_id LIMIT 1"
            ))
            .trim()
            .to_string();
        p.db.sql(&format!(
            "ALTER TABLE {events} DELETE WHERE event_id = toUUID('{id}')"
        ));
        // Mutations are asynchronous.
        let end = Instant::now() + Duration::from_secs(60);
        while p
            .db
            .sql(&format!(
                "SELECT count() FROM {events} WHERE event_id = toUUID('{id}')"
            ))
            .trim()
            != "0"
        {
            assert!(Instant::now() < end, "the DELETE mutation did not finish");
            std::thread::sleep(Duration::from_millis(200));
        }
        let (code, report) = p.verify();
        assert_eq!(code, 1, "{report}");
        assert!(
            report.contains(&format!(
                "[clickhouse_missing] ClickHouse {}.{}: 1 lake events are missing, e.g. {id}",
                p.db.name,
                p.events()
            )),
            "{report}"
        );
    }

    // Everything undone on the lake side: the lake is clean again (ClickHouse still lacks one).
    let o = p
        .stack
        .encore()
        .env_remove("ENCORE_BROKERS")
        .args(["verify", "--lake", &p.lake, "--topic", &p.topic])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

//! Drop-in on a topic of the reference pipeline's nested format, against the stack: one topic
//! with both formats mixed (and invalid reference records), read by `encore sink --exit-at-end`
//! into two lakes. Each record is a row exactly once (verify clean and exact), reference fields
//! land on the lake's columns, and the derived event ids are the same in both lakes.

mod common;

use std::collections::BTreeMap;

use common::lake::LakeView;
use common::process::text;
use common::stack::{Stack, unique};
use encore::event::DerivedIds;

const PARTITIONS: u32 = 3;

/// `encore simulate --format reference` of `events` max-rate events into `topic`.
fn simulate_reference(stack: &Stack, topic: &str, events: u64, seed: u64) {
    let out = stack
        .encore()
        .args(["simulate", "--format", "reference", "--max-rate"])
        .args(["--users", "200", "--tracks", "5000", "--topic", topic])
        .args(["--partitions", &PARTITIONS.to_string()])
        .args(["--events", &events.to_string(), "--seed", &seed.to_string()])
        .output()
        .expect("running encore simulate");
    let stderr = text(&out);
    assert!(out.status.success(), "encore simulate failed:\n{stderr}");
    assert!(
        stderr.contains(&format!("{events} acknowledged by Kafka, 0 failed")),
        "{stderr}"
    );
}

/// `encore sink --exit-at-end` of `topic` into `lake` with a new group; must exit 0.
fn sink_to_end(stack: &Stack, topic: &str, lake: &str, dir: &std::path::Path) {
    stack.sink_to_end(topic, &unique("g"), lake, dir);
}

/// A hand-written reference record: a token without encore's `<platform>-` prefix, no
/// previous track or playlist.
const HAND_WRITTEN: &str = r#"{"event_params": {"event_type_id": 7, "event_type": "track_like",
  "user_id": "0192f0c1-0000-7000-8000-00000000abcd", "platform_token": "Android 4.1.2",
  "ipv4": "192.0.2.1", "country": "RU", "track_id": "31337", "like_status": 1},
  "event_timestamp_ms": {"ts": 1767225600, "ts_ms": 1767225600500}}"#;

/// The lake columns checked per row, keyed by (partition, offset).
const COLUMNS: [&str; 12] = [
    "event_id",
    "kafka_partition",
    "kafka_offset",
    "event_type",
    "user_id",
    "session_id",
    "platform",
    "platform_token",
    "track_id",
    "liked",
    "position_ms",
    "event_time",
];

fn rows_by_place(view: &LakeView) -> BTreeMap<(i32, i64), BTreeMap<String, String>> {
    view.columns(&COLUMNS)
        .into_values()
        .map(|r| {
            let place = (
                r["kafka_partition"].parse().unwrap(),
                r["kafka_offset"].parse().unwrap(),
            );
            (place, r)
        })
        .collect()
}

/// Checks the row of one reference record against the record and the documented values.
fn check_reference_row(row: &BTreeMap<String, String>, rec: &serde_json::Value, id: String) {
    let (p, t) = (&rec["event_params"], &rec["event_timestamp_ms"]);
    assert_eq!(row["event_id"], id, "derived id");
    assert_eq!(row["event_type"], p["event_type"].as_str().unwrap());
    assert_eq!(row["user_id"], p["user_id"].as_str().unwrap());
    assert_eq!(row["session_id"], "00000000-0000-0000-0000-000000000000");
    let token = p["platform_token"].as_str().unwrap();
    assert_eq!(row["platform_token"], token);
    let prefix = token.split_once('-').map_or("unknown", |(a, _)| a);
    assert_eq!(row["platform"], prefix, "platform of {token}");
    assert_eq!(row["track_id"], p["track_id"].as_str().unwrap());
    assert_eq!(row["liked"], (p["like_status"] == 1).to_string());
    assert_eq!(
        row["position_ms"], "",
        "no position in the reference format"
    );
    assert_eq!(row["event_time"], t["ts_ms"].to_string());
}

#[test]
fn a_topic_of_both_formats_lands_in_the_lake_exactly_once_with_the_same_ids_each_run() {
    let stack = Stack::get();
    let topic = unique("reffmt");
    let dir = tempfile::tempdir().unwrap();
    simulate_reference(&stack, &topic, 1500, 5);
    stack.produce(&topic, PARTITIONS, 1500, 6);
    let hand = HAND_WRITTEN.replace('\n', "");
    let bad_field = hand.replace(r#""like_status": 1"#, r#""like_status": 1, "liked": true"#);
    let bad_time = hand.replace(r#""ts": 1767225600,"#, r#""ts": 1767225601,"#);
    simulate_reference(&stack, &topic, 500, 7);
    stack.produce_raw(&topic, &[hand.into(), bad_field.into(), bad_time.into()]);

    // What the topic holds, per format.
    let records = stack.read_all(&topic);
    let is_reference = |v: &[u8]| v.starts_with(b"{\"event_params\"");
    let reference: Vec<_> = records.iter().filter(|r| is_reference(&r.value)).collect();
    assert_eq!((records.len(), reference.len()), (3503, 2003));

    let (lake, again) = (
        format!("s3://{}/r", unique("lake")),
        format!("s3://{}/r", unique("lake")),
    );
    sink_to_end(&stack, &topic, &lake, dir.path());
    let report = stack.verify_exact(&topic, &lake, 3501, 2);
    assert!(!report.contains("replay"), "{report}");

    let rows = rows_by_place(&LakeView::open(&stack, &lake, &topic));
    assert_eq!(rows.len(), 3501);
    let ids = DerivedIds::new(&topic);
    let mut checked = 0;
    for r in &reference {
        let Some(row) = rows.get(&(r.partition, r.offset)) else {
            // The two invalid records are dead letters.
            assert!(
                r.value.ends_with(b"1767225600500}}"),
                "{r:?} is not in the lake"
            );
            continue;
        };
        let rec: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
        let id = ids.event_id(r.partition, r.offset).to_string();
        // The documented layout: partition in the first 8 hex digits, version 8.
        assert!(id.starts_with(&format!("{:08x}-", r.partition)) && &id[14..15] == "8");
        check_reference_row(row, &rec, id);
        checked += 1;
    }
    assert_eq!(checked, 2001);
    let unknown = rows.values().filter(|r| r["platform"] == "unknown").count();
    assert_eq!(
        unknown, 1,
        "only the hand-written record's token has no platform"
    );
    let flat = rows
        .values()
        .filter(|r| &r["event_id"][14..15] == "7")
        .count();
    assert_eq!(flat, 1500, "encore's rows keep their UUIDv7 ids");

    // Dead letters say the format and why.
    let letters = stack.read_all(&format!("{topic}.dlq"));
    let errors: Vec<&str> = letters
        .iter()
        .map(|l| l.headers["encore.error"].as_str())
        .collect();
    assert_eq!(letters.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|e| e.starts_with("reference format: ")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("unknown field `liked`")),
        "{errors:?}"
    );

    // A rerun into another lake derives the same ids for the same records.
    sink_to_end(&stack, &topic, &again, dir.path());
    stack.verify_exact(&topic, &again, 3501, 2);
    let rerun = rows_by_place(&LakeView::open(&stack, &again, &topic));
    assert_eq!(
        rerun, rows,
        "the rerun's rows (ids included) are the first run's"
    );
}

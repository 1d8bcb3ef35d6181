//! Poison messages and fault injection against the real stack (Apache Kafka, s3s-fs): records that
//! are not events never stop the sink, each lands in the dead-letter topic with why and where
//! it came from, and `encore verify` accounts for every record of the topic.

mod common;

use std::collections::BTreeMap;

use common::lake::LakeView;
use common::process::figure;
use common::stack::{Stack, unique};

/// The poison records, each with the reason the sink must give.
fn poison() -> Vec<(&'static str, Vec<u8>)> {
    let valid = br#"{"event_id":"01a213ef-7f98-735c-9125-bfe9f719a986","event_type_id":1,"event_type":"track_playback","user_id":"01a213ef-7f98-735c-9125-bfe9f719a987","session_id":"01a213ef-7f98-735c-9125-bfe9f719a988","platform":"ios","platform_token":"ios-00","ipv4":"10.0.0.1","country":"DE","track_id":1,"previous_track_id":null,"playlist_id":null,"liked":false,"position_ms":0,"ts":1700000000,"ts_ms":1700000000123}"#;
    let text = String::from_utf8(valid.to_vec()).unwrap();
    let mut huge = valid.to_vec();
    huge.resize(2 << 20, b' ');
    vec![
        ("invalid_json", b"{\"event_type_id\": 1, \"trac".to_vec()),
        (
            "missing_field",
            text.replace(r#""track_id":1,"#, "").into_bytes(),
        ),
        (
            "wrong_type",
            text.replace(r#""track_id":1"#, r#""track_id":"one""#)
                .into_bytes(),
        ),
        (
            "unknown_event_type",
            text.replace(r#""event_type_id":1"#, r#""event_type_id":77"#)
                .into_bytes(),
        ),
        ("not_utf8", b"\xc3\x28\xa0\xa1 not text".to_vec()),
        ("too_large", huge),
        ("empty", Vec::new()),
    ]
}

#[test]
fn poison_messages_go_to_the_dead_letter_topic_and_every_record_is_accounted_for() {
    let stack = Stack::get();
    let (topic, bucket) = (unique("poison"), unique("lake"));
    let lake = format!("s3://{bucket}/dl");
    // Valid events around the poison, so that it sits inside batches.
    stack.produce(&topic, 2, 300, 1);
    let poison = poison();
    let values: Vec<Vec<u8>> = poison.iter().map(|(_, v)| v.clone()).collect();
    stack.produce_raw(&topic, &values);
    stack.produce(&topic, 2, 200, 2);

    let dir = tempfile::tempdir().unwrap();
    let log = stack.sink_until_caught_up(
        &topic,
        &lake,
        &["--batch-rows", "100", "--flush-interval", "1s"],
        dir.path(),
    );

    // Each poison record is in the dead-letter topic once, whole (the 2 MiB one cut to
    // 900 KiB with its size), with its reason and its source position.
    let source: BTreeMap<(i32, i64), Vec<u8>> = stack
        .read_all(&topic)
        .into_iter()
        .map(|r| ((r.partition, r.offset), r.value))
        .collect();
    let letters = stack.read_all(&format!("{topic}.dlq"));
    assert_eq!(letters.len(), poison.len(), "{letters:#?}");
    let mut by_reason = BTreeMap::new();
    for l in &letters {
        let h = &l.headers;
        assert_eq!(h["encore.topic"], topic);
        let pos: (i32, i64) = (
            h["encore.partition"].parse().unwrap(),
            h["encore.offset"].parse().unwrap(),
        );
        assert_eq!(l.partition, pos.0, "letters stay in their source partition");
        let original = &source[&pos];
        match h.get("encore.original_size") {
            Some(size) => {
                assert_eq!(size.parse::<usize>().unwrap(), original.len());
                assert_eq!(&original[..l.value.len()], &l.value[..]);
                assert_eq!(l.value.len(), 900 * 1024);
            }
            None => assert_eq!(&l.value, original, "copied whole"),
        }
        assert!(!h["encore.error"].is_empty());
        assert!(h["encore.timestamp_ms"].parse::<i64>().unwrap() > 0);
        by_reason.insert(h["encore.reason"].clone(), l.value.len());
    }
    let want: Vec<&str> = {
        let mut w: Vec<&str> = poison.iter().map(|(r, _)| *r).collect();
        w.sort();
        w
    };
    assert_eq!(
        by_reason.keys().map(String::as_str).collect::<Vec<_>>(),
        want
    );
    assert!(
        log.contains("not valid events (too_large)"),
        "the log names the reasons:\n{log}"
    );

    // Rows + dead letters = records, and verify says so.
    let report = stack.verify_exact(&topic, &lake, 500, poison.len() as u64);
    assert!(
        report.contains(&format!("{topic}.dlq: 7 distinct records")),
        "{report}"
    );
}

#[test]
fn a_dead_letter_missing_from_its_topic_is_reported() {
    let stack = Stack::get();
    let (topic, lake) = (unique("dlqgone"), format!("s3://{}/dl", unique("lake")));
    stack.produce(&topic, 1, 50, 3);
    stack.produce_raw(&topic, &[b"not json".to_vec()]);
    let dir = tempfile::tempdir().unwrap();
    // The letters go to another topic than the one verify reads.
    let elsewhere = format!("{topic}.elsewhere");
    let fast = ["--flush-interval", "1s"];
    let extra = [&["--dlq-topic", elsewhere.as_str()][..], &fast[..]].concat();
    stack.sink_until_caught_up(&topic, &lake, &extra, dir.path());
    let (code, report) = stack.verify(&topic, &lake, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains(&format!(
            "[dead_letter] partition 0: the commit markers count 1 rejected records, but there is no dead-letter topic `{topic}.dlq`"
        )),
        "{report}"
    );

    // A dead-letter topic that exists but lacks the letter: another topic's.
    let (other, other_lake) = (unique("dlqother"), format!("s3://{}/o", unique("lake")));
    stack.produce(&other, 1, 5, 4);
    stack.produce_raw(&other, &[b"{".to_vec()]);
    stack.sink_until_caught_up(&other, &other_lake, &fast, dir.path());
    let other_dlq = format!("{other}.dlq");
    let (code, report) = stack.verify(&topic, &lake, &["--dlq-topic", &other_dlq]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("rejected records, the dead-letter topic has 0 (absent e.g. [50])"),
        "{report}"
    );

    // Pointed at the right topic, it is clean and exact.
    let (code, report) = stack.verify(&topic, &lake, &["--dlq-topic", &elsewhere]);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains("Kafka: 51 records = lake rows 50 + dead letters 1 + in flight 0"),
        "{report}"
    );
}

#[test]
fn injected_faults_are_dead_lettered_replayed_and_late_as_counted() {
    let stack = Stack::get();
    let (topic, group, bucket) = (unique("inject"), unique("g"), unique("lake"));
    let lake = format!("s3://{bucket}/inj");
    let records = 30_000u64;
    // Seeded max-rate: simulated time starts at 2026-01-01T00:00Z, so 26 h late is 2025.
    let out = stack
        .encore()
        .args(["run", "--users", "300", "--max-rate", "--seed", "11"])
        .args(["--events", &records.to_string()])
        .args(["--topic", &topic, "--group", &group, "--lake", &lake])
        .args([
            "--inject",
            "malformed=0.01,oversized=0.0005,duplicate=0.01,late=0.01,late_by=26h",
        ])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{summary}\n{log}");
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("injected"))
        .unwrap_or_else(|| panic!("no injected line:\n{summary}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (bad, dups, late, sent) = (nums[0], nums[1], nums[2], nums[3]);
    assert_eq!(sent, records, "{line}");
    // About 1 % each of 30000 (binomial: far outside these bounds is a bug).
    for (what, n) in [("bad", bad), ("duplicates", dups), ("late", late)] {
        assert!((150..=500).contains(&n), "{what}: {n} in {line}");
    }
    assert_eq!(figure(&summary, "rows written"), records - bad, "{summary}");
    assert_eq!(figure(&summary, "rejected"), bad, "{summary}");

    // Late events sit in their own (earlier) date partitions, and only they do.
    let view = LakeView::open(&stack, &lake, &topic);
    // (Distinct ids: a late event may also have been replayed.)
    let early: std::collections::BTreeSet<String> = view
        .files()
        .into_iter()
        .filter(|(name, _)| name.contains("date=2025-"))
        .flat_map(|(_, rows)| rows.into_iter().map(|r| r.event_id))
        .collect();
    assert_eq!(
        early.len() as u64,
        late,
        "events dated before the run's start"
    );

    let report = stack.verify_exact(&topic, &lake, records - bad, bad);
    assert!(
        report.contains(&format!(
            "{dups} events are in the topic more than once, at different offsets"
        )),
        "{report}"
    );
}

//! `encore tail` against the real stack: what it prints is exactly what the topic holds (read
//! here with a plain consumer), from every kind of start position, through the filters, for
//! the dead-letter topic too; bad flags, a missing topic and an unreachable broker exit 2.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::kafka::TopicRecord;
use common::process::Proc;
use common::stack::{Stack, unique};
use common::wait_for;
use serde_json::Value;

/// What a finished `encore tail` printed.
struct Tail {
    code: Option<i32>,
    stdout: String,
    log: String,
}

impl Tail {
    /// The JSON lines; every line must be one.
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{}", self.log))
            })
            .collect()
    }

    /// The (partition, offset) of every JSON line, each printed once.
    fn positions(&self) -> BTreeSet<(i32, i64)> {
        let lines = self.lines();
        let set: BTreeSet<(i32, i64)> = lines.iter().map(position).collect();
        assert_eq!(set.len(), lines.len(), "a record printed twice");
        set
    }

    fn ok(self) -> Tail {
        assert_eq!(self.code, Some(0), "{}\n{}", self.stdout, self.log);
        self
    }
}

/// `got` must equal `want`; a failure names the first differences, not every position.
#[track_caller]
fn assert_same(got: &BTreeSet<(i32, i64)>, want: &BTreeSet<(i32, i64)>, what: &str) {
    if got != want {
        let extra: Vec<_> = got.difference(want).take(10).collect();
        let missing: Vec<_> = want.difference(got).take(10).collect();
        panic!(
            "{what}: {} records printed, {} expected; printed but not expected {extra:?}, \
             expected but not printed {missing:?}",
            got.len(),
            want.len()
        );
    }
}

fn position(l: &Value) -> (i32, i64) {
    (
        l["partition"].as_i64().expect("partition") as i32,
        l["offset"].as_i64().expect("offset"),
    )
}

/// `encore tail ARGS`, which must finish within 60 s.
fn tail(stack: &Stack, args: &[&str]) -> Tail {
    let dir = tempfile::tempdir().unwrap();
    let mut c = stack.encore();
    c.arg("tail").args(args);
    let mut p = Proc::spawn_capturing(c, "tail", dir.path());
    let (status, stdout) = p.wait_output(Duration::from_secs(60));
    Tail {
        code: status.code(),
        stdout,
        log: p.log(),
    }
}

fn json(r: &TopicRecord) -> Value {
    serde_json::from_slice(&r.value).expect("an event")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every offset from `from[p]` (or 0) to `to[p]`, per partition.
fn span(from: &[i64], to: &[i64]) -> BTreeSet<(i32, i64)> {
    to.iter()
        .enumerate()
        .flat_map(|(p, &h)| (from.get(p).copied().unwrap_or(0)..h).map(move |o| (p as i32, o)))
        .collect()
}

#[test]
fn exit_at_end_from_the_beginning_prints_every_record_once_and_count_limits() {
    let stack = Stack::get();
    let topic = unique("tailall");
    stack.produce(&topic, 3, 3000, 1);
    let highs = stack.high_watermarks(&topic);
    let records = stack.read_all(&topic);

    let all = tail(&stack, &["--topic", &topic, "-e", "--format", "json"]).ok();
    assert_same(
        &all.positions(),
        &span(&[], &highs),
        "every record up to the end",
    );
    let by_pos: BTreeMap<(i32, i64), Value> = all
        .lines()
        .iter()
        .map(|l| (position(l), l.clone()))
        .collect();
    for r in &records {
        let l = &by_pos[&(r.partition, r.offset)];
        let ev = json(r);
        assert_eq!(l["value"], ev, "the value, parsed");
        assert_eq!(l["key"], ev["user_id"], "events are keyed by user");
        assert_eq!(l["topic"], topic.as_str());
        assert!(l["timestamp"].as_i64().unwrap() > 0);
        assert_eq!(l["headers"], serde_json::json!({}));
    }
    assert!(all.log.contains("shown=3000 read=3000"), "{}", all.log);

    let some = tail(
        &stack,
        &["--topic", &topic, "-e", "-n", "25", "--format", "json"],
    )
    .ok();
    assert_eq!(some.positions().len(), 25);
    assert!(some.positions().is_subset(&all.positions()));

    // The human view: a header, then one aligned line per record.
    let human = tail(&stack, &["--topic", &topic, "-e", "--format", "human"]).ok();
    let lines: Vec<&str> = human.stdout.lines().collect();
    assert_eq!(lines.len(), 3001, "{}", human.log);
    let value_at = lines[0].find("VALUE").expect("a header");
    assert!(
        lines[1..].iter().all(|l| l[value_at..].starts_with('{')),
        "values aligned under VALUE:\n{}",
        &human.stdout[..2000]
    );

    // Piped into a reader that stops after a line (`| head -1`): exit 0, no error.
    let dir = tempfile::tempdir().unwrap();
    let mut c = stack.encore();
    c.args(["tail", "--topic", &topic]); // no -e: only the closed pipe ends it
    let mut p = Proc::spawn_capturing(c, "tail-head", dir.path());
    let mut out = std::io::BufReader::new(p.child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    assert!(serde_json::from_str::<Value>(&first).is_ok(), "{first}");
    drop(out);
    let (status, _) = p.wait_output(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", p.log());
    assert!(!p.log().contains("error"), "{}", p.log());
}

#[test]
fn filters_by_event_type_and_user_show_exactly_the_matching_records() {
    let stack = Stack::get();
    let topic = unique("tailfilter");
    stack.produce(&topic, 2, 4000, 2);
    let records = stack.read_all(&topic);
    let expect = |keep: &dyn Fn(&Value) -> bool| -> BTreeSet<(i32, i64)> {
        records
            .iter()
            .filter(|r| keep(&json(r)))
            .map(|r| (r.partition, r.offset))
            .collect()
    };
    // By name and by id, repeated and comma-separated.
    let types = tail(
        &stack,
        &[
            "--topic",
            &topic,
            "-e",
            "--format",
            "json",
            "--event-type",
            "track_like",
            "--event-type",
            "2,resume_track",
        ],
    )
    .ok();
    let want = expect(&|v| [7, 2, 3].contains(&v["event_type_id"].as_u64().unwrap()));
    assert!(want.len() > 100, "enough to mean something: {}", want.len());
    assert_same(
        &types.positions(),
        &want,
        "--event-type track_like,2,resume_track",
    );

    // The user with the most events.
    let mut per_user: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        *per_user
            .entry(json(r)["user_id"].as_str().unwrap().into())
            .or_default() += 1;
    }
    let (user, n) = per_user.iter().max_by_key(|(_, n)| **n).unwrap();
    assert!(*n > 5, "{n}");
    let one = tail(
        &stack,
        &["--topic", &topic, "-e", "--format", "json", "--user", user],
    )
    .ok();
    assert_same(
        &one.positions(),
        &expect(&|v| v["user_id"] == user.as_str()),
        "--user",
    );

    let both = tail(
        &stack,
        &[
            "--topic",
            &topic,
            "-e",
            "--format",
            "json",
            "--user",
            user,
            "--event-type",
            "1",
        ],
    )
    .ok();
    assert_same(
        &both.positions(),
        &expect(&|v| v["user_id"] == user.as_str() && v["event_type_id"] == 1),
        "--user --event-type 1",
    );
}

#[test]
fn starts_at_an_offset_before_the_end_an_absolute_offset_or_a_time() {
    let stack = Stack::get();
    let topic = unique("tailstart");
    stack.produce(&topic, 2, 600, 3);
    let first = stack.high_watermarks(&topic);
    // Records of the second batch are stamped after `mark`, those of the first before.
    let mark = now_ms() + 1;
    wait_for("the clock to pass the mark", Duration::from_secs(5), || {
        now_ms() > mark
    });
    stack.produce(&topic, 2, 600, 4);
    let highs = stack.high_watermarks(&topic);
    let json_tail = |extra: &[&str]| {
        let mut a = vec!["--topic", topic.as_str(), "-e", "--format", "json"];
        a.extend_from_slice(extra);
        tail(&stack, &a).ok()
    };

    let before_end: Vec<i64> = highs.iter().map(|h| h - 7).collect();
    assert_same(
        &json_tail(&["-o", "-7"]).positions(),
        &span(&before_end, &highs),
        "-o -7",
    );
    let at_10 = json_tail(&["-o", "10", "-p", "1"]).positions();
    assert_same(&at_10, &span(&[0, 10], &[0, highs[1]]), "-o 10 -p 1");

    let since = format!("s@{mark}");
    assert_same(
        &json_tail(&["-o", &since]).positions(),
        &span(&first, &highs),
        "-o s@MS",
    );
    let rfc = chrono::DateTime::from_timestamp_millis(mark)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    assert_same(
        &json_tail(&["-o", &rfc]).positions(),
        &span(&first, &highs),
        "-o RFC 3339",
    );
    let future = format!("s@{}", now_ms() + 3_600_000);
    assert!(json_tail(&["-o", &future]).stdout.is_empty());
    assert!(json_tail(&["-o", "end"]).stdout.is_empty());

    // Without -e, from the end: only records written after the start; -n ends it.
    let dir = tempfile::tempdir().unwrap();
    let mut c = stack.encore();
    c.args([
        "tail", "--topic", &topic, "-o", "end", "-n", "5", "--format", "json",
    ]);
    let mut p = Proc::spawn_capturing(c, "tail-end", dir.path());
    let mut seed = 10;
    wait_for(
        "tail -o end -n 5 to see new records",
        Duration::from_secs(60),
        || {
            if !p.running() {
                return true;
            }
            stack.produce(&topic, 2, 5, seed);
            seed += 1;
            false
        },
    );
    let (status, out) = p.wait_output(Duration::from_secs(10));
    assert!(status.success(), "{}", p.log());
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        lines
            .iter()
            .map(position)
            .all(|(p, o)| o >= highs[p as usize]),
        "only new records: {out}"
    );
}

#[test]
fn dead_letters_are_shown_with_their_reason_error_and_source_position() {
    let stack = Stack::get();
    let topic = unique("taildlq");
    let lake = format!("s3://{}/t", unique("lake"));
    let user = "01a213ef-7f98-735c-9125-bfe9f719a987";
    let unknown_type = format!(
        r#"{{"event_id":"01a213ef-7f98-735c-9125-bfe9f719a986","event_type_id":77,"event_type":"x","user_id":"{user}","session_id":"01a213ef-7f98-735c-9125-bfe9f719a988","platform":"ios","platform_token":"ios-00","ipv4":"10.0.0.1","country":"DE","track_id":1,"liked":false,"ts":1700000000,"ts_ms":1700000000123}}"#
    );
    let poison: Vec<(&str, Vec<u8>)> = vec![
        ("invalid_json", b"{\"event_type_id\": 1, \"trac".to_vec()),
        ("empty", Vec::new()),
        ("not_utf8", b"\xc3\x28\xa0\xa1 not text".to_vec()),
        ("unknown_event_type", unknown_type.into_bytes()),
    ];
    stack.produce(&topic, 2, 200, 5);
    stack.produce_raw(
        &topic,
        &poison.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
    );
    stack.produce(&topic, 2, 100, 6);

    // No dead-letter topic yet: named, exit 2.
    let none = tail(&stack, &["--topic", &topic, "--dead-letters", "-e"]);
    assert_eq!(none.code, Some(2), "{}", none.log);
    assert!(
        none.log
            .contains(&format!("dead-letter topic `{topic}.dlq` does not exist")),
        "{}",
        none.log
    );

    let dir = tempfile::tempdir().unwrap();
    stack.sink_to_end(&topic, &unique("g"), &lake, dir.path());

    // Where each poison record is in the source topic.
    let source: BTreeMap<Vec<u8>, (i32, i64)> = stack
        .read_all(&topic)
        .into_iter()
        .map(|r| (r.value, (r.partition, r.offset)))
        .collect();
    let letters = tail(
        &stack,
        &[
            "--topic",
            &topic,
            "--dead-letters",
            "-e",
            "--format",
            "json",
        ],
    )
    .ok();
    let lines = letters.lines();
    assert_eq!(lines.len(), poison.len(), "{}", letters.stdout);
    let mut seen = BTreeSet::new();
    for (reason, value) in &poison {
        let (p, o) = source[value];
        let l = lines
            .iter()
            .find(|l| l["dead_letter"]["reason"] == *reason)
            .unwrap_or_else(|| panic!("no {reason} letter:\n{}", letters.stdout));
        let d = &l["dead_letter"];
        assert_eq!(d["topic"], topic.as_str(), "{l}");
        assert_eq!(
            (d["partition"].as_i64(), d["offset"].as_i64()),
            (Some(p as i64), Some(o)),
            "{l}"
        );
        assert!(!d["error"].as_str().unwrap().is_empty(), "{l}");
        assert_eq!(l["headers"]["encore.reason"], *reason, "{l}");
        assert!(l["headers"]["encore.timestamp_ms"].is_string(), "{l}");
        assert_eq!(l["topic"], format!("{topic}.dlq"));
        seen.insert(*reason);
    }
    assert_eq!(seen.len(), poison.len());

    // The human view names the reason, the source and the error.
    let human = tail(
        &stack,
        &[
            "--topic",
            &topic,
            "--dead-letters",
            "-e",
            "--format",
            "human",
        ],
    )
    .ok();
    let (p, o) = source[&poison[3].1];
    let row = human
        .stdout
        .lines()
        .find(|l| l.contains("unknown_event_type"))
        .unwrap_or_else(|| panic!("{}", human.stdout));
    assert!(
        row.trim_end().ends_with(&format!("{topic}/{p}@{o}")),
        "{row}"
    );
    assert!(
        human.stdout.contains("error: unknown event_type_id 77")
            && human.stdout.contains("headers: encore.timestamp_ms="),
        "{}",
        human.stdout
    );

    // The user filter reads the letter's value (and its key, here none).
    let mine = tail(
        &stack,
        &[
            "--topic",
            &topic,
            "--dead-letters",
            "-e",
            "--user",
            user,
            "--format",
            "json",
        ],
    )
    .ok();
    let reasons: Vec<Value> = mine
        .lines()
        .iter()
        .map(|l| l["dead_letter"]["reason"].clone())
        .collect();
    assert_eq!(reasons, vec![Value::from("unknown_event_type")]);
}

#[test]
fn bad_flags_a_missing_topic_and_an_unreachable_broker_exit_2_with_a_message() {
    let stack = Stack::get();
    let topic = unique("tailbad");
    stack.produce(&topic, 2, 10, 7);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["-o", "yesterday"],
            "`yesterday` is not a start position",
        ),
        (vec!["-o", "stored"], "tail reads without one"),
        (
            vec!["--event-type", "dance"],
            "`dance` is not an event type",
        ),
        (vec!["--event-type", "9"], "track_unlike (8)"),
        (vec!["--user", "bob"], "`bob` is not a user id"),
        (vec!["-n", "0"], "--count"),
        (vec!["--format", "xml"], "--format"),
        (vec!["-p", "2"], "--partition 2: topic `tailbad"),
        (
            vec!["--topic", "no-such-topic-tail"],
            "topic `no-such-topic-tail` does not exist",
        ),
    ];
    for (args, msg) in cases {
        let mut a = vec!["-e"];
        if !args.contains(&"--topic") {
            a.extend(["--topic", topic.as_str()]);
        }
        a.extend(args.iter().copied());
        let t = tail(&stack, &a);
        assert_eq!(t.code, Some(2), "{args:?}: {}", t.log);
        assert!(t.log.contains(msg), "{args:?}: `{msg}` not in\n{}", t.log);
        assert!(t.stdout.is_empty(), "{args:?}: {}", t.stdout);
    }
    assert!(
        !stack.topic_exists("no-such-topic-tail"),
        "tail created the topic"
    );

    let started = std::time::Instant::now();
    let t = tail(
        &stack,
        &["--brokers", "127.0.0.1:1", "--connect-timeout", "2s", "-e"],
    );
    assert_eq!(t.code, Some(2), "{}", t.log);
    assert!(
        t.log
            .contains("cannot reach Kafka at `127.0.0.1:1` within 2s"),
        "{}",
        t.log
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    let mut c = common::process::encore();
    let out = c.args(["tail", "--topic", &topic]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`encore tail` needs --brokers"));
}

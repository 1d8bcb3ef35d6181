//! What a run against the stack must have done: the lake caught up with the topic, every
//! offset and every event in it exactly once, and `encore verify` clean and exact.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use super::lake::LakeView;
use super::process::{Proc, text};
use super::stack::{Stack, unique};

/// Waits until the lake's committed ranges reach the topic's high watermarks.
pub fn wait_caught_up(
    view: &LakeView,
    targets: &[i64],
    deadline: Duration,
    logs: impl Fn() -> String,
) {
    let end = Instant::now() + deadline;
    loop {
        let ends = view.committed_ends(targets.len());
        if ends.as_slice() == targets {
            return;
        }
        assert!(
            Instant::now() < end,
            "the lake did not catch up within {deadline:?}: committed up to {ends:?}, topic at {targets:?}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Once the lake has caught up with `targets` (within `deadline`), SIGTERM to `sink`, which
/// must drain with exit 0 within 30 s. Returns its log.
pub fn term_when_caught_up(
    sink: Proc,
    view: &LakeView,
    targets: &[i64],
    deadline: Duration,
) -> String {
    wait_caught_up(view, targets, deadline, || sink.log());
    sink.term_ok(Duration::from_secs(30))
}

/// The exactly-once contract, checked from both sides: per partition the commit markers form
/// one contiguous run from offset 0 to the high watermark, and the Parquet files hold each of
/// those offsets exactly once, each event id once, `expected` rows in all.
pub fn assert_exactly_once(view: &LakeView, targets: &[i64], expected: u64) {
    assert_eq!(
        targets.iter().sum::<i64>() as u64,
        expected,
        "the topic holds {targets:?} records, not {expected}"
    );
    for (p, &high) in targets.iter().enumerate() {
        let ranges = view.committed(p as i32);
        let mut next = 0;
        for r in &ranges {
            assert_eq!(
                r.first, next,
                "partition {p}: committed ranges are not contiguous: {ranges:?}"
            );
            next = r.last + 1;
        }
        assert_eq!(
            next, high,
            "partition {p}: committed up to {next}, topic at {high}"
        );
    }
    let files = view.files();
    let mut seen: BTreeMap<(i32, i64), String> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    let mut total = 0u64;
    for (name, rows) in &files {
        for r in rows {
            total += 1;
            if let Some(other) = seen.insert((r.partition, r.offset), name.clone()) {
                panic!(
                    "offset {}/{} is in both {other} and {name}",
                    r.partition, r.offset
                );
            }
            assert!(
                ids.insert(r.event_id.clone()),
                "duplicate event id {}",
                r.event_id
            );
        }
    }
    assert_eq!(total, expected, "lake rows vs events produced");
    for (p, &high) in targets.iter().enumerate() {
        // Unique keys, `high` of them, from 0 to high-1: exactly the offsets 0..high.
        let keys: Vec<i64> = seen
            .range((p as i32, i64::MIN)..(p as i32 + 1, i64::MIN))
            .map(|(k, _)| k.1)
            .collect();
        assert_eq!(
            keys.len() as i64,
            high,
            "partition {p}: rows for {} of {high} offsets",
            keys.len()
        );
        if high > 0 {
            assert_eq!(
                (keys[0], keys[keys.len() - 1]),
                (0, high - 1),
                "partition {p}: offsets"
            );
        }
    }
}

impl Stack {
    /// `encore verify` with the topic (and so the dead-letter topic) must be clean and exact:
    /// every record of the topic is a lake row or a dead letter, none in flight.
    pub fn verify_exact(&self, topic: &str, lake: &str, rows: u64, dead_letters: u64) -> String {
        let (code, report) = self.verify(topic, lake, &[]);
        assert_eq!(code, Some(0), "encore verify:\n{report}");
        assert!(
            report.contains(&format!("verdict: CLEAN ({rows} rows")),
            "expected {rows} rows:\n{report}"
        );
        let records: i64 = self.high_watermarks(topic).iter().sum();
        assert_eq!(
            records as u64,
            rows + dead_letters,
            "the topic holds {records} records, not {rows} rows + {dead_letters} dead letters"
        );
        assert!(
            report.contains(&format!(
                "Kafka: {records} records = lake rows {rows} + dead letters {dead_letters} + in flight 0"
            )),
            "{report}"
        );
        report
    }

    /// `encore verify` of `lake` against `topic` with `extra` arguments: its exit code and
    /// everything it printed.
    pub fn verify(&self, topic: &str, lake: &str, extra: &[&str]) -> (Option<i32>, String) {
        let out = self
            .encore()
            .args(["verify", "--topic", topic, "--lake", lake])
            .args(extra)
            .output()
            .expect("running encore verify");
        (out.status.code(), text(&out))
    }

    /// `encore sink --exit-at-end` of `topic` into `lake` as `group`, which must exit 0 within
    /// 180 s: its summary (stdout).
    pub fn sink_to_end(&self, topic: &str, group: &str, lake: &str, dir: &Path) -> String {
        let mut c = self.encore();
        c.args(["sink", "--topic", topic, "--group", group]).args([
            "--lake",
            lake,
            "--exit-at-end",
        ]);
        let mut s = Proc::spawn_capturing(c, &unique("sink"), dir);
        let (status, out) = s.wait_output(Duration::from_secs(180));
        assert!(status.success(), "exit {status}:\n{out}\n{}", s.log());
        out
    }

    /// `encore sink` of `topic` into `lake` (new group, `extra` arguments) until the lake holds
    /// the whole topic, then SIGTERM, which must drain with exit 0. Returns the sink's log.
    pub fn sink_until_caught_up(
        &self,
        topic: &str,
        lake: &str,
        extra: &[&str],
        dir: &Path,
    ) -> String {
        let mut sink = self.encore();
        sink.args([
            "sink",
            "--topic",
            topic,
            "--group",
            &unique("g"),
            "--lake",
            lake,
        ])
        .args(extra);
        let sink = Proc::spawn(sink, &unique("sink"), dir);
        let view = LakeView::open(self, lake, topic);
        let targets = self.high_watermarks(topic);
        term_when_caught_up(sink, &view, &targets, Duration::from_secs(120))
    }
}

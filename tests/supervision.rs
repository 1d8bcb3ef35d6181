//! Supervision: a flusher that cannot write is restarted with backoff while the rest of the
//! pipeline keeps running, and nothing is lost; past the restart budget the run stops with a
//! clear error, and the next run resumes exactly where the lake ends.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::encore;
use common::*;
use encore::pipeline::RunError;

/// A lake whose table directory is a file: every data write fails (as root, permission bits
/// would not stop writes; this does) until `unblock`.
fn blocked_lake() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_path_buf();
    std::fs::create_dir_all(&lake).unwrap();
    std::fs::write(lake.join("music_events"), b"in the way").unwrap();
    (dir, lake)
}

fn unblock(lake: &Path) {
    std::fs::remove_file(lake.join("music_events")).unwrap();
}

fn pending_intents(lake: &Path) -> usize {
    walk(&lake.join("_encore/music_events/pending"))
}

fn walk(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn flusher_failures_are_restarted_and_nothing_is_lost() {
    let (_dir, lake) = blocked_lake();
    let runner = {
        let lake = lake.clone();
        std::thread::spawn(move || run(sim(20_000, 200, 3), sink(&lake, 2_000)))
    };
    // An intent without its data means a flush started and failed.
    wait_for("a failed flush", Duration::from_secs(60), || {
        pending_intents(&lake) > 0
    });
    std::thread::sleep(Duration::from_millis(300));
    unblock(&lake);
    let summary = runner.join().unwrap().expect("the run recovers");
    assert!(
        summary.restarts >= 1,
        "restarts counted: {}",
        summary.restarts
    );
    assert_eq!(summary.rows, 20_000);
    let all = all_rows(&lake);
    assert_eq!(all.len(), 20_000);
    let ids: HashSet<&str> = all.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids.len(), 20_000);
    assert_eq!(pending_intents(&lake), 0, "every intent resolved");
    verify_clean(&lake, 20_000);
}

#[test]
fn exhausted_budget_stops_the_run_and_the_next_run_resumes() {
    let (_dir, lake) = blocked_lake();
    let mut cfg = sink(&lake, 1_000);
    cfg.restart_budget = 2;
    let err = run(sim(5_000, 50, 9), cfg).expect_err("budget exhausted");
    match err {
        RunError::Fatal { reason, summary } => {
            assert!(reason.contains("flusher failed 3 times"), "{reason}");
            assert_eq!(summary.rows, 0);
        }
        other => panic!("expected a fatal stop, got {other:?}"),
    }
    assert!(
        pending_intents(&lake) > 0,
        "the crash left an intent behind"
    );
    unblock(&lake);
    // Recovery rolls the intents back, then the new run writes everything.
    let s = run(sim(5_000, 50, 9), sink(&lake, 1_000)).unwrap();
    assert_eq!(s.rows, 5_000);
    assert_eq!(all_rows(&lake).len(), 5_000);
    assert_eq!(pending_intents(&lake), 0);
    verify_clean(&lake, 5_000);
}

#[test]
fn the_binary_exits_1_with_the_reason_when_the_budget_is_exhausted() {
    let (_dir, lake) = blocked_lake();
    let out = encore()
        .args(["run", "--users", "50", "--events", "5000", "--max-rate"])
        .args([
            "--batch-rows",
            "1000",
            "--restart-budget",
            "2",
            "--no-progress",
        ])
        .arg("--lake")
        .arg(&lake)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: flusher failed 3 times within 300s (restart budget 2)"),
        "{err}"
    );
    assert!(err.contains("committed data is safe"), "{err}");
    // Nothing was committed, and what the failed flushes left is rolled back by the next run.
    unblock(&lake);
    let s = run(sim(5_000, 50, 9), sink(&lake, 1_000)).unwrap();
    assert_eq!(s.rows, 5_000);
    verify_clean(&lake, 5_000);
}

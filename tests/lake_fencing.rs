//! Many writers of one partition on a real local filesystem (create-only writes by no-clobber
//! links): a stale writer never makes a range visible once another recovered the partition,
//! racing writers never commit overlapping ranges, and nothing committed is ever lost.

mod common;

use common::{DAY, local_lake as lake, rt};
use encore::lake::{Attempt, CommitMarker, Fence, LakeError, PreparedBatch, Range};

/// Records `first..=last` of partition 3.
fn batch(first: i64, last: i64, ts_ms: i64) -> PreparedBatch {
    common::prepared_batch(3, first, last, ts_ms)
}

fn fence(epoch: u64) -> Fence {
    Fence {
        epoch,
        revoked: None,
    }
}

fn exists(dir: &std::path::Path, m: &CommitMarker) -> Vec<bool> {
    m.files.iter().map(|f| dir.join(&f.path).exists()).collect()
}

fn range(first: i64, last: i64) -> Range {
    Range {
        partition: 3,
        first,
        last,
    }
}

/// The scenario that lost data before fencing: A is committing 1000-1999 (two dates) when B
/// recovers the partition; B must not delete what A may still commit, A must not commit once
/// B claimed, and C then resumes after B's range with every committed file in place.
#[test]
fn a_slow_writer_is_fenced_and_nothing_committed_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (a, b) = (lake(dir.path()), lake(dir.path()));
    rt.block_on(async {
        let ea = a.recover_partition(3, "src").await.unwrap().epoch;
        a.commit_batch("src", &batch(0, 999, DAY), &fence(ea), Attempt::First)
            .await
            .unwrap();
        // A's slow commit: the intent and the first date's file are written (by hand here).
        let slow = batch(1000, 1999, DAY - 500);
        assert_eq!(slow.files.len(), 2, "two dates");
        let marker = a.marker_for("src", &slow, ea);
        let intent = dir.path().join(format!(
            "_encore/music_events/pending/p00003/{:020}-{:020}-e{ea}.json",
            1000, 1999
        ));
        std::fs::create_dir_all(intent.parent().unwrap()).unwrap();
        std::fs::write(&intent, serde_json::to_vec(&marker).unwrap()).unwrap();
        let first_file = dir.path().join(&marker.files[0].path);
        std::fs::create_dir_all(first_file.parent().unwrap()).unwrap();
        std::fs::write(&first_file, &slow.files[0].bytes).unwrap();

        // B takes over: its recovery leaves A's files alone (A may still be alive).
        let rb = b.recover_partition(3, "src").await.unwrap();
        assert_eq!((rb.next_offset, rb.contested), (Some(1000), 1));
        assert!(first_file.exists(), "B deleted what A might still commit");
        // A finishes its commit: its last look at the claims stops it, and it cleans its own.
        let err = a
            .commit_batch("src", &slow, &fence(ea), Attempt::First)
            .await
            .unwrap_err();
        assert!(
            matches!(err, LakeError::Fenced { partition: 3, .. }),
            "{err}"
        );
        assert_eq!(exists(dir.path(), &marker), [false, false]);
        // B commits its own range from the same offset.
        let mb = b
            .commit_batch(
                "src",
                &batch(1000, 1499, DAY),
                &fence(rb.epoch),
                Attempt::First,
            )
            .await
            .unwrap();
        // C resumes after B, and the lake holds exactly 0-1499 with every file present.
        let rc = lake(dir.path()).recover_partition(3, "src").await.unwrap();
        assert_eq!(rc.next_offset, Some(1500));
        let markers = b.committed_markers(3).await.unwrap();
        let ranges: Vec<Range> = markers.iter().map(CommitMarker::range).collect();
        assert_eq!(ranges, [range(0, 999), range(1000, 1499)]);
        for m in &markers {
            assert!(exists(dir.path(), m).iter().all(|e| *e), "{m:?}");
        }
        assert_eq!(mb.epoch, rb.epoch);
    });
}

/// Two writers continue the partition from the same offset with different batch ends: the
/// first marker wins, the other is told who won, removes its files, and no range overlaps.
#[test]
fn racing_writers_contend_for_one_name_and_the_loser_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let (a, b) = (lake(dir.path()), lake(dir.path()));
    rt.block_on(async {
        let ea = a.recover_partition(3, "src").await.unwrap().epoch;
        let eb = b.recover_partition(3, "src").await.unwrap().epoch;
        assert!(eb > ea);
        // The stale writer A tries to commit after B claimed.
        let ma = a
            .commit_batch("src", &batch(0, 1999, DAY), &fence(ea), Attempt::First)
            .await;
        // A was superseded before it looked: fenced, nothing committed.
        assert!(matches!(ma, Err(LakeError::Fenced { .. })), "{ma:?}");
        // Now the other order: B commits 0-1499, then a writer that has not seen B's claim
        // (epoch 0 skips the claim check, as a writer from before epochs would) loses the
        // name and learns the winner's end.
        let mb = b
            .commit_batch("src", &batch(0, 1499, DAY), &fence(eb), Attempt::First)
            .await
            .unwrap();
        let late = batch(0, 1999, DAY);
        let err = a
            .commit_batch("src", &late, &fence(0), Attempt::First)
            .await
            .unwrap_err();
        match &err {
            LakeError::Lost {
                first: 0,
                winner_last: Some(1499),
                winner_epoch: Some(e),
                ..
            } => assert_eq!(*e, eb),
            other => panic!("expected Lost, got {other}"),
        }
        let loser = a.marker_for("src", &late, 0);
        assert_eq!(
            exists(dir.path(), &loser),
            [false],
            "the loser's files are gone"
        );
        assert_eq!(exists(dir.path(), &mb), [true], "the winner's stay");
        let ranges = b.committed_ranges(3).await.unwrap();
        assert_eq!(ranges, [range(0, 1499)]);
        assert_eq!(b.committed_end(3).await.unwrap(), 1500);
    });
}

/// A retried commit whose marker was written (the answer was lost) finds its own marker and
/// counts as committed; a revoked writer never writes its marker.
#[test]
fn a_retry_finds_its_own_marker_and_a_revoked_writer_stops() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let l = lake(dir.path());
    rt.block_on(async {
        let e = l.recover_partition(3, "src").await.unwrap().epoch;
        let b = batch(0, 99, DAY);
        let m1 = l
            .commit_batch("src", &b, &fence(e), Attempt::First)
            .await
            .unwrap();
        let m2 = l
            .commit_batch("src", &b, &fence(e), Attempt::Retry)
            .await
            .unwrap();
        assert_eq!(m1.range(), m2.range());
        assert_eq!(m1.files, m2.files);
        let revoked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let next = batch(100, 199, DAY);
        let err = l
            .commit_batch("src", &next, &Fence::new(e, revoked), Attempt::First)
            .await
            .unwrap_err();
        assert!(matches!(err, LakeError::Fenced { .. }), "{err}");
        assert_eq!(exists(dir.path(), &l.marker_for("src", &next, e)), [false]);
        assert_eq!(l.committed_end(3).await.unwrap(), 100);
    });
}

/// Recovery walks the chain of markers from the partition's checkpoint: markers before it are
/// not read, and the resume point is the highest committed last offset.
#[test]
fn recovery_walks_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let l = lake(dir.path());
    rt.block_on(async {
        let e = l.recover_partition(3, "src").await.unwrap().epoch;
        for i in 0..5 {
            let b = batch(i * 10, i * 10 + 9, DAY);
            l.commit_batch("src", &b, &fence(e), Attempt::First)
                .await
                .unwrap();
        }
        // Recovery moves the checkpoint to the newest marker.
        let rec = l.recover_partition(3, "src").await.unwrap();
        assert_eq!(rec.next_offset, Some(50));
        let cp = dir
            .path()
            .join("_encore/music_events/checkpoints/p00003.json");
        let text = std::fs::read_to_string(&cp).unwrap();
        assert!(text.contains("\"next\":50"), "{text}");
        // Older markers are no longer read: removing one changes nothing for recovery…
        std::fs::remove_file(
            dir.path()
                .join("_encore/music_events/commits/p00003/00000000000000000000.json"),
        )
        .unwrap();
        let again = l.recover_partition(3, "src").await.unwrap();
        assert_eq!(again.next_offset, Some(50));
        assert_eq!(again.epoch, rec.epoch + 1);
        // …while a full read (verify's) still sees every remaining marker.
        assert_eq!(l.committed_ranges(3).await.unwrap().len(), 4);
    });
}

/// Two `encore run` processes on one lake, the second started while the first writes: the
/// second's claims fence the first, which stops with a clear error instead of writing on, and
/// the lake stays sound (no overlapping or missing range, every committed file in place).
#[test]
fn a_second_run_on_the_same_lake_fences_the_first() {
    use common::process::{Proc, encore};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    let run = |duration: &str| {
        let mut c = encore();
        c.args([
            "run",
            "--users",
            "200",
            "--speed",
            "20",
            "--partitions",
            "2",
        ])
        .args(["--flush-interval", "200ms", "--no-progress", "--lake"])
        .arg(&lake_dir)
        .args(["--duration", duration]);
        c
    };
    let mut first = Proc::spawn_capturing(run("60s"), "first", dir.path());
    let commits = lake_dir.join("_encore/music_events/commits/p00000");
    common::wait_for(
        "the first run's first commit",
        Duration::from_secs(60),
        || std::fs::read_dir(&commits).is_ok_and(|mut d| d.next().is_some()),
    );
    let mut second = Proc::spawn_capturing(run("3s"), "second", dir.path());
    let (s1, _) = first.wait_output(Duration::from_secs(60));
    let (s2, _) = second.wait_output(Duration::from_secs(60));
    let (log1, log2) = (first.log(), second.log());
    assert_eq!(s1.code(), Some(1), "{log1}");
    assert!(
        log1.contains("another run writes this lake's table from the same source"),
        "{log1}"
    );
    // The second run wins, unless a commit of the first was already past its last look.
    assert!(
        s2.success() || log2.contains("another run writes this lake's table"),
        "{log2}"
    );
    let out = encore()
        .args(["verify", "--lake"])
        .arg(&lake_dir)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.contains("verdict: CLEAN"), "{report}");
}

/// A partition whose offsets do not start at 0 (the topic's older records expired): its chain
/// is found again by every later recovery, and a retry of a batch whose marker was written
/// (its answer lost) returns that commit even when the writer has been fenced since, without
/// touching its files.
#[test]
fn a_chain_above_zero_is_found_again_and_a_committed_retry_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let l = lake(dir.path());
    rt.block_on(async {
        let first = l.recover_partition(3, "src").await.unwrap();
        assert_eq!(first.next_offset, None);
        let b = batch(5000, 5099, DAY);
        let m = l
            .commit_batch("src", &b, &fence(first.epoch), Attempt::First)
            .await
            .unwrap();
        let again = l.recover_partition(3, "src").await.unwrap();
        assert_eq!(again.next_offset, Some(5100), "the chain starts above 0");
        assert_eq!(l.committed_end(3).await.unwrap(), 5100);
        // The first writer retries its batch after the new claim: committed, files kept.
        let revoked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let retry = l
            .commit_batch("src", &b, &Fence::new(first.epoch, revoked), Attempt::Retry)
            .await
            .unwrap();
        assert_eq!(retry.range(), m.range());
        assert_eq!(exists(dir.path(), &m), [true]);
        let third = l.recover_partition(3, "src").await.unwrap();
        assert_eq!(third.next_offset, Some(5100));
    });
}

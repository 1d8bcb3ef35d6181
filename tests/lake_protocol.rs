//! The commit protocol on a real local filesystem: committed ranges resume, interrupted
//! commits are rolled back at any step, a lake follows one source, and a long history is read
//! through manifests.

mod common;

use common::{DAY, local_lake as lake, prepared_batch as batch, rt, verify_clean};
use encore::lake::{Attempt, Fence, LakeError, MANIFEST_EVERY, Range};

#[test]
fn committed_ranges_resume_and_markers_list_files() {
    let dir = tempfile::tempdir().unwrap();
    let l = lake(dir.path());
    let rt = rt();
    rt.block_on(async {
        let first = l.recover_partition(0, "src").await.unwrap();
        assert_eq!((first.next_offset, first.epoch), (None, 1));
        let fence = Fence {
            epoch: first.epoch,
            revoked: None,
        };
        let m = l
            .commit_batch("src", &batch(0, 0, 99, DAY), &fence, Attempt::First)
            .await
            .unwrap();
        assert_eq!(m.rows, 100);
        assert_eq!(m.files.len(), 1);
        assert!(
            m.files[0].path.ends_with("-e1.parquet"),
            "{}",
            m.files[0].path
        );
        l.commit_batch("src", &batch(0, 100, 149, DAY), &fence, Attempt::First)
            .await
            .unwrap();
        let rec = l.recover_partition(0, "src").await.unwrap();
        assert_eq!(rec.next_offset, Some(150));
        assert_eq!(rec.epoch, 2, "every recovery claims the next epoch");
        assert!(rec.removed.is_empty());
        assert_eq!(
            l.committed_ranges(0).await.unwrap(),
            vec![
                Range {
                    partition: 0,
                    first: 0,
                    last: 99
                },
                Range {
                    partition: 0,
                    first: 100,
                    last: 149
                }
            ]
        );
        // Another source may not continue this lake.
        assert!(matches!(
            l.recover_partition(0, "other").await,
            Err(LakeError::SourceMismatch { .. })
        ));
    });
}

/// Simulates a crash after each step of a commit of a batch spanning two dates, and checks
/// that the range ends wholly committed or wholly absent: recovery keeps a committed range,
/// and the next writer's first commit at the same offset removes what the crashed one left.
#[test]
fn a_crash_at_any_step_leaves_all_or_nothing() {
    let rt = rt();
    // Two dates: the batch straddles midnight.
    let b = batch(3, 0, 9, DAY - 5);
    assert_eq!(b.files.len(), 2);
    for crash_after in 0..=4 {
        let dir = tempfile::tempdir().unwrap();
        let l = lake(dir.path());
        let crashed = rt.block_on(l.recover_partition(3, "src")).unwrap().epoch;
        let marker = l.marker_for("src", &b, crashed);
        let json = serde_json::to_vec(&marker).unwrap();
        let root = dir.path();
        let intent = root.join(format!(
            "_encore/music_events/pending/p00003/00000000000000000000-00000000000000000009-e{crashed}.json"
        ));
        let commit = root.join("_encore/music_events/commits/p00003/00000000000000000000.json");
        let write = |p: &std::path::Path, bytes: &[u8]| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        };
        // Steps: 1 intent, 2 first file, 3 second file (plus a staging leftover of a third
        // write in progress), 4 marker.
        if crash_after >= 1 {
            write(&intent, &json);
        }
        for (i, f) in marker.files.iter().enumerate() {
            if crash_after >= 2 + i {
                write(&root.join(&f.path), &b.files[i].bytes);
            }
        }
        if crash_after == 3 {
            write(&root.join(format!("{}#1", marker.files[1].path)), b"half");
        }
        if crash_after >= 4 {
            write(&commit, &json);
        }
        let rec = rt.block_on(l.recover_partition(3, "src")).unwrap();
        let present = |m: &encore::lake::CommitMarker| -> Vec<bool> {
            m.files
                .iter()
                .map(|f| root.join(&f.path).exists())
                .collect()
        };
        if crash_after >= 4 {
            assert_eq!(rec.next_offset, Some(10));
            assert_eq!(present(&marker), [true, true], "committed: files kept");
            assert!(!intent.exists(), "intent resolved");
            continue;
        }
        assert_eq!(rec.next_offset, None, "crash after step {crash_after}");
        // The crashed writer might still be alive: its intent waits for the offset's owner.
        assert_eq!(rec.contested, usize::from(crash_after >= 1));
        let fence = Fence {
            epoch: rec.epoch,
            revoked: None,
        };
        let again = rt
            .block_on(l.commit_batch("src", &b, &fence, Attempt::First))
            .unwrap();
        assert_eq!(present(&again), [true, true]);
        let removed = rt.block_on(l.clear_beaten(3, 0, rec.epoch)).unwrap();
        assert_eq!(
            present(&marker),
            [false, false],
            "crash after step {crash_after}: the crashed writer's files go"
        );
        // Files written before the crash (and the staging leftover of step 3).
        assert_eq!(removed.len(), [0, 0, 1, 3][crash_after], "{removed:?}");
        assert!(!intent.exists(), "intent resolved");
        assert!(!root.join(format!("{}#1", marker.files[1].path)).exists());
    }
}

#[test]
fn recovery_finds_partitions_beyond_the_current_count() {
    let dir = tempfile::tempdir().unwrap();
    let l = lake(dir.path());
    let rt = rt();
    let b = batch(9, 0, 4, DAY);
    // Written before epochs: intent and file names carry none.
    let marker = l.marker_for("encore-bus/music_events", &b, 0);
    let intent = dir
        .path()
        .join("_encore/music_events/pending/p00009/00000000000000000000-00000000000000000004.json");
    std::fs::create_dir_all(intent.parent().unwrap()).unwrap();
    std::fs::write(&intent, serde_json::to_vec(&marker).unwrap()).unwrap();
    let data = dir.path().join(&marker.files[0].path);
    std::fs::create_dir_all(data.parent().unwrap()).unwrap();
    std::fs::write(&data, &b.files[0].bytes).unwrap();
    assert_eq!(rt.block_on(l.known_partitions()).unwrap(), vec![9]);
    // A run with 2 partitions still rolls back partition 9's interrupted commit.
    let mut sim = common::sim(100, 10, 1);
    sim.partitions = 2;
    let s = common::run(sim, common::sink(dir.path(), 1_000)).unwrap();
    assert_eq!(s.rows, 100);
    assert!(!data.exists(), "partition 9's uncommitted file was removed");
    assert!(!intent.exists());
}

/// A long history (two manifests' worth of commits and a few more, written as the sink writes
/// them): readers of the whole history take the markers' copies from the manifests (a damaged
/// marker a manifest copies does not reach them; one no manifest copies is read, and reported
/// when damaged), recovery walks from the checkpoint, and verify is clean.
#[test]
fn a_long_history_is_read_through_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let l = lake(dir.path());
    let n = 2 * MANIFEST_EVERY + 5;
    let commits = dir.path().join("_encore/music_events/commits/p00000");
    rt.block_on(async {
        let rec = l.recover_partition(0, "src").await.unwrap();
        let fence = Fence {
            epoch: rec.epoch,
            revoked: None,
        };
        let (mut segment, mut all) = (Vec::new(), Vec::new());
        for i in 0..n as i64 {
            let b = batch(0, 2 * i, 2 * i + 1, DAY);
            let m = l
                .commit_batch("src", &b, &fence, Attempt::First)
                .await
                .unwrap();
            l.checkpoint_if_due(&m, i as u64 + 1).await.unwrap();
            segment.push(m.clone());
            all.push(m);
            if segment.len() == MANIFEST_EVERY {
                l.write_manifest(&segment).await.unwrap();
                segment.clear();
            }
        }
        assert_eq!(l.committed_markers(0).await.unwrap(), all);

        let covered = commits.join(format!("{:020}.json", 10));
        let kept = std::fs::read(&covered).unwrap();
        std::fs::write(&covered, b"not json").unwrap();
        assert_eq!(
            l.committed_markers(0).await.unwrap(),
            all,
            "a marker a manifest copies is not read"
        );
        std::fs::write(&covered, kept).unwrap();

        let last = all.last().unwrap().first_offset;
        let uncovered = commits.join(format!("{last:020}.json"));
        let kept = std::fs::read(&uncovered).unwrap();
        std::fs::write(&uncovered, b"not json").unwrap();
        assert!(
            l.committed_markers(0).await.is_err(),
            "a marker no manifest copies is read"
        );
        std::fs::write(&uncovered, kept).unwrap();

        let again = l.recover_partition(0, "src").await.unwrap();
        assert_eq!(again.next_offset, Some(2 * n as i64));
    });
    verify_clean(dir.path(), 2 * n as u64);
}

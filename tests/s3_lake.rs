//! The lake on the real stack's S3 server (s3s-fs): bucket creation, multipart uploads of large
//! files, and a wrong key refused with a clear error.

mod common;

use bytes::Bytes;
use chrono::NaiveDate;
use common::rt;
use common::stack::{Stack, unique};
use encore::lake::{Attempt, Fence, Lake, LakeError, PreparedBatch, PreparedFile, Range};
use object_store::ObjectStore;

#[test]
fn a_missing_bucket_is_created_and_a_40mib_file_goes_up_in_parts_intact() {
    let stack = Stack::get();
    let url = format!("s3://{}/big", unique("lake"));
    let lake = Lake::open(&stack.lake_config(&url), "music_events").unwrap();
    let rt = rt();
    rt.block_on(lake.ensure_writable())
        .expect("the bucket is created");
    // Above the 32 MiB multipart threshold: three parts of 16 MiB.
    let mut data = vec![0u8; 40 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let data = Bytes::from(data);
    let batch = PreparedBatch {
        range: Range {
            partition: 0,
            first: 0,
            last: 99,
        },
        files: vec![PreparedFile {
            date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            bytes: data.clone(),
            rows: 100,
            min_event_time_ms: 1_767_225_600_000,
            max_event_time_ms: 1_767_225_600_000,
        }],
        rejected: Vec::new(),
    };
    let epoch = rt
        .block_on(lake.recover_partition(0, "test/big"))
        .unwrap()
        .epoch;
    let fence = Fence {
        epoch,
        revoked: None,
    };
    let marker = rt
        .block_on(lake.commit_batch("test/big", &batch, &fence, Attempt::First))
        .expect("committing a 40 MiB batch");
    assert_eq!(marker.files.len(), 1);
    let rel = &marker.files[0].path;
    let path = rel.split('/').fold(lake.root().clone(), |p, s| p.child(s));
    let back = rt
        .block_on(async { lake.store().get(&path).await?.bytes().await })
        .expect("reading the file back");
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the file read back differs");
    assert_eq!(
        rt.block_on(lake.committed_ranges(0)).unwrap(),
        vec![batch.range]
    );
}

/// Fencing on the S3 server: its create-only writes (`If-None-Match: *`) pass the start-up
/// probe, a writer superseded by a later claim does not commit, and of two writers continuing
/// from the same offset only the first marker counts.
#[test]
fn on_s3_a_superseded_writer_is_fenced_and_racing_markers_have_one_winner() {
    let stack = Stack::get();
    let url = format!("s3://{}/fence", unique("lake"));
    let open = || Lake::open(&stack.lake_config(&url), "music_events").unwrap();
    let (a, b) = (open(), open());
    let rt = rt();
    rt.block_on(a.ensure_writable())
        .expect("s3s-fs honours create-only writes");
    let small = |first: i64, last: i64| PreparedBatch {
        range: Range {
            partition: 1,
            first,
            last,
        },
        files: vec![PreparedFile {
            date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            bytes: Bytes::from(vec![7u8; 1000]),
            rows: (last - first + 1) as u64,
            min_event_time_ms: 1_767_225_600_000,
            max_event_time_ms: 1_767_225_600_000,
        }],
        rejected: Vec::new(),
    };
    let fence = |epoch| Fence {
        epoch,
        revoked: None,
    };
    rt.block_on(async {
        let ea = a.recover_partition(1, "src").await.unwrap().epoch;
        let eb = b.recover_partition(1, "src").await.unwrap().epoch;
        assert_eq!(eb, ea + 1);
        let stale = a
            .commit_batch("src", &small(0, 99), &fence(ea), Attempt::First)
            .await;
        assert!(matches!(stale, Err(LakeError::Fenced { .. })), "{stale:?}");
        let won = b
            .commit_batch("src", &small(0, 49), &fence(eb), Attempt::First)
            .await
            .unwrap();
        // A writer that skips the claim check (epoch 0) still cannot take the name.
        let lost = a
            .commit_batch("src", &small(0, 99), &fence(0), Attempt::First)
            .await;
        assert!(
            matches!(
                lost,
                Err(LakeError::Lost {
                    winner_last: Some(49),
                    ..
                })
            ),
            "{lost:?}"
        );
        assert_eq!(a.committed_ranges(1).await.unwrap(), vec![won.range()]);
        assert_eq!(a.committed_end(1).await.unwrap(), 50);
    });
}

#[test]
fn a_wrong_secret_key_is_refused_at_start_with_exit_2() {
    let stack = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("s3://{}/p", unique("lake"));
    let out = stack
        .encore()
        .env("AWS_SECRET_ACCESS_KEY", "not-the-key")
        .args(["run", "--events", "100", "--max-rate", "--lake", &url])
        .env_remove("ENCORE_BROKERS")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SignatureDoesNotMatch"), "{stderr}");
    assert!(
        !stderr.contains("not-the-key"),
        "the secret was printed:\n{stderr}"
    );
}

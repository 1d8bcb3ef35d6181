//! The lake on the real stack's S3 server (s3s-fs): bucket creation, multipart uploads of large
//! files, and a wrong key refused with a clear error.

mod common;

use bytes::Bytes;
use chrono::NaiveDate;
use common::rt;
use common::stack::{Stack, unique};
use encore::lake::{Lake, PreparedBatch, PreparedFile, Range};
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
    let marker = rt
        .block_on(lake.commit_batch("test/big", &batch))
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

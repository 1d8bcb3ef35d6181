//! Recovery's cost against the lake's age: a partition with 1 000 000 committed batches
//! recovers as fast as one with a single batch (the baseline, measured in the same run),
//! because recovery walks the chain of markers from the partition's checkpoint and lists
//! nothing. On a local disk always; on the stack's S3 server when `scripts/stack.sh env` is in
//! the environment (the fixture's objects are written straight into s3s-fs's directory under
//! `ENCORE_STACK_DIR`, since a million PUTs would take most of an hour).
//!
//! The fixture is what a long-lived sink leaves: markers chained batch after batch, one claim,
//! the checkpoint as the writer last moved it (up to CHECKPOINT_EVERY - 1 commits behind the
//! end) and, on the local disk, a manifest per MANIFEST_EVERY commits. Built once and kept under
//! `target/bench-lakes/`. `history_local` measures what verify reads of the markers: every
//! one, listed, from the manifests (its cost still grows with the lake's age, by one read per
//! MANIFEST_EVERY commits and a listing).

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use encore::lake::{CHECKPOINT_EVERY, Lake, LakeConfig, MANIFEST_EVERY};

const BATCHES: u64 = 1_000_000;
const ROWS_PER_BATCH: i64 = 10;
const TABLE: &str = "music_events";
const PARTITION: i32 = 3;
/// The S3 bucket of the fixtures.
const BUCKET: &str = "encore-bench";

/// Writes a chain of `batches` markers for partition 3 (and its claim and checkpoint) under
/// `root`, unless a finished one is there.
fn fixture(root: &Path, batches: u64) {
    let done = root.join(format!(".fixture-{batches}"));
    if done.exists() {
        return;
    }
    let meta = root.join("_encore").join(TABLE);
    let commits = meta.join(format!("commits/p{PARTITION:05}"));
    std::fs::create_dir_all(&commits).unwrap();
    for i in 0..batches as i64 {
        let first = i * ROWS_PER_BATCH;
        let name = commits.join(format!("{first:020}.json"));
        std::fs::write(name, serde_json::to_vec(&marker(i)).unwrap()).unwrap();
    }
    let claims = meta.join(format!("claims/p{PARTITION:05}"));
    std::fs::create_dir_all(&claims).unwrap();
    std::fs::write(claims.join(format!("{:020}.json", 1)), b"{\"epoch\":1}").unwrap();
    std::fs::create_dir_all(meta.join("checkpoints")).unwrap();
    reset(root, batches);
    std::fs::write(done, b"").unwrap();
}

/// The marker of the i-th batch.
fn marker(i: i64) -> serde_json::Value {
    let first = i * ROWS_PER_BATCH;
    serde_json::json!({
        "version": 2, "table": TABLE, "source": "bench", "partition": PARTITION,
        "first_offset": first, "last_offset": first + ROWS_PER_BATCH - 1, "epoch": 1,
        "rows": ROWS_PER_BATCH, "rejected_count": 0, "rejected": [], "files": [],
        "committed_at_ms": 0
    })
}

/// The manifests the writer of the fixture's chain leaves: one per MANIFEST_EVERY commits.
fn manifests(root: &Path, batches: u64) {
    let done = root.join(format!(".manifests-{batches}"));
    if done.exists() {
        return;
    }
    let dir = root
        .join("_encore")
        .join(TABLE)
        .join(format!("manifests/p{PARTITION:05}"));
    std::fs::create_dir_all(&dir).unwrap();
    let every = MANIFEST_EVERY as i64;
    for start in (0..batches as i64 / every).map(|k| k * every) {
        let markers: Vec<_> = (start..start + every).map(marker).collect();
        let first = start * ROWS_PER_BATCH;
        let m = serde_json::json!({
            "version": 1, "partition": PARTITION, "first": first,
            "last": (start + every) * ROWS_PER_BATCH - 1, "markers": markers
        });
        std::fs::write(
            dir.join(format!("{first:020}.json")),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
    }
    std::fs::write(done, b"").unwrap();
}

/// Puts back what each recovery changes (it adds a claim and moves the checkpoint), so that
/// every iteration recovers the same lake: the checkpoint as the writer last moved it, up to
/// CHECKPOINT_EVERY - 1 commits behind the end.
fn reset(root: &Path, batches: u64) {
    let meta = root.join("_encore").join(TABLE);
    let first_claim = format!("{:020}.json", 1);
    for e in std::fs::read_dir(meta.join(format!("claims/p{PARTITION:05}")))
        .unwrap()
        .flatten()
    {
        if e.file_name().to_string_lossy() != first_claim {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let behind = (CHECKPOINT_EVERY - 1).min(batches) as i64;
    let next = (batches as i64 - behind) * ROWS_PER_BATCH;
    let cp = serde_json::json!({"next": next, "epoch": 1, "source": "bench", "written_at_ms": 0});
    std::fs::write(
        meta.join(format!("checkpoints/p{PARTITION:05}.json")),
        serde_json::to_vec(&cp).unwrap(),
    )
    .unwrap();
}

fn bench_dir(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-lakes").join(name)
}

fn recover(c: &mut Criterion, group: &str, lake: &Lake, root: &Path, batches: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let want = batches as i64 * ROWS_PER_BATCH;
    c.benchmark_group(group).sample_size(20).bench_function(
        format!("recover_partition/{batches}_batches"),
        |b| {
            b.iter_batched(
                || reset(root, batches),
                |_| {
                    let rec = rt
                        .block_on(lake.recover_partition(PARTITION, "bench"))
                        .unwrap();
                    assert_eq!(rec.next_offset, Some(want));
                },
                criterion::BatchSize::PerIteration,
            )
        },
    );
}

/// What verify reads of the markers: every one, from the manifests where they copy them.
fn history(c: &mut Criterion, group: &str, lake: &Lake, batches: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    c.benchmark_group(group).sample_size(10).bench_function(
        format!("committed_markers/{batches}_batches"),
        |b| {
            b.iter(|| {
                let all = rt.block_on(lake.committed_markers(PARTITION)).unwrap();
                assert_eq!(all.len() as u64, batches);
            })
        },
    );
}

fn local(c: &mut Criterion) {
    for batches in [1, BATCHES] {
        let root = bench_dir(&format!("local-{batches}"));
        fixture(&root, batches);
        manifests(&root, batches);
        let cfg = LakeConfig {
            url: root.display().to_string(),
            ..LakeConfig::default()
        };
        let lake = Lake::open(&cfg, TABLE).unwrap();
        recover(c, "recovery_local", &lake, &root, batches);
        history(c, "history_local", &lake, batches);
    }
}

fn s3(c: &mut Criterion) {
    let (Ok(endpoint), Ok(dir)) = (
        std::env::var("ENCORE_S3_ENDPOINT"),
        std::env::var("ENCORE_STACK_DIR"),
    ) else {
        eprintln!(
            "\n*** recovery_s3 NOT MEASURED: no stack in the environment (eval \"$(scripts/stack.sh env)\") ***\n"
        );
        return;
    };
    for batches in [1, BATCHES] {
        let prefix = format!("bench-recovery-{batches}");
        // s3s-fs keeps each object as a file: <its directory>/<bucket>/<key>. A bucket of its
        // own: s3s-fs walks a whole bucket for every listing, and the tests' bucket must not
        // carry a million objects.
        let root = Path::new(&dir).join("data/s3").join(BUCKET).join(&prefix);
        fixture(&root, batches);
        let cfg = LakeConfig {
            url: format!("s3://{BUCKET}/{prefix}"),
            s3_endpoint: Some(endpoint.clone()),
            ..LakeConfig::default()
        };
        let lake = Lake::open(&cfg, TABLE).unwrap();
        recover(c, "recovery_s3", &lake, &root, batches);
    }
}

criterion_group!(benches, local, s3);
criterion_main!(benches);

//! The lake side of `encore status`: each partition's committed position, read the way the
//! sink's drain check reads it (a walk from the partition's checkpoint: a few small objects,
//! whatever the lake's age), all partitions at once, bounded in time.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::CommandError;
use crate::lake::{Lake, LakeConfig, LakeError};

/// What the lake holds for the topic.
#[derive(Debug, PartialEq, Eq)]
pub enum LakeRead {
    /// Per partition, the first offset not committed (None: nothing committed).
    Positions(Vec<Option<i64>>),
    /// No lake at the location: why, for the notes.
    Missing(String),
}

/// The committed positions of partitions `0..partitions` of `topic` in the lake at `cfg`,
/// within `patience`. Never creates anything: a local lake that does not exist is missing.
pub async fn positions(
    cfg: &LakeConfig,
    topic: &str,
    partitions: usize,
    patience: Duration,
) -> Result<LakeRead, CommandError> {
    if let Some(path) = local_path(&cfg.url)
        && !path.exists()
    {
        return Ok(LakeRead::Missing(format!("no lake at `{}`", cfg.url)));
    }
    let lake = Lake::open(cfg, topic).map_err(|e| CommandError::Usage(e.to_string()))?;
    let reads = (0..partitions as i32).map(|p| lake.committed_next(p));
    let read = tokio::time::timeout(patience, futures::future::try_join_all(reads));
    match read.await {
        Ok(Ok(ends)) => Ok(LakeRead::Positions(ends)),
        Ok(Err(e)) if no_bucket(&e) => Ok(LakeRead::Missing(format!(
            "no lake at `{}` (its bucket does not exist)",
            cfg.url
        ))),
        Ok(Err(e)) if e.is_config() => Err(CommandError::Usage(e.to_string())),
        Ok(Err(e)) => Err(CommandError::Failed(e.to_string())),
        Err(_) => Err(CommandError::Usage(format!(
            "the lake at `{}` did not answer within {} (--connect-timeout)",
            lake.location(),
            humantime::format_duration(patience)
        ))),
    }
}

/// A listing of a bucket that does not exist: object_store reports S3's 404 `NoSuchBucket`
/// as a generic error, found by its code.
fn no_bucket(e: &LakeError) -> bool {
    match e {
        LakeError::Store { source, .. } => {
            matches!(source, object_store::Error::NotFound { .. })
                || source.to_string().contains("<Code>NoSuchBucket</Code>")
        }
        _ => false,
    }
}

/// The directory of a local lake location (as [`Lake::open`] reads it); None for S3.
fn local_path(url: &str) -> Option<PathBuf> {
    match url.strip_prefix("file://") {
        Some(p) => Some(PathBuf::from(p)),
        None if url.contains("://") => None,
        None => Some(PathBuf::from(url)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_lake_that_does_not_exist_is_missing_and_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("nowhere").display().to_string();
        let cfg = LakeConfig {
            url: url.clone(),
            ..LakeConfig::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let read = rt.block_on(positions(&cfg, "t", 2, Duration::from_secs(5)));
        assert!(matches!(read, Ok(LakeRead::Missing(_))), "{read:?}");
        assert!(!std::path::Path::new(&url).exists());
        std::fs::create_dir(&url).unwrap();
        let read = rt.block_on(positions(&cfg, "t", 2, Duration::from_secs(5)));
        assert_eq!(read.unwrap(), LakeRead::Positions(vec![None, None]));
    }

    #[test]
    fn local_paths_are_told_from_s3() {
        assert_eq!(local_path("./lake"), Some(PathBuf::from("./lake")));
        assert_eq!(local_path("file:///x"), Some(PathBuf::from("/x")));
        assert_eq!(local_path("s3://b/p"), None);
    }
}

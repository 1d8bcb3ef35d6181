//! The lake: where it is (one URL), how objects are named, how Parquet is written, and the
//! commit protocol that makes output exactly-once.

mod credentials;
mod dict;
mod naming;
mod parquet_props;
mod protocol;
pub mod schema;

pub use naming::{
    InvalidName, META_DIR, Range, data_file_name, date_dir, parse_data_file_name, table_dir,
    validate_table,
};
pub use parquet_props::{Compression, encode, writer_properties};
pub use protocol::{
    Attempt, CHECKPOINT_EVERY, CommitMarker, Fence, FileEntry, MANIFEST_EVERY, PartitionRecovery,
    PreparedBatch, PreparedFile, Rejected,
};

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;

pub use credentials::{CredentialSource, credential_source};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, RetryConfig};

/// Where the lake is and how to reach it.
#[derive(Clone, Default)]
pub struct LakeConfig {
    /// A path, `file://…`, or `s3://bucket/prefix`.
    pub url: String,
    /// S3-compatible endpoint (MinIO, s3s-fs); path-style requests are used when it is set.
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_access_key: Option<String>,
    /// Never printed: `Debug` redacts it.
    pub s3_secret_key: Option<String>,
}

impl fmt::Debug for LakeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LakeConfig")
            .field("url", &self.url)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key", &self.s3_access_key)
            .field(
                "s3_secret_key",
                &self.s3_secret_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Errors of the lake, with what was being done and where.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake location `{url}`: {reason}")]
    Location { url: String, reason: String },
    #[error("{action} `{path}`: {source}")]
    Store {
        action: &'static str,
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("encoding Parquet for {path}: {source}")]
    Encode {
        path: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("commit marker `{path}` is unreadable: {reason}")]
    BadMarker { path: String, reason: String },
    /// A batch's rejected records could not be written to the dead-letter topic; the batch
    /// is not committed until they are.
    #[error("writing {count} dead letters to `{topic}`: {source}")]
    DeadLetters {
        topic: String,
        count: usize,
        source: crate::kafka::producer::ProduceError,
    },
    /// The writer no longer owns the partition: nothing was committed, its files are gone.
    #[error("not committing partition {partition} (epoch {epoch}): {why}")]
    Fenced {
        partition: i32,
        epoch: u64,
        why: &'static str,
    },
    /// Another writer committed a range starting at the same offset first.
    #[error(
        "another writer (epoch {}) committed partition {partition} from offset {first}{}: this batch was dropped{}",
        winner_epoch.map_or("?".to_string(), |e| e.to_string()),
        winner_last.map_or(String::new(), |l| format!(" to {l}")),
        if *stale { ", and this writer's claim is stale" } else { "" }
    )]
    Lost {
        partition: i32,
        first: i64,
        winner_last: Option<i64>,
        winner_epoch: Option<u64>,
        /// A later claim exists: the partition is someone else's now.
        stale: bool,
    },
    /// Claiming kept colliding with other writers claiming the same partition.
    #[error("partition {partition}: other writers kept claiming it at the same moment")]
    Contended { partition: i32 },
    #[error(
        "the lake's partition {partition} was written from source `{found}`, this run reads `{expected}`; use another lake location"
    )]
    SourceMismatch {
        partition: i32,
        found: String,
        expected: String,
    },
    #[error(
        "topic `{topic}` was deleted and created again: the lake's partition {partition} holds records of topic id {found}, the topic now has id {expected} and its offsets start over; continuing would mix the two topics. Use another lake location (or move this lake's data away)"
    )]
    TopicRecreated {
        partition: i32,
        topic: String,
        found: String,
        expected: String,
    },
}

impl LakeError {
    pub(crate) fn store(action: &'static str, path: &Path, source: object_store::Error) -> Self {
        LakeError::Store {
            action,
            path: path.to_string(),
            source,
        }
    }

    /// Whether this is a configuration problem (bad location, rejected credentials) rather than
    /// a fault of the lake's contents or a transient error.
    pub fn is_config(&self) -> bool {
        match self {
            LakeError::Location { .. } => true,
            LakeError::Store { .. } => !self.is_retriable(),
            _ => false,
        }
    }

    /// Whether trying again later can succeed (a server or disk hiccup) as opposed to a
    /// configuration or data problem that retrying cannot fix.
    pub fn is_retriable(&self) -> bool {
        match self {
            LakeError::Store { source, .. } => !matches!(
                source,
                object_store::Error::Unauthenticated { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::NotImplemented
                    | object_store::Error::InvalidPath { .. }
            ),
            LakeError::DeadLetters { source, .. } => source.is_retriable(),
            LakeError::Encode { .. }
            | LakeError::Location { .. }
            | LakeError::BadMarker { .. }
            | LakeError::SourceMismatch { .. }
            | LakeError::TopicRecreated { .. }
            | LakeError::Fenced { .. }
            | LakeError::Lost { .. } => false,
            LakeError::Contended { .. } => true,
        }
    }
}

/// How long opening a lake may take (credentials, the probe, creating the bucket): above
/// object_store's 20 s of retries, so its own error comes first when there is one.
const START_PATIENCE: std::time::Duration = std::time::Duration::from_secs(45);

/// An open lake: an object store, the root inside it, and the table (topic) being written.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    root: Path,
    /// Set for local lakes: object_store stages local writes as `<name>#<n>` files, which its
    /// listing hides but other readers do not, so recovery removes them by path.
    local_root: Option<PathBuf>,
    /// Set for S3 lakes: the client (for signing a create-bucket request) and the bucket.
    /// S3 lakes: the client, the bucket and its region (bucket creation needs them).
    s3: Option<(Arc<object_store::aws::AmazonS3>, String, String)>,
    /// S3 lakes: where the credentials come from (named in errors, never their values).
    credentials: Option<CredentialSource>,
    table: String,
    display: String,
}

impl fmt::Debug for Lake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lake")
            .field("location", &self.display)
            .field("table", &self.table)
            .finish()
    }
}

impl Lake {
    /// Opens (and for local paths creates) the lake at `cfg.url` for `table`.
    pub fn open(cfg: &LakeConfig, table: &str) -> Result<Lake, LakeError> {
        let loc_err = |reason: String| LakeError::Location {
            url: cfg.url.clone(),
            reason,
        };
        validate_table(table).map_err(|e| loc_err(e.to_string()))?;
        if let Some(rest) = cfg.url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(loc_err("no bucket name after s3://".into()));
            }
            naming::validate_bucket(bucket).map_err(|e| loc_err(e.to_string()))?;
            let region = cfg
                .s3_region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "us-east-1".into());
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_region(&region)
                .with_retry(RetryConfig {
                    max_retries: 5,
                    retry_timeout: std::time::Duration::from_secs(20),
                    ..RetryConfig::default()
                });
            let endpoint = cfg.s3_endpoint.as_deref();
            let source =
                credential_source(cfg, endpoint, |v| std::env::var(v).ok()).map_err(loc_err)?;
            // The source, never a value: which identity the lake is written with.
            tracing::info!(lake = %cfg.url, "S3 credentials: {source}");
            if let Some(ep) = endpoint {
                b = b
                    .with_endpoint(ep)
                    .with_allow_http(ep.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            if let Some(k) = &cfg.s3_access_key {
                b = b.with_access_key_id(k);
            }
            if let Some(s) = &cfg.s3_secret_key {
                b = b.with_secret_access_key(s);
            }
            let store = Arc::new(b.build().map_err(|e| loc_err(e.to_string()))?);
            let root = Path::parse(prefix.trim_end_matches('/'))
                .map_err(|e| loc_err(format!("bad prefix: {e}")))?;
            return Ok(Lake {
                store: store.clone(),
                root,
                local_root: None,
                s3: Some((store, bucket.to_string(), region)),
                credentials: Some(source),
                table: table.to_string(),
                display: cfg.url.clone(),
            });
        }
        let path = match cfg.url.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None if cfg.url.contains("://") => {
                return Err(loc_err(
                    "unsupported scheme (use a path, file://PATH or s3://BUCKET/PREFIX)".into(),
                ));
            }
            None => PathBuf::from(&cfg.url),
        };
        if cfg.url.is_empty() {
            return Err(loc_err("empty path".into()));
        }
        if path.exists() && !path.is_dir() {
            return Err(loc_err("exists and is not a directory".into()));
        }
        std::fs::create_dir_all(&path).map_err(|e| loc_err(format!("cannot create: {e}")))?;
        let abs = path
            .canonicalize()
            .map_err(|e| loc_err(format!("cannot resolve: {e}")))?;
        let store = LocalFileSystem::new_with_prefix(&abs).map_err(|e| loc_err(e.to_string()))?;
        Ok(Lake {
            store: Arc::new(store),
            root: Path::default(),
            local_root: Some(abs.clone()),
            s3: None,
            credentials: None,
            table: table.to_string(),
            display: abs.display().to_string(),
        })
    }

    /// Wraps an existing store (tests, benches): `root` is the prefix inside it.
    pub fn from_store(store: Arc<dyn ObjectStore>, root: Path, table: &str) -> Lake {
        Lake {
            display: format!("{store}/{root}"),
            store,
            root,
            local_root: None,
            s3: None,
            credentials: None,
            table: table.to_string(),
        }
    }

    /// [`Lake::probe`], creating the S3 bucket first when it does not exist; bounded in time
    /// (a credential source that does not answer, e.g. instance metadata off EC2, is named).
    pub async fn ensure_writable(&self) -> Result<(), LakeError> {
        let checked = tokio::time::timeout(START_PATIENCE, self.probe_or_create());
        let result = checked.await.unwrap_or_else(|_| {
            let from = self
                .credentials
                .map_or(String::new(), |c| format!(" (credentials from {c})"));
            Err(LakeError::Location {
                url: self.display.clone(),
                reason: format!("no answer within {}s{from}", START_PATIENCE.as_secs()),
            })
        });
        match result {
            // The chain's last link failing is most often "no credentials were meant to be
            // there": say so rather than leave the metadata endpoint's error alone.
            Err(e @ LakeError::Store { .. })
                if self.credentials == Some(CredentialSource::InstanceMetadata) =>
            {
                Err(LakeError::Location {
                    url: self.display.clone(),
                    reason: format!(
                        "{e}; no AWS credentials are set in the environment, so the EC2 \
                         instance-metadata service was asked (set AWS_ACCESS_KEY_ID and \
                         AWS_SECRET_ACCESS_KEY, or run where an instance role is attached)"
                    ),
                })
            }
            other => other,
        }
    }

    async fn probe_or_create(&self) -> Result<(), LakeError> {
        match self.probe().await {
            Err(LakeError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) if self.s3.is_some() => {
                self.create_bucket().await?;
                self.probe().await
            }
            other => other,
        }
    }

    /// Creates the S3 bucket with a signed `PUT /bucket` (object_store has no such call).
    async fn create_bucket(&self) -> Result<(), LakeError> {
        use object_store::signer::Signer;
        let Some((s3, bucket, region)) = &self.s3 else {
            return Ok(());
        };
        let fail = |reason: String| LakeError::Location {
            url: self.display.clone(),
            reason: format!("creating bucket `{bucket}`: {reason}"),
        };
        let url = s3
            .signed_url(
                reqwest::Method::PUT,
                &Path::default(),
                std::time::Duration::from_secs(60),
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let mut req = client.put(url);
        // Outside us-east-1, S3 wants the region in the body (query-signed: the body is not
        // part of the signature).
        if region != "us-east-1" {
            req = req.body(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            ));
        }
        let resp = req.send().await.map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if status.is_success() {
            tracing::info!(bucket, "created the lake's bucket");
            return Ok(());
        }
        // Created meanwhile by another encore: fine. Anything else (BucketAlreadyExists: the
        // name belongs to another account) is an error with S3's own words.
        if status == reqwest::StatusCode::CONFLICT && body.contains("BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        Err(fail(format!("HTTP {status}: {}", body.trim())))
    }

    /// Checks that the lake can be written and read by writing and deleting a probe object.
    pub async fn probe(&self) -> Result<(), LakeError> {
        let p = naming::join(&self.root, &[META_DIR, ".probe"]);
        self.store
            .put(&p, bytes::Bytes::from_static(b"probe").into())
            .await
            .map_err(|e| LakeError::store("writing probe", &p, e))?;
        self.store
            .delete(&p)
            .await
            .map_err(|e| LakeError::store("deleting probe", &p, e))?;
        self.check_create_only().await
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Human-readable location (absolute path or URL).
    pub fn location(&self) -> &str {
        &self.display
    }

    /// The directory holding the table's date partitions.
    pub fn table_path(&self) -> Path {
        table_dir(&self.root, &self.table)
    }
}

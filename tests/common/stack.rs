//! Where the real stack of `scripts/stack.sh up` is: Apache Kafka, S3 (s3s-fs), ClickHouse.
//! Addresses come from the same variables `scripts/stack.sh env` prints, with the stack's
//! defaults; a service that does not answer fails the test loudly. The services' own helpers
//! are in `kafka`, `lake` and `clickhouse`, the checks of a run in `checks`.

use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use encore::lake::LakeConfig;

/// Where the running stack is.
#[derive(Clone, Debug)]
pub struct Stack {
    pub brokers: String,
    pub s3_endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

/// The variable `name`, or `default` when it is unset or empty.
pub(super) fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Panics unless `what` accepts a TCP connection at `addr` (`host:port`, or a URL whose
/// scheme and trailing slash are dropped).
pub(super) fn reachable(what: &str, addr: &str) {
    let addr = addr
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let sock = addr
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("{what} address `{addr}`: {e}"))
        .next()
        .unwrap_or_else(|| panic!("{what} address `{addr}` resolves to nothing"));
    if let Err(e) = TcpStream::connect_timeout(&sock, Duration::from_secs(3)) {
        panic!(
            "{what} is not reachable at {addr} ({e}). These tests need the real stack: run \
             `scripts/stack.sh up` (the README's test command does)."
        );
    }
}

impl Stack {
    /// The running stack; panics when Kafka or S3 does not answer.
    pub fn get() -> Stack {
        let s = Stack {
            brokers: var("ENCORE_BROKERS", "127.0.0.1:9092"),
            s3_endpoint: var("ENCORE_S3_ENDPOINT", "http://127.0.0.1:9000"),
            access_key: var("AWS_ACCESS_KEY_ID", "minioadmin"),
            secret_key: var("AWS_SECRET_ACCESS_KEY", "minioadmin"),
        };
        reachable("Kafka", s.brokers.split(',').next().unwrap_or_default());
        reachable("S3", &s.s3_endpoint);
        s
    }

    /// The encore binary, configured for this stack and nothing else from the caller's
    /// environment.
    pub fn encore(&self) -> Command {
        let mut c = super::process::encore();
        c.env("ENCORE_BROKERS", &self.brokers)
            .env("ENCORE_S3_ENDPOINT", &self.s3_endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_REGION", "us-east-1")
            .env("ENCORE_NO_PROGRESS", "1")
            .env("ENCORE_LOG", "info");
        c
    }

    pub fn lake_config(&self, url: &str) -> LakeConfig {
        LakeConfig {
            url: url.to_string(),
            s3_endpoint: Some(self.s3_endpoint.clone()),
            s3_region: Some("us-east-1".into()),
            s3_access_key: Some(self.access_key.clone()),
            s3_secret_key: Some(self.secret_key.clone()),
        }
    }
}

/// Runs `scripts/stack.sh ARGS` (stopping, starting and granting on the stack); it must succeed.
pub fn stack_sh(args: &[&str]) {
    let st = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack.sh"))
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("running scripts/stack.sh");
    assert!(st.success(), "scripts/stack.sh {args:?} failed");
}

/// A name nobody else uses, so that tests running at once never share a topic, group or
/// bucket. Lower case: valid for topics, groups and buckets.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

//! Kafka: client settings, topic set-up, and the librdkafka glue shared by the producer and
//! the consumer actors (`actors::publisher`, `actors::kafka_source`).

mod admin;
mod cluster;
pub mod consumer;
mod describe;
pub mod dlq;
pub mod producer;
mod teardown;
pub use cluster::Cluster;
pub use describe::{DescribeError, TopicDescription, describe_topic};

pub use admin::{
    PartitionLag, TopicAccess, TopicInfo, check_topic_access, committed_offsets, ensure_topic,
    fetch_high_watermarks, group_lag, source_identity, topic_partitions, watermarks,
};

use std::fmt;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// librdkafka settings that encore sets itself; `--kafka-config` may not override them
/// because the exactly-once design depends on them.
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "enable.idempotence",
    "acks",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    // --instance-id: a consumer setting, and the producer would warn about it.
    "group.instance.id",
    // Records of aborted transactions must never become rows.
    "isolation.level",
    "partitioner",
    "auto.offset.reset",
    // The rebalance callback uses eager assign/unassign.
    "partition.assignment.strategy",
    "group.protocol",
    // `acks` by its other name.
    "request.required.acks",
    // Successes would get no delivery report: they would go uncounted, and the batches the
    // publisher sends in place would never be released.
    "delivery.report.only.error",
];

/// Parts of setting names whose values are secrets.
const SECRET_MARKERS: &[&str] = &[
    "password",
    "secret",
    "private.key",
    "key.pem",
    "sasl.oauthbearer.config",
];

/// How to reach the Kafka cluster.
#[derive(Clone)]
pub struct KafkaConnection {
    /// Bootstrap servers, `host:port,…`.
    pub brokers: String,
    /// Extra librdkafka settings (`--kafka-config key=value`), e.g. TLS and SASL.
    pub extra: Vec<(String, String)>,
    /// How long the first contact with the cluster may take before it counts as unreachable.
    pub connect_timeout: Duration,
}

impl fmt::Debug for KafkaConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| {
                let v = if is_secret(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("KafkaConnection")
            .field("brokers", &self.brokers)
            .field("extra", &extra)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Whether a librdkafka setting's value is a secret (never printed, never on a command line).
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_MARKERS.iter().any(|m| k.contains(m))
}

/// A `--kafka-config` entry that cannot be used. Never shows the value: it may be a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSetting {
    #[error(
        "an entry has no `=`: expected key=value (a librdkafka setting; the entry is not shown, it may hold a secret)"
    )]
    NoValue,
    #[error("`{0}` is not a librdkafka setting name")]
    BadName(String),
    #[error("`{0}` is set by encore (exactly-once depends on it) and cannot be overridden")]
    Reserved(String),
}

/// Parses one `--kafka-config key=value`.
pub fn parse_setting(s: &str) -> Result<(String, String), InvalidSetting> {
    // Never quote the entry: it may hold a secret (a password containing `;` splits it).
    let (k, v) = s.split_once('=').ok_or(InvalidSetting::NoValue)?;
    let (k, v) = (k.trim(), v.trim());
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    {
        return Err(InvalidSetting::BadName(k.to_string()));
    }
    // librdkafka reads a topic setting with a `topic.` prefix as the setting itself.
    if RESERVED.contains(&k.strip_prefix("topic.").unwrap_or(k)) {
        return Err(InvalidSetting::Reserved(k.to_string()));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A `--kafka-config-file` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsFileError {
    #[error("--kafka-config-file `{}`: {source}", .path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("--kafka-config-file `{}` line {line}: {source}", .path.display())]
    Line {
        path: std::path::PathBuf,
        line: usize,
        source: InvalidSetting,
    },
}

/// Reads a librdkafka properties file: `key=value` lines, `#` comments and blank lines
/// ignored; each setting checked like `--kafka-config`.
pub fn read_settings_file(
    path: &std::path::Path,
) -> Result<Vec<(String, String)>, SettingsFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            // parse_setting's errors name the key, never the value (it may be a secret).
            parse_setting(l).map_err(|source| SettingsFileError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// Why Kafka could not be used. Every case is the user's to fix (a setting, an address, a
/// topic, a permission) before anything is written: commands exit with 2.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    #[error("--brokers is empty")]
    NoBrokers,
    /// librdkafka refused the settings when creating `client` (an unknown key, a bad value).
    #[error("{client}: {source}")]
    BadSettings {
        client: &'static str,
        source: KafkaError,
    },
    /// TLS asked for, in a build without it.
    #[error(
        "Kafka settings: {source} (this encore was built without TLS: build it with `--features kafka-tls`)"
    )]
    NoTls { source: KafkaError },
    /// No answer within `--connect-timeout`.
    #[error(
        "cannot reach Kafka at `{brokers}` within {} (--connect-timeout): {reason}",
        humantime::format_duration(*.timeout)
    )]
    Unreachable {
        brokers: String,
        timeout: Duration,
        reason: String,
    },
    #[error(
        "topic `{0}` does not exist (create it with `encore simulate --brokers …` or the Kafka tools)"
    )]
    TopicMissing(String),
    #[error(
        "creating topic `{topic}` ({partitions} partitions, replication {replication}): {code}"
    )]
    CreateTopic {
        topic: String,
        partitions: u32,
        replication: u16,
        code: RDKafkaErrorCode,
    },
    #[error("topic `{0}` was created but its partitions have no leader yet")]
    NoLeader(String),
    /// The principal lacks `operation` on `topic`; the message says how to grant it.
    #[error("{}", admin::denied(.principal, .operation, .topic, .allowed))]
    AccessDenied {
        principal: Option<String>,
        operation: &'static str,
        topic: String,
        allowed: Vec<String>,
    },
    /// Describing the topic (its id, the principal's operations) failed.
    #[error("{0}")]
    Describe(#[from] DescribeError),
    #[error("consumer already subscribed")]
    AlreadySubscribed,
    #[error("subscribing to `{topic}`: {source}")]
    Subscribe { topic: String, source: KafkaError },
    /// Reading a topic from start to end (the dead-letter scan) failed.
    #[error("reading `{topic}`: {source}")]
    Read { topic: String, source: KafkaError },
    #[error(
        "reading `{topic}`: no progress for {} (positions {positions:?}, ends {ends:?})",
        humantime::format_duration(*.patience)
    )]
    Stalled {
        topic: String,
        patience: Duration,
        positions: Vec<i64>,
        ends: Vec<i64>,
    },
    /// librdkafka refused a partition list encore built.
    #[error("{0}")]
    PartitionList(#[source] KafkaError),
}

/// The high watermark of one partition could not be read.
#[derive(Debug, thiserror::Error)]
#[error("watermarks of {topic}/{partition}: {source}")]
pub struct WatermarkError {
    pub topic: String,
    pub partition: i32,
    pub source: KafkaError,
}

impl KafkaSetupError {
    /// librdkafka refused the settings of `client` (for `map_err`).
    pub(crate) fn settings(client: &'static str) -> impl FnOnce(KafkaError) -> Self {
        move |source| KafkaSetupError::BadSettings { client, source }
    }
}

impl KafkaConnection {
    /// The common client settings plus the user's extras.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            // librdkafka (2.10+) answers a new client's first request over the bootstrap
            // connection, then drops it for the broker the metadata names, whose connection
            // waits out half this backoff (50 ms at the default 100): every client's first
            // request, a group's join, took ~55 ms more. Reconnects after failures still back
            // off exponentially up to `reconnect.backoff.max.ms` (10 s).
            .set("reconnect.backoff.ms", "20")
            // librdkafka's own logs go through `tracing` (see `EncoreContext`).
            .set_log_level(RDKafkaLogLevel::Warning);
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }

    /// Checks a client config for settings librdkafka rejects, with the setting named.
    pub fn validate(&self) -> Result<(), KafkaSetupError> {
        if self.brokers.trim().is_empty() {
            return Err(KafkaSetupError::NoBrokers);
        }
        // Creating a client is the only complete check of librdkafka settings.
        self.client_config()
            .create_with_context::<_, rdkafka::admin::AdminClient<EncoreContext>>(EncoreContext)
            .map(|c| drop(teardown::Detached::new(c)))
            .map_err(|source| {
                if source.to_string().contains("OpenSSL not available") {
                    KafkaSetupError::NoTls { source }
                } else {
                    KafkaSetupError::settings("Kafka settings")(source)
                }
            })
    }
}

/// Routes librdkafka's log and error callbacks to `tracing`.
#[derive(Clone, Copy, Default)]
pub struct EncoreContext;

// Reading a group's committed offsets needs a consumer; it never joins the group.
impl rdkafka::consumer::ConsumerContext for EncoreContext {}

impl ClientContext for EncoreContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }
}

pub(crate) fn log_to_tracing(level: RDKafkaLogLevel, fac: &str, msg: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(facility = fac, "librdkafka: {msg}"),
        RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, "librdkafka: {msg}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(facility = fac, "librdkafka: {msg}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(facility = fac, "librdkafka: {msg}"),
    }
}

/// Client-level errors are mostly transient (a broker down, a connection reset): librdkafka
/// retries them itself, so they are warnings; the pipeline's own checks decide what is fatal.
pub(crate) fn log_client_error(error: &KafkaError, reason: &str) {
    // The end of a partition is news only to the reader that asked for it
    // (enable.partition.eof), which gets it from poll; Apache Kafka also reports it here.
    if matches!(error, KafkaError::PartitionEOF(_))
        || error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
    {
        return;
    }
    warn_throttled(&format!("Kafka: {reason} ({error})"));
}

/// How often one message may be logged: a broker that is away makes librdkafka report the same
/// error several times a second.
const REPEAT_EVERY: Duration = Duration::from_secs(10);

/// Logs `msg` as a warning unless the same text was logged within `REPEAT_EVERY`; the next
/// line says how many were suppressed.
pub(crate) fn warn_throttled(msg: &str) {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    use std::time::Instant;
    static SEEN: OnceLock<Mutex<HashMap<String, (Instant, u64)>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    match seen.get_mut(msg) {
        Some((last, suppressed)) if now.duration_since(*last) < REPEAT_EVERY => *suppressed += 1,
        Some((last, suppressed)) => {
            tracing::warn!(repeated = *suppressed, "{msg}");
            (*last, *suppressed) = (now, 0);
        }
        None => {
            if seen.len() > 1000 {
                seen.clear(); // bounded: messages with ever-changing text
            }
            tracing::warn!("{msg}");
            seen.insert(msg.to_string(), (now, 0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_reserved_ones_are_refused() {
        assert_eq!(
            parse_setting("security.protocol=sasl_ssl"),
            Ok(("security.protocol".into(), "sasl_ssl".into()))
        );
        assert_eq!(
            parse_setting("sasl.password=a=b"),
            Ok(("sasl.password".into(), "a=b".into()))
        );
        assert!(parse_setting("novalue").is_err());
        assert!(parse_setting("enable.idempotence=false").is_err());
        assert!(parse_setting("auto.offset.reset=latest").is_err());
        assert!(parse_setting("partition.assignment.strategy=cooperative-sticky").is_err());
        assert!(parse_setting("bad key=1").is_err());
        for aliased in [
            "topic.partitioner=random",
            "topic.acks=1",
            "request.required.acks=1",
            "delivery.report.only.error=true",
        ] {
            assert!(
                matches!(parse_setting(aliased), Err(InvalidSetting::Reserved(_))),
                "{aliased} must be refused"
            );
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = KafkaConnection {
            brokers: "b:9092".into(),
            extra: vec![
                ("sasl.username".into(), "alice".into()),
                ("sasl.password".into(), "hunter2".into()),
                ("ssl.key.password".into(), "s3cret".into()),
            ],
            connect_timeout: Duration::from_secs(1),
        };
        let d = format!("{c:?}");
        assert!(d.contains("alice"));
        assert!(!d.contains("hunter2") && !d.contains("s3cret"), "{d}");
    }

    #[test]
    fn unknown_librdkafka_settings_are_reported() {
        let c = KafkaConnection {
            brokers: "127.0.0.1:1".into(),
            extra: vec![("no.such.setting".into(), "1".into())],
            connect_timeout: Duration::from_secs(1),
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("no.such.setting"), "{e}");
    }
}

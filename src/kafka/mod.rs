//! Kafka: client settings, topic set-up, and the librdkafka glue shared by the producer and
//! the consumer actors (`actors::publisher`, `actors::kafka_source`).

mod admin;
pub mod consumer;
mod describe;
pub mod dlq;
pub mod producer;
pub use describe::{DescribeError, TopicDescription, describe_topic};

pub use admin::{
    PartitionLag, TopicAccess, TopicInfo, check_topic_access, ensure_topic, fetch_high_watermarks,
    group_lag, source_identity, topic_partitions, watermarks,
};

use std::fmt;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;

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

/// Parses one `--kafka-config key=value`.
pub fn parse_setting(s: &str) -> Result<(String, String), String> {
    // Never quote the entry: it may hold a secret (a password containing `;` splits it).
    let (k, v) = s.split_once('=').ok_or_else(|| {
        "an entry has no `=`: expected key=value (a librdkafka setting; the entry is not shown, it may hold a secret)".to_string()
    })?;
    let (k, v) = (k.trim(), v.trim());
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    {
        return Err(format!("`{k}` is not a librdkafka setting name"));
    }
    if RESERVED.contains(&k) {
        return Err(format!(
            "`{k}` is set by encore (exactly-once depends on it) and cannot be overridden"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// Reads a librdkafka properties file: `key=value` lines, `#` comments and blank lines
/// ignored; each setting checked like `--kafka-config`.
pub fn read_settings_file(path: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--kafka-config-file `{}`: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            // parse_setting's errors name the key, never the value (it may be a secret).
            parse_setting(l).map_err(|e| {
                format!(
                    "--kafka-config-file `{}` line {}: {e}",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

/// Why Kafka could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    /// Brokers unreachable, bad settings, topic cannot be created: a usage problem.
    #[error("{0}")]
    Config(String),
}

impl KafkaConnection {
    /// The common client settings plus the user's extras.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
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
            return Err(KafkaSetupError::Config("--brokers is empty".into()));
        }
        // Creating a client is the only complete check of librdkafka settings.
        self.client_config()
            .create_with_context::<_, rdkafka::admin::AdminClient<EncoreContext>>(EncoreContext)
            .map(drop)
            .map_err(|e| {
                let hint = if e.to_string().contains("OpenSSL not available") {
                    " (this encore was built without TLS: build it with `--features kafka-tls`)"
                } else {
                    ""
                };
                KafkaSetupError::Config(format!("Kafka settings: {e}{hint}"))
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

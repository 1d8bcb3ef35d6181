//! Cluster facts through the admin API, one call per client: the topic calls of
//! [`Cluster`](super::cluster::Cluster) for callers that make one, and a group's position.
//! Blocking calls: run them off the actors' threads (`spawn_blocking`) or before the actors
//! start.

use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::Client;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::cluster::Cluster;
use super::teardown::Detached;
use super::{EncoreContext, KafkaConnection, KafkaSetupError, WatermarkError};

/// The topic as found or created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub partitions: u32,
    pub created: bool,
}

pub(super) fn admin(cfg: &KafkaConnection) -> Result<Admin, KafkaSetupError> {
    let mut c = cfg.client_config();
    // Looking a topic up must never create it with the broker's defaults.
    c.set("allow.auto.create.topics", "false");
    c.create_with_context(EncoreContext)
        .map(Detached::new)
        .map_err(KafkaSetupError::settings("Kafka settings"))
}

/// An admin client torn down off the caller's thread (see `teardown`).
pub(crate) type Admin = Detached<AdminClient<EncoreContext>>;

pub(super) fn unreachable(cfg: &KafkaConnection, e: impl std::fmt::Display) -> KafkaSetupError {
    KafkaSetupError::Unreachable {
        brokers: cfg.brokers.clone(),
        timeout: cfg.connect_timeout,
        reason: e.to_string(),
    }
}

/// The partition count of `topic`, or None when it does not exist (a client of its own).
pub fn topic_partitions(
    cfg: &KafkaConnection,
    topic: &str,
) -> Result<Option<u32>, KafkaSetupError> {
    Cluster::connect(cfg)?.topic_partitions(topic)
}

/// [`Cluster::ensure_topic`] with a client of its own.
pub fn ensure_topic(
    cfg: &KafkaConnection,
    topic: &str,
    partitions: u32,
    replication: u16,
) -> Result<TopicInfo, KafkaSetupError> {
    Cluster::connect(cfg)?.ensure_topic(topic, partitions, replication)
}

/// [`Cluster::source_identity`] with a client of its own.
pub fn source_identity(cfg: &KafkaConnection, topic: &str) -> Result<String, KafkaSetupError> {
    Cluster::connect(cfg)?.source_identity(topic)
}

/// [`Cluster::watermarks`] with a client of its own.
pub fn watermarks(
    cfg: &KafkaConnection,
    topic: &str,
) -> Result<Option<Vec<(i64, i64)>>, KafkaSetupError> {
    Cluster::connect(cfg)?.watermarks(topic)
}

/// [`Cluster::check_topic_access`] with a client of its own.
pub fn check_topic_access(
    cfg: &KafkaConnection,
    topic: &str,
    need: &[TopicAccess],
) -> Result<(), KafkaSetupError> {
    Cluster::connect(cfg)?.check_topic_access(topic, need)
}

/// The next offset to be written, per partition `0..partitions`.
pub fn fetch_high_watermarks(
    client: &Client<impl rdkafka::client::ClientContext>,
    topic: &str,
    partitions: u32,
    timeout: Duration,
) -> Result<Vec<i64>, WatermarkError> {
    (0..partitions as i32)
        .map(|p| {
            client
                .fetch_watermarks(topic, p, timeout)
                .map(|(_, high)| high)
                .map_err(|source| WatermarkError {
                    topic: topic.to_string(),
                    partition: p,
                    source,
                })
        })
        .collect()
}

/// One partition of a consumer group's position: its committed offset (None: nothing
/// committed yet) and the topic's high watermark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: i32,
    pub committed: Option<i64>,
    pub high: i64,
}

impl PartitionLag {
    /// Records the group has still to read (all of them when nothing is committed).
    pub fn lag(&self) -> i64 {
        (self.high - self.committed.unwrap_or(0)).max(0)
    }
}

/// Where `group` stands on `topic`, read without joining the group. None when the topic does
/// not exist.
pub fn group_lag(
    cfg: &KafkaConnection,
    group: &str,
    topic: &str,
) -> Result<Option<Vec<PartitionLag>>, KafkaSetupError> {
    let Some(partitions) = topic_partitions(cfg, topic)? else {
        return Ok(None);
    };
    let committed = committed_offsets(cfg, group, topic, partitions)?;
    let highs = fetch_high_watermarks(admin(cfg)?.inner(), topic, partitions, cfg.connect_timeout)
        .map_err(|e| unreachable(cfg, e))?;
    Ok(Some(
        committed
            .into_iter()
            .zip(highs)
            .enumerate()
            .map(|(p, (committed, high))| PartitionLag {
                partition: p as i32,
                committed,
                high,
            })
            .collect(),
    ))
}

/// The offsets `group` committed on partitions `0..partitions` of `topic` (None: nothing
/// committed), read without joining the group: a consumer of that group.id that never
/// subscribes.
pub fn committed_offsets(
    cfg: &KafkaConnection,
    group: &str,
    topic: &str,
    partitions: u32,
) -> Result<Vec<Option<i64>>, KafkaSetupError> {
    let mut c = cfg.client_config();
    c.set("group.id", group).set("enable.auto.commit", "false");
    let consumer: BaseConsumer<EncoreContext> = c
        .create_with_context(EncoreContext)
        .map_err(KafkaSetupError::settings("Kafka settings"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, cfg.connect_timeout)
        .map_err(|e| unreachable(cfg, e))?;
    Ok((0..partitions as i32)
        .map(|p| {
            committed
                .find_partition(topic, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
        })
        .collect())
}

/// An operation on a topic that a run needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicAccess {
    Read,
    Write,
}

impl TopicAccess {
    pub(super) fn name(self) -> &'static str {
        match self {
            TopicAccess::Read => "READ",
            TopicAccess::Write => "WRITE",
        }
    }
}

/// The principal as far as the settings tell (the SASL user), for messages.
pub(super) fn principal(cfg: &KafkaConnection) -> Option<String> {
    cfg.extra
        .iter()
        .find(|(k, _)| k == "sasl.username")
        .map(|(_, v)| format!("User:{v}"))
}

/// The text of [`KafkaSetupError::AccessDenied`]: what is missing and how to grant it.
pub(super) fn denied(
    principal: &Option<String>,
    op: &str,
    topic: &str,
    allowed: &[String],
) -> String {
    let allowed = if allowed.is_empty() {
        String::new()
    } else {
        format!(" (it may: {})", allowed.join(", "))
    };
    let (who, grantee) = match principal {
        Some(p) => (p.as_str(), p.as_str()),
        None => ("this client's principal", "User:NAME"),
    };
    format!(
        "Kafka denies {who} the {op} permission on topic `{topic}`{allowed}; grant it, e.g. `kafka-acls --add --allow-principal {grantee} --operation {op} --topic {topic}`"
    )
}

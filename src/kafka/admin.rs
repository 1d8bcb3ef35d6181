//! Topic set-up and cluster facts, through the admin API. Blocking calls: run them off the
//! actors' threads (`spawn_blocking`) or before the actors start.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::Client;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;

use super::describe::{DescribeError, describe_topic};
use super::teardown::Detached;
use super::{EncoreContext, KafkaConnection, KafkaSetupError, WatermarkError};

/// The topic as found or created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub partitions: u32,
    pub created: bool,
}

fn admin(cfg: &KafkaConnection) -> Result<Admin, KafkaSetupError> {
    let mut c = cfg.client_config();
    // Looking a topic up must never create it with the broker's defaults.
    c.set("allow.auto.create.topics", "false");
    c.create_with_context(EncoreContext)
        .map(Detached::new)
        .map_err(KafkaSetupError::settings("Kafka settings"))
}

/// An admin client torn down off the caller's thread (see `teardown`).
pub(crate) type Admin = Detached<AdminClient<EncoreContext>>;

fn unreachable(cfg: &KafkaConnection, e: impl std::fmt::Display) -> KafkaSetupError {
    KafkaSetupError::Unreachable {
        brokers: cfg.brokers.clone(),
        timeout: cfg.connect_timeout,
        reason: e.to_string(),
    }
}

/// Partitions of `topic` that have a leader, or None when the cluster does not know the topic.
fn lookup(
    client: &Client<EncoreContext>,
    cfg: &KafkaConnection,
    topic: &str,
) -> Result<Option<(u32, bool)>, KafkaSetupError> {
    // All topics, not `Some(topic)`: a metadata request naming a missing topic can create it on
    // brokers with auto-creation on.
    let md = client
        .fetch_metadata(None, cfg.connect_timeout)
        .map_err(|e| unreachable(cfg, e))?;
    Ok(md.topics().iter().find(|t| t.name() == topic).map(|t| {
        let ready = t.error().is_none() && t.partitions().iter().all(|p| p.leader() >= 0);
        (t.partitions().len() as u32, ready)
    }))
}

/// The partition count of `topic`, or None when it does not exist.
pub fn topic_partitions(
    cfg: &KafkaConnection,
    topic: &str,
) -> Result<Option<u32>, KafkaSetupError> {
    let admin = admin(cfg)?;
    Ok(lookup(admin.inner(), cfg, topic)?.map(|(n, _)| n))
}

/// Makes sure `topic` exists: creates it with `partitions` when missing (waiting until every
/// partition has a leader); an existing topic keeps its partition count.
pub fn ensure_topic(
    cfg: &KafkaConnection,
    topic: &str,
    partitions: u32,
    replication: u16,
) -> Result<TopicInfo, KafkaSetupError> {
    let admin = admin(cfg)?;
    if let Some((n, _)) = lookup(admin.inner(), cfg, topic)? {
        if n != partitions {
            tracing::info!(
                topic,
                existing = n,
                requested = partitions,
                "topic exists with another partition count; using it as it is"
            );
        }
        return Ok(TopicInfo {
            partitions: n,
            created: false,
        });
    }
    let new = NewTopic::new(
        topic,
        partitions as i32,
        TopicReplication::Fixed(replication as i32),
    );
    let opts = AdminOptions::new()
        .operation_timeout(Some(cfg.connect_timeout))
        .request_timeout(Some(cfg.connect_timeout));
    let results = futures::executor::block_on(admin.create_topics([&new], &opts))
        .map_err(|e| unreachable(cfg, e))?;
    let mut created = true;
    for r in results {
        match r {
            Ok(_) => {}
            // Someone else created it in between: fine.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => created = false,
            Err((t, code)) => {
                return Err(KafkaSetupError::CreateTopic {
                    topic: t,
                    partitions,
                    replication,
                    code,
                });
            }
        }
    }
    // Creation is asynchronous on the broker: wait until every partition has a leader.
    let deadline = Instant::now() + cfg.connect_timeout.max(Duration::from_secs(5));
    loop {
        match lookup(admin.inner(), cfg, topic)? {
            Some((n, true)) if n > 0 => {
                tracing::info!(topic, partitions = n, created, "topic ready");
                return Ok(TopicInfo {
                    partitions: n,
                    created,
                });
            }
            _ if Instant::now() > deadline => {
                return Err(KafkaSetupError::NoLeader(topic.to_string()));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
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

/// The source identity written into commit markers: the cluster, the topic and the topic's id
/// (`kafka:CLUSTER/TOPIC#TOPIC_ID`), so that a lake is never continued from another cluster's
/// offsets, nor from a topic deleted and created again under the same name.
pub fn source_identity(cfg: &KafkaConnection, topic: &str) -> Result<String, KafkaSetupError> {
    let admin = admin(cfg)?;
    // Without the id a lake could be continued from another cluster's offsets: refuse.
    let id = admin
        .inner()
        .fetch_cluster_id(cfg.connect_timeout)
        .ok_or_else(|| unreachable(cfg, "the cluster did not report its id"))?;
    let topic_id = describe_topic(admin.inner(), topic, cfg.connect_timeout)?.id;
    Ok(match topic_id {
        Some(t) => format!("kafka:{id}/{topic}#{t}"),
        None => format!("kafka:{id}/{topic}"),
    })
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

/// Low and high watermark of every partition of `topic`, or None when it does not exist.
pub fn watermarks(
    cfg: &KafkaConnection,
    topic: &str,
) -> Result<Option<Vec<(i64, i64)>>, KafkaSetupError> {
    let admin = admin(cfg)?;
    let Some((partitions, _)) = lookup(admin.inner(), cfg, topic)? else {
        return Ok(None);
    };
    (0..partitions as i32)
        .map(|p| {
            admin
                .inner()
                .fetch_watermarks(topic, p, cfg.connect_timeout)
                .map_err(|source| {
                    let partition = p;
                    let topic = topic.to_string();
                    unreachable(
                        cfg,
                        WatermarkError {
                            topic,
                            partition,
                            source,
                        },
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// An operation on a topic that a run needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicAccess {
    Read,
    Write,
}

impl TopicAccess {
    fn name(self) -> &'static str {
        match self {
            TopicAccess::Read => "READ",
            TopicAccess::Write => "WRITE",
        }
    }
}

/// Checks before the first record that the principal may `need` on `topic` (which exists), so
/// that a missing ACL is named at start (exit 2) instead of failing every record. Brokers that
/// do not report authorized operations pass.
pub fn check_topic_access(
    cfg: &KafkaConnection,
    topic: &str,
    need: &[TopicAccess],
) -> Result<(), KafkaSetupError> {
    let admin = admin(cfg)?;
    let denied = |operation, allowed| KafkaSetupError::AccessDenied {
        principal: principal(cfg),
        operation,
        topic: topic.to_string(),
        allowed,
    };
    let desc = match describe_topic(admin.inner(), topic, cfg.connect_timeout) {
        Ok(d) => d,
        Err(DescribeError::NotAuthorized(_)) => return Err(denied("DESCRIBE", Vec::new())),
        // Existence and reachability are reported by the callers' own checks.
        Err(DescribeError::Unknown) => return Ok(()),
        Err(DescribeError::Other(e)) => return Err(unreachable(cfg, e)),
    };
    let Some(ops) = desc.authorized else {
        return Ok(());
    };
    for n in need {
        if !ops.iter().any(|o| o == n.name()) {
            return Err(denied(n.name(), ops));
        }
    }
    Ok(())
}

/// The principal as far as the settings tell (the SASL user), for messages.
fn principal(cfg: &KafkaConnection) -> Option<String> {
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

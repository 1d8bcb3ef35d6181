//! One admin client for a run's set-up: topics looked up, created and checked, the source
//! identity and the watermarks. A new librdkafka client's first answer takes a connection or
//! two; later calls on the same client are a round trip each, so a sink's start (seven calls,
//! three of them at once) makes one client, not seven. Blocking calls: run them off the
//! actors' threads (`spawn_blocking`) or before the actors start.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use super::admin::{Admin, TopicAccess, TopicInfo, admin, principal, unreachable};
use super::describe::{DescribeError, describe_topic};
use super::{KafkaConnection, KafkaSetupError, WatermarkError};

/// An admin client and the connection settings it was made from. Shareable across threads
/// (`Arc`): librdkafka's client is thread-safe.
pub struct Cluster {
    admin: Admin,
    cfg: KafkaConnection,
}

impl Cluster {
    /// The client; it connects at its first call.
    pub fn connect(cfg: &KafkaConnection) -> Result<Cluster, KafkaSetupError> {
        Ok(Cluster {
            admin: admin(cfg)?,
            cfg: cfg.clone(),
        })
    }

    /// Partitions of `topic` and whether each has a leader, or None when the cluster does not
    /// know the topic.
    fn lookup(&self, topic: &str) -> Result<Option<(u32, bool)>, KafkaSetupError> {
        // Only this topic: asking for all of them cost ~60 ms with a few hundred topics on the
        // broker, and grows with the cluster. Naming the topic does not create it: the admin
        // client's requests say `allow.auto.create.topics=false` (Metadata v4+, Kafka 0.11+).
        let md = self
            .admin
            .inner()
            .fetch_metadata(Some(topic), self.cfg.connect_timeout)
            .map_err(|e| unreachable(&self.cfg, e))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        let n = t.partitions().len() as u32;
        Ok(match t.error() {
            None => Some((n, t.partitions().iter().all(|p| p.leader() >= 0))),
            // Unknown, not visible to this principal, or an invalid name: absent, as when all
            // topics were listed (the callers' access checks name a missing DESCRIBE, and
            // creating an invalid name gets the broker's reason).
            Some(_) if n == 0 => None,
            // e.g. a topic being created, its leaders not elected yet.
            Some(_) => Some((n, false)),
        })
    }

    /// The partition count of `topic`, or None when it does not exist.
    pub fn topic_partitions(&self, topic: &str) -> Result<Option<u32>, KafkaSetupError> {
        Ok(self.lookup(topic)?.map(|(n, _)| n))
    }

    /// Makes sure `topic` exists: creates it with `partitions` when missing (waiting until
    /// every partition has a leader); an existing topic keeps its partition count.
    pub fn ensure_topic(
        &self,
        topic: &str,
        partitions: u32,
        replication: u16,
    ) -> Result<TopicInfo, KafkaSetupError> {
        let cfg = &self.cfg;
        if let Some((n, _)) = self.lookup(topic)? {
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
        let results = futures::executor::block_on(self.admin.create_topics([&new], &opts))
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
            match self.lookup(topic)? {
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

    /// The source identity written into commit markers: the cluster, the topic and the
    /// topic's id (`kafka:CLUSTER/TOPIC#TOPIC_ID`), so that a lake is never continued from
    /// another cluster's offsets, nor from a topic deleted and created again under the same
    /// name.
    pub fn source_identity(&self, topic: &str) -> Result<String, KafkaSetupError> {
        let (client, timeout) = (self.admin.inner(), self.cfg.connect_timeout);
        // Without the id a lake could be continued from another cluster's offsets: refuse.
        let id = client
            .fetch_cluster_id(timeout)
            .ok_or_else(|| unreachable(&self.cfg, "the cluster did not report its id"))?;
        let topic_id = describe_topic(client, topic, timeout)?.id;
        Ok(match topic_id {
            Some(t) => format!("kafka:{id}/{topic}#{t}"),
            None => format!("kafka:{id}/{topic}"),
        })
    }

    /// Low and high watermark of every partition of `topic`, or None when it does not exist.
    pub fn watermarks(&self, topic: &str) -> Result<Option<Vec<(i64, i64)>>, KafkaSetupError> {
        let Some((partitions, _)) = self.lookup(topic)? else {
            return Ok(None);
        };
        (0..partitions as i32)
            .map(|p| {
                self.admin
                    .inner()
                    .fetch_watermarks(topic, p, self.cfg.connect_timeout)
                    .map_err(|source| {
                        let topic = topic.to_string();
                        let e = WatermarkError {
                            topic,
                            partition: p,
                            source,
                        };
                        unreachable(&self.cfg, e)
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Checks before the first record that the principal may `need` on `topic` (which
    /// exists), so that a missing ACL is named at start (exit 2) instead of failing every
    /// record. Brokers that do not report authorized operations pass.
    pub fn check_topic_access(
        &self,
        topic: &str,
        need: &[TopicAccess],
    ) -> Result<(), KafkaSetupError> {
        let cfg = &self.cfg;
        let denied = |operation, allowed| KafkaSetupError::AccessDenied {
            principal: principal(cfg),
            operation,
            topic: topic.to_string(),
            allowed,
        };
        let desc = match describe_topic(self.admin.inner(), topic, cfg.connect_timeout) {
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
}

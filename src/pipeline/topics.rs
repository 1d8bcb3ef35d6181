//! Kafka set-up before a run: topics created or checked, and the principal's permissions on
//! them, each a blocking admin call run off the actors' threads.

use std::sync::Arc;

use crate::clickhouse::schema::Target;
use crate::config::KafkaConfig;
use crate::kafka::{Cluster, KafkaSetupError, TopicAccess};

use super::summary::RunError;

/// Runs a blocking Kafka set-up call off the actors' threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KafkaSetupError> + Send + 'static,
) -> Result<T, RunError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RunError::Usage(format!("Kafka set-up: {e}")))?
        .map_err(RunError::Kafka)
}

/// The dead-letter topic must not be the topic itself: its letters would be read, rejected
/// and copied again forever.
pub(super) fn check_dlq(k: &KafkaConfig, topic: &str) -> Result<(), RunError> {
    if k.dlq_topic_of(topic) == topic {
        return Err(RunError::Usage(format!(
            "--dlq-topic `{topic}` is the topic the sink reads; use another name"
        )));
    }
    Ok(())
}

/// The admin client for a run's set-up calls, shared by them (see [`Cluster`]).
pub fn cluster(k: &KafkaConfig) -> Result<Arc<Cluster>, RunError> {
    Cluster::connect(&k.connection)
        .map(Arc::new)
        .map_err(RunError::Kafka)
}

/// The topic exists (created when missing), the principal may do `need` with it, and its
/// partition count.
pub(super) async fn prepare_topic(
    cluster: &Arc<Cluster>,
    topic: &str,
    (partitions, replication): (u32, u16),
    need: &'static [TopicAccess],
) -> Result<u32, RunError> {
    let (c, t) = (cluster.clone(), topic.to_string());
    Ok(blocking(move || {
        let info = c.ensure_topic(&t, partitions, replication)?;
        c.check_topic_access(&t, need)?;
        Ok(info)
    })
    .await?
    .partitions)
}

/// The partitions of a topic the sink reads. The sink never creates it: a typo must not
/// create an empty topic.
pub(super) async fn existing_topic(cluster: &Arc<Cluster>, topic: &str) -> Result<u32, RunError> {
    let (c, t) = (cluster.clone(), topic.to_string());
    blocking(move || {
        // A topic this principal may not describe would look missing: name the ACL.
        c.check_topic_access(&t, &[TopicAccess::Read])?;
        c.topic_partitions(&t)?
            .ok_or(KafkaSetupError::TopicMissing(t))
    })
    .await
}

/// The sink's dead-letter topic, created when missing with as many partitions as the source
/// (source partition p's letters go to p, in order); its partition count.
pub(super) async fn prepare_dlq(
    cluster: &Arc<Cluster>,
    topic: &str,
    dlq: &str,
    replication: u16,
) -> Result<u32, RunError> {
    let (c, t, d) = (cluster.clone(), topic.to_string(), dlq.to_string());
    blocking(move || {
        let n = c.topic_partitions(&t)?.unwrap_or(1);
        let info = c.ensure_topic(&d, n, replication)?;
        c.check_topic_access(&d, &[TopicAccess::Write])?;
        Ok(info.partitions)
    })
    .await
}

/// Creates the topics ClickHouse's queues subscribe to, if missing: a queue created before its
/// topic notices the topic only at librdkafka's next metadata refresh (5 minutes by default).
pub async fn prepare_clickhouse_topics(
    cluster: &Arc<Cluster>,
    target: &Target,
    events_partitions: u32,
    replication: u16,
) -> Result<(), RunError> {
    let write = &[TopicAccess::Write];
    let (events, simple) = (&target.events_topic, &target.simple_topic);
    prepare_topic(cluster, events, (events_partitions, replication), write).await?;
    prepare_topic(cluster, simple, (1, replication), write).await?;
    Ok(())
}

/// The high watermarks of `topic` now; 0 for a partition that holds nothing (emptied by
/// retention: there is no record to read up to its high watermark).
pub(super) async fn topic_ends(cluster: &Arc<Cluster>, topic: &str) -> Result<Vec<i64>, RunError> {
    let (c, t) = (cluster.clone(), topic.to_string());
    let marks = blocking(move || c.watermarks(&t))
        .await?
        .ok_or_else(|| RunError::Kafka(KafkaSetupError::TopicMissing(topic.to_string())))?;
    Ok(marks
        .into_iter()
        .map(|(low, high)| if low >= high { 0 } else { high })
        .collect())
}

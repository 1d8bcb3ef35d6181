//! The Kafka side of `encore status`: the topic's watermarks, a group's committed offsets,
//! and the timestamp of the first record each stage waits for. Blocking calls, each bounded by
//! `--connect-timeout`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::report::{Marks, Times, Waiting};
use crate::error::CommandError;
use crate::kafka::{EncoreContext, KafkaConnection, KafkaSetupError};

/// The group.id the timestamp reader needs for assign(); never joined.
const READER_GROUP: &str = "encore-status-unused";
/// How long one poll waits.
const POLL: Duration = Duration::from_millis(100);

/// Each partition's watermarks; a missing topic is an error (nothing to report).
pub fn marks(cfg: &KafkaConnection, topic: &str) -> Result<Vec<Marks>, CommandError> {
    let marks = crate::kafka::watermarks(cfg, topic)?
        .ok_or_else(|| KafkaSetupError::TopicMissing(topic.to_string()))?;
    Ok(marks
        .into_iter()
        .map(|(low, high)| Marks { low, high })
        .collect())
}

/// The timestamps of the records at `wanted` (partition, offset), read by assignment within
/// `patience` in all; what is not read by then is left out.
pub fn record_times(
    cfg: &KafkaConnection,
    topic: &str,
    wanted: &BTreeSet<(i32, i64)>,
    patience: Duration,
) -> Result<Times, CommandError> {
    let deadline = Instant::now() + patience;
    let mut times = Times::new();
    // One offset per partition per assignment: a fresh reader each round, so that no record
    // fetched for one round is taken for another's.
    for round in rounds(wanted) {
        if Instant::now() >= deadline {
            break;
        }
        let reader = crate::kafka::consumer::reader(cfg, READER_GROUP, true)?;
        let mut tpl = TopicPartitionList::new();
        for (&p, &o) in &round {
            tpl.add_partition_offset(topic, p, Offset::Offset(o))
                .map_err(KafkaSetupError::PartitionList)?;
        }
        reader.assign(&tpl).map_err(|e| {
            CommandError::Usage(format!("assigning the partitions of `{topic}`: {e}"))
        })?;
        read_round(&reader, round, deadline, &mut times);
    }
    Ok(times)
}

/// `wanted` split so that each round asks at most one offset of each partition.
fn rounds(wanted: &BTreeSet<(i32, i64)>) -> Vec<BTreeMap<i32, i64>> {
    let mut out: Vec<BTreeMap<i32, i64>> = Vec::new();
    for &(p, o) in wanted {
        match out.iter_mut().find(|r| !r.contains_key(&p)) {
            Some(r) => {
                r.insert(p, o);
            }
            None => out.push(BTreeMap::from([(p, o)])),
        }
    }
    out
}

/// Polls until every partition of `round` gave its first record or its end, or `deadline`.
fn read_round(
    reader: &BaseConsumer<EncoreContext>,
    mut round: BTreeMap<i32, i64>,
    deadline: Instant,
    times: &mut Times,
) {
    while !round.is_empty() && Instant::now() < deadline {
        let (p, found) = match reader.poll(POLL) {
            None => continue,
            // A record without a timestamp (a very old producer): its age stays unknown.
            Some(Ok(m)) => (
                m.partition(),
                m.timestamp().to_millis().map(Waiting::Record),
            ),
            Some(Err(KafkaError::PartitionEOF(p))) => (p, Some(Waiting::None)),
            Some(Err(e)) => {
                tracing::debug!(error = %e, "reading the first waiting records");
                continue;
            }
        };
        if let (Some(o), Some(found)) = (round.remove(&p), found) {
            times.insert((p, o), found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_asks_one_offset_per_partition() {
        let wanted = BTreeSet::from([(0, 5), (0, 9), (1, 3), (0, 7)]);
        let r = rounds(&wanted);
        assert_eq!(
            r,
            [
                BTreeMap::from([(0, 5), (1, 3)]),
                BTreeMap::from([(0, 7)]),
                BTreeMap::from([(0, 9)]),
            ]
        );
        assert!(rounds(&BTreeSet::new()).is_empty());
    }
}

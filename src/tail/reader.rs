//! The Kafka side of `encore tail`: where each partition starts and ends, and a consumer
//! assigned to exactly those partitions: it joins no group and commits nothing.

use std::collections::BTreeMap;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::start::StartSpec;
use crate::error::CommandError;
use crate::kafka::{EncoreContext, KafkaConnection, KafkaSetupError};

/// One partition to read: from `start`; `end` is its high watermark at start (`-e` stops there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

/// A consumer for reading by assignment (see [`crate::kafka::consumer::reader`]).
pub fn consumer(
    cfg: &KafkaConnection,
    exit_at_end: bool,
) -> Result<BaseConsumer<EncoreContext>, KafkaSetupError> {
    // -e: the end of a partition can be a transaction marker, which no record reaches.
    crate::kafka::consumer::reader(cfg, "encore-tail-unused", exit_at_end)
}

/// The spans of `topic` to read: every partition, or those of `only`. None: no such topic.
pub fn plan(
    consumer: &BaseConsumer<EncoreContext>,
    cfg: &KafkaConnection,
    topic: &str,
    spec: StartSpec,
    only: &[i32],
) -> Result<Option<Vec<Span>>, CommandError> {
    let Some(marks) = crate::kafka::watermarks(cfg, topic)? else {
        return Ok(None);
    };
    let partitions = selected(topic, marks.len(), only)?;
    let at_time = match spec {
        StartSpec::Time(ms) => offsets_at(consumer, cfg, topic, &partitions, ms)?,
        _ => BTreeMap::new(),
    };
    Ok(Some(
        partitions
            .into_iter()
            .map(|p| {
                let (low, high) = marks[p as usize];
                Span {
                    partition: p,
                    start: spec.resolve(low, high, at_time.get(&p).copied()),
                    end: high,
                }
            })
            .collect(),
    ))
}

/// `-p`, checked against the topic's partition count.
fn selected(topic: &str, count: usize, only: &[i32]) -> Result<Vec<i32>, CommandError> {
    if only.is_empty() {
        return Ok((0..count as i32).collect());
    }
    let mut ps = only.to_vec();
    ps.sort_unstable();
    ps.dedup();
    match ps.iter().find(|&&p| p < 0 || p as usize >= count) {
        Some(p) => Err(CommandError::Usage(format!(
            "--partition {p}: topic `{topic}` has {count} partitions (0 to {})",
            count.saturating_sub(1)
        ))),
        None => Ok(ps),
    }
}

/// The first offset stamped at or after `ms` in each partition that has one.
fn offsets_at(
    consumer: &BaseConsumer<EncoreContext>,
    cfg: &KafkaConnection,
    topic: &str,
    partitions: &[i32],
    ms: i64,
) -> Result<BTreeMap<i32, i64>, CommandError> {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(topic, p, Offset::Offset(ms))
            .map_err(KafkaSetupError::PartitionList)?;
    }
    let found = consumer
        .offsets_for_times(tpl, cfg.connect_timeout)
        .map_err(|e| {
            CommandError::Usage(format!("looking up offsets by time in `{topic}`: {e}"))
        })?;
    Ok(found
        .elements_for_topic(topic)
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            // No record at or after the time: the partition's end.
            _ => None,
        })
        .collect())
}

/// Assigns the spans' partitions at their start offsets.
pub fn assign(
    consumer: &BaseConsumer<EncoreContext>,
    topic: &str,
    spans: &[Span],
) -> Result<(), CommandError> {
    let mut tpl = TopicPartitionList::new();
    for s in spans {
        tpl.add_partition_offset(topic, s.partition, Offset::Offset(s.start))
            .map_err(KafkaSetupError::PartitionList)?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| CommandError::Usage(format!("assigning the partitions of `{topic}`: {e}")))
}

/// With `-e`: each partition's end at start, and those not reached yet.
#[derive(Debug, Default)]
pub struct Ends {
    ends: BTreeMap<i32, i64>,
    left: BTreeMap<i32, i64>,
}

impl Ends {
    pub fn new(spans: &[Span]) -> Ends {
        let ends: BTreeMap<i32, i64> = spans.iter().map(|s| (s.partition, s.end)).collect();
        let left = spans
            .iter()
            .filter(|s| s.start < s.end)
            .map(|s| (s.partition, s.end))
            .collect();
        Ends { ends, left }
    }

    /// A record at `offset` of `partition` was read; whether it is before the end (records
    /// written since the start are not shown).
    pub fn read(&mut self, partition: i32, offset: i64) -> bool {
        if self
            .left
            .get(&partition)
            .is_some_and(|&end| offset + 1 >= end)
        {
            self.left.remove(&partition);
        }
        self.ends.get(&partition).is_some_and(|&end| offset < end)
    }

    /// librdkafka reports the end of `partition` (past markers and aborted records, or at an
    /// open transaction it may not read past).
    pub fn eof(&mut self, partition: i32) {
        self.left.remove(&partition);
    }

    pub fn done(&self) -> bool {
        self.left.is_empty()
    }

    /// Partitions left and their ends, for messages.
    pub fn left(&self) -> &BTreeMap<i32, i64> {
        &self.left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_checked_against_the_topic() {
        assert_eq!(selected("t", 3, &[]).unwrap(), vec![0, 1, 2]);
        assert_eq!(selected("t", 3, &[2, 0, 2]).unwrap(), vec![0, 2]);
        let e = selected("t", 3, &[1, 3]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "--partition 3: topic `t` has 3 partitions (0 to 2)"
        );
        assert!(selected("t", 3, &[-1]).is_err());
    }

    #[test]
    fn ends_are_reached_by_the_last_record_or_the_partition_end() {
        let spans = [
            Span {
                partition: 0,
                start: 0,
                end: 3,
            },
            Span {
                partition: 1,
                start: 5,
                end: 5,
            },
            Span {
                partition: 2,
                start: 0,
                end: 9,
            },
        ];
        let mut ends = Ends::new(&spans);
        assert_eq!(ends.left().keys().copied().collect::<Vec<_>>(), vec![0, 2]);
        assert!(ends.read(0, 1));
        assert!(!ends.done());
        assert!(ends.read(0, 2));
        assert!(!ends.read(1, 5), "written after the start");
        ends.eof(2);
        assert!(ends.done());
        assert!(!ends.read(0, 3));
    }
}

//! The dead-letter topic (`<topic>.dlq` by default): every record the sink cannot store as an
//! event is copied there whole, with headers that say why and where it came from.
//!
//! Guarantee: a batch's dead letters are acknowledged by Kafka (acks=all, idempotent) before
//! the batch's commit marker is written, so a committed range never has a rejected record that
//! is not in the dead-letter topic. A flush that fails after writing them and is retried writes
//! them again: readers (and `encore verify`) count distinct `(encore.partition, encore.offset)`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use super::producer::ProduceError;
use super::teardown::Detached;
use super::{EncoreContext, KafkaConnection, KafkaSetupError};
use crate::sink::DeadLetter;

/// Header names (values are UTF-8 text).
pub const REASON: &str = "encore.reason";
pub const ERROR: &str = "encore.error";
pub const TOPIC: &str = "encore.topic";
pub const PARTITION: &str = "encore.partition";
pub const OFFSET: &str = "encore.offset";
pub const TIMESTAMP: &str = "encore.timestamp_ms";
/// Set when the value was cut to fit: the original size in bytes.
pub const ORIGINAL_SIZE: &str = "encore.original_size";
/// Set when the key was cut to fit: the original size in bytes.
pub const ORIGINAL_KEY_SIZE: &str = "encore.original_key_size";

/// Largest value copied whole: below Kafka's default 1 MB message limit with room for the key
/// and headers. A longer value is cut to this size and keeps its original in the source topic.
pub const MAX_COPIED_VALUE: usize = 900 * 1024;
/// Largest key copied whole; with the value and the (bounded) headers a letter stays below
/// librdkafka's and Kafka's default 1 MB limit, so no record can make its letter unsendable.
pub const MAX_COPIED_KEY: usize = 16 * 1024;

/// How long a dead letter may take to be acknowledged.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The default name of a topic's dead-letter topic.
pub fn default_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Writes dead letters for one source topic.
pub struct DeadLetterWriter {
    /// Every letter is awaited before its batch commits: nothing is pending when it drops.
    producer: Detached<FutureProducer<EncoreContext>>,
    topic: String,
    source_topic: String,
    partitions: i32,
}

impl DeadLetterWriter {
    /// `partitions`: the dead-letter topic's partition count (source partition p goes to
    /// p modulo it, so one source partition's letters stay in order).
    pub fn new(
        cfg: &KafkaConnection,
        topic: &str,
        source_topic: &str,
        partitions: u32,
    ) -> Result<DeadLetterWriter, KafkaSetupError> {
        let mut c = cfg.client_config();
        // Bounded: a batch waits for its letters before its commit, and a broker that does not
        // take them must fail the flush (which retries) rather than hold it for librdkafka's
        // default five minutes.
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            );
        let producer = c
            .create_with_context(EncoreContext)
            .map_err(KafkaSetupError::settings("dead-letter producer"))?;
        Ok(DeadLetterWriter {
            producer: Detached::new(producer),
            topic: topic.to_string(),
            source_topic: source_topic.to_string(),
            partitions: partitions.max(1) as i32,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends one source partition's dead letters and waits until Kafka has them all.
    pub async fn write(&self, partition: i32, letters: &[DeadLetter]) -> Result<(), ProduceError> {
        let sends = letters.iter().map(|d| {
            let (partition_s, offset_s, ts_s) = (
                partition.to_string(),
                d.offset.to_string(),
                d.timestamp_ms.to_string(),
            );
            let (size_s, key_size_s) = (
                d.value.len().to_string(),
                d.key.as_ref().map_or(0, |k| k.len()).to_string(),
            );
            let mut headers = OwnedHeaders::new_with_capacity(7)
                .insert(header(REASON, d.kind))
                .insert(header(ERROR, &d.detail))
                .insert(header(TOPIC, &self.source_topic))
                .insert(header(PARTITION, &partition_s))
                .insert(header(OFFSET, &offset_s))
                .insert(header(TIMESTAMP, &ts_s));
            if d.key.as_ref().is_some_and(|k| k.len() > MAX_COPIED_KEY) {
                headers = headers.insert(header(ORIGINAL_KEY_SIZE, &key_size_s));
            }
            let value = if d.value.len() > MAX_COPIED_VALUE {
                headers = headers.insert(header(ORIGINAL_SIZE, &size_s));
                &d.value[..MAX_COPIED_VALUE]
            } else {
                &d.value[..]
            };
            let mut rec = FutureRecord::to(&self.topic)
                .partition(partition.rem_euclid(self.partitions))
                .payload(value)
                .headers(headers);
            if let Some(k) = &d.key {
                rec = rec.key(&k[..k.len().min(MAX_COPIED_KEY)]);
            }
            // Waits for queue room (bounded) instead of failing when librdkafka's queue is full.
            self.producer.send(rec, Timeout::After(DELIVERY_TIMEOUT))
        });
        for res in futures::future::join_all(sends).await {
            res.map_err(|(e, _)| ProduceError::Delivery(e))?;
        }
        Ok(())
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

/// What a dead-letter topic holds for one source topic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadLetterScan {
    /// Distinct source offsets per source partition.
    pub offsets: BTreeMap<i32, BTreeSet<i64>>,
    /// Records in the dead-letter topic for this source (copies included).
    pub records: u64,
    /// Distinct source records per reason.
    pub reasons: BTreeMap<String, u64>,
    /// Records without readable `encore.partition`/`encore.offset` headers.
    pub unreadable: u64,
}

impl DeadLetterScan {
    pub fn distinct(&self) -> u64 {
        self.offsets.values().map(|s| s.len() as u64).sum()
    }
}

/// Reads the whole dead-letter topic (blocking) and collects the letters of `source_topic`;
/// `None` when the topic does not exist.
pub fn scan(
    cfg: &KafkaConnection,
    topic: &str,
    source_topic: &str,
) -> Result<Option<DeadLetterScan>, KafkaSetupError> {
    let Some(marks) = super::watermarks(cfg, topic)? else {
        return Ok(None);
    };
    let mut c = cfg.client_config();
    c.set("group.id", "encore-verify-unused")
        .set("enable.auto.commit", "false")
        // EOF ends a partition even when its last offsets hold no record (transaction
        // markers, compaction).
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer<EncoreContext> = c
        .create_with_context(EncoreContext)
        .map_err(KafkaSetupError::settings("Kafka settings"))?;
    let mut tpl = TopicPartitionList::new();
    let mut left = 0i64;
    for (p, &(low, high)) in marks.iter().enumerate() {
        if high > low {
            tpl.add_partition_offset(topic, p as i32, Offset::Offset(low))
                .map_err(KafkaSetupError::PartitionList)?;
        }
        left += high - low;
    }
    let mut out = DeadLetterScan::default();
    if left == 0 {
        return Ok(Some(out));
    }
    let read = |source| KafkaSetupError::Read {
        topic: topic.to_string(),
        source,
    };
    consumer.assign(&tpl).map_err(read)?;
    let mut seen: BTreeMap<(i32, i64), String> = BTreeMap::new();
    let mut next: Vec<i64> = marks.iter().map(|m| m.0).collect();
    let mut at_end: Vec<bool> = marks.iter().map(|m| m.1 <= m.0).collect();
    let patience = cfg.connect_timeout.max(Duration::from_secs(10));
    let mut last_progress = Instant::now();
    while at_end.iter().any(|e| !e) {
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            if last_progress.elapsed() > patience {
                return Err(KafkaSetupError::Stalled {
                    topic: topic.to_string(),
                    patience,
                    positions: next,
                    ends: marks.iter().map(|m| m.1).collect(),
                });
            }
            continue;
        };
        let msg = match msg {
            Ok(m) => m,
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                if let Some(e) = at_end.get_mut(p as usize) {
                    *e = true;
                }
                last_progress = Instant::now();
                continue;
            }
            Err(e) => return Err(read(e)),
        };
        last_progress = Instant::now();
        let p = msg.partition() as usize;
        if p < next.len() {
            next[p] = msg.offset() + 1;
            at_end[p] = next[p] >= marks[p].1;
        }
        let mut fields: BTreeMap<&str, String> = BTreeMap::new();
        if let Some(h) = msg.headers() {
            for i in 0..h.count() {
                let hd = h.get(i);
                if let Some(v) = hd.value.and_then(|v| std::str::from_utf8(v).ok()) {
                    fields.insert(hd.key, v.to_string());
                }
            }
        }
        if fields.get(TOPIC).is_some_and(|t| t != source_topic) {
            continue;
        }
        out.records += 1;
        let pos = fields
            .get(PARTITION)
            .and_then(|p| p.parse::<i32>().ok())
            .zip(fields.get(OFFSET).and_then(|o| o.parse::<i64>().ok()));
        match pos {
            Some(pos) => {
                let reason = fields.get(REASON).cloned().unwrap_or_default();
                seen.insert(pos, reason);
            }
            None => out.unreadable += 1,
        }
    }
    for ((p, o), reason) in seen {
        out.offsets.entry(p).or_default().insert(o);
        *out.reasons.entry(reason).or_default() += 1;
    }
    Ok(Some(out))
}

//! The stack's Apache Kafka: topics filled by `encore simulate` or with raw records, their
//! high watermarks, and every record of a topic read back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::rt;
use super::stack::Stack;

/// One record as `Stack::read_all` returns it.
#[derive(Clone, Debug)]
pub struct TopicRecord {
    pub partition: i32,
    pub offset: i64,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

impl Stack {
    /// A librdkafka configuration for this stack's brokers (add settings, then `create`).
    pub fn kafka_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c
    }

    /// `encore simulate` of `events` max-rate events into `topic` (created with `partitions`).
    pub fn produce(&self, topic: &str, partitions: u32, events: u64, seed: u64) {
        let out = self
            .encore()
            .args([
                "simulate",
                "--max-rate",
                "--users",
                "300",
                "--tracks",
                "5000",
            ])
            .args(["--topic", topic])
            .args(["--partitions", &partitions.to_string()])
            .args(["--events", &events.to_string()])
            .args(["--seed", &seed.to_string()])
            .output()
            .expect("running encore simulate");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "encore simulate failed:\n{stderr}");
        assert!(
            stderr.contains(&format!("{events} acknowledged by Kafka, 0 failed")),
            "simulate did not report every event acknowledged:\n{stderr}"
        );
    }

    /// `encore sink` with small batches and 1 s flushes: many commits, so that crashes and
    /// takeovers land between and inside them.
    pub fn small_batch_sink(&self, topic: &str, group: &str, lake: &str) -> std::process::Command {
        let mut c = self.encore();
        c.args(["sink", "--topic", topic, "--group", group, "--lake", lake])
            .args([
                "--batch-rows",
                "2000",
                "--flush-interval",
                "1s",
                "--max-unflushed",
                "2",
            ]);
        c
    }

    /// Sends each value as one record (no key) and waits until every one is acknowledged;
    /// a record the broker refuses fails the test.
    pub fn produce_raw(&self, topic: &str, values: &[Vec<u8>]) {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let p: FutureProducer = self
            .kafka_config()
            .set("message.max.bytes", "4000000")
            .create()
            .expect("creating a producer");
        rt().block_on(async {
            for (i, v) in values.iter().enumerate() {
                p.send(
                    FutureRecord::<(), _>::to(topic).payload(v),
                    Duration::from_secs(30),
                )
                .await
                .unwrap_or_else(|(e, _)| {
                    panic!("record {i} ({} bytes) not acknowledged: {e}", v.len())
                });
            }
        });
    }

    /// Whether the broker knows `topic`.
    pub fn topic_exists(&self, topic: &str) -> bool {
        let c: BaseConsumer = self
            .kafka_config()
            .set("allow.auto.create.topics", "false")
            .create()
            .expect("a plain consumer");
        let md = c
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("topic metadata");
        md.topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
    }

    /// Per partition, the next offset to be written (the topic must exist).
    pub fn high_watermarks(&self, topic: &str) -> Vec<i64> {
        let c: BaseConsumer = self.kafka_config().create().expect("a plain consumer");
        let timeout = Duration::from_secs(10);
        let md = c
            .fetch_metadata(Some(topic), timeout)
            .expect("topic metadata");
        let n = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len())
            .expect("the topic exists");
        (0..n as i32)
            .map(|p| c.fetch_watermarks(topic, p, timeout).expect("watermarks").1)
            .collect()
    }

    /// Every record of `topic` (blocking): (partition, offset, key, value, headers).
    pub fn read_all(&self, topic: &str) -> Vec<TopicRecord> {
        use rdkafka::Message;
        use rdkafka::message::Headers;
        let highs = self.high_watermarks(topic);
        let c: BaseConsumer = self
            .kafka_config()
            .set("group.id", "encore-tests-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("a plain consumer");
        let mut tpl = rdkafka::TopicPartitionList::new();
        for (p, &h) in highs.iter().enumerate() {
            if h > 0 {
                tpl.add_partition_offset(topic, p as i32, rdkafka::Offset::Beginning)
                    .unwrap();
            }
        }
        c.assign(&tpl).expect("assigning partitions");
        let mut next = vec![0i64; highs.len()];
        let mut out = Vec::new();
        let end = Instant::now() + Duration::from_secs(60);
        while next.iter().zip(&highs).any(|(n, h)| n < h) {
            assert!(
                Instant::now() < end,
                "reading {topic}: at {next:?} of {highs:?} after 60 s"
            );
            let Some(m) = c.poll(Duration::from_millis(200)) else {
                continue;
            };
            let m = m.expect("a record");
            next[m.partition() as usize] = m.offset() + 1;
            let headers = m
                .headers()
                .map(|h| {
                    (0..h.count())
                        .map(|i| {
                            let hd = h.get(i);
                            (
                                hd.key.to_string(),
                                String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(TopicRecord {
                partition: m.partition(),
                offset: m.offset(),
                value: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
        out
    }
}

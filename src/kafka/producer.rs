//! The producing half of the Kafka glue: an idempotent librdkafka producer whose delivery
//! reports are counted. The publisher actor drives it (`actors::publisher`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use super::{KafkaConfig, KafkaSetupError, log_client_error, log_to_tracing};

/// Producer-side compression codecs librdkafka offers.
pub const CODECS: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];

/// Delivery outcomes, updated from librdkafka's delivery callbacks.
#[derive(Default)]
pub struct Deliveries {
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    /// The first failure, kept for the error message.
    pub first_error: Mutex<Option<String>>,
}

/// Counts delivery reports and routes librdkafka's logs to `tracing`.
pub struct DeliveryContext {
    pub deliveries: Arc<Deliveries>,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.deliveries.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, msg)) => {
                self.deliveries.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self
                    .deliveries
                    .first_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    let text = format!(
                        "delivery to {}/{} failed: {e}",
                        msg.topic(),
                        msg.partition()
                    );
                    tracing::error!("{text}");
                    *first = Some(text);
                }
            }
        }
    }
}

/// An idempotent producer (acks=all) for one topic.
pub struct KafkaProducer {
    producer: ThreadedProducer<DeliveryContext>,
    topic: String,
    deliveries: Arc<Deliveries>,
}

/// A record could not be enqueued.
pub enum Enqueue {
    /// librdkafka's queue is full: wait for deliveries, then retry from `sent`.
    QueueFull { sent: usize },
    /// Anything else: the run cannot go on publishing.
    Failed(String),
}

impl KafkaProducer {
    pub fn new(
        cfg: &KafkaConfig,
        topic: &str,
        compression: &str,
    ) -> Result<KafkaProducer, KafkaSetupError> {
        let mut c = cfg.client_config();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            // Java's partitioner: the same key lands on the same partition as with Java
            // clients and encore's in-process bus.
            .set("partitioner", "murmur2_random")
            .set("compression.type", compression)
            .set("linger.ms", "10")
            .set("batch.size", "1000000")
            .set("batch.num.messages", "10000");
        // User settings win over the tuning above (not over the reserved ones: see parse_setting).
        for (k, v) in &cfg.extra {
            c.set(k, v);
        }
        let deliveries = Arc::new(Deliveries::default());
        let producer = c
            .create_with_context(DeliveryContext {
                deliveries: deliveries.clone(),
            })
            .map_err(|e| KafkaSetupError::Config(format!("Kafka producer: {e}")))?;
        Ok(KafkaProducer {
            producer,
            topic: topic.to_string(),
            deliveries,
        })
    }

    /// Enqueues `(key, value)` records in order, starting at `from`.
    pub fn enqueue<'a>(
        &self,
        records: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        from: usize,
    ) -> Result<usize, Enqueue> {
        let mut sent = from;
        for (key, value) in records.skip(from) {
            let rec = BaseRecord::to(&self.topic).key(key).payload(value);
            match self.producer.send(rec) {
                Ok(()) => sent += 1,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    return Err(Enqueue::QueueFull { sent });
                }
                Err((e, _)) => return Err(Enqueue::Failed(e.to_string())),
            }
        }
        Ok(sent)
    }

    pub fn deliveries(&self) -> &Arc<Deliveries> {
        &self.deliveries
    }

    /// Waits until every enqueued record is acknowledged or failed (blocking).
    pub fn flush(&self, timeout: Duration) -> Result<(), String> {
        self.producer
            .flush(timeout)
            .map_err(|e| format!("flushing the producer: {e}"))
    }

    /// Records enqueued and not yet acknowledged.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    pub fn client(&self) -> &rdkafka::client::Client<DeliveryContext> {
        self.producer.client()
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
}

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

use super::teardown::Detached;
use super::{KafkaConnection, KafkaSetupError, log_client_error, log_to_tracing};

/// Producer-side compression codecs librdkafka offers.
pub const CODECS: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];

/// A record to send again: (key, value).
type Resend = (Vec<u8>, Vec<u8>);

/// Delivery outcomes, updated from librdkafka's delivery callbacks.
#[derive(Default)]
pub struct Deliveries {
    pub acked: AtomicU64,
    /// Given up for good (a permanent error): the run stops.
    pub failed: AtomicU64,
    /// Failed with a transient error after librdkafka's own retries and queued to be sent
    /// again (a broker that went away answers in-flight requests with errors).
    pub retried: AtomicU64,
    /// Of `retried`, those the broker may have written before failing: sent again, they can
    /// appear twice in the topic (at two offsets). Reported, never hidden.
    pub possibly_duplicated: AtomicU64,
    /// The first failure, kept for the error message.
    pub first_error: Mutex<Option<String>>,
    resend: Mutex<Vec<Resend>>,
}

impl Deliveries {
    fn resend_queue(&self) -> std::sync::MutexGuard<'_, Vec<Resend>> {
        self.resend.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records waiting to be sent again.
    pub fn pending_resends(&self) -> usize {
        self.resend_queue().len()
    }
}

/// Errors that sending again cannot fix: the record, the topic or the credentials are wrong.
fn permanent(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidMessage
            | C::InvalidRecord
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::InvalidTopic
            | C::UnsupportedVersion
            | C::UnsupportedForMessageFormat
            | C::PolicyViolation
            | C::Fatal
            | C::InvalidArgument
            | C::UnknownTopic
            | C::UnknownPartition
            | C::Authentication
    )
}

/// Why records could not be produced.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ProduceError {
    /// librdkafka refused to take records (a fatal producer state, a record over the limit).
    #[error("{0}")]
    Refused(KafkaError),
    #[error("flushing the producer: {0}")]
    Flush(KafkaError),
    #[error(
        "flushing the producer: {records} records still in flight after {}",
        humantime::format_duration(*.waited)
    )]
    InFlight { records: usize, waited: Duration },
    /// A record was not acknowledged (dead letters wait for each one).
    #[error("{0}")]
    Delivery(KafkaError),
}

impl ProduceError {
    /// Whether sending again later can succeed: a broker away or slow, not a refused record,
    /// topic or credential. A batch's failed dead letters are retriable (`LakeError`) by this.
    pub fn is_retriable(&self) -> bool {
        match self {
            ProduceError::Refused(_) => false,
            ProduceError::InFlight { .. } => true,
            ProduceError::Flush(e) | ProduceError::Delivery(e) => {
                !e.rdkafka_error_code().is_some_and(permanent)
            }
        }
    }
}

/// Counts delivery reports, queues transient failures to be sent again, and routes
/// librdkafka's logs to `tracing`.
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
        let d = &self.deliveries;
        match result {
            Ok(_) => {
                d.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, msg)) => {
                let code = e.rdkafka_error_code();
                if !code.is_some_and(permanent) {
                    // SAFETY: `msg` wraps a live librdkafka message for the whole callback.
                    let status = unsafe { rdkafka::bindings::rd_kafka_message_status(msg.ptr()) };
                    let maybe_written = status
                        != rdkafka::bindings::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
                    if d.retried.fetch_add(1, Ordering::Relaxed) == 0 {
                        tracing::warn!(
                            partition = msg.partition(),
                            %e,
                            "delivery failed with a transient error; sending the record again"
                        );
                    }
                    if maybe_written {
                        d.possibly_duplicated.fetch_add(1, Ordering::Relaxed);
                    }
                    let key = msg.key().unwrap_or_default().to_vec();
                    let value = msg.payload().unwrap_or_default().to_vec();
                    d.resend_queue().push((key, value));
                    return;
                }
                d.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = d.first_error.lock().unwrap_or_else(|p| p.into_inner());
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
    /// Flushed by the drain; what a failed run leaves is purged by the drop either way.
    producer: Detached<ThreadedProducer<DeliveryContext>>,
    topic: String,
    deliveries: Arc<Deliveries>,
}

/// A record could not be enqueued.
pub enum Enqueue {
    /// librdkafka's queue is full: wait for deliveries, then retry from `sent`.
    QueueFull { sent: usize },
    /// Anything else: the run cannot go on publishing.
    Failed { sent: usize, error: KafkaError },
}

impl KafkaProducer {
    pub fn new(
        cfg: &KafkaConnection,
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
            .map_err(KafkaSetupError::settings("Kafka producer"))?;
        Ok(KafkaProducer {
            producer: Detached::new(producer),
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
                Err((error, _)) => return Err(Enqueue::Failed { sent, error }),
            }
        }
        Ok(sent)
    }

    /// Sends the records queued by transient delivery failures again (in the order they
    /// failed). On a full queue the rest stay queued for the next call.
    pub fn resend(&self) -> Result<usize, ProduceError> {
        let batch = std::mem::take(&mut *self.deliveries.resend_queue());
        if batch.is_empty() {
            return Ok(0);
        }
        let pairs = batch.iter().map(|(k, v)| (&k[..], &v[..]));
        match self.enqueue(pairs, 0) {
            Ok(n) => Ok(n),
            Err(Enqueue::QueueFull { sent }) => {
                let mut q = self.deliveries.resend_queue();
                let rest: Vec<Resend> = batch.into_iter().skip(sent).collect();
                // Keep failure order: the unsent come before anything that failed meanwhile.
                q.splice(0..0, rest);
                Ok(sent)
            }
            Err(Enqueue::Failed { sent, error }) => {
                // The producer refuses records (a fatal state): the unsent ones are lost to
                // this run and counted as failed, which stops it.
                let d = &self.deliveries;
                d.failed
                    .fetch_add((batch.len() - sent) as u64, Ordering::Relaxed);
                d.first_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert_with(|| format!("sending records again: {error}"));
                Err(ProduceError::Refused(error))
            }
        }
    }

    /// Waits until every record is acknowledged or failed for good, sending transient
    /// failures again meanwhile (blocking; at most `timeout`).
    pub fn flush_all(&self, timeout: Duration) -> Result<(), ProduceError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            self.resend()?;
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            self.flush(left.min(Duration::from_secs(1)))
                .or_else(|e| if left.is_zero() { Err(e) } else { Ok(()) })?;
            if self.in_flight() == 0 && self.deliveries.pending_resends() == 0 {
                return Ok(());
            }
            if left.is_zero() {
                return Err(ProduceError::InFlight {
                    records: self.in_flight() as usize + self.deliveries.pending_resends(),
                    waited: timeout,
                });
            }
        }
    }

    pub fn deliveries(&self) -> &Arc<Deliveries> {
        &self.deliveries
    }

    /// Waits until every enqueued record is acknowledged or failed (blocking).
    pub fn flush(&self, timeout: Duration) -> Result<(), ProduceError> {
        // librdkafka's flush, called once: it waits on its message count, which the polling
        // thread brings to zero as it serves the delivery reports. rust-rdkafka's wrapper
        // instead checks without waiting, then polls for up to 100 ms for events that thread
        // takes first: it overslept by up to 100 ms, a tenth of a short run.
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the handle is this producer's, alive for the duration of the call;
        // rd_kafka_flush may be called from any thread.
        let code = unsafe { rdkafka::bindings::rd_kafka_flush(self.client().native_ptr(), ms) };
        match code {
            rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => Ok(()),
            e => Err(ProduceError::Flush(KafkaError::Flush(e.into()))),
        }
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

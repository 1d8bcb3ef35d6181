//! The producing half of the Kafka glue: an idempotent librdkafka producer whose delivery
//! reports are counted (`delivery.rs`), sending through its topic's handle (`handle.rs`). The
//! publisher actor drives it (`actors::publisher`).

mod delivery;
mod handle;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

pub use delivery::{Deliveries, DeliveryContext};

use super::teardown::Detached;
use super::{KafkaConnection, KafkaSetupError};
use delivery::{Held, Owner, Resend, permanent};
use handle::TopicHandle;

/// Producer-side compression codecs librdkafka offers.
pub const CODECS: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];

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

/// Has the producer ask for its producer id now rather than in up to 500 ms. An idempotent
/// librdkafka producer asks on a 500 ms timer, or when metadata arrives from a broker it may
/// ask: the first metadata comes over the bootstrap connection, which it drops for the broker
/// it learns of (the swap `reconnect.backoff.ms`, set low in `client_config`, shortens), so
/// the second fetch is the one that counts. Sent through the topic's handle,
/// no first record fetches metadata: a 1 000-event `simulate` took 0.6 s, not 0.2. On a thread
/// of its own (only a head start: at most 2 s), so that the caller goes on meanwhile.
fn request_id_now(
    producer: &Arc<Detached<ThreadedProducer<DeliveryContext>>>,
    topic: &str,
    timeout: Duration,
) {
    let (producer, topic) = (producer.clone(), topic.to_string());
    let timeout = timeout.min(Duration::from_secs(2));
    let _ = std::thread::Builder::new()
        .name("kafka-producer-id".into())
        .spawn(move || {
            for _ in 0..2 {
                if producer
                    .client()
                    .fetch_metadata(Some(&topic), timeout)
                    .is_err()
                {
                    break; // the producer retries on its own; its errors surface there
                }
            }
        });
}

/// Records that can be sent in place (see [`KafkaProducer::enqueue_in_place`]): immutable
/// while shared, so the slices they yield stay where they are.
pub trait Batch: Send + Sync + 'static {
    /// Each record's (key, value), in order.
    fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])>;
}

/// An idempotent producer (acks=all) for one topic.
pub struct KafkaProducer {
    /// Declared first: dropped before the producer it belongs to.
    handle: TopicHandle,
    /// Flushed by the drain; what a failed run leaves is purged by the drop either way.
    /// Shared with the thread that asks for the producer id (see `request_id_now`).
    producer: Arc<Detached<ThreadedProducer<DeliveryContext>>>,
    topic: String,
    deliveries: Arc<Deliveries>,
    /// Bytes of the batches records in flight hold (see `enqueue_in_place`).
    held: Arc<AtomicUsize>,
    in_place_limit: usize,
}

/// Bytes of records sent in place that may be held at once (beyond librdkafka's own queue,
/// whose limits count only what it copied): 64 MiB, sixteen full listener batches. Past it the
/// publisher waits, as for a full queue. (Copying past it instead, a third to two fifths of the
/// records were copied at full speed, for 10-15 % more CPU and 8-15 % less speed; measured.)
const IN_PLACE_LIMIT: usize = 64 << 20;

/// A record could not be enqueued.
pub enum Enqueue {
    /// librdkafka's queue is full, or the batches held in place reached their cap: wait for
    /// deliveries, then retry from `sent`.
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
        // Detached first: should the handle fail, the producer is not dropped on this thread.
        let producer = Arc::new(Detached::new(producer));
        let handle = TopicHandle::new(&producer, topic)?;
        request_id_now(&producer, topic, cfg.connect_timeout);
        Ok(KafkaProducer {
            handle,
            producer,
            topic: topic.to_string(),
            deliveries,
            held: Arc::default(),
            in_place_limit: IN_PLACE_LIMIT,
        })
    }

    /// Enqueues `(key, value)` records in order, starting at `from`; librdkafka copies them.
    pub fn enqueue<'a>(
        &self,
        records: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        from: usize,
    ) -> Result<usize, Enqueue> {
        self.enqueue_with(records, from, || Held(None))
    }

    /// [`enqueue`](Self::enqueue) without copying the values: librdkafka reads them where
    /// `batch` holds them (it copies keys), and each record in flight keeps the batch alive
    /// until its delivery report. The batch yields its own slices, so none can point anywhere
    /// else. A record waiting on a stalled partition holds its whole batch, which librdkafka's
    /// queue limits do not count: past `in_place_limit` bytes held, the queue is full. A batch
    /// larger than the limit goes when nothing else is held.
    pub fn enqueue_in_place<B: Batch>(
        &self,
        batch: &Arc<B>,
        from: usize,
    ) -> Result<usize, Enqueue> {
        let size = batch.pairs().map(|(k, v)| k.len() + v.len()).sum();
        let held = self.held.load(Ordering::Relaxed);
        if held > 0 && held + size > self.in_place_limit {
            return Err(Enqueue::QueueFull { sent: from });
        }
        let owner = Owner::new(batch.clone(), size, self.held.clone());
        self.enqueue_with(batch.pairs(), from, || Held(Some(owner.clone())))
    }

    fn enqueue_with<'a>(
        &self,
        records: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        from: usize,
        held: impl Fn() -> Held,
    ) -> Result<usize, Enqueue> {
        let mut sent = from;
        for (key, value) in records.skip(from) {
            match self.handle.produce(&self.producer, key, value, held()) {
                Ok(()) => sent += 1,
                Err(RDKafkaErrorCode::QueueFull) => return Err(Enqueue::QueueFull { sent }),
                Err(code) => {
                    let error = KafkaError::MessageProduction(code);
                    return Err(Enqueue::Failed { sent, error });
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Pairs(Vec<(Vec<u8>, Vec<u8>)>);

    /// A producer whose broker never answers: its records stay queued.
    fn unanswered(extra: Vec<(String, String)>, topic: &str) -> KafkaProducer {
        let cfg = KafkaConnection {
            brokers: "127.0.0.1:1".into(),
            extra,
            connect_timeout: Duration::from_secs(1),
        };
        KafkaProducer::new(&cfg, topic, "none").expect("producer")
    }

    impl Batch for Pairs {
        fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
            self.0.iter().map(|(k, v)| (&k[..], &v[..]))
        }
    }

    #[test]
    fn records_sent_in_place_hold_their_batch_until_reported() {
        // No broker answers: the records stay queued until the drop purges and reports them.
        let queue_of_two = vec![("queue.buffering.max.messages".into(), "2".into())];
        let producer = unanswered(queue_of_two, "in-place");
        let batch = Arc::new(Pairs(vec![
            (b"k1".to_vec(), b"v1".to_vec()),
            (b"k2".to_vec(), b"v2".to_vec()),
            (b"k3".to_vec(), b"v3".to_vec()),
        ]));
        match producer.enqueue_in_place(&batch, 0) {
            Err(Enqueue::QueueFull { sent }) => assert_eq!(sent, 2, "the queue holds two"),
            Ok(n) => panic!("a queue of two took {n} records"),
            Err(Enqueue::Failed { error, .. }) => panic!("refused: {error}"),
        }
        // The test's reference, and the one the two queued records share.
        assert_eq!(
            Arc::strong_count(&batch),
            2,
            "the queued records hold the batch"
        );
        // At least the two records: librdkafka's count also holds the failed connections'
        // error events until its polling thread serves them.
        assert!(producer.in_flight() >= 2, "{}", producer.in_flight());
        drop(producer);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while Arc::strong_count(&batch) > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the purged records' reports never released their batch"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn past_the_limit_the_queue_is_full_and_nothing_is_copied() {
        let mut producer = unanswered(Vec::new(), "held-limit");
        producer.in_place_limit = 8;
        let big = Arc::new(Pairs(vec![(b"key".to_vec(), b"larger-than-8".to_vec())]));
        assert_eq!(
            producer.enqueue_in_place(&big, 0).ok(),
            Some(1),
            "a batch over the limit goes when nothing is held"
        );
        assert_eq!(producer.held.load(Ordering::Relaxed), 16);
        let second = Arc::new(Pairs(vec![(b"k2".to_vec(), b"v2".to_vec())]));
        match producer.enqueue_in_place(&second, 0) {
            Err(Enqueue::QueueFull { sent: 0 }) => {}
            other => panic!("expected a full queue, got {:?}", other.map_err(|_| ())),
        }
        assert_eq!(
            Arc::strong_count(&second),
            1,
            "nothing holds the refused batch"
        );
        assert_eq!(
            producer.held.load(Ordering::Relaxed),
            16,
            "only the first is held"
        );
    }
}

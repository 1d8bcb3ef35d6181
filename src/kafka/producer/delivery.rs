//! Delivery reports: counted, transient failures queued to be sent again, and the bytes of
//! records sent in place kept alive until their report.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::IntoOpaque;

use crate::kafka::{log_client_error, log_to_tracing};

/// A record to send again: (key, value).
pub(super) type Resend = (Vec<u8>, Vec<u8>);

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
    pub(super) fn resend_queue(&self) -> std::sync::MutexGuard<'_, Vec<Resend>> {
        self.resend.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records waiting to be sent again.
    pub fn pending_resends(&self) -> usize {
        self.resend_queue().len()
    }
}

/// Errors that sending again cannot fix: the record, the topic or the credentials are wrong.
pub(super) fn permanent(code: RDKafkaErrorCode) -> bool {
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

/// The bytes of records whose values librdkafka reads in place instead of copying them (see
/// [`super::KafkaProducer::enqueue_in_place`]). Each record in flight holds a reference,
/// dropped with its delivery report; librdkafka's own copy was an allocation and a `memcpy`
/// per record. `size` bytes are counted in `held` while it lives.
pub(super) struct Owner {
    _bytes: Box<dyn Send + Sync>,
    size: usize,
    held: Arc<AtomicUsize>,
}

impl Owner {
    pub(super) fn new(
        bytes: impl Send + Sync + 'static,
        size: usize,
        held: Arc<AtomicUsize>,
    ) -> Arc<Owner> {
        held.fetch_add(size, Ordering::Relaxed);
        Arc::new(Owner {
            _bytes: Box::new(bytes),
            size,
            held,
        })
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.held.fetch_sub(self.size, Ordering::Relaxed);
    }
}

/// A record's delivery opaque: the [`Owner`] of its bytes, or nothing for a record librdkafka
/// copied. A record never reported (a producer dropped unpolled) keeps its owner forever:
/// memory kept, never memory freed under librdkafka.
pub struct Held(pub(super) Option<Arc<Owner>>);

impl IntoOpaque for Held {
    fn into_ptr(self) -> *mut std::ffi::c_void {
        self.0
            .map_or(std::ptr::null_mut(), |o| Arc::into_raw(o) as *mut _)
    }

    unsafe fn from_ptr(ptr: *mut std::ffi::c_void) -> Self {
        // SAFETY (caller): `ptr` came from `into_ptr`, and is taken back once.
        Held((!ptr.is_null()).then(|| unsafe { Arc::from_raw(ptr as *const Owner) }))
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Held;

    /// `_held` keeps the record's bytes alive to the end of the report (a resend copies them).
    fn delivery(&self, result: &DeliveryResult<'_>, _held: Held) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opaque_gives_back_the_owner_it_took() {
        let held = Arc::new(AtomicUsize::new(0));
        let owner = Owner::new(vec![1u8, 2, 3], 3, held.clone());
        assert_eq!(held.load(Ordering::Relaxed), 3, "its bytes are counted");
        let ptr = Held(Some(owner.clone())).into_ptr();
        assert_eq!(
            Arc::strong_count(&owner),
            2,
            "the record in flight holds it"
        );
        // SAFETY: `ptr` came from `into_ptr`, taken back once.
        let back = unsafe { Held::from_ptr(ptr) };
        assert!(back.0.is_some_and(|o| Arc::ptr_eq(&o, &owner)));
        assert_eq!(Arc::strong_count(&owner), 1, "the report released it");
        drop(owner);
        assert_eq!(held.load(Ordering::Relaxed), 0, "and its bytes with it");
        assert!(Held(None).into_ptr().is_null());
        // SAFETY: a null opaque, as a copied record has.
        assert!(unsafe { Held::from_ptr(std::ptr::null_mut()) }.0.is_none());
    }
}

//! librdkafka's handle of the producer's topic, and a record sent through it.

use rdkafka::bindings as rdsys;
use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::IntoOpaque;

use super::delivery::{DeliveryContext, Held};
use crate::kafka::KafkaSetupError;

/// librdkafka's handle of the producer's topic, made once (the producer's default topic
/// settings apply: acks, compression, partitioner).
pub(super) struct TopicHandle(*mut rdsys::rd_kafka_topic_t);

// SAFETY: librdkafka's topic handles may be used from any thread.
unsafe impl Send for TopicHandle {}
unsafe impl Sync for TopicHandle {}

impl TopicHandle {
    pub(super) fn new(
        producer: &ThreadedProducer<DeliveryContext>,
        topic: &str,
    ) -> Result<TopicHandle, KafkaSetupError> {
        let name = std::ffi::CString::new(topic).map_err(|_| KafkaSetupError::BadSettings {
            client: "Kafka producer",
            source: KafkaError::ClientCreation(format!("topic name {topic:?} holds a NUL")),
        })?;
        // SAFETY: a live client handle and a C string; a null conf takes the defaults.
        let rkt = unsafe {
            rdsys::rd_kafka_topic_new(
                producer.client().native_ptr(),
                name.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        if rkt.is_null() {
            return Err(KafkaSetupError::BadSettings {
                client: "Kafka producer",
                source: KafkaError::ClientCreation(format!(
                    "no handle for topic `{topic}`: {}",
                    // SAFETY: librdkafka's last error on this thread, and its static text.
                    unsafe {
                        std::ffi::CStr::from_ptr(rdsys::rd_kafka_err2str(
                            rdsys::rd_kafka_last_error(),
                        ))
                    }
                    .to_string_lossy()
                )),
            });
        }
        Ok(TopicHandle(rkt))
    }

    /// One record to librdkafka, through the topic's handle: rust-rdkafka's `send` builds a C
    /// string of the topic's name and looks the topic up for every record, and always copies.
    pub(super) fn produce(
        &self,
        producer: &ThreadedProducer<DeliveryContext>,
        key: &[u8],
        value: &[u8],
        held: Held,
    ) -> Result<(), RDKafkaErrorCode> {
        use rdsys::rd_kafka_vtype_t::*;
        let flags = if held.0.is_some() {
            0
        } else {
            rdsys::RD_KAFKA_MSG_F_COPY
        };
        let opaque = held.into_ptr();
        // SAFETY: the handles are this producer's and alive; librdkafka copies the key, and
        // the value too with RD_KAFKA_MSG_F_COPY, or else reads the value in place until the
        // delivery report, which `opaque` (an `Owner` of it) outlives; it never writes or
        // frees it (no F_FREE).
        let code = unsafe {
            rdsys::rd_kafka_producev(
                producer.client().native_ptr(),
                RD_KAFKA_VTYPE_RKT,
                self.0,
                RD_KAFKA_VTYPE_PARTITION,
                -1i32, // RD_KAFKA_PARTITION_UA: the partitioner decides
                RD_KAFKA_VTYPE_MSGFLAGS,
                flags,
                RD_KAFKA_VTYPE_VALUE,
                value.as_ptr() as *mut std::ffi::c_void,
                value.len(),
                RD_KAFKA_VTYPE_KEY,
                key.as_ptr() as *mut std::ffi::c_void,
                key.len(),
                RD_KAFKA_VTYPE_OPAQUE,
                opaque,
                RD_KAFKA_VTYPE_END,
            )
        };
        if code == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Ok(());
        }
        // Refused: librdkafka did not take the record, nor its opaque.
        // SAFETY: `opaque` came from `into_ptr` above and was not handed over.
        drop(unsafe { Held::from_ptr(opaque) });
        Err(code.into())
    }
}

impl Drop for TopicHandle {
    fn drop(&mut self) {
        // SAFETY: made by rd_kafka_topic_new, released once; records in flight hold their own
        // references to the topic.
        unsafe { rdsys::rd_kafka_topic_destroy(self.0) }
    }
}

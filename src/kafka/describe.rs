//! DescribeTopics, which rust-rdkafka does not wrap, through librdkafka's admin API: a topic's
//! id (KIP-516: the same name deleted and created again is another topic whose offsets start
//! over, and only the id tells them apart) and what the client's principal may do with it
//! (KIP-430 authorized operations: a missing ACL named before the first record is sent).

use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

/// Frees a librdkafka object when it goes out of scope.
struct Owned<T>(*mut T, unsafe extern "C" fn(*mut T));

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from the matching librdkafka constructor, freed once.
            unsafe { (self.1)(self.0) }
        }
    }
}

fn c_str(p: *const std::os::raw::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: librdkafka returns NUL-terminated strings that live as long as their event.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// What the broker says of one topic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic's id as Kafka's tools print it (URL-safe base64, no padding); None where the
    /// broker has no ids (< 2.8).
    pub id: Option<String>,
    /// Operations the principal may perform (READ, WRITE, DESCRIBE, …; every operation when the
    /// broker has no authorizer); None when the broker did not say (before 2.3).
    pub authorized: Option<Vec<String>>,
}

/// Why a topic could not be described.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DescribeError {
    /// The principal may not even DESCRIBE the topic (or the cluster denies it).
    #[error("{0}")]
    NotAuthorized(String),
    /// The topic does not exist.
    #[error("unknown topic")]
    Unknown,
    /// Anything else: unreachable brokers, timeouts.
    #[error("{0}")]
    Other(String),
}

/// Describes `topic` with the operations the client's principal is authorized for.
pub fn describe_topic<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<TopicDescription, DescribeError> {
    describe(client, topic, timeout).map_err(|(code, msg)| {
        use rd::rd_kafka_resp_err_t::*;
        match code {
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
            | RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED => DescribeError::NotAuthorized(msg),
            RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART | RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC => {
                DescribeError::Unknown
            }
            _ => DescribeError::Other(msg),
        }
    })
}

fn describe<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<TopicDescription, (rd::rd_kafka_resp_err_t, String)> {
    use rd::rd_kafka_resp_err_t::{
        RD_KAFKA_RESP_ERR__FAIL, RD_KAFKA_RESP_ERR__INVALID_ARG, RD_KAFKA_RESP_ERR__TIMED_OUT,
        RD_KAFKA_RESP_ERR_NO_ERROR,
    };
    let other = |m: String| (RD_KAFKA_RESP_ERR__FAIL, m);
    let name = CString::new(topic).map_err(|_| {
        (
            RD_KAFKA_RESP_ERR__INVALID_ARG,
            format!("topic `{topic}`: NUL in the name"),
        )
    })?;
    let rk = client.native_ptr();
    // SAFETY: every pointer below is created here, checked for null, and freed by `Owned`
    // (the event's contents are borrowed from the event, which outlives their use).
    unsafe {
        let queue = Owned(rd::rd_kafka_queue_new(rk), rd::rd_kafka_queue_destroy);
        let mut names = [name.as_ptr()];
        let topics = Owned(
            rd::rd_kafka_TopicCollection_of_topic_names(names.as_mut_ptr(), 1),
            rd::rd_kafka_TopicCollection_destroy,
        );
        let options = Owned(
            rd::rd_kafka_AdminOptions_new(
                rk,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            ),
            rd::rd_kafka_AdminOptions_destroy,
        );
        if queue.0.is_null() || topics.0.is_null() || options.0.is_null() {
            return Err(other(
                "librdkafka could not allocate a DescribeTopics request".into(),
            ));
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let mut err = [0 as std::os::raw::c_char; 256];
        rd::rd_kafka_AdminOptions_set_request_timeout(options.0, ms, err.as_mut_ptr(), err.len());
        let e = rd::rd_kafka_AdminOptions_set_include_authorized_operations(options.0, 1);
        if !e.is_null() {
            rd::rd_kafka_error_destroy(e); // not fatal: authorized operations stay unknown
        }
        rd::rd_kafka_DescribeTopics(rk, topics.0, options.0, queue.0);
        let deadline = Instant::now() + timeout + Duration::from_secs(1);
        let event = loop {
            let ev = rd::rd_kafka_queue_poll(queue.0, 100);
            if !ev.is_null() {
                break Owned(ev, rd::rd_kafka_event_destroy);
            }
            if Instant::now() > deadline {
                return Err((
                    RD_KAFKA_RESP_ERR__TIMED_OUT,
                    format!("describing topic `{topic}`: no answer within {timeout:?}"),
                ));
            }
        };
        let code = rd::rd_kafka_event_error(event.0);
        if code != RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err((
                code,
                format!(
                    "describing topic `{topic}`: {}",
                    c_str(rd::rd_kafka_event_error_string(event.0))
                ),
            ));
        }
        let result = rd::rd_kafka_event_DescribeTopics_result(event.0);
        if result.is_null() {
            return Err(other(format!(
                "describing topic `{topic}`: unexpected answer"
            )));
        }
        let mut count = 0usize;
        let descs = rd::rd_kafka_DescribeTopics_result_topics(result, &mut count);
        if descs.is_null() || count == 0 {
            return Err(other(format!("describing topic `{topic}`: empty answer")));
        }
        let desc = *descs;
        let error = rd::rd_kafka_TopicDescription_error(desc);
        if !error.is_null() {
            let code = rd::rd_kafka_error_code(error);
            if code != RD_KAFKA_RESP_ERR_NO_ERROR {
                return Err((
                    code,
                    format!(
                        "describing topic `{topic}`: {}",
                        c_str(rd::rd_kafka_error_string(error))
                    ),
                ));
            }
        }
        let mut out = TopicDescription::default();
        let id = rd::rd_kafka_TopicDescription_topic_id(desc);
        // The zero uuid: a broker without topic ids.
        if !id.is_null()
            && (rd::rd_kafka_Uuid_most_significant_bits(id) != 0
                || rd::rd_kafka_Uuid_least_significant_bits(id) != 0)
        {
            out.id = Some(kafka_uuid_text(&c_str(rd::rd_kafka_Uuid_base64str(id))))
                .filter(|t| !t.is_empty());
        }
        let mut n = 0usize;
        let ops = rd::rd_kafka_TopicDescription_authorized_operations(desc, &mut n);
        if !ops.is_null() && n > 0 {
            let ops = std::slice::from_raw_parts(ops, n);
            out.authorized = Some(
                ops.iter()
                    .map(|&o| c_str(rd::rd_kafka_AclOperation_name(o)).to_ascii_uppercase())
                    .collect(),
            );
        }
        Ok(out)
    }
}

/// librdkafka prints ids in standard base64; Kafka (`Uuid.toString`, `kafka-topics
/// --describe`) in URL-safe base64 without padding. Markers keep Kafka's form.
fn kafka_uuid_text(b64: &str) -> String {
    b64.trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_printed_as_kafka_prints_them() {
        assert_eq!(super::kafka_uuid_text("a+b/cd=="), "a-b_cd");
        assert_eq!(
            super::kafka_uuid_text("4X9Vq9zYQGqpqIoCSE_ozw"),
            "4X9Vq9zYQGqpqIoCSE_ozw"
        );
    }
}

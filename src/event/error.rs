//! Why a record on the topic is not a valid event, in either format.

/// Largest record value the sink tries to decode. Events are about 450 bytes; anything near
/// Kafka's default 1 MB message limit is not one, and parsing it would only cost memory.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Why a record on the topic is not a valid event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty value")]
    Empty,
    #[error("value of {0} bytes is larger than the {MAX_RECORD_BYTES}-byte limit for an event")]
    TooLarge(usize),
    #[error("value is not UTF-8 (byte {0} starts an invalid sequence)")]
    NotUtf8(usize),
    #[error("not a JSON event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown event_type_id {0}")]
    UnknownTypeId(u8),
    #[error("event_type `{name}` does not match event_type_id {id}")]
    TypeMismatch { id: u8, name: String },
    #[error("unknown platform `{0}`")]
    UnknownPlatform(String),
    #[error("country `{0}` is not an ISO 3166-1 alpha-2 code")]
    BadCountry(String),
    #[error("ts_ms {0} is outside 1970-01-01 .. 9999-12-31")]
    TimeOutOfRange(i64),
    #[error("ts {ts} does not match ts_ms {ts_ms}")]
    TimeMismatch { ts: i64, ts_ms: i64 },
    #[error("like_status {0} is neither 0 nor 1")]
    BadLikeStatus(u8),
    /// A record in the reference format (the kinds stay those of the problem inside).
    #[error("reference format: {0}")]
    Reference(Box<DecodeError>),
}

impl DecodeError {
    /// A short, stable name for the kind of problem: the dead-letter topic's `encore.reason`
    /// header and the key of the rejection counts.
    pub fn kind(&self) -> &'static str {
        use serde_json::error::Category;
        match self {
            DecodeError::Empty => "empty",
            DecodeError::TooLarge(_) => "too_large",
            DecodeError::NotUtf8(_) => "not_utf8",
            DecodeError::Json(e) => match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => "invalid_json",
                Category::Data => {
                    let m = e.to_string();
                    if m.starts_with("missing field") {
                        "missing_field"
                    } else if m.starts_with("invalid type") {
                        "wrong_type"
                    } else {
                        "invalid_value"
                    }
                }
            },
            DecodeError::UnknownTypeId(_) => "unknown_event_type",
            DecodeError::TypeMismatch { .. } => "type_mismatch",
            DecodeError::UnknownPlatform(_)
            | DecodeError::BadCountry(_)
            | DecodeError::TimeOutOfRange(_)
            | DecodeError::TimeMismatch { .. }
            | DecodeError::BadLikeStatus(_) => "invalid_value",
            DecodeError::Reference(inner) => inner.kind(),
        }
    }
}

/// Rejects what is no event before parsing it.
pub(super) fn check_size(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    Ok(())
}

/// Why a record did not parse. Checked only on failure: serde_json validates the UTF-8 it
/// reads anyway.
pub(super) fn json_error(bytes: &[u8], e: serde_json::Error) -> DecodeError {
    match std::str::from_utf8(bytes) {
        Err(u) => DecodeError::NotUtf8(u.valid_up_to()),
        Ok(_) => DecodeError::Json(e),
    }
}

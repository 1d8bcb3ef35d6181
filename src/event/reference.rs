//! The reference pipeline's nested event format, read by the sink next to encore's flat one (per
//! record) and written by `--format reference`:
//!
//! ```json
//! {"event_params": {"event_type_id": 1, "event_type": "track_playback", "user_id": "…",
//!   "platform_token": "web-…", "ipv4": "10.1.2.3", "country": "DE", "track_id": "42",
//!   "previous_track_id": "7", "like_status": 0},
//!  "event_timestamp_ms": {"ts": 1767225600, "ts_ms": 1767225600123}}
//! ```
//!
//! Key names follow the reference README (its DDL and its queries' `JSONExtract*` calls); the
//! mapping onto the lake and the values of what the format lacks are in docs/event-contract.md.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::{DecodeError, Platform, Profile, SimEvent, WireEvent};

/// The session of a reference event: the format has none.
pub const NO_SESSION: Uuid = Uuid::nil();

/// The platform of a reference event whose token does not start with `<platform>-`.
pub const UNKNOWN_PLATFORM: &str = "unknown";

/// One event in the reference format.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReferenceEvent<'a> {
    #[serde(borrow)]
    pub event_params: Params<'a>,
    pub event_timestamp_ms: Times,
}

/// `event_params`: what the event is about.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params<'a> {
    pub event_type_id: u8,
    #[serde(borrow)]
    pub event_type: Cow<'a, str>,
    pub user_id: Uuid,
    #[serde(borrow)]
    pub platform_token: Cow<'a, str>,
    pub ipv4: Ipv4Addr,
    #[serde(borrow)]
    pub country: Cow<'a, str>,
    pub track_id: TextId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_track_id: Option<TextId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlist_id: Option<TextId>,
    /// 1: the track is liked after the event, 0: it is not.
    pub like_status: u8,
}

/// `event_timestamp_ms`: the event time in seconds and in milliseconds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Times {
    pub ts: i64,
    pub ts_ms: i64,
}

/// A track or playlist id written as a JSON string of decimal digits: the reference reads these
/// with `JSONExtractString`. Parsed without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextId(pub i64);

impl Serialize for TextId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TextId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Digits;
        impl Visitor<'_> for Digits {
            type Value = TextId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an id as a string of decimal digits")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TextId, E> {
                let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                match v.parse() {
                    Ok(n) if digits => Ok(TextId(n)),
                    _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_str(Digits)
    }
}

impl<'a> ReferenceEvent<'a> {
    /// A model event and the listener's profile in the reference format.
    pub fn new(profile: &'a Profile, ev: &SimEvent) -> ReferenceEvent<'a> {
        ReferenceEvent {
            event_params: Params {
                event_type_id: ev.event_type.id(),
                event_type: Cow::Borrowed(ev.event_type.name()),
                user_id: profile.user_id,
                platform_token: Cow::Borrowed(&profile.platform_token),
                ipv4: profile.ipv4,
                country: Cow::Borrowed(profile.country),
                track_id: TextId(ev.track_id),
                previous_track_id: ev.previous_track_id.map(TextId),
                playlist_id: ev.playlist_id.map(TextId),
                like_status: u8::from(ev.liked),
            },
            event_timestamp_ms: Times {
                ts: ev.ts_ms.div_euclid(1000),
                ts_ms: ev.ts_ms,
            },
        }
    }

    /// Parses and validates one record value in the reference format into the lake's fields;
    /// `event_id` is the id derived from where the record is ([`DerivedIds`]).
    pub fn decode(bytes: &'a [u8], event_id: Uuid) -> Result<WireEvent<'a>, DecodeError> {
        Self::decode_inner(bytes, event_id).map_err(|e| DecodeError::Reference(Box::new(e)))
    }

    fn decode_inner(bytes: &'a [u8], event_id: Uuid) -> Result<WireEvent<'a>, DecodeError> {
        super::check_size(bytes)?;
        let r: ReferenceEvent<'a> =
            serde_json::from_slice(bytes).map_err(|e| super::json_error(bytes, e))?;
        let (p, t) = (r.event_params, r.event_timestamp_ms);
        if p.like_status > 1 {
            return Err(DecodeError::BadLikeStatus(p.like_status));
        }
        let ev = WireEvent {
            event_id,
            event_type_id: p.event_type_id,
            event_type: p.event_type,
            user_id: p.user_id,
            session_id: NO_SESSION,
            platform: Cow::Borrowed(platform_of(&p.platform_token)),
            platform_token: p.platform_token,
            ipv4: p.ipv4,
            country: p.country,
            track_id: p.track_id.0,
            previous_track_id: p.previous_track_id.map(|i| i.0),
            playlist_id: p.playlist_id.map(|i| i.0),
            liked: p.like_status == 1,
            position_ms: None,
            ts: t.ts,
            ts_ms: t.ts_ms,
        };
        ev.check_fields()?;
        Ok(ev)
    }
}

/// The platform a token names: encore's tokens are `<platform>-<32 hex>`.
pub fn platform_of(token: &str) -> &'static str {
    let prefix = token.split_once('-').map_or("", |(p, _)| p);
    Platform::ALL
        .iter()
        .map(|p| p.name())
        .find(|n| *n == prefix)
        .unwrap_or(UNKNOWN_PLATFORM)
}

/// Event ids for records that carry none (the reference format), derived from where the record
/// is, so that every run over the same topic gives every record the same id and no two records
/// of a topic share one. A UUIDv8 whose hex reads
/// `PPPPPPPP-TTTT-8TTT-VOOO-OOOOOOOOOOOO`: the partition (32 bits), 28 bits of the topic name's
/// FNV-1a hash (stable across builds and platforms, unlike std's hasher), and the offset's low
/// 62 bits (V = the variant bits and the offset's top two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DerivedIds {
    topic_hash: u32,
}

impl DerivedIds {
    pub fn new(topic: &str) -> DerivedIds {
        let hash = topic.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        DerivedIds {
            topic_hash: hash & 0x0fff_ffff,
        }
    }

    /// The id of the record at `offset` of `partition`. Offsets are below 2^62 in any Kafka
    /// that exists (4.6·10^18).
    pub fn event_id(&self, partition: i32, offset: i64) -> Uuid {
        let h = u128::from(self.topic_hash);
        let bits = u128::from(partition as u32) << 96
            | (h >> 12) << 80
            | (h & 0xfff) << 64
            | u128::from(offset as u64 & ((1 << 62) - 1));
        uuid::Builder::from_custom_bytes(bits.to_be_bytes()).into_uuid()
    }
}

#[cfg(test)]
mod tests;

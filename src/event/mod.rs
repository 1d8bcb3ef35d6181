//! The `music_events` contract: event types, listener profiles, and the JSON wire forms.
//!
//! One flat JSON object per event, UTF-8, keyed by user id on the topic; the sink also reads the
//! reference pipeline's nested form ([`reference`]), per record. Every field is documented in
//! docs/event-contract.md; this module is the single definition.

mod encoder;
mod error;
pub mod fast;
pub mod reference;
mod write;

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use encoder::EventEncoder;
pub use error::{DecodeError, MAX_RECORD_BYTES};
use error::{check_size, json_error};
pub use fast::FlatEvent;
pub use reference::{DerivedIds, ReferenceEvent};

/// The eight event types, with the reference pipeline's ids and names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventType {
    TrackPlayback = 1,
    PauseTrack = 2,
    ResumeTrack = 3,
    SkippingTrackNext = 4,
    SkippingTrackPrev = 5,
    AddingTrackToPlaylist = 6,
    TrackLike = 7,
    TrackUnlike = 8,
}

/// Number of event types; arrays indexed by [`EventType::index`] have this length.
pub const EVENT_TYPES: usize = 8;

impl EventType {
    pub const ALL: [EventType; EVENT_TYPES] = [
        EventType::TrackPlayback,
        EventType::PauseTrack,
        EventType::ResumeTrack,
        EventType::SkippingTrackNext,
        EventType::SkippingTrackPrev,
        EventType::AddingTrackToPlaylist,
        EventType::TrackLike,
        EventType::TrackUnlike,
    ];

    /// The reference id (1..=8).
    pub fn id(self) -> u8 {
        self as u8
    }

    /// Position in [`EventType::ALL`] (id - 1).
    pub fn index(self) -> usize {
        self as usize - 1
    }

    pub fn name(self) -> &'static str {
        match self {
            EventType::TrackPlayback => "track_playback",
            EventType::PauseTrack => "pause_track",
            EventType::ResumeTrack => "resume_track",
            EventType::SkippingTrackNext => "skipping_track_next",
            EventType::SkippingTrackPrev => "skipping_track_prev",
            EventType::AddingTrackToPlaylist => "adding_track_to_playlist",
            EventType::TrackLike => "track_like",
            EventType::TrackUnlike => "track_unlike",
        }
    }

    pub fn from_id(id: u8) -> Option<EventType> {
        EventType::ALL.get((id as usize).wrapping_sub(1)).copied()
    }

    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The reference weights of the event mix, in [`EventType::ALL`] order.
pub const DEFAULT_WEIGHTS: [f64; EVENT_TYPES] = [0.35, 0.15, 0.13, 0.12, 0.07, 0.08, 0.06, 0.04];

/// Why eight weights are not an event mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWeights {
    #[error("weights must be finite and non-negative")]
    NotFinite,
    #[error("weights must not all be zero")]
    AllZero,
}

/// A validated, normalised event mix (sums to 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights([f64; EVENT_TYPES]);

impl Default for Weights {
    fn default() -> Self {
        Weights(DEFAULT_WEIGHTS)
    }
}

impl Weights {
    /// Validates eight non-negative finite weights with a positive sum and normalises them.
    pub fn new(raw: [f64; EVENT_TYPES]) -> Result<Weights, InvalidWeights> {
        if raw.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Err(InvalidWeights::NotFinite);
        }
        let sum: f64 = raw.iter().sum();
        if sum <= 0.0 {
            return Err(InvalidWeights::AllZero);
        }
        Ok(Weights(raw.map(|w| w / sum)))
    }

    pub fn as_array(&self) -> &[f64; EVENT_TYPES] {
        &self.0
    }

    pub fn get(&self, t: EventType) -> f64 {
        self.0[t.index()]
    }
}

impl std::str::FromStr for Weights {
    type Err = String;

    /// Parses `w1,w2,…,w8` in event-type-id order.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.len() != EVENT_TYPES {
            return Err(format!(
                "expected {EVENT_TYPES} comma-separated weights (one per event type id 1..8), got {}",
                parts.len()
            ));
        }
        let mut raw = [0.0; EVENT_TYPES];
        for (slot, part) in raw.iter_mut().zip(&parts) {
            *slot = part
                .parse::<f64>()
                .map_err(|_| format!("`{part}` is not a number"))?;
        }
        Weights::new(raw).map_err(|e| e.to_string())
    }
}

/// The client a listener uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Android,
    Ios,
    Web,
    Desktop,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::Android,
        Platform::Ios,
        Platform::Web,
        Platform::Desktop,
    ];

    /// Position in [`Platform::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Platform::Android => "android",
            Platform::Ios => "ios",
            Platform::Web => "web",
            Platform::Desktop => "desktop",
        }
    }
}

/// A listener's stable identity: drawn once from the listener's seed, never changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub user_id: Uuid,
    pub platform: Platform,
    /// Opaque client token, `<platform>-<32 hex digits>`, as the reference's platform token.
    pub platform_token: String,
    pub ipv4: Ipv4Addr,
    /// ISO 3166-1 alpha-2.
    pub country: &'static str,
    /// The listener's own playlists (ids used by adding_track_to_playlist).
    pub playlists: Vec<i64>,
}

/// What the behaviour model emits: everything about an event except the listener's profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimEvent {
    pub event_id: Uuid,
    pub event_type: EventType,
    pub session_id: Uuid,
    /// Event time, ms since the Unix epoch (simulated clock).
    pub ts_ms: i64,
    pub track_id: i64,
    pub previous_track_id: Option<i64>,
    pub playlist_id: Option<i64>,
    /// Like status of `track_id` after this event.
    pub liked: bool,
    /// Playback position in `track_id` when the event happened; absent when the track is not
    /// the one loaded in the player (unliking an older track).
    pub position_ms: Option<i64>,
}

/// The JSON layout of events on the topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WireFormat {
    /// encore's flat object ([`WireEvent`]).
    #[default]
    Encore,
    /// The reference pipeline's nested object ([`ReferenceEvent`]).
    Reference,
}

impl WireFormat {
    pub const ALL: [WireFormat; 2] = [WireFormat::Encore, WireFormat::Reference];

    pub fn name(self) -> &'static str {
        match self {
            WireFormat::Encore => "encore",
            WireFormat::Reference => "reference",
        }
    }

    /// The format of a record, told by its first key: only a reference record starts with
    /// `event_params` or `event_timestamp_ms` (encore's has neither key). Reads a few bytes, so
    /// the flat path stays as fast; anything else is read as encore's, whose errors say why.
    pub fn detect(bytes: &[u8]) -> WireFormat {
        let skip_ws = |b: &[u8]| {
            b.iter()
                .position(|c| !c.is_ascii_whitespace())
                .unwrap_or(b.len())
        };
        let rest = &bytes[skip_ws(bytes)..];
        let Some(rest) = rest.strip_prefix(b"{") else {
            return WireFormat::Encore;
        };
        let rest = &rest[skip_ws(rest)..];
        if rest.starts_with(b"\"event_params\"") || rest.starts_with(b"\"event_timestamp_ms\"") {
            WireFormat::Reference
        } else {
            WireFormat::Encore
        }
    }

    /// Appends one model event in this format to `out` (a listener uses its [`EventEncoder`],
    /// which renders its profile once).
    pub fn encode(self, profile: &Profile, ev: &SimEvent, out: &mut Vec<u8>) {
        match self {
            WireFormat::Encore => write::flat(&WireEvent::new(profile, ev), out),
            WireFormat::Reference => serde_json::to_writer(out, &ReferenceEvent::new(profile, ev))
                .expect("events serialise infallibly into memory"),
        }
    }
}

impl std::str::FromStr for WireFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WireFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format `{s}` (known: encore, reference)"))
    }
}

/// Decodes a record of either format ([`WireFormat::detect`]); a reference record gets the id
/// `ids` derives from its partition and offset.
pub fn decode_record<'a>(
    bytes: &'a [u8],
    ids: &DerivedIds,
    partition: i32,
    offset: i64,
) -> Result<WireEvent<'a>, DecodeError> {
    decode_any(bytes, ids, partition, offset).map(Decoded::into_wire)
}

/// A decoded record: borrowed straight from the bytes when the fast decoder read it.
#[derive(Debug)]
pub enum Decoded<'a> {
    Flat(FlatEvent<'a>),
    Wire(WireEvent<'a>),
}

impl<'a> Decoded<'a> {
    pub fn ts_ms(&self) -> i64 {
        match self {
            Decoded::Flat(f) => f.ts_ms,
            Decoded::Wire(w) => w.ts_ms,
        }
    }

    pub fn into_wire(self) -> WireEvent<'a> {
        match self {
            Decoded::Flat(f) => f.to_wire(),
            Decoded::Wire(w) => w,
        }
    }
}

/// [`decode_record`] without converting what the fast decoder read (the sink's path): the
/// fast decoder first, serde for whatever it leaves (the other format, unusual JSON, errors).
pub fn decode_any<'a>(
    bytes: &'a [u8],
    ids: &DerivedIds,
    partition: i32,
    offset: i64,
) -> Result<Decoded<'a>, DecodeError> {
    match fast::decode(bytes) {
        Some(f) => Ok(Decoded::Flat(f)),
        None => decode_slow(bytes, ids, partition, offset).map(Decoded::Wire),
    }
}

/// A record the fast decoder left, by serde: the reference format, unusual JSON, rejections.
pub fn decode_slow<'a>(
    bytes: &'a [u8],
    ids: &DerivedIds,
    partition: i32,
    offset: i64,
) -> Result<WireEvent<'a>, DecodeError> {
    match WireFormat::detect(bytes) {
        WireFormat::Encore => WireEvent::decode_serde(bytes),
        WireFormat::Reference => ReferenceEvent::decode(bytes, ids.event_id(partition, offset)),
    }
}

/// The JSON wire form of one event. Borrowed on decode so that parsing allocates nothing for
/// well-formed input.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WireEvent<'a> {
    pub event_id: Uuid,
    pub event_type_id: u8,
    #[serde(borrow)]
    pub event_type: Cow<'a, str>,
    pub user_id: Uuid,
    pub session_id: Uuid,
    #[serde(borrow)]
    pub platform: Cow<'a, str>,
    #[serde(borrow)]
    pub platform_token: Cow<'a, str>,
    pub ipv4: Ipv4Addr,
    #[serde(borrow)]
    pub country: Cow<'a, str>,
    pub track_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_track_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlist_id: Option<i64>,
    pub liked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_ms: Option<i64>,
    /// Event time in whole seconds (the reference's `ts`).
    pub ts: i64,
    /// Event time in milliseconds.
    pub ts_ms: i64,
}

/// Latest event time accepted (9999-12-31T23:59:59.999Z): beyond it no date partition exists.
const MAX_TS_MS: i64 = 253_402_300_799_999;

impl<'a> WireEvent<'a> {
    /// Combines a model event with the listener's profile.
    pub fn new(profile: &'a Profile, ev: &SimEvent) -> WireEvent<'a> {
        WireEvent {
            event_id: ev.event_id,
            event_type_id: ev.event_type.id(),
            event_type: Cow::Borrowed(ev.event_type.name()),
            user_id: profile.user_id,
            session_id: ev.session_id,
            platform: Cow::Borrowed(profile.platform.name()),
            platform_token: Cow::Borrowed(&profile.platform_token),
            ipv4: profile.ipv4,
            country: Cow::Borrowed(profile.country),
            track_id: ev.track_id,
            previous_track_id: ev.previous_track_id,
            playlist_id: ev.playlist_id,
            liked: ev.liked,
            position_ms: ev.position_ms,
            ts: ev.ts_ms.div_euclid(1000),
            ts_ms: ev.ts_ms,
        }
    }

    /// Appends the JSON form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        write::flat(self, out);
    }

    /// Parses and validates one record value in encore's format.
    pub fn decode(bytes: &'a [u8]) -> Result<WireEvent<'a>, DecodeError> {
        match fast::decode(bytes) {
            Some(f) => Ok(f.to_wire()),
            None => Self::decode_serde(bytes),
        }
    }

    /// [`WireEvent::decode`] by serde alone: the reference for every verdict and rejection
    /// reason; the fast decoder defers to it for anything it does not accept itself.
    pub fn decode_serde(bytes: &'a [u8]) -> Result<WireEvent<'a>, DecodeError> {
        check_size(bytes)?;
        let ev: WireEvent<'a> = serde_json::from_slice(bytes).map_err(|e| json_error(bytes, e))?;
        ev.check_fields()?;
        if !Platform::ALL.iter().any(|p| p.name() == ev.platform) {
            return Err(DecodeError::UnknownPlatform(ev.platform.into_owned()));
        }
        Ok(ev)
    }

    /// The checks both formats share: type id and name agree, the country is a code, the
    /// times are in range and agree.
    fn check_fields(&self) -> Result<(), DecodeError> {
        let t = EventType::from_id(self.event_type_id)
            .ok_or(DecodeError::UnknownTypeId(self.event_type_id))?;
        if t.name() != self.event_type {
            return Err(DecodeError::TypeMismatch {
                id: self.event_type_id,
                name: self.event_type.to_string(),
            });
        }
        // Two uppercase letters: also bounds the lake's dictionary for this column.
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(DecodeError::BadCountry(self.country.to_string()));
        }
        if !(0..=MAX_TS_MS).contains(&self.ts_ms) {
            return Err(DecodeError::TimeOutOfRange(self.ts_ms));
        }
        if self.ts != self.ts_ms.div_euclid(1000) {
            return Err(DecodeError::TimeMismatch {
                ts: self.ts,
                ts_ms: self.ts_ms,
            });
        }
        Ok(())
    }

    pub fn event_type(&self) -> EventType {
        // decode() validated the id.
        EventType::from_id(self.event_type_id).expect("validated by decode")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            user_id: Uuid::from_u128(7),
            platform: Platform::Ios,
            platform_token: "ios-00".into(),
            ipv4: Ipv4Addr::new(10, 1, 2, 3),
            country: "DE",
            playlists: vec![1],
        }
    }

    fn event() -> SimEvent {
        SimEvent {
            event_id: Uuid::from_u128(1),
            event_type: EventType::TrackLike,
            session_id: Uuid::from_u128(2),
            ts_ms: 1_700_000_000_123,
            track_id: 42,
            previous_track_id: None,
            playlist_id: None,
            liked: true,
            position_ms: Some(1500),
        }
    }

    #[test]
    fn ids_and_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::from_id(t.id()), Some(t));
            assert_eq!(EventType::from_name(t.name()), Some(t));
        }
        assert_eq!(EventType::from_id(0), None);
        assert_eq!(EventType::from_id(9), None);
        assert_eq!(EventType::TrackPlayback.id(), 1);
        assert_eq!(EventType::TrackUnlike.name(), "track_unlike");
    }

    #[test]
    fn weights_parse_and_normalise() {
        let w: Weights = "1,1,1,1,1,1,1,1".parse().unwrap();
        assert!((w.get(EventType::TrackLike) - 0.125).abs() < 1e-12);
        assert!("1,2".parse::<Weights>().is_err());
        assert!("0,0,0,0,0,0,0,0".parse::<Weights>().is_err());
        assert!("1,1,1,1,1,1,1,-1".parse::<Weights>().is_err());
        assert!("1,1,1,1,1,1,1,x".parse::<Weights>().is_err());
    }

    #[test]
    fn wire_round_trip_and_absent_optionals() {
        let p = profile();
        let mut buf = Vec::new();
        WireEvent::new(&p, &event()).encode_into(&mut buf);
        let text = std::str::from_utf8(&buf).unwrap();
        assert!(text.contains("\"event_type\":\"track_like\""));
        assert!(text.contains("\"ts\":1700000000,"));
        assert!(!text.contains("playlist_id"));
        let back = WireEvent::decode(&buf).unwrap();
        assert_eq!(back, WireEvent::new(&p, &event()));
    }

    #[test]
    fn decode_rejects_inconsistent_records() {
        let p = profile();
        let mut buf = Vec::new();
        WireEvent::new(&p, &event()).encode_into(&mut buf);
        let text = String::from_utf8(buf).unwrap();
        let bad_name = text.replace("track_like", "track_unlike");
        assert!(matches!(
            WireEvent::decode(bad_name.as_bytes()),
            Err(DecodeError::TypeMismatch { .. })
        ));
        let bad_id = text.replace("\"event_type_id\":7", "\"event_type_id\":9");
        assert!(matches!(
            WireEvent::decode(bad_id.as_bytes()),
            Err(DecodeError::UnknownTypeId(9))
        ));
        let bad_country = text.replace("\"DE\"", "\"Germany\"");
        assert!(matches!(
            WireEvent::decode(bad_country.as_bytes()),
            Err(DecodeError::BadCountry(_))
        ));
        let bad_platform = text.replace("\"ios\"", "\"palm\"");
        assert!(matches!(
            WireEvent::decode(bad_platform.as_bytes()),
            Err(DecodeError::UnknownPlatform(_))
        ));
        let bad_time = text
            .replace("\"ts\":1700000000,", "\"ts\":-1,")
            .replace("\"ts_ms\":1700000000123", "\"ts_ms\":-1");
        assert!(matches!(
            WireEvent::decode(bad_time.as_bytes()),
            Err(DecodeError::TimeOutOfRange(-1))
        ));
        assert!(WireEvent::decode(b"{}").is_err());
        assert!(WireEvent::decode(b"\xff\xfe").is_err());
        let bad_uuid = text.replace("00000000-0000-0000-0000-000000000001", "nope");
        assert!(WireEvent::decode(bad_uuid.as_bytes()).is_err());
    }

    #[test]
    fn rejections_are_classified() {
        let p = profile();
        let mut buf = Vec::new();
        WireEvent::new(&p, &event()).encode_into(&mut buf);
        let text = String::from_utf8(buf).unwrap();
        let kind = |b: &[u8]| WireEvent::decode(b).unwrap_err().kind();
        assert_eq!(kind(b""), "empty");
        assert_eq!(kind(&vec![b' '; MAX_RECORD_BYTES + 1]), "too_large");
        assert_eq!(kind(b"{\"event_id\": \"\xff\"}"), "not_utf8");
        assert_eq!(kind(b"\xff\xfe"), "not_utf8");
        assert_eq!(kind(b"{not json"), "invalid_json");
        assert_eq!(kind(&text.as_bytes()[..text.len() / 2]), "invalid_json");
        assert_eq!(kind(b"{}"), "missing_field");
        let wrong = text.replace("\"event_type_id\":7", "\"event_type_id\":\"seven\"");
        assert_eq!(kind(wrong.as_bytes()), "wrong_type");
        let unknown = text.replace("\"event_type_id\":7", "\"event_type_id\":99");
        assert_eq!(kind(unknown.as_bytes()), "unknown_event_type");
        let mismatch = text.replace("track_like", "pause_track");
        assert_eq!(kind(mismatch.as_bytes()), "type_mismatch");
        let bad_uuid = text.replace("00000000-0000-0000-0000-000000000001", "nope");
        assert_eq!(kind(bad_uuid.as_bytes()), "invalid_value");
    }
}

//! The sink's hot path: a decoder specialised to encore's flat event, reading the record's bytes
//! once, borrowing every string and validating as it goes.
//!
//! It accepts a record only when it can tell that serde (`WireEvent::decode_serde`) would
//! accept it with the same values; anything else (an error of any kind, an escape in a string,
//! an uppercase UUID, a float, a duplicate key…) answers `None`, and the caller decodes the
//! record with serde, which gives the verdict and, for a rejection, its reason. So the fast
//! path changes no outcome and no rejection reason; `tests.rs` checks that differentially.

mod scan;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::net::Ipv4Addr;

use uuid::Uuid;

use super::{EventType, MAX_RECORD_BYTES, MAX_TS_MS, Platform, WireEvent};
use scan::{Cursor, Key};

/// A validated flat event whose strings borrow from the record, in the forms the lake stores:
/// UUIDs and the address are already their canonical text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlatEvent<'a> {
    /// Lowercase hyphenated.
    pub event_id: &'a str,
    pub event_type: EventType,
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub platform: Platform,
    pub platform_token: &'a str,
    /// Canonical dotted quad.
    pub ipv4: &'a str,
    pub ipv4_octets: [u8; 4],
    /// Two uppercase ASCII letters.
    pub country: &'a str,
    pub track_id: i64,
    pub previous_track_id: Option<i64>,
    pub playlist_id: Option<i64>,
    pub liked: bool,
    pub position_ms: Option<i64>,
    pub ts: i64,
    pub ts_ms: i64,
}

impl<'a> FlatEvent<'a> {
    /// The same event as serde would have decoded it.
    pub fn to_wire(&self) -> WireEvent<'a> {
        let uuid = |s: &str| Uuid::try_parse(s).expect("validated as a hyphenated UUID");
        WireEvent {
            event_id: uuid(self.event_id),
            event_type_id: self.event_type.id(),
            event_type: Cow::Borrowed(self.event_type.name()),
            user_id: uuid(self.user_id),
            session_id: uuid(self.session_id),
            platform: Cow::Borrowed(self.platform.name()),
            platform_token: Cow::Borrowed(self.platform_token),
            ipv4: Ipv4Addr::from(self.ipv4_octets),
            country: Cow::Borrowed(self.country),
            track_id: self.track_id,
            previous_track_id: self.previous_track_id,
            playlist_id: self.playlist_id,
            liked: self.liked,
            position_ms: self.position_ms,
            ts: self.ts,
            ts_ms: self.ts_ms,
        }
    }
}

/// The keys as the encoder writes them (in its order, with the colon): each field's index here
/// is its number, and its bit in [`Fields::seen`].
const KEYS: [Key; 16] = [
    Key::new(b"\"event_id\":"),
    Key::new(b"\"event_type_id\":"),
    Key::new(b"\"event_type\":"),
    Key::new(b"\"user_id\":"),
    Key::new(b"\"session_id\":"),
    Key::new(b"\"platform\":"),
    Key::new(b"\"platform_token\":"),
    Key::new(b"\"ipv4\":"),
    Key::new(b"\"country\":"),
    Key::new(b"\"track_id\":"),
    Key::new(b"\"previous_track_id\":"),
    Key::new(b"\"playlist_id\":"),
    Key::new(b"\"liked\":"),
    Key::new(b"\"position_ms\":"),
    Key::new(b"\"ts\":"),
    Key::new(b"\"ts_ms\":"),
];

/// Fields with `#[serde(default)]`: previous_track_id, playlist_id, position_ms.
const OPTIONAL: u16 = 1 << 10 | 1 << 11 | 1 << 13;

/// The fields read so far (raw where the check needs another field).
#[derive(Default)]
struct Fields<'a> {
    seen: u16,
    event_id: &'a str,
    event_type_id: i64,
    event_type: &'a [u8],
    user_id: &'a str,
    session_id: &'a str,
    platform: &'a [u8],
    platform_token: &'a str,
    ipv4: (&'a str, [u8; 4]),
    country: &'a str,
    track_id: i64,
    previous_track_id: Option<i64>,
    playlist_id: Option<i64>,
    liked: bool,
    position_ms: Option<i64>,
    ts: i64,
    ts_ms: i64,
}

/// Decodes and validates a flat record, or `None` when serde must decide (see the module doc).
pub fn decode(bytes: &[u8]) -> Option<FlatEvent<'_>> {
    if bytes.len() > MAX_RECORD_BYTES {
        return None;
    }
    let mut c = Cursor::new(bytes);
    let mut f = Fields::default();
    c.eat(b'{')?;
    let mut next = 0;
    loop {
        let field = match c.expect_key(&KEYS, next) {
            Some(field) => field,
            None => field_of(c.key()?)?,
        };
        f.read(field, &mut c)?;
        next = field + 1;
        if !c.comma_or_end()? {
            break;
        }
    }
    if !c.at_end() {
        return None;
    }
    f.validate()
}

/// The number of a key read the long way (any spacing, any order).
fn field_of(key: &[u8]) -> Option<usize> {
    KEYS.iter().position(|k| k.name() == key)
}

impl<'a> Fields<'a> {
    /// Reads the value of field number `field`; `None` on a duplicate or a value of another
    /// form.
    #[inline]
    fn read(&mut self, field: usize, c: &mut Cursor<'a>) -> Option<()> {
        match field {
            0 => self.event_id = c.uuid()?,              // event_id
            1 => self.event_type_id = c.int()?,          // event_type_id
            2 => self.event_type = c.string()?,          // event_type
            3 => self.user_id = c.uuid()?,               // user_id
            4 => self.session_id = c.uuid()?,            // session_id
            5 => self.platform = c.string()?,            // platform
            6 => self.platform_token = c.str()?,         // platform_token
            7 => self.ipv4 = c.ipv4()?,                  // ipv4
            8 => self.country = c.str()?,                // country
            9 => self.track_id = c.int()?,               // track_id
            10 => self.previous_track_id = c.opt_int()?, // previous_track_id
            11 => self.playlist_id = c.opt_int()?,       // playlist_id
            12 => self.liked = c.bool()?,                // liked
            13 => self.position_ms = c.opt_int()?,       // position_ms
            14 => self.ts = c.int()?,                    // ts
            15 => self.ts_ms = c.int()?,                 // ts_ms
            _ => return None,
        }
        let bit = 1 << field;
        if self.seen & bit != 0 {
            return None;
        }
        self.seen |= bit;
        Some(())
    }

    /// The checks of `WireEvent::decode`, all of them: any failure leaves the verdict to serde.
    fn validate(self) -> Option<FlatEvent<'a>> {
        if self.seen | OPTIONAL != u16::MAX {
            return None;
        }
        let event_type = EventType::from_id(u8::try_from(self.event_type_id).ok()?)?;
        if event_type.name().as_bytes() != self.event_type {
            return None;
        }
        let platform = Platform::ALL
            .into_iter()
            .find(|p| p.name().as_bytes() == self.platform)?;
        let country = match self.country.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => self.country,
            _ => return None,
        };
        if !(0..=MAX_TS_MS).contains(&self.ts_ms) || self.ts != self.ts_ms.div_euclid(1000) {
            return None;
        }
        Some(FlatEvent {
            event_id: self.event_id,
            event_type,
            user_id: self.user_id,
            session_id: self.session_id,
            platform,
            platform_token: self.platform_token,
            ipv4: self.ipv4.0,
            ipv4_octets: self.ipv4.1,
            country,
            track_id: self.track_id,
            previous_track_id: self.previous_track_id,
            playlist_id: self.playlist_id,
            liked: self.liked,
            position_ms: self.position_ms,
            ts: self.ts,
            ts_ms: self.ts_ms,
        })
    }
}

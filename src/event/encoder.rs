//! A listener's record encoder. In encore's format, the parts of a record that never change for
//! a listener (its profile, and the name of each event type) are rendered once, so that each
//! event writes only its own fields: the same bytes as
//! [`WireEvent::encode_into`](super::WireEvent::encode_into), in about half
//! the pieces (`tests` compares the two).

use std::sync::OnceLock;

use super::write;
use super::{EVENT_TYPES, EventType, Profile, SimEvent, WireFormat};

/// Encodes one listener's events in one [`WireFormat`].
pub struct EventEncoder {
    flat: Option<Fragments>,
}

/// The listener's constant text, keys included, around the event's own fields.
struct Fragments {
    /// `"<user_id>","session_id":`
    user: Box<[u8]>,
    /// `,"platform":…,"platform_token":…,"ipv4":…,"country":…,"track_id":`
    profile: Box<[u8]>,
}

impl EventEncoder {
    pub fn new(format: WireFormat, profile: &Profile) -> EventEncoder {
        let flat = (format == WireFormat::Encore).then(|| {
            let mut user = Vec::new();
            write::user(&mut user, &profile.user_id);
            let mut rest = Vec::new();
            write::profile(
                &mut rest,
                profile.platform.name(),
                &profile.platform_token,
                profile.ipv4,
                profile.country,
            );
            Fragments {
                user: user.into(),
                profile: rest.into(),
            }
        });
        EventEncoder { flat }
    }

    /// Appends `ev` of the listener with `profile` (the one this encoder was made for), in
    /// the order of `write::flat`.
    pub fn encode(&self, profile: &Profile, ev: &SimEvent, out: &mut Vec<u8>) {
        let Some(f) = &self.flat else {
            return WireFormat::Reference.encode(profile, ev, out);
        };
        out.extend_from_slice(b"{\"event_id\":");
        write::uuid(out, &ev.event_id);
        out.extend_from_slice(&type_fragments()[ev.event_type.index()]);
        out.extend_from_slice(&f.user);
        write::uuid(out, &ev.session_id);
        out.extend_from_slice(&f.profile);
        write::int(out, ev.track_id);
        write::tail(
            out,
            ev.previous_track_id,
            ev.playlist_id,
            ev.liked,
            ev.position_ms,
            (ev.ts_ms.div_euclid(1000), ev.ts_ms),
        );
    }
}

/// Per event type: `,"event_type_id":N,"event_type":"<name>","user_id":`.
fn type_fragments() -> &'static [Box<[u8]>; EVENT_TYPES] {
    static TYPES: OnceLock<[Box<[u8]>; EVENT_TYPES]> = OnceLock::new();
    TYPES.get_or_init(|| {
        EventType::ALL.map(|t| {
            let mut v = Vec::new();
            write::event_type(&mut v, t.id(), t.name());
            v.into()
        })
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use super::*;
    use crate::event::{Platform, ReferenceEvent, WireEvent};
    use crate::sim::{BehaviourConfig, Catalog, Listener};

    #[test]
    fn writes_what_the_wire_event_writes() {
        let cat = Arc::new(Catalog::new(1000, 1).unwrap());
        let cfg = BehaviourConfig::default();
        let mut ls: Vec<Listener> = (0..20)
            .map(|i| Listener::new(i, 5, 1_767_225_600_000, &cfg, cat.clone()))
            .collect();
        let encoders: Vec<_> = ls
            .iter()
            .map(|l| EventEncoder::new(WireFormat::Encore, l.profile()))
            .collect();
        let mut seen = [false; EVENT_TYPES];
        for i in 0..5000 {
            let l = &mut ls[i % 20];
            let ev = l.next_event();
            seen[ev.event_type.index()] = true;
            let mut ours = Vec::new();
            encoders[i % 20].encode(l.profile(), &ev, &mut ours);
            let wire = WireEvent::new(l.profile(), &ev);
            let mut theirs = Vec::new();
            wire.encode_into(&mut theirs);
            assert_eq!(ours, theirs);
            assert_eq!(ours, serde_json::to_vec(&wire).unwrap());
        }
        assert!(
            seen.iter().all(|s| *s),
            "every event type written: {seen:?}"
        );
    }

    #[test]
    fn escapes_a_profile_and_writes_extreme_numbers_as_serde_json() {
        let profile = Profile {
            user_id: uuid::Uuid::from_u128(u128::MAX),
            platform: Platform::ALL[0],
            platform_token: "quote\"back\\slash\u{1}caf\u{e9}".into(),
            ipv4: Ipv4Addr::new(0, 9, 10, 255),
            country: "BR",
            playlists: vec![],
        };
        for (ts_ms, n) in [
            (-1, i64::MIN),
            (0, 0),
            (999, 9),
            (i64::MAX, i64::MAX),
            (-1001, -10),
        ] {
            let ev = SimEvent {
                event_id: uuid::Uuid::nil(),
                event_type: EventType::TrackUnlike,
                session_id: uuid::Uuid::from_u128(7),
                ts_ms,
                track_id: n,
                previous_track_id: Some(n),
                playlist_id: None,
                liked: n % 2 == 0,
                position_ms: Some(-n.saturating_abs()),
            };
            let mut ours = Vec::new();
            EventEncoder::new(WireFormat::Encore, &profile).encode(&profile, &ev, &mut ours);
            let wire = WireEvent::new(&profile, &ev);
            assert_eq!(ours, serde_json::to_vec(&wire).unwrap());
        }
    }

    #[test]
    fn writes_the_reference_format_through_serde() {
        let cat = Arc::new(Catalog::new(100, 1).unwrap());
        let mut l = Listener::new(3, 1, 0, &BehaviourConfig::default(), cat);
        let enc = EventEncoder::new(WireFormat::Reference, l.profile());
        let ev = l.next_event();
        let mut ours = Vec::new();
        enc.encode(l.profile(), &ev, &mut ours);
        let theirs = serde_json::to_vec(&ReferenceEvent::new(l.profile(), &ev)).unwrap();
        assert_eq!(ours, theirs);
    }
}

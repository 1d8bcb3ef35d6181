//! The flat event's JSON, written by hand: the listener's hot path. Byte for byte what serde_json
//! writes for the derived `Serialize` (same field order, optionals skipped when absent, same
//! integer and UUID forms); a string that needs escaping is handed to serde_json itself, so
//! the escaping is serde_json's too. `tests` compares the two.

use std::io::{self, Write};
use std::net::Ipv4Addr;

use uuid::Uuid;

use super::WireEvent;

/// Writes `ev` as serde_json would.
pub(super) fn flat<W: Write>(ev: &WireEvent<'_>, mut w: W) -> io::Result<()> {
    let w = &mut w;
    w.write_all(b"{\"event_id\":")?;
    uuid(w, &ev.event_id)?;
    w.write_all(b",\"event_type_id\":")?;
    int(w, ev.event_type_id)?;
    w.write_all(b",\"event_type\":")?;
    string(w, &ev.event_type)?;
    w.write_all(b",\"user_id\":")?;
    uuid(w, &ev.user_id)?;
    w.write_all(b",\"session_id\":")?;
    uuid(w, &ev.session_id)?;
    w.write_all(b",\"platform\":")?;
    string(w, &ev.platform)?;
    w.write_all(b",\"platform_token\":")?;
    string(w, &ev.platform_token)?;
    w.write_all(b",\"ipv4\":")?;
    ipv4(w, ev.ipv4)?;
    w.write_all(b",\"country\":")?;
    string(w, &ev.country)?;
    w.write_all(b",\"track_id\":")?;
    int(w, ev.track_id)?;
    opt(w, b",\"previous_track_id\":", ev.previous_track_id)?;
    opt(w, b",\"playlist_id\":", ev.playlist_id)?;
    w.write_all(if ev.liked {
        b",\"liked\":true"
    } else {
        b",\"liked\":false"
    })?;
    opt(w, b",\"position_ms\":", ev.position_ms)?;
    w.write_all(b",\"ts\":")?;
    int(w, ev.ts)?;
    w.write_all(b",\"ts_ms\":")?;
    int(w, ev.ts_ms)?;
    w.write_all(b"}")
}

fn int<W: Write>(w: &mut W, v: impl itoa::Integer) -> io::Result<()> {
    w.write_all(itoa::Buffer::new().format(v).as_bytes())
}

/// An optional field: skipped when absent (`skip_serializing_if = "Option::is_none"`).
fn opt<W: Write>(w: &mut W, key: &[u8], v: Option<i64>) -> io::Result<()> {
    match v {
        Some(v) => {
            w.write_all(key)?;
            int(w, v)
        }
        None => Ok(()),
    }
}

/// uuid's `Serialize`: the lowercase hyphenated form.
fn uuid<W: Write>(w: &mut W, id: &Uuid) -> io::Result<()> {
    let mut buf = [0u8; 38];
    buf[0] = b'"';
    id.hyphenated().encode_lower(&mut buf[1..37]);
    buf[37] = b'"';
    w.write_all(&buf)
}

/// std's `Serialize` for an address: its Display form, as a string.
fn ipv4<W: Write>(w: &mut W, ip: Ipv4Addr) -> io::Result<()> {
    let [a, b, c, d] = ip.octets();
    w.write_all(b"\"")?;
    int(w, a)?;
    for o in [b, c, d] {
        w.write_all(b".")?;
        int(w, o)?;
    }
    w.write_all(b"\"")
}

/// A JSON string: copied when nothing in it needs escaping (serde_json escapes exactly `"`,
/// `\` and control characters), else written by serde_json.
fn string<W: Write>(w: &mut W, s: &str) -> io::Result<()> {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return serde_json::to_writer(w, s).map_err(io::Error::other);
    }
    w.write_all(b"\"")?;
    w.write_all(s.as_bytes())?;
    w.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn event(token: &str, with_optionals: bool) -> WireEvent<'_> {
        let opt = |v: i64| with_optionals.then_some(v);
        WireEvent {
            event_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            event_type_id: 6,
            event_type: Cow::Borrowed("adding_track_to_playlist"),
            user_id: Uuid::from_u128(u128::MAX),
            session_id: Uuid::nil(),
            platform: Cow::Borrowed("desktop"),
            platform_token: Cow::Borrowed(token),
            ipv4: Ipv4Addr::new(255, 0, 10, 100),
            country: Cow::Borrowed("BR"),
            track_id: i64::MIN,
            previous_track_id: opt(0),
            playlist_id: opt(-7),
            liked: !with_optionals,
            position_ms: opt(i64::MAX),
            ts: 1_767_225_600,
            ts_ms: 1_767_225_600_999,
        }
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let tokens = [
            "desktop-0123456789abcdef0123456789abcdef",
            "",
            "quote\"back\\slash/",
            "ctl\u{0}\u{1f}\n\r\t\u{8}\u{c}\u{7f}",
            "caf\u{e9} \u{1f3b5}",
        ];
        for token in tokens {
            for optionals in [true, false] {
                let ev = event(token, optionals);
                let mut ours = Vec::new();
                ev.encode_into(&mut ours);
                let theirs = serde_json::to_vec(&ev).unwrap();
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(theirs).unwrap()
                );
            }
        }
    }

    #[test]
    fn writes_what_serde_json_writes_for_simulated_events() {
        use crate::sim::{BehaviourConfig, Catalog, Listener};
        let cat = std::sync::Arc::new(Catalog::new(1000, 1).unwrap());
        let cfg = BehaviourConfig::default();
        let mut ls: Vec<Listener> = (0..10)
            .map(|i| Listener::new(i, 3, 1_767_225_600_000, &cfg, cat.clone()))
            .collect();
        let mut ours = Vec::new();
        for i in 0..3000 {
            let l = &mut ls[i % 10];
            let ev = l.next_event();
            let wire = WireEvent::new(l.profile(), &ev);
            ours.clear();
            wire.encode_into(&mut ours);
            assert_eq!(ours, serde_json::to_vec(&wire).unwrap());
            let mut via_format = Vec::new();
            super::super::WireFormat::Encore.encode(l.profile(), &ev, &mut via_format);
            assert_eq!(via_format, ours);
        }
    }
}

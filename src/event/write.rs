//! The flat event's JSON, written by hand: the listener's hot path. Byte for byte what serde_json
//! writes for the derived `Serialize` (same field order, optionals skipped when absent, same
//! integer and UUID forms); a string that needs escaping is handed to serde_json itself, so
//! the escaping is serde_json's too. `tests` compares the two. Everything is written into a
//! `Vec<u8>` directly: through `io::Write`, each of a record's ~35 pieces was a call and a
//! `memcpy` of a few bytes.

use std::net::Ipv4Addr;

use uuid::Uuid;

use super::WireEvent;

/// Appends `ev` as serde_json would. The pieces between the event's own fields are separate
/// functions so that a listener's [`EventEncoder`](super::EventEncoder) renders its constant
/// ones once, from the same definitions.
pub(super) fn flat(ev: &WireEvent<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"event_id\":");
    uuid(out, &ev.event_id);
    event_type(out, ev.event_type_id, &ev.event_type);
    user(out, &ev.user_id);
    uuid(out, &ev.session_id);
    profile(out, &ev.platform, &ev.platform_token, ev.ipv4, &ev.country);
    int(out, ev.track_id);
    tail(
        out,
        ev.previous_track_id,
        ev.playlist_id,
        ev.liked,
        ev.position_ms,
        (ev.ts, ev.ts_ms),
    );
}

/// `,"event_type_id":N,"event_type":"<name>","user_id":`
pub(super) fn event_type(out: &mut Vec<u8>, id: u8, name: &str) {
    out.extend_from_slice(b",\"event_type_id\":");
    int(out, id.into());
    out.extend_from_slice(b",\"event_type\":");
    string(out, name);
    out.extend_from_slice(b",\"user_id\":");
}

/// `"<user_id>","session_id":`
pub(super) fn user(out: &mut Vec<u8>, id: &Uuid) {
    uuid(out, id);
    out.extend_from_slice(b",\"session_id\":");
}

/// `,"platform":…,"platform_token":…,"ipv4":…,"country":…,"track_id":`
pub(super) fn profile(out: &mut Vec<u8>, platform: &str, token: &str, ip: Ipv4Addr, country: &str) {
    out.extend_from_slice(b",\"platform\":");
    string(out, platform);
    out.extend_from_slice(b",\"platform_token\":");
    string(out, token);
    out.extend_from_slice(b",\"ipv4\":");
    ipv4(out, ip);
    out.extend_from_slice(b",\"country\":");
    string(out, country);
    out.extend_from_slice(b",\"track_id\":");
}

/// The fields after `track_id`, from `previous_track_id` to the closing brace.
pub(super) fn tail(
    out: &mut Vec<u8>,
    previous_track_id: Option<i64>,
    playlist_id: Option<i64>,
    liked: bool,
    position_ms: Option<i64>,
    (ts, ts_ms): (i64, i64),
) {
    opt(out, b",\"previous_track_id\":", previous_track_id);
    opt(out, b",\"playlist_id\":", playlist_id);
    out.extend_from_slice(if liked {
        b",\"liked\":true"
    } else {
        b",\"liked\":false"
    });
    opt(out, b",\"position_ms\":", position_ms);
    out.extend_from_slice(b",\"ts\":");
    int(out, ts);
    out.extend_from_slice(b",\"ts_ms\":");
    int(out, ts_ms);
    out.push(b'}');
}

/// "00" to "99": two digits per division.
const PAIRS: [u8; 200] = {
    let mut p = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        p[2 * i] = b'0' + (i / 10) as u8;
        p[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    p
};

/// An integer in decimal, as itoa (and so serde_json) writes it. Twenty bytes are appended
/// (a fixed-size store, no call), the digits written over them in place, the rest cut off.
/// (Formatting into a local array and appending that stalled on reading back the digits
/// just stored.)
pub(super) fn int(out: &mut Vec<u8>, v: i64) {
    // "-9223372036854775808" is the longest: 20 bytes.
    const MAX: usize = 20;
    let mut u = v.unsigned_abs();
    let len = u.checked_ilog10().map_or(1, |d| d as usize + 1) + usize::from(v < 0);
    let at = out.len();
    out.extend_from_slice(&[b'-'; MAX]);
    let digits = &mut out[at..at + len];
    let mut i = len;
    while u >= 100 {
        let r = (u % 100) as usize * 2;
        u /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[r..r + 2]);
    }
    if u >= 10 {
        let r = u as usize * 2;
        digits[i - 2..i].copy_from_slice(&PAIRS[r..r + 2]);
    } else {
        digits[i - 1] = b'0' + u as u8;
    }
    out.truncate(at + len);
}

/// An optional field: skipped when absent (`skip_serializing_if = "Option::is_none"`).
fn opt(out: &mut Vec<u8>, key: &[u8], v: Option<i64>) {
    if let Some(v) = v {
        out.extend_from_slice(key);
        int(out, v);
    }
}

/// uuid's `Serialize`: the lowercase hyphenated form.
pub(super) fn uuid(out: &mut Vec<u8>, id: &Uuid) {
    let mut buf = [0u8; 38];
    buf[0] = b'"';
    id.hyphenated().encode_lower(&mut buf[1..37]);
    buf[37] = b'"';
    out.extend_from_slice(&buf);
}

/// std's `Serialize` for an address: its Display form, as a string.
fn ipv4(out: &mut Vec<u8>, ip: Ipv4Addr) {
    let [a, b, c, d] = ip.octets();
    out.push(b'"');
    int(out, a.into());
    for o in [b, c, d] {
        out.push(b'.');
        int(out, o.into());
    }
    out.push(b'"');
}

/// A JSON string: copied when nothing in it needs escaping (serde_json escapes exactly `"`,
/// `\` and control characters), else written by serde_json.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        serde_json::to_writer(out, s).expect("a string serialises infallibly into memory");
        return;
    }
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
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
    fn writes_integers_as_itoa_does() {
        let mut values = vec![0, i64::MIN, i64::MAX, i64::MIN + 1];
        for k in 0..19 {
            let p = 10i64.pow(k);
            values.extend([p - 1, p, p + 1, -p + 1, -p, -p - 1, 7 * p, -3 * p]);
        }
        values.extend((-1000..1000).chain((0..64).map(|s| (1u64 << s) as i64)));
        let mut out = b"x".to_vec();
        let mut want = b"x".to_vec();
        for v in values {
            int(&mut out, v);
            want.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            assert_eq!(out, want, "{v}");
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

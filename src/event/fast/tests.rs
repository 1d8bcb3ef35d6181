//! Differential tests: the fast decoder against serde, on the simulator's events and on many
//! mutations of them. Whatever the input, `WireEvent::decode` (fast, then serde) must give what
//! `WireEvent::decode_serde` gives: the same event, or the same rejection kind and detail.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::*;
use crate::event::{DecodeError, Decoded, DerivedIds, WireFormat, decode_any, decode_record};
use crate::lake::schema::{EventBatchBuilder, SourcePos};
use crate::sim::{BehaviourConfig, Catalog, Listener};

/// Valid records from the simulator: every type, both optionals present and absent.
fn simulated(n: usize) -> Vec<Vec<u8>> {
    let cat = Arc::new(Catalog::new(1000, 1).unwrap());
    let cfg = BehaviourConfig::default();
    let mut ls: Vec<Listener> = (0..20)
        .map(|i| Listener::new(i, 7, 1_767_225_600_000, &cfg, cat.clone()))
        .collect();
    (0..n)
        .map(|i| {
            let l = &mut ls[i % 20];
            let ev = l.next_event();
            let mut v = Vec::new();
            WireEvent::new(l.profile(), &ev).encode_into(&mut v);
            v
        })
        .collect()
}

/// Tallies of what the comparisons saw, to show the corpus reaches every path.
#[derive(Debug, Default)]
struct Seen {
    fast: usize,
    slow_ok: usize,
    kinds: std::collections::BTreeMap<&'static str, usize>,
}

fn outcome<'r>(
    r: &'r Result<WireEvent<'r>, DecodeError>,
) -> Result<&'r WireEvent<'r>, (&'static str, String)> {
    r.as_ref().map_err(|e| (e.kind(), e.to_string()))
}

/// The one assertion: both decoders agree on `bytes`.
fn agree(bytes: &[u8], seen: &mut Seen) {
    let slow = WireEvent::decode_serde(bytes);
    let fast = decode(bytes);
    if let Some(f) = &fast {
        let want = slow.as_ref().unwrap_or_else(|e| {
            panic!(
                "fast accepted what serde refuses ({e}): {}",
                String::from_utf8_lossy(bytes)
            )
        });
        assert_eq!(&f.to_wire(), want, "{}", String::from_utf8_lossy(bytes));
        // The text the lake stores is what the Arrow builder writes from serde's values.
        assert_eq!(f.event_id, want.event_id.hyphenated().to_string());
        assert_eq!(f.user_id, want.user_id.hyphenated().to_string());
        assert_eq!(f.session_id, want.session_id.hyphenated().to_string());
        assert_eq!(f.ipv4, want.ipv4.to_string());
        seen.fast += 1;
    }
    let both = WireEvent::decode(bytes);
    assert_eq!(
        outcome(&both),
        outcome(&slow),
        "{}",
        String::from_utf8_lossy(bytes)
    );
    match &slow {
        Ok(_) if fast.is_none() => seen.slow_ok += 1,
        Ok(_) => {}
        Err(e) => *seen.kinds.entry(e.kind()).or_default() += 1,
    }
}

/// Replaces the value of `key` (a plain, unescaped value) with `with`, if the key is there.
fn set(text: &str, key: &str, with: &str) -> Option<String> {
    let k = format!("\"{key}\":");
    let start = text.find(&k)? + k.len();
    let rest = &text[start..];
    let end = if let Some(inner) = rest.strip_prefix('"') {
        inner.find('"')? + 2
    } else {
        rest.find([',', '}'])?
    };
    Some(format!("{}{with}{}", &text[..start], &rest[end..]))
}

/// Values of every kind to put in place of any field's.
const VALUES: &[&str] = &[
    "0",
    "1",
    "7",
    "-1",
    "-0",
    "01",
    "1.0",
    "1e3",
    "1E3",
    "-",
    "+1",
    "255",
    "256",
    "18446744073709551616",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999",
    "253402300799999",
    "253402300800000",
    "null",
    "true",
    "false",
    "[]",
    "{}",
    "\"\"",
    "\"5\"",
    "\"track_like\"",
    "\"ios\"",
    "\"IOS\"",
    "\"unknown\"",
    "\"DE\"",
    "\"de\"",
    "\"DEU\"",
    "\"\\u0044E\"",
    "\"1.2.3.4\"",
    "\"01.2.3.4\"",
    "\"1.2.3\"",
    "\"1.2.3.4.5\"",
    "\"256.1.1.1\"",
    "\"0.0.0.0\"",
    "\"255.255.255.255\"",
    "\"1.2.3.04\"",
    "\" 1.2.3.4\"",
    "\"1..3.4\"",
    "\"00000000-0000-0000-0000-000000000001\"",
    "\"00000000-0000-0000-0000-00000000000A\"",
    "\"A0000000-0000-0000-0000-000000000001\"",
    "\"{00000000-0000-0000-0000-000000000001}\"",
    "\"00000000000000000000000000000001\"",
    "\"urn:uuid:00000000-0000-0000-0000-000000000001\"",
    "\"0000000-00000-0000-0000-000000000001\"",
    "\"00000000-0000-0000-0000-00000000000g\"",
    "\"caf\u{e9}\"",
    "\"caf\\u00e9\"",
    "\"a\\\"b\"",
    "\"a\\/b\"",
    "\"tab\there\"",
    "\"web-\\u0030\"",
    "\"\\ud800\"",
];

const KEYS: [&str; 16] = [
    "event_id",
    "event_type_id",
    "event_type",
    "user_id",
    "session_id",
    "platform",
    "platform_token",
    "ipv4",
    "country",
    "track_id",
    "previous_track_id",
    "playlist_id",
    "liked",
    "position_ms",
    "ts",
    "ts_ms",
];

/// Edits of the record's text: values, keys, layout, escapes, duplicates, trailing bytes.
fn mutations(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in KEYS {
        for v in VALUES {
            out.extend(set(text, key, v));
        }
        // Absent, duplicated, escaped key, unknown key.
        let without = drop_key(text, key);
        out.extend(without.clone());
        if let Some(w) = &without {
            out.push(w.replacen('{', &format!("{{\"{key}\":null,"), 1));
        }
        out.push(text.replacen('}', &format!(",\"{key}\":5}}"), 1));
        let escaped = key.replacen('_', "\\u005f", 1);
        out.push(text.replacen(&format!("\"{key}\""), &format!("\"{escaped}\""), 1));
    }
    out.push(text.replacen('}', ",\"extra\":1}", 1));
    out.push(text.replacen('{', "{\"event_params\":1,", 1));
    // The same event with its own values escaped, upper-cased or swapped.
    out.push(text.replacen("track_", "track\\u005f", 1));
    out.push(text.replacen('-', "\\u002d", 1));
    out.push(text.to_uppercase());
    out.push(swap(text, "track_id", "ts"));
    out.push(swap(text, "event_id", "user_id"));
    out.push(swap(text, "platform", "country"));
    // Layout: whitespace everywhere JSON allows it, and where it does not.
    for ws in [" ", "\n", "\t", "\r", " \n\t\r ", "\u{c}", "\u{a0}"] {
        let spaced = text
            .replace(',', &format!("{ws},{ws}"))
            .replace(':', &format!("{ws}:{ws}"));
        out.push(format!(
            "{ws}{{{ws}{}{ws}}}{ws}",
            &spaced[1..spaced.len() - 1]
        ));
    }
    out.push(pretty_sorted(text));
    // Trailing and leading bytes, truncations.
    for tail in ["x", "}", " ,", "\0", "\u{feff}"] {
        out.push(format!("{text}{tail}"));
        out.push(format!("{tail}{text}"));
    }
    for cut in (0..text.len()).step_by(7) {
        if text.is_char_boundary(cut) {
            out.push(text[..cut].to_string());
        }
    }
    out
}

/// The record without `key` (and its value).
fn drop_key(text: &str, key: &str) -> Option<String> {
    let marked = set(text, key, "@")?;
    let k = format!("\"{key}\":@");
    let at = marked.find(&k)?;
    let after = &marked[at + k.len()..];
    Some(match after.strip_prefix(',') {
        Some(after) => format!("{}{after}", &marked[..at]),
        None => format!("{}{after}", marked[..at].trim_end_matches(',')),
    })
}

/// The values of two keys exchanged.
fn swap(text: &str, a: &str, b: &str) -> String {
    let value = |k: &str| {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        v.get(k).map(|v| v.to_string())
    };
    match (value(a), value(b)) {
        (Some(va), Some(vb)) => set(text, a, "@A")
            .and_then(|t| set(&t, b, "@B"))
            .map(|t| t.replace("@A", &vb).replace("@B", &va))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Pretty-printed with keys sorted (serde_json's map is ordered by key).
fn pretty_sorted(text: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    serde_json::to_string_pretty(&v).unwrap()
}

#[test]
fn the_fast_decoder_agrees_with_serde_on_mutated_records() {
    let mut seen = Seen::default();
    for (i, rec) in simulated(400).iter().enumerate() {
        agree(rec, &mut seen);
        if i % 8 == 0 {
            let text = std::str::from_utf8(rec).unwrap();
            for m in mutations(text) {
                agree(m.as_bytes(), &mut seen);
            }
        }
    }
    eprintln!("mutations: {seen:?}");
    assert!(seen.fast >= 400, "{seen:?}");
    assert!(seen.slow_ok > 1000, "{seen:?}");
    for kind in [
        "invalid_json",
        "missing_field",
        "wrong_type",
        "invalid_value",
        "unknown_event_type",
        "type_mismatch",
        "empty",
    ] {
        assert!(seen.kinds.contains_key(kind), "no {kind}: {seen:?}");
    }
}

#[test]
fn the_fast_decoder_agrees_with_serde_on_random_byte_edits() {
    let mut rng = Pcg64::seed_from_u64(5);
    let mut seen = Seen::default();
    let alphabet = b"{}[]:,\"\\ -0123456789.eE+tnfaul\t\n\x01\xc3\xa9\xff";
    for rec in simulated(300) {
        for _ in 0..40 {
            let mut b = rec.clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..b.len());
                let c = alphabet[rng.random_range(0..alphabet.len())];
                match rng.random_range(0..3) {
                    0 => b[at] = c,
                    1 => b.insert(at, c),
                    _ => {
                        b.remove(at);
                    }
                }
            }
            agree(&b, &mut seen);
        }
    }
    eprintln!("random edits: {seen:?}");
    assert!(seen.fast > 100 && seen.kinds.len() >= 4, "{seen:?}");
}

#[test]
fn sizes_and_encodings_at_the_edges() {
    let mut seen = Seen::default();
    let rec = &simulated(1)[0];
    let mut padded = rec.clone();
    padded.resize(MAX_RECORD_BYTES, b' ');
    agree(&padded, &mut seen);
    padded.push(b' ');
    agree(&padded, &mut seen);
    for b in [
        &b""[..],
        b" ",
        b"{",
        b"[]",
        b"null",
        b"\xff\xfe",
        b"{\"event_id\": \"\xff\"}",
    ] {
        agree(b, &mut seen);
    }
    let text = std::str::from_utf8(rec).unwrap();
    let token = set(text, "platform_token", "\"tok\u{e9}n\"").unwrap();
    agree(token.as_bytes(), &mut seen);
    let mut latin1 = token.into_bytes();
    let at = latin1.windows(2).position(|w| w == "é".as_bytes()).unwrap();
    latin1.remove(at + 1);
    agree(&latin1, &mut seen);
    // The fast path takes only ASCII: the accented token is serde's to accept.
    assert_eq!(
        (seen.fast, seen.kinds["too_large"], seen.kinds["not_utf8"]),
        (1, 1, 3)
    );
}

/// The sink's path: the same verdicts for records of either format, and the same Arrow
/// columns from what the fast decoder read as from serde's values.
#[test]
fn the_sink_builds_the_same_batch_either_way() {
    let ids = DerivedIds::new("music_events");
    let mut recs = simulated(500);
    // Pretty-printed, keys sorted: still the fast path.
    for r in &mut recs[400..] {
        *r = pretty_sorted(std::str::from_utf8(r).unwrap()).into_bytes();
    }
    // An escape in the event id: serde's.
    recs.extend(simulated(200).iter().map(|r| {
        let text = std::str::from_utf8(r).unwrap();
        text.replacen('-', "\\u002d", 1).into_bytes()
    }));
    let (mut fast, mut slow) = (EventBatchBuilder::new(), EventBatchBuilder::new());
    for (i, r) in recs.iter().enumerate() {
        let src = SourcePos {
            partition: 3,
            offset: i as i64,
            timestamp_ms: 9,
        };
        let d = decode_any(r, &ids, 3, i as i64).unwrap();
        assert_eq!(matches!(d, Decoded::Flat(_)), i < 500, "{i}");
        fast.push_decoded(&d, src);
        slow.push(&WireEvent::decode_serde(r).unwrap(), src);
        assert_eq!(decode_record(r, &ids, 3, i as i64).unwrap(), d.into_wire());
    }
    assert_eq!(fast.finish(), slow.finish());
    let mut reference = Vec::new();
    let p = crate::event::Profile {
        user_id: uuid::Uuid::from_u128(1),
        platform: Platform::Web,
        platform_token: "web-1".into(),
        ipv4: Ipv4Addr::new(1, 2, 3, 4),
        country: "SE",
        playlists: vec![],
    };
    let ev = crate::event::SimEvent {
        event_id: uuid::Uuid::from_u128(2),
        event_type: EventType::TrackLike,
        session_id: uuid::Uuid::from_u128(3),
        ts_ms: 1_767_225_600_000,
        track_id: 5,
        previous_track_id: None,
        playlist_id: None,
        liked: true,
        position_ms: None,
    };
    WireFormat::Reference.encode(&p, &ev, &mut reference);
    assert!(decode(&reference).is_none());
    assert!(matches!(
        decode_any(&reference, &ids, 0, 0),
        Ok(Decoded::Wire(_))
    ));
}

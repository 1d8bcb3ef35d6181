use super::*;
use crate::event::{EventType, WireFormat, decode_record};

fn profile() -> Profile {
    Profile {
        user_id: Uuid::from_u128(7),
        platform: Platform::Web,
        platform_token: "web-0123456789abcdef0123456789abcdef".into(),
        ipv4: Ipv4Addr::new(10, 1, 2, 3),
        country: "DE",
        playlists: vec![5],
    }
}

fn event(event_type: EventType) -> SimEvent {
    SimEvent {
        event_id: Uuid::from_u128(1),
        event_type,
        session_id: Uuid::from_u128(2),
        ts_ms: 1_767_225_600_123,
        track_id: 42,
        previous_track_id: Some(41),
        playlist_id: Some(9),
        liked: true,
        position_ms: Some(1500),
    }
}

fn encoded(ev: &SimEvent) -> String {
    let mut buf = Vec::new();
    WireFormat::Reference.encode(&profile(), ev, &mut buf);
    String::from_utf8(buf).unwrap()
}

const ID: Uuid = Uuid::from_u128(99);

#[test]
fn a_simulated_reference_record_maps_every_field() {
    let ev = event(EventType::AddingTrackToPlaylist);
    let text = encoded(&ev);
    assert!(
        text.starts_with(r#"{"event_params":{"event_type_id":6,"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#""track_id":"42","previous_track_id":"41","playlist_id":"9","like_status":1}"#
        ),
        "{text}"
    );
    assert!(
        text.ends_with(r#""event_timestamp_ms":{"ts":1767225600,"ts_ms":1767225600123}}"#),
        "{text}"
    );
    let got = ReferenceEvent::decode(text.as_bytes(), ID).unwrap();
    let p = profile();
    let want = WireEvent {
        event_id: ID,
        session_id: NO_SESSION,
        position_ms: None,
        ..WireEvent::new(&p, &ev)
    };
    assert_eq!(got, want);
    assert_eq!(got.platform, "web");
}

#[test]
fn a_hand_written_record_gets_the_documented_values() {
    let text = r#" { "event_timestamp_ms": {"ts_ms": 1767225600999, "ts": 1767225600},
        "event_params": {"event_type_id": 8, "event_type": "track_unlike",
          "user_id": "0192f0c1-0000-7000-8000-000000000001", "platform_token": "Android 4.1.2",
          "ipv4": "192.0.2.1", "country": "RU", "track_id": "1001", "like_status": 0} }"#;
    assert_eq!(WireFormat::detect(text.as_bytes()), WireFormat::Reference);
    let ev = ReferenceEvent::decode(text.as_bytes(), ID).unwrap();
    assert_eq!(ev.event_type(), EventType::TrackUnlike);
    assert_eq!(ev.platform, UNKNOWN_PLATFORM);
    assert_eq!(ev.platform_token, "Android 4.1.2");
    assert_eq!(
        (ev.track_id, ev.previous_track_id, ev.playlist_id),
        (1001, None, None)
    );
    assert_eq!(
        (ev.liked, ev.position_ms, ev.session_id),
        (false, None, NO_SESSION)
    );
    assert_eq!(
        (ev.ts, ev.ts_ms, ev.event_id),
        (1_767_225_600, 1_767_225_600_999, ID)
    );
}

#[test]
fn invalid_reference_records_are_rejected_with_reasons() {
    let good = encoded(&event(EventType::TrackLike));
    assert!(ReferenceEvent::decode(good.as_bytes(), ID).is_ok());
    let cases: [(&str, &str, &str, &str); 11] = [
        (
            r#""like_status":1"#,
            r#""like_status":1,"liked":true"#,
            "invalid_value",
            "unknown field `liked`",
        ),
        (
            r#""ts_ms":1767225600123}"#,
            r#""ts_ms":1767225600123,"tz":0}"#,
            "invalid_value",
            "unknown field `tz`",
        ),
        (
            r#""event_type":"track_like""#,
            r#""event_type":"track_unlike""#,
            "type_mismatch",
            "does not match",
        ),
        (
            r#""event_type_id":7"#,
            r#""event_type_id":42"#,
            "unknown_event_type",
            "42",
        ),
        (r#""DE""#, r#""Germany""#, "invalid_value", "ISO 3166-1"),
        (
            r#""ts":1767225600,"#,
            r#""ts":1767225601,"#,
            "invalid_value",
            "does not match ts_ms",
        ),
        (
            r#""like_status":1"#,
            r#""like_status":2"#,
            "invalid_value",
            "like_status 2",
        ),
        (
            r#""track_id":"42""#,
            r#""track_id":42"#,
            "wrong_type",
            "string of decimal digits",
        ),
        (
            r#""track_id":"42""#,
            r#""track_id":"4x2""#,
            "invalid_value",
            "string of decimal digits",
        ),
        (
            r#""user_id":"00000000-0000-0000-0000-000000000007","#,
            "",
            "missing_field",
            "missing field `user_id`",
        ),
        (
            r#""event_timestamp_ms":{"ts":1767225600,"ts_ms":1767225600123}"#,
            r#""event_timestamp_ms":{"ts":1767225600}"#,
            "missing_field",
            "ts_ms",
        ),
    ];
    for (from, to, kind, says) in cases {
        let bad = good.replace(from, to);
        assert_ne!(bad, good, "{from} is in the record");
        let e = ReferenceEvent::decode(bad.as_bytes(), ID).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.kind(), kind, "{from} -> {to}: {msg}");
        assert!(
            msg.starts_with("reference format: ") && msg.contains(says),
            "{msg}"
        );
    }
    let kind = |b: &[u8]| ReferenceEvent::decode(b, ID).unwrap_err().kind();
    assert_eq!(kind(b"{\"event_params\": {"), "invalid_json");
    assert_eq!(kind(b""), "empty");
}

#[test]
fn derived_ids_are_deterministic_and_differ_per_place() {
    let ids = DerivedIds::new("music_events");
    let id = ids.event_id(3, 1000);
    assert_eq!(id, DerivedIds::new("music_events").event_id(3, 1000));
    assert_eq!(id.get_version_num(), 8);
    assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
    // The partition and offset can be read off the id.
    let text = id.to_string();
    assert!(text.starts_with("00000003-"), "{text}");
    assert!(text.ends_with("-8000-0000000003e8"), "{text}");
    let others = [
        ids.event_id(3, 1001),
        ids.event_id(4, 1000),
        DerivedIds::new("music_events2").event_id(3, 1000),
        ids.event_id(3, (1 << 62) - 1),
    ];
    for o in others {
        assert_ne!(o, id);
        assert_eq!(o.get_version_num(), 8);
    }
    assert_ne!(DerivedIds::new("a"), DerivedIds::new("b"));
}

#[test]
fn the_format_is_detected_per_record() {
    let flat = {
        let mut b = Vec::new();
        WireFormat::Encore.encode(&profile(), &event(EventType::TrackPlayback), &mut b);
        b
    };
    let nested = encoded(&event(EventType::TrackPlayback));
    assert_eq!(WireFormat::detect(&flat), WireFormat::Encore);
    assert_eq!(WireFormat::detect(nested.as_bytes()), WireFormat::Reference);
    for odd in [
        &b""[..],
        b"{",
        b"not json",
        b"[\"event_params\"]",
        b"{\"event_paramsX\":1}",
    ] {
        assert_eq!(WireFormat::detect(odd), WireFormat::Encore);
    }
    // Each record decodes by its own format; only the reference one gets a derived id.
    let ids = DerivedIds::new("t");
    let a = decode_record(&flat, &ids, 1, 5).unwrap();
    let b = decode_record(nested.as_bytes(), &ids, 1, 6).unwrap();
    assert_eq!(a.event_id, Uuid::from_u128(1));
    assert_eq!(b.event_id, ids.event_id(1, 6));
    assert_eq!((a.track_id, b.track_id), (42, 42));
    assert_eq!("reference".parse(), Ok(WireFormat::Reference));
    assert!("nested".parse::<WireFormat>().is_err());
}

//! Fault injection (`--inject malformed=0.01,duplicate=0.01,late=0.01,oversized=0.0001,late_by=26h`):
//! records that exercise the rest of the pipeline on demand.
//!
//! Per event a listener emits, with the given probabilities and independently:
//! - `malformed`: an extra record that is not a valid event, of a kind drawn from those the sink
//!   rejects (invalid JSON, non-UTF-8, empty, a missing field, a mistyped field, an unknown event
//!   type, a type id that disagrees with the name);
//! - `oversized`: an extra 2 MiB record (the sink rejects it as too large);
//! - `duplicate`: one of the listener's last 8 events sent again, byte for byte (the same event id at a
//!   new offset, as a producer retrying without idempotence would);
//! - `late`: the event itself is stamped `late_by` earlier (default 26 h), so it lands in an
//!   earlier date partition.
//!
//! Deterministic per run seed and listener, like the events themselves.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// Size of an `oversized` record: twice Kafka's default message limit of the sink's reading.
pub const OVERSIZED_BYTES: usize = 2 << 20;

/// Longest `late_by`: later than that is not a late event but a broken clock.
pub const MAX_LATE_BY: Duration = Duration::from_secs(365 * 24 * 3600);

/// What to inject, as probabilities per event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InjectConfig {
    pub malformed: f64,
    pub oversized: f64,
    pub duplicate: f64,
    pub late: f64,
    pub late_by: Duration,
}

impl Default for InjectConfig {
    fn default() -> Self {
        InjectConfig {
            malformed: 0.0,
            oversized: 0.0,
            duplicate: 0.0,
            late: 0.0,
            late_by: Duration::from_secs(26 * 3600),
        }
    }
}

impl InjectConfig {
    pub fn is_active(&self) -> bool {
        self.malformed > 0.0 || self.oversized > 0.0 || self.duplicate > 0.0 || self.late > 0.0
    }
}

impl FromStr for InjectConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut c = InjectConfig::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected name=value"))?;
            let (k, v) = (k.trim(), v.trim());
            if k == "late_by" {
                c.late_by = humantime::parse_duration(v)
                    .map_err(|e| format!("late_by=`{v}`: {e} (e.g. 26h)"))?;
                if c.late_by.is_zero() || c.late_by > MAX_LATE_BY {
                    return Err("late_by must be between 1 ms and 365 days".into());
                }
                continue;
            }
            let p: f64 = v
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=1.0).contains(p))
                .ok_or_else(|| format!("{k}=`{v}`: expected a probability between 0 and 1"))?;
            match k {
                "malformed" => c.malformed = p,
                "oversized" => c.oversized = p,
                "duplicate" => c.duplicate = p,
                "late" => c.late = p,
                _ => {
                    return Err(format!(
                        "unknown fault `{k}` (known: malformed, oversized, duplicate, late, late_by)"
                    ));
                }
            }
        }
        Ok(c)
    }
}

impl fmt::Display for InjectConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed={},oversized={},duplicate={},late={},late_by={}",
            self.malformed,
            self.oversized,
            self.duplicate,
            self.late,
            humantime::format_duration(self.late_by)
        )
    }
}

/// The kinds of malformed record, in the order they are produced.
pub const MALFORMED_KINDS: [&str; 7] = [
    "invalid_json",
    "not_utf8",
    "empty",
    "missing_field",
    "wrong_type",
    "unknown_event_type",
    "type_mismatch",
];

/// What to add around one event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub late: bool,
    pub duplicate: bool,
    pub malformed: bool,
    pub oversized: bool,
}

/// One listener's injector.
pub struct Injector {
    cfg: InjectConfig,
    rng: Pcg64Mcg,
}

impl Injector {
    pub fn new(cfg: InjectConfig, listener_seed: u64) -> Injector {
        Injector {
            cfg,
            // Its own stream: injecting must not change the events themselves.
            rng: Pcg64Mcg::seed_from_u64(listener_seed ^ 0x1a7e_f00d_dead_beef),
        }
    }

    pub fn late_by_ms(&self) -> i64 {
        self.cfg.late_by.as_millis() as i64
    }

    /// Draws what happens around the next event.
    pub fn decide(&mut self) -> Decision {
        let mut roll = |p: f64| p > 0.0 && self.rng.random::<f64>() < p;
        Decision {
            late: roll(self.cfg.late),
            duplicate: roll(self.cfg.duplicate),
            malformed: roll(self.cfg.malformed),
            oversized: roll(self.cfg.oversized),
        }
    }

    /// A malformed record derived from a valid event's JSON, of a kind drawn at random.
    pub fn malformed(&mut self, event_json: &[u8]) -> Bytes {
        let kind = MALFORMED_KINDS[self.rng.random_range(0..MALFORMED_KINDS.len())];
        malformed_record(kind, event_json)
    }

    /// A record too large to be an event: an event's JSON padded with spaces.
    pub fn oversized(&self, event_json: &[u8]) -> Bytes {
        let mut v = Vec::with_capacity(OVERSIZED_BYTES);
        v.extend_from_slice(event_json);
        v.resize(OVERSIZED_BYTES.max(event_json.len()), b' ');
        Bytes::from(v)
    }
}

/// A record of the named kind made from a valid event's JSON, in either format (the edits
/// apply to the reference format's `event_params`).
pub fn malformed_record(kind: &str, event_json: &[u8]) -> Bytes {
    let edit = |f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut v: serde_json::Value =
            serde_json::from_slice(event_json).expect("the simulator's events are JSON objects");
        if let Some(mut o) = v.as_object_mut() {
            if o.contains_key("event_params") {
                o = o["event_params"]
                    .as_object_mut()
                    .expect("params are an object");
            }
            f(o);
        }
        Bytes::from(serde_json::to_vec(&v).expect("a JSON value serialises"))
    };
    match kind {
        "invalid_json" => Bytes::copy_from_slice(&event_json[..event_json.len() / 2]),
        "not_utf8" => {
            let mut v = b"\xff\xfe".to_vec();
            v.extend_from_slice(event_json);
            Bytes::from(v)
        }
        "empty" => Bytes::new(),
        // The reference format has no event id: its user id goes missing instead.
        "missing_field" => edit(&|o| {
            o.remove("event_id").or_else(|| o.remove("user_id"));
        }),
        "wrong_type" => edit(&|o| {
            let id = o.get("event_type_id").cloned().unwrap_or_default();
            o.insert("event_type_id".into(), id.to_string().into());
        }),
        "unknown_event_type" => edit(&|o| {
            o.insert("event_type_id".into(), 42.into());
            o.insert("event_type".into(), "track_teleport".into());
        }),
        "type_mismatch" => edit(&|o| {
            let id = o.get("event_type_id").and_then(|v| v.as_u64()).unwrap_or(1);
            o.insert("event_type_id".into(), (id % 8 + 1).into());
        }),
        _ => unreachable!("kinds come from MALFORMED_KINDS"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DerivedIds, EventType, Platform, Profile, SimEvent, WireEvent, WireFormat};

    fn event_json() -> Vec<u8> {
        event_json_in(WireFormat::Encore)
    }

    fn event_json_in(format: WireFormat) -> Vec<u8> {
        let p = Profile {
            user_id: uuid::Uuid::from_u128(7),
            platform: Platform::Android,
            platform_token: "tok".into(),
            ipv4: std::net::Ipv4Addr::new(10, 0, 0, 1),
            country: "DE",
            playlists: vec![],
        };
        let e = SimEvent {
            event_id: uuid::Uuid::from_u128(1),
            event_type: EventType::TrackPlayback,
            session_id: uuid::Uuid::from_u128(2),
            ts_ms: 1_700_000_000_000,
            track_id: 3,
            previous_track_id: None,
            playlist_id: None,
            liked: false,
            position_ms: Some(0),
        };
        let mut buf = Vec::new();
        format.encode(&p, &e, &mut buf);
        buf
    }

    #[test]
    fn parses_and_refuses() {
        let c: InjectConfig = "malformed=0.01, duplicate=0.5,late=1,late_by=3h"
            .parse()
            .unwrap();
        assert_eq!(c.malformed, 0.01);
        assert_eq!(c.duplicate, 0.5);
        assert_eq!(c.late, 1.0);
        assert_eq!(c.late_by, Duration::from_secs(3 * 3600));
        assert!(c.is_active());
        assert!("malformed=2".parse::<InjectConfig>().is_err());
        assert!("malformed=-0.1".parse::<InjectConfig>().is_err());
        assert!("chaos=0.1".parse::<InjectConfig>().is_err());
        assert!("late".parse::<InjectConfig>().is_err());
        assert!("late_by=0s".parse::<InjectConfig>().is_err());
        assert!("late_by=400days".parse::<InjectConfig>().is_err());
        assert!(!"".parse::<InjectConfig>().unwrap().is_active());
    }

    #[test]
    fn each_malformed_kind_is_rejected_for_that_reason() {
        let json = event_json();
        assert!(WireEvent::decode(&json).is_ok());
        for kind in MALFORMED_KINDS {
            let rec = malformed_record(kind, &json);
            let err = WireEvent::decode(&rec).expect_err(kind);
            assert_eq!(err.kind(), kind, "{err}");
        }
        let big = Injector::new(InjectConfig::default(), 1).oversized(&json);
        assert_eq!(big.len(), OVERSIZED_BYTES);
        assert_eq!(WireEvent::decode(&big).unwrap_err().kind(), "too_large");
    }

    #[test]
    fn each_malformed_kind_is_rejected_for_that_reason_in_the_reference_format() {
        let json = event_json_in(WireFormat::Reference);
        let ids = DerivedIds::new("t");
        let rejection = |b: &[u8]| {
            let e = crate::event::decode_record(b, &ids, 0, 0).err()?;
            Some((e.kind(), e.to_string()))
        };
        assert_eq!(rejection(&json), None);
        for kind in MALFORMED_KINDS {
            let (got, why) = rejection(&malformed_record(kind, &json)).expect(kind);
            assert_eq!(got, kind, "{why}");
        }
    }

    #[test]
    fn decisions_follow_the_probabilities_and_the_seed() {
        let cfg: InjectConfig = "malformed=0.1,late=0.5".parse().unwrap();
        let draw = |seed| {
            let mut i = Injector::new(cfg, seed);
            (0..10_000).map(|_| i.decide()).collect::<Vec<_>>()
        };
        let a = draw(1);
        assert_eq!(a, draw(1));
        let malformed = a.iter().filter(|d| d.malformed).count();
        let late = a.iter().filter(|d| d.late).count();
        assert!((800..1200).contains(&malformed), "{malformed}");
        assert!((4700..5300).contains(&late), "{late}");
        assert!(a.iter().all(|d| !d.duplicate && !d.oversized));
    }
}

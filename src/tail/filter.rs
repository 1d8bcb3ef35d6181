//! Which records `encore tail` shows: `--event-type` and `--user`. A record passes when it
//! matches one of the types given (if any) and one of the users given (if any).

use serde_json::Value;
use uuid::Uuid;

use crate::event::EventType;

/// `--event-type`: a name (`track_like`) or an id (`7`).
pub fn parse_event_type(s: &str) -> Result<EventType, String> {
    let t = s.trim();
    let found = match t.parse::<u8>() {
        Ok(id) => EventType::from_id(id),
        Err(_) => EventType::from_name(t),
    };
    found.ok_or_else(|| {
        let names: Vec<String> = EventType::ALL
            .iter()
            .map(|e| format!("{} ({})", e.name(), e.id()))
            .collect();
        format!(
            "`{s}` is not an event type; the types are {}",
            names.join(", ")
        )
    })
}

/// `--user`: a user id (UUID).
pub fn parse_user(s: &str) -> Result<Uuid, String> {
    Uuid::parse_str(s.trim()).map_err(|e| format!("`{s}` is not a user id (a UUID): {e}"))
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub types: Vec<EventType>,
    pub users: Vec<Uuid>,
}

impl Filter {
    /// Whether a record passes: `value` is its value parsed as JSON (None: not JSON), `key`
    /// its key.
    pub fn matches(&self, value: Option<&Value>, key: Option<&[u8]>) -> bool {
        (self.types.is_empty() || value.is_some_and(|v| self.type_matches(v)))
            && (self.users.is_empty() || self.user_matches(value, key))
    }

    /// By `event_type_id`, or by `event_type` in a value without an id.
    fn type_matches(&self, v: &Value) -> bool {
        match v.get("event_type_id") {
            Some(id) => id
                .as_u64()
                .is_some_and(|id| self.types.iter().any(|t| u64::from(t.id()) == id)),
            None => v
                .get("event_type")
                .and_then(Value::as_str)
                .is_some_and(|n| self.types.iter().any(|t| t.name() == n)),
        }
    }

    /// By the value's `user_id`, or by the key: events are keyed by user, and a dead letter
    /// keeps its record's key even when the value cannot be read.
    fn user_matches(&self, value: Option<&Value>, key: Option<&[u8]>) -> bool {
        let of_value = value
            .and_then(|v| v.get("user_id"))
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        let of_key = key
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|s| Uuid::parse_str(s).ok());
        [of_value, of_key]
            .into_iter()
            .flatten()
            .any(|u| self.users.contains(&u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "01a213ef-7f98-735c-9125-bfe9f719a987";
    const U2: &str = "01a213ef-7f98-735c-9125-bfe9f719a988";

    fn event(type_id: u8, name: &str, user: &str) -> Value {
        serde_json::json!({"event_type_id": type_id, "event_type": name, "user_id": user})
    }

    #[test]
    fn event_types_parse_by_name_or_id() {
        assert_eq!(parse_event_type("track_like"), Ok(EventType::TrackLike));
        assert_eq!(parse_event_type("7"), Ok(EventType::TrackLike));
        assert_eq!(parse_event_type(" 1 "), Ok(EventType::TrackPlayback));
        for bad in ["0", "9", "track", "TRACK_LIKE", ""] {
            let e = parse_event_type(bad).unwrap_err();
            assert!(e.contains("track_playback (1)"), "{bad}: {e}");
        }
        assert!(parse_user(U1).is_ok());
        assert!(parse_user("bob").unwrap_err().contains("not a user id"));
    }

    #[test]
    fn filters_match_type_and_user() {
        let (u1, u2) = (parse_user(U1).unwrap(), parse_user(U2).unwrap());
        let like = event(7, "track_like", U1);
        assert!(
            Filter::default().matches(None, None),
            "no filter: everything"
        );
        let types = Filter {
            types: vec![EventType::TrackLike, EventType::PauseTrack],
            users: vec![],
        };
        assert!(types.matches(Some(&like), None));
        assert!(types.matches(Some(&event(2, "pause_track", U1)), None));
        assert!(!types.matches(Some(&event(1, "track_playback", U1)), None));
        assert!(!types.matches(None, Some(U1.as_bytes())), "not JSON");
        // The id decides; the name only counts without one.
        assert!(!types.matches(Some(&event(1, "track_like", U1)), None));
        let named = serde_json::json!({"event_type": "track_like"});
        assert!(types.matches(Some(&named), None));
        assert!(!types.matches(Some(&serde_json::json!({"event_type_id": "7"})), None));

        let users = Filter {
            types: vec![],
            users: vec![u2],
        };
        assert!(!users.matches(Some(&like), None));
        assert!(users.matches(Some(&event(7, "track_like", U2)), None));
        assert!(users.matches(None, Some(U2.as_bytes())), "by key");
        assert!(!users.matches(None, Some(b"\xff")));
        let both = Filter {
            types: vec![EventType::TrackLike],
            users: vec![u1],
        };
        assert!(both.matches(Some(&like), None));
        assert!(!both.matches(Some(&event(1, "track_playback", U1)), None));
        assert!(!both.matches(Some(&event(7, "track_like", U2)), None));
    }
}

//! The names of a topic's ClickHouse objects, so that several topics share a database.
//!
//! The rule, in one place ([`table_name`]): the topic with `.` and `-` written as `_`, and a
//! leading `_` when it starts with a digit (a ClickHouse name cannot). Names stay plain
//! identifiers, usable in SQL without quoting; `music_events` and `my_topic` keep their names.
//! The mapping is not one-to-one (`a.b`, `a-b` and `a_b` give `a_b`; topic `a_queue`'s table
//! is topic `a`'s queue): [`clash`] finds that between two topics, and setup refuses a topic
//! whose names a queue of another topic in the database already uses.

use crate::clickhouse::{ChError, quote_ident};

/// What follows the storage table's name in the name of each object of a topic.
pub const SUFFIXES: [&str; 5] = ["", "_errors", "_queue", "_mv", "_errors_mv"];

/// The mapping alone, for a topic already checked by [`table_name`].
pub(super) fn mapped(topic: &str) -> String {
    let mut name: String = topic
        .chars()
        .map(|c| if c == '.' || c == '-' { '_' } else { c })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// The name of `topic`'s storage table; its other objects add a suffix of [`SUFFIXES`].
/// Refuses a topic that gives no valid ClickHouse name for every object.
pub fn table_name(topic: &str) -> Result<String, ChError> {
    if topic.is_empty() {
        return Err(ChError::Config("the topic is empty".into()));
    }
    let name = mapped(topic);
    let longest = format!("{name}{}", SUFFIXES[4]);
    quote_ident(&longest).map_err(|_| {
        ChError::Config(format!(
            "topic `{topic}` gives no ClickHouse table names (`{longest}` must be letters, \
             digits and _, at most 128 characters)"
        ))
    })?;
    Ok(name)
}

/// Every name `topic`'s schema may take.
pub fn object_names(topic: &str) -> Result<Vec<String>, ChError> {
    let base = table_name(topic)?;
    Ok(SUFFIXES.iter().map(|s| format!("{base}{s}")).collect())
}

/// Why topics `a` and `b` cannot have their tables in one database: a name both would use.
pub fn clash(a: &str, b: &str) -> Result<Option<String>, ChError> {
    if a == b {
        return Ok(None);
    }
    let theirs = object_names(b)?;
    Ok(object_names(a)?.into_iter().find(|n| theirs.contains(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_topics_keep_their_names() {
        assert_eq!(table_name("music_events").unwrap(), "music_events");
        assert_eq!(table_name("my_topic").unwrap(), "my_topic");
        assert_eq!(
            object_names("music_events").unwrap(),
            [
                "music_events",
                "music_events_errors",
                "music_events_queue",
                "music_events_mv",
                "music_events_errors_mv"
            ]
        );
    }

    #[test]
    fn kafka_characters_become_underscores() {
        assert_eq!(table_name("shop.orders-v2").unwrap(), "shop_orders_v2");
        assert_eq!(table_name("2026.clicks").unwrap(), "_2026_clicks");
        assert_eq!(table_name("A").unwrap(), "A");
        let long = "t".repeat(118);
        assert_eq!(table_name(&long).unwrap(), long);
        let e = table_name(&"t".repeat(119)).unwrap_err().to_string();
        assert!(e.contains("at most 128"), "{e}");
        assert!(table_name("it's").is_err());
        assert!(table_name("").is_err());
    }

    #[test]
    fn topics_that_would_share_a_name_are_found() {
        assert_eq!(clash("a.b", "a_b").unwrap().as_deref(), Some("a_b"));
        assert_eq!(clash("a-b", "a.b").unwrap().as_deref(), Some("a_b"));
        assert_eq!(clash("a", "a_queue").unwrap().as_deref(), Some("a_queue"));
        assert_eq!(clash("a_errors", "a").unwrap().as_deref(), Some("a_errors"));
        assert_eq!(
            clash("a_errors", "a").unwrap(),
            clash("a", "a_errors").unwrap()
        );
        assert_eq!(clash("1x", "-1x").unwrap().as_deref(), Some("_1x"));
        assert_eq!(clash("music_events", "my_topic").unwrap(), None);
        assert_eq!(clash("music_events", "music.events2").unwrap(), None);
        assert_eq!(clash("a", "a").unwrap(), None, "one topic");
    }
}

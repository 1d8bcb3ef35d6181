//! Drift: what the server has for an object, compared with what encore expects.

use super::{Object, queue_topics};

/// What the server has for one object.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub engine: String,
    pub engine_full: String,
    pub sorting_key: String,
    pub partition_key: String,
    pub columns: Vec<(String, String)>,
    /// `system.tables.create_table_query`.
    pub create_query: String,
}

/// The table named after `keyword` (`TO`, `FROM`) in a stored CREATE query, unquoted.
pub fn table_after(query: &str, keyword: &str) -> Option<String> {
    let mut words = query.split_whitespace();
    words.find(|w| w.eq_ignore_ascii_case(keyword))?;
    let t = words.next()?;
    Some(t.split('(').next()?.replace('`', ""))
}

/// Types and keys are compared without blanks: servers print `Enum8('a' = 1)` and `Enum8('a'=1)`
/// alike only after this.
fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The differences between what the server has and what encore expects, one line each; empty
/// when the object is as expected.
pub fn drift(expected: &Object, live: &Live) -> Vec<String> {
    let mut out = Vec::new();
    if live.engine != expected.engine {
        out.push(format!(
            "engine is {} (expected {})",
            live.engine, expected.engine
        ));
        return out;
    }
    for needle in &expected.engine_has {
        if !squash(&live.engine_full).contains(&squash(needle)) {
            if needle.starts_with("kafka_topic_list") {
                out.push(format!(
                    "reads topic `{}` instead (expected `{needle}`)",
                    queue_topics(&live.engine_full).join(", ")
                ));
            } else {
                out.push(format!("engine settings lack `{needle}`"));
            }
        }
    }
    for (what, want, have) in [
        ("sorting key", &expected.sorting_key, &live.sorting_key),
        (
            "partition key",
            &expected.partition_key,
            &live.partition_key,
        ),
    ] {
        if let Some(want) = want
            && squash(want) != squash(have)
        {
            out.push(format!("{what} is ({have}), expected ({want})"));
        }
    }
    if let Some((from, to)) = &expected.flows {
        for (keyword, want) in [("TO", to), ("FROM", from)] {
            let have = table_after(&live.create_query, keyword);
            if have.as_deref() != Some(want.as_str()) {
                out.push(format!(
                    "the view's {keyword} is {}, expected {want}",
                    have.as_deref().unwrap_or("missing")
                ));
            }
        }
    }
    if !expected.columns.is_empty() {
        for (name, ty) in &expected.columns {
            match live.columns.iter().find(|(n, _)| n == name) {
                None => out.push(format!("column {name} is missing (expected {ty})")),
                Some((_, have)) if squash(have) != squash(ty) => {
                    out.push(format!("column {name} is {have}, expected {ty}"))
                }
                Some(_) => {}
            }
        }
        for (name, ty) in &live.columns {
            if !expected.columns.iter().any(|(n, _)| n == name) {
                out.push(format!("unexpected column {name} {ty}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clickhouse::schema::tests::{find, target};
    use crate::clickhouse::schema::{Dialect, plan};

    #[test]
    fn drift_reports_each_difference() {
        let objs = plan(&target(), Dialect::Legacy).unwrap();
        let storage = find(&objs, "music_events");
        let mut live = Live {
            engine: "ReplacingMergeTree".into(),
            engine_full: "ReplacingMergeTree PARTITION BY ...".into(),
            sorting_key: "event_type,event_time,  event_id".into(),
            partition_key: "toYYYYMM(event_time)".into(),
            columns: storage.columns.clone(),
            create_query: String::new(),
        };
        assert!(drift(storage, &live).is_empty());
        live.columns[2].1 = "UInt16".into();
        live.columns.retain(|(n, _)| n != "country");
        live.columns.push(("extra".into(), "String".into()));
        let d = drift(storage, &live);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].contains("event_type_id is UInt16, expected UInt8"));
        assert!(d[1].contains("country is missing"));
        assert!(d[2].contains("unexpected column extra"));
        live.engine = "MergeTree".into();
        assert_eq!(drift(storage, &live).len(), 1);

        let q = find(&objs, "music_events_queue");
        let live_q = Live {
            engine: "Kafka".into(),
            engine_full: "Kafka SETTINGS kafka_broker_list = 'other:9092', kafka_topic_list = 'music_events', kafka_group_name = 'encore-clickhouse-music-music_events-1700000000', kafka_format = 'JSONEachRow'".into(),
            columns: q.columns.clone(),
            ..Live::default()
        };
        let d = drift(q, &live_q);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("kafka_broker_list = 'kafka:9092'"));
        let other = Live {
            engine_full: live_q.engine_full.replace("'music_events'", "'b'"),
            ..live_q.clone()
        };
        let d = drift(q, &other);
        assert_eq!(
            d[1],
            "reads topic `b` instead (expected `kafka_topic_list = 'music_events'`)"
        );
        let mv = find(&objs, "music_events_mv");
        let stored = |to: &str| Live {
            engine: "MaterializedView".into(),
            create_query: format!(
                "CREATE MATERIALIZED VIEW music.music_events_mv TO {to} ( event_id UUID) AS SELECT event_id FROM music.music_events_queue  WHERE ts_ms > 0"
            ),
            ..Live::default()
        };
        assert!(drift(mv, &stored("music.music_events")).is_empty());
        assert!(drift(mv, &stored("`music`.`music_events`")).is_empty());
        let d = drift(mv, &stored("music.music_events_errors"));
        assert_eq!(
            d,
            ["the view's TO is music.music_events_errors, expected music.music_events"]
        );

        // Brokers not given (status from another network): not compared.
        let mut t = target();
        t.brokers = None;
        let objs = plan(&t, Dialect::Legacy).unwrap();
        assert!(drift(find(&objs, "music_events_queue"), &live_q).is_empty());
    }
}

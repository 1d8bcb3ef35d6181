//! Which ClickHouse tables hold the verified topic: those fed by a Kafka table that reads it
//! (its `kafka_topic_list`), whatever their names, so that a database shared by several topics
//! (or made before tables were named after their topic) is never compared with another
//! topic's events.

use serde_json::Value;

use super::ch_error;
use crate::clickhouse::schema::{queue_topics, table_after, table_name};
use crate::clickhouse::{ClickHouse, quote_str};
use crate::verify::VerifyError;

/// A table of the database as `system.tables` has it.
#[derive(Clone, Debug, Default)]
pub(super) struct Table {
    pub name: String,
    pub engine: String,
    pub engine_full: String,
    pub create_query: String,
}

/// Where the topic's events are, or why nothing is compared.
#[derive(Debug, PartialEq)]
pub(super) struct Found {
    /// (queue, the table its view fills, the queue's engine_full), when a queue reads the topic.
    pub ingest: Option<(String, String, String)>,
    /// What the report should know: another topic under the expected names, nothing found.
    pub notes: Vec<String>,
}

/// The database's tables.
pub(super) async fn list(ch: &ClickHouse, db: &str) -> Result<Vec<Table>, VerifyError> {
    let body = ch
        .query(&format!(
            "SELECT name, engine, engine_full, create_table_query FROM system.tables \
             WHERE database = {} ORDER BY name FORMAT JSONEachRow",
            quote_str(db)
        ))
        .await
        .map_err(ch_error)?;
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .map_err(|e| VerifyError::Source(format!("ClickHouse answered `{l}`: {e}")))?;
            Ok(Table {
                name: text(&v, "name"),
                engine: text(&v, "engine"),
                engine_full: text(&v, "engine_full"),
                create_query: text(&v, "create_table_query"),
            })
        })
        .collect()
}

/// The queue reading `topic` (the one named after it first) and the table its view fills.
pub(super) fn find(db: &str, topic: &str, tables: &[Table]) -> Found {
    let mut notes = Vec::new();
    let queues: Vec<(&Table, Vec<String>)> = tables
        .iter()
        .filter(|t| t.engine == "Kafka")
        .map(|t| (t, queue_topics(&t.engine_full)))
        .collect();
    let expected = table_name(topic).ok().map(|b| format!("{b}_queue"));
    if let Some((q, read)) = queues
        .iter()
        .find(|(q, _)| Some(&q.name) == expected.as_ref())
        && !read.iter().any(|t| t == topic)
    {
        notes.push(format!(
            "ClickHouse {db}.{} ingests topic `{}`, not `{topic}`: its tables are not compared",
            q.name,
            read.join(", ")
        ));
    }
    let mut reading: Vec<&Table> = queues
        .iter()
        .filter(|(_, read)| read.iter().any(|t| t == topic))
        .map(|(q, _)| *q)
        .collect();
    reading.sort_by_key(|q| Some(&q.name) != expected.as_ref());
    for q in &reading {
        match view_target(db, q, tables) {
            Some(storage) => {
                for other in reading.iter().filter(|o| o.name != q.name) {
                    notes.push(format!(
                        "ClickHouse {db}.{} also ingests `{topic}`: compared with {db}.{storage} only",
                        other.name
                    ));
                }
                let ingest = Some((q.name.clone(), storage, q.engine_full.clone()));
                return Found { ingest, notes };
            }
            None => notes.push(format!(
                "ClickHouse {db}.{} ingests `{topic}`, but no view stores what it reads",
                q.name
            )),
        }
    }
    if reading.is_empty() {
        let mut read: Vec<String> = queues.into_iter().flat_map(|(_, r)| r).collect();
        read.sort();
        read.dedup();
        let has = match read.is_empty() {
            true => "it has no Kafka tables".to_string(),
            false => format!("its Kafka tables read `{}`", read.join("`, `")),
        };
        notes.push(format!(
            "ClickHouse: no table in `{db}` ingests topic `{topic}` ({has}); not compared"
        ));
    }
    Found {
        ingest: None,
        notes,
    }
}

/// The table a view reading `queue` fills: the one named after the queue, else the first that
/// is not an errors table.
fn view_target(db: &str, queue: &Table, tables: &[Table]) -> Option<String> {
    let from = format!("{db}.{}", queue.name);
    let targets: Vec<String> = tables
        .iter()
        .filter(|t| t.engine == "MaterializedView")
        .filter(|t| table_after(&t.create_query, "FROM").as_deref() == Some(from.as_str()))
        .filter_map(|t| table_after(&t.create_query, "TO"))
        .filter_map(|to| to.strip_prefix(&format!("{db}.")).map(str::to_string))
        .collect();
    let named = queue.name.strip_suffix("_queue");
    targets
        .iter()
        .find(|t| Some(t.as_str()) == named)
        .or_else(|| targets.iter().find(|t| !t.ends_with("_errors")))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &str, topic: &str) -> Table {
        Table {
            name: name.into(),
            engine: "Kafka".into(),
            engine_full: format!(
                "Kafka SETTINGS kafka_broker_list = 'k:1', kafka_topic_list = '{topic}', \
                 kafka_group_name = 'g-{name}', kafka_format = 'JSONEachRow'"
            ),
            ..Table::default()
        }
    }

    fn view(name: &str, from: &str, to: &str) -> Table {
        Table {
            name: name.into(),
            engine: "MaterializedView".into(),
            create_query: format!(
                "CREATE MATERIALIZED VIEW db.{name} TO db.{to} (`event_id` UUID) AS SELECT event_id FROM db.{from} WHERE 1"
            ),
            ..Table::default()
        }
    }

    /// Topic `a.b`'s schema as setup makes it, with its errors table.
    fn schema(base: &str, topic: &str) -> Vec<Table> {
        let q = format!("{base}_queue");
        vec![
            queue(&q, topic),
            view(&format!("{base}_errors_mv"), &q, &format!("{base}_errors")),
            view(&format!("{base}_mv"), &q, base),
        ]
    }

    #[test]
    fn the_tables_reading_the_topic_are_compared() {
        let mut tables = schema("music_events", "music_events");
        tables.extend(schema("shop_clicks", "shop.clicks"));
        let f = find("db", "shop.clicks", &tables);
        assert_eq!(f.notes, Vec::<String>::new());
        let (q, storage, engine) = f.ingest.unwrap();
        assert_eq!(
            (q.as_str(), storage.as_str()),
            ("shop_clicks_queue", "shop_clicks")
        );
        assert!(engine.contains("g-shop_clicks_queue"));
        let f = find("db", "music_events", &tables);
        assert_eq!(f.ingest.unwrap().1, "music_events");
    }

    #[test]
    fn another_topic_under_the_expected_names_is_not_compared() {
        // A database made before tables were named after their topic: music_events* read b.
        let tables = schema("music_events", "b");
        let f = find("db", "music_events", &tables);
        assert_eq!(f.ingest, None);
        assert_eq!(
            f.notes,
            [
                "ClickHouse db.music_events_queue ingests topic `b`, not `music_events`: its tables are not compared",
                "ClickHouse: no table in `db` ingests topic `music_events` (its Kafka tables read `b`); not compared"
            ]
        );
        // Verifying b finds them, whatever their names.
        assert_eq!(find("db", "b", &tables).ingest.unwrap().1, "music_events");
    }

    #[test]
    fn nothing_reading_the_topic_is_said() {
        let f = find("db", "a", &[]);
        assert_eq!(
            f.notes,
            [
                "ClickHouse: no table in `db` ingests topic `a` (it has no Kafka tables); not compared"
            ]
        );
        let f = find("db", "a", &[queue("a_queue", "a")]);
        assert_eq!(f.ingest, None);
        assert_eq!(
            f.notes[0],
            "ClickHouse db.a_queue ingests `a`, but no view stores what it reads"
        );
    }
}

//! What the server has of encore's schema.

use super::{rows, text};
use crate::clickhouse::schema::{
    Dataset, Dialect, Live, Object, Target, clash, drift, object_names, plan, queue_topics,
    table_name,
};
use crate::clickhouse::{ChError, ClickHouse, Version, quote_ident, quote_str};

/// The server, its dialect and what it holds of encore's schema.
pub struct Inspection {
    pub version: Version,
    pub dialect: Dialect,
    pub objects: Vec<(Object, Option<Live>)>,
    /// Every Kafka table of the database: its name and the topics it reads.
    pub queues: Vec<(String, Vec<String>)>,
}

impl Inspection {
    /// Every difference, prefixed with the object's name.
    pub fn drift(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter_map(|(o, live)| live.as_ref().map(|l| (o, drift(o, l))))
            .flat_map(|(o, d)| d.into_iter().map(move |l| format!("{}: {l}", o.name)))
            .collect()
    }

    /// Why the target's names are another topic's in this database (see [`conflicts`]).
    pub fn conflicts(&self, target: &Target) -> Vec<String> {
        conflicts(target, &self.queues)
    }

    /// Encore's queues of topics other than the target's: other schemas sharing the database.
    pub fn other_topics(&self, target: &Target) -> Vec<String> {
        let ours = [&target.events_topic, &target.simple_topic];
        self.queues
            .iter()
            .filter_map(|(name, topics)| match &topics[..] {
                [t] if !ours.contains(&t)
                    && table_name(t).is_ok_and(|b| *name == format!("{b}_queue")) =>
                {
                    Some(t.clone())
                }
                _ => None,
            })
            .collect()
    }
}

/// Why the target's tables cannot go into a database with these Kafka tables (name, topics):
/// a queue under one of the target's names reads another topic, or a queue reads a topic whose
/// names (see `schema::names`) are also the target's. Nothing may then be created or dropped:
/// the tables are another topic's.
pub fn conflicts(target: &Target, queues: &[(String, Vec<String>)]) -> Vec<String> {
    let advice = "give one of them another --clickhouse-database";
    let mut out = Vec::new();
    for (name, topics) in queues {
        for d in Dataset::ALL {
            let topic = target.topic(d);
            let mine = object_names(topic).unwrap_or_default();
            if mine.contains(name) && topics[..] != [topic.to_string()] {
                out.push(format!(
                    "`{name}` ingests topic `{}`, not `{topic}`; {advice}",
                    topics.join(", ")
                ));
            } else if let Some(shared) = topics
                .iter()
                .filter(|t| !mine.contains(name) && *t != topic)
                .find_map(|t| clash(topic, t).ok().flatten().map(|n| (t, n)))
            {
                out.push(format!(
                    "topics `{topic}` and `{}` (read by `{name}`) would both use the table \
                     `{}`; {advice}",
                    shared.0, shared.1
                ));
            }
        }
    }
    out
}

/// Reads the server's version and what it has of the schema.
pub async fn inspect(ch: &ClickHouse, target: &Target) -> Result<Inspection, ChError> {
    let version = ch.version().await?;
    let dialect = Dialect::for_version(version);
    let expected = plan(target, dialect)?;
    let tables = rows(
        &ch.query(&format!(
            "SELECT name, engine, engine_full, sorting_key, partition_key, create_table_query \
             FROM system.tables \
             WHERE database = {} FORMAT JSONEachRow",
            quote_str(&target.database)
        ))
        .await?,
    )?;
    let queues = tables
        .iter()
        .filter(|t| text(t, "engine") == "Kafka")
        .map(|t| (text(t, "name"), queue_topics(&text(t, "engine_full"))))
        .collect();
    let db = quote_ident(&target.database)?;
    let mut objects = Vec::with_capacity(expected.len());
    for o in expected {
        let live = match tables.iter().find(|t| text(t, "name") == o.name) {
            None => None,
            Some(t) => {
                let mut live = Live {
                    engine: text(t, "engine"),
                    engine_full: text(t, "engine_full"),
                    sorting_key: text(t, "sorting_key"),
                    partition_key: text(t, "partition_key"),
                    create_query: text(t, "create_table_query"),
                    columns: vec![],
                };
                if !o.columns.is_empty() {
                    let described = ch
                        .query(&format!(
                            "DESCRIBE TABLE {db}.{} FORMAT JSONEachRow",
                            quote_ident(&o.name)?
                        ))
                        .await?;
                    live.columns = rows(&described)?
                        .iter()
                        .map(|c| (text(c, "name"), text(c, "type")))
                        .collect();
                }
                Some(live)
            }
        };
        objects.push((o, live));
    }
    Ok(Inspection {
        version,
        dialect,
        objects,
        queues,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(events: &str) -> Target {
        Target {
            database: "db".into(),
            brokers: None,
            events_topic: events.into(),
            simple_topic: "my_topic".into(),
            generation: 1,
        }
    }

    fn q(name: &str, topic: &str) -> (String, Vec<String>) {
        (name.into(), vec![topic.into()])
    }

    #[test]
    fn topics_sharing_a_database_are_told_apart() {
        let shared = [
            q("music_events_queue", "music_events"),
            q("my_topic_queue", "my_topic"),
            q("b_queue", "b"),
            q("hand_made", "x.y"),
        ];
        assert!(conflicts(&target("music_events"), &shared).is_empty());
        assert!(conflicts(&target("b"), &shared).is_empty());
        assert!(conflicts(&target("c.d"), &shared).is_empty());
        let c = conflicts(&target("x-y"), &shared);
        assert_eq!(
            c,
            [
                "topics `x-y` and `x.y` (read by `hand_made`) would both use the table `x_y`; \
              give one of them another --clickhouse-database"
            ]
        );
        let c = conflicts(&target("b_queue"), &shared);
        assert_eq!(
            c,
            [
                "`b_queue` ingests topic `b`, not `b_queue`; give one of them another \
              --clickhouse-database"
            ]
        );
        // A database made before tables were named after their topic.
        let old = [q("music_events_queue", "b")];
        assert_eq!(conflicts(&target("music_events"), &old).len(), 1);
        assert!(conflicts(&target("b"), &old).is_empty());
    }

    #[test]
    fn other_topics_are_encores_queues_of_other_topics() {
        let insp = Inspection {
            version: Version::parse("24.8").unwrap(),
            dialect: Dialect::Modern,
            objects: vec![],
            queues: vec![
                q("music_events_queue", "music_events"),
                q("my_topic_queue", "my_topic"),
                q("b_c_queue", "b.c"),
                q("hand_made", "x"),
            ],
        };
        assert_eq!(insp.other_topics(&target("music_events")), ["b.c"]);
        assert_eq!(insp.other_topics(&target("b.c")), ["music_events"]);
    }
}

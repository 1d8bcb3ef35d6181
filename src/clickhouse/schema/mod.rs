//! The ClickHouse schema encore owns, as data: per topic a Kafka engine table (the queue), a
//! ReplacingMergeTree storage table, the materialized view between them and, where the server
//! can stream parse errors, an errors table with its view. Pure: the DDL text, the expected
//! shape of every table (for drift detection) and the comparison live here; `setup` runs them.
//!
//! `columns` lists each dataset's columns per dialect, `ddl` turns them into the objects and
//! their CREATE statements ([`plan`]), and `live` compares them with the server's ([`drift`]).

mod columns;
mod ddl;
mod live;
mod names;

pub use ddl::plan;
pub use live::{Live, drift, table_after};
pub use names::{clash, object_names, table_name};

use super::{ChError, Version};

/// What the server can do, decided from its version.
///
/// `Modern` (21.12 and later) has `kafka_handle_error_mode='stream'` (21.6) with `_error` and
/// `_raw_message`, the `_topic/_partition/_offset/_timestamp_ms` virtual columns, DateTime64,
/// LowCardinality, IPv4 and a real Bool type (21.12; before, `Bool` was an alias of Int8). `Legacy` is what Debian's 18.16 understands; the same DDL is
/// also valid on every release in between, which is why there are only two dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Legacy,
    Modern,
}

impl Dialect {
    pub fn for_version(v: Version) -> Dialect {
        if v.at_least(21, 12) {
            Dialect::Modern
        } else {
            Dialect::Legacy
        }
    }

    /// Malformed messages go to an errors table instead of stopping the queue.
    pub fn streams_errors(self) -> bool {
        self == Dialect::Modern
    }

    fn pick(self, legacy: &'static str, modern: &'static str) -> &'static str {
        match self {
            Dialect::Legacy => legacy,
            Dialect::Modern => modern,
        }
    }
}

/// The two topics ClickHouse ingests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    /// The clickstream (`music_events` by default).
    Events,
    /// The simple demo (`my_topic` by default).
    Simple,
}

impl Dataset {
    pub const ALL: [Dataset; 2] = [Dataset::Events, Dataset::Simple];

    /// The column carrying the event's time in the storage table.
    pub fn time_column(self) -> &'static str {
        match self {
            Dataset::Events => "event_time",
            Dataset::Simple => "timestamp",
        }
    }
}

/// Where the schema goes and what its queues read.
#[derive(Clone, Debug)]
pub struct Target {
    pub database: String,
    /// The brokers as ClickHouse reaches them (`kafka:29092` inside compose). Needed to create
    /// a queue; when None, the live queues' broker lists are not compared.
    pub brokers: Option<String>,
    pub events_topic: String,
    pub simple_topic: String,
    /// Part of the name of the consumer groups of queues created now (Unix milliseconds): a queue
    /// created again (`--recreate`) gets a new group, so it reads its topic from the start.
    pub generation: u64,
}

impl Target {
    pub fn topic(&self, d: Dataset) -> &str {
        match d {
            Dataset::Events => &self.events_topic,
            Dataset::Simple => &self.simple_topic,
        }
    }

    /// The storage table of the dataset, named after its topic ([`table_name`]; the other
    /// objects add a suffix). For a target [`Target::check`] accepted.
    pub fn table(&self, d: Dataset) -> String {
        names::mapped(self.topic(d))
    }

    /// Both topics give valid names, and different ones.
    pub fn check(&self) -> Result<(), ChError> {
        for d in Dataset::ALL {
            table_name(self.topic(d))?;
        }
        let (events, simple) = (&self.events_topic, &self.simple_topic);
        if events == simple {
            return Err(ChError::Config(format!(
                "the clickstream topic and the simple topic are both `{events}`"
            )));
        }
        match clash(events, simple)? {
            Some(name) => Err(ChError::Config(format!(
                "topics `{events}` and `{simple}` would both use the ClickHouse table `{name}`"
            ))),
            None => Ok(()),
        }
    }

    /// The start of the consumer-group name of a queue: per database and table, so that two
    /// databases on one server (e.g. tests) each receive the whole topic.
    pub fn group_prefix(&self, d: Dataset) -> String {
        format!("encore-clickhouse-{}-{}-", self.database, self.table(d))
    }

    /// The consumer group of a queue created now.
    pub fn group(&self, d: Dataset) -> String {
        format!("{}{}", self.group_prefix(d), self.generation)
    }
}

/// A setting's quoted value in a Kafka table's `engine_full` (`key = 'value'`).
fn setting(engine_full: &str, key: &str) -> Option<String> {
    let rest = engine_full.split(&format!("{key} = '")).nth(1)?;
    Some(rest[..rest.find('\'')?].to_string())
}

/// The consumer group named in a live queue's `engine_full`.
pub fn queue_group(engine_full: &str) -> Option<String> {
    setting(engine_full, "kafka_group_name")
}

/// The topics a live queue reads (its `kafka_topic_list`, comma-separated).
pub fn queue_topics(engine_full: &str) -> Vec<String> {
    setting(engine_full, "kafka_topic_list")
        .map(|l| {
            l.split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The role of an object in a dataset's schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Storage,
    Errors,
    Queue,
    View,
    ErrorsView,
}

/// One object encore creates, with what drift detection compares.
#[derive(Clone, Debug)]
pub struct Object {
    pub dataset: Dataset,
    pub role: Role,
    pub name: String,
    /// `system.tables.engine`.
    pub engine: &'static str,
    /// `DESCRIBE` as (name, type); empty for views, whose columns are the storage's.
    pub columns: Vec<(String, String)>,
    /// Text that `system.tables.engine_full` must contain, e.g. the queue's topic.
    pub engine_has: Vec<String>,
    /// Expected `sorting_key` / `partition_key` (MergeTree family).
    pub sorting_key: Option<String>,
    pub partition_key: Option<String>,
    /// For a view: the tables it reads and writes, as `db.table`.
    pub flows: Option<(String, String)>,
    pub create: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shared with the tests of the submodules.
    pub(super) fn target() -> Target {
        Target {
            database: "music".into(),
            brokers: Some("kafka:9092".into()),
            events_topic: "music_events".into(),
            simple_topic: "my_topic".into(),
            generation: 1_767_225_600,
        }
    }

    pub(super) fn find<'a>(objs: &'a [Object], name: &str) -> &'a Object {
        objs.iter().find(|o| o.name == name).expect(name)
    }

    #[test]
    fn queue_settings_are_read_from_engine_full() {
        let e = "Kafka SETTINGS kafka_broker_list = 'k:1', kafka_topic_list = 'a.b, c', \
                 kafka_group_name = 'g-1', kafka_format = 'JSONEachRow'";
        assert_eq!(queue_group(e).as_deref(), Some("g-1"));
        assert_eq!(queue_topics(e), ["a.b", "c"]);
        assert!(queue_topics("MergeTree ORDER BY x").is_empty());
    }

    #[test]
    fn targets_refuse_topics_sharing_names() {
        let mut t = target();
        assert!(t.check().is_ok());
        assert_eq!(t.table(Dataset::Events), "music_events");
        t.events_topic = "shop.clicks".into();
        assert_eq!(t.table(Dataset::Events), "shop_clicks");
        assert_eq!(
            t.group_prefix(Dataset::Events),
            "encore-clickhouse-music-shop_clicks-"
        );
        t.simple_topic = "shop-clicks".into();
        let e = t.check().unwrap_err().to_string();
        assert!(
            e.contains("would both use the ClickHouse table `shop_clicks`"),
            "{e}"
        );
        t.simple_topic = "shop.clicks".into();
        assert!(
            t.check()
                .unwrap_err()
                .to_string()
                .contains("are both `shop.clicks`")
        );
    }

    #[test]
    fn dialect_follows_the_version() {
        let v = |s| Version::parse(s).unwrap();
        assert_eq!(Dialect::for_version(v("18.16.1")), Dialect::Legacy);
        assert_eq!(Dialect::for_version(v("21.11.9")), Dialect::Legacy);
        assert_eq!(Dialect::for_version(v("21.12.1")), Dialect::Modern);
        assert_eq!(Dialect::for_version(v("25.8.1.5101")), Dialect::Modern);
    }
}

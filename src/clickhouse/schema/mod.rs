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

pub use ddl::plan;
pub use live::{Live, drift};

use super::Version;

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

    /// The storage table's name; the other objects are named after it.
    pub fn table(self) -> &'static str {
        match self {
            Dataset::Events => "music_events",
            Dataset::Simple => "my_topic",
        }
    }

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

    /// The start of the consumer-group name of a queue: per database and dataset, so that two
    /// databases on one server (e.g. tests) each receive the whole topic.
    pub fn group_prefix(&self, d: Dataset) -> String {
        format!("encore-clickhouse-{}-{}-", self.database, d.table())
    }

    /// The consumer group of a queue created now.
    pub fn group(&self, d: Dataset) -> String {
        format!("{}{}", self.group_prefix(d), self.generation)
    }
}

/// The consumer group named in a live queue's `engine_full`.
pub fn queue_group(engine_full: &str) -> Option<String> {
    let rest = engine_full.split("kafka_group_name = '").nth(1)?;
    Some(rest[..rest.find('\'')?].to_string())
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
    fn dialect_follows_the_version() {
        let v = |s| Version::parse(s).unwrap();
        assert_eq!(Dialect::for_version(v("18.16.1")), Dialect::Legacy);
        assert_eq!(Dialect::for_version(v("21.11.9")), Dialect::Legacy);
        assert_eq!(Dialect::for_version(v("21.12.1")), Dialect::Modern);
        assert_eq!(Dialect::for_version(v("25.8.1.5101")), Dialect::Modern);
    }
}

//! The ClickHouse schema encore owns, as data: per topic a Kafka engine table (the queue), a
//! ReplacingMergeTree storage table, the materialized view between them and, where the server
//! can stream parse errors, an errors table with its view. Pure: the DDL text, the expected
//! shape of every table (for drift detection) and the comparison live here; `setup` runs them.

use super::{ChError, Version, quote_ident, quote_str};
use crate::event::EventType;

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

fn event_type_enum() -> String {
    let members: Vec<String> = EventType::ALL
        .iter()
        .map(|t| format!("'{}' = {}", t.name(), t.id()))
        .collect();
    format!("Enum8({})", members.join(", "))
}

/// A column of a dataset: its name, its type in the queue (None: not read from the message) and
/// in the storage table (None: queue only), and the expression filling it in the view.
struct Col {
    name: &'static str,
    queue: Option<String>,
    storage: Option<String>,
    select: String,
}

fn col(name: &'static str, ty: &str) -> Col {
    Col {
        name,
        queue: Some(ty.to_string()),
        storage: Some(ty.to_string()),
        select: name.to_string(),
    }
}

fn columns(d: Dataset, dialect: Dialect) -> Vec<Col> {
    let lc = dialect.pick("String", "LowCardinality(String)");
    let time = dialect.pick("DateTime('UTC')", "DateTime64(3, 'UTC')");
    let mut cols = match d {
        Dataset::Events => vec![
            col("event_id", "UUID"),
            // 18.16 cannot skip a conversion error (an unknown name would stop the queue for
            // good, and a view's filter cannot run before a cast aliased to the same name), so
            // there the type is a String that the view restricts to the eight names.
            col(
                "event_type",
                &match dialect {
                    Dialect::Legacy => "String".to_string(),
                    Dialect::Modern => event_type_enum(),
                },
            ),
            col("event_type_id", "UInt8"),
            Col {
                name: "event_time",
                queue: None,
                storage: Some(time.into()),
                select: dialect
                    .pick(
                        "toDateTime(intDiv(ts_ms, 1000), 'UTC')",
                        "fromUnixTimestamp64Milli(ts_ms, 'UTC')",
                    )
                    .into(),
            },
            col("user_id", "UUID"),
            col("session_id", "UUID"),
            col("platform", lc),
            col("platform_token", "String"),
            col("ipv4", dialect.pick("String", "IPv4")),
            col("country", lc),
            col("track_id", "Int64"),
            col("previous_track_id", "Nullable(Int64)"),
            col("playlist_id", "Nullable(Int64)"),
            col("liked", dialect.pick("UInt8", "Bool")),
            col("position_ms", "Nullable(Int64)"),
            Col {
                name: "ts",
                queue: Some("Int64".into()),
                storage: None,
                select: String::new(),
            },
            col("ts_ms", "Int64"),
        ],
        Dataset::Simple => vec![
            col("uuid", "UUID"),
            col("first_name", lc),
            col("last_name", lc),
            col("middle_name", lc),
            Col {
                name: "timestamp",
                // ISO-8601 text on the topic; an unparsable one becomes the zero time rather
                // than an exception that would stop the view.
                queue: Some("String".into()),
                storage: Some(time.into()),
                select: dialect
                    .pick(
                        "parseDateTimeBestEffortOrZero(timestamp, 'UTC')",
                        "parseDateTime64BestEffortOrZero(timestamp, 3, 'UTC')",
                    )
                    .into(),
            },
        ],
    };
    if dialect == Dialect::Modern {
        cols.extend(source_columns());
    }
    cols.push(Col {
        name: "ingested_at",
        queue: None,
        storage: Some("DateTime('UTC')".into()),
        select: "now()".into(),
    });
    cols
}

/// Where each row came from (only servers with the Kafka virtual columns).
fn source_columns() -> Vec<Col> {
    let src = |name, ty: &str, select: &str| Col {
        name,
        queue: None,
        storage: Some(ty.into()),
        select: select.into(),
    };
    vec![
        src("kafka_topic", "LowCardinality(String)", "_topic"),
        src("kafka_partition", "Int32", "toInt32(_partition)"),
        src("kafka_offset", "Int64", "toInt64(_offset)"),
        src(
            "kafka_timestamp",
            "Nullable(DateTime64(3, 'UTC'))",
            "_timestamp_ms",
        ),
    ]
}

fn errors_columns() -> Vec<Col> {
    let mut cols = source_columns();
    let extra = [
        ("raw_message", "String", "_raw_message"),
        (
            "error",
            "String",
            "if(length(_error) > 0, _error, 'valid JSON without an id or a time')",
        ),
        ("received_at", "DateTime('UTC')", "now()"),
    ];
    cols.extend(extra.map(|(name, ty, select)| Col {
        name,
        queue: None,
        storage: Some(ty.into()),
        select: select.into(),
    }));
    cols
}

fn column_list(cols: &[(String, String)]) -> String {
    let body: Vec<String> = cols.iter().map(|(n, t)| format!("    {n} {t}")).collect();
    format!("(\n{}\n)", body.join(",\n"))
}

fn view_select(cols: &[Col], from: &str, filter: &str) -> String {
    let items: Vec<String> = cols
        .iter()
        .filter(|c| c.storage.is_some())
        .map(|c| {
            if c.select == c.name {
                c.name.to_string()
            } else {
                format!("{} AS {}", c.select, c.name)
            }
        })
        .collect();
    format!("SELECT\n    {}\nFROM {from}{filter}", items.join(",\n    "))
}

/// Every object of the schema, in creation order (storage before the views that feed it, the
/// queue before its views); drop in reverse.
pub fn plan(target: &Target, dialect: Dialect) -> Result<Vec<Object>, ChError> {
    let db = quote_ident(&target.database)?;
    let mut out = Vec::new();
    for d in Dataset::ALL {
        let cols = columns(d, dialect);
        let base = d.table();
        let name = |suffix: &str| format!("{base}{suffix}");
        let fq = |n: &str| Ok::<_, ChError>(format!("{db}.{}", quote_ident(n)?));
        let storage_cols: Vec<(String, String)> = cols
            .iter()
            .filter_map(|c| c.storage.clone().map(|t| (c.name.to_string(), t)))
            .collect();
        let queue_cols: Vec<(String, String)> = cols
            .iter()
            .filter_map(|c| c.queue.clone().map(|t| (c.name.to_string(), t)))
            .collect();
        let time = d.time_column();
        let (sorting, partition) = match d {
            Dataset::Events => ("event_type, event_time, event_id", "toYYYYMM(event_time)"),
            Dataset::Simple => ("timestamp, uuid", "toYYYYMM(timestamp)"),
        };
        debug_assert!(sorting.contains(time));

        // Rows with the same sorting key are one event delivered twice; the sorting key ends
        // with the event id, so merges keep one of them.
        out.push(Object {
            dataset: d,
            role: Role::Storage,
            name: base.to_string(),
            engine: "ReplacingMergeTree",
            create: format!(
                "CREATE TABLE IF NOT EXISTS {}\n{}\nENGINE = ReplacingMergeTree\nPARTITION BY {partition}\nORDER BY ({sorting})",
                fq(base)?,
                column_list(&storage_cols)
            ),
            columns: storage_cols,
            engine_has: vec![],
            sorting_key: Some(sorting.into()),
            partition_key: Some(partition.into()),
            flows: None,
        });

        let errors_cols = errors_columns();
        let errors_pairs: Vec<(String, String)> = errors_cols
            .iter()
            .map(|c| (c.name.to_string(), c.storage.clone().unwrap_or_default()))
            .collect();
        if dialect.streams_errors() {
            let (sorting, partition) = (
                "kafka_topic, kafka_partition, kafka_offset",
                "toYYYYMM(received_at)",
            );
            out.push(Object {
                dataset: d,
                role: Role::Errors,
                name: name("_errors"),
                engine: "MergeTree",
                create: format!(
                    "CREATE TABLE IF NOT EXISTS {}\n{}\nENGINE = MergeTree\nPARTITION BY {partition}\nORDER BY ({sorting})",
                    fq(&name("_errors"))?,
                    column_list(&errors_pairs)
                ),
                columns: errors_pairs,
                engine_has: vec![],
                sorting_key: Some(sorting.into()),
                partition_key: Some(partition.into()),
                flows: None,
            });
        }

        let topic = target.topic(d);
        let group = target.group(d);
        let mut settings = vec![
            format!(
                "kafka_broker_list = {}",
                quote_str(target.brokers.as_deref().unwrap_or_default())
            ),
            format!("kafka_topic_list = {}", quote_str(topic)),
            format!("kafka_group_name = {}", quote_str(&group)),
            "kafka_format = 'JSONEachRow'".to_string(),
            "kafka_num_consumers = 1".to_string(),
        ];
        match dialect {
            // 18.16 concatenates the messages of a block: the delimiter keeps them apart.
            Dialect::Legacy => settings.push("kafka_row_delimiter = '\\n'".into()),
            Dialect::Modern => settings.push("kafka_handle_error_mode = 'stream'".into()),
        }
        out.push(Object {
            dataset: d,
            role: Role::Queue,
            name: name("_queue"),
            engine: "Kafka",
            create: format!(
                "CREATE TABLE IF NOT EXISTS {}\n{}\nENGINE = Kafka\nSETTINGS\n    {}",
                fq(&name("_queue"))?,
                column_list(&queue_cols),
                settings.join(",\n    ")
            ),
            flows: None,
            columns: queue_cols,
            engine_has: [
                target
                    .brokers
                    .as_ref()
                    .map(|b| format!("kafka_broker_list = {}", quote_str(b))),
                Some("kafka_format = 'JSONEachRow'".to_string()),
                (dialect == Dialect::Modern)
                    .then(|| "kafka_handle_error_mode = 'stream'".to_string()),
                Some(format!("kafka_topic_list = {}", quote_str(topic))),
                // Only the prefix: the generation is whatever it was at creation.
                Some(format!(
                    "kafka_group_name = {}",
                    quote_str(&target.group_prefix(d)).trim_end_matches('\'')
                )),
            ]
            .into_iter()
            .flatten()
            .collect(),
            sorting_key: None,
            partition_key: None,
        });

        let queue = fq(&name("_queue"))?;
        let plain = |n: &str| format!("{}.{n}", target.database);
        // Valid JSON can still lack what makes an event (`{}` parses into default values):
        // such rows are not stored; on servers that stream errors they go to the errors table.
        let zero_uuid = "toUUID('00000000-0000-0000-0000-000000000000')";
        let names: Vec<String> = EventType::ALL.iter().map(|t| quote_str(t.name())).collect();
        let sound = match (d, dialect) {
            // A missing event_type would read as the Enum's first name: the id must agree.
            (Dataset::Events, Dialect::Modern) => format!(
                "event_id != {zero_uuid} AND ts_ms > 0 AND event_type_id = toUInt8(event_type)"
            ),
            (Dataset::Events, Dialect::Legacy) => format!(
                "event_id != {zero_uuid} AND ts_ms > 0 AND event_type_id BETWEEN 1 AND 8 \
                 AND event_type = arrayElement([{}], event_type_id)",
                names.join(", ")
            ),
            (Dataset::Simple, _) => format!("uuid != {zero_uuid}"),
        };
        let filter = match dialect {
            Dialect::Modern => format!("\nWHERE length(_error) = 0 AND {sound}"),
            Dialect::Legacy => format!("\nWHERE {sound}"),
        };
        out.push(Object {
            dataset: d,
            role: Role::View,
            name: name("_mv"),
            engine: "MaterializedView",
            create: format!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS {} TO {}\nAS {}",
                fq(&name("_mv"))?,
                fq(base)?,
                view_select(&cols, &queue, &filter)
            ),
            flows: Some((plain(&name("_queue")), plain(base))),
            columns: vec![],
            engine_has: vec![],
            sorting_key: None,
            partition_key: None,
        });
        if dialect.streams_errors() {
            out.push(Object {
                dataset: d,
                role: Role::ErrorsView,
                name: name("_errors_mv"),
                engine: "MaterializedView",
                create: format!(
                    "CREATE MATERIALIZED VIEW IF NOT EXISTS {} TO {}\nAS {}",
                    fq(&name("_errors_mv"))?,
                    fq(&name("_errors"))?,
                    view_select(
                        &errors_cols,
                        &queue,
                        &format!("\nWHERE length(_error) > 0 OR NOT ({sound})")
                    )
                ),
                flows: Some((plain(&name("_queue")), plain(&name("_errors")))),
                columns: vec![],
                engine_has: vec![],
                sorting_key: None,
                partition_key: None,
            });
        }
    }
    Ok(out)
}

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
fn table_after(query: &str, keyword: &str) -> Option<String> {
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
                    "reads another topic than the one asked for (`{needle}`): give each topic \
                     its own --clickhouse-database"
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

    fn target() -> Target {
        Target {
            database: "music".into(),
            brokers: Some("kafka:9092".into()),
            events_topic: "music_events".into(),
            simple_topic: "my_topic".into(),
            generation: 1_767_225_600,
        }
    }

    fn find<'a>(objs: &'a [Object], name: &str) -> &'a Object {
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

    #[test]
    fn legacy_plan_uses_only_what_18_16_has() {
        let objs = plan(&target(), Dialect::Legacy).unwrap();
        let names: Vec<&str> = objs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "music_events",
                "music_events_queue",
                "music_events_mv",
                "my_topic",
                "my_topic_queue",
                "my_topic_mv"
            ]
        );
        let all: String = objs.iter().map(|o| o.create.as_str()).collect();
        for absent in [
            "DateTime64",
            "LowCardinality",
            "IPv4",
            "Bool",
            "_offset",
            "kafka_handle_error_mode",
            "JSONExtract",
        ] {
            assert!(!all.contains(absent), "{absent} in legacy DDL");
        }
        let q = find(&objs, "music_events_queue");
        assert!(
            q.create.contains("kafka_row_delimiter = '\\n'"),
            "{}",
            q.create
        );
        assert!(
            q.create
                .contains("kafka_group_name = 'encore-clickhouse-music-music_events-1767225600'")
        );
        assert!(q.create.contains("event_type String"), "{}", q.create);
        let mv = find(&objs, "music_events_mv");
        assert!(
            mv.create
                .contains("AND event_type_id BETWEEN 1 AND 8 AND event_type = arrayElement(['track_playback', 'pause_track',"),
            "{}",
            mv.create
        );
    }

    #[test]
    fn modern_plan_streams_errors_and_keeps_the_source() {
        let objs = plan(&target(), Dialect::Modern).unwrap();
        let storage = find(&objs, "music_events");
        assert!(storage.create.contains("ENGINE = ReplacingMergeTree"));
        assert!(
            storage
                .create
                .contains("ORDER BY (event_type, event_time, event_id)")
        );
        assert!(storage.create.contains("event_time DateTime64(3, 'UTC')"));
        assert!(storage.create.contains("kafka_offset Int64"));
        let q = find(&objs, "music_events_queue");
        assert!(q.create.contains("kafka_handle_error_mode = 'stream'"));
        assert!(!q.create.contains("kafka_offset"), "virtual, not a column");
        let mv = find(&objs, "music_events_mv");
        assert!(mv.create.contains("WHERE length(_error) = 0"));
        assert!(
            mv.create
                .contains("fromUnixTimestamp64Milli(ts_ms, 'UTC') AS event_time")
        );
        assert!(!mv.create.contains("    ts,"), "ts is not stored");
        let emv = find(&objs, "my_topic_errors_mv");
        assert!(emv.create.contains("_raw_message AS raw_message"));
        assert!(
            emv.create
                .contains("WHERE length(_error) > 0 OR NOT (uuid != toUUID('00000000-0000-0000-0000-000000000000'))"),
            "{}",
            emv.create
        );
        assert_eq!(
            queue_group("Kafka SETTINGS kafka_broker_list = 'k:1', kafka_group_name = 'encore-clickhouse-m-my_topic-5', kafka_format = 'JSONEachRow'").as_deref(),
            Some("encore-clickhouse-m-my_topic-5")
        );
        assert_eq!(objs.len(), 10);
    }

    #[test]
    fn every_identifier_is_validated_and_literals_quoted() {
        let mut t = target();
        t.database = "music; DROP DATABASE x".into();
        assert!(plan(&t, Dialect::Legacy).is_err());
        let mut t = target();
        t.events_topic = "it's".into();
        let objs = plan(&t, Dialect::Modern).unwrap();
        assert!(
            find(&objs, "music_events_queue")
                .create
                .contains(r"kafka_topic_list = 'it\'s'")
        );
    }

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

//! The plan: every object of the schema with its CREATE statement and what drift detection
//! expects of it.

use super::columns::{Col, columns, errors_columns};
use super::{Dataset, Dialect, Object, Role, Target};
use crate::clickhouse::{ChError, quote_ident, quote_str};
use crate::event::EventType;

/// Every object of the schema, in creation order (storage before the views that feed it, the
/// queue before its views); drop in reverse.
pub fn plan(target: &Target, dialect: Dialect) -> Result<Vec<Object>, ChError> {
    let db = quote_ident(&target.database)?;
    target.check()?;
    let mut out = Vec::new();
    for d in Dataset::ALL {
        let s = DatasetDdl {
            target,
            dialect,
            dataset: d,
            db: &db,
            cols: columns(d, dialect),
        };
        let (sorting, partition) = match d {
            Dataset::Events => ("event_type, event_time, event_id", "toYYYYMM(event_time)"),
            Dataset::Simple => ("timestamp, uuid", "toYYYYMM(timestamp)"),
        };
        debug_assert!(sorting.contains(d.time_column()));
        // Rows with the same sorting key are one event delivered twice; the sorting key ends
        // with the event id, so merges keep one of them.
        let storage = pairs(&s.cols, |c| &c.storage);
        out.push(s.table(
            Role::Storage,
            "",
            "ReplacingMergeTree",
            storage,
            sorting,
            partition,
        )?);
        let errors_cols = errors_columns();
        if dialect.streams_errors() {
            out.push(s.table(
                Role::Errors,
                "_errors",
                "MergeTree",
                pairs(&errors_cols, |c| &c.storage),
                "kafka_topic, kafka_partition, kafka_offset",
                "toYYYYMM(received_at)",
            )?);
        }
        out.push(s.queue()?);
        let sound = s.sound();
        let filter = match dialect {
            Dialect::Modern => format!("\nWHERE length(_error) = 0 AND {sound}"),
            Dialect::Legacy => format!("\nWHERE {sound}"),
        };
        out.push(s.view(Role::View, "", &s.cols, &filter)?);
        if dialect.streams_errors() {
            let filter = format!("\nWHERE length(_error) > 0 OR NOT ({sound})");
            out.push(s.view(Role::ErrorsView, "_errors", &errors_cols, &filter)?);
        }
    }
    Ok(out)
}

/// One dataset's part of the plan.
struct DatasetDdl<'a> {
    target: &'a Target,
    dialect: Dialect,
    dataset: Dataset,
    /// The database, quoted.
    db: &'a str,
    cols: Vec<Col>,
}

/// An object for which drift detection compares only the engine, until the caller says more.
fn object(dataset: Dataset, role: Role, name: String, engine: &'static str) -> Object {
    Object {
        dataset,
        role,
        name,
        engine,
        columns: vec![],
        engine_has: vec![],
        sorting_key: None,
        partition_key: None,
        flows: None,
        create: String::new(),
    }
}

/// (name, type) of the columns that have a type in the table `ty` picks.
fn pairs(cols: &[Col], ty: impl Fn(&Col) -> &Option<String>) -> Vec<(String, String)> {
    cols.iter()
        .filter_map(|c| ty(c).clone().map(|t| (c.name.to_string(), t)))
        .collect()
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

impl DatasetDdl<'_> {
    /// The name of the dataset's object with this suffix.
    fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.target.table(self.dataset))
    }

    /// `db.name`, quoted.
    fn fq(&self, name: &str) -> Result<String, ChError> {
        Ok(format!("{}.{}", self.db, quote_ident(name)?))
    }

    /// `db.name` as the server prints it in a stored query.
    fn plain(&self, name: &str) -> String {
        format!("{}.{name}", self.target.database)
    }

    /// A MergeTree-family table.
    fn table(
        &self,
        role: Role,
        suffix: &str,
        engine: &'static str,
        columns: Vec<(String, String)>,
        sorting: &str,
        partition: &str,
    ) -> Result<Object, ChError> {
        let name = self.name(suffix);
        Ok(Object {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {}\n{}\nENGINE = {engine}\nPARTITION BY {partition}\nORDER BY ({sorting})",
                self.fq(&name)?,
                column_list(&columns)
            ),
            columns,
            sorting_key: Some(sorting.into()),
            partition_key: Some(partition.into()),
            ..object(self.dataset, role, name, engine)
        })
    }

    /// The Kafka engine table reading the dataset's topic.
    fn queue(&self) -> Result<Object, ChError> {
        let (target, d) = (self.target, self.dataset);
        let columns = pairs(&self.cols, |c| &c.queue);
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
        match self.dialect {
            // 18.16 concatenates the messages of a block: the delimiter keeps them apart.
            Dialect::Legacy => settings.push("kafka_row_delimiter = '\\n'".into()),
            Dialect::Modern => settings.push("kafka_handle_error_mode = 'stream'".into()),
        }
        let name = self.name("_queue");
        Ok(Object {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {}\n{}\nENGINE = Kafka\nSETTINGS\n    {}",
                self.fq(&name)?,
                column_list(&columns),
                settings.join(",\n    ")
            ),
            columns,
            engine_has: [
                target
                    .brokers
                    .as_ref()
                    .map(|b| format!("kafka_broker_list = {}", quote_str(b))),
                Some("kafka_format = 'JSONEachRow'".to_string()),
                (self.dialect == Dialect::Modern)
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
            ..object(d, Role::Queue, name, "Kafka")
        })
    }

    /// What a row needs to be stored. Valid JSON can still lack what makes an event (`{}`
    /// parses into default values): such rows are not stored; on servers that stream errors
    /// they go to the errors table.
    fn sound(&self) -> String {
        let zero_uuid = "toUUID('00000000-0000-0000-0000-000000000000')";
        let names: Vec<String> = EventType::ALL.iter().map(|t| quote_str(t.name())).collect();
        match (self.dataset, self.dialect) {
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
        }
    }

    /// The materialized view from the queue into the table with this suffix.
    fn view(&self, role: Role, into: &str, cols: &[Col], filter: &str) -> Result<Object, ChError> {
        let (name, to, queue) = (
            self.name(&format!("{into}_mv")),
            self.name(into),
            self.name("_queue"),
        );
        Ok(Object {
            create: format!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS {} TO {}\nAS {}",
                self.fq(&name)?,
                self.fq(&to)?,
                view_select(cols, &self.fq(&queue)?, filter)
            ),
            flows: Some((self.plain(&queue), self.plain(&to))),
            ..object(self.dataset, role, name, "MaterializedView")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clickhouse::schema::queue_group;
    use crate::clickhouse::schema::tests::{find, target};

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
    fn every_identifier_is_validated() {
        let mut t = target();
        t.database = "music; DROP DATABASE x".into();
        assert!(plan(&t, Dialect::Legacy).is_err());
        let mut t = target();
        t.events_topic = "it's".into();
        let e = plan(&t, Dialect::Modern).unwrap_err().to_string();
        assert!(
            e.contains("topic `it's` gives no ClickHouse table names"),
            "{e}"
        );
    }

    #[test]
    fn another_topic_gets_its_own_names() {
        let mut t = target();
        t.events_topic = "shop.clicks-v2".into();
        let objs = plan(&t, Dialect::Modern).unwrap();
        let names: Vec<&str> = objs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names[..5],
            [
                "shop_clicks_v2",
                "shop_clicks_v2_errors",
                "shop_clicks_v2_queue",
                "shop_clicks_v2_mv",
                "shop_clicks_v2_errors_mv"
            ]
        );
        assert_eq!(names[5], "my_topic", "the simple topic keeps its tables");
        let q = find(&objs, "shop_clicks_v2_queue");
        assert!(q.create.contains("kafka_topic_list = 'shop.clicks-v2'"));
        assert!(
            q.create
                .contains("kafka_group_name = 'encore-clickhouse-music-shop_clicks_v2-1767225600'")
        );
        let mv = find(&objs, "shop_clicks_v2_mv");
        assert!(mv.create.contains(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS `music`.`shop_clicks_v2_mv` TO `music`.`shop_clicks_v2`"
        ));
        assert!(mv.create.contains("FROM `music`.`shop_clicks_v2_queue`"));
        assert_eq!(
            mv.flows,
            Some((
                "music.shop_clicks_v2_queue".into(),
                "music.shop_clicks_v2".into()
            ))
        );
    }
}

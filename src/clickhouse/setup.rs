//! Applying, inspecting and removing encore's ClickHouse schema, and the preset queries.
//! Everything goes through [`ClickHouse`]; the DDL text and the drift rules are in `schema`.

use std::fmt;

use serde_json::Value;

use super::schema::{Dataset, Dialect, Live, Object, Role, Target, drift, plan};
use super::{ChError, ClickHouse, Version, quote_ident, quote_str};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Ch(#[from] ChError),
    /// Live tables differ from the expected schema; nothing was changed.
    #[error(
        "the live schema differs from what encore expects (nothing was changed; `encore clickhouse setup --recreate` drops and recreates the tables, losing their rows):\n{}",
        .0.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
    )]
    Drift(Vec<String>),
}

/// The server, its dialect and what it holds of encore's schema.
pub struct Inspection {
    pub version: Version,
    pub dialect: Dialect,
    pub objects: Vec<(Object, Option<Live>)>,
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
}

/// What `setup` did.
#[derive(Debug, Default)]
pub struct SetupReport {
    pub version: Option<Version>,
    pub dialect: Option<Dialect>,
    pub dropped: Vec<String>,
    pub created: Vec<String>,
    pub unchanged: Vec<String>,
    pub warnings: Vec<String>,
}

impl fmt::Display for SetupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(v), Some(d)) = (self.version, self.dialect) {
            writeln!(f, "ClickHouse {v}: {}", describe_dialect(d))?;
        }
        for (what, names) in [
            ("dropped", &self.dropped),
            ("created", &self.created),
            ("unchanged", &self.unchanged),
        ] {
            if !names.is_empty() {
                writeln!(f, "{what}: {}", names.join(", "))?;
            }
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

pub fn describe_dialect(d: Dialect) -> &'static str {
    match d {
        Dialect::Modern => {
            "current DDL (malformed messages go to the *_errors tables; Kafka source columns kept)"
        }
        Dialect::Legacy => {
            "legacy DDL for servers before 21.12 (no errors tables, no Kafka source columns, DateTime in seconds)"
        }
    }
}

fn rows(body: &str) -> Result<Vec<Value>, ChError> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| ChError::Server {
                status: 200,
                code: None,
                message: format!("unexpected answer `{l}`: {e}"),
            })
        })
        .collect()
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A count from JSON output (64-bit integers arrive quoted).
fn count(v: &Value, key: &str) -> u64 {
    text(v, key).parse().unwrap_or(0)
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
    })
}

/// Drops encore's objects (views first, so nothing is consumed half-way); the database stays.
async fn drop_objects(
    ch: &ClickHouse,
    target: &Target,
    objects: &[Object],
) -> Result<Vec<String>, ChError> {
    let db = quote_ident(&target.database)?;
    let mut dropped = Vec::new();
    for o in objects.iter().rev() {
        let exists = ch
            .query(&format!("EXISTS TABLE {db}.{}", quote_ident(&o.name)?))
            .await?;
        if exists.trim() == "1" {
            ch.query(&format!(
                "DROP TABLE IF EXISTS {db}.{}",
                quote_ident(&o.name)?
            ))
            .await?;
            dropped.push(o.name.clone());
        }
    }
    Ok(dropped)
}

/// The first statement [`setup`] sends: the database, if it does not exist.
pub fn create_database_sql(target: &Target) -> Result<String, ChError> {
    Ok(format!(
        "CREATE DATABASE IF NOT EXISTS {}",
        quote_ident(&target.database)?
    ))
}

/// Creates what is missing. Existing objects that match are left alone (running it twice
/// changes nothing); if any differs, nothing is changed and the differences are returned,
/// unless `recreate`, which drops everything first.
pub async fn setup(
    ch: &ClickHouse,
    target: &Target,
    recreate: bool,
) -> Result<SetupReport, SetupError> {
    let mut report = SetupReport::default();
    ch.query(&create_database_sql(target)?).await?;
    let mut insp = inspect(ch, target).await?;
    if recreate {
        let objects: Vec<Object> = insp.objects.iter().map(|(o, _)| o.clone()).collect();
        report.dropped = drop_objects(ch, target, &objects).await?;
        insp = inspect(ch, target).await?;
    }
    report.version = Some(insp.version);
    report.dialect = Some(insp.dialect);
    let drifted = insp.drift();
    if !drifted.is_empty() {
        return Err(SetupError::Drift(drifted));
    }
    // A queue missing one of its views has been consuming (and committing offsets) for the
    // other one only: what it read is lost to the missing view. Rebuild the queue with its views
    // under a new consumer group, which reads the topic again (the ReplacingMergeTree tables
    // absorb what is delivered twice).
    let mut rebuild: Vec<Object> = Vec::new();
    for d in Dataset::ALL {
        let of = |role: Role| {
            insp.objects
                .iter()
                .find(|(o, _)| o.dataset == d && o.role == role)
        };
        let queue_live = of(Role::Queue).is_some_and(|(_, l)| l.is_some());
        let view_missing = insp.objects.iter().any(|(o, l)| {
            o.dataset == d && matches!(o.role, Role::View | Role::ErrorsView) && l.is_none()
        });
        if queue_live && view_missing {
            rebuild.extend(
                insp.objects
                    .iter()
                    .filter(|(o, _)| {
                        o.dataset == d
                            && matches!(o.role, Role::Queue | Role::View | Role::ErrorsView)
                    })
                    .map(|(o, _)| o.clone()),
            );
        }
    }
    if !rebuild.is_empty() {
        report
            .dropped
            .extend(drop_objects(ch, target, &rebuild).await?);
        report.warnings.push(format!(
            "a queue had lost one of its views: rebuilt {} with a new consumer group, which reads the topic again",
            rebuild.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    for (o, live) in &insp.objects {
        if live.is_some() && !rebuild.iter().any(|r| r.name == o.name) {
            report.unchanged.push(o.name.clone());
        } else {
            ch.query(&o.create).await?;
            report.created.push(o.name.clone());
        }
    }
    if insp.dialect == Dialect::Legacy {
        let allowed = ch
            .query("SELECT value FROM system.settings WHERE name = 'input_format_allow_errors_num'")
            .await?;
        if allowed.trim() == "0" {
            report.warnings.push(format!(
                "ClickHouse {} has no kafka_handle_error_mode: one malformed message stops its \
                 queue until it is deleted from the topic. Set input_format_allow_errors_num in \
                 the server's default profile (scripts/stack.sh does) to skip such messages.",
                insp.version
            ));
        }
    }
    Ok(report)
}

/// Drops encore's tables and views in `target.database`.
pub async fn drop(ch: &ClickHouse, target: &Target) -> Result<Vec<String>, ChError> {
    ch.version().await?;
    // The modern plan names every object either dialect creates.
    let objects = plan(target, Dialect::Modern)?;
    drop_objects(ch, target, &objects).await
}

/// One dataset's figures.
#[derive(Debug)]
pub struct TableStatus {
    pub dataset: Dataset,
    pub rows: u64,
    pub distinct: u64,
    pub last_event: Option<String>,
    pub errors: Option<u64>,
}

/// A queue's consumer-group position per partition (None: the topic does not exist), or why
/// it could not be read.
pub type QueueLag = Result<Option<Vec<crate::kafka::PartitionLag>>, String>;

/// `encore clickhouse status`.
pub struct Status {
    pub inspection: Inspection,
    pub tables: Vec<TableStatus>,
    /// Per dataset: the queue's consumer-group lag, when brokers were given.
    pub lag: Vec<(Dataset, QueueLag)>,
}

impl Status {
    /// The consumer group of each live queue.
    pub fn queue_groups(&self) -> Vec<(Dataset, String)> {
        self.inspection
            .objects
            .iter()
            .filter(|(o, _)| o.role == Role::Queue)
            .filter_map(|(o, l)| {
                l.as_ref()
                    .and_then(|l| super::schema::queue_group(&l.engine_full))
                    .map(|g| (o.dataset, g))
            })
            .collect()
    }

    /// Every object exists and matches.
    pub fn healthy(&self) -> bool {
        self.inspection.objects.iter().all(|(_, l)| l.is_some())
            && self.inspection.drift().is_empty()
    }
}

pub async fn status(ch: &ClickHouse, target: &Target) -> Result<Status, ChError> {
    let inspection = inspect(ch, target).await?;
    let db = quote_ident(&target.database)?;
    let mut tables = Vec::new();
    for d in Dataset::ALL {
        let has = |role: Role| {
            inspection
                .objects
                .iter()
                .any(|(o, l)| o.dataset == d && o.role == role && l.is_some())
        };
        if !has(Role::Storage) {
            continue;
        }
        let id = match d {
            Dataset::Events => "event_id",
            Dataset::Simple => "uuid",
        };
        let r = rows(
            &ch.query(&format!(
                "SELECT count() AS rows, uniqExact({id}) AS distinct, toString(max({})) AS last \
                 FROM {db}.{} FORMAT JSONEachRow",
                d.time_column(),
                quote_ident(d.table())?
            ))
            .await?,
        )?;
        let r = r.first().cloned().unwrap_or(Value::Null);
        let rows_n = count(&r, "rows");
        let errors = if has(Role::Errors) {
            let e = ch
                .query(&format!(
                    "SELECT count() FROM {db}.{}",
                    quote_ident(&format!("{}_errors", d.table()))?
                ))
                .await?;
            Some(e.trim().parse().unwrap_or(0))
        } else {
            None
        };
        tables.push(TableStatus {
            dataset: d,
            rows: rows_n,
            distinct: count(&r, "distinct"),
            last_event: (rows_n > 0).then(|| text(&r, "last")),
            errors,
        });
    }
    Ok(Status {
        inspection,
        tables,
        lag: vec![],
    })
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inspection;
        writeln!(
            f,
            "ClickHouse {}: {}",
            i.version,
            describe_dialect(i.dialect)
        )?;
        for (o, live) in &i.objects {
            let state = match live {
                None => "MISSING".to_string(),
                Some(l) => {
                    let d = drift(o, l);
                    if d.is_empty() {
                        "ok".into()
                    } else {
                        format!("DRIFT: {}", d.join("; "))
                    }
                }
            };
            write!(f, "  {:<22} {:<18} {state}", o.name, o.engine)?;
            if o.role == Role::Storage
                && let Some(t) = self.tables.iter().find(|t| t.dataset == o.dataset)
            {
                write!(f, "; {} rows, {} distinct", t.rows, t.distinct)?;
                if let Some(last) = &t.last_event {
                    write!(f, ", last event {last} UTC")?;
                }
            }
            if o.role == Role::Errors
                && let Some(t) = self.tables.iter().find(|t| t.dataset == o.dataset)
            {
                write!(f, "; {} malformed messages", t.errors.unwrap_or(0))?;
            }
            if o.role == Role::Queue {
                match self.lag.iter().find(|(d, _)| *d == o.dataset) {
                    None => write!(f, "; lag unknown (give --brokers)")?,
                    Some((_, Err(e))) => write!(f, "; lag unknown: {e}")?,
                    Some((_, Ok(None))) => write!(f, "; the topic does not exist yet")?,
                    Some((_, Ok(Some(parts)))) => {
                        let lag: i64 = parts.iter().map(|p| p.lag()).sum();
                        let high: i64 = parts.iter().map(|p| p.high).sum();
                        write!(
                            f,
                            "; consumer lag {lag} of {high} records over {} partitions",
                            parts.len()
                        )?
                    }
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// The preset queries of `encore clickhouse query`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The latest 100 track_playback events with user and track.
    Latest,
    /// Events per event type, with the total.
    Counts,
    /// The 10 most played tracks in the last hour of event time in the table.
    TopTracks,
    /// Events and listeners per minute over the last hour of event time in the table.
    PerMinute,
    /// The latest 20 people of the simple topic.
    Names,
    /// The latest 50 malformed messages (servers from 21.12 on).
    Errors,
}

impl Preset {
    pub fn sql(self, database: &str, dialect: Dialect) -> Result<String, ChError> {
        let db = quote_ident(database)?;
        let events = format!("{db}.`music_events`");
        // "The last hour" is measured back from the newest event in the table: simulated events
        // may lie in the past (seeded runs start on 2026-01-01) or ahead of the wall clock.
        let last_hour =
            format!("event_time > (SELECT max(event_time) FROM {events}) - INTERVAL 1 HOUR");
        Ok(match self {
            Preset::Latest => format!(
                "SELECT event_time, user_id, track_id, platform, country, position_ms \
                 FROM {events} FINAL WHERE event_type = 'track_playback' \
                 ORDER BY event_time DESC, event_id DESC LIMIT 100"
            ),
            Preset::Counts => format!(
                "SELECT event_type_id AS id, toString(event_type) AS event_type, count() AS events \
                 FROM {events} FINAL GROUP BY event_type_id, event_type WITH TOTALS ORDER BY id"
            ),
            Preset::TopTracks => format!(
                "SELECT track_id, count() AS plays, uniqExact(user_id) AS listeners \
                 FROM {events} FINAL WHERE event_type = 'track_playback' AND {last_hour} \
                 GROUP BY track_id ORDER BY plays DESC, track_id LIMIT 10"
            ),
            Preset::PerMinute => format!(
                "SELECT toStartOfMinute(event_time) AS minute, count() AS events, \
                 uniqExact(user_id) AS listeners FROM {events} FINAL WHERE {last_hour} \
                 GROUP BY minute ORDER BY minute DESC LIMIT 60"
            ),
            Preset::Names => format!(
                "SELECT timestamp, uuid, last_name, first_name, middle_name \
                 FROM {db}.`my_topic` FINAL ORDER BY timestamp DESC, uuid LIMIT 20"
            ),
            Preset::Errors => {
                if !dialect.streams_errors() {
                    return Err(ChError::Config(
                        "this server is older than 21.12, for which encore creates no errors \
                         tables (malformed messages are skipped when the \
                         server allows input format errors, and stop the queue otherwise)"
                            .into(),
                    ));
                }
                let one = |t: &str| {
                    format!(
                        "SELECT received_at, kafka_topic, kafka_partition, kafka_offset, error, \
                         substring(raw_message, 1, 120) AS raw FROM {db}.`{t}`"
                    )
                };
                format!(
                    "SELECT * FROM ({} UNION ALL {}) ORDER BY received_at DESC LIMIT 50",
                    one("music_events_errors"),
                    one("my_topic_errors")
                )
            }
        })
    }
}

/// A query's answer as a table.
#[derive(Debug, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub totals: Option<Vec<String>>,
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "NULL".into(),
        other => other.to_string(),
    }
}

/// Runs `sql` (without a FORMAT clause) and returns its answer as a table.
pub async fn query_table(ch: &ClickHouse, sql: &str) -> Result<Table, ChError> {
    let body = ch.query(&format!("{sql} FORMAT JSONCompact")).await?;
    let v: Value = serde_json::from_str(&body).map_err(|e| ChError::Server {
        status: 200,
        code: None,
        message: format!("unexpected answer: {e}"),
    })?;
    let columns = v["meta"]
        .as_array()
        .map(|m| m.iter().map(|c| text(c, "name")).collect())
        .unwrap_or_default();
    let row = |r: &Value| {
        r.as_array()
            .map(|r| r.iter().map(cell).collect())
            .unwrap_or_default()
    };
    Ok(Table {
        columns,
        rows: v["data"]
            .as_array()
            .map(|d| d.iter().map(row).collect())
            .unwrap_or_default(),
        totals: v.get("totals").map(row),
    })
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // ClickHouse fills a totals row's key cells with defaults: keep only the columns that
        // are numbers in every row (the aggregates), and label the row.
        let numeric = |i: usize| {
            self.rows
                .iter()
                .all(|r| r.get(i).is_some_and(|c| c.parse::<f64>().is_ok()))
        };
        let totals = self
            .totals
            .as_ref()
            .filter(|_| !self.rows.is_empty())
            .map(|t| {
                let mut t: Vec<String> = t
                    .iter()
                    .enumerate()
                    .map(|(i, c)| if numeric(i) { c.clone() } else { String::new() })
                    .collect();
                if let Some(first) = t.first_mut() {
                    *first = "total".into();
                }
                t
            });
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for r in self.rows.iter().chain(totals.as_ref()) {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}", w = *w))
                .collect();
            writeln!(f, "{}", parts.join("  ").trim_end())
        };
        line(f, &self.columns)?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(f, &rule)?;
        for r in &self.rows {
            line(f, r)?;
        }
        if let Some(t) = &totals {
            line(f, &rule)?;
            line(f, t)?;
        }
        writeln!(f, "({} rows)", self.rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_qualified_and_errors_need_a_modern_server() {
        for p in [
            Preset::Latest,
            Preset::Counts,
            Preset::TopTracks,
            Preset::PerMinute,
        ] {
            let sql = p.sql("music", Dialect::Legacy).unwrap();
            assert!(sql.contains("`music`.`music_events` FINAL"), "{sql}");
        }
        assert!(Preset::Errors.sql("music", Dialect::Legacy).is_err());
        assert!(
            Preset::Errors
                .sql("music", Dialect::Modern)
                .unwrap()
                .contains("`music`.`my_topic_errors`")
        );
        assert!(Preset::Counts.sql("bad name", Dialect::Modern).is_err());
    }

    #[test]
    fn tables_render_aligned_with_totals() {
        let t = Table {
            columns: vec!["id".into(), "event_type".into(), "events".into()],
            rows: vec![
                vec!["1".into(), "track_playback".into(), "35".into()],
                vec!["2".into(), "pause_track".into(), "7".into()],
            ],
            totals: Some(vec!["0".into(), "track_playback".into(), "42".into()]),
        };
        let s = t.to_string();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "id     event_type      events");
        assert_eq!(lines[2], "1      track_playback  35");
        assert_eq!(lines[5], "total                  42");
        assert_eq!(lines[1], "-----  --------------  ------");
        assert_eq!(lines[6], "(2 rows)");
    }
}

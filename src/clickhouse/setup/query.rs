//! The preset queries of `encore clickhouse query`, and their answers as tables.

use std::fmt;

use serde_json::Value;

use super::text;
use crate::clickhouse::schema::{Dataset, Dialect, Target};
use crate::clickhouse::{ChError, ClickHouse, quote_ident};

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
    /// The query on the target's tables (named after its topics).
    pub fn sql(self, target: &Target, dialect: Dialect) -> Result<String, ChError> {
        target.check()?;
        let db = quote_ident(&target.database)?;
        let table = |d: Dataset, suffix: &str| -> Result<String, ChError> {
            Ok(format!(
                "{db}.{}",
                quote_ident(&format!("{}{suffix}", target.table(d)))?
            ))
        };
        let events = table(Dataset::Events, "")?;
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
                 FROM {} FINAL ORDER BY timestamp DESC, uuid LIMIT 20",
                table(Dataset::Simple, "")?
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
                let one = |d: Dataset| -> Result<String, ChError> {
                    Ok(format!(
                        "SELECT received_at, kafka_topic, kafka_partition, kafka_offset, error, \
                         substring(raw_message, 1, 120) AS raw FROM {}",
                        table(d, "_errors")?
                    ))
                };
                format!(
                    "SELECT * FROM ({} UNION ALL {}) ORDER BY received_at DESC LIMIT 50",
                    one(Dataset::Events)?,
                    one(Dataset::Simple)?
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

    fn target(database: &str, events_topic: &str) -> Target {
        Target {
            database: database.into(),
            brokers: None,
            events_topic: events_topic.into(),
            simple_topic: "my_topic".into(),
            generation: 1,
        }
    }

    #[test]
    fn presets_are_qualified_and_errors_need_a_modern_server() {
        let music = target("music", "music_events");
        for p in [
            Preset::Latest,
            Preset::Counts,
            Preset::TopTracks,
            Preset::PerMinute,
        ] {
            let sql = p.sql(&music, Dialect::Legacy).unwrap();
            assert!(sql.contains("`music`.`music_events` FINAL"), "{sql}");
        }
        assert!(Preset::Errors.sql(&music, Dialect::Legacy).is_err());
        assert!(
            Preset::Errors
                .sql(&music, Dialect::Modern)
                .unwrap()
                .contains("`music`.`my_topic_errors`")
        );
        let bad = target("bad name", "music_events");
        assert!(Preset::Counts.sql(&bad, Dialect::Modern).is_err());
    }

    #[test]
    fn presets_read_the_topics_tables() {
        let t = target("music", "shop.clicks");
        let sql = Preset::Counts.sql(&t, Dialect::Modern).unwrap();
        assert!(sql.contains("FROM `music`.`shop_clicks` FINAL"), "{sql}");
        assert!(!sql.contains("music_events"), "{sql}");
        let sql = Preset::Errors.sql(&t, Dialect::Modern).unwrap();
        assert!(sql.contains("`music`.`shop_clicks_errors`"), "{sql}");
        assert!(sql.contains("`music`.`my_topic_errors`"), "{sql}");
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

//! `encore clickhouse status`: each object's state, each table's figures, each queue's lag.

use std::fmt;

use serde_json::Value;

use super::inspect::{Inspection, inspect};
use super::{count, describe_dialect, rows, text};
use crate::clickhouse::schema::{
    Dataset, Role, Target, drift, queue_group, queue_topics, table_name,
};
use crate::clickhouse::{ChError, ClickHouse, quote_ident, quote_str};

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
    /// The target's names are another topic's (see `inspect::conflicts`).
    pub conflicts: Vec<String>,
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
                    .and_then(|l| crate::clickhouse::schema::queue_group(&l.engine_full))
                    .map(|g| (o.dataset, g))
            })
            .collect()
    }

    /// Every object exists and matches.
    pub fn healthy(&self) -> bool {
        self.inspection.objects.iter().all(|(_, l)| l.is_some())
            && self.inspection.drift().is_empty()
            && self.conflicts.is_empty()
    }
}

/// A Kafka table that ingests a topic, and its consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicQueue {
    pub table: String,
    pub group: String,
}

/// The Kafka table of `database` that ingests `topic`: the one named after it (see
/// `schema::names`), else any that reads it; None when no table does.
pub async fn topic_queue(
    ch: &ClickHouse,
    database: &str,
    topic: &str,
) -> Result<Option<TopicQueue>, ChError> {
    let tables = rows(
        &ch.query(&format!(
            "SELECT name, engine_full FROM system.tables WHERE database = {} AND engine = 'Kafka' \
             ORDER BY name FORMAT JSONEachRow",
            quote_str(database)
        ))
        .await?,
    )?;
    let ours = format!("{}_queue", table_name(topic)?);
    let reads = |t: &&Value| {
        queue_topics(&text(t, "engine_full"))
            .iter()
            .any(|x| x == topic)
    };
    let found = tables
        .iter()
        .filter(reads)
        .find(|t| text(t, "name") == ours)
        .or_else(|| tables.iter().find(reads));
    Ok(found.and_then(|t| {
        Some(TopicQueue {
            table: text(t, "name"),
            group: queue_group(&text(t, "engine_full"))?,
        })
    }))
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
                quote_ident(&target.table(d))?
            ))
            .await?,
        )?;
        let r = r.first().cloned().unwrap_or(Value::Null);
        let rows_n = count(&r, "rows");
        let errors = if has(Role::Errors) {
            let e = ch
                .query(&format!(
                    "SELECT count() FROM {db}.{}",
                    quote_ident(&format!("{}_errors", target.table(d)))?
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
        conflicts: inspection.conflicts(target),
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
        for c in &self.conflicts {
            writeln!(f, "  CONFLICT: {c}")?;
        }
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

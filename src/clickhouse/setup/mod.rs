//! Applying, inspecting and removing encore's ClickHouse schema, and the preset queries.
//! Everything goes through [`ClickHouse`](super::ClickHouse); the DDL text and the drift rules are in `schema`.
//!
//! `inspect` reads what the server has, `apply` creates and drops the schema, `status` is
//! `encore clickhouse status` and `query` the preset queries.

mod apply;
mod inspect;
mod query;
mod status;

pub use apply::{Dropped, SetupError, SetupReport, create_database_sql, drop, setup};
pub use inspect::{Inspection, inspect};
pub use query::{Preset, Table, query_table};
pub use status::{QueueLag, Status, TableStatus, TopicQueue, status, topic_queue};

use serde_json::Value;

use super::ChError;
use super::schema::Dialect;

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

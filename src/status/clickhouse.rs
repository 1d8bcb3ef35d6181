//! The ClickHouse side of `encore status`: which Kafka table of the database ingests the topic,
//! and under which consumer group (whose committed offsets are ClickHouse's position: the
//! Kafka engine commits once a block is stored).

use crate::clickhouse::ClickHouse;
use crate::config::ClickHouseConfig;
use crate::error::CommandError;

use super::report::ClickHouseQueue;

/// A client of the ClickHouse of `cfg` that keeps trying it for `--clickhouse-timeout`; a
/// bad URL is refused here, before anything is read.
pub fn client(cfg: &ClickHouseConfig) -> Result<ClickHouse, CommandError> {
    Ok(ClickHouse::new(cfg.connection.clone())?.with_patience(Some(cfg.patience)))
}

/// The database's Kafka table reading `topic`, within `--clickhouse-timeout`; None when no
/// table does.
pub async fn queue(
    ch: &ClickHouse,
    cfg: &ClickHouseConfig,
    topic: &str,
) -> Result<Option<ClickHouseQueue>, CommandError> {
    let database = &cfg.target.database;
    let found = tokio::time::timeout(
        cfg.patience,
        crate::clickhouse::setup::topic_queue(ch, database, topic),
    )
    .await
    .map_err(|_| {
        CommandError::Usage(format!(
            "ClickHouse at `{}` did not answer within {} (--clickhouse-timeout)",
            cfg.connection.url,
            humantime::format_duration(cfg.patience)
        ))
    })??;
    Ok(found.map(|q| ClickHouseQueue {
        database: database.clone(),
        table: q.table,
        group: q.group,
    }))
}

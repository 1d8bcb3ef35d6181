//! `encore clickhouse setup | status | drop | query`: each writes its result to `out` and
//! returns how it failed, if it did. Must be called inside an actix `System` (the schema is
//! applied by the DDL actor, as in a run).

use std::io::Write;

use crate::cli::{ClickHouseCommand, ClickHouseQueryArgs, ClickHouseSetupArgs};
use crate::config::{ClickHouseConfig, KafkaConfig};
use crate::error::CommandError;
use crate::pipeline::{apply_clickhouse, cluster, prepare_clickhouse_topics};

use super::ClickHouse;
use super::schema::{Dataset, Dialect, Target};
use super::setup::{self, Status};

/// Runs one ClickHouse command against `cfg` (with Kafka, when given, for topics and lag).
pub async fn run(
    cmd: ClickHouseCommand,
    cfg: ClickHouseConfig,
    kafka: Option<KafkaConfig>,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let ch =
        ClickHouse::new(cfg.connection.clone()).map_err(|e| CommandError::Usage(e.to_string()))?;
    match cmd {
        ClickHouseCommand::Setup(a) => setup_schema(&a, cfg, kafka, out).await,
        ClickHouseCommand::Status(_) => status(&ch, &cfg.target, kafka, out).await,
        ClickHouseCommand::Drop(_) => drop(&ch, &cfg.target, out).await,
        ClickHouseCommand::Query(a) => query(&ch, &cfg.target, &a, out).await,
    }
}

async fn setup_schema(
    a: &ClickHouseSetupArgs,
    cfg: ClickHouseConfig,
    kafka: Option<KafkaConfig>,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let target = cfg.target.clone();
    match &kafka {
        Some(k) => {
            let admin = cluster(k)?;
            prepare_clickhouse_topics(&admin, &target, a.partitions, k.replication).await?
        }
        None => crate::say!(
            "warning: without --brokers encore cannot check that `{}` and `{}` exist; \
             create them before ClickHouse's queues, which notice a new topic only at \
             their next metadata refresh (5 minutes by default)",
            target.events_topic,
            target.simple_topic
        ),
    }
    let cfg = ClickHouseConfig {
        recreate: a.recreate,
        ..cfg
    };
    let (_, report) = apply_clickhouse(&cfg).await?;
    let _ = write!(out, "{report}");
    let _ = writeln!(
        out,
        "database `{}` ready: ClickHouse reads `{}` into `{}` and `{}` into `{}` from {}",
        target.database,
        target.events_topic,
        target.table(Dataset::Events),
        target.simple_topic,
        target.table(Dataset::Simple),
        target.brokers.as_deref().unwrap_or_default()
    );
    Ok(())
}

async fn drop(ch: &ClickHouse, target: &Target, out: &mut impl Write) -> Result<(), CommandError> {
    let d = setup::drop(ch, target).await?;
    if d.dropped.is_empty() {
        let _ = writeln!(out, "nothing to drop in `{}`", target.database);
    } else {
        let _ = writeln!(out, "dropped: {}", d.dropped.join(", "));
    }
    if !d.kept.is_empty() {
        let _ = writeln!(
            out,
            "kept: {} (the simple topic's, shared with the tables of {})",
            d.kept.join(", "),
            d.others
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

async fn status(
    ch: &ClickHouse,
    target: &Target,
    kafka: Option<KafkaConfig>,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let mut status = setup::status(ch, target).await?;
    if let Some(k) = kafka {
        add_queue_lag(&mut status, target, &k).await;
    }
    let _ = write!(out, "{status}");
    if status.healthy() {
        Ok(())
    } else if !status.conflicts.is_empty() {
        Err(CommandError::Failed(
            "this topic's table names are another topic's in this database; give one of them \
             another --clickhouse-database"
                .into(),
        ))
    } else {
        Err(CommandError::Failed(
            "the schema is incomplete or differs; `encore clickhouse setup` creates what is missing"
                .into(),
        ))
    }
}

/// Each queue's consumer-group lag on its topic, read from Kafka.
async fn add_queue_lag(status: &mut Status, target: &Target, k: &KafkaConfig) {
    for (d, group) in status.queue_groups() {
        let (cfg, topic) = (k.connection.clone(), target.topic(d).to_string());
        let lag =
            tokio::task::spawn_blocking(move || crate::kafka::group_lag(&cfg, &group, &topic))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
        status.lag.push((d, lag));
    }
}

async fn query(
    ch: &ClickHouse,
    target: &Target,
    a: &ClickHouseQueryArgs,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    let dialect = Dialect::for_version(ch.version().await?);
    let sql = a.preset.sql(target, dialect)?;
    let table = setup::query_table(ch, &sql).await?;
    let _ = write!(out, "{table}");
    Ok(())
}

/// `setup --print`: every statement setup sends to a server of `version`, in order, as a
/// script (`;` after each), without contacting anything.
pub fn setup_statements(target: &super::schema::Target, version: &str) -> Result<String, String> {
    let v = super::Version::parse(version)
        .ok_or_else(|| format!("--server-version `{version}` is not a version like 24.8"))?;
    let dialect = Dialect::for_version(v);
    let mut out = format!(
        "-- encore clickhouse setup for ClickHouse {version} ({dialect:?} dialect)\n{};\n",
        setup::create_database_sql(target).map_err(|e| e.to_string())?
    );
    for o in super::schema::plan(target, dialect).map_err(|e| e.to_string())? {
        out.push_str(&format!("\n{};\n", o.create.trim_end_matches(';')));
    }
    Ok(out)
}

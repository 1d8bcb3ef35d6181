//! ClickHouse in a run: the schema applied by the DDL actor before anything is published, or,
//! while the server does not answer, in the background as soon as it does. Retrying is the
//! client's (its patience); this only decides how long to wait.

use actix::prelude::*;
use tokio::sync::watch;

use crate::actors::clickhouse_ddl::ClickHouseDdl;
use crate::clickhouse::setup::{SetupError, SetupReport};
use crate::clickhouse::{ChError, ClickHouse, DEFAULT_PATIENCE};
use crate::config::ClickHouseConfig;
use crate::messages::ApplySchema;

use super::summary::RunError;

/// Starts the ClickHouseDdl actor and has it apply the schema, waiting up to the configured
/// patience for a server that does not answer; the actor stays up as long as the returned
/// address is held.
pub async fn apply_clickhouse(
    cfg: &ClickHouseConfig,
) -> Result<(Addr<ClickHouseDdl>, SetupReport), SetupError> {
    let ch = ClickHouse::new(cfg.connection.clone())?.with_patience(Some(cfg.patience));
    let ddl = ClickHouseDdl::new(ch, cfg.target.clone()).start();
    let report = apply(&ddl, cfg.recreate).await?;
    Ok((ddl, report))
}

async fn apply(ddl: &Addr<ClickHouseDdl>, recreate: bool) -> Result<SetupReport, SetupError> {
    ddl.send(ApplySchema { recreate })
        .await
        .map_err(|e| ChError::Config(format!("the ClickHouse DDL actor stopped: {e}")))?
}

/// Where a run's ClickHouse schema stands.
#[derive(Clone, Debug)]
enum DdlState {
    Applied,
    /// Not reachable yet: the DDL actor keeps trying (the error that started the wait).
    Retrying(String),
    /// Reached, and refused (drift, permissions): not retried.
    Failed(String),
}

/// A run's ClickHouse: the state of its schema.
pub(super) struct ClickHouseHandle {
    state: watch::Receiver<DdlState>,
}

impl ClickHouseHandle {
    /// None when the schema is in place; otherwise why the run must not report success.
    pub fn unfinished(&self) -> Option<String> {
        match &*self.state.borrow() {
            DdlState::Applied => None,
            DdlState::Retrying(e) => Some(format!(
                "ClickHouse stayed unreachable for the whole run, so its schema was not applied ({e}); the lake and the topic are complete: `encore clickhouse setup` later creates the queues, which read the topic from its start"
            )),
            DdlState::Failed(e) => Some(format!(
                "ClickHouse refused the schema after it came back: {e}; the lake and the topic are complete"
            )),
        }
    }
}

/// Applies the schema before anything is published. A server that answers and refuses (drift,
/// bad credentials) stops the run here; one that does not answer yet is waited for in the
/// background while the lake path runs: its queues read the topic from the start whenever
/// they are created, so nothing is missed.
pub(super) async fn start_clickhouse(cfg: &ClickHouseConfig) -> Result<ClickHouseHandle, RunError> {
    let fail = |e: SetupError| match e {
        SetupError::Ch(ChError::Config(_)) => RunError::Usage(format!("ClickHouse: {e}")),
        // The server refused, or its tables differ: not a usage error (exit 1).
        e => RunError::Refused(format!("ClickHouse: {e}")),
    };
    let ch = ClickHouse::new(cfg.connection.clone()).map_err(|e| fail(e.into()))?;
    // A brief wait now (a server restarting), so the lake path is not held up.
    let first = ClickHouseDdl::new(
        ch.clone().with_patience(Some(DEFAULT_PATIENCE)),
        cfg.target.clone(),
    )
    .start();
    match apply(&first, cfg.recreate).await {
        Ok(report) => {
            ready(report);
            let (_tx, state) = watch::channel(DdlState::Applied);
            Ok(ClickHouseHandle { state })
        }
        Err(SetupError::Ch(e)) if e.is_unreachable() => {
            tracing::warn!(
                error = %e,
                "ClickHouse is not reachable; the run goes on and the schema is applied as soon as it answers"
            );
            let (tx, state) = watch::channel(DdlState::Retrying(e.to_string()));
            let patient = ClickHouseDdl::new(ch.with_patience(None), cfg.target.clone()).start();
            let recreate = cfg.recreate;
            actix::spawn(async move {
                let next = match apply(&patient, recreate).await {
                    Ok(report) => {
                        ready(report);
                        DdlState::Applied
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "ClickHouse refused the schema");
                        DdlState::Failed(e.to_string())
                    }
                };
                let _ = tx.send(next);
            });
            Ok(ClickHouseHandle { state })
        }
        Err(e) => Err(fail(e)),
    }
}

fn ready(report: SetupReport) {
    tracing::info!(
        created = report.created.len(),
        unchanged = report.unchanged.len(),
        dropped = report.dropped.len(),
        "ClickHouse schema ready"
    );
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
}

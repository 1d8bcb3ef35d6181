//! ClickHouse in a run: the schema applied by the DDL actor before anything is published, or,
//! while the server does not answer, in the background as soon as it does.

use std::time::Duration;

use actix::prelude::*;

use crate::actors::clickhouse_ddl::ClickHouseDdl;
use crate::clickhouse::setup::{SetupError, SetupReport};
use crate::clickhouse::{ChError, ClickHouse};
use crate::config::ClickHouseConfig;
use crate::messages::ApplySchema;

use super::summary::RunError;

/// Starts the ClickHouseDdl actor and has it apply the schema; the actor stays up as long as
/// the returned address is held.
pub async fn apply_clickhouse(
    run: &ClickHouseConfig,
) -> Result<(Addr<ClickHouseDdl>, SetupReport), SetupError> {
    let ch = ClickHouse::new(run.connection.clone())?;
    let ddl = ClickHouseDdl::new(ch, run.target.clone(), run.patience).start();
    let report = ddl
        .send(ApplySchema {
            recreate: run.recreate,
        })
        .await
        .map_err(|e| ChError::Config(format!("the ClickHouse DDL actor stopped: {e}")))??;
    Ok((ddl, report))
}

/// Where a run's ClickHouse schema stands.
#[derive(Clone, Debug)]
enum DdlState {
    Applied,
    /// Not reachable yet: the DDL actor keeps trying (the last error).
    Retrying(String),
    /// Reached, and refused (drift, permissions): not retried.
    Failed(String),
}

/// A run's ClickHouse: the DDL actor and the state of its schema.
pub(super) struct ClickHouseHandle {
    _ddl: Addr<ClickHouseDdl>,
    state: tokio::sync::watch::Receiver<DdlState>,
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

/// Waits between attempts to reach a ClickHouse that was down at start.
const DDL_RETRY_FIRST: Duration = Duration::from_secs(1);
const DDL_RETRY_CAP: Duration = Duration::from_secs(10);

/// Applies the schema before anything is published. A server that answers and refuses (drift,
/// bad credentials) stops the run here; one that does not answer yet is retried in the
/// background while the lake path runs: its queues read the topic from the start whenever
/// they are created, so nothing is missed.
pub(super) async fn start_clickhouse(run: &ClickHouseConfig) -> Result<ClickHouseHandle, RunError> {
    let fail = |e: SetupError| match e {
        SetupError::Ch(ChError::Config(_)) => RunError::Usage(format!("ClickHouse: {e}")),
        // The server refused, or its tables differ: not a usage error (exit 1).
        e => RunError::Refused(format!("ClickHouse: {e}")),
    };
    let ch = ClickHouse::new(run.connection.clone()).map_err(|e| fail(e.into()))?;
    // One attempt per request (its statements still retry a refused connection briefly); the
    // waiting between attempts is done here, so the lake path never waits for it.
    let ddl = ClickHouseDdl::new(ch, run.target.clone(), Duration::ZERO).start();
    let apply = {
        let (ddl, recreate) = (ddl.clone(), run.recreate);
        move || {
            let ddl = ddl.clone();
            async move {
                ddl.send(ApplySchema { recreate }).await.map_err(|e| {
                    ChError::Config(format!("the ClickHouse DDL actor stopped: {e}"))
                })?
            }
        }
    };
    let ready = |report: SetupReport| {
        tracing::info!(
            created = report.created.len(),
            unchanged = report.unchanged.len(),
            dropped = report.dropped.len(),
            "ClickHouse schema ready"
        );
        for w in &report.warnings {
            tracing::warn!("{w}");
        }
    };
    match apply().await {
        Ok(report) => {
            ready(report);
            let (_tx, state) = tokio::sync::watch::channel(DdlState::Applied);
            Ok(ClickHouseHandle { _ddl: ddl, state })
        }
        Err(SetupError::Ch(e @ ChError::Connect { .. })) => {
            tracing::warn!(
                error = %e,
                "ClickHouse is not reachable; the run goes on and the schema is applied as soon as it answers"
            );
            let (tx, state) = tokio::sync::watch::channel(DdlState::Retrying(e.to_string()));
            actix::spawn(async move {
                let mut delay = DDL_RETRY_FIRST;
                loop {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(DDL_RETRY_CAP);
                    let next = match apply().await {
                        Ok(report) => {
                            ready(report);
                            DdlState::Applied
                        }
                        Err(SetupError::Ch(e @ ChError::Connect { .. })) => {
                            tracing::debug!(error = %e, "ClickHouse still unreachable");
                            DdlState::Retrying(e.to_string())
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "ClickHouse refused the schema");
                            DdlState::Failed(e.to_string())
                        }
                    };
                    let done = !matches!(next, DdlState::Retrying(_));
                    if tx.send(next).is_err() || done {
                        return;
                    }
                }
            });
            Ok(ClickHouseHandle { _ddl: ddl, state })
        }
        Err(e) => Err(fail(e)),
    }
}

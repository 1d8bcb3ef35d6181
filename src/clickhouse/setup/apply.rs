//! Applying and removing the schema.

use std::fmt;

use super::describe_dialect;
use super::inspect::{Inspection, inspect};
use crate::clickhouse::schema::{Dataset, Dialect, Object, Role, Target, plan};
use crate::clickhouse::{ChError, ClickHouse, Version, quote_ident};

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
    /// The topic's names are another topic's in this database; nothing was changed.
    #[error(
        "the tables of this topic would be another topic's (nothing was changed or dropped; tables are named after their topic, with . and - as _):\n{}",
        .0.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
    )]
    Conflict(Vec<String>),
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
    // Before --recreate: what it would drop is another topic's.
    let conflicts = insp.conflicts(target);
    if !conflicts.is_empty() {
        return Err(SetupError::Conflict(conflicts));
    }
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
    let rebuild = lost_views(&insp);
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

/// A queue missing one of its views has been consuming (and committing offsets) for the
/// other one only: what it read is lost to the missing view. Rebuild the queue with its views
/// under a new consumer group, which reads the topic again (the ReplacingMergeTree tables
/// absorb what is delivered twice). These are the objects to rebuild.
fn lost_views(insp: &Inspection) -> Vec<Object> {
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
    rebuild
}

/// What `drop` did.
#[derive(Debug, Default)]
pub struct Dropped {
    pub dropped: Vec<String>,
    /// The simple topic's objects, kept for the other topics whose tables share them.
    pub kept: Vec<String>,
    pub others: Vec<String>,
}

/// Drops the target's tables and views in `target.database`: those named after its topics,
/// never another topic's, and the simple topic's only when no other topic's queue is left.
pub async fn drop(ch: &ClickHouse, target: &Target) -> Result<Dropped, SetupError> {
    let insp = inspect(ch, target).await?;
    let conflicts = insp.conflicts(target);
    if !conflicts.is_empty() {
        return Err(SetupError::Conflict(conflicts));
    }
    let others = insp.other_topics(target);
    // The modern plan names every object either dialect creates.
    let (mut objects, mut kept) = (plan(target, Dialect::Modern)?, Vec::new());
    if !others.is_empty() {
        objects.retain(|o| {
            let keep = o.dataset == Dataset::Simple;
            if keep
                && insp
                    .objects
                    .iter()
                    .any(|(l, live)| l.name == o.name && live.is_some())
            {
                kept.push(o.name.clone());
            }
            !keep
        });
    }
    Ok(Dropped {
        dropped: drop_objects(ch, target, &objects).await?,
        kept,
        others,
    })
}

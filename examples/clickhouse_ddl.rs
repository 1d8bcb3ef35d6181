//! The ClickHouse DDL encore sends, and messages to feed it, for checks that run the DDL on a
//! ClickHouse engine without a Kafka broker (scripts/check_clickhouse_current.py runs it in chdb).
//!
//! `clickhouse_ddl ddl [--dialect modern|legacy] [--database music] [--events-topic music_events]
//! [--simple-topic my_topic] [--brokers kafka:9092]` prints, as one JSON document, the statements
//! `encore clickhouse setup` sends to an empty database of a server of that dialect, in order:
//! `{"dialect", "database", "statements": [{"role", "dataset", "name", "engine", "columns", "sql"}]}`.
//! `role` is `database`, `storage`, `errors`, `queue`, `view` or `errors_view`; `columns` are the
//! table's `(name, type)` pairs (empty for views and the database). Everything comes from
//! `encore::clickhouse`, nothing is copied.
//!
//! `clickhouse_ddl drift [same options] < live.json` runs encore's own drift detection (what
//! `encore clickhouse status` and `setup` report) on a server's `system.tables` rows and
//! `DESCRIBE` output given as JSON, and prints the differences per object.
//!
//! `clickhouse_ddl messages [--events 2000] [--users 50] [--people 100] [--seed 7] [--per-kind 3]`
//! prints one JSON line per record a topic would carry: `{"topic", "kind", "hex"}` with the
//! record's bytes in hex (some are not UTF-8). Kinds: `event` (the simulator's events, encoded as
//! the listeners encode them), each of the simulator's malformed kinds (`--inject malformed`,
//! made from valid events by the library's own `malformed_record`) and `person` (the simple
//! topic's messages).

use std::io::Write;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use encore::clickhouse::schema::{Dataset, Dialect, Live, Role, Target, drift, plan};
use encore::clickhouse::setup::create_database_sql;
use encore::event::WireEvent;
use encore::sim::inject::{MALFORMED_KINDS, malformed_record};
use encore::sim::{BehaviourConfig, Catalog, Listener, ModelParams};
use rand::SeedableRng;
use serde_json::json;

#[derive(Parser)]
#[command(about = "encore's ClickHouse DDL and test messages as JSON")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum DialectArg {
    Modern,
    Legacy,
}

#[derive(clap::Args)]
struct TargetArgs {
    #[arg(long, value_enum, default_value = "modern")]
    dialect: DialectArg,
    #[arg(long, default_value = "music")]
    database: String,
    #[arg(long, default_value = "music_events")]
    events_topic: String,
    #[arg(long, default_value = "my_topic")]
    simple_topic: String,
    /// The brokers as ClickHouse reaches them (only appear in the queues' settings).
    #[arg(long, default_value = "kafka:9092")]
    brokers: String,
    /// Part of the queues' consumer-group names (Unix milliseconds when encore creates them).
    #[arg(long, default_value_t = 1)]
    generation: u64,
}

impl TargetArgs {
    fn resolve(&self) -> (Target, Dialect) {
        let dialect = match self.dialect {
            DialectArg::Modern => Dialect::Modern,
            DialectArg::Legacy => Dialect::Legacy,
        };
        let target = Target {
            database: self.database.clone(),
            brokers: Some(self.brokers.clone()),
            events_topic: self.events_topic.clone(),
            simple_topic: self.simple_topic.clone(),
            generation: self.generation,
        };
        (target, dialect)
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// The statements `encore clickhouse setup` sends to an empty database.
    Ddl {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Compares what a server has (JSON on stdin) with what encore expects, with encore's own
    /// drift detection (`encore clickhouse status`).
    Drift {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Records for the two topics, one JSON line each.
    Messages {
        /// Valid events.
        #[arg(long, default_value_t = 2000)]
        events: u64,
        /// Listeners the events come from.
        #[arg(long, default_value_t = 50)]
        users: u64,
        /// Messages of the simple topic.
        #[arg(long, default_value_t = 100)]
        people: u64,
        /// Records of each malformed kind.
        #[arg(long, default_value_t = 3)]
        per_kind: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Simulated start, ms since the Unix epoch (2026-01-01T00:00:00Z).
        #[arg(long, default_value_t = 1_767_225_600_000)]
        start_ms: i64,
        #[arg(long, default_value = "music_events")]
        events_topic: String,
        #[arg(long, default_value = "my_topic")]
        simple_topic: String,
        /// Catalog size.
        #[arg(long, default_value_t = 100_000)]
        tracks: u32,
    },
}

fn role(r: Role) -> &'static str {
    match r {
        Role::Storage => "storage",
        Role::Errors => "errors",
        Role::Queue => "queue",
        Role::View => "view",
        Role::ErrorsView => "errors_view",
    }
}

fn dataset(d: Dataset) -> &'static str {
    match d {
        Dataset::Events => "events",
        Dataset::Simple => "simple",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match Args::parse().cmd {
        Cmd::Ddl { target } => {
            let (target, dialect) = target.resolve();
            let mut statements = vec![json!({
                "role": "database",
                "dataset": null,
                "name": target.database,
                "engine": "",
                "columns": [],
                "sql": create_database_sql(&target)?,
            })];
            for o in plan(&target, dialect)? {
                statements.push(json!({
                    "role": role(o.role),
                    "dataset": dataset(o.dataset),
                    "name": o.name,
                    "engine": o.engine,
                    "columns": o.columns,
                    "sql": o.create,
                }));
            }
            let doc = json!({
                "dialect": format!("{dialect:?}").to_lowercase(),
                "database": target.database,
                "statements": statements,
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        Cmd::Drift { target } => {
            // stdin: `[{"name", "engine", "engine_full", "sorting_key", "partition_key",
            // "create_table_query", "columns": [[name, type], ...]}]`, i.e. system.tables and
            // DESCRIBE, as `setup::inspect` reads them.
            let (target, dialect) = target.resolve();
            let tables: Vec<serde_json::Value> = serde_json::from_reader(std::io::stdin().lock())?;
            let text = |t: &serde_json::Value, k: &str| {
                t.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            let mut report = Vec::new();
            for o in plan(&target, dialect)? {
                let entry = match tables.iter().find(|t| text(t, "name") == o.name) {
                    None => json!({"name": o.name, "present": false, "drift": []}),
                    Some(t) => {
                        let live = Live {
                            engine: text(t, "engine"),
                            engine_full: text(t, "engine_full"),
                            sorting_key: text(t, "sorting_key"),
                            partition_key: text(t, "partition_key"),
                            create_query: text(t, "create_table_query"),
                            columns: serde_json::from_value(
                                t.get("columns").cloned().unwrap_or_else(|| json!([])),
                            )?,
                        };
                        json!({"name": o.name, "present": true, "drift": drift(&o, &live)})
                    }
                };
                report.push(entry);
            }
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Cmd::Messages {
            events,
            users,
            people,
            per_kind,
            seed,
            start_ms,
            events_topic,
            simple_topic,
            tracks,
        } => {
            let mut line = |topic: &str, kind: &str, bytes: &[u8]| -> std::io::Result<()> {
                let v = json!({"topic": topic, "kind": kind, "hex": hex(bytes)});
                serde_json::to_writer(&mut out, &v)?;
                writeln!(out)
            };
            let catalog = Arc::new(Catalog::new(tracks, seed)?);
            let params = ModelParams::new(&BehaviourConfig::default(), catalog);
            let mut listeners: Vec<Listener> = (0..users.max(1))
                .map(|i| Listener::with_params(i, seed, start_ms, params.clone()))
                .collect();
            let mut valid: Vec<Vec<u8>> = Vec::new();
            for n in 0..events {
                let l = &mut listeners[(n % users.max(1)) as usize];
                let ev = l.next_event();
                let mut buf = Vec::new();
                WireEvent::new(l.profile(), &ev).encode_into(&mut buf);
                line(&events_topic, "event", &buf)?;
                valid.push(buf);
            }
            // Each malformed kind, made from different valid events.
            if !valid.is_empty() {
                for (k, kind) in MALFORMED_KINDS.iter().enumerate() {
                    for i in 0..per_kind {
                        let src = &valid[(k * per_kind + i) * 7 % valid.len()];
                        line(&events_topic, kind, &malformed_record(kind, src))?;
                    }
                }
            }
            let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
            for i in 0..people {
                let p = encore::sim::names::draw_person(&mut rng, start_ms + i as i64 * 1_000);
                line(&simple_topic, "person", &serde_json::to_vec(&p)?)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

//! Command-line interface: clap definitions and their conversion into validated configs.
//! Flags can also be set through `ENCORE_…` environment variables; docs/configuration.md lists
//! the exceptions.
//!
//! The commands and their flags are here and in `args` (one struct per command) and `flags`
//! (the groups several commands share); `parse` holds the value parsers, `secrets` the refusal
//! of secrets on the command line, and `convert` turns the flags into the configs of
//! [`crate::config`].

mod args;
mod convert;
mod flags;
mod parse;
mod secrets;

use clap::{Parser, Subcommand};

pub use args::{
    ClickHouseQueryArgs, ClickHouseSetupArgs, ClickHouseTargetArgs, ProduceSimpleArgs, RunArgs,
    SimulateArgs, SinkArgs, StatusArgs, TailArgs, VerifyArgs,
};
pub use flags::{ClickHouseArgs, FlushArgs, KafkaArgs, LakeArgs, MetricsArgs, SimArgs};
pub use parse::{parse_duration, parse_size};
pub use secrets::refuse_secrets_in_arguments;

/// Simulated start of a seeded `--max-rate` run (2026-01-01T00:00:00Z): fixed so that two
/// such runs produce identical events, timestamps included.
pub const SEEDED_EPOCH_MS: i64 = 1_767_225_600_000;

#[derive(Parser, Debug)]
#[command(
    name = "encore",
    version,
    about = "Real-time event pipeline for a music-streaming service: simulated listeners → topic → exactly-once Parquet lake",
    propagate_version = true
)]
pub struct Cli {
    /// Log filter (tracing syntax, e.g. `info`, `encore=debug`).
    #[arg(long, global = true, env = "ENCORE_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole pipeline: listeners → topic (Kafka with --brokers, else the in-process
    /// bus) → sink → lake, then print a summary.
    Run(Box<RunArgs>),
    /// Produce only: listeners → Kafka topic (JSON lines on stdout when no --brokers is given).
    Simulate(SimulateArgs),
    /// Consume only: Kafka topic → lake, as a member of a consumer group, until SIGINT/SIGTERM.
    Sink(SinkArgs),
    /// The simple demo producer for `my_topic`: {uuid, first_name, last_name, middle_name,
    /// timestamp}.
    ProduceSimple(ProduceSimpleArgs),
    /// Check the lake: files and rows per date, every file's schema, sample rows.
    Verify(VerifyArgs),
    /// Print a topic's records (the dead-letter topic's with --dead-letters), kcat-style:
    /// from -o, -n records or to the end with -e, filtered by event type and user; reads
    /// without joining a group.
    Tail(TailArgs),
    /// How far behind each part of the pipeline is, per partition of a topic: its watermarks,
    /// the lake's committed position, the sink group's offset and (--clickhouse-url)
    /// ClickHouse's, each with its lag in records and seconds. Reads only.
    #[command(visible_alias = "lag")]
    Status(StatusArgs),
    /// ClickHouse: create, inspect or drop the Kafka-engine ingestion tables, run preset queries.
    #[command(subcommand)]
    Clickhouse(ClickHouseCommand),
}

#[derive(Subcommand, Debug)]
pub enum ClickHouseCommand {
    /// Create the tables and views both topics need (idempotent; refuses on drift).
    Setup(ClickHouseSetupArgs),
    /// Tables, rows, last event time, malformed messages, consumer lag, drift.
    Status(ClickHouseTargetArgs),
    /// Drop encore's tables and views (the database stays).
    Drop(ClickHouseTargetArgs),
    /// Run a preset query.
    Query(ClickHouseQueryArgs),
}

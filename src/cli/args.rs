//! The flags of each command; the groups several commands share are in `flags`.

use std::time::Duration;

use clap::Args;

use super::flags::{ClickHouseArgs, FlushArgs, KafkaArgs, LakeArgs, MetricsArgs, SimArgs};
use super::parse::{parse_date, parse_duration};
use crate::tail;

#[derive(Args, Debug, Clone)]
pub struct ClickHouseTargetArgs {
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The clickstream topic.
    #[arg(long, env = "ENCORE_TOPIC", default_value = "music_events")]
    pub topic: String,
}

#[derive(Args, Debug, Clone)]
pub struct ClickHouseSetupArgs {
    #[command(flatten)]
    pub target: ClickHouseTargetArgs,
    /// Drop encore's tables and views first (their rows are lost), then create them.
    #[arg(long, env = "ENCORE_CLICKHOUSE_RECREATE", value_parser = clap::builder::FalseyValueParser::new())]
    pub recreate: bool,
    /// Partitions of the clickstream topic when setup creates it (with --brokers; the simple
    /// topic gets 1, as `produce-simple` creates it).
    #[arg(long, env = "ENCORE_PARTITIONS", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub partitions: u32,
    /// Print the statements setup would send to a server of --server-version, without
    /// contacting any server or Kafka (no --clickhouse-url needed).
    #[arg(long)]
    pub print: bool,
    /// With --print: the ClickHouse version to write for (e.g. 24.8; before 21.12 the older
    /// dialect, without the errors table).
    #[arg(long, requires = "print", default_value = "24.8")]
    pub server_version: String,
}

#[derive(Args, Debug, Clone)]
pub struct ClickHouseQueryArgs {
    /// The query to run.
    #[arg(value_enum)]
    pub preset: crate::clickhouse::setup::Preset,
    #[command(flatten)]
    pub target: ClickHouseTargetArgs,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub sim: SimArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub lake: LakeArgs,
    #[command(flatten)]
    pub flush: FlushArgs,
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    /// With --clickhouse-url: drop and recreate encore's ClickHouse tables at start.
    #[arg(long, env = "ENCORE_CLICKHOUSE_RECREATE", value_parser = clap::builder::FalseyValueParser::new())]
    pub recreate: bool,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// No live status line or progress log lines.
    #[arg(long, env = "ENCORE_NO_PROGRESS", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_progress: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub sim: SimArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// No live status line or progress log lines.
    #[arg(long, env = "ENCORE_NO_PROGRESS", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_progress: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SinkArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topic to consume (also the lake table name).
    #[arg(long, env = "ENCORE_TOPIC", default_value = "music_events")]
    pub topic: String,
    /// Stop (drain and exit) after this long [default: until SIGINT/SIGTERM].
    #[arg(long, env = "ENCORE_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Read up to the topic's end as it is at start (its high watermarks), commit, exit 0: a
    /// backfill. For a sink alone in its group (it must read every partition to get there).
    #[arg(long, env = "ENCORE_EXIT_AT_END", value_parser = clap::builder::FalseyValueParser::new())]
    pub exit_at_end: bool,
    /// No live status line or progress log lines.
    #[arg(long, env = "ENCORE_NO_PROGRESS", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_progress: bool,
    #[command(flatten)]
    pub lake: LakeArgs,
    #[command(flatten)]
    pub flush: FlushArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ProduceSimpleArgs {
    /// Kafka settings; without --brokers, JSON lines go to stdout.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topic name.
    #[arg(long, env = "ENCORE_SIMPLE_TOPIC", default_value = "my_topic")]
    pub topic: String,
    /// Messages per second (0.001 to 1000000).
    #[arg(long, env = "ENCORE_RATE", default_value_t = 2.0)]
    pub rate: f64,
    /// Stop after this many messages [default: until interrupted].
    #[arg(long, env = "ENCORE_COUNT")]
    pub count: Option<u64>,
    /// Seed of the names drawn [default: random].
    #[arg(long, env = "ENCORE_SEED")]
    pub seed: Option<u64>,
}

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub lake: LakeArgs,
    /// Table (topic) to check.
    #[arg(long, env = "ENCORE_TOPIC", default_value = "music_events")]
    pub topic: String,
    /// Sample track_playback rows to print.
    #[arg(long, env = "ENCORE_SAMPLES", default_value_t = 10)]
    pub samples: usize,
    /// Only check these dates (YYYY-MM-DD, inclusive); the topic's offsets are then not compared.
    #[arg(long, value_parser = parse_date)]
    pub date_from: Option<chrono::NaiveDate>,
    /// Only check up to this date (YYYY-MM-DD, inclusive).
    #[arg(long, value_parser = parse_date)]
    pub date_to: Option<chrono::NaiveDate>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// How many ids or offsets each finding lists.
    #[arg(long, default_value_t = 10)]
    pub list: usize,
    /// With --brokers: compare the lake's offsets with the topic's watermarks.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// With --clickhouse-url: compare the lake's events with ClickHouse's.
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
}

#[derive(Args, Debug, Clone)]
pub struct TailArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topic to read.
    #[arg(long, env = "ENCORE_TOPIC", default_value = "music_events")]
    pub topic: String,
    /// Read the dead-letter topic of --topic (--dlq-topic, default `<topic>.dlq`); each letter
    /// is shown with its reason, error, source position and headers.
    #[arg(long)]
    pub dead_letters: bool,
    /// Where to start in each partition: beginning, end, an offset N, -N (N records before the
    /// end), s@MS (a time in ms since the epoch) or an RFC 3339 time.
    #[arg(short = 'o', long, default_value = "beginning", allow_hyphen_values = true, value_parser = tail::parse_start)]
    pub offset: tail::StartSpec,
    /// Only these partitions (repeatable or comma-separated) [default: all].
    #[arg(
        short = 'p',
        long = "partition",
        value_name = "PARTITION",
        value_delimiter = ','
    )]
    pub partitions: Vec<i32>,
    /// Stop after showing N records (after the filters).
    #[arg(short = 'n', long, visible_short_alias = 'c', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Exit once every partition reached the end it had at start [default: wait for new records].
    #[arg(short = 'e', long)]
    pub exit_at_end: bool,
    /// Only events of these types: names or ids (repeatable or comma-separated).
    #[arg(long = "event-type", value_name = "TYPE", value_delimiter = ',', value_parser = tail::parse_event_type)]
    pub event_types: Vec<crate::event::EventType>,
    /// Only events of these users: user ids, matched with the value's user_id or the record
    /// key (repeatable or comma-separated).
    #[arg(long = "user", value_name = "UUID", value_delimiter = ',', value_parser = tail::parse_user)]
    pub users: Vec<uuid::Uuid>,
    /// Output: json (one object per line), human (aligned columns), or auto (human on a
    /// terminal, json otherwise).
    #[arg(long, value_enum, default_value = "auto")]
    pub format: tail::Format,
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// --group: the sink's consumer group to report.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topic to report on (also the lake table name).
    #[arg(long, env = "ENCORE_TOPIC", default_value = "music_events")]
    pub topic: String,
    #[command(flatten)]
    pub lake: LakeArgs,
    /// With --clickhouse-url: the lag of the ClickHouse table that ingests --topic.
    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

//! Command-line interface: clap definitions and their conversion into validated configs.
//! Flags can also be set through `ENCORE_…` environment variables; docs/configuration.md lists
//! the exceptions.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::clickhouse::quote_ident;
use crate::config::{
    BehaviourConfig, ClickHouseConfig, ClickHouseConnection, ClickHouseTarget as Target, ClockMode,
    Compression, FlushPolicy, KafkaConfig, KafkaConnection, LakeConfig, SimConfig, SinkConfig,
};
use crate::event::Weights;
use crate::kafka::{parse_setting, producer::CODECS};
use crate::lake::validate_table;

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

#[derive(Args, Debug, Clone)]
pub struct ClickHouseArgs {
    /// ClickHouse's HTTP interface, e.g. http://127.0.0.1:8123. In `run` it enables ClickHouse:
    /// the schema is applied at start. The password comes from ENCORE_CLICKHOUSE_PASSWORD.
    #[arg(long, env = "ENCORE_CLICKHOUSE_URL")]
    pub clickhouse_url: Option<String>,
    /// ClickHouse user.
    #[arg(long, env = "ENCORE_CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,
    /// Database holding encore's tables (created if missing).
    #[arg(long, env = "ENCORE_CLICKHOUSE_DATABASE", default_value = "music")]
    pub clickhouse_database: String,
    /// The brokers as ClickHouse reaches them (e.g. kafka:29092 inside compose) [default: --brokers].
    #[arg(long, env = "ENCORE_CLICKHOUSE_KAFKA_BROKERS")]
    pub clickhouse_kafka_brokers: Option<String>,
    /// How long `clickhouse setup` waits for a ClickHouse that does not answer (a run goes on
    /// without it and applies the schema once it answers).
    #[arg(long, env = "ENCORE_CLICKHOUSE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub clickhouse_timeout: Duration,
    /// The simple demo topic ClickHouse also ingests.
    #[arg(long, env = "ENCORE_SIMPLE_TOPIC", default_value = "my_topic")]
    pub simple_topic: String,
}

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
pub struct SimArgs {
    /// Simulated listeners (one actor each).
    #[arg(long, env = "ENCORE_USERS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub users: u32,
    /// Worker threads (arbiters) the listeners are spread over [default: number of cores].
    #[arg(long, env = "ENCORE_WORKERS", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: Option<u32>,
    /// Seed of the whole event sequence [default: random, printed in the summary].
    #[arg(long, env = "ENCORE_SEED")]
    pub seed: Option<u64>,
    /// Tracks in the catalog.
    #[arg(long, env = "ENCORE_TRACKS", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    pub tracks: u32,
    /// Event mix: 8 comma-separated weights for event type ids 1..8.
    #[arg(
        long,
        env = "ENCORE_WEIGHTS",
        default_value = "0.35,0.15,0.13,0.12,0.07,0.08,0.06,0.04"
    )]
    pub weights: Weights,
    /// Mean simulated time between two interactions of a listener in a session.
    #[arg(long, env = "ENCORE_EVENT_GAP", default_value = "15s", value_parser = parse_duration)]
    pub event_gap: Duration,
    /// Run the simulated clock as fast as the pipeline accepts events (load tests, benches).
    #[arg(long, env = "ENCORE_MAX_RATE", value_parser = clap::builder::FalseyValueParser::new())]
    pub max_rate: bool,
    /// Realtime mode: simulated seconds per wall-clock second (0.001 to 1000000).
    #[arg(long, env = "ENCORE_SPEED", default_value_t = 1.0)]
    pub speed: f64,
    /// Simulated start time (RFC 3339) [default: now; 2026-01-01T00:00:00Z for a seeded --max-rate run].
    #[arg(long, env = "ENCORE_START_TIME")]
    pub start_time: Option<String>,
    /// Stop after this many events.
    #[arg(long, env = "ENCORE_EVENTS", value_parser = clap::value_parser!(u64).range(1..))]
    pub events: Option<u64>,
    /// Stop after this long (e.g. 30s, 5m).
    #[arg(long, env = "ENCORE_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Topic name (also the lake table name).
    #[arg(long, env = "ENCORE_TOPIC", default_value = "music_events")]
    pub topic: String,
    /// Partitions of the topic (of the in-process bus, or of a Kafka topic encore creates;
    /// an existing Kafka topic keeps its own).
    #[arg(long, env = "ENCORE_PARTITIONS", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub partitions: u32,
    /// Fault injection, probabilities per event: malformed=P (records that are not valid
    /// events), oversized=P (2 MiB records), duplicate=P (an earlier event sent again), late=P
    /// (events stamped late_by earlier, default late_by=26h). Example:
    /// malformed=0.01,duplicate=0.01,late=0.01. `--events` counts every record sent.
    #[arg(
        long,
        env = "ENCORE_INJECT",
        default_value = "",
        hide_default_value = true
    )]
    pub inject: crate::sim::InjectConfig,
}

/// Refuses secrets typed on the command line (`--kafka-config sasl.password=…`): every user
/// of the machine can read a process's arguments. They belong in ENCORE_KAFKA_CONFIG or a
/// `--kafka-config-file`.
pub fn refuse_secrets_in_arguments(m: &clap::ArgMatches) -> Result<(), String> {
    use clap::parser::ValueSource;
    if let Some((_, sub)) = m.subcommand() {
        refuse_secrets_in_arguments(sub)?;
    }
    let from_args = m
        .try_get_many::<(String, String)>("kafka_config")
        .ok()
        .flatten()
        .filter(|_| m.value_source("kafka_config") == Some(ValueSource::CommandLine));
    if let Some(key) = from_args
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .find(|k| crate::kafka::is_secret(k))
    {
        return Err(format!(
            "--kafka-config {key}=…: a secret on the command line is visible to every user of this machine; put it in ENCORE_KAFKA_CONFIG or a --kafka-config-file"
        ));
    }
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (host:port,…). Without it `run` uses the in-process bus and
    /// `simulate` writes JSON lines to stdout.
    #[arg(long, env = "ENCORE_BROKERS")]
    pub brokers: Option<String>,
    /// A librdkafka setting passed through (repeatable; `;`-separated in the environment),
    /// e.g. security.protocol=sasl_ssl. Put secrets in ENCORE_KAFKA_CONFIG, not on the command
    /// line.
    #[arg(long = "kafka-config", env = "ENCORE_KAFKA_CONFIG", value_delimiter = ';', value_parser = parse_setting, hide_env_values = true)]
    pub kafka_config: Vec<(String, String)>,
    /// A librdkafka properties file (`key=value` lines, `#` comments), the place for TLS and
    /// SASL settings and their secrets; `--kafka-config` entries win over it.
    #[arg(long, env = "ENCORE_KAFKA_CONFIG_FILE")]
    pub kafka_config_file: Option<std::path::PathBuf>,
    /// How long the brokers may take to answer at start before encore gives up (exit 2).
    #[arg(long, env = "ENCORE_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Producer compression.
    #[arg(long, env = "ENCORE_KAFKA_COMPRESSION", default_value = "lz4", value_parser = clap::builder::PossibleValuesParser::new(CODECS))]
    pub kafka_compression: String,
    /// Consumer group of the sink.
    #[arg(long, env = "ENCORE_GROUP", default_value = "encore-sink")]
    pub group: String,
    /// Static membership (Kafka's group.instance.id): a sink restarted with the same id takes
    /// its partitions back at once, without a rebalance; unique per running sink.
    #[arg(long, env = "ENCORE_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Replication factor of a topic encore creates.
    #[arg(long, env = "ENCORE_REPLICATION_FACTOR", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub replication_factor: u16,
    /// Dead-letter topic: where the sink copies records that are not valid events, with
    /// headers saying why and where from (default: `<topic>.dlq`).
    #[arg(long, env = "ENCORE_DLQ_TOPIC")]
    pub dlq_topic: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct LakeArgs {
    /// Lake location: a path, file://PATH, or s3://BUCKET/PREFIX.
    #[arg(long, env = "ENCORE_LAKE", default_value = "./lake")]
    pub lake: String,
    /// S3-compatible endpoint (MinIO, s3s-fs), e.g. http://127.0.0.1:9000. Credentials come
    /// from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    #[arg(long, env = "ENCORE_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region.
    #[arg(long, env = "ENCORE_S3_REGION")]
    pub s3_region: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct FlushArgs {
    /// Flush a partition's batch at this many records.
    #[arg(long, env = "ENCORE_BATCH_ROWS", default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub batch_rows: u64,
    /// Flush a partition's batch at this many bytes of JSON consumed (e.g. 16MiB).
    #[arg(long, env = "ENCORE_BATCH_BYTES", default_value = "16MiB", value_parser = parse_size)]
    pub batch_bytes: u64,
    /// Flush a partition's batch when its first record is this old.
    #[arg(long, env = "ENCORE_FLUSH_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub flush_interval: Duration,
    /// Parquet codec: zstd, zstd:LEVEL, snappy, lz4, gzip, none.
    #[arg(long, env = "ENCORE_COMPRESSION", default_value = "zstd")]
    pub compression: Compression,
    /// Flushed batches that may wait for the lake before consumption pauses.
    #[arg(long, env = "ENCORE_MAX_UNFLUSHED", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_unflushed: u32,
    /// Bytes of records the in-process bus holds for the consumer before publishing waits.
    #[arg(long, env = "ENCORE_BUS_CAPACITY", default_value = "32MiB", value_parser = parse_size)]
    pub bus_capacity: u64,
    /// Failures allowed within --restart-window before the run stops with an error.
    #[arg(long, env = "ENCORE_RESTART_BUDGET", default_value_t = 30)]
    pub restart_budget: u32,
    /// Window of the restart budget.
    #[arg(long, env = "ENCORE_RESTART_WINDOW", default_value = "5m", value_parser = parse_duration)]
    pub restart_window: Duration,
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
    /// No live status line or progress log lines.
    #[arg(long, env = "ENCORE_NO_PROGRESS", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_progress: bool,
    #[command(flatten)]
    pub lake: LakeArgs,
    #[command(flatten)]
    pub flush: FlushArgs,
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

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| format!("`{s}` is not a YYYY-MM-DD date: {e}"))
}

/// Parses `30s`, `5m`, `1h30m`, `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration (e.g. 30s, 5m): {e}"))
}

/// Parses a byte size: `1048576`, `512KiB`, `16MiB`, `1GiB`, `10MB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 16MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "`{s}`: unknown size unit (B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("`{s}` is out of range"))
}

fn parse_start(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("--start-time `{s}` is not an RFC 3339 time: {e}"))
}

impl SimArgs {
    /// Validates the simulation flags into a config.
    pub fn to_config(&self) -> Result<SimConfig, String> {
        validate_table(&self.topic).map_err(|e| format!("--topic: {e}"))?;
        if !(0.001..=1e6).contains(&self.speed) {
            return Err(format!(
                "--speed {} must be between 0.001 and 1000000",
                self.speed
            ));
        }
        if self.event_gap.is_zero() {
            return Err("--event-gap must be positive".into());
        }
        let clock = if self.max_rate {
            ClockMode::MaxRate
        } else {
            ClockMode::Realtime { speed: self.speed }
        };
        let start_ms = match (&self.start_time, self.max_rate, self.seed) {
            (Some(s), _, _) => parse_start(s)?,
            (None, true, Some(_)) => SEEDED_EPOCH_MS,
            _ => chrono::Utc::now().timestamp_millis(),
        };
        if start_ms < 0 {
            return Err("--start-time must be after 1970-01-01".into());
        }
        let workers = self
            .workers
            .map(|w| w as usize)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        Ok(SimConfig {
            users: self.users,
            workers,
            seed: self.seed.unwrap_or_else(rand::random),
            tracks: self.tracks,
            behaviour: BehaviourConfig {
                weights: self.weights,
                mean_event_gap_ms: self.event_gap.as_secs_f64() * 1000.0,
                ..BehaviourConfig::default()
            },
            clock,
            start_ms,
            events: self.events,
            duration: self.duration,
            partitions: self.partitions,
            topic: self.topic.clone(),
            inject: self.inject,
        })
    }
}

impl ClickHouseArgs {
    /// The ClickHouse settings, or None without --clickhouse-url. `brokers` is encore's own
    /// --brokers, the default of the brokers ClickHouse is told to read when the command
    /// `creates` queues (run, setup).
    pub fn to_settings(
        &self,
        brokers: Option<&str>,
        events_topic: &str,
        creates: bool,
    ) -> Result<Option<ClickHouseConfig>, String> {
        let Some(url) = &self.clickhouse_url else {
            return Ok(None);
        };
        let connection = ClickHouseConnection {
            url: url.clone(),
            user: self.clickhouse_user.clone(),
            // Only from the environment: a flag would show in `ps` and shell history.
            password: std::env::var("ENCORE_CLICKHOUSE_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty()),
        };
        quote_ident(&self.clickhouse_database)
            .map_err(|e| format!("--clickhouse-database: {e}"))?;
        validate_table(events_topic).map_err(|e| format!("--topic: {e}"))?;
        validate_table(&self.simple_topic).map_err(|e| format!("--simple-topic: {e}"))?;
        // Creating queues needs the broker list; inspecting them compares it only when given
        // explicitly (encore's own --brokers may be another address of the same cluster).
        let brokers = match (&self.clickhouse_kafka_brokers, brokers) {
            (Some(b), _) => Some(b.clone()),
            (None, Some(b)) if creates => Some(b.to_string()),
            (None, _) if creates => {
                return Err(
                    "ClickHouse reads the topics from Kafka: give --brokers (or \
                            --clickhouse-kafka-brokers, the address ClickHouse uses)"
                        .into(),
                );
            }
            (None, _) => None,
        };
        if let Some(b) = &brokers
            && (b.trim().is_empty() || b.contains(['\'', '\\', '\n']))
        {
            return Err(format!(
                "--clickhouse-kafka-brokers `{b}` is not a broker list"
            ));
        }
        if self.clickhouse_timeout.is_zero() {
            return Err("--clickhouse-timeout must be positive".into());
        }
        Ok(Some(ClickHouseConfig {
            connection,
            target: Target {
                database: self.clickhouse_database.clone(),
                brokers,
                events_topic: events_topic.to_string(),
                simple_topic: self.simple_topic.clone(),
                generation: chrono::Utc::now().timestamp_millis().max(0) as u64,
            },
            patience: self.clickhouse_timeout,
            recreate: false,
        }))
    }
}

impl ClickHouseTargetArgs {
    /// ClickHouse and, when --brokers is given, Kafka (topics for setup, consumer lag).
    pub fn to_settings(
        &self,
        creates: bool,
    ) -> Result<(ClickHouseConfig, Option<KafkaConfig>), String> {
        let kafka = self.kafka.to_settings()?;
        let ch = self
            .clickhouse
            .to_settings(self.kafka.brokers.as_deref(), &self.topic, creates)?
            .ok_or(
                "give --clickhouse-url (or ENCORE_CLICKHOUSE_URL), e.g. http://127.0.0.1:8123",
            )?;
        Ok((ch, kafka))
    }
}

impl KafkaArgs {
    /// The Kafka settings, or None without --brokers.
    pub fn to_settings(&self) -> Result<Option<KafkaConfig>, String> {
        let Some(brokers) = &self.brokers else {
            if !self.kafka_config.is_empty() || self.kafka_config_file.is_some() {
                return Err("--kafka-config and --kafka-config-file need --brokers".into());
            }
            return Ok(None);
        };
        let mut extra = match &self.kafka_config_file {
            Some(path) => crate::kafka::read_settings_file(path).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        extra.extend(self.kafka_config.iter().cloned());
        if self.connect_timeout.is_zero() {
            return Err("--connect-timeout must be positive".into());
        }
        if self.group.trim().is_empty() {
            return Err("--group is empty".into());
        }
        let connection = KafkaConnection {
            brokers: brokers.clone(),
            extra,
            connect_timeout: self.connect_timeout,
        };
        connection.validate().map_err(|e| e.to_string())?;
        if let Some(t) = &self.dlq_topic {
            validate_table(t).map_err(|e| format!("--dlq-topic: {e}"))?;
        }
        if let Some(id) = &self.instance_id
            && (id.is_empty()
                || id.len() > 249
                || id.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err("--instance-id must be 1-249 characters without spaces".into());
        }
        Ok(Some(KafkaConfig {
            connection,
            group: self.group.clone(),
            compression: self.kafka_compression.clone(),
            replication: self.replication_factor,
            dlq_topic: self.dlq_topic.clone(),
            instance_id: self.instance_id.clone(),
        }))
    }
}

impl LakeArgs {
    pub fn to_config(&self) -> LakeConfig {
        LakeConfig {
            url: self.lake.clone(),
            s3_endpoint: self.s3_endpoint.clone(),
            s3_region: self.s3_region.clone(),
            s3_access_key: None,
            s3_secret_key: None,
        }
    }
}

impl FlushArgs {
    pub fn to_config(&self, lake: LakeConfig) -> Result<SinkConfig, String> {
        if self.flush_interval.is_zero() {
            return Err("--flush-interval must be positive".into());
        }
        let bus_capacity = self.bus_capacity;
        Ok(SinkConfig {
            lake,
            policy: FlushPolicy {
                max_rows: self.batch_rows as usize,
                max_bytes: self.batch_bytes as usize,
                max_age: self.flush_interval,
            },
            compression: self.compression,
            max_unflushed: self.max_unflushed,
            bus_capacity: bus_capacity as usize,
            restart_budget: self.restart_budget,
            restart_window: self.restart_window,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("10 MB"), Ok(10_000_000));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn seeded_max_rate_runs_start_at_a_fixed_time() {
        let cli = Cli::try_parse_from([
            "encore",
            "run",
            "--max-rate",
            "--seed",
            "7",
            "--events",
            "10",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("run")
        };
        let c = args.sim.to_config().unwrap();
        assert_eq!(c.start_ms, SEEDED_EPOCH_MS);
        assert_eq!(c.seed, 7);
        assert_eq!(c.clock, ClockMode::MaxRate);
    }

    #[test]
    fn bad_flags_are_rejected() {
        for args in [
            vec!["encore", "run", "--users", "0"],
            vec!["encore", "run", "--weights", "1,2,3"],
            vec!["encore", "run", "--compression", "brotli"],
            vec!["encore", "run", "--duration", "soon"],
            vec!["encore", "run", "--batch-bytes", "0"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
        let cli = Cli::try_parse_from(["encore", "run", "--topic", "_x", "--speed", "1"]).unwrap();
        let Command::Run(a) = cli.command else {
            panic!()
        };
        assert!(a.sim.to_config().is_err());
        let cli = Cli::try_parse_from(["encore", "run", "--speed=-1"]).unwrap();
        let Command::Run(a) = cli.command else {
            panic!()
        };
        assert!(a.sim.to_config().is_err());
    }
}

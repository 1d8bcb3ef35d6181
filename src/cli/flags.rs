//! The flag groups several commands share: the simulation, Kafka, the lake, flushing and
//! ClickHouse.

use std::time::Duration;

use clap::Args;

use super::parse::{parse_duration, parse_size};
use crate::config::Compression;
use crate::event::Weights;
use crate::kafka::{parse_setting, producer::CODECS};

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
    /// JSON layout of the events sent: `encore` (flat) or `reference` (the reference
    /// pipeline's nested `event_params`/`event_timestamp_ms`). The sink reads both.
    #[arg(long, env = "ENCORE_FORMAT", default_value = "encore", value_parser = ["encore", "reference"])]
    pub format: String,
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
    // 4 MiB ran as fast as 16 or faster, with less memory (docs/performance.md).
    #[arg(long, env = "ENCORE_BUS_CAPACITY", default_value = "4MiB", value_parser = parse_size)]
    pub bus_capacity: u64,
    /// Failures allowed within --restart-window before the run stops with an error.
    #[arg(long, env = "ENCORE_RESTART_BUDGET", default_value_t = 30)]
    pub restart_budget: u32,
    /// Window of the restart budget.
    #[arg(long, env = "ENCORE_RESTART_WINDOW", default_value = "5m", value_parser = parse_duration)]
    pub restart_window: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://HOST:PORT/metrics while the command runs (e.g.
    /// 127.0.0.1:9464; 0.0.0.0:9464 for other hosts) [default: none].
    #[arg(long, env = "ENCORE_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl MetricsArgs {
    /// Starts serving, before anything is read or written: a port in use stops the command.
    pub fn serve(&self) -> Result<(), String> {
        match self.metrics_addr {
            Some(addr) => crate::metrics::serve(addr).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

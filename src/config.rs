//! Every typed setting of a run, in one place: the CLI (`cli/`) produces these, the pipeline
//! and the commands consume them. Each subsystem's own settings live with it and are re-exported
//! here, so this module is the one list of what can be configured. Each is turned into a client
//! in one function: [`KafkaConnection`] by `KafkaConnection::client_config`, [`ClickHouseConnection`] by
//! `clickhouse::ClickHouse::new`, [`LakeConfig`] by `lake::Lake::open`.

use std::time::Duration;

pub use crate::clickhouse::ClickHouseConnection;
pub use crate::clickhouse::schema::Target as ClickHouseTarget;
pub use crate::event::WireFormat;
pub use crate::kafka::KafkaConnection;
pub use crate::lake::{Compression, LakeConfig};
pub use crate::sim::{BehaviourConfig, InjectConfig};
pub use crate::sink::FlushPolicy;

/// How simulated time runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClockMode {
    /// Wall-clock pace times `speed`.
    Realtime { speed: f64 },
    /// As fast as the pipeline accepts.
    MaxRate,
}

/// The listener simulation's settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub users: u32,
    pub workers: usize,
    pub seed: u64,
    pub tracks: u32,
    pub behaviour: BehaviourConfig,
    pub clock: ClockMode,
    /// Simulated time at which the run starts, ms since the epoch.
    pub start_ms: i64,
    /// Realtime without `--start-time`: the run starts at the wall clock's time when the
    /// listeners start, read again then (`start_ms` is only its estimate), so that the set-up
    /// (topic, lake, ClickHouse) does not stamp every event that much in the past.
    pub start_now: bool,
    pub events: Option<u64>,
    pub duration: Option<Duration>,
    pub partitions: u32,
    pub topic: String,
    /// `--inject`: faults the listeners add to what they send.
    pub inject: InjectConfig,
    /// `--format`: the JSON layout of the events sent.
    pub format: WireFormat,
}

/// The sink's settings.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    pub lake: LakeConfig,
    pub policy: FlushPolicy,
    pub compression: Compression,
    /// Flushed batches that may wait for the lake before the consumer pauses.
    pub max_unflushed: u32,
    /// Bytes the in-process bus retains before publishing waits.
    pub bus_capacity: usize,
    pub restart_budget: u32,
    pub restart_window: Duration,
}

/// How a run uses Kafka.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    pub connection: KafkaConnection,
    /// Consumer group of the sink.
    pub group: String,
    /// Producer compression codec.
    pub compression: String,
    /// Replication factor of a topic encore creates.
    pub replication: u16,
    /// Dead-letter topic; None: `<topic>.dlq`.
    pub dlq_topic: Option<String>,
    /// Static group membership (`group.instance.id`) of the sink's consumer.
    pub instance_id: Option<String>,
}

impl KafkaConfig {
    /// The dead-letter topic of `topic`.
    pub fn dlq_topic_of(&self, topic: &str) -> String {
        self.dlq_topic
            .clone()
            .unwrap_or_else(|| crate::kafka::dlq::default_topic(topic))
    }

    /// The producer's connection: `--inject oversized` sends 2 MiB records, which librdkafka
    /// refuses by default (the broker's own limit still applies, and a refusal stops the run).
    pub fn producer_connection(&self, inject: &InjectConfig) -> KafkaConnection {
        let mut cfg = self.connection.clone();
        if inject.oversized > 0.0 && !cfg.extra.iter().any(|(k, _)| k == "message.max.bytes") {
            cfg.extra
                .push(("message.max.bytes".into(), (4 << 20).to_string()));
        }
        cfg
    }
}

/// Everything a command needs to talk to ClickHouse about encore's schema.
#[derive(Clone, Debug)]
pub struct ClickHouseConfig {
    pub connection: ClickHouseConnection,
    pub target: ClickHouseTarget,
    /// How long an unreachable server is waited for at start.
    pub patience: Duration,
    /// Drop and recreate encore's tables before creating them (`--recreate`).
    pub recreate: bool,
}

/// Process-level behaviour.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Draw the progress display / log progress lines.
    pub progress: bool,
    /// Install SIGINT/SIGTERM handlers (drain on the first, abort on the second).
    pub handle_signals: bool,
}

//! The flags, validated into the typed configs of [`crate::config`].

use super::SEEDED_EPOCH_MS;
use super::parse::parse_start;
use super::{ClickHouseArgs, ClickHouseTargetArgs, FlushArgs, KafkaArgs, LakeArgs, SimArgs};
use crate::clickhouse::quote_ident;
use crate::config::{
    BehaviourConfig, ClickHouseConfig, ClickHouseConnection, ClickHouseTarget as Target, ClockMode,
    FlushPolicy, KafkaConfig, KafkaConnection, LakeConfig, SimConfig, SinkConfig,
};
use crate::lake::validate_table;

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
            start_now: self.start_time.is_none() && !self.max_rate,
            events: self.events,
            duration: self.duration,
            partitions: self.partitions,
            topic: self.topic.clone(),
            inject: self.inject,
            format: self.format.parse()?,
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
        if self.clickhouse_timeout.is_zero() {
            return Err("--clickhouse-timeout must be positive".into());
        }
        Ok(Some(ClickHouseConfig {
            connection,
            target: self.target(brokers, events_topic, creates)?,
            patience: self.clickhouse_timeout,
            recreate: false,
        }))
    }

    /// What encore creates in ClickHouse (database, topics, brokers), without a server.
    pub fn target(
        &self,
        brokers: Option<&str>,
        events_topic: &str,
        creates: bool,
    ) -> Result<Target, String> {
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
        Ok(Target {
            database: self.clickhouse_database.clone(),
            brokers,
            events_topic: events_topic.to_string(),
            simple_topic: self.simple_topic.clone(),
            generation: chrono::Utc::now().timestamp_millis().max(0) as u64,
        })
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
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

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

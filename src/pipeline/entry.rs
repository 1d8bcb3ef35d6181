//! The four ways to run: `run` (bus), `run_kafka`, `sink_kafka` and `simulate`. Each sets up
//! its services, starts its halves and hands the rest to the shared drain. Every one must be
//! called inside an actix `System`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::actors::publisher::Backend;
use crate::config::{ClickHouseConfig, KafkaConfig, RunOptions, SimConfig, SinkConfig};
use crate::kafka::TopicAccess;
use crate::kafka::producer::KafkaProducer;
use crate::messages::{DrainPublisher, PublisherCounters, StopListening, StopReason};

use super::clickhouse::start_clickhouse;
use super::control::Control;
use super::drain::{BusSource, KafkaTopic, Run, stop_at};
use super::front::Front;
use super::sink::{
    bus_source, open_lake, prepare_kafka_sink, recover_bus_positions, start_bus_sink,
    start_kafka_sink,
};
use super::summary::{Counts, RunError, RunFacts, Summary};
use super::topics::{
    check_dlq, cluster, existing_topic, prepare_clickhouse_topics, prepare_topic, topic_ends,
};

/// `encore run`: listeners → publisher → in-process bus → consumer → accumulator → flusher →
/// lake.
pub async fn run(sim: SimConfig, sink: SinkConfig, opts: RunOptions) -> Result<Summary, RunError> {
    let lake = open_lake(&sink, &sim.topic).await?;
    let source = bus_source(&sim.topic);
    let starts = recover_bus_positions(&lake, &source, sim.partitions).await?;
    let restarts = (sink.restart_budget, sink.restart_window);
    let control = Control::start(opts, restarts, sim.workers, true);
    let (bus, consumer, stages) = start_bus_sink(&sink, (&lake, &source), starts, &control);
    let b = bus.clone();
    let front = Front::start(&sim, &control, move || Backend::Bus(b))?;
    Run {
        control,
        seed: sim.seed,
        lake,
        front: Some(front),
        stages,
        source: BusSource { bus, consumer },
    }
    .finish()
    .await
}

/// `encore run --brokers`: listeners → Kafka producer → topic → group member → accumulator →
/// flusher → lake, in one process.
pub async fn run_kafka(
    mut sim: SimConfig,
    sink: SinkConfig,
    k: KafkaConfig,
    clickhouse: Option<ClickHouseConfig>,
    opts: RunOptions,
) -> Result<Summary, RunError> {
    check_dlq(&k, &sim.topic)?;
    // The lake first: a bad location must stop the run before any topic is created.
    let lake = open_lake(&sink, &sim.topic).await?;
    // The run publishes and consumes: both named at start when missing.
    let need = &[TopicAccess::Write, TopicAccess::Read];
    let admin = cluster(&k)?;
    let rf = k.replication;
    sim.partitions = prepare_topic(&admin, &sim.topic, (sim.partitions, rf), need).await?;
    // After the topics exist (ClickHouse's queues subscribe to them).
    let ddl = match &clickhouse {
        Some(ch) => {
            prepare_clickhouse_topics(&admin, &ch.target, sim.partitions, rf).await?;
            Some(start_clickhouse(ch).await?)
        }
        None => None,
    };
    let setup = prepare_kafka_sink(&admin, &sim.topic, &k).await?;
    drop(admin); // set-up done: its connection is not kept for the run
    let producer = new_producer(&sim, &k)?;
    let restarts = (sink.restart_budget, sink.restart_window);
    let control = Control::start(opts, restarts, sim.workers, true);
    let (consumer, stages) = start_kafka_sink(&sim.topic, &sink, setup, &k, &lake, &control)?;
    let p = producer.clone();
    let front = Front::start(&sim, &control, move || Backend::Kafka(p))?;
    let run = Run {
        control,
        seed: sim.seed,
        lake: lake.clone(),
        front: Some(front),
        stages,
        source: KafkaTopic {
            consumer,
            producer: Some((producer, sim.partitions)),
            at_end: None,
            lake,
            group: k.group.clone(),
        },
    };
    match (
        run.finish().await,
        ddl.as_ref().and_then(|d| d.unfinished()),
    ) {
        (Ok(summary), Some(reason)) => Err(RunError::Incomplete {
            reason,
            summary: Box::new(summary),
        }),
        (result, _) => result,
    }
}

/// `encore sink`: topic → lake, as one member of the consumer group, until a signal or
/// `duration`, or with `exit_at_end` once the topic's end at start is read.
pub async fn sink_kafka(
    topic: &str,
    sink: SinkConfig,
    k: KafkaConfig,
    (duration, exit_at_end): (Option<Duration>, bool),
    opts: RunOptions,
) -> Result<Summary, RunError> {
    check_dlq(&k, topic)?;
    // First and alone: a misspelt topic must create no dead-letter topic and no bucket.
    let c = cluster(&k)?;
    let partitions = existing_topic(&c, topic).await?;
    tracing::info!(topic, partitions, "topic found");
    // The rest at once (in turn they were ~0.15 s of a sink's start), on the same client.
    let ends = async {
        match exit_at_end {
            true => topic_ends(&c, topic).await.map(Some),
            false => Ok(None),
        }
    };
    let (ends, lake, setup) = futures::try_join!(
        ends,
        open_lake(&sink, topic),
        prepare_kafka_sink(&c, topic, &k)
    )?;
    drop(c); // set-up done: its connection is not kept for the run
    let restarts = (sink.restart_budget, sink.restart_window);
    let control = Control::start(opts, restarts, 1, true);
    let (consumer, stages) = start_kafka_sink(topic, &sink, setup, &k, &lake, &control)?;
    control.arm_duration(duration);
    let at_end = ends.map(|ends| {
        tracing::info!(
            ?ends,
            "reading up to the topic's end at start, then exiting"
        );
        let reached = Arc::new(AtomicBool::new(false));
        stop_at(
            &consumer,
            ends.clone(),
            reached.clone(),
            control.supervisor.clone(),
        );
        (ends, reached)
    });
    Run {
        control,
        seed: 0,
        lake: lake.clone(),
        front: None,
        stages,
        source: KafkaTopic {
            consumer,
            producer: None,
            at_end,
            lake,
            group: k.group.clone(),
        },
    }
    .finish()
    .await
}

/// `encore simulate`: listeners → publisher → Kafka (with settings) or JSON lines on stdout.
pub async fn simulate(
    mut sim: SimConfig,
    kafka: Option<KafkaConfig>,
    opts: RunOptions,
) -> Result<Summary, RunError> {
    let producer = match &kafka {
        Some(k) => {
            let need = &[TopicAccess::Write];
            let rf = k.replication;
            sim.partitions =
                prepare_topic(&cluster(k)?, &sim.topic, (sim.partitions, rf), need).await?;
            Some(new_producer(&sim, k)?)
        }
        None => None,
    };
    let mut control = Control::start(opts, (0, Duration::from_secs(1)), sim.workers, false);
    let front = Front::start(&sim, &control, move || match producer {
        Some(p) => Backend::Kafka(p),
        None => Backend::Stdout(std::io::BufWriter::with_capacity(
            1 << 16,
            std::io::stdout(),
        )),
    })?;
    let reason = control.wait().await;
    let _ = front.conductor.send(StopListening).await;
    let facts = RunFacts {
        seed: sim.seed,
        started: control.started,
        lake: None,
    };
    let published = match front.publisher.send(DrainPublisher).await {
        Ok(Ok(c)) => c,
        // stdout closed by its reader (`| head`) is how such a run ends, not a failure.
        Ok(Err(e)) if reason != StopReason::OutputClosed => {
            control.arbiters.stop();
            let why = StopReason::Fatal(e.to_string());
            return Err(RunError::Fatal {
                reason: match &reason {
                    StopReason::Fatal(f) => f.clone(),
                    _ => e.to_string(),
                },
                summary: Box::new(Summary::new(&why, &facts, 0, Counts::default())),
            });
        }
        _ => PublisherCounters::default(),
    };
    control.finish_display().await;
    control.arbiters.stop();
    let counts = Counts {
        published,
        ..Counts::default()
    };
    Ok(Summary::new(&reason, &facts, 0, counts))
}

fn new_producer(sim: &SimConfig, k: &KafkaConfig) -> Result<Arc<KafkaProducer>, RunError> {
    let cfg = k.producer_connection(&sim.inject);
    KafkaProducer::new(&cfg, &sim.topic, &k.compression)
        .map(Arc::new)
        .map_err(RunError::Kafka)
}

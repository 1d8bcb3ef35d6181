//! The consuming half of a run: the lake opened and recovered, the accumulator, flusher and
//! committer, and what feeds them: the in-process bus or a Kafka group member.

use std::sync::Arc;

use actix::prelude::*;

use crate::actors::accumulator::Accumulator;
use crate::actors::accumulator::ResyncWith;
use crate::actors::bus::Bus;
use crate::actors::bus_consumer::BusConsumer;
use crate::actors::committer::{Committer, bus_target, kafka_target};
use crate::actors::flusher::Flusher;
use crate::actors::kafka_source::{KafkaSource, Recovery};
use crate::actors::sink_hooks::SinkHooks;
use crate::bus::Log;
use crate::config::{KafkaConfig, SinkConfig};
use crate::kafka::Cluster;
use crate::kafka::consumer::SinkConsumer;
use crate::kafka::dlq::DeadLetterWriter;
use crate::lake::{Lake, writer_properties};
use crate::messages::{Resume, ResumeAt};

use super::control::Control;
use super::summary::RunError;
use super::topics::{blocking, prepare_dlq};

/// Source identity of the in-process bus in commit markers.
pub fn bus_source(topic: &str) -> String {
    format!("encore-bus/{topic}")
}

/// The started sink stages that every source feeds.
pub(super) struct Stages {
    pub accumulator: Addr<Accumulator>,
    pub committer: Addr<Committer>,
}

/// Opens the lake for `table` and checks it can be written (creating an S3 bucket that does
/// not exist yet).
pub(super) async fn open_lake(sink: &SinkConfig, table: &str) -> Result<Lake, RunError> {
    let lake = Lake::open(&sink.lake, table)?;
    lake.ensure_writable().await?;
    Ok(lake)
}

/// Starts the flusher (supervised, on its arbiter) and the accumulator feeding it.
fn start_stages(
    sink: &SinkConfig,
    (lake, source): (&Lake, &str),
    control: &Control,
    committer: Addr<Committer>,
    dead_letters: Option<Arc<DeadLetterWriter>>,
) -> Stages {
    let flusher = {
        let (lake, cfg) = (lake.clone(), sink.lake.clone());
        let props = writer_properties(sink.compression);
        let source = source.to_string();
        Flusher::start_in_arbiter(&control.arbiters.flush.handle(), move |_| {
            Flusher::new(lake, cfg, props, source, dead_letters)
        })
    };
    let (c, s, st) = (
        committer.clone(),
        control.supervisor.clone(),
        control.stats.clone(),
    );
    let (policy, max) = (sink.policy, sink.max_unflushed);
    // The lake's table is the topic's name: reference records' ids derive from it.
    let topic = lake.table().to_string();
    let accumulator = Accumulator::start_in_arbiter(&control.arbiters.sink.handle(), move |_| {
        Accumulator::new(&topic, policy, max, flusher, c, s, st)
    });
    Stages {
        accumulator,
        committer,
    }
}

/// Where each of `partitions` resumes, after claiming it and rolling back what an earlier run
/// left uncommitted. Every partition with bookkeeping is recovered, also those beyond this
/// run's partition count.
pub(super) async fn recover_bus_positions(
    lake: &Lake,
    source: &str,
    partitions: u32,
) -> Result<Vec<Resume>, RunError> {
    let mut to_recover: Vec<i32> = (0..partitions as i32).collect();
    to_recover.extend(lake.known_partitions().await?);
    to_recover.sort_unstable();
    to_recover.dedup();
    let recovered = futures::future::try_join_all(
        to_recover
            .iter()
            .map(|&p| lake.recover_partition(p, source)),
    )
    .await?;
    let mut starts = Vec::with_capacity(partitions as usize);
    for rec in recovered {
        if !rec.removed.is_empty() {
            tracing::info!(partition = rec.partition, removed = ?rec.removed, "removed uncommitted leftovers");
        }
        if rec.partition < partitions as i32 {
            starts.push(Resume {
                partition: rec.partition,
                offset: Some(rec.next_offset.unwrap_or(0)),
                epoch: rec.epoch,
            });
        }
    }
    let offsets: Vec<i64> = starts.iter().filter_map(|r| r.offset).collect();
    tracing::info!(lake = lake.location(), starts = ?offsets, "lake recovered");
    Ok(starts)
}

/// Starts the in-process bus (on the publisher's arbiter, from `starts`) and the sink reading
/// it.
pub(super) fn start_bus_sink(
    sink: &SinkConfig,
    (lake, source): (&Lake, &str),
    resume: Vec<Resume>,
    control: &Control,
) -> (Addr<Bus>, Addr<BusConsumer>, Stages) {
    let starts: Vec<i64> = resume.iter().map(|r| r.offset.unwrap_or(0)).collect();
    let bus = {
        let log = Log::new(&starts, sink.bus_capacity);
        let stats = control.stats.clone();
        Bus::start_in_arbiter(&control.arbiters.publish.handle(), move |_| {
            Bus::new(log, stats)
        })
    };
    let committer = Committer::new(
        bus_target(bus.clone().recipient()),
        starts.clone(),
        control.stats.clone(),
    )
    .start();
    let stages = start_stages(sink, (lake, source), control, committer, None);
    // Before the consumer exists, so before any record: each partition starts where it resumes.
    stages.accumulator.do_send(ResumeAt { positions: resume });
    let consumer = {
        let (b, a) = (bus.clone(), stages.accumulator.clone());
        BusConsumer::start_in_arbiter(&control.arbiters.sink.handle(), move |_| {
            BusConsumer::new(b, a, starts)
        })
    };
    (bus, consumer, stages)
}

/// What a Kafka sink needs from the broker before it joins: the source identity its commit
/// markers carry and the dead-letter topic, created when missing, with its partition count.
pub(super) struct KafkaSinkSetup {
    source: String,
    dlq: String,
    dlq_partitions: u32,
}

/// Prepares a sink on `topic` (which must exist: checked by the caller). The two calls run at
/// once on the run's admin client.
pub(super) async fn prepare_kafka_sink(
    cluster: &Arc<Cluster>,
    topic: &str,
    k: &KafkaConfig,
) -> Result<KafkaSinkSetup, RunError> {
    let identity = {
        let (c, t) = (cluster.clone(), topic.to_string());
        blocking(move || c.source_identity(&t))
    };
    let dlq = k.dlq_topic_of(topic);
    let prepared = prepare_dlq(cluster, topic, &dlq, k.replication);
    let (source, dlq_partitions) = futures::try_join!(identity, prepared)?;
    Ok(KafkaSinkSetup {
        source,
        dlq,
        dlq_partitions,
    })
}

/// Starts the consuming half against Kafka: a group member whose assignments the lake's
/// positions drive, with the dead-letter producer. READ on the topic was checked by the caller.
pub(super) fn start_kafka_sink(
    topic: &str,
    sink: &SinkConfig,
    setup: KafkaSinkSetup,
    k: &KafkaConfig,
    lake: &Lake,
    control: &Control,
) -> Result<(Addr<KafkaSource>, Stages), RunError> {
    let source = setup.source;
    let dead_letters = Arc::new(DeadLetterWriter::new(
        &k.connection,
        &setup.dlq,
        topic,
        setup.dlq_partitions,
    )?);
    let member = SinkConsumer::new(&k.connection, topic, &k.group, k.instance_id.as_deref())?;
    let committer = Committer::new(
        kafka_target(Arc::downgrade(&member.consumer), topic.to_string()),
        Vec::new(),
        control.stats.clone(),
    )
    .start();
    let stages = start_stages(
        sink,
        (lake, &source),
        control,
        committer,
        Some(dead_letters),
    );
    member.subscribe(Box::new(SinkHooks {
        accumulator: stages.accumulator.clone(),
        supervisor: control.supervisor.clone(),
        lake: lake.clone(),
        source: source.clone(),
        io: control.arbiters.flush.handle(),
    }))?;
    let (c, a) = (member.consumer.clone(), stages.accumulator.clone());
    let recovery = Recovery {
        lake: lake.clone(),
        source,
        topic: topic.to_string(),
        io: control.arbiters.flush.handle(),
    };
    let consumer = KafkaSource::start_in_arbiter(&control.arbiters.consume.handle(), move |_| {
        KafkaSource::new(c, a, recovery)
    });
    stages
        .accumulator
        .do_send(ResyncWith(consumer.clone().recipient()));
    tracing::info!(topic, group = %k.group, lake = lake.location(), "sink joined the group");
    Ok((consumer, stages))
}

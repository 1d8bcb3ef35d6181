//! The consuming half of a run: the lake opened and recovered, the accumulator, flusher and
//! committer, and what feeds them: the in-process bus or a Kafka group member.

use std::sync::Arc;

use actix::prelude::*;

use crate::actors::accumulator::Accumulator;
use crate::actors::bus::Bus;
use crate::actors::bus_consumer::BusConsumer;
use crate::actors::committer::{Committer, bus_target, kafka_target};
use crate::actors::flusher::Flusher;
use crate::actors::kafka_source::{KafkaSource, SinkHooks};
use crate::bus::Log;
use crate::config::{KafkaConfig, SinkConfig};
use crate::kafka::consumer::SinkConsumer;
use crate::kafka::dlq::DeadLetterWriter;
use crate::kafka::source_identity;
use crate::lake::{Lake, writer_properties};

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
        actix::Supervisor::start_in_arbiter(&control.arbiters.flush.handle(), move |_| {
            Flusher::new(lake, cfg, props, source, dead_letters)
        })
    };
    let (c, s, st) = (
        committer.clone(),
        control.supervisor.clone(),
        control.stats.clone(),
    );
    let (policy, max) = (sink.policy, sink.max_unflushed);
    let accumulator = Accumulator::start_in_arbiter(&control.arbiters.sink.handle(), move |_| {
        Accumulator::new(policy, max, flusher, c, s, st)
    });
    Stages {
        accumulator,
        committer,
    }
}

/// The first offset of each of `partitions` not yet in the lake, after rolling back what an
/// earlier run left uncommitted. Every partition with bookkeeping is recovered, also those
/// beyond this run's partition count.
pub(super) async fn recover_bus_positions(
    lake: &Lake,
    source: &str,
    partitions: u32,
) -> Result<Vec<i64>, RunError> {
    let mut to_recover: Vec<i32> = (0..partitions as i32).collect();
    to_recover.extend(lake.known_partitions().await?);
    to_recover.sort_unstable();
    to_recover.dedup();
    let mut starts = vec![0; partitions as usize];
    for p in to_recover {
        let rec = lake.recover_partition(p, source).await?;
        if !rec.removed.is_empty() {
            tracing::info!(partition = p, removed = ?rec.removed, "removed uncommitted leftovers");
        }
        if let Some(slot) = starts.get_mut(p as usize) {
            *slot = rec.next_offset.unwrap_or(0);
        }
    }
    tracing::info!(lake = lake.location(), ?starts, "lake recovered");
    Ok(starts)
}

/// Starts the in-process bus (on the publisher's arbiter, from `starts`) and the sink reading
/// it.
pub(super) fn start_bus_sink(
    sink: &SinkConfig,
    (lake, source): (&Lake, &str),
    starts: Vec<i64>,
    control: &Control,
) -> (Addr<Bus>, Addr<BusConsumer>, Stages) {
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
    let consumer = {
        let (b, a) = (bus.clone(), stages.accumulator.clone());
        BusConsumer::start_in_arbiter(&control.arbiters.sink.handle(), move |_| {
            BusConsumer::new(b, a, starts)
        })
    };
    (bus, consumer, stages)
}

/// Starts the consuming half against Kafka: a group member whose assignments the lake's
/// positions drive, with the dead-letter producer. READ on the topic was checked by the caller.
pub(super) async fn start_kafka_sink(
    topic: &str,
    sink: &SinkConfig,
    k: &KafkaConfig,
    lake: &Lake,
    control: &Control,
) -> Result<(Addr<KafkaSource>, Stages), RunError> {
    let source = {
        let (cfg, t) = (k.connection.clone(), topic.to_string());
        blocking(move || source_identity(&cfg, &t)).await?
    };
    let dead_letters = {
        let dlq = k.dlq_topic_of(topic);
        let parts = prepare_dlq(topic, &dlq, k).await?;
        Arc::new(DeadLetterWriter::new(&k.connection, &dlq, topic, parts)?)
    };
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
        source,
        io: control.arbiters.flush.handle(),
    }))?;
    let (c, a) = (member.consumer.clone(), stages.accumulator.clone());
    let consumer = KafkaSource::start_in_arbiter(&control.arbiters.consume.handle(), move |_| {
        KafkaSource::new(c, a)
    });
    tracing::info!(topic, group = %k.group, lake = lake.location(), "sink joined the group");
    Ok((consumer, stages))
}

//! The pipeline driver: opens the lake, recovers positions, starts and wires the actors,
//! waits for a stop reason, then runs the shutdown sequence:
//!
//! stop listeners → drain the publisher → consume up to the high watermarks → flush every
//! batch and commit → summary.
//!
//! A fatal stop (restart budget exhausted) skips the drain: what is committed stays committed.
//! With the in-process bus, events published but not yet committed existed only in memory: the
//! summary reports them, and the next run continues after the last committed offset.

use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::actors::accumulator::Accumulator;
use crate::actors::bus::Bus;
use crate::actors::clickhouse_ddl::ClickHouseDdl;
use crate::actors::committer::{Committer, bus_target, kafka_target};
use crate::actors::conductor::{Conductor, MaxRate};
use crate::actors::consumer::BusConsumer;
use crate::actors::flusher::Flusher;
use crate::actors::kafka_consumer::{KafkaSource, SinkHooks};
use crate::actors::listener::{Clock, ListenerActor};
use crate::actors::publisher::{Backend, Publisher};
use crate::actors::stats::{Finish, Stats};
use crate::actors::supervisor::Supervisor;
use crate::bus::Log;
use crate::clickhouse::setup::{SetupError, SetupReport};
use crate::clickhouse::{ChError, ClickHouse, ClickHouseSettings};
use crate::event::{EVENT_TYPES, EventType};
use crate::kafka::consumer::SinkConsumer;
use crate::kafka::dlq::DeadLetterWriter;
use crate::kafka::producer::KafkaProducer;
use crate::kafka::{
    KafkaConfig, TopicAccess, check_topic_access, ensure_topic, fetch_high_watermarks,
    source_identity,
};
use crate::lake::{Compression, Lake, LakeConfig, LakeError, writer_properties};
use crate::messages::{
    ApplySchema, CloseConsumer, CommitCounters, DrainPublisher, DrainTo, FlushAll, GetCommitted,
    GetHighWatermarks, GetRestarts, PublisherCounters, SinkCounters, StartListeners, StopConsuming,
    StopListening, StopReason, StopRun,
};
use crate::sim::{
    BehaviourConfig, Catalog, InjectConfig, Injector, Listener, ModelParams, listener_seed,
};
use crate::sink::FlushPolicy;

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
    pub events: Option<u64>,
    pub duration: Option<Duration>,
    pub partitions: u32,
    pub topic: String,
    /// `--inject`: faults the listeners add to what they send.
    pub inject: InjectConfig,
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

/// How to use Kafka in a run.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    pub config: KafkaConfig,
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

impl KafkaSettings {
    /// The dead-letter topic must not be the topic itself: its letters would be read, rejected
    /// and copied again forever.
    pub fn check_dlq(&self, topic: &str) -> Result<(), RunError> {
        if self.dlq_topic_of(topic) == topic {
            return Err(RunError::Usage(format!(
                "--dlq-topic `{topic}` is the topic the sink reads; use another name"
            )));
        }
        Ok(())
    }

    /// The dead-letter topic of `topic`.
    pub fn dlq_topic_of(&self, topic: &str) -> String {
        self.dlq_topic
            .clone()
            .unwrap_or_else(|| crate::kafka::dlq::default_topic(topic))
    }
}

/// Process-level behaviour.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Draw the progress display / log progress lines.
    pub progress: bool,
    /// Install SIGINT/SIGTERM handlers (drain on the first, abort on the second).
    pub handle_signals: bool,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Summary {
    pub reason: StopReason,
    pub seed: u64,
    pub published: PublisherCounters,
    pub consumed: u64,
    pub rows: u64,
    pub rejected: u64,
    pub files: u64,
    pub bytes: u64,
    pub restarts: u32,
    pub elapsed: Duration,
    /// Lake location, when a sink ran.
    pub lake: Option<String>,
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad configuration or an unusable lake: nothing was written.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A service refused the set-up (e.g. ClickHouse's schema drifted): nothing was written.
    #[error("{0}")]
    Refused(String),
    /// The run drained completely, but a side of it did not finish (ClickHouse's schema).
    #[error("{reason}")]
    Incomplete {
        reason: String,
        summary: Box<Summary>,
    },
    /// The run stopped without draining; the summary says how far it got.
    #[error("{reason}")]
    Fatal {
        reason: String,
        summary: Box<Summary>,
    },
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(f, "encore summary")?;
        writeln!(f, "  stopped by      {}", describe(&self.reason))?;
        writeln!(f, "  seed            {}", self.seed)?;
        let events = self.published.events();
        writeln!(
            f,
            "  events          {events} in {:.2}s ({:.0} events/s)",
            secs,
            events as f64 / secs
        )?;
        for t in EventType::ALL {
            let n = self.published.by_type[t.index()];
            let share = 100.0 * n as f64 / events.max(1) as f64;
            writeln!(f, "    {:<26}{n:>12}  {share:5.1}%", t.name())?;
        }
        let p = &self.published;
        if p.malformed + p.duplicates + p.late > 0 {
            writeln!(
                f,
                "  injected        {} not valid events, {} duplicates, {} late (records sent {})",
                p.malformed, p.duplicates, p.late, p.published
            )?;
        }
        if self.published.acked + self.published.failed > 0 {
            writeln!(
                f,
                "  delivered       {} acknowledged by Kafka, {} failed",
                self.published.acked, self.published.failed
            )?;
        }
        if self.published.retried > 0 {
            writeln!(
                f,
                "  sent again      {} after transient broker errors ({} possibly written twice)",
                self.published.retried, self.published.possibly_duplicated
            )?;
        }
        if let Some(lake) = &self.lake {
            writeln!(f, "  lake            {lake}")?;
            writeln!(f, "  rows written    {}", self.rows)?;
            writeln!(f, "  rejected        {}", self.rejected)?;
            writeln!(
                f,
                "  files           {} ({:.1} MiB)",
                self.files,
                self.bytes as f64 / (1024.0 * 1024.0)
            )?;
        }
        write!(f, "  restarts        {}", self.restarts)
    }
}

fn describe(r: &StopReason) -> String {
    match r {
        StopReason::Duration => "--duration elapsed".into(),
        StopReason::EventLimit => "--events reached".into(),
        StopReason::Signal(s) => format!("{s} (drained)"),
        StopReason::OutputClosed => "output closed".into(),
        StopReason::Fatal(e) => format!("fatal error: {e}"),
    }
}

/// Source identity of the in-process bus in commit markers.
pub fn bus_source(topic: &str) -> String {
    format!("encore-bus/{topic}")
}

/// One arbiter per stage, plus the listener workers.
struct Arbiters {
    publish: Arbiter,
    sink: Arbiter,
    flush: Arbiter,
    /// The Kafka consumer: its poll blocks, so it gets a thread of its own.
    consume: Arbiter,
    workers: Vec<Arbiter>,
}

impl Arbiters {
    fn new(workers: usize) -> Self {
        Arbiters {
            publish: Arbiter::new(),
            sink: Arbiter::new(),
            flush: Arbiter::new(),
            consume: Arbiter::new(),
            workers: (0..workers.max(1)).map(|_| Arbiter::new()).collect(),
        }
    }

    fn stop(self) {
        for a in [self.publish, self.sink, self.flush, self.consume]
            .into_iter()
            .chain(self.workers)
        {
            a.stop();
            let _ = a.join();
        }
    }
}

/// Starts the listeners (spread over the workers) and their conductor.
fn start_listeners(
    sim: &SimConfig,
    arbiters: &Arbiters,
    publisher: &Addr<Publisher>,
    supervisor: &Addr<Supervisor>,
) -> Result<Addr<Conductor>, RunError> {
    let catalog = Arc::new(Catalog::new(sim.tracks, sim.seed).map_err(RunError::Usage)?);
    let clock = match sim.clock {
        ClockMode::Realtime { speed } => Clock::Realtime {
            started: Instant::now(),
            start_ms: sim.start_ms,
            speed,
        },
        ClockMode::MaxRate => Clock::MaxRate,
    };
    let params = ModelParams::new(&sim.behaviour, catalog);
    let users = u64::from(sim.users.max(1));
    let mut listeners = Vec::with_capacity(users as usize);
    for i in 0..users {
        // Max-rate runs split --events into per-listener quotas, so that every listener's
        // sequence is the same in every run with the same seed.
        let quota = match (sim.clock, sim.events) {
            (ClockMode::MaxRate, Some(n)) => Some(n / users + u64::from(i < n % users)),
            _ => None,
        };
        let model = Listener::with_params(i, sim.seed, sim.start_ms, params.clone());
        let injector = sim
            .inject
            .is_active()
            .then(|| Injector::new(sim.inject, listener_seed(sim.seed, i)));
        let publisher = publisher.clone();
        let arb = &arbiters.workers[i as usize % arbiters.workers.len()];
        listeners.push(ListenerActor::start_in_arbiter(&arb.handle(), move |_| {
            ListenerActor::new(model, publisher, clock, quota, injector)
        }));
    }
    let max_rate = (sim.clock == ClockMode::MaxRate).then(|| {
        // First tick sized from the expected event rate; later ticks adapt to what they carry.
        let b = &sim.behaviour;
        let per_ms = users as f64 * 0.6 / b.mean_event_gap_ms.max(1.0);
        // Enough events per tick to amortise the barrier, few enough to bound memory.
        let target_events = (users * 8).clamp(20_000, 100_000);
        MaxRate {
            now_ms: sim.start_ms,
            tick_ms: ((target_events as f64 / per_ms.max(1e-9)) as i64).max(10),
            target_events,
        }
    });
    Ok(Conductor::new(listeners, max_rate, supervisor.clone()).start())
}

/// Starts the producing half (publisher on its arbiter with the given back end, listeners and
/// their conductor), arms the stop triggers and sets the listeners going.
fn start_front(
    sim: &SimConfig,
    arbiters: &Arbiters,
    supervisor: &Addr<Supervisor>,
    stats: &Option<Addr<Stats>>,
    opts: RunOptions,
    backend: impl FnOnce() -> Backend + Send + 'static,
) -> Result<(Addr<Publisher>, Addr<Conductor>), RunError> {
    let (s, st) = (supervisor.clone(), stats.clone());
    let (parts, limit) = (sim.partitions, sim.events);
    let publisher = Publisher::start_in_arbiter(&arbiters.publish.handle(), move |_| {
        Publisher::new(backend(), parts, limit, s, st)
    });
    let conductor = start_listeners(sim, arbiters, &publisher, supervisor)?;
    if opts.handle_signals {
        watch_signals(supervisor.clone());
    }
    arm_duration(sim, supervisor);
    conductor.do_send(StartListeners);
    Ok((publisher, conductor))
}

/// Spawns the signal handler: the first SIGINT/SIGTERM drains, a second aborts.
fn watch_signals(supervisor: Addr<Supervisor>) {
    use tokio::signal::unix::{SignalKind, signal};
    actix::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!("cannot install signal handlers");
            return;
        };
        let mut seen = 0;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            seen += 1;
            if seen == 1 {
                eprintln!("encore: {name} received: draining (send it again to abort)");
                supervisor.do_send(StopRun {
                    reason: StopReason::Signal(name),
                });
            } else {
                eprintln!("encore: second {name}: aborting without draining");
                std::process::exit(130);
            }
        }
    });
}

fn arm_duration(sim: &SimConfig, supervisor: &Addr<Supervisor>) {
    if let Some(d) = sim.duration {
        let s = supervisor.clone();
        actix::spawn(async move {
            tokio::time::sleep(d).await;
            s.do_send(StopRun {
                reason: StopReason::Duration,
            });
        });
    }
}

/// Awaits `fut` unless a fatal stop reason arrives first.
async fn unless_fatal<T>(
    stops: &mut mpsc::UnboundedReceiver<StopReason>,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            v = &mut fut => return Ok(v),
            r = stops.recv() => match r {
                Some(StopReason::Fatal(e)) => return Err(e),
                Some(_) => continue,
                None => return Ok(fut.await),
            },
        }
    }
}

fn mailbox<T>(r: Result<T, MailboxError>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// Starts the flusher (supervised, on its arbiter) and the accumulator feeding it.
#[allow(clippy::too_many_arguments)]
fn start_sink_stages(
    sink: &SinkConfig,
    lake: &Lake,
    source: &str,
    arbiters: &Arbiters,
    committer: &Addr<Committer>,
    supervisor: &Addr<Supervisor>,
    stats: &Option<Addr<Stats>>,
    dead_letters: Option<Arc<DeadLetterWriter>>,
) -> Addr<Accumulator> {
    let flusher = {
        let (lake, cfg) = (lake.clone(), sink.lake.clone());
        let props = writer_properties(sink.compression);
        let source = source.to_string();
        actix::Supervisor::start_in_arbiter(&arbiters.flush.handle(), move |_| {
            Flusher::new(lake, cfg, props, source, dead_letters)
        })
    };
    let (f, c, s, st) = (
        flusher,
        committer.clone(),
        supervisor.clone(),
        stats.clone(),
    );
    let (policy, max) = (sink.policy, sink.max_unflushed);
    Accumulator::start_in_arbiter(&arbiters.sink.handle(), move |_| {
        Accumulator::new(policy, max, f, c, s, st)
    })
}

/// Opens the lake for `table` and checks it can be written (creating an S3 bucket that does
/// not exist yet).
async fn open_lake(sink: &SinkConfig, table: &str) -> Result<Lake, RunError> {
    let lake = Lake::open(&sink.lake, table)?;
    lake.ensure_writable().await?;
    Ok(lake)
}

/// Runs a blocking Kafka set-up call off the actors' threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::kafka::KafkaSetupError> + Send + 'static,
) -> Result<T, RunError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RunError::Usage(format!("Kafka set-up: {e}")))?
        .map_err(|e| RunError::Usage(e.to_string()))
}

/// The producer's settings: `--inject oversized` sends 2 MiB records, which librdkafka refuses
/// by default (the broker's own limit still applies, and a refusal stops the run).
fn producer_config(sim: &SimConfig, k: &KafkaSettings) -> KafkaConfig {
    let mut cfg = k.config.clone();
    if sim.inject.oversized > 0.0 && !cfg.extra.iter().any(|(k, _)| k == "message.max.bytes") {
        cfg.extra
            .push(("message.max.bytes".into(), (4 << 20).to_string()));
    }
    cfg
}

/// The topic exists (created when missing), the principal may do `need` with it, and its
/// partition count.
async fn prepare_topic(
    topic: &str,
    partitions: u32,
    k: &KafkaSettings,
    need: &'static [TopicAccess],
) -> Result<u32, RunError> {
    let (cfg, t, rf) = (k.config.clone(), topic.to_string(), k.replication);
    Ok(blocking(move || {
        let info = ensure_topic(&cfg, &t, partitions, rf)?;
        check_topic_access(&cfg, &t, need)?;
        Ok(info)
    })
    .await?
    .partitions)
}

/// ClickHouse for a run: where, and whether to drop and recreate the schema first.
#[derive(Clone, Debug)]
pub struct ClickHouseRun {
    pub settings: ClickHouseSettings,
    pub recreate: bool,
}

/// Creates the topics ClickHouse's queues subscribe to, if missing: a queue created before its
/// topic notices the topic only at librdkafka's next metadata refresh (5 minutes by default).
pub async fn prepare_clickhouse_topics(
    target: &crate::clickhouse::schema::Target,
    events_partitions: u32,
    k: &KafkaSettings,
) -> Result<(), RunError> {
    prepare_topic(
        &target.events_topic,
        events_partitions,
        k,
        &[TopicAccess::Write],
    )
    .await?;
    prepare_topic(&target.simple_topic, 1, k, &[TopicAccess::Write]).await?;
    Ok(())
}

/// Starts the ClickHouseDdl actor and has it apply the schema; the actor stays up as long as
/// the returned address is held.
pub async fn apply_clickhouse(
    run: &ClickHouseRun,
) -> Result<(Addr<ClickHouseDdl>, SetupReport), SetupError> {
    let ch = ClickHouse::new(run.settings.config.clone())?;
    let ddl = ClickHouseDdl::new(ch, run.settings.target.clone(), run.settings.patience).start();
    let report = ddl
        .send(ApplySchema {
            recreate: run.recreate,
        })
        .await
        .map_err(|e| ChError::Config(format!("the ClickHouse DDL actor stopped: {e}")))??;
    Ok((ddl, report))
}

/// Where a run's ClickHouse schema stands.
#[derive(Clone, Debug)]
enum DdlState {
    Applied,
    /// Not reachable yet: the DDL actor keeps trying (the last error).
    Retrying(String),
    /// Reached, and refused (drift, permissions): not retried.
    Failed(String),
}

/// A run's ClickHouse: the DDL actor and the state of its schema.
struct ClickHouseHandle {
    _ddl: Addr<ClickHouseDdl>,
    state: tokio::sync::watch::Receiver<DdlState>,
}

impl ClickHouseHandle {
    /// None when the schema is in place; otherwise why the run must not report success.
    fn unfinished(&self) -> Option<String> {
        match &*self.state.borrow() {
            DdlState::Applied => None,
            DdlState::Retrying(e) => Some(format!(
                "ClickHouse stayed unreachable for the whole run, so its schema was not applied ({e}); the lake and the topic are complete: `encore clickhouse setup` later creates the queues, which read the topic from its start"
            )),
            DdlState::Failed(e) => Some(format!(
                "ClickHouse refused the schema after it came back: {e}; the lake and the topic are complete"
            )),
        }
    }
}

/// Waits between attempts to reach a ClickHouse that was down at start.
const DDL_RETRY_FIRST: Duration = Duration::from_secs(1);
const DDL_RETRY_CAP: Duration = Duration::from_secs(10);

/// Applies the schema before anything is published. A server that answers and refuses (drift,
/// bad credentials) stops the run here; one that does not answer yet is retried in the
/// background while the lake path runs: its queues read the topic from the start whenever
/// they are created, so nothing is missed.
async fn start_clickhouse(run: &ClickHouseRun) -> Result<ClickHouseHandle, RunError> {
    let fail = |e: SetupError| match e {
        SetupError::Ch(ChError::Config(_)) => RunError::Usage(format!("ClickHouse: {e}")),
        // The server refused, or its tables differ: not a usage error (exit 1).
        e => RunError::Refused(format!("ClickHouse: {e}")),
    };
    let ch = ClickHouse::new(run.settings.config.clone()).map_err(|e| fail(e.into()))?;
    // One attempt per request (its statements still retry a refused connection briefly); the
    // waiting between attempts is done here, so the lake path never waits for it.
    let ddl = ClickHouseDdl::new(ch, run.settings.target.clone(), Duration::ZERO).start();
    let apply = {
        let (ddl, recreate) = (ddl.clone(), run.recreate);
        move || {
            let ddl = ddl.clone();
            async move {
                ddl.send(ApplySchema { recreate }).await.map_err(|e| {
                    ChError::Config(format!("the ClickHouse DDL actor stopped: {e}"))
                })?
            }
        }
    };
    let ready = |report: SetupReport| {
        tracing::info!(
            created = report.created.len(),
            unchanged = report.unchanged.len(),
            dropped = report.dropped.len(),
            "ClickHouse schema ready"
        );
        for w in &report.warnings {
            tracing::warn!("{w}");
        }
    };
    match apply().await {
        Ok(report) => {
            ready(report);
            let (_tx, state) = tokio::sync::watch::channel(DdlState::Applied);
            Ok(ClickHouseHandle { _ddl: ddl, state })
        }
        Err(SetupError::Ch(e @ ChError::Connect { .. })) => {
            tracing::warn!(
                error = %e,
                "ClickHouse is not reachable; the run goes on and the schema is applied as soon as it answers"
            );
            let (tx, state) = tokio::sync::watch::channel(DdlState::Retrying(e.to_string()));
            actix::spawn(async move {
                let mut delay = DDL_RETRY_FIRST;
                loop {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(DDL_RETRY_CAP);
                    let next = match apply().await {
                        Ok(report) => {
                            ready(report);
                            DdlState::Applied
                        }
                        Err(SetupError::Ch(e @ ChError::Connect { .. })) => {
                            tracing::debug!(error = %e, "ClickHouse still unreachable");
                            DdlState::Retrying(e.to_string())
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "ClickHouse refused the schema");
                            DdlState::Failed(e.to_string())
                        }
                    };
                    let done = !matches!(next, DdlState::Retrying(_));
                    if tx.send(next).is_err() || done {
                        return;
                    }
                }
            });
            Ok(ClickHouseHandle { _ddl: ddl, state })
        }
        Err(e) => Err(fail(e)),
    }
}

/// A started Kafka sink: group member + accumulator + committer.
struct KafkaSink {
    consumer: Addr<KafkaSource>,
    accumulator: Addr<Accumulator>,
    committer: Addr<Committer>,
}

/// Starts the consuming half against Kafka: the lake's positions drive the group member.
async fn start_kafka_sink(
    topic: &str,
    sink: &SinkConfig,
    k: &KafkaSettings,
    lake: &Lake,
    arbiters: &Arbiters,
    supervisor: &Addr<Supervisor>,
    stats: &Option<Addr<Stats>>,
) -> Result<KafkaSink, RunError> {
    let source = {
        let (cfg, t) = (k.config.clone(), topic.to_string());
        // READ on the topic was checked by the callers (prepare_topic, sink_kafka).
        blocking(move || source_identity(&cfg, &t)).await?
    };
    let dead_letters = {
        let dlq = k.dlq_topic_of(topic);
        let (cfg, t, d, rf) = (
            k.config.clone(),
            topic.to_string(),
            dlq.clone(),
            k.replication,
        );
        // As many partitions as the source: source partition p's letters go to p, in order.
        let parts = blocking(move || {
            let n = crate::kafka::topic_partitions(&cfg, &t)?.unwrap_or(1);
            let info = ensure_topic(&cfg, &d, n, rf)?;
            check_topic_access(&cfg, &d, &[TopicAccess::Write])?;
            Ok(info.partitions)
        })
        .await?;
        Arc::new(
            DeadLetterWriter::new(&k.config, &dlq, topic, parts)
                .map_err(|e| RunError::Usage(e.to_string()))?,
        )
    };
    let member = SinkConsumer::new(&k.config, topic, &k.group, k.instance_id.as_deref())
        .map_err(|e| RunError::Usage(e.to_string()))?;
    let committer = Committer::new(
        kafka_target(Arc::downgrade(&member.consumer), topic.to_string()),
        Vec::new(),
        stats.clone(),
    )
    .start();
    let accumulator = start_sink_stages(
        sink,
        lake,
        &source,
        arbiters,
        &committer,
        supervisor,
        stats,
        Some(dead_letters),
    );
    member
        .subscribe(Box::new(SinkHooks {
            accumulator: accumulator.clone(),
            supervisor: supervisor.clone(),
            lake: lake.clone(),
            source,
            io: arbiters.flush.handle(),
        }))
        .map_err(|e| RunError::Usage(e.to_string()))?;
    let (c, a) = (member.consumer.clone(), accumulator.clone());
    let consumer =
        KafkaSource::start_in_arbiter(&arbiters.consume.handle(), move |_| KafkaSource::new(c, a));
    tracing::info!(topic, group = %k.group, lake = lake.location(), "sink joined the group");
    Ok(KafkaSink {
        consumer,
        accumulator,
        committer,
    })
}

/// The progress display (when asked for) and the supervisor, with the channel on which the
/// run learns why it must stop.
fn start_control(
    sink: &SinkConfig,
    opts: RunOptions,
) -> (
    Option<Addr<Stats>>,
    Addr<Supervisor>,
    mpsc::UnboundedReceiver<StopReason>,
) {
    let stats = opts
        .progress
        .then(|| Stats::new(std::io::stderr().is_terminal(), true).start());
    let (stop_tx, stops) = mpsc::unbounded_channel();
    let supervisor = Supervisor::new(
        sink.restart_budget,
        sink.restart_window,
        stop_tx,
        stats.clone(),
    )
    .start();
    (stats, supervisor, stops)
}

/// Drain steps 1-2: stop the listeners, then drain the publisher (every Kafka record
/// acknowledged, or every record on the bus).
async fn stop_front(
    conductor: &Addr<Conductor>,
    publisher: &Addr<Publisher>,
) -> Result<PublisherCounters, String> {
    mailbox(conductor.send(StopListening).await, "stopping listeners")?;
    tracing::debug!("listeners stopped; draining the publisher");
    let published = mailbox(publisher.send(DrainPublisher).await, "draining publisher")?
        .map_err(|e| e.to_string())?;
    tracing::debug!(
        published = published.published,
        acked = published.acked,
        "publisher drained"
    );
    Ok(published)
}

/// Stops the listeners and reads the publisher's counts for a fatal stop's report, without
/// waiting on a publisher that may be stuck (behind a full bus, or a broker that is away).
async fn publisher_counts_quickly(
    conductor: &Addr<Conductor>,
    publisher: &Addr<Publisher>,
) -> PublisherCounters {
    let quick = Duration::from_secs(2);
    let _ = tokio::time::timeout(quick, conductor.send(StopListening)).await;
    match tokio::time::timeout(quick, publisher.send(DrainPublisher)).await {
        Ok(Ok(Ok(c))) => c,
        _ => PublisherCounters::default(),
    }
}

/// What the end of a run with listeners needs: the summary, or the report of a fatal stop.
struct RunEnd<'a> {
    reason: &'a StopReason,
    seed: u64,
    started: Instant,
    lake: &'a Lake,
    supervisor: &'a Addr<Supervisor>,
    stats: &'a Option<Addr<Stats>>,
    conductor: &'a Addr<Conductor>,
    publisher: &'a Addr<Publisher>,
    committer: &'a Addr<Committer>,
}

impl RunEnd<'_> {
    /// Finishes the progress display and turns the drain's outcome into the run's result.
    async fn conclude(
        self,
        outcome: Result<(PublisherCounters, SinkCounters, CommitCounters), String>,
    ) -> Result<Summary, RunError> {
        let restarts = self.supervisor.send(GetRestarts).await.unwrap_or(0);
        if let Some(s) = self.stats {
            let _ = s.send(Finish).await;
        }
        let summary = |published, consumed, c| {
            summarize(
                self.reason,
                self.seed,
                published,
                consumed,
                c,
                restarts,
                self.started,
                self.lake,
            )
        };
        match outcome {
            Ok((published, sink_counters, committed)) => {
                Ok(summary(published, sink_counters.consumed, committed))
            }
            Err(e) => {
                let published = publisher_counts_quickly(self.conductor, self.publisher).await;
                let committed = self.committer.send(GetCommitted).await.unwrap_or_default();
                Err(RunError::Fatal {
                    reason: e,
                    summary: Box::new(summary(published, 0, committed)),
                })
            }
        }
    }
}

/// The end-of-run summary from the counters of each stage.
#[allow(clippy::too_many_arguments)]
fn summarize(
    reason: &StopReason,
    seed: u64,
    published: PublisherCounters,
    consumed: u64,
    c: CommitCounters,
    restarts: u32,
    started: Instant,
    lake: &Lake,
) -> Summary {
    Summary {
        reason: reason.clone(),
        seed,
        published,
        consumed,
        rows: c.rows,
        rejected: c.rejected,
        files: c.files,
        bytes: c.bytes,
        restarts,
        elapsed: started.elapsed(),
        lake: Some(lake.location().to_string()),
    }
}

/// How long closing the consumer (leaving the group) may take at the end of a run.
const CLOSE_PATIENCE: Duration = Duration::from_secs(15);

/// How long the drain of `encore run --brokers` waits for the sink to read every partition up to
/// the end of what was published.
const DRAIN_PATIENCE: Duration = Duration::from_secs(180);

/// `encore run --brokers`: listeners → Kafka producer → topic → group member → accumulator →
/// flusher → lake, in one process. Must be called inside an actix `System`.
pub async fn run_kafka(
    mut sim: SimConfig,
    sink: SinkConfig,
    k: KafkaSettings,
    clickhouse: Option<ClickHouseRun>,
    opts: RunOptions,
) -> Result<Summary, RunError> {
    let started = Instant::now();
    k.check_dlq(&sim.topic)?;
    // The lake first: a bad location must stop the run before any topic is created.
    let lake = open_lake(&sink, &sim.topic).await?;
    // The run publishes and consumes: both named at start when missing.
    sim.partitions = prepare_topic(
        &sim.topic,
        sim.partitions,
        &k,
        &[TopicAccess::Write, TopicAccess::Read],
    )
    .await?;
    // After the topics exist (ClickHouse's queues subscribe to them).
    let ddl = match &clickhouse {
        Some(c) => {
            prepare_clickhouse_topics(&c.settings.target, sim.partitions, &k).await?;
            Some(start_clickhouse(c).await?)
        }
        None => None,
    };
    let producer = Arc::new(
        KafkaProducer::new(&producer_config(&sim, &k), &sim.topic, &k.compression)
            .map_err(|e| RunError::Usage(e.to_string()))?,
    );
    let (stats, supervisor, mut stops) = start_control(&sink, opts);
    let arbiters = Arbiters::new(sim.workers);
    let ks = start_kafka_sink(&sim.topic, &sink, &k, &lake, &arbiters, &supervisor, &stats).await?;
    let p = producer.clone();
    let (publisher, conductor) =
        start_front(&sim, &arbiters, &supervisor, &stats, opts, move || {
            Backend::Kafka(p)
        })?;

    let reason = stops.recv().await.unwrap_or(StopReason::Duration);
    tracing::debug!(reason = %describe(&reason), "draining");
    let drained = async {
        let published = stop_front(&conductor, &publisher).await?;
        let targets = {
            let (p, parts) = (producer.clone(), sim.partitions);
            tokio::task::spawn_blocking(move || {
                fetch_high_watermarks(p.client(), p.topic(), parts, Duration::from_secs(30))
            })
            .await
            .map_err(|e| e.to_string())??
        };
        let caught_up = mailbox(
            ks.consumer
                .send(DrainTo {
                    targets: targets.clone(),
                })
                .await,
            "draining consumer",
        )?;
        match tokio::time::timeout(DRAIN_PATIENCE, caught_up).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err("the consumer stopped before it caught up".to_string()),
            Err(_) => {
                return Err(format!(
                    "the sink did not read the topic up to {targets:?} within {}: the group `{}` did not give \
                     this member every partition (another member owns some, or the broker has \
                     not reassigned them); what is committed is safe and a later `encore sink` \
                     resumes from it",
                    humantime::format_duration(DRAIN_PATIENCE),
                    k.group
                ));
            }
        }
        let sink_counters = mailbox(ks.accumulator.send(FlushAll).await, "flushing")?;
        let committed = mailbox(ks.committer.send(GetCommitted).await, "reading commits")?;
        // The lake itself must now reach the end of every partition.
        for (p, &target) in targets.iter().enumerate() {
            let end = lake
                .committed_ranges(p as i32)
                .await
                .map_err(|e| e.to_string())?
                .last()
                .map_or(0, |r| r.last + 1);
            if target > 0 && end < target {
                return Err(format!(
                    "drain incomplete: partition {p} is committed up to offset {end}, the topic ends at {target}"
                ));
            }
        }
        Ok::<_, String>((published, sink_counters, committed))
    };
    let outcome = match &reason {
        StopReason::Fatal(e) => Err(e.clone()),
        _ => unless_fatal(&mut stops, drained).await.and_then(|r| r),
    };
    // Bounded: a consumer stuck behind a lake that does not answer must not hold the exit.
    let _ = tokio::time::timeout(CLOSE_PATIENCE, ks.consumer.send(CloseConsumer)).await;
    let result = RunEnd {
        reason: &reason,
        seed: sim.seed,
        started,
        lake: &lake,
        supervisor: &supervisor,
        stats: &stats,
        conductor: &conductor,
        publisher: &publisher,
        committer: &ks.committer,
    }
    .conclude(outcome)
    .await;
    arbiters.stop();
    match (result, ddl.as_ref().and_then(ClickHouseHandle::unfinished)) {
        (Ok(summary), Some(reason)) => Err(RunError::Incomplete {
            reason,
            summary: Box::new(summary),
        }),
        (result, _) => result,
    }
}

/// `encore sink`: topic → lake, as one member of the consumer group, until a signal or
/// `duration`. Must be called inside an actix `System`.
pub async fn sink_kafka(
    topic: &str,
    sink: SinkConfig,
    k: KafkaSettings,
    duration: Option<Duration>,
    opts: RunOptions,
) -> Result<Summary, RunError> {
    let started = Instant::now();
    k.check_dlq(topic)?;
    let partitions = {
        let (cfg, t) = (k.config.clone(), topic.to_string());
        // The sink never creates the topic: a typo must not create an empty one.
        blocking(move || {
            // A topic this principal may not describe would look missing: name the ACL.
            check_topic_access(&cfg, &t, &[TopicAccess::Read])?;
            let admin_check = crate::kafka::topic_partitions(&cfg, &t)?;
            admin_check.ok_or_else(|| {
                crate::kafka::KafkaSetupError::Config(format!(
                    "topic `{t}` does not exist (create it with `encore simulate --brokers …` or the Kafka tools)"
                ))
            })
        })
        .await?
    };
    tracing::info!(topic, partitions, "topic found");
    let lake = open_lake(&sink, topic).await?;
    let (stats, supervisor, mut stops) = start_control(&sink, opts);
    let arbiters = Arbiters::new(1);
    let ks = start_kafka_sink(topic, &sink, &k, &lake, &arbiters, &supervisor, &stats).await?;
    if opts.handle_signals {
        watch_signals(supervisor.clone());
    }
    if let Some(d) = duration {
        let s = supervisor.clone();
        actix::spawn(async move {
            tokio::time::sleep(d).await;
            s.do_send(StopRun {
                reason: StopReason::Duration,
            });
        });
    }
    let reason = stops.recv().await.unwrap_or(StopReason::Duration);
    let drained = async {
        let consumed = mailbox(ks.consumer.send(StopConsuming).await, "stopping consumer")?;
        let _ = mailbox(ks.accumulator.send(FlushAll).await, "flushing")?;
        let committed = mailbox(ks.committer.send(GetCommitted).await, "reading commits")?;
        Ok::<_, String>((consumed, committed))
    };
    let outcome = match &reason {
        StopReason::Fatal(e) => Err(e.clone()),
        _ => unless_fatal(&mut stops, drained).await,
    };
    // Bounded: a consumer stuck behind a lake that does not answer must not hold the exit.
    let _ = tokio::time::timeout(CLOSE_PATIENCE, ks.consumer.send(CloseConsumer)).await;
    let restarts = supervisor.send(GetRestarts).await.unwrap_or(0);
    if let Some(s) = &stats {
        let _ = s.send(Finish).await;
    }
    let summary = |consumed, c: CommitCounters| {
        summarize(
            &reason,
            0,
            PublisherCounters::default(),
            consumed,
            c,
            restarts,
            started,
            &lake,
        )
    };
    let result = match outcome {
        Ok(Ok((consumed, committed))) => Ok(summary(consumed, committed)),
        Ok(Err(e)) | Err(e) => {
            let committed = ks.committer.send(GetCommitted).await.unwrap_or_default();
            Err(RunError::Fatal {
                reason: e,
                summary: Box::new(summary(0, committed)),
            })
        }
    };
    arbiters.stop();
    result
}

/// `encore run`: listeners → publisher → in-process bus → consumer → accumulator → flusher →
/// lake. Must be called inside an actix `System`.
pub async fn run(sim: SimConfig, sink: SinkConfig, opts: RunOptions) -> Result<Summary, RunError> {
    let started = Instant::now();
    let lake = open_lake(&sink, &sim.topic).await?;
    let source = bus_source(&sim.topic);
    // Recover every partition with bookkeeping, also those beyond this run's partition count.
    let mut to_recover: Vec<i32> = (0..sim.partitions as i32).collect();
    to_recover.extend(lake.known_partitions().await?);
    to_recover.sort_unstable();
    to_recover.dedup();
    let mut starts = vec![0; sim.partitions as usize];
    for p in to_recover {
        let rec = lake.recover_partition(p, &source).await?;
        if !rec.removed.is_empty() {
            tracing::info!(partition = p, removed = ?rec.removed, "removed uncommitted leftovers");
        }
        if let Some(slot) = starts.get_mut(p as usize) {
            *slot = rec.next_offset.unwrap_or(0);
        }
    }
    tracing::info!(lake = lake.location(), ?starts, "lake recovered");

    let (stats, supervisor, mut stops) = start_control(&sink, opts);
    let arbiters = Arbiters::new(sim.workers);

    let bus = {
        let log = Log::new(&starts, sink.bus_capacity);
        let stats = stats.clone();
        Bus::start_in_arbiter(&arbiters.publish.handle(), move |_| Bus::new(log, stats))
    };
    let committer = Committer::new(
        bus_target(bus.clone().recipient()),
        starts.clone(),
        stats.clone(),
    )
    .start();
    let accumulator = start_sink_stages(
        &sink,
        &lake,
        &source,
        &arbiters,
        &committer,
        &supervisor,
        &stats,
        None,
    );
    let consumer = {
        let (b, a, pos) = (bus.clone(), accumulator.clone(), starts.clone());
        BusConsumer::start_in_arbiter(&arbiters.sink.handle(), move |_| {
            BusConsumer::new(b, a, pos)
        })
    };
    let b = bus.clone();
    let (publisher, conductor) =
        start_front(&sim, &arbiters, &supervisor, &stats, opts, move || {
            Backend::Bus(b)
        })?;

    let reason = stops.recv().await.unwrap_or(StopReason::Duration);
    tracing::debug!(reason = %describe(&reason), "draining");
    let drained = async {
        let published = stop_front(&conductor, &publisher).await?;
        let targets = mailbox(bus.send(GetHighWatermarks).await, "reading watermarks")?;
        mailbox(
            consumer
                .send(DrainTo {
                    targets: targets.clone(),
                })
                .await,
            "draining consumer",
        )?
        .await
        .map_err(|_| "the consumer stopped before it caught up".to_string())?;
        let sink_counters = mailbox(accumulator.send(FlushAll).await, "flushing")?;
        let committed = mailbox(committer.send(GetCommitted).await, "reading commits")?;
        if committed.positions != targets {
            return Err(format!(
                "drain incomplete: committed {:?}, topic ends at {targets:?}",
                committed.positions
            ));
        }
        Ok::<_, String>((published, sink_counters, committed))
    };
    let outcome = match &reason {
        StopReason::Fatal(e) => Err(e.clone()),
        _ => unless_fatal(&mut stops, drained).await.and_then(|r| r),
    };
    let result = RunEnd {
        reason: &reason,
        seed: sim.seed,
        started,
        lake: &lake,
        supervisor: &supervisor,
        stats: &stats,
        conductor: &conductor,
        publisher: &publisher,
        committer: &committer,
    }
    .conclude(outcome)
    .await;
    arbiters.stop();
    result
}

/// `encore simulate`: listeners → publisher → Kafka (with settings) or JSON lines on stdout.
pub async fn simulate(
    mut sim: SimConfig,
    kafka: Option<KafkaSettings>,
    opts: RunOptions,
) -> Result<Summary, RunError> {
    let started = Instant::now();
    let producer = match &kafka {
        Some(k) => {
            sim.partitions =
                prepare_topic(&sim.topic, sim.partitions, k, &[TopicAccess::Write]).await?;
            Some(Arc::new(
                KafkaProducer::new(&producer_config(&sim, k), &sim.topic, &k.compression)
                    .map_err(|e| RunError::Usage(e.to_string()))?,
            ))
        }
        None => None,
    };
    let stats = opts
        .progress
        .then(|| Stats::new(std::io::stderr().is_terminal(), false).start());
    let (stop_tx, mut stops) = mpsc::unbounded_channel();
    let supervisor = Supervisor::new(0, Duration::from_secs(1), stop_tx, stats.clone()).start();
    let arbiters = Arbiters::new(sim.workers);
    let (publisher, conductor) = start_front(
        &sim,
        &arbiters,
        &supervisor,
        &stats,
        opts,
        move || match producer {
            Some(p) => Backend::Kafka(p),
            None => Backend::Stdout(std::io::BufWriter::with_capacity(
                1 << 16,
                std::io::stdout(),
            )),
        },
    )?;
    let reason = stops.recv().await.unwrap_or(StopReason::Duration);
    let _ = conductor.send(StopListening).await;
    let published = match publisher.send(DrainPublisher).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) if reason != StopReason::OutputClosed => {
            let reason = match &reason {
                StopReason::Fatal(f) => f.clone(),
                _ => e.to_string(),
            };
            arbiters.stop();
            return Err(RunError::Fatal {
                reason,
                summary: Box::new(Summary {
                    reason: StopReason::Fatal(e.to_string()),
                    seed: sim.seed,
                    published: PublisherCounters::default(),
                    consumed: 0,
                    rows: 0,
                    rejected: 0,
                    files: 0,
                    bytes: 0,
                    restarts: 0,
                    elapsed: started.elapsed(),
                    lake: None,
                }),
            });
        }
        _ => PublisherCounters::default(),
    };
    if let Some(s) = &stats {
        let _ = s.send(Finish).await;
    }
    arbiters.stop();
    Ok(Summary {
        reason,
        seed: sim.seed,
        published,
        consumed: 0,
        rows: 0,
        rejected: 0,
        files: 0,
        bytes: 0,
        restarts: 0,
        elapsed: started.elapsed(),
        lake: None,
    })
}

/// Per-type shares of a summary, for tests and reports.
pub fn shares(c: &PublisherCounters) -> [f64; EVENT_TYPES] {
    let n = c.published.max(1) as f64;
    c.by_type.map(|x| x as f64 / n)
}

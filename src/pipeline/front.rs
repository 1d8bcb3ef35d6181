//! The producing half of a run: listeners spread over the workers, their conductor, and the
//! publisher with its back end (Kafka, the in-process bus, or stdout).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::actors::conductor::{Conductor, MaxRate};
use crate::actors::listener::{Clock, ListenerActor};
use crate::actors::outbox::Outbox;
use crate::actors::publisher::{Backend, Publisher};
use crate::config::{ClockMode, SimConfig};
use crate::messages::{DrainPublisher, PublisherCounters, StartListeners, StopListening};
use crate::sim::{Catalog, Injector, Listener, ModelParams, listener_seed};

use super::control::Control;
use super::drain::DrainError;
use super::summary::RunError;

/// The started producing half.
pub(super) struct Front {
    pub publisher: Addr<Publisher>,
    pub conductor: Addr<Conductor>,
}

impl Front {
    /// Starts the publisher on its arbiter with the given back end, the listeners and their
    /// conductor, arms `--duration` and sets the listeners going.
    pub fn start(
        sim: &SimConfig,
        control: &Control,
        backend: impl FnOnce() -> Backend + Send + 'static,
    ) -> Result<Front, RunError> {
        let (s, st) = (control.supervisor.clone(), control.stats.clone());
        let (parts, limit) = (sim.partitions, sim.events);
        let publisher =
            Publisher::start_in_arbiter(&control.arbiters.publish.handle(), move |_| {
                Publisher::new(backend(), parts, limit, s, st)
            });
        let conductor = start_listeners(sim, control, &publisher)?;
        control.arm_duration(sim.duration);
        conductor.do_send(StartListeners);
        Ok(Front {
            publisher,
            conductor,
        })
    }

    /// Drain steps 1-2: stop the listeners, then drain the publisher (every Kafka record
    /// acknowledged, or every record on the bus).
    pub async fn stop(&self) -> Result<PublisherCounters, DrainError> {
        self.conductor
            .send(StopListening)
            .await
            .map_err(DrainError::mailbox("stopping listeners"))?;
        tracing::debug!("listeners stopped; draining the publisher");
        let published = self
            .publisher
            .send(DrainPublisher)
            .await
            .map_err(DrainError::mailbox("draining publisher"))??;
        tracing::debug!(
            published = published.published,
            acked = published.acked,
            "publisher drained"
        );
        Ok(published)
    }

    /// Stops the listeners and reads the publisher's counts for a fatal stop's report, without
    /// waiting on a publisher that may be stuck (behind a full bus, or a broker that is away).
    pub async fn counts_quickly(&self) -> PublisherCounters {
        let quick = Duration::from_secs(2);
        let _ = tokio::time::timeout(quick, self.conductor.send(StopListening)).await;
        match tokio::time::timeout(quick, self.publisher.send(DrainPublisher)).await {
            Ok(Ok(Ok(c))) => c,
            _ => PublisherCounters::default(),
        }
    }
}

/// Starts the listeners (spread over the workers) and their conductor.
fn start_listeners(
    sim: &SimConfig,
    control: &Control,
    publisher: &Addr<Publisher>,
) -> Result<Addr<Conductor>, RunError> {
    let catalog = Catalog::new(sim.tracks, sim.seed).map_err(|e| RunError::Usage(e.to_string()))?;
    let catalog = Arc::new(catalog);
    let start_ms = match sim.start_now {
        true => chrono::Utc::now().timestamp_millis(),
        false => sim.start_ms,
    };
    let clock = match sim.clock {
        ClockMode::Realtime { speed } => Clock::Realtime {
            started: Instant::now(),
            start_ms,
            speed,
        },
        ClockMode::MaxRate => Clock::MaxRate,
    };
    let params = ModelParams::new(&sim.behaviour, catalog);
    let users = u64::from(sim.users.max(1));
    let workers = &control.arbiters.workers;
    let outboxes: Vec<_> = workers
        .iter()
        .map(|_| Outbox::new(publisher.clone()))
        .collect();
    let listeners = (0..users)
        .map(|i| {
            let (seed, params, inject) = (sim.seed, params.clone(), sim.inject);
            let (quota, format) = (quota(sim, users, i), sim.format);
            let w = i as usize % workers.len();
            let outbox = outboxes[w].clone();
            // Built on the worker: the workers set up their listeners in parallel (a run of
            // 1 000 events at 10 000 listeners: 114-123 ms before, 88-97 ms after).
            ListenerActor::start_in_arbiter(&workers[w].handle(), move |_| {
                let model = Listener::with_params(i, seed, start_ms, params);
                let injector = inject
                    .is_active()
                    .then(|| Injector::new(inject, listener_seed(seed, i)));
                ListenerActor::new(model, outbox, clock, quota, injector).with_format(format)
            })
        })
        .collect();
    let max_rate = (sim.clock == ClockMode::MaxRate).then(|| first_tick(sim, users));
    Ok(Conductor::new(
        listeners,
        max_rate,
        publisher.clone(),
        control.supervisor.clone(),
    )
    .start())
}

/// Max-rate runs split --events into per-listener quotas, so that every listener's sequence
/// is the same in every run with the same seed.
fn quota(sim: &SimConfig, users: u64, i: u64) -> Option<u64> {
    match (sim.clock, sim.events) {
        (ClockMode::MaxRate, Some(n)) => Some(n / users + u64::from(i < n % users)),
        _ => None,
    }
}

/// The first max-rate tick, sized from the expected event rate; later ticks adapt to what
/// they carry.
fn first_tick(sim: &SimConfig, users: u64) -> MaxRate {
    let per_ms = users as f64 * 0.6 / sim.behaviour.mean_event_gap_ms.max(1.0);
    // Many events per listener and tick: the cost of a tick is a message per listener. The
    // conductor asks a window of listeners at a time, so memory does not grow with the tick.
    let target_events = (users * 32).clamp(20_000, 400_000);
    MaxRate {
        now_ms: sim.start_ms,
        tick_ms: ((target_events as f64 / per_ms.max(1e-9)) as i64).max(10),
        target_events,
    }
}

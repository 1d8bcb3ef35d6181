//! One listener's behaviour: sessions, a player state machine, and an event mix that converges
//! to the configured weights while only ever emitting events that make sense in the current
//! state.
//!
//! `params` holds what all listeners of a run share, `player` what each event does to the
//! player and which events its state permits, and `mix` which of those comes next. This module
//! is the listener itself: its sessions and its clock.

mod mix;
mod params;
mod player;

pub use params::{BehaviourConfig, ModelParams};

use std::collections::VecDeque;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_distr::Distribution;
use rand_pcg::Pcg64Mcg;
use uuid::Uuid;

use super::catalog::Catalog;
use super::profile::{draw_profile, listener_seed};
use crate::event::{EVENT_TYPES, EventType, Profile, SimEvent};
use player::Player;

#[derive(Clone, Copy, Debug)]
struct Session {
    id: Uuid,
    ends_ms: i64,
}

/// A seeded listener: its profile and the state machine that yields its events.
#[derive(Debug)]
pub struct Listener {
    profile: Profile,
    rng: Pcg64Mcg,
    params: Arc<ModelParams>,
    clock_ms: i64,
    session: Option<Session>,
    player: Player,
    history: VecDeque<i64>,
    liked: VecDeque<i64>,
    owed: [i32; EVENT_TYPES],
    next: Option<SimEvent>,
}

impl Listener {
    /// Listener `index` of a run seeded with `run_seed`, whose simulated clock starts at
    /// `start_ms`. Some listeners start mid-session, the others offline, in the proportion of
    /// the stationary online share, so a run does not begin with a silent warm-up.
    pub fn new(
        index: u64,
        run_seed: u64,
        start_ms: i64,
        cfg: &BehaviourConfig,
        catalog: Arc<Catalog>,
    ) -> Listener {
        Listener::with_params(index, run_seed, start_ms, ModelParams::new(cfg, catalog))
    }

    /// As [`Listener::new`], sharing `params` with the run's other listeners.
    pub fn with_params(
        index: u64,
        run_seed: u64,
        start_ms: i64,
        params: Arc<ModelParams>,
    ) -> Listener {
        let mut rng = Pcg64Mcg::seed_from_u64(listener_seed(run_seed, index));
        let profile = draw_profile(&mut rng);
        let online_share = params.online_share;
        let mut l = Listener {
            profile,
            rng,
            params,
            clock_ms: start_ms.max(0),
            session: None,
            player: Player::Idle,
            // Grown on demand, up to HISTORY_LEN / LIKED_LEN.
            history: VecDeque::new(),
            liked: VecDeque::new(),
            owed: [0; EVENT_TYPES],
            next: None,
        };
        let phase: f64 = l.rng.random();
        if l.rng.random::<f64>() < online_share {
            let remaining = (l.params.session_len.sample(&mut l.rng) * phase) as i64 + 1;
            l.open_session(remaining);
        } else {
            l.clock_ms += (l.params.offline.sample(&mut l.rng) * phase) as i64;
        }
        l
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The next event, without consuming it (its time tells a clock when to emit it).
    pub fn peek(&mut self) -> &SimEvent {
        if self.next.is_none() {
            self.next = Some(self.step());
        }
        self.next.as_ref().expect("filled above")
    }

    /// Consumes and returns the next event.
    pub fn next_event(&mut self) -> SimEvent {
        match self.next.take() {
            Some(ev) => ev,
            None => self.step(),
        }
    }

    fn open_session(&mut self, length_ms: i64) {
        let id = self.uuid_at(self.clock_ms);
        self.session = Some(Session {
            id,
            ends_ms: self.clock_ms + length_ms.max(1),
        });
        self.player = Player::Idle;
    }

    fn uuid_at(&mut self, ms: i64) -> Uuid {
        let random: [u8; 10] = self.rng.random();
        uuid::Builder::from_unix_timestamp_millis(ms.max(0) as u64, &random).into_uuid()
    }

    fn step(&mut self) -> SimEvent {
        loop {
            let Some(session) = self.session else {
                self.clock_ms += self.params.offline.sample(&mut self.rng) as i64;
                let len = self.params.session_len.sample(&mut self.rng) as i64;
                self.open_session(len);
                continue;
            };
            let t = self.clock_ms + (self.params.gap.sample(&mut self.rng) as i64).max(1);
            if let Player::Playing { track, started_ms } = self.player {
                let end = started_ms + self.params.catalog.duration_ms(track);
                if end <= t && end < session.ends_ms {
                    // The track finished by itself: the player moves on to the next one.
                    self.clock_ms = end.max(self.clock_ms);
                    self.owed[EventType::TrackPlayback.index()] -= 1;
                    return self.apply(EventType::TrackPlayback, session.id);
                }
            }
            if t >= session.ends_ms {
                self.clock_ms = session.ends_ms;
                self.session = None;
                self.player = Player::Idle;
                continue;
            }
            self.clock_ms = t;
            let ty = self.choose();
            return self.apply(ty, session.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shared with the tests of the submodules.
    pub(super) fn catalog() -> Arc<Catalog> {
        Arc::new(Catalog::new(10_000, 1).unwrap())
    }

    pub(super) const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    #[test]
    fn same_seed_same_sequence_other_seed_differs() {
        let cfg = BehaviourConfig::default();
        let cat = catalog();
        let run = |seed: u64, idx: u64| {
            let mut l = Listener::new(idx, seed, START, &cfg, cat.clone());
            let p = l.profile().clone();
            (p, (0..1000).map(|_| l.next_event()).collect::<Vec<_>>())
        };
        assert_eq!(run(7, 3), run(7, 3));
        assert_ne!(run(7, 3).1, run(8, 3).1);
        assert_ne!(run(7, 3).0, run(7, 4).0);
    }

    #[test]
    fn peek_does_not_change_the_sequence() {
        let cfg = BehaviourConfig::default();
        let cat = catalog();
        let mut a = Listener::new(1, 1, START, &cfg, cat.clone());
        let mut b = Listener::new(1, 1, START, &cfg, cat);
        for _ in 0..100 {
            let peeked = *a.peek();
            assert_eq!(peeked, a.next_event());
            assert_eq!(peeked, b.next_event());
        }
    }

    #[test]
    fn event_ids_are_unique_and_time_ordered_per_listener() {
        let cfg = BehaviourConfig::default();
        let mut l = Listener::new(0, 1, START, &cfg, catalog());
        let mut seen = std::collections::HashSet::new();
        let mut last = 0u64;
        for _ in 0..10_000 {
            let ev = l.next_event();
            assert!(seen.insert(ev.event_id));
            assert_eq!(ev.event_id.get_version_num(), 7);
            let (secs, nanos) = ev.event_id.get_timestamp().unwrap().to_unix();
            let ms = secs * 1000 + u64::from(nanos) / 1_000_000;
            assert_eq!(ms as i64, ev.ts_ms, "v7 timestamp is the event time");
            assert!(ms >= last);
            last = ms;
        }
    }
}

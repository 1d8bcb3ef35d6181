//! One listener's behaviour: sessions, a player state machine, and an event mix that converges
//! to the configured weights while only ever emitting events that make sense in the current
//! state.
//!
//! Mix control: each step draws a type from the weights. A draw that the state forbids (a
//! resume while playing) is *owed*, and the event that makes it possible (a pause) is emitted
//! instead and marked as *prepaid* (negative debt) so that a later draw of it is skipped. Owed
//! types are emitted as soon as the state permits them, so debts stay near zero even in short
//! runs. With `D` draws, `E` emissions and debt `o` per type,
//! `E + o = D` holds at every step; debts stay small, so `E / n` converges to the weights.

use std::collections::VecDeque;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};
use rand_pcg::Pcg64Mcg;
use uuid::Uuid;

use super::catalog::Catalog;
use super::profile::{draw_profile, listener_seed};
use crate::event::{EVENT_TYPES, EventType, Profile, SimEvent, Weights};

/// Tracks remembered for skip-previous.
const HISTORY_LEN: usize = 16;
/// Liked tracks a listener remembers (bounded so that long runs do not grow memory).
const LIKED_LEN: usize = 32;
/// Draws per step before falling back to a draw restricted to permitted types.
const MAX_DRAWS: usize = 64;

/// Tunables of the behaviour model, shared by all listeners.
#[derive(Clone, Debug)]
pub struct BehaviourConfig {
    pub weights: Weights,
    /// Mean simulated time between two interactions inside a session.
    pub mean_event_gap_ms: f64,
    /// Median online session length (lognormal, sigma 0.8).
    pub session_median_ms: f64,
    /// Mean offline gap between sessions (exponential).
    pub offline_mean_ms: f64,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        BehaviourConfig {
            weights: Weights::default(),
            mean_event_gap_ms: 15_000.0,
            session_median_ms: 25.0 * 60_000.0,
            offline_mean_ms: 15.0 * 60_000.0,
        }
    }
}

const SESSION_SIGMA: f64 = 0.8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Player {
    /// Online, nothing loaded yet.
    Idle,
    /// `started_ms` is the simulated instant at which position 0 was (or would have been) played.
    Playing {
        track: i64,
        started_ms: i64,
    },
    Paused {
        track: i64,
        position_ms: i64,
    },
}

#[derive(Clone, Copy, Debug)]
struct Session {
    id: Uuid,
    ends_ms: i64,
}

/// Distributions and weights, identical for all listeners of a run and shared by them
/// (per-listener memory matters at 100k listeners).
#[derive(Debug)]
pub struct ModelParams {
    catalog: Arc<Catalog>,
    cumulative: [f64; EVENT_TYPES],
    weights: [f64; EVENT_TYPES],
    gap: Exp<f64>,
    session_len: LogNormal<f64>,
    offline: Exp<f64>,
    online_share: f64,
}

impl ModelParams {
    pub fn new(cfg: &BehaviourConfig, catalog: Arc<Catalog>) -> Arc<ModelParams> {
        let weights = *cfg.weights.as_array();
        let mut cumulative = [0.0; EVENT_TYPES];
        let mut acc = 0.0;
        for (c, w) in cumulative.iter_mut().zip(weights) {
            acc += w;
            *c = acc;
        }
        let mean_session = cfg.session_median_ms * (SESSION_SIGMA * SESSION_SIGMA / 2.0).exp();
        Arc::new(ModelParams {
            catalog,
            cumulative,
            weights,
            gap: Exp::new(1.0 / cfg.mean_event_gap_ms.max(1.0)).expect("positive rate"),
            session_len: LogNormal::new(cfg.session_median_ms.max(1.0).ln(), SESSION_SIGMA)
                .expect("finite parameters"),
            offline: Exp::new(1.0 / cfg.offline_mean_ms.max(1.0)).expect("positive rate"),
            online_share: mean_session / (mean_session + cfg.offline_mean_ms),
        })
    }
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

fn bit(t: EventType) -> u8 {
    1 << t.index()
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

    fn current(&self) -> Option<(i64, i64)> {
        match self.player {
            Player::Idle => None,
            Player::Playing { track, started_ms } => Some((track, self.clock_ms - started_ms)),
            Player::Paused { track, position_ms } => Some((track, position_ms)),
        }
    }

    fn allowed(&self) -> u8 {
        use EventType::*;
        let (track, paused) = match self.player {
            Player::Idle => return bit(TrackPlayback),
            Player::Playing { track, .. } => (track, false),
            Player::Paused { track, .. } => (track, true),
        };
        let mut mask = bit(TrackPlayback) | bit(SkippingTrackNext) | bit(AddingTrackToPlaylist);
        mask |= if paused {
            bit(ResumeTrack)
        } else {
            bit(PauseTrack)
        };
        if !self.history.is_empty() {
            mask |= bit(SkippingTrackPrev);
        }
        if !self.liked.contains(&track) {
            mask |= bit(TrackLike);
        }
        if !self.liked.is_empty() {
            mask |= bit(TrackUnlike);
        }
        mask
    }

    fn draw(&mut self) -> usize {
        let x: f64 = self.rng.random();
        self.params
            .cumulative
            .iter()
            .position(|c| x < *c)
            .unwrap_or(EVENT_TYPES - 1)
    }

    fn draw_among(&mut self, mask: u8) -> usize {
        let total: f64 = (0..EVENT_TYPES)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| self.params.weights[i])
            .sum();
        if total <= 0.0 {
            return mask.trailing_zeros() as usize;
        }
        let mut x = self.rng.random::<f64>() * total;
        let mut last = 0;
        for i in (0..EVENT_TYPES).filter(|i| mask & (1 << i) != 0) {
            last = i;
            let w = self.params.weights[i];
            if x < w {
                return i;
            }
            x -= w;
        }
        last
    }

    fn choose(&mut self) -> EventType {
        let mask = self.allowed();
        let most_owed = (0..EVENT_TYPES)
            .filter(|i| mask & (1 << i) != 0 && self.owed[*i] > 0)
            .max_by_key(|i| (self.owed[*i], std::cmp::Reverse(*i)));
        if let Some(i) = most_owed {
            self.owed[i] -= 1;
            return EventType::ALL[i];
        }
        for _ in 0..MAX_DRAWS {
            let t = self.draw();
            if self.owed[t] < 0 {
                self.owed[t] += 1;
                continue;
            }
            if mask & (1 << t) != 0 {
                return EventType::ALL[t];
            }
            self.owed[t] += 1;
            if let Some(e) = self.enabler(EventType::ALL[t], mask) {
                self.owed[e.index()] -= 1;
                return e;
            }
            break;
        }
        let s = self.draw_among(mask);
        self.owed[s] -= 1;
        EventType::ALL[s]
    }

    /// A permitted event after which `t` becomes permitted, if there is one.
    fn enabler(&self, t: EventType, mask: u8) -> Option<EventType> {
        use EventType::*;
        let candidates: &[EventType] = match t {
            ResumeTrack => &[PauseTrack],
            PauseTrack => &[ResumeTrack, TrackPlayback],
            TrackLike => &[SkippingTrackNext, TrackPlayback],
            TrackUnlike => &[TrackLike],
            SkippingTrackPrev => &[SkippingTrackNext, TrackPlayback],
            SkippingTrackNext | AddingTrackToPlaylist => &[TrackPlayback],
            TrackPlayback => &[],
        };
        candidates.iter().copied().find(|c| mask & bit(*c) != 0)
    }

    fn start_track(&mut self, track: i64) {
        self.player = Player::Playing {
            track,
            started_ms: self.clock_ms,
        };
    }

    fn apply(&mut self, ty: EventType, session_id: Uuid) -> SimEvent {
        use EventType::*;
        let current = self.current();
        let mut ev = SimEvent {
            event_id: self.uuid_at(self.clock_ms),
            event_type: ty,
            session_id,
            ts_ms: self.clock_ms,
            track_id: 0,
            previous_track_id: None,
            playlist_id: None,
            liked: false,
            position_ms: current.map(|c| c.1),
        };
        // `allowed()` guarantees a current track for every type but TrackPlayback.
        let (track, position) = current.unwrap_or((0, 0));
        match ty {
            TrackPlayback | SkippingTrackNext => {
                let next = self.params.catalog.pick(&mut self.rng);
                if let Some((cur, _)) = current {
                    if self.history.len() == HISTORY_LEN {
                        self.history.pop_front();
                    }
                    self.history.push_back(cur);
                }
                self.start_track(next);
                ev.track_id = next;
                ev.previous_track_id = current.map(|c| c.0);
                ev.position_ms = Some(0);
            }
            SkippingTrackPrev => {
                let prev = self.history.pop_back().expect("allowed() checked history");
                self.start_track(prev);
                ev.track_id = prev;
                ev.previous_track_id = Some(track);
                ev.position_ms = Some(0);
            }
            PauseTrack => {
                self.player = Player::Paused {
                    track,
                    position_ms: position,
                };
                ev.track_id = track;
            }
            ResumeTrack => {
                self.player = Player::Playing {
                    track,
                    started_ms: self.clock_ms - position,
                };
                ev.track_id = track;
            }
            AddingTrackToPlaylist => {
                let i = self.rng.random_range(0..self.profile.playlists.len());
                ev.playlist_id = Some(self.profile.playlists[i]);
                ev.track_id = track;
            }
            TrackLike => {
                if self.liked.len() == LIKED_LEN {
                    self.liked.pop_front();
                }
                self.liked.push_back(track);
                ev.track_id = track;
            }
            TrackUnlike => {
                let i = match self.liked.iter().position(|t| *t == track) {
                    Some(i) => i,
                    None => self.rng.random_range(0..self.liked.len()),
                };
                let target = self.liked.remove(i).expect("index in range");
                ev.track_id = target;
                if target != track {
                    ev.position_ms = None;
                }
                ev.liked = false;
                return ev;
            }
        }
        ev.liked = self.liked.contains(&ev.track_id);
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Arc<Catalog> {
        Arc::new(Catalog::new(10_000, 1).unwrap())
    }

    const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    /// Replays the player from the events alone and checks every invariant of the contract.
    #[derive(Default)]
    struct Checker {
        current: Option<i64>,
        paused: bool,
        liked: std::collections::HashSet<i64>,
        history: usize,
        last_ts: i64,
        session: Option<Uuid>,
    }

    impl Checker {
        fn check(&mut self, ev: &SimEvent, l: &Listener) {
            use EventType::*;
            assert!(ev.ts_ms >= self.last_ts, "time goes forward");
            self.last_ts = ev.ts_ms;
            if self.session != Some(ev.session_id) {
                // A new session starts with nothing loaded: its first event loads a track.
                assert_eq!(
                    ev.event_type, TrackPlayback,
                    "session starts with a playback"
                );
                self.session = Some(ev.session_id);
                self.current = None;
                self.paused = false;
            }
            match ev.event_type {
                TrackPlayback | SkippingTrackNext => {
                    if ev.event_type == SkippingTrackNext {
                        assert!(self.current.is_some(), "skip needs a track");
                    }
                    assert_eq!(ev.previous_track_id, self.current);
                    if self.current.is_some() {
                        self.history += 1;
                    }
                    self.current = Some(ev.track_id);
                    self.paused = false;
                }
                SkippingTrackPrev => {
                    assert!(self.history > 0, "skip-previous needs history");
                    self.history -= 1;
                    assert_eq!(ev.previous_track_id, self.current);
                    self.current = Some(ev.track_id);
                    self.paused = false;
                }
                PauseTrack => {
                    assert!(
                        self.current.is_some() && !self.paused,
                        "pause only while playing"
                    );
                    self.paused = true;
                }
                ResumeTrack => {
                    assert!(self.paused, "resume only while paused");
                    self.paused = false;
                }
                AddingTrackToPlaylist => {
                    assert_eq!(Some(ev.track_id), self.current, "adds the current track");
                    let p = ev.playlist_id.expect("playlist id present");
                    assert!(l.profile().playlists.contains(&p));
                }
                TrackLike => {
                    assert_eq!(Some(ev.track_id), self.current, "likes the current track");
                    assert!(
                        self.liked.insert(ev.track_id),
                        "like only a track not yet liked"
                    );
                    assert!(ev.liked);
                }
                TrackUnlike => {
                    assert!(self.liked.remove(&ev.track_id), "unlike only a liked track");
                    assert!(!ev.liked);
                }
            }
            if ev.event_type != AddingTrackToPlaylist {
                assert!(ev.playlist_id.is_none());
            }
            if let Some(p) = ev.position_ms {
                assert!(p >= 0);
                assert!(
                    p <= l.params.catalog.duration_ms(ev.track_id),
                    "position inside the track"
                );
            }
        }
    }

    #[test]
    fn every_event_makes_sense_in_its_state() {
        let cfg = BehaviourConfig::default();
        let cat = catalog();
        for i in 0..50 {
            let mut l = Listener::new(i, 99, START, &cfg, cat.clone());
            let mut c = Checker::default();
            for _ in 0..5_000 {
                let ev = l.next_event();
                // The model forgets likes beyond LIKED_LEN; mirror that in the checker.
                if ev.event_type == EventType::TrackLike && c.liked.len() >= LIKED_LEN {
                    c.liked = l
                        .liked
                        .iter()
                        .copied()
                        .filter(|t| *t != ev.track_id)
                        .collect();
                }
                c.check(&ev, &l);
                c.history = c.history.min(l.history.len());
            }
        }
    }

    #[test]
    fn mix_matches_weights_over_a_million_events() {
        for weights in [
            Weights::default(),
            "1,1,1,1,1,1,1,1".parse::<Weights>().unwrap(),
            "0.5,0.2,0.1,0.1,0.02,0.03,0.03,0.02"
                .parse::<Weights>()
                .unwrap(),
        ] {
            let cfg = BehaviourConfig {
                weights,
                ..BehaviourConfig::default()
            };
            let cat = catalog();
            let mut counts = [0u64; EVENT_TYPES];
            let per_listener = 10_000;
            let listeners = 100;
            for i in 0..listeners {
                let mut l = Listener::new(i, 5, START, &cfg, cat.clone());
                for _ in 0..per_listener {
                    counts[l.next_event().event_type.index()] += 1;
                }
            }
            let n = (per_listener * listeners) as f64;
            for t in EventType::ALL {
                let share = counts[t.index()] as f64 / n;
                let want = weights.get(t);
                assert!(
                    (share - want).abs() <= 0.02,
                    "{t}: share {share:.4} vs weight {want:.4} ({weights:?})"
                );
            }
        }
    }

    #[test]
    fn mix_matches_weights_in_short_runs_too() {
        // 2000 listeners × 100 events: the acceptance run's shape.
        let cfg = BehaviourConfig::default();
        let cat = catalog();
        let mut counts = [0u64; EVENT_TYPES];
        for i in 0..2000 {
            let mut l = Listener::new(i, 7, START, &cfg, cat.clone());
            for _ in 0..100 {
                counts[l.next_event().event_type.index()] += 1;
            }
        }
        for t in EventType::ALL {
            let share = counts[t.index()] as f64 / 200_000.0;
            let want = cfg.weights.get(t);
            assert!((share - want).abs() <= 0.02, "{t}: {share:.4} vs {want:.4}");
        }
    }

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

//! The player: what each event does to it, and which events its state permits.

use rand::Rng;
use uuid::Uuid;

use super::Listener;
use super::mix::bit;
use crate::event::{EventType, SimEvent};

/// Tracks remembered for skip-previous.
const HISTORY_LEN: usize = 16;
/// Liked tracks a listener remembers (bounded so that long runs do not grow memory).
const LIKED_LEN: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Player {
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

impl Listener {
    fn current(&self) -> Option<(i64, i64)> {
        match self.player {
            Player::Idle => None,
            Player::Playing { track, started_ms } => Some((track, self.clock_ms - started_ms)),
            Player::Paused { track, position_ms } => Some((track, position_ms)),
        }
    }

    pub(super) fn allowed(&self) -> u8 {
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

    fn start_track(&mut self, track: i64) {
        self.player = Player::Playing {
            track,
            started_ms: self.clock_ms,
        };
    }

    pub(super) fn apply(&mut self, ty: EventType, session_id: Uuid) -> SimEvent {
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
    use crate::sim::model::BehaviourConfig;
    use crate::sim::model::tests::{START, catalog};

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
}

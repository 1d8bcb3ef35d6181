//! Which event comes next: an event mix that converges to the configured weights while only
//! ever emitting events that the player's state permits.
//!
//! Mix control: each step draws a type from the weights. A draw that the state forbids (a
//! resume while playing) is *owed*, and the event that makes it possible (a pause) is emitted
//! instead and marked as *prepaid* (negative debt) so that a later draw of it is skipped. Owed
//! types are emitted as soon as the state permits them, so debts stay near zero even in short
//! runs. With `D` draws, `E` emissions and debt `o` per type,
//! `E + o = D` holds at every step; debts stay small, so `E / n` converges to the weights.

use rand::Rng;

use super::Listener;
use crate::event::{EVENT_TYPES, EventType};

/// Draws per step before falling back to a draw restricted to permitted types.
const MAX_DRAWS: usize = 64;

pub(super) fn bit(t: EventType) -> u8 {
    1 << t.index()
}

impl Listener {
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

    pub(super) fn choose(&mut self) -> EventType {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Weights;
    use crate::sim::model::BehaviourConfig;
    use crate::sim::model::tests::{START, catalog};

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
}

//! The tunables of the behaviour model, and the distributions all listeners of a run share.

use std::sync::Arc;

use rand_distr::{Exp, LogNormal};

use crate::event::{EVENT_TYPES, Weights};
use crate::sim::catalog::Catalog;

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

/// Distributions and weights, identical for all listeners of a run and shared by them
/// (per-listener memory matters at 100k listeners).
#[derive(Debug)]
pub struct ModelParams {
    pub(super) catalog: Arc<Catalog>,
    pub(super) cumulative: [f64; EVENT_TYPES],
    pub(super) weights: [f64; EVENT_TYPES],
    pub(super) gap: Exp<f64>,
    pub(super) session_len: LogNormal<f64>,
    pub(super) offline: Exp<f64>,
    pub(super) online_share: f64,
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

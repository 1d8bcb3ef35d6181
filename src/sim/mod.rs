//! Listener simulation: the pure behaviour model that the listener actors drive.
//!
//! Nothing here knows about actors, clocks or I/O: a [`Listener`] is a seeded state machine that
//! yields the next event on demand, so its sequence depends only on the seed and its index.

mod catalog;
pub mod inject;
mod model;
pub mod names;
mod profile;

pub use catalog::{Catalog, CatalogError};
pub use inject::{InjectConfig, Injector};
pub use model::{BehaviourConfig, Listener, ModelParams};
pub use profile::{draw_profile, listener_seed};

//! The in-process bus: a Kafka topic held in memory ([`Log`]), driven by the `Bus` actor
//! (`actors/bus.rs`) when `encore run` has no broker.

mod log;

pub use log::{BusRecord, Log};

//! encore: a real-time event pipeline for a music-streaming service, built from actix actors.
//!
//! Pure logic (tested and benchmarked alone): [`sim`] (listener behaviour), [`event`] (the
//! contract), [`sink`] (flush policy, buffers), [`lake`] (JSON → Arrow, naming,
//! Parquet, commit protocol), [`bus`] (the in-process log), [`partition`]. Actors in
//! [`actors`] drive it; [`messages`] lists everything they exchange; [`pipeline`] wires them.

pub mod actors;
pub mod bus;
pub mod cli;
pub mod clickhouse;
pub mod config;
pub mod error;
pub mod event;
pub mod failpoint;
pub mod kafka;
pub mod lake;
pub mod messages;
pub mod metrics;
pub mod partition;
pub mod pipeline;
pub mod sim;
pub mod simple;
pub mod sink;
pub mod status;
pub mod tail;
pub mod verify;

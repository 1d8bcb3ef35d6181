//! encore: a real-time event pipeline for a music-streaming service, built from actix actors.
//!
//! Pure logic (tested and benchmarked alone): [`sim`] (listener behaviour), [`event`] (the
//! contract), [`schema`] (JSON → Arrow), [`sink`] (flush policy, buffers), [`lake`] (naming,
//! Parquet, commit protocol), [`bus`] (the in-process log), [`partition`]. Actors in
//! [`actors`] drive it; [`messages`] lists everything they exchange; [`pipeline`] wires them.

pub mod actors;
pub mod bus;
pub mod cli;
pub mod clickhouse;
pub mod event;
pub mod kafka;
pub mod lake;
pub mod messages;
pub mod names;
pub mod partition;
pub mod pipeline;
pub mod schema;
pub mod sim;
pub mod sink;
pub mod verify;

//! The actors: thin drivers of the pure logic in `sim`, `bus`, `sink` and `lake`.
//!
//! | actor | file | receives | sends |
//! |---|---|---|---|
//! | ListenerActor (× users) | `listener.rs` | Advance (replies with its events), StopListening | (realtime: posts to its worker's outbox) |
//! | (outbox, one per worker thread, realtime) | `outbox.rs` | — | SimEvents (a wake-up's events of the worker's listeners) |
//! | Conductor | `conductor.rs` | StartListeners, StopListening | Advance, SimEvents (max-rate), StopRun |
//! | Publisher | `publisher.rs` | SimEvents, DrainPublisher | Append, StopRun, Progress |
//! | Bus | `bus.rs` | Append, Fetch, CommitOffset, GetHighWatermarks | Progress |
//! | BusConsumer | `bus_consumer.rs` | DrainTo | Fetch, Records |
//! | KafkaSource | `kafka_source/` | DrainTo, StopConsuming, CloseConsumer, Resync | Records, ResumeAt, Revoke, StopRun |
//! | Accumulator | `accumulator.rs` | Records, ResumeAt, Revoke, PartitionLost, FlushAll, FlushDone | (starts flush tasks), Resync, StopRun |
//! | Flusher | `flusher.rs` | Flush (many partitions at once) | (replies Durable) |
//! | (flush task, one per partition in flight) | `flush_task.rs` | — | Flush, Durable, PartitionLost, ActorFailed |
//! | Committer | `committer.rs` | Durable, GetCommitted | CommitOffset, Progress |
//! | Supervisor | `supervisor.rs` | ActorFailed, StopRun, GetRestarts | Progress |
//! | Stats | `stats.rs` | Progress | (terminal / log) |
//! | ClickHouseDdl | `clickhouse_ddl.rs` | ApplySchema | (HTTP to ClickHouse) |

pub mod accumulator;
pub mod bus;
pub mod bus_consumer;
pub mod clickhouse_ddl;
pub mod committer;
pub mod conductor;
pub mod flush_task;
pub mod flusher;
pub mod kafka_source;
pub mod listener;
pub mod outbox;
pub mod publisher;
pub mod sink_hooks;
pub mod stats;
pub mod supervisor;

//! The pipeline driver: opens the lake, recovers positions, starts and wires the actors, waits
//! for a stop reason, then drains (`drain.rs`) and reports (`summary.rs`).
//!
//! | file | what |
//! |---|---|
//! | `entry.rs` | the four entry points: `run`, `run_kafka`, `sink_kafka`, `simulate` |
//! | `control.rs` | arbiters, supervisor, progress display, signals, `--duration` |
//! | `front.rs` | listeners, conductor and publisher |
//! | `sink.rs` | lake recovery, accumulator, flusher, committer, bus or Kafka consumer |
//! | `drain.rs` | the one end-of-run sequence, over the bus or a Kafka topic |
//! | `topics.rs` | Kafka topics and permissions checked or created at start |
//! | `clickhouse.rs` | ClickHouse's schema, applied at start or once the server answers |
//! | `summary.rs` | what a run did and why it failed |

mod clickhouse;
mod control;
mod drain;
mod entry;
mod front;
mod sink;
mod summary;
mod topics;

pub use clickhouse::apply_clickhouse;
pub use entry::{run, run_kafka, simulate, sink_kafka};
pub use sink::bus_source;
pub use summary::{RunError, Summary, shares};
pub use topics::{cluster, prepare_clickhouse_topics};

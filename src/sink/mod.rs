//! Pure sink logic: when to flush ([`FlushPolicy`]) and what a partition has accumulated
//! ([`PartitionBuffer`]). The accumulator and flusher actors drive these.

mod buffer;
mod policy;

pub use buffer::{DeadLetter, PartitionBuffer, PendingBatch, SourceRecord, prepare};
pub use policy::{BufferStats, FlushPolicy, FlushReason};

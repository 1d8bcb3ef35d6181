//! The in-process bus's storage: per-partition ordered logs with offsets, like a Kafka topic
//! held in memory. Records are dropped once the consumer has taken them (its next fetch
//! position): from then on they live in the sink's buffers until committed, and a failed flush
//! retries from there, so keeping a second copy here would only double the memory. (A crash
//! loses the in-process bus anyway; the lake stays exactly-once.) Appends wait while the retained
//! bytes exceed the capacity, so a producer faster than the sink slows down instead of growing
//! memory.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::sink::SourceRecord;

/// One record as stored on the bus.
#[derive(Clone, Debug)]
pub struct BusRecord {
    pub key: Bytes,
    pub value: Bytes,
    pub timestamp_ms: i64,
}

#[derive(Debug)]
struct PartitionLog {
    /// Offset of `records[0]` (the low watermark).
    base: i64,
    records: VecDeque<BusRecord>,
}

/// All partitions of the bus.
#[derive(Debug)]
pub struct Log {
    partitions: Vec<PartitionLog>,
    retained_bytes: usize,
    capacity_bytes: usize,
}

/// Per-record bookkeeping counted against the capacity besides key and value.
const RECORD_OVERHEAD: usize = 64;

fn cost(r: &BusRecord) -> usize {
    r.key.len() + r.value.len() + RECORD_OVERHEAD
}

impl Log {
    /// A log whose partition `p` starts at `start_offsets[p]`: the bus continues the offsets
    /// the lake has already committed, so that a new run appends to an existing lake.
    pub fn new(start_offsets: &[i64], capacity_bytes: usize) -> Log {
        Log {
            partitions: start_offsets
                .iter()
                .map(|&base| PartitionLog {
                    base,
                    records: VecDeque::new(),
                })
                .collect(),
            retained_bytes: 0,
            capacity_bytes,
        }
    }

    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// Whether an append may proceed (at least one append always can, so a single batch larger
    /// than the capacity does not deadlock).
    pub fn has_room(&self) -> bool {
        self.retained_bytes < self.capacity_bytes
    }

    pub fn retained_bytes(&self) -> usize {
        self.retained_bytes
    }

    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    /// Appends a record and returns its offset.
    pub fn append(&mut self, partition: usize, rec: BusRecord) -> i64 {
        self.retained_bytes += cost(&rec);
        let p = &mut self.partitions[partition];
        p.records.push_back(rec);
        p.base + p.records.len() as i64 - 1
    }

    /// The next offset to be written.
    pub fn high_watermark(&self, partition: usize) -> i64 {
        let p = &self.partitions[partition];
        p.base + p.records.len() as i64
    }

    pub fn low_watermark(&self, partition: usize) -> i64 {
        self.partitions[partition].base
    }

    /// Copies up to `max` records from `from` on (cheap: values are reference-counted).
    /// Reading below the low watermark starts at the low watermark.
    pub fn read(&self, partition: usize, from: i64, max: usize, out: &mut Vec<SourceRecord>) {
        let p = &self.partitions[partition];
        let start = (from.max(p.base) - p.base) as usize;
        for (i, r) in p.records.iter().enumerate().skip(start).take(max) {
            out.push(SourceRecord {
                partition: partition as i32,
                offset: p.base + i as i64,
                timestamp_ms: r.timestamp_ms,
                key: Some(r.key.clone()),
                value: r.value.clone(),
            });
        }
    }

    /// Drops records below `next_offset` (the consumer has taken them).
    pub fn trim(&mut self, partition: usize, next_offset: i64) {
        let p = &mut self.partitions[partition];
        while p.base < next_offset {
            let Some(r) = p.records.pop_front() else {
                break;
            };
            self.retained_bytes -= cost(&r);
            p.base += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: &'static [u8]) -> BusRecord {
        BusRecord {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(v),
            timestamp_ms: 7,
        }
    }

    #[test]
    fn offsets_continue_from_start_and_trim_frees_room() {
        let mut log = Log::new(&[100, 0], 3 * (RECORD_OVERHEAD + 2));
        assert_eq!(log.append(0, rec(b"a")), 100);
        assert_eq!(log.append(0, rec(b"b")), 101);
        assert_eq!(log.append(1, rec(b"c")), 0);
        assert!(!log.has_room());
        assert_eq!(log.high_watermark(0), 102);
        let mut out = Vec::new();
        log.read(0, 0, 10, &mut out);
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), [100, 101]);
        assert_eq!(out[1].value, Bytes::from_static(b"b"));
        out.clear();
        log.read(0, 101, 10, &mut out);
        assert_eq!(out.len(), 1);
        log.trim(0, 101);
        assert_eq!(log.low_watermark(0), 101);
        assert!(log.has_room());
        log.trim(0, 500);
        assert_eq!(
            log.low_watermark(0),
            102,
            "trim stops at the high watermark"
        );
        assert_eq!(log.retained_bytes(), RECORD_OVERHEAD + 2);
    }
}

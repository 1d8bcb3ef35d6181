//! One poll's records in one buffer.

use bytes::Bytes;

use crate::sink::SourceRecord;

/// One poll's records, copied into a single buffer: one allocation per batch instead of one
/// or two per record (their frees were the accumulator's most expensive calls after the
/// decoder's). The records are slices of it.
pub(super) struct ReadBatch {
    bytes: Vec<u8>,
    pub(super) records: Vec<Spans>,
}

/// A record in a [`ReadBatch`]: where its key and value are in the buffer.
pub(super) struct Spans {
    pub(super) partition: i32,
    offset: i64,
    timestamp_ms: i64,
    key: Option<std::ops::Range<usize>>,
    value: std::ops::Range<usize>,
}

impl ReadBatch {
    /// A batch with room for `bytes` of keys and values and `records` records, sized from
    /// the previous batch: grown by doubling, the buffer was copied again and its fresh pages
    /// faulted in at each step (the copies were 9 % of a sink's samples).
    pub(super) fn with_room(bytes: usize, records: usize) -> Self {
        ReadBatch {
            bytes: Vec::with_capacity(bytes),
            records: Vec::with_capacity(records),
        }
    }

    /// Bytes of keys and values held.
    pub(super) fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    pub(super) fn push(
        &mut self,
        partition: i32,
        offset: i64,
        ts: i64,
        key: Option<&[u8]>,
        v: Option<&[u8]>,
    ) {
        let mut put = |b: &[u8]| {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(b);
            start..self.bytes.len()
        };
        let key = key.map(&mut put);
        let value = put(v.unwrap_or_default());
        self.records.push(Spans {
            partition,
            offset,
            timestamp_ms: ts,
            key,
            value,
        });
    }

    pub(super) fn into_records(self) -> Vec<SourceRecord> {
        let bytes = Bytes::from(self.bytes);
        self.records
            .into_iter()
            .map(|s| SourceRecord {
                partition: s.partition,
                offset: s.offset,
                timestamp_ms: s.timestamp_ms,
                key: s.key.map(|k| bytes.slice(k)),
                value: bytes.slice(s.value),
            })
            .collect()
    }
}

//! One poll's records in one buffer.

use bytes::Bytes;

use crate::sink::SourceRecord;

/// One poll's records, copied into a single buffer: one allocation per batch instead of one
/// or two per record (their frees were the accumulator's most expensive calls after the
/// decoder's). The records are slices of it.
#[derive(Default)]
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

//! One poll's records in one buffer.

use bytes::Bytes;

use crate::sink::SourceRecord;

/// One poll's records, copied into a single buffer: one allocation per batch instead of one
/// or two per record (their frees were the accumulator's most expensive calls after the
/// decoder's). The records are slices of it.
pub(super) struct ReadBatch {
    bytes: Vec<u8>,
    pub(super) records: Vec<Spans>,
    /// Bytes and records to reserve at the first record: an idle poll (50 a second) then
    /// allocates nothing.
    room: (usize, usize),
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
            bytes: Vec::new(),
            records: Vec::new(),
            room: (bytes, records),
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
        if self.records.capacity() == 0 {
            self.bytes.reserve(self.room.0);
            self.records.reserve(self.room.1);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_only_when_a_record_comes_and_slices_each_record() {
        let mut batch = ReadBatch::with_room(4096, 16);
        assert_eq!(batch.bytes.capacity(), 0, "an empty poll allocates nothing");
        assert_eq!(batch.records.capacity(), 0);
        batch.push(3, 7, 1_000, Some(b"k1"), Some(b"{\"a\":1}"));
        assert!(batch.bytes.capacity() >= 4096);
        assert!(batch.records.capacity() >= 16);
        batch.push(1, 9, 2_000, None, None);
        assert_eq!(batch.len_bytes(), 2 + 7);
        let records = batch.into_records();
        assert_eq!(records.len(), 2);
        assert_eq!(
            (
                records[0].partition,
                records[0].offset,
                records[0].timestamp_ms
            ),
            (3, 7, 1_000)
        );
        assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(&records[0].value[..], b"{\"a\":1}");
        assert_eq!((records[1].partition, records[1].offset), (1, 9));
        assert!(records[1].key.is_none());
        assert!(records[1].value.is_empty(), "a null value reads as empty");
    }
}

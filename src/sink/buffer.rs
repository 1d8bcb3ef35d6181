//! One source partition's unflushed records, decoded into per-date Arrow builders.

use std::collections::BTreeMap;
use std::time::Instant;

use arrow::array::RecordBatch;
use bytes::Bytes;
use chrono::NaiveDate;
use parquet::file::properties::WriterProperties;

use super::policy::BufferStats;
use crate::event::{DerivedIds, decode_slow, fast};
use crate::lake::schema::{EventBatchBuilder, SourcePos, event_date};
use crate::lake::{self, LakeError, PreparedBatch, Range, Rejected};

/// A record as read from the topic or the in-process bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRecord {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
}

/// Longest problem description kept per rejected record: decoder messages quote the record's
/// own text, which must not make a dead letter (or a marker) as large as the record.
const MAX_DETAIL: usize = 512;

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
fn clip(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// A record that is not a valid event, kept whole until it is in the dead-letter topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
    /// Short name of the problem (`DecodeError::kind`).
    pub kind: &'static str,
    pub detail: String,
}

/// A flushed buffer: the range it covers, one Arrow batch per event date, rejected records.
#[derive(Debug)]
pub struct PendingBatch {
    pub range: Range,
    /// The epoch of the writer's claim on the partition when the batch was taken.
    pub epoch: u64,
    pub parts: Vec<(NaiveDate, RecordBatch, i64, i64)>,
    pub rejected: Vec<DeadLetter>,
    /// Set once `rejected` is in the dead-letter topic, so that a flush retried after a lake
    /// failure does not send the letters again.
    pub letters_sent: std::sync::atomic::AtomicBool,
}

impl PendingBatch {
    pub fn rows(&self) -> usize {
        self.parts.iter().map(|p| p.1.num_rows()).sum()
    }
}

/// Encodes a pending batch into Parquet files ready to commit.
pub fn prepare(batch: &PendingBatch, props: &WriterProperties) -> Result<PreparedBatch, LakeError> {
    let files = batch
        .parts
        .iter()
        .map(|(date, rb, min, max)| {
            let bytes = lake::encode(rb, props).map_err(|source| LakeError::Encode {
                path: format!(
                    "{}/{}",
                    lake::date_dir(*date),
                    lake::data_file_name(&batch.range, batch.epoch)
                ),
                source,
            })?;
            Ok(lake::PreparedFile {
                date: *date,
                bytes,
                rows: rb.num_rows() as u64,
                min_event_time_ms: *min,
                max_event_time_ms: *max,
            })
        })
        .collect::<Result<Vec<_>, LakeError>>()?;
    Ok(PreparedBatch {
        range: batch.range,
        files,
        rejected: batch
            .rejected
            .iter()
            .map(|d| Rejected {
                offset: d.offset,
                reason: format!("{}: {}", d.kind, d.detail),
            })
            .collect(),
    })
}

const MS_PER_DAY: i64 = 86_400_000;

/// Accumulates one partition's records until the flush policy says otherwise.
pub struct PartitionBuffer {
    partition: i32,
    /// The ids of reference-format records, derived from the topic, partition and offset.
    ids: DerivedIds,
    /// Where the next batch starts: after the previous batch, or where the lake resumed.
    /// Offsets between it and the next record hold no record (transaction markers, aborted
    /// records, compaction), and belong to the batch so that ranges stay contiguous.
    next: Option<i64>,
    /// The epoch of this writer's claim on the partition (0: none, e.g. a unit test).
    epoch: u64,
    first: Option<i64>,
    last: i64,
    files: BTreeMap<NaiveDate, EventBatchBuilder>,
    /// The last event's UTC day number and date: consecutive events nearly always share it,
    /// and the calendar conversion is a visible share of a row's cost.
    last_day: (i64, NaiveDate),
    rejected: Vec<DeadLetter>,
    records: usize,
    bytes: usize,
    opened_at: Option<Instant>,
    /// The share of the flush policy's limits at which the open batch is cut: below 1 for a
    /// partition's first batch (see [`PartitionBuffer::stagger`]), then 1.
    share: f64,
    /// Rows of the previous batch (and an eighth): the next batch's first file starts that
    /// large (a batch is nearly always one date; a second date, at midnight, starts small).
    rows_hint: usize,
}

impl PartitionBuffer {
    /// A buffer of `partition` of the topic `ids` derives event ids for.
    pub fn new(ids: DerivedIds, partition: i32) -> Self {
        PartitionBuffer {
            partition,
            ids,
            next: None,
            epoch: 0,
            first: None,
            last: -1,
            files: BTreeMap::new(),
            last_day: (0, event_date(0)),
            rejected: Vec::new(),
            records: 0,
            bytes: 0,
            opened_at: None,
            share: 1.0,
            rows_hint: 1024,
        }
    }

    /// A buffer whose first batch starts at `offset` (where the lake resumes the partition;
    /// None: at the first record), committed by a writer of `epoch`.
    pub fn resuming_at(ids: DerivedIds, partition: i32, offset: Option<i64>, epoch: u64) -> Self {
        PartitionBuffer {
            next: offset,
            epoch,
            ..PartitionBuffer::new(ids, partition)
        }
    }

    /// Cuts this partition's first batch at `share` of the policy's limits. Partitions filled
    /// at the same pace otherwise reach their limits together: every batch waited for an
    /// encoder at once while the accumulator paused, then the encoders waited for it. With the
    /// partitions resumed together at shares n/n, (n-1)/n, … 1/n, their cuts spread evenly.
    pub fn stagger(mut self, share: f64) -> Self {
        self.share = share;
        self
    }

    /// The policy the open batch is cut by.
    pub fn policy(&self, policy: &super::FlushPolicy) -> super::FlushPolicy {
        match self.share < 1.0 {
            true => policy.scaled(self.share),
            false => *policy,
        }
    }

    /// Whether `offset` comes before where the buffer's next batch starts: such a record is in
    /// the lake already (it was fetched before the partition was resumed further on).
    pub fn is_behind(&self, offset: i64) -> bool {
        self.next.is_some_and(|n| offset < n) || (self.first.is_some() && offset <= self.last)
    }

    /// No batch open: nothing pushed or advanced over since the last take.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The consumer's position reached `to` with no record after the last one pushed: the
    /// offsets before it hold none (transaction markers, aborted records). The open batch is
    /// extended over them, or a batch of no record is opened from where the next one starts,
    /// so that the committed range reaches the position. `start`: where reading began when the
    /// lake had nothing of the partition (its low watermark); nothing when no start is known.
    pub fn advance_to(&mut self, start: Option<i64>, to: i64, now: Instant) {
        let end = to - 1;
        if self.first.is_none() {
            match self.next.or(start) {
                Some(start) if start <= end => {
                    self.first = Some(start);
                    self.opened_at = Some(now);
                }
                _ => return,
            }
        }
        self.last = self.last.max(end);
    }

    /// The epoch of the writer's claim this buffer's batches are committed under.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Offset of the last record pushed, if any.
    pub fn last_offset(&self) -> Option<i64> {
        self.first.map(|_| self.last)
    }

    /// Decodes (either format) and appends one record. Records must come in increasing offset order; an
    /// invalid record is kept as a [`Rejected`] entry so that its offset stays accounted for.
    /// Returns the kind of problem when the record is not a valid event.
    pub fn push(&mut self, rec: &SourceRecord, now: Instant) -> Result<(), &'static str> {
        debug_assert_eq!(rec.partition, self.partition);
        debug_assert!(rec.offset > self.last, "offsets increase");
        if self.first.is_none() {
            self.first = Some(self.next.filter(|n| *n <= rec.offset).unwrap_or(rec.offset));
            self.opened_at = Some(now);
        }
        self.last = rec.offset;
        self.records += 1;
        self.bytes += rec.value.len();
        let src = SourcePos {
            partition: rec.partition,
            offset: rec.offset,
            timestamp_ms: rec.timestamp_ms,
        };
        // The fast decoder's event goes straight into the builder (no copy through a Result).
        if let Some(ev) = fast::decode(&rec.value) {
            let date = self.date_of(ev.ts_ms);
            let hint = if self.files.is_empty() {
                self.rows_hint
            } else {
                1024
            };
            self.files
                .entry(date)
                .or_insert_with(|| EventBatchBuilder::with_capacity(hint))
                .push_flat(&ev, src);
            return Ok(());
        }
        match decode_slow(&rec.value, &self.ids, rec.partition, rec.offset) {
            Ok(ev) => {
                let date = self.date_of(ev.ts_ms);
                self.files.entry(date).or_default().push(&ev, src);
                Ok(())
            }
            Err(e) => {
                let kind = e.kind();
                self.rejected.push(DeadLetter {
                    offset: rec.offset,
                    timestamp_ms: rec.timestamp_ms,
                    // Copies: a slice would pin the whole batch it was read with (the Kafka
                    // source reads a batch into one buffer) until the letter is written.
                    key: rec.key.as_deref().map(Bytes::copy_from_slice),
                    value: Bytes::copy_from_slice(&rec.value),
                    kind,
                    detail: clip(e.to_string(), MAX_DETAIL),
                });
                Err(kind)
            }
        }
    }

    /// [`event_date`], remembering the last day's.
    fn date_of(&mut self, ts_ms: i64) -> NaiveDate {
        let day = ts_ms.div_euclid(MS_PER_DAY);
        if day != self.last_day.0 {
            self.last_day = (day, event_date(ts_ms));
        }
        self.last_day.1
    }

    pub fn stats(&self, now: Instant) -> BufferStats {
        BufferStats {
            records: self.records,
            bytes: self.bytes,
            age: self
                .opened_at
                .map(|t| now.saturating_duration_since(t))
                .unwrap_or_default(),
        }
    }

    /// Takes everything accumulated, leaving the buffer empty; `None` if it was empty.
    pub fn take(&mut self) -> Option<PendingBatch> {
        let first = self.first.take()?;
        // An eighth more: batches cut by size vary a little, and a builder that outgrows its
        // room doubles it.
        let rows: usize = self.files.values().map(|b| b.rows()).sum();
        self.rows_hint = (rows + rows / 8).max(1024);
        let parts = std::mem::take(&mut self.files)
            .into_iter()
            .map(|(date, mut b)| {
                let (min, max) = b.time_range().expect("builders in the map are non-empty");
                (date, b.finish(), min, max)
            })
            .collect();
        let batch = PendingBatch {
            epoch: self.epoch,
            range: Range {
                partition: self.partition,
                first,
                last: self.last,
            },
            parts,
            rejected: std::mem::take(&mut self.rejected),
            letters_sent: Default::default(),
        };
        self.next = Some(self.last + 1);
        self.records = 0;
        self.bytes = 0;
        self.opened_at = None;
        self.share = 1.0;
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventType, Platform, Profile, SimEvent, WireFormat};
    use std::net::Ipv4Addr;

    fn ids() -> DerivedIds {
        DerivedIds::new("music_events")
    }

    fn record(offset: i64, ts_ms: i64) -> SourceRecord {
        record_in(WireFormat::Encore, offset, ts_ms)
    }

    fn record_in(format: WireFormat, offset: i64, ts_ms: i64) -> SourceRecord {
        let p = Profile {
            user_id: uuid::Uuid::from_u128(1),
            platform: Platform::Web,
            platform_token: "web-1".into(),
            ipv4: Ipv4Addr::new(1, 2, 3, 4),
            country: "SE",
            playlists: vec![1],
        };
        let ev = SimEvent {
            event_id: uuid::Uuid::from_u128(offset as u128 + 1),
            event_type: EventType::TrackPlayback,
            session_id: uuid::Uuid::from_u128(9),
            ts_ms,
            track_id: 5,
            previous_track_id: None,
            playlist_id: None,
            liked: false,
            position_ms: Some(0),
        };
        let mut v = Vec::new();
        format.encode(&p, &ev, &mut v);
        SourceRecord {
            partition: 4,
            offset,
            timestamp_ms: 1,
            key: None,
            value: v.into(),
        }
    }

    #[test]
    fn a_staggered_first_batch_is_cut_early_and_the_next_at_the_full_limits() {
        use crate::sink::FlushPolicy;
        let policy = FlushPolicy {
            max_rows: 8,
            ..FlushPolicy::default()
        };
        let now = Instant::now();
        let mut b = PartitionBuffer::resuming_at(ids(), 4, Some(0), 1).stagger(0.25);
        let mut cut_at = Vec::new();
        for offset in 0..20 {
            b.push(&record(offset, 0), now).unwrap();
            if b.policy(&policy).should_flush(&b.stats(now)).is_some() {
                cut_at.push(b.take().unwrap().range.last);
            }
        }
        assert_eq!(cut_at, [1, 9, 17], "2 records, then 8 and 8");
    }

    #[test]
    fn splits_by_date_keeps_range_and_rejects() {
        let now = Instant::now();
        let mut b = PartitionBuffer::new(ids(), 4);
        assert!(b.take().is_none());
        let day1 = 1_767_225_599_000; // 2025-12-31T23:59:59Z
        let day2 = 1_767_225_601_000; // 2026-01-01T00:00:01Z
        assert!(b.push(&record(10, day1), now).is_ok());
        assert!(b.push(&record(11, day2), now).is_ok());
        let mut bad = record(12, day2);
        bad.value = Bytes::from_static(b"not json");
        assert!(b.push(&bad, now).is_err());
        assert!(b.push(&record(14, day1), now).is_ok());
        let s = b.stats(now + std::time::Duration::from_secs(2));
        assert_eq!(s.records, 4);
        assert_eq!(s.age, std::time::Duration::from_secs(2));
        let batch = b.take().unwrap();
        assert_eq!(
            batch.range,
            Range {
                partition: 4,
                first: 10,
                last: 14
            }
        );
        assert_eq!(batch.parts.len(), 2);
        assert_eq!(batch.parts[0].0.to_string(), "2025-12-31");
        assert_eq!(batch.parts[0].1.num_rows(), 2);
        assert_eq!(batch.parts[1].1.num_rows(), 1);
        assert_eq!(batch.rows(), 3);
        assert_eq!(batch.rejected.len(), 1);
        assert_eq!(batch.rejected[0].offset, 12);
        assert!(b.is_empty());
        assert_eq!(b.stats(now).records, 0);
        let props = crate::lake::writer_properties(crate::lake::Compression::default());
        let prepared = prepare(&batch, &props).unwrap();
        assert_eq!(prepared.files.len(), 2);
        assert_eq!(prepared.rows(), 3);
    }

    #[test]
    fn a_partition_of_both_formats_keeps_every_record() {
        use arrow::array::AsArray;
        let now = Instant::now();
        let mut b = PartitionBuffer::new(ids(), 4);
        let t = 1_767_225_600_000;
        b.push(&record_in(WireFormat::Encore, 10, t), now).unwrap();
        b.push(&record_in(WireFormat::Reference, 11, t), now)
            .unwrap();
        let mut bad = record_in(WireFormat::Reference, 12, t);
        bad.value = String::from_utf8(bad.value.to_vec())
            .unwrap()
            .replace("\"SE\"", "\"Sweden\"")
            .into();
        assert_eq!(b.push(&bad, now), Err("invalid_value"));
        let batch = b.take().unwrap();
        assert_eq!((batch.rows(), batch.rejected.len()), (2, 1));
        assert!(
            batch.rejected[0]
                .detail
                .starts_with("reference format: country `Sweden`")
        );
        let ids_col = batch.parts[0].1.column(0).as_string::<i32>();
        assert_eq!(ids_col.value(0), uuid::Uuid::from_u128(11).to_string());
        assert_eq!(ids_col.value(1), ids().event_id(4, 11).to_string());
    }

    #[test]
    fn advancing_covers_offsets_without_records_up_to_the_position() {
        let now = Instant::now();
        // A batch open: extended to the position.
        let mut b = PartitionBuffer::resuming_at(ids(), 4, Some(10), 1);
        b.push(&record(10, 0), now).unwrap();
        b.advance_to(None, 13, now);
        let batch = b.take().unwrap();
        assert_eq!(
            (batch.range.first, batch.range.last, batch.rows()),
            (10, 12, 1)
        );
        // None open: a batch of no record from where the next starts.
        b.advance_to(None, 15, now);
        assert!(!b.is_empty());
        let empty = b.take().unwrap();
        assert_eq!(
            (empty.range.first, empty.range.last, empty.rows()),
            (13, 14, 0)
        );
        // At the position already, or no known start: nothing.
        b.advance_to(None, 15, now);
        assert!(b.is_empty());
        let mut fresh = PartitionBuffer::resuming_at(ids(), 4, None, 1);
        fresh.advance_to(None, 5, now);
        assert!(fresh.is_empty());
        // Never committed, read from its low watermark: the batch starts there.
        fresh.advance_to(Some(2), 5, now);
        let from_low = fresh.take().unwrap();
        assert_eq!((from_low.range.first, from_low.range.last), (2, 4));
    }

    #[test]
    fn ranges_stay_contiguous_over_offsets_without_records() {
        let now = Instant::now();
        // The lake resumes at 100; 100-102 were an aborted transaction and its marker.
        let mut b = PartitionBuffer::resuming_at(ids(), 4, Some(100), 1);
        b.push(&record(103, 1_700_000_000_000), now).unwrap();
        b.push(&record(104, 1_700_000_000_000), now).unwrap();
        let first = b.take().unwrap();
        assert_eq!((first.range.first, first.range.last), (100, 104));
        // A commit marker at 105: the next batch covers it.
        b.push(&record(106, 1_700_000_000_000), now).unwrap();
        let second = b.take().unwrap();
        assert_eq!((second.range.first, second.range.last), (105, 106));
        // Without a resume position the first record starts the range (retention).
        let mut fresh = PartitionBuffer::new(ids(), 4);
        fresh.push(&record(50, 1_700_000_000_000), now).unwrap();
        assert_eq!(fresh.take().unwrap().range.first, 50);
    }
}

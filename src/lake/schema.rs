//! The declared Arrow schema of the lake and the JSON → Arrow batch builder.
//!
//! Every lake file carries exactly [`lake_schema`]; `encore verify` compares each file's
//! schema against it. Low-cardinality strings are dictionary-encoded, times are
//! `Timestamp(ms, UTC)`, and three source columns record where each row came from.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, Int8Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDate;

use super::dict::{COUNTRY_SLOTS, SlotDict, country_slot};
use crate::event::reference::UNKNOWN_PLATFORM;
use crate::event::{Decoded, EVENT_TYPES, EventType, FlatEvent, Platform, WireEvent};

fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8))
}

fn ts_ms() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The lake's Arrow schema (one definition, shared).
pub fn lake_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("event_id", DataType::Utf8, false),
                Field::new("event_type_id", DataType::Int8, false),
                Field::new("event_type", dict(), false),
                Field::new("user_id", DataType::Utf8, false),
                Field::new("session_id", DataType::Utf8, false),
                Field::new("platform", dict(), false),
                Field::new("platform_token", DataType::Utf8, false),
                Field::new("ipv4", DataType::Utf8, false),
                Field::new("country", dict(), false),
                Field::new("track_id", DataType::Int64, false),
                Field::new("previous_track_id", DataType::Int64, true),
                Field::new("playlist_id", DataType::Int64, true),
                Field::new("liked", DataType::Boolean, false),
                Field::new("position_ms", DataType::Int64, true),
                Field::new("event_time", ts_ms(), false),
                Field::new("kafka_partition", DataType::Int32, false),
                Field::new("kafka_offset", DataType::Int64, false),
                Field::new("kafka_timestamp", ts_ms(), false),
            ]))
        })
        .clone()
}

/// Where a record came from on the topic (or the in-process bus).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourcePos {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// The UTC date of an event time: the lake's `date=` partition.
pub fn event_date(ts_ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ts_ms)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// Column builders for one output file (one date of one partition's batch).
pub struct EventBatchBuilder {
    event_id: StringBuilder,
    event_type_id: Int8Builder,
    event_type: SlotDict<EVENT_TYPES>,
    user_id: StringBuilder,
    session_id: StringBuilder,
    /// The four platforms, then the reference format's `unknown`.
    platform: SlotDict<5>,
    platform_token: StringBuilder,
    ipv4: StringBuilder,
    country: SlotDict<COUNTRY_SLOTS>,
    track_id: Int64Builder,
    previous_track_id: Int64Builder,
    playlist_id: Int64Builder,
    liked: BooleanBuilder,
    position_ms: Int64Builder,
    event_time: TimestampMillisecondBuilder,
    kafka_partition: Int32Builder,
    kafka_offset: Int64Builder,
    kafka_timestamp: TimestampMillisecondBuilder,
    rows: usize,
    min_ts: i64,
    max_ts: i64,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBatchBuilder {
    pub fn new() -> Self {
        Self::with_capacity(1024)
    }

    /// Builders with room for `rows` rows of encore's events (ids of 36 bytes, tokens of
    /// about 40, addresses of up to 15): a batch sized like the previous one is built without
    /// growing, i.e. without copying its columns again and again.
    pub fn with_capacity(rows: usize) -> Self {
        let ts = |b: TimestampMillisecondBuilder| b.with_timezone("UTC");
        let text = |bytes: usize| StringBuilder::with_capacity(rows, rows * bytes);
        EventBatchBuilder {
            event_id: text(36),
            event_type_id: Int8Builder::with_capacity(rows),
            event_type: SlotDict::with_capacity(rows),
            user_id: text(36),
            session_id: text(36),
            platform: SlotDict::with_capacity(rows),
            platform_token: text(40),
            ipv4: text(15),
            country: SlotDict::with_capacity(rows),
            track_id: Int64Builder::with_capacity(rows),
            previous_track_id: Int64Builder::with_capacity(rows),
            playlist_id: Int64Builder::with_capacity(rows),
            liked: BooleanBuilder::with_capacity(rows),
            position_ms: Int64Builder::with_capacity(rows),
            event_time: ts(TimestampMillisecondBuilder::with_capacity(rows)),
            kafka_partition: Int32Builder::with_capacity(rows),
            kafka_offset: Int64Builder::with_capacity(rows),
            kafka_timestamp: ts(TimestampMillisecondBuilder::with_capacity(rows)),
            rows: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Smallest and largest event time in the batch, ms.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        (self.rows > 0).then_some((self.min_ts, self.max_ts))
    }

    /// Appends one decoded (and so validated) event of either form.
    pub fn push_decoded(&mut self, ev: &Decoded<'_>, src: SourcePos) {
        match ev {
            Decoded::Flat(f) => self.push_flat(f, src),
            Decoded::Wire(w) => self.push(w, src),
        }
    }

    /// Appends one event the fast decoder read: its strings are the lake's text already.
    pub fn push_flat(&mut self, ev: &FlatEvent<'_>, src: SourcePos) {
        self.event_id.append_value(ev.event_id);
        self.push_type(ev.event_type);
        self.user_id.append_value(ev.user_id);
        self.session_id.append_value(ev.session_id);
        let p = ev.platform;
        self.platform.append(Some(p.index()), p.name());
        self.platform_token.append_value(ev.platform_token);
        self.ipv4.append_value(ev.ipv4);
        self.country.append(country_slot(ev.country), ev.country);
        self.push_values(Values {
            track_id: ev.track_id,
            previous_track_id: ev.previous_track_id,
            playlist_id: ev.playlist_id,
            liked: ev.liked,
            position_ms: ev.position_ms,
            ts_ms: ev.ts_ms,
        });
        self.push_source(src);
    }

    /// Appends one decoded (and so validated) event.
    pub fn push(&mut self, ev: &WireEvent<'_>, src: SourcePos) {
        let mut uuid = uuid::Uuid::encode_buffer();
        self.event_id
            .append_value(ev.event_id.hyphenated().encode_lower(&mut uuid));
        self.push_type(ev.event_type());
        self.user_id
            .append_value(ev.user_id.hyphenated().encode_lower(&mut uuid));
        self.session_id
            .append_value(ev.session_id.hyphenated().encode_lower(&mut uuid));
        self.platform
            .append(platform_slot(&ev.platform), &ev.platform);
        self.platform_token.append_value(&ev.platform_token);
        let mut ip = [0u8; 15];
        self.ipv4.append_value(format_ipv4(ev.ipv4, &mut ip));
        self.country.append(country_slot(&ev.country), &ev.country);
        self.push_values(Values {
            track_id: ev.track_id,
            previous_track_id: ev.previous_track_id,
            playlist_id: ev.playlist_id,
            liked: ev.liked,
            position_ms: ev.position_ms,
            ts_ms: ev.ts_ms,
        });
        self.push_source(src);
    }

    fn push_type(&mut self, t: EventType) {
        self.event_type_id.append_value(t.id() as i8);
        self.event_type.append(Some(t.index()), t.name());
    }

    fn push_values(&mut self, v: Values) {
        self.track_id.append_value(v.track_id);
        self.previous_track_id.append_option(v.previous_track_id);
        self.playlist_id.append_option(v.playlist_id);
        self.liked.append_value(v.liked);
        self.position_ms.append_option(v.position_ms);
        self.event_time.append_value(v.ts_ms);
        self.rows += 1;
        self.min_ts = self.min_ts.min(v.ts_ms);
        self.max_ts = self.max_ts.max(v.ts_ms);
    }

    fn push_source(&mut self, src: SourcePos) {
        self.kafka_partition.append_value(src.partition);
        self.kafka_offset.append_value(src.offset);
        self.kafka_timestamp.append_value(src.timestamp_ms);
    }

    /// Builds the RecordBatch with the declared schema and resets the builder.
    pub fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.event_type_id.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.platform.finish()),
            Arc::new(self.platform_token.finish()),
            Arc::new(self.ipv4.finish()),
            Arc::new(self.country.finish()),
            Arc::new(self.track_id.finish()),
            Arc::new(self.previous_track_id.finish()),
            Arc::new(self.playlist_id.finish()),
            Arc::new(self.liked.finish()),
            Arc::new(self.position_ms.finish()),
            Arc::new(self.event_time.finish()),
            Arc::new(self.kafka_partition.finish()),
            Arc::new(self.kafka_offset.finish()),
            Arc::new(self.kafka_timestamp.finish()),
        ];
        self.rows = 0;
        self.min_ts = i64::MAX;
        self.max_ts = i64::MIN;
        // The builders produce exactly the declared types, so this cannot fail.
        RecordBatch::try_new(lake_schema(), columns).expect("builders match the declared schema")
    }
}

/// The plain columns of an event, whichever decoder read it.
struct Values {
    track_id: i64,
    previous_track_id: Option<i64>,
    playlist_id: Option<i64>,
    liked: bool,
    position_ms: Option<i64>,
    ts_ms: i64,
}

/// Slot of a platform name in the platform dictionary.
fn platform_slot(name: &str) -> Option<usize> {
    if name == UNKNOWN_PLATFORM {
        return Some(Platform::ALL.len());
    }
    Platform::ALL.iter().position(|p| p.name() == name)
}

/// Formats an IPv4 address without allocating.
fn format_ipv4(ip: std::net::Ipv4Addr, buf: &mut [u8; 15]) -> &str {
    let mut n = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        let mut tmp = itoa_u8(octet);
        for b in tmp.by_ref() {
            buf[n] = b;
            n += 1;
        }
    }
    std::str::from_utf8(&buf[..n]).expect("ASCII digits and dots")
}

fn itoa_u8(v: u8) -> impl Iterator<Item = u8> {
    let digits = [b'0' + v / 100, b'0' + (v / 10) % 10, b'0' + v % 10];
    let skip = if v >= 100 {
        0
    } else if v >= 10 {
        1
    } else {
        2
    };
    digits.into_iter().skip(skip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventType, Platform, Profile, SimEvent};
    use arrow::array::{Array, AsArray};
    use std::net::Ipv4Addr;

    pub(crate) fn sample_event(i: u64) -> (Profile, SimEvent) {
        let p = Profile {
            user_id: uuid::Uuid::from_u128(1000 + i as u128),
            platform: Platform::ALL[i as usize % 4],
            platform_token: format!("tok{i}"),
            ipv4: Ipv4Addr::new(192, 168, (i % 256) as u8, 7),
            country: ["DE", "US", "BR"][i as usize % 3],
            playlists: vec![5],
        };
        let ev = SimEvent {
            event_id: uuid::Uuid::from_u128(i as u128),
            event_type: EventType::ALL[i as usize % 8],
            session_id: uuid::Uuid::from_u128(77),
            ts_ms: 1_767_225_600_000 + i as i64,
            track_id: i as i64,
            previous_track_id: i.is_multiple_of(2).then_some(3),
            playlist_id: None,
            liked: i.is_multiple_of(3),
            position_ms: Some(i as i64 * 10),
        };
        (p, ev)
    }

    #[test]
    fn builds_the_declared_schema_with_values() {
        let mut b = EventBatchBuilder::new();
        let mut bufs = Vec::new();
        for i in 0..10 {
            let (p, e) = sample_event(i);
            let mut buf = Vec::new();
            crate::event::WireEvent::new(&p, &e).encode_into(&mut buf);
            bufs.push(buf);
        }
        for (i, buf) in bufs.iter().enumerate() {
            let ev = crate::event::WireEvent::decode(buf).unwrap();
            b.push(
                &ev,
                SourcePos {
                    partition: 2,
                    offset: 100 + i as i64,
                    timestamp_ms: 5,
                },
            );
        }
        assert_eq!(b.rows(), 10);
        assert_eq!(b.time_range(), Some((1_767_225_600_000, 1_767_225_600_009)));
        let batch = b.finish();
        assert_eq!(batch.schema(), lake_schema());
        assert_eq!(batch.num_rows(), 10);
        let ids = batch.column(0).as_string::<i32>();
        assert_eq!(ids.value(3), uuid::Uuid::from_u128(3).to_string());
        let ip = batch.column(7).as_string::<i32>();
        assert_eq!(ip.value(9), "192.168.9.7");
        let prev = batch
            .column(10)
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert!(prev.is_null(1));
        assert_eq!(prev.value(0), 3);
        assert_eq!(b.rows(), 0, "finish resets");
    }

    #[test]
    fn ipv4_formatting() {
        let mut buf = [0u8; 15];
        assert_eq!(
            format_ipv4(Ipv4Addr::new(255, 0, 10, 100), &mut buf),
            "255.0.10.100"
        );
    }

    #[test]
    fn event_date_is_utc() {
        assert_eq!(event_date(1_767_225_599_999).to_string(), "2025-12-31");
        assert_eq!(event_date(1_767_225_600_000).to_string(), "2026-01-01");
    }
}

//! The columns of each dataset per dialect: in the queue, in the storage table, and the view's
//! expression between them.

use super::{Dataset, Dialect};
use crate::event::EventType;

fn event_type_enum() -> String {
    let members: Vec<String> = EventType::ALL
        .iter()
        .map(|t| format!("'{}' = {}", t.name(), t.id()))
        .collect();
    format!("Enum8({})", members.join(", "))
}

/// A column of a dataset: its name, its type in the queue (None: not read from the message) and
/// in the storage table (None: queue only), and the expression filling it in the view.
pub(super) struct Col {
    pub(super) name: &'static str,
    pub(super) queue: Option<String>,
    pub(super) storage: Option<String>,
    pub(super) select: String,
}

fn col(name: &'static str, ty: &str) -> Col {
    Col {
        name,
        queue: Some(ty.to_string()),
        storage: Some(ty.to_string()),
        select: name.to_string(),
    }
}

pub(super) fn columns(d: Dataset, dialect: Dialect) -> Vec<Col> {
    let lc = dialect.pick("String", "LowCardinality(String)");
    let time = dialect.pick("DateTime('UTC')", "DateTime64(3, 'UTC')");
    let mut cols = match d {
        Dataset::Events => vec![
            col("event_id", "UUID"),
            // 18.16 cannot skip a conversion error (an unknown name would stop the queue for
            // good, and a view's filter cannot run before a cast aliased to the same name), so
            // there the type is a String that the view restricts to the eight names.
            col(
                "event_type",
                &match dialect {
                    Dialect::Legacy => "String".to_string(),
                    Dialect::Modern => event_type_enum(),
                },
            ),
            col("event_type_id", "UInt8"),
            Col {
                name: "event_time",
                queue: None,
                storage: Some(time.into()),
                select: dialect
                    .pick(
                        "toDateTime(intDiv(ts_ms, 1000), 'UTC')",
                        "fromUnixTimestamp64Milli(ts_ms, 'UTC')",
                    )
                    .into(),
            },
            col("user_id", "UUID"),
            col("session_id", "UUID"),
            col("platform", lc),
            col("platform_token", "String"),
            col("ipv4", dialect.pick("String", "IPv4")),
            col("country", lc),
            col("track_id", "Int64"),
            col("previous_track_id", "Nullable(Int64)"),
            col("playlist_id", "Nullable(Int64)"),
            col("liked", dialect.pick("UInt8", "Bool")),
            col("position_ms", "Nullable(Int64)"),
            Col {
                name: "ts",
                queue: Some("Int64".into()),
                storage: None,
                select: String::new(),
            },
            col("ts_ms", "Int64"),
        ],
        Dataset::Simple => vec![
            col("uuid", "UUID"),
            col("first_name", lc),
            col("last_name", lc),
            col("middle_name", lc),
            Col {
                name: "timestamp",
                // ISO-8601 text on the topic; an unparsable one becomes the zero time rather
                // than an exception that would stop the view.
                queue: Some("String".into()),
                storage: Some(time.into()),
                select: dialect
                    .pick(
                        "parseDateTimeBestEffortOrZero(timestamp, 'UTC')",
                        "parseDateTime64BestEffortOrZero(timestamp, 3, 'UTC')",
                    )
                    .into(),
            },
        ],
    };
    if dialect == Dialect::Modern {
        cols.extend(source_columns());
    }
    cols.push(Col {
        name: "ingested_at",
        queue: None,
        storage: Some("DateTime('UTC')".into()),
        select: "now()".into(),
    });
    cols
}

/// Where each row came from (only servers with the Kafka virtual columns).
fn source_columns() -> Vec<Col> {
    let src = |name, ty: &str, select: &str| Col {
        name,
        queue: None,
        storage: Some(ty.into()),
        select: select.into(),
    };
    vec![
        src("kafka_topic", "LowCardinality(String)", "_topic"),
        src("kafka_partition", "Int32", "toInt32(_partition)"),
        src("kafka_offset", "Int64", "toInt64(_offset)"),
        src(
            "kafka_timestamp",
            "Nullable(DateTime64(3, 'UTC'))",
            "_timestamp_ms",
        ),
    ]
}

pub(super) fn errors_columns() -> Vec<Col> {
    let mut cols = source_columns();
    let extra = [
        ("raw_message", "String", "_raw_message"),
        (
            "error",
            "String",
            "if(length(_error) > 0, _error, 'valid JSON without an id or a time')",
        ),
        ("received_at", "DateTime('UTC')", "now()"),
    ];
    cols.extend(extra.map(|(name, ty, select)| Col {
        name,
        queue: None,
        storage: Some(ty.into()),
        select: select.into(),
    }));
    cols
}

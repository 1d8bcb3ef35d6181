//! Parquet writer properties and encoding of a RecordBatch into one file's bytes.

use std::str::FromStr;

use arrow::array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Encoding, GzipLevel, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// Codec of the lake's Parquet files (`--compression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// zstd at the given level (1..=22); the default is level 1 (measured smaller and faster
    /// than 3 on the lake's columns: docs/performance.md).
    Zstd(i32),
    Snappy,
    Lz4,
    Gzip,
    None,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd(1)
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (s, None),
        };
        match (name.to_ascii_lowercase().as_str(), level) {
            ("zstd", None) => Ok(Compression::default()),
            ("zstd", Some(l)) => match l.parse::<i32>() {
                Ok(l) if (1..=22).contains(&l) => Ok(Compression::Zstd(l)),
                _ => Err(format!("zstd level `{l}` is not in 1..=22")),
            },
            ("snappy", None) => Ok(Compression::Snappy),
            ("lz4", None) => Ok(Compression::Lz4),
            ("gzip", None) => Ok(Compression::Gzip),
            ("none" | "uncompressed", None) => Ok(Compression::None),
            _ => Err(format!(
                "unknown compression `{s}` (zstd, zstd:LEVEL, snappy, lz4, gzip, none)"
            )),
        }
    }
}

impl Compression {
    fn codec(self) -> parquet::basic::Compression {
        use parquet::basic::Compression as C;
        match self {
            Compression::Zstd(l) => C::ZSTD(ZstdLevel::try_new(l).unwrap_or_default()),
            Compression::Snappy => C::SNAPPY,
            Compression::Lz4 => C::LZ4_RAW,
            Compression::Gzip => C::GZIP(GzipLevel::default()),
            Compression::None => C::UNCOMPRESSED,
        }
    }
}

/// Properties of every lake file: the chosen codec, dictionary encoding, chunk statistics on
/// the columns one filters by ranges (so that query engines can prune by metadata), one row
/// group per file for batches up to a million rows.
pub fn writer_properties(compression: Compression) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(compression.codec())
        .set_dictionary_enabled(true);
    // Unique or nearly unique per row: a dictionary is built, overflows and is thrown away
    // (hashing every value for nothing). Offsets and times grow: deltas pack them in bits.
    b = b.set_column_dictionary_enabled(ColumnPath::from("event_id"), false);
    for column in ["kafka_offset", "event_time", "kafka_timestamp"] {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_encoding(ColumnPath::from(column), Encoding::DELTA_BINARY_PACKED);
    }
    // Random ids and addresses: their min/max prunes nothing (every file spans nearly the
    // whole range) and comparing every value cost ~15 % of the encoding.
    for column in [
        "event_id",
        "user_id",
        "session_id",
        "platform_token",
        "ipv4",
    ] {
        b = b.set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    b.set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_size(1 << 20)
        .set_created_by(format!("encore {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Encodes one batch as a complete Parquet file in memory.
pub fn encode(batch: &RecordBatch, props: &WriterProperties) -> Result<Bytes, ParquetError> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() / 4);
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(props.clone()))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codecs() {
        assert_eq!("zstd".parse::<Compression>(), Ok(Compression::Zstd(1)));
        assert_eq!("ZSTD:9".parse::<Compression>(), Ok(Compression::Zstd(9)));
        assert_eq!("snappy".parse::<Compression>(), Ok(Compression::Snappy));
        assert!("zstd:99".parse::<Compression>().is_err());
        assert!("brotli".parse::<Compression>().is_err());
    }
}

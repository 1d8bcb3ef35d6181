//! Object names in the lake: deterministic from the source offsets, never random.
//!
//! ```text
//! <root>/<table>/date=YYYY-MM-DD/p<partition:05>-<first:020>-<last:020>.parquet   data
//! <root>/_encore/<table>/commits/p<partition:05>/<first:020>-<last:020>.json       commit markers
//! <root>/_encore/<table>/pending/p<partition:05>/<first:020>-<last:020>.json       write intents
//! ```
//! Zero padding makes lexical order equal offset order. Everything that is not data lives under
//! `_encore/`, which duckdb, pyarrow and Spark skip.

use chrono::NaiveDate;
use object_store::path::Path;

/// Directory (under the lake root) of encore's own bookkeeping.
pub const META_DIR: &str = "_encore";

/// A contiguous offset range of one source partition: the unit of a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    pub partition: i32,
    pub first: i64,
    pub last: i64,
}

impl Range {
    pub fn len(&self) -> u64 {
        (self.last - self.first + 1) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }

    fn stem(&self) -> String {
        format!("{:020}-{:020}", self.first, self.last)
    }
}

/// A table (topic) or bucket name that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("`{0}` is not a valid topic/table name (1-249 characters of A-Z a-z 0-9 . _ -)")]
    Table(String),
    #[error("`{0}` starts with `_` or `.`: lake readers would skip its files")]
    Hidden(String),
    #[error("`{name}` is not a valid S3 bucket name: {why}")]
    Bucket { name: String, why: &'static str },
}

/// Validates a table (topic) name for use as a path segment: 1..=249 characters of
/// `[A-Za-z0-9._-]`, not starting with `_` or `.` (readers would skip it), as Kafka topic
/// names.
pub fn validate_table(name: &str) -> Result<(), InvalidName> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > 249 || !ok_chars {
        return Err(InvalidName::Table(name.to_string()));
    }
    if name.starts_with('_') || name.starts_with('.') {
        return Err(InvalidName::Hidden(name.to_string()));
    }
    Ok(())
}

/// S3's bucket naming rules: 3-63 characters of a-z 0-9 . -, starting and ending with a letter
/// or digit, no `..`, not an IP address. Checked before any request names the bucket.
pub fn validate_bucket(name: &str) -> Result<(), InvalidName> {
    let bad = |why| {
        Err(InvalidName::Bucket {
            name: name.to_string(),
            why,
        })
    };
    if !(3..=63).contains(&name.len()) {
        return bad("it must have 3 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("only lower-case letters, digits, `.` and `-` are allowed");
    }
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge(name.as_bytes()[0]) || !edge(name.as_bytes()[name.len() - 1]) {
        return bad("it must start and end with a letter or a digit");
    }
    if name.contains("..") {
        return bad("it must not contain `..`");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("it must not look like an IP address");
    }
    Ok(())
}

pub fn date_dir(date: NaiveDate) -> String {
    format!("date={}", date.format("%Y-%m-%d"))
}

pub fn data_file_name(r: &Range) -> String {
    format!("p{:05}-{}.parquet", r.partition, r.stem())
}

/// Parses a data file name back into its range; `None` for anything else.
pub fn parse_data_file_name(name: &str) -> Option<Range> {
    let rest = name.strip_prefix('p')?.strip_suffix(".parquet")?;
    let mut it = rest.split('-');
    let partition = it.next()?.parse().ok()?;
    let first = it.next()?.parse().ok()?;
    let last = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some(Range {
        partition,
        first,
        last,
    })
}

/// Parses a marker or intent file name (`<first>-<last>.json`).
pub fn parse_marker_name(partition: i32, name: &str) -> Option<Range> {
    let rest = name.strip_suffix(".json")?;
    let (first, last) = rest.split_once('-')?;
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    // A range runs forwards; anything else is not a marker encore wrote.
    (first <= last).then_some(Range {
        partition,
        first,
        last,
    })
}

/// Joins path segments under a root.
pub fn join(root: &Path, parts: &[&str]) -> Path {
    parts.iter().fold(root.clone(), |p, s| p.child(*s))
}

pub fn table_dir(root: &Path, table: &str) -> Path {
    join(root, &[table])
}

pub fn data_path(root: &Path, table: &str, date: NaiveDate, r: &Range) -> Path {
    join(root, &[table, &date_dir(date), &data_file_name(r)])
}

fn partition_dir(partition: i32) -> String {
    format!("p{partition:05}")
}

pub fn commits_dir(root: &Path, table: &str, partition: i32) -> Path {
    join(
        root,
        &[META_DIR, table, "commits", &partition_dir(partition)],
    )
}

pub fn pending_dir(root: &Path, table: &str, partition: i32) -> Path {
    join(
        root,
        &[META_DIR, table, "pending", &partition_dir(partition)],
    )
}

pub fn marker_path(root: &Path, table: &str, r: &Range) -> Path {
    commits_dir(root, table, r.partition).child(format!("{}.json", r.stem()))
}

pub fn intent_path(root: &Path, table: &str, r: &Range) -> Path {
    pending_dir(root, table, r.partition).child(format!("{}.json", r.stem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-lake.2026", "a".repeat(63).as_str()] {
            assert!(validate_bucket(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Upper",
            "under_score",
            "-edge",
            "edge-",
            "a..b",
            "192.168.1.1",
            "sl/ash",
            "a b",
            "a".repeat(64).as_str(),
        ] {
            assert!(validate_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_deterministic_sortable_and_parse_back() {
        let r = Range {
            partition: 3,
            first: 0,
            last: 49_999,
        };
        let name = data_file_name(&r);
        assert_eq!(
            name,
            "p00003-00000000000000000000-00000000000000049999.parquet"
        );
        assert_eq!(parse_data_file_name(&name), Some(r));
        let later = Range {
            partition: 3,
            first: 50_000,
            last: 1_000_000,
        };
        assert!(
            data_file_name(&later) > name,
            "lexical order is offset order"
        );
        assert_eq!(parse_data_file_name("part-0.parquet"), None);
        assert_eq!(parse_data_file_name("p1-2-3-4.parquet"), None);
        assert_eq!(r.len(), 50_000);
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let root = Path::from("dev");
        assert_eq!(
            data_path(&root, "music_events", d, &r).as_ref(),
            "dev/music_events/date=2026-11-25/p00003-00000000000000000000-00000000000000049999.parquet"
        );
        assert_eq!(
            marker_path(&root, "music_events", &r).as_ref(),
            "dev/_encore/music_events/commits/p00003/00000000000000000000-00000000000000049999.json"
        );
        assert_eq!(
            parse_marker_name(3, "00000000000000000000-00000000000000049999.json"),
            Some(r)
        );
    }

    #[test]
    fn table_names_are_validated() {
        assert!(validate_table("music_events").is_ok());
        assert!(validate_table("my-topic.v2").is_ok());
        for bad in ["", "_hidden", ".dot", "a/b", "a b", "ü", &"x".repeat(250)] {
            assert!(validate_table(bad).is_err(), "{bad:?}");
        }
    }
}

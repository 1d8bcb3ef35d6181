//! Object names in the lake: deterministic from the source offsets, never random.
//!
//! ```text
//! <root>/<table>/date=YYYY-MM-DD/p<partition:05>-<first:020>-<last:020>-e<epoch>.parquet  data
//! <root>/_encore/<table>/commits/p<partition:05>/<first:020>.json                         commit markers
//! <root>/_encore/<table>/pending/p<partition:05>/<first:020>-<last:020>-e<epoch>.json     write intents
//! <root>/_encore/<table>/claims/p<partition:05>/<epoch:020>.json                          ownership claims
//! <root>/_encore/<table>/checkpoints/p<partition:05>.json                                 where finding the end starts
//! <root>/_encore/<table>/manifests/p<partition:05>/<first:020>.json                       copies of many markers
//! ```
//! Zero padding makes lexical order equal offset order. A commit marker is named by the first
//! offset of its range alone, so two writers that continue a partition from the same point
//! contend for the same name (created only if absent); data files and intents carry the
//! writer's epoch, so no writer ever overwrites or deletes another's. Lakes written before
//! epochs (markers `<first>-<last>.json`, data without `-e<epoch>`) are still read.
//! Everything that is not data lives under `_encore/`, which duckdb, pyarrow and Spark skip.

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

/// The name of the data file a writer of `epoch` gives its batch `r` (epoch 0: a lake written
/// before epochs).
pub fn data_file_name(r: &Range, epoch: u64) -> String {
    match epoch {
        0 => format!("p{:05}-{}.parquet", r.partition, r.stem()),
        e => format!("p{:05}-{}-e{e}.parquet", r.partition, r.stem()),
    }
}

/// Parses a data file name back into its range; `None` for anything else.
pub fn parse_data_file_name(name: &str) -> Option<Range> {
    let rest = name.strip_prefix('p')?.strip_suffix(".parquet")?;
    let mut it = rest.split('-');
    let partition = it.next()?.parse().ok()?;
    let first = it.next()?.parse().ok()?;
    let last = it.next()?.parse().ok()?;
    if let Some(epoch) = it.next() {
        epoch.strip_prefix('e')?.parse::<u64>().ok()?;
    }
    if it.next().is_some() {
        return None;
    }
    Some(Range {
        partition,
        first,
        last,
    })
}

/// A commit marker's name: `<first>.json`, or `<first>-<last>.json` before epochs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MarkerName {
    pub first: i64,
    /// Only in names written before epochs.
    pub last: Option<i64>,
}

impl MarkerName {
    /// The marker of the range starting at `first`, as named since epochs.
    pub fn at(first: i64) -> MarkerName {
        MarkerName { first, last: None }
    }
}

/// Parses a commit marker's file name.
pub fn parse_marker_name(name: &str) -> Option<MarkerName> {
    let rest = name.strip_suffix(".json")?;
    let Some((first, last)) = rest.split_once('-') else {
        return Some(MarkerName {
            first: rest.parse().ok()?,
            last: None,
        });
    };
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    // A range runs forwards; anything else is not a marker encore wrote.
    (first <= last).then_some(MarkerName {
        first,
        last: Some(last),
    })
}

/// An intent's name: the range and the epoch of its writer (0 before epochs).
pub fn parse_intent_name(partition: i32, name: &str) -> Option<(Range, u64)> {
    let rest = name.strip_suffix(".json")?;
    let mut it = rest.split('-');
    let first = it.next()?.parse().ok()?;
    let last = it.next()?.parse().ok()?;
    let epoch = match it.next() {
        Some(e) => e.strip_prefix('e')?.parse().ok()?,
        None => 0,
    };
    if it.next().is_some() || first > last {
        return None;
    }
    let r = Range {
        partition,
        first,
        last,
    };
    Some((r, epoch))
}

/// Parses a claim's file name (its epoch).
pub fn parse_claim_name(name: &str) -> Option<u64> {
    name.strip_suffix(".json")?.parse().ok()
}

/// Joins path segments under a root.
pub fn join(root: &Path, parts: &[&str]) -> Path {
    parts.iter().fold(root.clone(), |p, s| p.child(*s))
}

pub fn table_dir(root: &Path, table: &str) -> Path {
    join(root, &[table])
}

pub fn data_path(root: &Path, table: &str, date: NaiveDate, r: &Range, epoch: u64) -> Path {
    join(root, &[table, &date_dir(date), &data_file_name(r, epoch)])
}

fn partition_dir(partition: i32) -> String {
    format!("p{partition:05}")
}

fn meta_dir(root: &Path, table: &str, kind: &str, partition: i32) -> Path {
    join(root, &[META_DIR, table, kind, &partition_dir(partition)])
}

pub fn commits_dir(root: &Path, table: &str, partition: i32) -> Path {
    meta_dir(root, table, "commits", partition)
}

pub fn pending_dir(root: &Path, table: &str, partition: i32) -> Path {
    meta_dir(root, table, "pending", partition)
}

pub fn manifests_dir(root: &Path, table: &str, partition: i32) -> Path {
    meta_dir(root, table, "manifests", partition)
}

/// Copies of the markers of consecutive commits from `first` on.
pub fn manifest_path(root: &Path, table: &str, partition: i32, first: i64) -> Path {
    manifests_dir(root, table, partition).child(format!("{first:020}.json"))
}

pub fn claims_dir(root: &Path, table: &str, partition: i32) -> Path {
    meta_dir(root, table, "claims", partition)
}

/// The marker of the range that starts at `first`: the name writers contend for.
pub fn marker_path(root: &Path, table: &str, partition: i32, first: i64) -> Path {
    commits_dir(root, table, partition).child(format!("{first:020}.json"))
}

/// The name a lake written before epochs gave the marker of `r`.
pub fn legacy_marker_path(root: &Path, table: &str, r: &Range) -> Path {
    commits_dir(root, table, r.partition).child(format!("{}.json", r.stem()))
}

pub fn intent_path(root: &Path, table: &str, r: &Range, epoch: u64) -> Path {
    pending_dir(root, table, r.partition).child(format!("{}-e{epoch}.json", r.stem()))
}

pub fn claim_path(root: &Path, table: &str, partition: i32, epoch: u64) -> Path {
    claims_dir(root, table, partition).child(format!("{epoch:020}.json"))
}

pub fn checkpoint_path(root: &Path, table: &str, partition: i32) -> Path {
    join(
        root,
        &[
            META_DIR,
            table,
            "checkpoints",
            &format!("{}.json", partition_dir(partition)),
        ],
    )
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
        let name = data_file_name(&r, 7);
        assert_eq!(
            name,
            "p00003-00000000000000000000-00000000000000049999-e7.parquet"
        );
        assert_eq!(parse_data_file_name(&name), Some(r));
        // Lakes written before epochs.
        let legacy = data_file_name(&r, 0);
        assert_eq!(
            legacy,
            "p00003-00000000000000000000-00000000000000049999.parquet"
        );
        assert_eq!(parse_data_file_name(&legacy), Some(r));
        let later = Range {
            partition: 3,
            first: 50_000,
            last: 1_000_000,
        };
        assert!(
            data_file_name(&later, 1) > name,
            "lexical order is offset order"
        );
        assert_eq!(parse_data_file_name("part-0.parquet"), None);
        assert_eq!(parse_data_file_name("p1-2-3-4.parquet"), None);
        assert_eq!(parse_data_file_name("p1-2-3-e4-5.parquet"), None);
        assert_eq!(r.len(), 50_000);
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let root = Path::from("dev");
        assert_eq!(
            data_path(&root, "music_events", d, &r, 2).as_ref(),
            "dev/music_events/date=2026-11-25/p00003-00000000000000000000-00000000000000049999-e2.parquet"
        );
        assert_eq!(
            marker_path(&root, "music_events", 3, 0).as_ref(),
            "dev/_encore/music_events/commits/p00003/00000000000000000000.json"
        );
        assert_eq!(
            parse_marker_name("00000000000000000000.json"),
            Some(MarkerName {
                first: 0,
                last: None
            })
        );
        assert_eq!(
            parse_marker_name("00000000000000000000-00000000000000049999.json"),
            Some(MarkerName {
                first: 0,
                last: Some(49_999)
            })
        );
        assert_eq!(parse_marker_name("9-3.json"), None);
        let intent = intent_path(&root, "music_events", &r, 5);
        assert_eq!(
            parse_intent_name(3, intent.filename().unwrap()),
            Some((r, 5))
        );
        assert_eq!(
            parse_intent_name(3, "00000000000000000000-00000000000000049999.json"),
            Some((r, 0))
        );
        let claim = claim_path(&root, "music_events", 3, 12);
        assert_eq!(parse_claim_name(claim.filename().unwrap()), Some(12));
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

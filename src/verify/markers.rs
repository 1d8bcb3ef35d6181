//! The commit markers: which files, offset ranges, rows and rejected records the lake should
//! hold, and which source wrote them, so that a topic deleted and created again under the same
//! name is told apart from the one the lake was written from.

use std::collections::{BTreeMap, BTreeSet};

use super::coverage::Span;
use super::files::DataFile;
use super::report::Report;
use super::{VerifyError, blocking, source_error};
use crate::kafka::KafkaConnection;
use crate::lake::{CommitMarker, Lake, Range};

/// One commit: the offsets it covers and what its marker lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Commit {
    pub span: Span,
    /// Data rows.
    pub rows: u64,
    /// Records rejected as not valid events (they go to the dead-letter topic).
    pub rejected: u64,
    /// The offsets of the rejected records the marker lists.
    pub rejected_offsets: Vec<i64>,
}

/// What the commit markers say should be in the lake.
#[derive(Default)]
pub(super) struct Committed {
    /// Each committed data file (`<table>/date=…/p….parquet`) and its commit's range.
    pub files: BTreeMap<String, Range>,
    /// Per Kafka partition, its commits in the order they were read.
    pub ranges: BTreeMap<i32, Vec<Commit>>,
    /// Which sources wrote the markers (a topic deleted and created again is another source).
    pub sources: BTreeSet<String>,
}

impl Committed {
    fn add(&mut self, r: Range, m: CommitMarker) {
        self.ranges.entry(r.partition).or_default().push(Commit {
            span: (r.first, r.last),
            rows: m.rows,
            rejected: m.rejected_count,
            rejected_offsets: m.rejected.iter().map(|x| x.offset).collect(),
        });
        self.files.extend(m.files.into_iter().map(|f| (f.path, r)));
    }

    /// Whether `file`, which no marker read before listed, was committed since; its commit is
    /// then added.
    pub async fn committed_late(&mut self, lake: &Lake, file: &DataFile<'_>) -> bool {
        let Some(r) = file.named else {
            return false;
        };
        match lake.read_marker(&r).await {
            Ok(m) if m.files.iter().any(|f| f.path == file.lake_path) => {
                self.add(m.range(), m);
                true
            }
            _ => false,
        }
    }
}

/// Reads every commit marker; an unreadable one is a problem.
pub(super) async fn read(lake: &Lake, report: &mut Report) -> Result<Committed, VerifyError> {
    let mut committed = Committed::default();
    for p in lake.committed_partitions().await? {
        // One read per manifest (a few hundred commits) and per marker no manifest copies.
        for marker in lake.each_committed_marker(p).await? {
            match marker {
                Ok(m) => {
                    committed.sources.insert(m.source.clone());
                    committed.add(m.range(), m);
                }
                Err(e) => report.problem("marker", "commit marker", e.to_string()),
            }
        }
    }
    Ok(committed)
}

/// With `--brokers`: the markers' topic ids against the topic's current one.
pub(super) async fn check_topic(
    cfg: &KafkaConnection,
    topic: &str,
    sources: &BTreeSet<String>,
    report: &mut Report,
) -> Result<(), VerifyError> {
    // The topic's identity as the sink writes it into markers (`kafka:CLUSTER/TOPIC#ID`).
    let (cfg, name) = (cfg.clone(), topic.to_string());
    let current = blocking(move || crate::kafka::source_identity(&cfg, &name))
        .await?
        .map_err(source_error)?;
    let now = current.split_once('#').map_or("?", |x| x.1);
    for id in recreated_from(sources, &current) {
        report.problem(
            "topic_recreated",
            format!("topic {topic}"),
            format!(
                "the lake holds records of topic id {id}, the topic now has id {now}: it was deleted and created again, so its offsets are another topic's"
            ),
        );
    }
    Ok(())
}

/// Topic ids in the markers' sources that are not the topic's current id (same cluster and
/// name: the topic was deleted and created again).
fn recreated_from(marker_sources: &BTreeSet<String>, current: &str) -> Vec<String> {
    let Some((base, id)) = current.split_once('#') else {
        return Vec::new();
    };
    marker_sources
        .iter()
        .filter_map(|s| s.split_once('#'))
        .filter(|(b, old)| *b == base && *old != id)
        .map(|(_, old)| old.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recreated_topics_are_told_by_their_ids() {
        let sources: BTreeSet<String> =
            ["kafka:C/t#OLD", "kafka:C/t#NEW", "kafka:C/t", "kafka:D/t#X"]
                .into_iter()
                .map(String::from)
                .collect();
        assert_eq!(recreated_from(&sources, "kafka:C/t#NEW"), ["OLD"]);
        assert!(recreated_from(&sources, "kafka:C/t").is_empty());
        // Markers of the current topic only: nothing recreated.
        let same = BTreeSet::from(["kafka:C/t#NEW".to_string()]);
        assert!(recreated_from(&same, "kafka:C/t#NEW").is_empty());
    }

    #[test]
    fn a_commit_lists_its_files_rows_and_rejects() {
        let rejected = |offset| crate::lake::Rejected {
            offset,
            reason: "bad_json".into(),
        };
        let marker = CommitMarker {
            version: 1,
            table: "t".into(),
            source: "kafka:C/t#ID".into(),
            partition: 3,
            first_offset: 10,
            last_offset: 14,
            epoch: 1,
            rows: 3,
            rejected_count: 2,
            rejected: vec![rejected(11), rejected(13)],
            files: vec![crate::lake::FileEntry {
                path: "t/date=2026-01-01/f".into(),
                date: "2026-01-01".into(),
                rows: 3,
                bytes: 1,
                min_event_time_ms: 0,
                max_event_time_ms: 0,
            }],
            committed_at_ms: 0,
        };
        let mut c = Committed::default();
        c.add(marker.range(), marker);
        assert_eq!(
            c.ranges[&3],
            [Commit {
                span: (10, 14),
                rows: 3,
                rejected: 2,
                rejected_offsets: vec![11, 13],
            }]
        );
        assert_eq!(c.files["t/date=2026-01-01/f"].first, 10);
    }
}

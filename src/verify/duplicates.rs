//! Event ids held more than once across the lake: a row held twice is an overlap (found per
//! partition), anything beyond is the topic's replay of an event at another offset, a note.

use super::report::Report;
use super::uuid_text;

/// Extra copies of event ids across the lake.
#[derive(Debug, Default, PartialEq)]
pub(super) struct DuplicateIds {
    copies: u64,
    /// The first few ids held more than once.
    examples: Vec<u128>,
}

/// Sorts and deduplicates `ids`, counting what it removes.
pub(super) fn dedup_ids(ids: &mut Vec<u128>, list: usize) -> DuplicateIds {
    ids.sort_unstable();
    let mut d = DuplicateIds::default();
    for w in ids.windows(2).filter(|w| w[0] == w[1]) {
        d.copies += 1;
        if d.examples.len() < list && d.examples.last() != Some(&w[0]) {
            d.examples.push(w[0]);
        }
    }
    ids.dedup();
    d
}

/// A row held twice (same partition and offset) is also an id held twice: the overlap problem
/// names it. Ids beyond that are the same event at different offsets: the topic holds it more
/// than once (a producer retried or replayed it), and the lake, which keeps every record once,
/// does too.
pub(super) fn note_replays(dups: &DuplicateIds, offset_copies: u64, report: &mut Report) {
    let replays = dups.copies.saturating_sub(offset_copies);
    if replays == 0 {
        return;
    }
    let ex: Vec<String> = dups.examples.iter().map(|i| uuid_text(*i)).collect();
    report.replayed_events = replays;
    report.notes.push(format!(
        "{replays} events are in the topic more than once, at different offsets (replays; ClickHouse keeps one copy), e.g. {}",
        ex.join(", ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_ids_and_replays() {
        let mut ids = vec![5, 1, 5, 3, 1, 5];
        let d = dedup_ids(&mut ids, 10);
        assert_eq!(ids, [1, 3, 5]);
        assert_eq!(
            d,
            DuplicateIds {
                copies: 3,
                examples: vec![1, 5]
            }
        );
        let mut report = Report::default();
        // Two of the copies are rows held twice (overlaps): one replay remains.
        note_replays(&d, 2, &mut report);
        assert_eq!(report.replayed_events, 1);
        assert!(report.notes[0].starts_with("1 events are in the topic more than once"));
        let mut clean = Report::default();
        note_replays(&d, 3, &mut clean);
        assert!(clean.notes.is_empty() && clean.replayed_events == 0);
    }
}

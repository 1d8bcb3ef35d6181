//! Pure reconciliation logic of `encore verify`: which offsets of a partition the lake holds,
//! where they leave gaps or overlap, how that compares with the topic's watermarks, and how two
//! sets of event ids differ. No I/O; unit-tested here.

use serde::Serialize;

/// An inclusive offset range.
pub type Span = (i64, i64);

/// What the lake holds of one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Maximal runs of consecutive offsets, in order.
    pub ranges: Vec<Span>,
    /// Offsets held more than once (first few), and how many such extra copies in all.
    pub duplicated: Vec<i64>,
    pub duplicate_copies: u64,
}

/// Summarises the offsets found (any order, duplicates allowed); `list` bounds the examples.
pub fn coverage(mut offsets: Vec<i64>, list: usize) -> Coverage {
    offsets.sort_unstable();
    let mut c = Coverage::default();
    let mut prev: Option<i64> = None;
    for o in offsets {
        match prev {
            Some(p) if p == o => {
                c.duplicate_copies += 1;
                if c.duplicated.len() < list && c.duplicated.last() != Some(&o) {
                    c.duplicated.push(o);
                }
                continue;
            }
            Some(p) if p.checked_add(1) == Some(o) => {
                if let Some(last) = c.ranges.last_mut() {
                    last.1 = o;
                }
            }
            _ => c.ranges.push((o, o)),
        }
        prev = Some(o);
    }
    c
}

/// The holes between consecutive ranges.
pub fn gaps(ranges: &[Span]) -> Vec<Span> {
    ranges
        .windows(2)
        .filter(|w| w[1].0 > w[0].1.saturating_add(1))
        .map(|w| (w[0].1 + 1, w[1].0 - 1))
        .collect()
}

/// One partition of the lake against the topic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PartitionCheck {
    pub partition: i32,
    pub low: i64,
    /// The next offset to be written.
    pub high: i64,
    /// Records of the topic missing from the lake, before its last held offset.
    pub gaps: Vec<Span>,
    /// Records after the lake's last held offset: not flushed yet, not missing.
    pub in_flight: Option<Span>,
    /// Offsets the lake holds that the topic never had.
    pub beyond: Option<Span>,
    /// Records the topic deleted (retention) before the lake had them: after the lake's last
    /// offset and before the topic's low watermark.
    pub lost: Option<Span>,
}

/// Merges ranges that touch or overlap (input sorted by start).
pub fn merge(ranges: impl IntoIterator<Item = Span>) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.0 <= last.1.saturating_add(1) => last.1 = last.1.max(r.1),
            _ => out.push(r),
        }
    }
    out
}

/// Compares the committed ranges of a partition (sorted, merged) with the topic's
/// `[low, high)`. Holes between ranges are gaps wherever they are; a lake that starts after
/// `low` misses the start; what lies after the last range is in flight; ranges past `high` do
/// not belong to this topic; and a lake that ends before `low` lost what retention deleted.
pub fn against_topic(partition: i32, ranges: &[Span], low: i64, high: i64) -> PartitionCheck {
    let mut check = PartitionCheck {
        partition,
        low,
        high,
        ..PartitionCheck::default()
    };
    if let Some(first) = ranges.first()
        && first.0 > low
    {
        check.gaps.push((low, first.0.min(high) - 1));
    }
    check.gaps.extend(gaps(ranges));
    check.gaps.retain(|g| g.0 <= g.1);
    let held_end = ranges
        .last()
        .map_or(low, |r| r.1.saturating_add(1))
        .max(low);
    if held_end < high {
        check.in_flight = Some((held_end, high - 1));
    }
    if let Some(r) = ranges.iter().find(|r| r.1 >= high) {
        check.beyond = Some((r.0.max(high), ranges.last().map_or(r.1, |l| l.1)));
    }
    if let Some(last) = ranges.last()
        && last.1.saturating_add(1) < low
    {
        check.lost = Some((last.1 + 1, low - 1));
    }
    check
}

/// The ids only in `a` and only in `b` (both sorted and deduplicated): counts and the first
/// `list` of each.
pub fn difference(a: &[u128], b: &[u128], list: usize) -> ((u64, Vec<u128>), (u64, Vec<u128>)) {
    let (mut i, mut j) = (0, 0);
    let (mut only_a, mut only_b) = ((0u64, Vec::new()), (0u64, Vec::new()));
    let note = |side: &mut (u64, Vec<u128>), id: u128| {
        side.0 += 1;
        if side.1.len() < list {
            side.1.push(id);
        }
    };
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                note(&mut only_a, *x);
                i += 1;
            }
            (Some(_), Some(y)) => {
                note(&mut only_b, *y);
                j += 1;
            }
            (Some(x), None) => {
                note(&mut only_a, *x);
                i += 1;
            }
            (None, Some(y)) => {
                note(&mut only_b, *y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (only_a, only_b)
}

/// `a-b`, or `a` for a single offset.
pub fn span(s: Span) -> String {
    if s.0 == s.1 {
        s.0.to_string()
    } else {
        format!("{}-{}", s.0, s.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_finds_runs_and_duplicates() {
        let c = coverage(vec![5, 3, 4, 9, 10, 4, 12, 4], 10);
        assert_eq!(c.ranges, [(3, 5), (9, 10), (12, 12)]);
        assert_eq!(c.duplicated, [4]);
        assert_eq!(c.duplicate_copies, 2);
        assert_eq!(gaps(&c.ranges), [(6, 8), (11, 11)]);
        assert_eq!(coverage(vec![], 10), Coverage::default());
    }

    #[test]
    fn against_the_topic_gaps_in_flight_and_beyond() {
        // Held 0-99 and 200-299 of [0, 400): a gap, then records not flushed yet.
        let c = against_topic(2, &[(0, 99), (200, 299)], 0, 400);
        assert_eq!(c.gaps, [(100, 199)]);
        assert_eq!(c.in_flight, Some((300, 399)));
        assert_eq!(c.beyond, None);
        // Fully caught up.
        let c = against_topic(0, &[(0, 399)], 0, 400);
        assert!(c.gaps.is_empty() && c.in_flight.is_none() && c.beyond.is_none());
        // A hole is a gap even below the low watermark; retention below low is fine.
        let c = against_topic(0, &[(0, 49), (80, 199)], 100, 300);
        assert_eq!(c.gaps, [(50, 79)]);
        let c = against_topic(0, &[(0, 199)], 100, 300);
        assert!(c.gaps.is_empty());
        // The lake starts after the topic's first record.
        let c = against_topic(0, &[(30, 99)], 10, 100);
        assert_eq!(c.gaps, [(10, 29)]);
        // Nothing in the lake yet: all in flight, no gap.
        let c = against_topic(1, &[], 0, 50);
        assert!(c.gaps.is_empty());
        assert_eq!(c.in_flight, Some((0, 49)));
        // The lake claims offsets the topic never had, from the first such range on.
        let c = against_topic(1, &[(0, 59)], 0, 50);
        assert_eq!(c.beyond, Some((50, 59)));
        let c = against_topic(1, &[(500, 510), (600, 610)], 0, 400);
        assert_eq!(c.beyond, Some((500, 610)));
        // Retention deleted 100-149 before the lake had them.
        let c = against_topic(0, &[(0, 99)], 150, 200);
        assert_eq!(c.lost, Some((100, 149)));
        assert_eq!(c.in_flight, Some((150, 199)));
        assert!(c.gaps.is_empty());
        // Huge offsets do not overflow.
        let c = against_topic(0, &[(0, i64::MAX)], 0, 10);
        assert_eq!(c.beyond, Some((10, i64::MAX)));
        // Empty topic, empty lake.
        assert_eq!(against_topic(3, &[], 0, 0).in_flight, None);
        assert_eq!(
            merge([(0, 9), (10, 19), (30, 39), (35, 50)]),
            [(0, 19), (30, 50)]
        );
    }

    #[test]
    fn id_differences_both_ways() {
        let ((na, a), (nb, b)) = difference(&[1, 2, 4, 7], &[2, 3, 4, 8, 9], 2);
        assert_eq!((na, a), (2, vec![1, 7]));
        assert_eq!((nb, b), (3, vec![3, 8]));
        assert_eq!(difference(&[], &[], 5), ((0, vec![]), (0, vec![])));
        assert_eq!(span((4, 4)), "4");
        assert_eq!(span((4, 9)), "4-9");
    }
}

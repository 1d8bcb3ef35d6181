//! Where `encore tail` starts reading each partition (`-o`), with kcat's conventions.

use std::str::FromStr;

/// A start position as given with `-o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartSpec {
    /// The first record each partition still holds (its low watermark).
    Beginning,
    /// The end of each partition at start: only records written after it.
    End,
    /// This offset in every partition read, kept within what the partition holds.
    Offset(i64),
    /// This many records before the end of each partition.
    BeforeEnd(i64),
    /// The first record stamped at or after this time (ms since the epoch).
    Time(i64),
}

const FORMS: &str = "beginning, end, an offset N, -N (N before the end), s@MS (a time in ms \
                     since the epoch) or an RFC 3339 time such as 2026-01-01T00:00:00Z";

impl FromStr for StartSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let bad = || format!("`{s}` is not a start position: use {FORMS}");
        match t {
            "beginning" | "earliest" => return Ok(StartSpec::Beginning),
            "end" | "latest" => return Ok(StartSpec::End),
            // kcat's `stored` is a group's committed offset; tail never uses a group.
            "stored" => {
                return Err(format!(
                    "`stored` needs a consumer group, and tail reads without one: use {FORMS}"
                ));
            }
            _ => {}
        }
        if let Some(ms) = t.strip_prefix("s@") {
            return number(ms).map(StartSpec::Time).ok_or_else(bad);
        }
        if let Some(n) = t.strip_prefix('-') {
            return number(n).map(StartSpec::BeforeEnd).ok_or_else(bad);
        }
        if let Some(o) = number(t) {
            return Ok(StartSpec::Offset(o));
        }
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| StartSpec::Time(d.timestamp_millis()))
            .map_err(|_| bad())
    }
}

/// A non-negative decimal number (no sign, no spaces).
fn number(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// For clap.
pub fn parse_start(s: &str) -> Result<StartSpec, String> {
    s.parse()
}

impl StartSpec {
    /// The first offset to read in a partition holding `low..high`. `at_time`: the offset
    /// Kafka gives for [`StartSpec::Time`] (None: no record at or after that time).
    pub fn resolve(self, low: i64, high: i64, at_time: Option<i64>) -> i64 {
        let o = match self {
            StartSpec::Beginning => low,
            StartSpec::End => high,
            StartSpec::Offset(o) => o,
            StartSpec::BeforeEnd(n) => high.saturating_sub(n),
            StartSpec::Time(_) => at_time.unwrap_or(high),
        };
        // Outside the partition librdkafka would apply auto.offset.reset; the nearest end is
        // what the user asked for.
        o.clamp(low, high.max(low))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse() {
        let p = |s: &str| s.parse::<StartSpec>();
        assert_eq!(p("beginning"), Ok(StartSpec::Beginning));
        assert_eq!(p("end"), Ok(StartSpec::End));
        assert_eq!(p("42"), Ok(StartSpec::Offset(42)));
        assert_eq!(p("-10"), Ok(StartSpec::BeforeEnd(10)));
        assert_eq!(p("s@1767225600000"), Ok(StartSpec::Time(1_767_225_600_000)));
        assert_eq!(
            p("2026-01-01T00:00:00Z"),
            Ok(StartSpec::Time(1_767_225_600_000))
        );
        assert_eq!(
            p("2026-01-01T01:00:00.5+01:00"),
            Ok(StartSpec::Time(1_767_225_600_500))
        );
        for bad in [
            "",
            "-",
            "--3",
            "+3",
            "s@",
            "s@-1",
            "s@x",
            "1.5",
            "yesterday",
            "2026-01-01",
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.contains("is not a start position"), "{bad}: {e}");
        }
        assert!(p("stored").unwrap_err().contains("without one"));
    }

    #[test]
    fn start_positions_resolve_within_the_partition() {
        let (low, high) = (100, 200);
        assert_eq!(StartSpec::Beginning.resolve(low, high, None), 100);
        assert_eq!(StartSpec::End.resolve(low, high, None), 200);
        assert_eq!(StartSpec::Offset(150).resolve(low, high, None), 150);
        assert_eq!(StartSpec::Offset(5).resolve(low, high, None), 100);
        assert_eq!(StartSpec::Offset(500).resolve(low, high, None), 200);
        assert_eq!(StartSpec::BeforeEnd(10).resolve(low, high, None), 190);
        assert_eq!(StartSpec::BeforeEnd(1000).resolve(low, high, None), 100);
        assert_eq!(StartSpec::BeforeEnd(0).resolve(low, high, None), 200);
        assert_eq!(StartSpec::Time(1).resolve(low, high, Some(170)), 170);
        assert_eq!(StartSpec::Time(1).resolve(low, high, None), 200);
        assert_eq!(StartSpec::Beginning.resolve(0, 0, None), 0);
    }
}

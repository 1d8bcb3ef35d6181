//! The flush policy: a pure decision from a buffer's size and age.

use std::time::Duration;

/// Flush a partition's buffer when any limit is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushPolicy {
    /// Records (rows plus rejected records) in the buffer.
    pub max_rows: usize,
    /// Bytes of record values consumed into the buffer.
    pub max_bytes: usize,
    /// Time since the buffer's first record arrived.
    pub max_age: Duration,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        FlushPolicy {
            max_rows: 50_000,
            max_bytes: 16 << 20,
            max_age: Duration::from_secs(5),
        }
    }
}

/// What a buffer holds, as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferStats {
    pub records: usize,
    pub bytes: usize,
    pub age: Duration,
}

/// Why a buffer was flushed (for logs and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushReason {
    Rows,
    Bytes,
    Age,
    /// Shutdown or partition revocation: flush whatever there is.
    Drain,
}

impl FlushPolicy {
    pub fn should_flush(&self, s: &BufferStats) -> Option<FlushReason> {
        if s.records == 0 {
            None
        } else if s.records >= self.max_rows {
            Some(FlushReason::Rows)
        } else if s.bytes >= self.max_bytes {
            Some(FlushReason::Bytes)
        } else if s.age >= self.max_age {
            Some(FlushReason::Age)
        } else {
            None
        }
    }

    /// The policy with every limit at `share` (0 < share ≤ 1) of this one's, at least one
    /// record and one millisecond.
    pub fn scaled(&self, share: f64) -> FlushPolicy {
        let share = share.clamp(0.0, 1.0);
        FlushPolicy {
            max_rows: ((self.max_rows as f64 * share) as usize).max(1),
            max_bytes: ((self.max_bytes as f64 * share) as usize).max(1),
            max_age: self.max_age.mul_f64(share).max(Duration::from_millis(1)),
        }
    }

    /// Time until a buffer of this age must be flushed (how long a timer may sleep).
    pub fn time_left(&self, age: Duration) -> Duration {
        self.max_age.saturating_sub(age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(records: usize, bytes: usize, age_ms: u64) -> BufferStats {
        BufferStats {
            records,
            bytes,
            age: Duration::from_millis(age_ms),
        }
    }

    #[test]
    fn each_limit_triggers_and_empty_never_does() {
        let p = FlushPolicy {
            max_rows: 10,
            max_bytes: 1000,
            max_age: Duration::from_secs(1),
        };
        assert_eq!(p.should_flush(&stats(0, 0, 10_000)), None);
        assert_eq!(p.should_flush(&stats(9, 999, 999)), None);
        assert_eq!(p.should_flush(&stats(10, 0, 0)), Some(FlushReason::Rows));
        assert_eq!(p.should_flush(&stats(1, 1000, 0)), Some(FlushReason::Bytes));
        assert_eq!(p.should_flush(&stats(1, 1, 1000)), Some(FlushReason::Age));
        assert_eq!(
            p.time_left(Duration::from_millis(400)),
            Duration::from_millis(600)
        );
        assert_eq!(p.time_left(Duration::from_secs(5)), Duration::ZERO);
    }

    #[test]
    fn a_scaled_policy_cuts_earlier_and_never_at_zero() {
        let p = FlushPolicy {
            max_rows: 600,
            max_bytes: 6000,
            max_age: Duration::from_secs(6),
        };
        let half = p.scaled(0.5);
        assert_eq!(
            (half.max_rows, half.max_bytes, half.max_age),
            (300, 3000, Duration::from_secs(3))
        );
        assert_eq!(
            half.should_flush(&stats(300, 0, 0)),
            Some(FlushReason::Rows)
        );
        assert_eq!(p.should_flush(&stats(300, 0, 0)), None);
        assert_eq!(p.scaled(1.0), p);
        let tiny = p.scaled(0.0);
        assert_eq!(
            (tiny.max_rows, tiny.max_bytes, tiny.max_age),
            (1, 1, Duration::from_millis(1))
        );
    }
}

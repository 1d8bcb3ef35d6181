//! What a run did ([`Summary`]) and why it could not complete ([`RunError`]).

use std::fmt;
use std::time::{Duration, Instant};

use crate::event::{EVENT_TYPES, EventType};
use crate::kafka::KafkaSetupError;
use crate::lake::{Lake, LakeError};
use crate::messages::{CommitCounters, PublisherCounters, StopReason};

/// What a run did.
#[derive(Clone, Debug)]
pub struct Summary {
    pub reason: StopReason,
    pub seed: u64,
    pub published: PublisherCounters,
    pub consumed: u64,
    pub rows: u64,
    pub rejected: u64,
    pub files: u64,
    pub bytes: u64,
    pub restarts: u32,
    pub elapsed: Duration,
    /// Lake location, when a sink ran.
    pub lake: Option<String>,
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad configuration or an unusable lake: nothing was written.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Kafka cannot be used as set up (an address, a setting, a topic, a permission): nothing
    /// was written.
    #[error(transparent)]
    Kafka(#[from] KafkaSetupError),
    /// A service refused the set-up (e.g. ClickHouse's schema drifted): nothing was written.
    #[error("{0}")]
    Refused(String),
    /// The run drained completely, but a side of it did not finish (ClickHouse's schema).
    #[error("{reason}")]
    Incomplete {
        reason: String,
        summary: Box<Summary>,
    },
    /// The run stopped without draining; the summary says how far it got.
    #[error("{reason}")]
    Fatal {
        reason: String,
        summary: Box<Summary>,
    },
}

/// The counters of each stage at the end of a run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counts {
    pub published: PublisherCounters,
    pub consumed: u64,
    pub committed: CommitCounters,
}

/// Where a run's summary comes from besides its counters.
pub(crate) struct RunFacts<'a> {
    pub seed: u64,
    pub started: Instant,
    pub lake: Option<&'a Lake>,
}

impl Summary {
    pub(crate) fn new(reason: &StopReason, facts: &RunFacts, restarts: u32, c: Counts) -> Self {
        Summary {
            reason: reason.clone(),
            seed: facts.seed,
            published: c.published,
            consumed: c.consumed,
            rows: c.committed.rows,
            rejected: c.committed.rejected,
            files: c.committed.files,
            bytes: c.committed.bytes,
            restarts,
            elapsed: facts.started.elapsed(),
            lake: facts.lake.map(|l| l.location().to_string()),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "encore summary")?;
        writeln!(f, "  stopped by      {}", describe(&self.reason))?;
        writeln!(f, "  seed            {}", self.seed)?;
        self.fmt_published(f)?;
        if let Some(lake) = &self.lake {
            writeln!(f, "  lake            {lake}")?;
            writeln!(f, "  rows written    {}", self.rows)?;
            writeln!(f, "  rejected        {}", self.rejected)?;
            writeln!(
                f,
                "  files           {} ({:.1} MiB)",
                self.files,
                self.bytes as f64 / (1024.0 * 1024.0)
            )?;
        }
        write!(f, "  restarts        {}", self.restarts)
    }
}

impl Summary {
    fn fmt_published(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let p = &self.published;
        // A sink publishes nothing: what it read is its figure.
        if p.published == 0 && self.lake.is_some() {
            return writeln!(
                f,
                "  consumed        {} records in {secs:.2}s ({:.0} records/s)",
                self.consumed,
                self.consumed as f64 / secs
            );
        }
        let events = p.events();
        writeln!(
            f,
            "  events          {events} in {:.2}s ({:.0} events/s)",
            secs,
            events as f64 / secs
        )?;
        for t in EventType::ALL {
            let n = p.by_type[t.index()];
            let share = 100.0 * n as f64 / events.max(1) as f64;
            writeln!(f, "    {:<26}{n:>12}  {share:5.1}%", t.name())?;
        }
        if p.malformed + p.duplicates + p.late > 0 {
            writeln!(
                f,
                "  injected        {} not valid events, {} duplicates, {} late (records sent {})",
                p.malformed, p.duplicates, p.late, p.published
            )?;
        }
        if p.acked + p.failed > 0 {
            writeln!(
                f,
                "  delivered       {} acknowledged by Kafka, {} failed",
                p.acked, p.failed
            )?;
        }
        if p.retried > 0 {
            writeln!(
                f,
                "  sent again      {} after transient broker errors ({} possibly written twice)",
                p.retried, p.possibly_duplicated
            )?;
        }
        Ok(())
    }
}

pub(crate) fn describe(r: &StopReason) -> String {
    match r {
        StopReason::Duration => "--duration elapsed".into(),
        StopReason::EventLimit => "--events reached".into(),
        StopReason::Signal(s) => format!("{s} (drained)"),
        StopReason::OutputClosed => "output closed".into(),
        StopReason::EndOfTopic => "--exit-at-end: the topic's end at start reached".into(),
        StopReason::Fatal(e) => format!("fatal error: {e}"),
    }
}

/// Per-type shares of a summary, for tests and reports.
pub fn shares(c: &PublisherCounters) -> [f64; EVENT_TYPES] {
    let n = c.published.max(1) as f64;
    c.by_type.map(|x| x as f64 / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(published: u64, consumed: u64) -> Summary {
        let mut p = PublisherCounters {
            published,
            ..PublisherCounters::default()
        };
        p.by_type[0] = published;
        Summary {
            reason: StopReason::EndOfTopic,
            seed: 0,
            published: p,
            consumed,
            rows: consumed,
            rejected: 0,
            files: 1,
            bytes: 1024,
            restarts: 0,
            elapsed: Duration::from_secs(2),
            lake: Some("/tmp/lake".into()),
        }
    }

    #[test]
    fn a_sink_reports_what_it_read_and_a_run_what_it_published() {
        let sink = summary(0, 500).to_string();
        assert!(
            sink.contains("consumed        500 records in 2.00s (250 records/s)"),
            "{sink}"
        );
        assert!(!sink.contains("track_playback"), "{sink}");
        let run = summary(500, 500).to_string();
        assert!(run.contains("events          500 in 2.00s"), "{run}");
        assert!(run.contains("track_playback"), "{run}");
    }
}

//! `encore tail`: a console consumer of any topic, the dead-letter topic included, with kcat's
//! conventions. It reads by assignment (no group joined, nothing committed): from `-o`, for
//! `-n` records or until `-e` reaches the end seen at start, through `--event-type`/`--user`
//! filters, as JSON lines or aligned columns.
//!
//! `start` parses `-o` and places it in a partition, `filter` decides which records are shown,
//! `format` prints them, `reader` is the Kafka side and `output` the stdout side.

mod filter;
mod format;
mod output;
mod reader;
mod start;

pub use filter::{Filter, parse_event_type, parse_user};
pub use format::Format;
pub use start::{StartSpec, parse_start};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::types::RDKafkaErrorCode;

use crate::cli::TailArgs;
use crate::error::CommandError;
use crate::kafka::{EncoreContext, KafkaSetupError};
use format::Record;
use output::{Halt, Printer};
use reader::Ends;

/// How long one poll waits: also how soon a signal or an idle flush is noticed.
const POLL: Duration = Duration::from_millis(200);

/// What a tail does once its partitions are assigned.
struct Reading<'a> {
    topic: &'a str,
    filter: Filter,
    count: Option<u64>,
    /// `-e`: the partitions still short of their end.
    ends: Option<Ends>,
    /// `-e`: how long reading may make no progress before it fails.
    patience: Duration,
}

/// Prints the records `args` asks for to `out` (stdout: `--format auto` looks at it).
pub fn run(args: TailArgs, out: &mut impl std::io::Write) -> Result<(), CommandError> {
    let usage = CommandError::Usage;
    let kafka = args
        .kafka
        .to_settings()
        .map_err(usage)?
        .ok_or_else(|| usage("`encore tail` needs --brokers (or ENCORE_BROKERS)".into()))?;
    let topic = if args.dead_letters {
        kafka.dlq_topic_of(&args.topic)
    } else {
        args.topic.clone()
    };
    let cfg = &kafka.connection;
    let consumer = reader::consumer(cfg, args.exit_at_end)?;
    let spans = reader::plan(&consumer, cfg, &topic, args.offset, &args.partitions)?
        .ok_or_else(|| missing(&topic, &args.topic, args.dead_letters))?;
    if !(args.exit_at_end && Ends::new(&spans).done()) {
        reader::assign(&consumer, &topic, &spans)?;
    }
    let reading = Reading {
        topic: &topic,
        filter: Filter {
            types: args.event_types,
            users: args.users,
        },
        count: args.count,
        ends: args.exit_at_end.then(|| Ends::new(&spans)),
        patience: cfg.connect_timeout.max(Duration::from_secs(10)),
    };
    tracing::debug!(topic, ?spans, "tail: reading");
    let mut printer = Printer::new(out, args.format, args.dead_letters);
    let stop = stop_on_signal();
    match reading.read(&consumer, &mut printer, &stop) {
        Ok(()) => printer.flush().or_else(Halt::quiet),
        Err(h) => Halt::quiet(h),
    }
}

/// A topic that does not exist, named; the dead-letter topic's absence explained.
fn missing(topic: &str, source: &str, dead_letters: bool) -> CommandError {
    if dead_letters {
        CommandError::Usage(format!(
            "dead-letter topic `{topic}` does not exist: a sink of `{source}` creates it when it \
             starts (--dlq-topic names another)"
        ))
    } else {
        KafkaSetupError::TopicMissing(topic.to_string()).into()
    }
}

impl Reading<'_> {
    /// Polls until `-n` records were shown, `-e` reached every end, or a signal came.
    fn read(
        mut self,
        consumer: &BaseConsumer<EncoreContext>,
        printer: &mut Printer<impl std::io::Write>,
        stop: &AtomicBool,
    ) -> Result<(), Halt> {
        let (mut shown, mut read) = (0u64, 0u64);
        let mut last_progress = Instant::now();
        while !stop.load(Ordering::Relaxed)
            && !self.ends.as_ref().is_some_and(Ends::done)
            && self.count.is_none_or(|c| shown < c)
        {
            let msg = match consumer.poll(POLL) {
                None => {
                    printer.flush()?;
                    self.check_stall(last_progress)?;
                    continue;
                }
                Some(Ok(m)) => m,
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(e) = self.ends.as_mut() {
                        e.eof(p);
                    }
                    last_progress = Instant::now();
                    continue;
                }
                Some(Err(e)) => {
                    self.poll_error(e)?;
                    continue;
                }
            };
            last_progress = Instant::now();
            read += 1;
            if let Some(e) = self.ends.as_mut()
                && !e.read(msg.partition(), msg.offset())
            {
                continue;
            }
            let record = record(self.topic, &msg);
            let value = record.parse_value();
            if self.filter.matches(value.as_ref(), record.key) {
                printer.print(&record, value)?;
                shown += 1;
            }
        }
        tracing::info!(topic = self.topic, shown, read, "tail: done");
        Ok(())
    }

    /// `-e` must not wait forever for a broker that stopped answering.
    fn check_stall(&self, since: Instant) -> Result<(), Halt> {
        match &self.ends {
            Some(ends) if since.elapsed() > self.patience => {
                Err(Halt::Failed(CommandError::Failed(format!(
                    "reading `{}`: no progress for {}; partitions short of their end (partition: \
                     end): {:?}",
                    self.topic,
                    humantime::format_duration(self.patience),
                    ends.left()
                ))))
            }
            _ => Ok(()),
        }
    }

    /// A topic deleted or a permission revoked ends the tail; the rest librdkafka retries.
    fn poll_error(&self, e: KafkaError) -> Result<(), Halt> {
        let fatal = matches!(
            e.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::UnknownPartition
                    | RDKafkaErrorCode::TopicAuthorizationFailed
            )
        );
        if fatal {
            return Err(Halt::Failed(CommandError::Failed(format!(
                "reading `{}`: {e}",
                self.topic
            ))));
        }
        crate::kafka::warn_throttled(&format!("reading `{}`: {e}", self.topic));
        Ok(())
    }
}

/// The parts of a message tail prints.
fn record<'a>(topic: &'a str, m: &'a impl Message) -> Record<'a> {
    let headers = m
        .headers()
        .map(|h| h.iter().map(|hd| (hd.key, hd.value)).collect())
        .unwrap_or_default();
    Record {
        topic,
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis(),
        key: m.key(),
        value: m.payload(),
        headers,
    }
}

/// Set by the first SIGINT or SIGTERM (the tail stops after the record in hand, exit 0); a
/// second one exits at once with 130, as the other commands do.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let watch = move || {
        use tokio::signal::unix::{SignalKind, signal};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let mut int = signal(SignalKind::interrupt())?;
            let mut term = signal(SignalKind::terminate())?;
            for _ in 0..2 {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                if flag.swap(true, Ordering::Relaxed) {
                    std::process::exit(130);
                }
            }
            Ok::<_, std::io::Error>(())
        })
    };
    if let Err(e) = std::thread::Builder::new()
        .name("tail-signals".into())
        .spawn(move || {
            if let Err(e) = watch() {
                tracing::warn!("cannot watch for signals: {e}");
            }
        })
    {
        tracing::warn!("cannot watch for signals: {e}");
    }
    stop
}

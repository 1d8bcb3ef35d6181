//! `encore produce-simple`: person records (the reference pipeline's simple topic) at a steady
//! rate, to Kafka or as JSON lines on stdout.

use std::io::Write;
use std::time::{Duration, Instant};

use rand::SeedableRng;

use crate::cli::ProduceSimpleArgs;
use crate::error::CommandError;
use crate::kafka::producer::{Enqueue, KafkaProducer};
use crate::kafka::{TopicAccess, check_topic_access, ensure_topic};
use crate::sim::names::{SimplePerson as Person, draw_person};

/// Where `produce-simple` writes.
enum SimpleOut {
    Stdout(std::io::StdoutLock<'static>),
    Kafka(KafkaProducer),
}

/// Produces until `--count` (or forever); a reader of stdout that goes away ends it cleanly.
pub fn produce_simple(args: ProduceSimpleArgs) -> Result<(), CommandError> {
    if !(0.001..=1e6).contains(&args.rate) {
        return Err(usage(format!(
            "--rate {} must be between 0.001 and 1000000",
            args.rate
        )));
    }
    crate::lake::validate_table(&args.topic).map_err(|e| usage(format!("--topic: {e}")))?;
    let mut out = open(&args)?;
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(args.seed.unwrap_or_else(rand::random));
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let (mut sent, start) = (0u64, Instant::now());
    while args.count.is_none_or(|c| sent < c) {
        let p = draw_person(&mut rng, chrono::Utc::now().timestamp_millis());
        match &mut out {
            SimpleOut::Stdout(o) => match write_line(o, &p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(usage(format!("writing to stdout: {e}"))),
            },
            SimpleOut::Kafka(k) => send(k, &p)?,
        }
        sent += 1;
        let due = start + interval.mul_f64(sent as f64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    match &out {
        SimpleOut::Kafka(k) => finish(k, sent),
        SimpleOut::Stdout(_) => Ok(()),
    }
}

fn usage(msg: String) -> CommandError {
    CommandError::Usage(msg)
}

fn open(args: &ProduceSimpleArgs) -> Result<SimpleOut, CommandError> {
    let Some(k) = args.kafka.to_settings().map_err(usage)? else {
        return Ok(SimpleOut::Stdout(std::io::stdout().lock()));
    };
    ensure_topic(&k.connection, &args.topic, 1, k.replication)?;
    check_topic_access(&k.connection, &args.topic, &[TopicAccess::Write])?;
    let producer = KafkaProducer::new(&k.connection, &args.topic, &k.compression)?;
    Ok(SimpleOut::Kafka(producer))
}

fn write_line(o: &mut impl Write, p: &Person) -> std::io::Result<()> {
    serde_json::to_writer(&mut *o, p)?;
    writeln!(o)?;
    o.flush()
}

/// Enqueues one record, waiting while librdkafka's queue is full.
fn send(k: &KafkaProducer, p: &Person) -> Result<(), CommandError> {
    let value = serde_json::to_vec(p).map_err(|e| usage(format!("encoding a record: {e}")))?;
    let key = p.uuid.to_string();
    let rec = [(key.as_bytes(), &value[..])];
    loop {
        match k.enqueue(rec.iter().copied(), 0) {
            Ok(_) => return Ok(()),
            Err(Enqueue::QueueFull { .. }) => std::thread::sleep(Duration::from_millis(5)),
            Err(Enqueue::Failed { error, .. }) => {
                return Err(usage(format!("producing to Kafka: {error}")));
            }
        }
    }
}

/// Waits for every delivery report; any record not delivered fails the command.
fn finish(k: &KafkaProducer, sent: u64) -> Result<(), CommandError> {
    k.flush_all(Duration::from_secs(330))
        .map_err(|e| usage(e.to_string()))?;
    let failed = k
        .deliveries()
        .failed
        .load(std::sync::atomic::Ordering::Relaxed);
    if failed > 0 {
        return Err(usage(format!(
            "{failed} of {sent} messages were not delivered"
        )));
    }
    crate::say!(
        "produce-simple: {sent} messages delivered to `{}`",
        k.topic()
    );
    Ok(())
}

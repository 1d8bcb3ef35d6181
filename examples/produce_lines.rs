//! Sends each line of stdin as one record to a topic, as it is: a way to put hand-written or
//! deliberately broken messages on a topic (e.g. to watch ClickHouse's errors table fill).
//!
//! `cargo run --example produce_lines -- TOPIC < lines.txt` (brokers from ENCORE_BROKERS,
//! default 127.0.0.1:9092; the topic must exist).

use std::io::BufRead;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topic = std::env::args()
        .nth(1)
        .ok_or("usage: produce_lines TOPIC < lines")?;
    let brokers = std::env::var("ENCORE_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("message.timeout.ms", "30000")
        .create()?;
    let mut sent = 0u64;
    for line in std::io::stdin().lock().split(b'\n') {
        let line = line?;
        producer
            .send(
                FutureRecord::<(), _>::to(&topic).payload(&line),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)?;
        sent += 1;
    }
    eprintln!("produce_lines: {sent} records acknowledged on {topic}");
    Ok(())
}

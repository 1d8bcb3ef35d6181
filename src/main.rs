//! The `encore` binary: parses flags, sets up logging, runs a command, maps outcomes to exit
//! codes (0 success, 1 failure or data problems, 2 usage errors: nothing was written).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use rand::SeedableRng;

use encore::cli::{Cli, ClickHouseCommand, Command, ProduceSimpleArgs, VerifyArgs};
use encore::clickhouse::schema::Dialect;
use encore::clickhouse::setup::{self, SetupError};
use encore::clickhouse::{ChError, ClickHouse};
use encore::config::RunOptions;
use encore::lake::Lake;
use encore::pipeline::{self, RunError};

/// Writes to stdout; a reader that went away (`encore … | head`) is not an error worth a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn init_tracing(filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| format!("--log `{filter}`: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: logs sent to files stay greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    Ok(())
}

fn report_run(res: Result<pipeline::Summary, RunError>) -> ExitCode {
    match res {
        Ok(summary) => {
            outln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(RunError::Usage(e)) => usage(e),
        Err(RunError::Refused(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        // A bad location or rejected credentials is a usage error; a corrupt marker is not.
        Err(RunError::Lake(e)) if e.is_config() => usage(e),
        Err(RunError::Lake(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        Err(RunError::Incomplete { reason, summary }) => {
            outln!("{summary}");
            eprintln!("error: {reason}");
            ExitCode::from(1)
        }
        Err(RunError::Fatal { reason, summary }) => {
            outln!("{summary}");
            eprintln!("error: {reason}");
            eprintln!(
                "committed data is safe; the next run resumes after the last committed range"
            );
            ExitCode::from(1)
        }
    }
}

/// Where `produce-simple` writes.
enum SimpleOut {
    Stdout(std::io::StdoutLock<'static>),
    Kafka(encore::kafka::producer::KafkaProducer),
}

fn produce_simple(args: ProduceSimpleArgs) -> anyhow::Result<()> {
    use encore::kafka::producer::Enqueue;
    use std::io::Write;
    if !(0.001..=1e6).contains(&args.rate) {
        anyhow::bail!("--rate {} must be between 0.001 and 1000000", args.rate);
    }
    encore::lake::validate_table(&args.topic).map_err(|e| anyhow::anyhow!("--topic: {e}"))?;
    let mut out = match args.kafka.to_settings().map_err(anyhow::Error::msg)? {
        None => SimpleOut::Stdout(std::io::stdout().lock()),
        Some(k) => {
            encore::kafka::ensure_topic(&k.connection, &args.topic, 1, k.replication)?;
            encore::kafka::check_topic_access(
                &k.connection,
                &args.topic,
                &[encore::kafka::TopicAccess::Write],
            )?;
            SimpleOut::Kafka(encore::kafka::producer::KafkaProducer::new(
                &k.connection,
                &args.topic,
                &k.compression,
            )?)
        }
    };
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(args.seed.unwrap_or_else(rand::random));
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut sent = 0u64;
    let start = std::time::Instant::now();
    while args.count.is_none_or(|c| sent < c) {
        let p = encore::sim::names::draw_person(&mut rng, chrono::Utc::now().timestamp_millis());
        match &mut out {
            SimpleOut::Stdout(o) => {
                serde_json::to_writer(&mut *o, &p).context("writing to stdout")?;
                writeln!(o).context("writing to stdout")?;
                o.flush().context("writing to stdout")?;
            }
            SimpleOut::Kafka(k) => {
                let value = serde_json::to_vec(&p)?;
                let key = p.uuid.to_string();
                let rec = [(key.as_bytes(), &value[..])];
                loop {
                    match k.enqueue(rec.iter().copied(), 0) {
                        Ok(_) => break,
                        Err(Enqueue::QueueFull { .. }) => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(Enqueue::Failed { error, .. }) => {
                            anyhow::bail!("producing to Kafka: {error}")
                        }
                    }
                }
            }
        }
        sent += 1;
        let due = start + interval.mul_f64(sent as f64);
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
    }
    if let SimpleOut::Kafka(k) = &out {
        k.flush_all(Duration::from_secs(330))
            .map_err(anyhow::Error::msg)?;
        let failed = k
            .deliveries()
            .failed
            .load(std::sync::atomic::Ordering::Relaxed);
        if failed > 0 {
            anyhow::bail!("{failed} of {sent} messages were not delivered");
        }
        eprintln!(
            "produce-simple: {sent} messages delivered to `{}`",
            k.topic()
        );
    }
    Ok(())
}

fn verify(args: VerifyArgs) -> ExitCode {
    let lake = match Lake::open(&args.lake.to_config(), &args.topic) {
        Ok(l) => l,
        Err(e) => return usage(e),
    };
    if let (Some(f), Some(t)) = (args.date_from, args.date_to)
        && f > t
    {
        return usage("--date-from is after --date-to");
    }
    let kafka = match args.kafka.to_settings() {
        Ok(k) => k.map(|k| k.connection),
        Err(e) => return usage(e),
    };
    let clickhouse = match args.clickhouse.to_settings(None, &args.topic, false) {
        Ok(Some(c)) => match ClickHouse::new(c.connection) {
            Ok(ch) => Some((ch, c.target.database)),
            Err(e) => return usage(e),
        },
        Ok(None) => None,
        Err(e) => return usage(e),
    };
    let opts = encore::verify::VerifyOptions {
        samples: args.samples,
        date_from: args.date_from,
        date_to: args.date_to,
        list: args.list,
    };
    let sources = encore::verify::Sources {
        kafka,
        dlq_topic: args.kafka.dlq_topic.clone(),
        clickhouse,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(format!("starting the runtime: {e}")),
    };
    match rt.block_on(encore::verify::verify(&lake, &opts, &sources)) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(j) => outln!("{j}"),
                    Err(e) => return usage(format!("encoding the report: {e}")),
                }
            } else {
                outln!("{report}");
            }
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => usage(e),
    }
}

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    if let Err(e) = encore::cli::refuse_secrets_in_arguments(&matches) {
        return usage(e);
    }
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if let Err(e) = init_tracing(&cli.log) {
        return usage(e);
    }
    match cli.command {
        Command::Run(args) => {
            let kafka = match args.kafka.to_settings() {
                Ok(k) => k,
                Err(e) => return usage(e),
            };
            let sim = match args.sim.to_config() {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            let sink = match args.flush.to_config(args.lake.to_config()) {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            let clickhouse =
                match args
                    .clickhouse
                    .to_settings(args.kafka.brokers.as_deref(), &sim.topic, true)
                {
                    Ok(c) => c.map(|c| encore::config::ClickHouseConfig {
                        recreate: args.recreate,
                        ..c
                    }),
                    Err(e) => return usage(e),
                };
            if args.recreate && clickhouse.is_none() {
                return usage("--recreate needs --clickhouse-url");
            }
            if clickhouse.is_some() && kafka.is_none() {
                return usage(
                    "--clickhouse-url needs --brokers: ClickHouse reads the topic from Kafka, not \
                     from the in-process bus",
                );
            }
            let opts = RunOptions {
                progress: !args.no_progress,
                handle_signals: true,
            };
            let res = actix::System::new().block_on(async move {
                match kafka {
                    Some(k) => pipeline::run_kafka(sim, sink, k, clickhouse, opts).await,
                    None => pipeline::run(sim, sink, opts).await,
                }
            });
            report_run(res)
        }
        Command::Simulate(args) => {
            let kafka = match args.kafka.to_settings() {
                Ok(k) => k,
                Err(e) => return usage(e),
            };
            let sim = match args.sim.to_config() {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            let opts = RunOptions {
                progress: !args.no_progress,
                handle_signals: true,
            };
            match actix::System::new().block_on(pipeline::simulate(sim, kafka, opts)) {
                Ok(summary) => {
                    eprintln!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => report_run(Err(e)),
            }
        }
        Command::Sink(args) => {
            let kafka = match args.kafka.to_settings() {
                Ok(Some(k)) => k,
                Ok(None) => return usage("`encore sink` needs --brokers (or ENCORE_BROKERS)"),
                Err(e) => return usage(e),
            };
            if let Err(e) = encore::lake::validate_table(&args.topic) {
                return usage(format!("--topic: {e}"));
            }
            let sink = match args.flush.to_config(args.lake.to_config()) {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            let opts = RunOptions {
                progress: !args.no_progress,
                handle_signals: true,
            };
            let res = actix::System::new().block_on(pipeline::sink_kafka(
                &args.topic,
                sink,
                kafka,
                args.duration,
                opts,
            ));
            report_run(res)
        }
        Command::ProduceSimple(args) => match produce_simple(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
            Err(e) => usage(format!("{e:#}")),
        },
        Command::Verify(args) => verify(args),
        Command::Clickhouse(cmd) => clickhouse(cmd),
    }
}

/// Exit code of a ClickHouse failure: 2 when the user must fix a setting or reach the server,
/// 1 when the server refused (its message says why).
fn clickhouse_failure(e: impl Into<SetupError>) -> ExitCode {
    let e = e.into();
    eprintln!("error: {e}");
    match e {
        SetupError::Ch(ChError::Config(_) | ChError::Connect { .. }) => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}

fn clickhouse(cmd: ClickHouseCommand) -> ExitCode {
    let target_args = match &cmd {
        ClickHouseCommand::Setup(a) => &a.target,
        ClickHouseCommand::Status(a) | ClickHouseCommand::Drop(a) => a,
        ClickHouseCommand::Query(a) => &a.target,
    };
    let creates = matches!(cmd, ClickHouseCommand::Setup(_));
    let (settings, kafka) = match target_args.to_settings(creates) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let ch = match ClickHouse::new(settings.connection.clone()) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let target = settings.target.clone();
    actix::System::new().block_on(async move {
        match cmd {
            ClickHouseCommand::Setup(a) => {
                match &kafka {
                    Some(k) => {
                        if let Err(e) =
                            pipeline::prepare_clickhouse_topics(&target, a.partitions, k).await
                        {
                            return usage(e);
                        }
                    }
                    None => eprintln!(
                        "warning: without --brokers encore cannot check that `{}` and `{}` exist; \
                         create them before ClickHouse's queues, which notice a new topic only at \
                         their next metadata refresh (5 minutes by default)",
                        target.events_topic, target.simple_topic
                    ),
                }
                let run = encore::config::ClickHouseConfig {
                    recreate: a.recreate,
                    ..settings
                };
                match pipeline::apply_clickhouse(&run).await {
                    Ok((_, report)) => {
                        out!("{report}");
                        outln!(
                            "database `{}` ready: ClickHouse reads `{}` and `{}` from {}",
                            target.database,
                            target.events_topic,
                            target.simple_topic,
                            target.brokers.as_deref().unwrap_or_default()
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => clickhouse_failure(e),
                }
            }
            ClickHouseCommand::Status(_) => {
                let mut status = match setup::status(&ch, &target).await {
                    Ok(s) => s,
                    Err(e) => return clickhouse_failure(e),
                };
                if let Some(k) = kafka {
                    for (d, group) in status.queue_groups() {
                        let (cfg, topic) = (k.connection.clone(), target.topic(d).to_string());
                        let lag = tokio::task::spawn_blocking(move || {
                            encore::kafka::group_lag(&cfg, &group, &topic)
                        })
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()));
                        status.lag.push((d, lag));
                    }
                }
                out!("{status}");
                if status.healthy() {
                    ExitCode::SUCCESS
                } else {
                    eprintln!(
                        "error: the schema is incomplete or differs; `encore clickhouse setup` creates what is missing"
                    );
                    ExitCode::from(1)
                }
            }
            ClickHouseCommand::Drop(_) => match setup::drop(&ch, &target).await {
                Ok(dropped) if dropped.is_empty() => {
                    outln!("nothing to drop in `{}`", target.database);
                    ExitCode::SUCCESS
                }
                Ok(dropped) => {
                    outln!("dropped: {}", dropped.join(", "));
                    ExitCode::SUCCESS
                }
                Err(e) => clickhouse_failure(e),
            },
            ClickHouseCommand::Query(a) => {
                let run = async {
                    let dialect = Dialect::for_version(ch.version().await?);
                    let sql = a.preset.sql(&target.database, dialect)?;
                    setup::query_table(&ch, &sql).await
                };
                match run.await {
                    Ok(table) => {
                        out!("{table}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => clickhouse_failure(e),
                }
            }
        }
    })
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

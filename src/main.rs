//! The `encore` binary: parses flags, sets up logging, dispatches to the command's subsystem,
//! and maps the outcome to an exit code (0 success, 1 failure or data problems, 2 usage errors:
//! nothing was written). Command bodies live with their subsystems.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use encore::cli::{Cli, ClickHouseCommand, Command, RunArgs, SimulateArgs, SinkArgs};
use encore::config::{ClickHouseConfig, RunOptions};
use encore::error::CommandError;
use encore::pipeline::{self, RunError, Summary};

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match encore::cli::refuse_secrets_in_arguments(&matches) {
        Ok(()) => {
            <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
        }
        Err(e) => return exit(CommandError::Usage(e)),
    };
    if let Err(e) = init_tracing(&cli.log) {
        return exit(CommandError::Usage(format!("{e:#}")));
    }
    if let Err(e) = encore::failpoint::check() {
        return exit(CommandError::Usage(e));
    }
    let result = match cli.command {
        Command::Run(args) => run(*args),
        Command::Simulate(args) => simulate(args),
        Command::Sink(args) => sink(args),
        Command::ProduceSimple(args) => encore::simple::produce_simple(args),
        Command::Verify(args) => encore::verify::command::run(args, &mut std::io::stdout().lock()),
        Command::Tail(args) => encore::tail::run(args, &mut std::io::stdout().lock()),
        Command::Status(args) => encore::status::run(args, &mut std::io::stdout().lock()),
        Command::Clickhouse(cmd) => clickhouse(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit(e),
    }
}

/// Prints what a failure has to say (a run's summary on stdout, the reason on stderr) and
/// gives its exit code.
fn exit(e: CommandError) -> ExitCode {
    let code = e.exit_code();
    match e {
        CommandError::Problems => {}
        CommandError::Run(RunError::Incomplete { reason, summary }) => {
            print(&summary);
            encore::say!("error: {reason}");
        }
        CommandError::Run(RunError::Fatal { reason, summary }) => {
            print(&summary);
            encore::say!("error: {reason}");
            encore::say!(
                "committed data is safe; the next run resumes after the last committed range"
            );
        }
        e => encore::say!("error: {e}"),
    }
    ExitCode::from(code)
}

/// Writes to stdout; a reader that went away (`encore … | head`) is not an error worth a panic.
fn print(s: &impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{s}");
}

fn init_tracing(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("--log `{filter}`"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: logs sent to files stay greppable.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        // Its report of a failed write is an `eprintln!`, which panics when stderr is closed.
        .log_internal_errors(false)
        .finish()
        .with(tracing_subscriber::filter::filter_fn(|m| {
            !is_double_close_report(m)
        }))
        .init();
    Ok(())
}

/// rust-rdkafka's consumer drop closes the consumer again after the sink closed it itself
/// (`kafka::consumer::leave_group`) and logs the refusal as an error. In rdkafka 0.38 that
/// is the only error its `base_consumer` module logs; its warnings still show.
fn is_double_close_report(m: &tracing::Metadata<'_>) -> bool {
    m.target() == "rdkafka::consumer::base_consumer" && *m.level() == tracing::Level::ERROR
}

fn options(no_progress: bool) -> RunOptions {
    RunOptions {
        progress: !no_progress,
        handle_signals: true,
    }
}

/// Prints the summary of a run that completed.
fn summary(res: Result<Summary, RunError>) -> Result<(), CommandError> {
    print(&res?);
    Ok(())
}

fn run(args: RunArgs) -> Result<(), CommandError> {
    let kafka = args.kafka.to_settings().map_err(CommandError::Usage)?;
    let sim = args.sim.to_config().map_err(CommandError::Usage)?;
    let sink = args
        .flush
        .to_config(args.lake.to_config())
        .map_err(CommandError::Usage)?;
    let clickhouse = args
        .clickhouse
        .to_settings(args.kafka.brokers.as_deref(), &sim.topic, true)
        .map_err(CommandError::Usage)?
        .map(|c| ClickHouseConfig {
            recreate: args.recreate,
            ..c
        });
    match (&clickhouse, &kafka) {
        (None, _) if args.recreate => {
            return Err(CommandError::Usage(
                "--recreate needs --clickhouse-url".into(),
            ));
        }
        (Some(_), None) => {
            return Err(CommandError::Usage(
                "--clickhouse-url needs --brokers: ClickHouse reads the topic from Kafka, not \
                 from the in-process bus"
                    .into(),
            ));
        }
        _ => {}
    }
    args.metrics.serve().map_err(CommandError::Usage)?;
    let opts = options(args.no_progress);
    summary(actix::System::new().block_on(async move {
        match kafka {
            Some(k) => pipeline::run_kafka(sim, sink, k, clickhouse, opts).await,
            None => pipeline::run(sim, sink, opts).await,
        }
    }))
}

fn simulate(args: SimulateArgs) -> Result<(), CommandError> {
    let kafka = args.kafka.to_settings().map_err(CommandError::Usage)?;
    let sim = args.sim.to_config().map_err(CommandError::Usage)?;
    args.metrics.serve().map_err(CommandError::Usage)?;
    let opts = options(args.no_progress);
    // stdout carries the events: the summary goes to stderr.
    let summary = actix::System::new().block_on(pipeline::simulate(sim, kafka, opts))?;
    encore::say!("{summary}");
    Ok(())
}

fn sink(args: SinkArgs) -> Result<(), CommandError> {
    let kafka = args
        .kafka
        .to_settings()
        .map_err(CommandError::Usage)?
        .ok_or_else(|| {
            CommandError::Usage("`encore sink` needs --brokers (or ENCORE_BROKERS)".into())
        })?;
    encore::lake::validate_table(&args.topic)
        .map_err(|e| CommandError::Usage(format!("--topic: {e}")))?;
    let sink = args
        .flush
        .to_config(args.lake.to_config())
        .map_err(CommandError::Usage)?;
    args.metrics.serve().map_err(CommandError::Usage)?;
    let opts = options(args.no_progress);
    summary(actix::System::new().block_on(pipeline::sink_kafka(
        &args.topic,
        sink,
        kafka,
        (args.duration, args.exit_at_end),
        opts,
    )))
}

fn clickhouse(cmd: ClickHouseCommand) -> Result<(), CommandError> {
    if let ClickHouseCommand::Setup(a) = &cmd
        && a.print
    {
        let t = &a.target;
        let target = t
            .clickhouse
            .target(t.kafka.brokers.as_deref(), &t.topic, true)
            .map_err(CommandError::Usage)?;
        let sql = encore::clickhouse::commands::setup_statements(&target, &a.server_version)
            .map_err(CommandError::Usage)?;
        let _ = write!(std::io::stdout().lock(), "{sql}");
        return Ok(());
    }
    let target_args = match &cmd {
        ClickHouseCommand::Setup(a) => &a.target,
        ClickHouseCommand::Status(a) | ClickHouseCommand::Drop(a) => a,
        ClickHouseCommand::Query(a) => &a.target,
    };
    let creates = matches!(cmd, ClickHouseCommand::Setup(_));
    let (cfg, kafka) = target_args
        .to_settings(creates)
        .map_err(CommandError::Usage)?;
    actix::System::new().block_on(encore::clickhouse::commands::run(
        cmd,
        cfg,
        kafka,
        &mut std::io::stdout().lock(),
    ))
}

//! The `encore` binary: parses flags, sets up logging, runs a command, maps outcomes to exit
//! codes (0 success, 1 failure or data problems, 2 usage errors: nothing was written).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use rand::SeedableRng;

use encore::cli::{Cli, Command, ProduceSimpleArgs, VerifyArgs};
use encore::lake::Lake;
use encore::pipeline::{self, RunError, RunOptions};

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
        .with_target(false)
        .init();
    Ok(())
}

fn report_run(res: Result<pipeline::Summary, RunError>) -> ExitCode {
    match res {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(RunError::Usage(e)) => usage(e),
        // A bad location or rejected credentials is a usage error; a corrupt marker is not.
        Err(RunError::Lake(e)) if e.is_config() => usage(e),
        Err(RunError::Lake(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        Err(RunError::Fatal { reason, summary }) => {
            println!("{summary}");
            eprintln!("error: {reason}");
            eprintln!(
                "committed data is safe; the next run resumes after the last committed range"
            );
            ExitCode::from(1)
        }
    }
}

fn kafka_unavailable(cmd: &str) -> ExitCode {
    usage(format!(
        "`encore {cmd} --brokers`: this build has no Kafka back end yet; \
         use `encore run` (in-process bus) or `encore simulate` without --brokers (stdout)"
    ))
}

fn produce_simple(args: ProduceSimpleArgs) -> anyhow::Result<()> {
    use std::io::Write;
    if !(0.001..=1e6).contains(&args.rate) {
        anyhow::bail!("--rate {} must be between 0.001 and 1000000", args.rate);
    }
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(args.seed.unwrap_or_else(rand::random));
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut out = std::io::stdout().lock();
    let mut sent = 0u64;
    let start = std::time::Instant::now();
    while args.count.is_none_or(|c| sent < c) {
        let p = encore::names::draw_person(&mut rng, chrono::Utc::now().timestamp_millis());
        serde_json::to_writer(&mut out, &p).context("writing to stdout")?;
        writeln!(out).context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
        sent += 1;
        let due = start + interval.mul_f64(sent as f64);
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
    }
    Ok(())
}

fn verify(args: VerifyArgs) -> ExitCode {
    let lake = match Lake::open(&args.lake.to_config(), &args.topic) {
        Ok(l) => l,
        Err(e) => return usage(e),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(format!("starting the runtime: {e}")),
    };
    match rt.block_on(encore::verify::verify(&lake, args.samples)) {
        Ok(report) => {
            println!("{report}");
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
    let cli = Cli::parse();
    if let Err(e) = init_tracing(&cli.log) {
        return usage(e);
    }
    match cli.command {
        Command::Run(args) => {
            if args.sim.brokers.is_some() {
                return kafka_unavailable("run");
            }
            let sim = match args.sim.to_config() {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            let sink = match args.flush.to_config(args.lake.to_config()) {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            let opts = RunOptions {
                progress: !args.no_progress,
                handle_signals: true,
            };
            let res = actix::System::new().block_on(pipeline::run(sim, sink, opts));
            report_run(res)
        }
        Command::Simulate(args) => {
            if args.sim.brokers.is_some() {
                return kafka_unavailable("simulate");
            }
            let sim = match args.sim.to_config() {
                Ok(s) => s,
                Err(e) => return usage(e),
            };
            let opts = RunOptions {
                progress: !args.no_progress,
                handle_signals: true,
            };
            match actix::System::new().block_on(pipeline::simulate_to_stdout(sim, opts)) {
                Ok(summary) => {
                    eprintln!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => report_run(Err(e)),
            }
        }
        Command::Sink(_) => kafka_unavailable("sink"),
        Command::ProduceSimple(args) => {
            if args.brokers.is_some() {
                return kafka_unavailable("produce-simple");
            }
            match produce_simple(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
                Err(e) => usage(format!("{e:#}")),
            }
        }
        Command::Verify(args) => verify(args),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

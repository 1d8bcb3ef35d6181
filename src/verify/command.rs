//! `encore verify`: the command around [`super::verify`]: flags to options and sources, the
//! report printed, problems to the exit code.

use std::io::Write;

use crate::cli::VerifyArgs;
use crate::error::CommandError;
use crate::lake::Lake;

/// Checks the lake of `args.topic` and prints the report (text or `--json`) to `out`; a lake
/// with problems is [`CommandError::Problems`].
pub fn run(args: VerifyArgs, out: &mut impl Write) -> Result<(), CommandError> {
    let usage = CommandError::Usage;
    let lake = Lake::open(&args.lake.to_config(), &args.topic).map_err(|e| usage(e.to_string()))?;
    if let (Some(f), Some(t)) = (args.date_from, args.date_to)
        && f > t
    {
        return Err(usage("--date-from is after --date-to".into()));
    }
    let kafka = args
        .kafka
        .to_settings()
        .map_err(usage)?
        .map(|k| k.connection);
    let clickhouse = match args.clickhouse.to_settings(None, &args.topic, false) {
        Ok(Some(c)) => Some((
            crate::clickhouse::ClickHouse::new(c.connection).map_err(|e| usage(e.to_string()))?,
            c.target.database,
        )),
        Ok(None) => None,
        Err(e) => return Err(usage(e)),
    };
    let opts = crate::verify::VerifyOptions {
        samples: args.samples,
        date_from: args.date_from,
        date_to: args.date_to,
        list: args.list,
    };
    let sources = crate::verify::Sources {
        kafka,
        dlq_topic: args.kafka.dlq_topic.clone(),
        clickhouse,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("starting the runtime: {e}")))?;
    let report = rt
        .block_on(crate::verify::verify(&lake, &opts, &sources))
        .map_err(|e| usage(e.to_string()))?;
    if args.json {
        let j = serde_json::to_string_pretty(&report)
            .map_err(|e| usage(format!("encoding the report: {e}")))?;
        let _ = writeln!(out, "{j}");
    } else {
        let _ = writeln!(out, "{report}");
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(CommandError::Problems)
    }
}

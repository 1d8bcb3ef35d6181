//! `encore status` (alias `encore lag`): how far behind each part of the pipeline is, per
//! partition of one topic: the topic's watermarks, the lake's committed position, the sink
//! group's committed offset and, with `--clickhouse-url`, the offset ClickHouse's queue
//! committed; each stage's lag in records and seconds (see `report`).
//!
//! `kafka`, `lake` and `clickhouse` read one side each, every read bounded in time;
//! `report` holds the figures and their arithmetic, `table` the human view.

mod clickhouse;
mod kafka;
mod lake;
mod report;
mod table;

pub use report::{Position, Report};

use std::collections::BTreeSet;
use std::io::Write;

use crate::cli::StatusArgs;
use crate::config::ClickHouseConfig;
use crate::error::CommandError;
use crate::kafka::KafkaConnection;
use lake::LakeRead;
use report::{ClickHouseQueue, Marks, PartitionStatus, Sources, Times, Totals};

/// One stage's committed offset per partition (None: nothing committed there).
type StageOffsets = Vec<Option<i64>>;

/// Each stage's committed offsets, per partition (None for a stage not read).
#[derive(Default)]
struct Offsets {
    lake: Option<StageOffsets>,
    group: Option<StageOffsets>,
    clickhouse: Option<StageOffsets>,
}

impl Offsets {
    fn all(&self) -> [&Option<StageOffsets>; 3] {
        [&self.lake, &self.group, &self.clickhouse]
    }
}

/// Reads and prints the status `args` asks for. A stage that could not be read is shown as
/// "—" with a note, and its error decides the exit code once the rest is printed.
pub fn run(args: StatusArgs, out: &mut impl Write) -> Result<(), CommandError> {
    let (report, failure) = read(&args)?;
    let printed = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(|e| CommandError::Failed(format!("encoding the report: {e}")))?
    } else {
        report.to_string()
    };
    let _ = writeln!(out, "{}", printed.trim_end());
    failure.map_or(Ok(()), Err)
}

/// What was found, what is missing, and the first error of a stage that could not be read.
#[derive(Default)]
struct Findings {
    notes: Vec<String>,
    failure: Option<CommandError>,
}

impl Findings {
    fn failed(&mut self, stage: &str, e: CommandError) {
        self.notes.push(format!("{stage}: {e}"));
        self.failure.get_or_insert(e);
    }
}

fn read(args: &StatusArgs) -> Result<(Report, Option<CommandError>), CommandError> {
    let usage = CommandError::Usage;
    let topic = &args.topic;
    crate::lake::validate_table(topic).map_err(|e| usage(format!("--topic: {e}")))?;
    let k = args
        .kafka
        .to_settings()
        .map_err(usage)?
        .ok_or_else(|| usage("`encore status` needs --brokers (or ENCORE_BROKERS)".into()))?;
    let ch = args
        .clickhouse
        .to_settings(args.kafka.brokers.as_deref(), topic, false)
        .map_err(usage)?
        .map(|c| clickhouse::client(&c).map(|client| (client, c)))
        .transpose()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("starting the runtime: {e}")))?;
    let cfg = &k.connection;
    let marks = kafka::marks(cfg, topic)?;
    let n = marks.len();
    let mut found = Findings::default();
    let mut sources = Sources {
        lake: args.lake.lake.clone(),
        group: k.group.clone(),
        clickhouse: None,
    };
    let mut offsets = Offsets {
        group: Some(crate::kafka::committed_offsets(
            cfg, &k.group, topic, n as u32,
        )?),
        ..Offsets::default()
    };
    let lake_cfg = args.lake.to_config();
    let lake = lake::positions(&lake_cfg, topic, n, cfg.connect_timeout);
    match rt.block_on(lake) {
        Ok(LakeRead::Positions(p)) => offsets.lake = Some(p),
        Ok(LakeRead::Missing(why)) => found.notes.push(why),
        Err(e) => found.failed("lake", e),
    }
    if let Some(ch) = ch
        && let Some((q, o)) = read_clickhouse(&rt, ch, cfg, topic, n, &mut found)?
    {
        offsets.clickhouse = Some(o);
        sources.clickhouse = Some(q);
    }
    let times = waiting_times(cfg, topic, &marks, &offsets, &mut found.notes)?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let partitions = rows(&marks, &offsets, &times, now_ms);
    found.notes.extend(empty_stages(topic, &sources, &offsets));
    let report = Report {
        topic: topic.clone(),
        read_at_ms: now_ms,
        sources,
        totals: Totals::of(&partitions),
        partitions,
        notes: found.notes,
    };
    Ok((report, found.failure))
}

/// ClickHouse's queue of `topic` and its group's committed offsets; None (with a note) when
/// no table ingests the topic or ClickHouse could not be read.
fn read_clickhouse(
    rt: &tokio::runtime::Runtime,
    (client, ch): (crate::clickhouse::ClickHouse, ClickHouseConfig),
    cfg: &KafkaConnection,
    topic: &str,
    partitions: usize,
    found: &mut Findings,
) -> Result<Option<(ClickHouseQueue, StageOffsets)>, CommandError> {
    match rt.block_on(clickhouse::queue(&client, &ch, topic)) {
        Ok(Some(q)) => {
            let o = crate::kafka::committed_offsets(cfg, &q.group, topic, partitions as u32)?;
            Ok(Some((q, o)))
        }
        Ok(None) => {
            found.notes.push(format!(
                "no table of ClickHouse database `{}` ingests `{topic}` (`encore clickhouse \
                 setup` creates one)",
                ch.target.database
            ));
            Ok(None)
        }
        Err(e) => {
            found.failed("ClickHouse", e);
            Ok(None)
        }
    }
}

/// The timestamps of the first record each stage waits for, within `--connect-timeout`.
fn waiting_times(
    cfg: &KafkaConnection,
    topic: &str,
    marks: &[Marks],
    offsets: &Offsets,
    notes: &mut Vec<String>,
) -> Result<Times, CommandError> {
    let wanted: BTreeSet<(i32, i64)> = offsets
        .all()
        .into_iter()
        .flatten()
        .flat_map(|stage| {
            stage
                .iter()
                .zip(marks)
                .enumerate()
                .filter_map(|(p, (o, m))| m.waiting(*o).map(|at| (p as i32, at)))
        })
        .collect();
    let times = kafka::record_times(cfg, topic, &wanted, cfg.connect_timeout)?;
    if times.len() < wanted.len() {
        notes.push(format!(
            "the age of {} waiting records was not read within {} (--connect-timeout): \
             their lag in seconds is unknown (?)",
            wanted.len() - times.len(),
            humantime::format_duration(cfg.connect_timeout)
        ));
    }
    Ok(times)
}

fn rows(marks: &[Marks], offsets: &Offsets, times: &Times, now_ms: i64) -> Vec<PartitionStatus> {
    marks
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let p = i as i32;
            let at = |stage: &Option<StageOffsets>| {
                stage
                    .as_ref()
                    .map(|o| m.position(p, o.get(i).copied().flatten(), times, now_ms))
            };
            PartitionStatus {
                partition: p,
                low: m.low,
                high: m.high,
                lake: at(&offsets.lake),
                group: at(&offsets.group),
                clickhouse: at(&offsets.clickhouse),
            }
        })
        .collect()
}

/// Notes for stages read but holding no position at all (not errors: nothing ran yet).
fn empty_stages(topic: &str, sources: &Sources, offsets: &Offsets) -> Vec<String> {
    let empty =
        |o: &Option<StageOffsets>| o.as_ref().is_some_and(|o| o.iter().all(Option::is_none));
    let mut notes = Vec::new();
    if empty(&offsets.lake) {
        notes.push(format!(
            "the lake at `{}` has no commits of `{topic}`",
            sources.lake
        ));
    }
    if empty(&offsets.group) {
        notes.push(format!(
            "the group `{}` has no offsets on `{topic}`",
            sources.group
        ));
    }
    if let (true, Some(q)) = (empty(&offsets.clickhouse), &sources.clickhouse) {
        notes.push(format!(
            "ClickHouse's group `{}` has no offsets on `{topic}` yet",
            q.group
        ));
    }
    notes
}

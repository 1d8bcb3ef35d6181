//! ClickHouse against the lake (with `--clickhouse-url`): the event ids on either side only,
//! the copies not merged yet, per Kafka partition counts, and how far ClickHouse's own queue is
//! behind (with `--brokers`), which makes lake events it lacks not read yet rather than lost.
//! Only the tables that ingest the verified topic are compared (`tables`).

mod tables;

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::coverage::difference;
use super::report::{ClickHouseReport, Report};
use super::{Sources, VerifyError, VerifyOptions, blocking, source_error, uuid_text};
use crate::clickhouse::schema::{Dialect, queue_group};
use crate::clickhouse::{ChError, ClickHouse, quote_ident, quote_str};
use crate::kafka::KafkaConnection;

/// What ClickHouse says of the topic: the comparison, when a table ingests it, and notes.
pub(super) struct Reconciled {
    pub compared: Option<ClickHouseReport>,
    pub notes: Vec<String>,
}

fn ch_error(e: ChError) -> VerifyError {
    VerifyError::Source(format!("ClickHouse: {e}"))
}

/// The table ingesting `topic` against the lake's ids (sorted, distinct); None without
/// ClickHouse.
pub(super) async fn reconcile(
    topic: &str,
    sources: &Sources,
    lake_ids: &[u128],
    opts: &VerifyOptions,
) -> Result<Option<Reconciled>, VerifyError> {
    let Some((ch, db)) = &sources.clickhouse else {
        return Ok(None);
    };
    let version = ch.version().await.map_err(ch_error)?;
    let found = tables::find(db, topic, &tables::list(ch, db).await?);
    let Some((_, storage, engine_full)) = found.ingest else {
        return Ok(Some(Reconciled {
            compared: None,
            notes: found.notes,
        }));
    };
    let q = Query {
        ch,
        from: format!(
            "{}.{}{}",
            quote_ident(db).map_err(ch_error)?,
            quote_ident(&storage).map_err(ch_error)?,
            date_filter(opts)
        ),
    };
    let (rows, distinct) = q.counts().await?;
    let duplicate_ids = q.duplicate_ids(opts.list).await?;
    let ((missing, missing_ids), (extra, extra_ids)) =
        difference(lake_ids, &q.ids().await?, opts.list);
    let per_partition = if Dialect::for_version(version) == Dialect::Modern {
        q.per_partition().await?
    } else {
        BTreeMap::new()
    };
    let queue_lag = match &sources.kafka {
        Some(cfg) => queue_lag(&engine_full, cfg, topic).await?,
        None => None,
    };
    let compared = ClickHouseReport {
        table: format!("{db}.{storage}"),
        version: version.to_string(),
        rows,
        distinct,
        duplicates_before_merges: rows.saturating_sub(distinct),
        duplicate_ids,
        missing,
        missing_ids: missing_ids.into_iter().map(uuid_text).collect(),
        extra,
        extra_ids: extra_ids.into_iter().map(uuid_text).collect(),
        per_partition,
        queue_lag,
    };
    Ok(Some(Reconciled {
        compared: Some(compared),
        notes: found.notes,
    }))
}

/// ` WHERE …` for `--date-from`/`--date-to`, or nothing.
fn date_filter(opts: &VerifyOptions) -> String {
    let day = |d: NaiveDate| quote_str(&d.format("%Y-%m-%d").to_string());
    let mut conds = Vec::new();
    if let Some(from) = opts.date_from {
        conds.push(format!("toDate(event_time) >= toDate({})", day(from)));
    }
    if let Some(to) = opts.date_to {
        conds.push(format!("toDate(event_time) <= toDate({})", day(to)));
    }
    if conds.is_empty() {
        return String::new();
    }
    format!(" WHERE {}", conds.join(" AND "))
}

/// The queries on the table, with the date filter.
struct Query<'a> {
    ch: &'a ClickHouse,
    /// The quoted table and the filter.
    from: String,
}

impl Query<'_> {
    async fn run(&self, select: &str, rest: &str) -> Result<String, VerifyError> {
        let sql = format!("SELECT {select} FROM {}{rest}", self.from);
        self.ch.query(&sql).await.map_err(ch_error)
    }

    /// Rows and distinct event ids.
    async fn counts(&self) -> Result<(u64, u64), VerifyError> {
        let body = self.run("count(), uniqExact(event_id)", "").await?;
        let mut it = body
            .split_whitespace()
            .map(|n| n.parse::<u64>().unwrap_or(0));
        Ok((it.next().unwrap_or(0), it.next().unwrap_or(0)))
    }

    /// The first `list` ids held more than once.
    async fn duplicate_ids(&self, list: usize) -> Result<Vec<String>, VerifyError> {
        let rest = format!(" GROUP BY event_id HAVING count() > 1 ORDER BY event_id LIMIT {list}");
        let body = self.run("event_id", &rest).await?;
        Ok(body.lines().map(|l| l.trim().to_string()).collect())
    }

    /// Every event id, sorted and distinct.
    async fn ids(&self) -> Result<Vec<u128>, VerifyError> {
        let body = self.run("DISTINCT event_id", "").await?;
        let mut ids: Vec<u128> = body
            .lines()
            .filter_map(|l| uuid::Uuid::try_parse(l.trim()).ok())
            .map(|u| u.as_u128())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Per Kafka partition: rows, distinct ids, first and last offset (servers with the source
    /// columns).
    async fn per_partition(&self) -> Result<BTreeMap<i32, (u64, u64, i64, i64)>, VerifyError> {
        let select =
            "kafka_partition, count(), uniqExact(event_id), min(kafka_offset), max(kafka_offset)";
        let body = self
            .run(select, " GROUP BY kafka_partition ORDER BY kafka_partition")
            .await?;
        let mut out = BTreeMap::new();
        for l in body.lines() {
            let v: Vec<i64> = l.split('\t').filter_map(|x| x.parse().ok()).collect();
            if let [p, n, d, lo, hi] = v[..] {
                out.insert(p as i32, (n as u64, d as u64, lo, hi));
            }
        }
        Ok(out)
    }
}

/// How far ClickHouse's own queue (its `engine_full`) is behind: lake events it lacks may
/// simply not be read yet.
async fn queue_lag(
    engine_full: &str,
    cfg: &KafkaConnection,
    topic: &str,
) -> Result<Option<i64>, VerifyError> {
    let Some(group) = queue_group(engine_full) else {
        return Ok(None);
    };
    let (cfg, topic) = (cfg.clone(), topic.to_string());
    let lag = blocking(move || crate::kafka::group_lag(&cfg, &group, &topic))
        .await?
        .map_err(source_error)?;
    Ok(lag.map(|parts| parts.iter().map(|p| p.lag()).sum()))
}

/// ClickHouse's notes, and its differences as problems, or notes when the queue's lag, the
/// records in flight or merges explain them.
pub(super) fn add_findings(found: Reconciled, in_flight: i64, report: &mut Report) {
    report.notes.extend(found.notes);
    if let Some(r) = found.compared {
        add_differences(r, in_flight, report);
    }
}

fn add_differences(r: ClickHouseReport, in_flight: i64, report: &mut Report) {
    let subject = format!("ClickHouse {}", r.table);
    if r.missing > 0 {
        let ids = r.missing_ids.join(", ");
        match r.queue_lag {
            Some(lag) if lag >= r.missing as i64 => report.notes.push(format!(
                "ClickHouse has not consumed {lag} records yet; {} lake events not there yet (e.g. {ids})",
                r.missing
            )),
            _ => report.problem(
                "clickhouse_missing",
                &subject,
                format!("{} lake events are missing, e.g. {ids}", r.missing),
            ),
        }
    }
    if r.extra > 0 && in_flight >= r.extra as i64 {
        report.notes.push(format!(
            "{subject}: {} events not in the lake yet, which has {in_flight} records in flight",
            r.extra
        ));
    } else if r.extra > 0 {
        let ids = r.extra_ids.join(", ");
        let detail = format!("{} events are not in the lake, e.g. {ids}", r.extra);
        report.problem("clickhouse_extra", &subject, detail);
    }
    if r.duplicates_before_merges > 0 {
        report.notes.push(format!(
            "{subject}: {} extra copies not merged yet (FINAL hides them), e.g. {}",
            r.duplicates_before_merges,
            r.duplicate_ids.join(", ")
        ));
    }
    report.clickhouse = Some(r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_filter_the_queries() {
        assert_eq!(date_filter(&VerifyOptions::default()), "");
        let opts = VerifyOptions {
            date_from: NaiveDate::from_ymd_opt(2026, 1, 2),
            date_to: NaiveDate::from_ymd_opt(2026, 1, 3),
            ..VerifyOptions::default()
        };
        assert_eq!(
            date_filter(&opts),
            " WHERE toDate(event_time) >= toDate('2026-01-02') AND toDate(event_time) <= toDate('2026-01-03')"
        );
    }

    fn found(missing: u64, extra: u64, queue_lag: Option<i64>) -> ClickHouseReport {
        ClickHouseReport {
            table: "db.music_events".into(),
            rows: 12,
            distinct: 10,
            duplicates_before_merges: 2,
            duplicate_ids: vec!["a".into()],
            missing,
            missing_ids: vec!["m".into()],
            extra,
            extra_ids: vec!["x".into()],
            queue_lag,
            ..ClickHouseReport::default()
        }
    }

    #[test]
    fn differences_are_problems_unless_lag_or_in_flight_explain_them() {
        let mut report = Report::default();
        add_differences(found(3, 2, Some(2)), 1, &mut report);
        assert_eq!(
            report.problem_text(),
            "ClickHouse db.music_events: 3 lake events are missing, e.g. m\n\
             ClickHouse db.music_events: 2 events are not in the lake, e.g. x"
        );
        let kinds: Vec<&str> = report.problems.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, ["clickhouse_missing", "clickhouse_extra"]);
        assert_eq!(
            report.notes,
            [
                "ClickHouse db.music_events: 2 extra copies not merged yet (FINAL hides them), e.g. a"
            ]
        );
        assert!(report.clickhouse.is_some());

        let mut explained = Report::default();
        add_differences(found(3, 2, Some(3)), 2, &mut explained);
        assert!(explained.is_clean(), "{}", explained.problem_text());
        assert_eq!(
            explained.notes[..2],
            [
                "ClickHouse has not consumed 3 records yet; 3 lake events not there yet (e.g. m)",
                "ClickHouse db.music_events: 2 events not in the lake yet, which has 2 records in flight"
            ]
        );
    }

    #[test]
    fn a_topic_no_table_ingests_is_a_note() {
        let note =
            "ClickHouse: no table in `db` ingests topic `a` (it has no Kafka tables); not compared";
        let mut report = Report::default();
        let found = Reconciled {
            compared: None,
            notes: vec![note.into()],
        };
        add_findings(found, 0, &mut report);
        assert!(report.is_clean());
        assert_eq!(report.notes, [note]);
        assert!(report.clickhouse.is_none());
    }
}

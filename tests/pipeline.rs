//! The in-process pipeline end to end: listeners → bus → sink → local Parquet lake, read back
//! with the parquet crate. Delivery guarantee under test: every published event is in the lake
//! exactly once, in the right date partition, with the declared schema.

mod common;

use std::collections::HashSet;

use common::*;
use encore::config::ClockMode;
use encore::lake::schema::{event_date, lake_schema};

#[test]
fn every_event_lands_exactly_once_in_its_date_partition() {
    let dir = tempfile::tempdir().unwrap();
    let events = 30_000;
    // Starts 10 simulated minutes before midnight: batches span two dates.
    let summary = run(sim(events, 300, 11), sink(dir.path(), 2_000)).unwrap();
    assert_eq!(summary.published.published, events);
    assert_eq!(summary.rows, events);
    assert_eq!(summary.rejected, 0);
    assert_eq!(summary.restarts, 0);

    let files = read_files(dir.path());
    assert!(
        files.len() > 8,
        "small batches make many files: {}",
        files.len()
    );
    let mut dates = HashSet::new();
    let mut all = Vec::new();
    for (path, batches) in &files {
        for b in batches {
            assert_eq!(b.schema().fields(), lake_schema().fields(), "{path}");
        }
        let dir_date = path
            .split('/')
            .next()
            .unwrap()
            .strip_prefix("date=")
            .unwrap()
            .to_string();
        for r in rows(batches) {
            assert_eq!(
                event_date(r.event_time).to_string(),
                dir_date,
                "{path}: {r:?}"
            );
            dates.insert(dir_date.clone());
            all.push(r);
        }
    }
    assert!(dates.len() >= 2, "the run crossed midnight: {dates:?}");
    assert_eq!(all.len() as u64, events);
    let ids: HashSet<&str> = all.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids.len() as u64, events, "no duplicate event id");
    // Per partition the offsets are exactly 0..n: contiguous, nothing missing, nothing twice.
    for (p, offs) in offsets_by_partition(&all) {
        let want: Vec<i64> = (0..offs.len() as i64).collect();
        assert_eq!(offs, want, "partition {p}");
    }
    assert_listener_order(&all);
}

/// Per listener, offsets follow event time (one key, one partition, in order).
fn assert_listener_order(all: &[Row]) {
    let mut by_user: std::collections::BTreeMap<&str, Vec<&Row>> = Default::default();
    for r in all {
        by_user.entry(&r.user_id).or_default().push(r);
    }
    for (u, mut rs) in by_user {
        rs.sort_by_key(|r| r.offset);
        assert!(
            rs.windows(2).all(|w| w[0].partition == w[1].partition),
            "{u}"
        );
        assert!(
            rs.windows(2).all(|w| w[0].event_time <= w[1].event_time),
            "{u}"
        );
    }
}

#[test]
fn realtime_listeners_sharing_a_worker_keep_their_order() {
    // Many listeners per worker at a fast clock: each wake-up's due events of a worker's
    // listeners go to the publisher together; a small bus makes them wait for the sink.
    let dir = tempfile::tempdir().unwrap();
    let events = 20_000;
    let mut s = sim(events, 3_000, 12);
    s.clock = ClockMode::Realtime { speed: 3_000.0 };
    let mut cfg = sink(dir.path(), 2_000);
    cfg.bus_capacity = 256 << 10;
    let summary = run(s, cfg).unwrap();
    assert_eq!(summary.published.published, events);
    assert_eq!(summary.rows, events);
    let all = all_rows(dir.path());
    assert_eq!(all.len() as u64, events);
    for (p, offs) in offsets_by_partition(&all) {
        let want: Vec<i64> = (0..offs.len() as i64).collect();
        assert_eq!(offs, want, "partition {p}");
    }
    assert_listener_order(&all);
}

#[test]
fn same_seed_gives_every_listener_the_same_sequence() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(sim(8_000, 200, 42), sink(a.path(), 1_000)).unwrap();
    run(sim(8_000, 200, 42), sink(b.path(), 3_000)).unwrap();
    let key = |mut rows: Vec<Row>| {
        // Offsets depend on how listeners interleave; the per-listener sequences must not.
        rows.sort_by(|x, y| {
            (&x.user_id, x.event_time, &x.event_id).cmp(&(&y.user_id, y.event_time, &y.event_id))
        });
        rows.into_iter()
            .map(|r| {
                (
                    r.user_id,
                    r.event_time,
                    r.event_id,
                    r.event_type_id,
                    r.track_id,
                )
            })
            .collect::<Vec<_>>()
    };
    let (ra, rb) = (key(all_rows(a.path())), key(all_rows(b.path())));
    assert_eq!(ra.len(), 8_000);
    assert_eq!(ra, rb);
    let c = tempfile::tempdir().unwrap();
    run(sim(8_000, 200, 43), sink(c.path(), 1_000)).unwrap();
    assert_ne!(ra, key(all_rows(c.path())), "another seed, other events");
}

#[test]
fn a_second_run_appends_after_what_the_lake_holds() {
    let dir = tempfile::tempdir().unwrap();
    run(sim(5_000, 100, 1), sink(dir.path(), 1_500)).unwrap();
    let s = run(sim(7_000, 100, 2), sink(dir.path(), 1_500)).unwrap();
    assert_eq!(s.rows, 7_000);
    let all = all_rows(dir.path());
    assert_eq!(all.len(), 12_000);
    let ids: HashSet<&str> = all.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids.len(), 12_000);
    for (p, offs) in offsets_by_partition(&all) {
        let want: Vec<i64> = (0..offs.len() as i64).collect();
        assert_eq!(
            offs, want,
            "partition {p}: the bus continued the lake's offsets"
        );
    }
}

#[test]
fn verify_reports_a_clean_lake_and_names_damage() {
    let dir = tempfile::tempdir().unwrap();
    run(sim(6_000, 100, 5), sink(dir.path(), 1_000)).unwrap();
    let lake = encore::lake::Lake::open(
        &encore::lake::LakeConfig {
            url: dir.path().display().to_string(),
            ..Default::default()
        },
        "music_events",
    )
    .unwrap();
    let rt = rt();
    let verify = || {
        rt.block_on(encore::verify::verify(
            &lake,
            &Default::default(),
            &Default::default(),
        ))
        .unwrap()
    };
    let report = verify();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.rows, 6_000);
    assert_eq!(report.samples.as_ref().unwrap().num_rows(), 10);

    // Damage: truncate one file, drop a stray file in a partition directory.
    let (victim, _) = &read_files(dir.path())[0];
    let victim_path = dir.path().join("music_events").join(victim);
    let bytes = std::fs::read(&victim_path).unwrap();
    std::fs::write(&victim_path, &bytes[..bytes.len() / 2]).unwrap();
    let stray =
        victim_path.with_file_name("p00000-00000000000000999999-00000000000001000000.parquet");
    std::fs::write(&stray, b"PAR1").unwrap();
    let report = verify();
    assert!(!report.is_clean());
    let text = report.problem_text();
    assert!(
        text.contains(&format!("{victim}: unreadable Parquet")),
        "{text}"
    );
    assert!(text.contains("uncommitted leftover"), "{text}");
}

#[test]
fn tight_buffers_pause_instead_of_deadlocking() {
    // One permit for four partitions, a tiny bus, small batches: several partitions become
    // ready at once and must wait for each other's flushes.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = sink(dir.path(), 300);
    cfg.max_unflushed = 1;
    cfg.bus_capacity = 64 << 10;
    let path = dir.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run(sim(20_000, 200, 8), cfg));
    });
    let summary = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the run finishes (no deadlock)")
        .unwrap();
    assert_eq!(summary.rows, 20_000);
    assert_eq!(all_rows(&path).len(), 20_000);
}

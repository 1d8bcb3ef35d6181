//! The ClickHouse HTTP client against the real server of the stack (Debian's 18.16 here).

mod common;

use std::time::{Duration, Instant};

use common::clickhouse::clickhouse;
use common::rt;
use encore::clickhouse::{ChError, ClickHouse, ClickHouseConnection};

#[test]
fn reads_the_server_version() {
    let ch = ClickHouse::new(clickhouse()).unwrap();
    let v = rt().block_on(ch.version()).expect("SELECT version()");
    assert!(v.major >= 18, "version {v}");
    let one = rt().block_on(ch.query("SELECT 1 + 1")).unwrap();
    assert_eq!(one.trim(), "2");
}

#[test]
fn a_syntax_error_comes_back_at_once_with_clickhouse_s_own_message() {
    let ch = ClickHouse::new(clickhouse()).unwrap();
    let t0 = Instant::now();
    match rt().block_on(ch.query("SELEC 1")) {
        Err(ChError::Server { code, message, .. }) => {
            assert_eq!(code, Some(62), "{message}");
            assert!(message.contains("Syntax error"), "{message}");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "a server error was retried"
    );
}

#[test]
fn a_wrong_password_is_refused_and_never_echoed() {
    let mut cfg = clickhouse();
    cfg.password = Some("definitely-wrong-pw".into());
    let ch = ClickHouse::new(cfg).unwrap();
    let err = rt().block_on(ch.query("SELECT 1")).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ChError::Server {
                code: Some(193) | Some(516),
                ..
            }
        ),
        "{text}"
    );
    assert!(!text.contains("definitely-wrong-pw"), "{text}");
}

#[test]
fn an_unreachable_server_is_retried_then_named() {
    let ch = ClickHouse::new(ClickHouseConnection {
        url: "http://127.0.0.1:1".into(),
        user: "click".into(),
        password: None,
    })
    .unwrap();
    let t0 = Instant::now();
    let err = rt().block_on(ch.query("SELECT 1")).unwrap_err();
    let elapsed = t0.elapsed();
    match &err {
        ChError::Connect { url, attempts, .. } => {
            assert_eq!(url, "http://127.0.0.1:1");
            assert_eq!(*attempts, 5);
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
    // Four backoff sleeps: 0.2 + 0.4 + 0.8 + 1.6 s.
    assert!(
        elapsed >= Duration::from_millis(2900),
        "retried too fast: {elapsed:?}"
    );
}

//! The stack's ClickHouse: its configuration, and a database of one test with the flags that
//! point encore at it.

use std::process::Command;
use std::time::{Duration, Instant};

use encore::clickhouse::{ClickHouse, ClickHouseConnection, quote_ident};

use super::rt;
use super::stack::{reachable, unique, var};

/// The stack's ClickHouse (fails loudly when it does not answer).
pub fn clickhouse() -> ClickHouseConnection {
    let url = var("ENCORE_CLICKHOUSE_URL", "http://127.0.0.1:8123");
    reachable("ClickHouse", &url);
    ClickHouseConnection {
        url,
        user: var("ENCORE_CLICKHOUSE_USER", "click"),
        password: Some(var("ENCORE_CLICKHOUSE_PASSWORD", "click")),
    }
}

/// A ClickHouse database of one test, dropped (with its Kafka tables, which would otherwise
/// consume forever) when the guard goes.
pub struct ChDatabase {
    pub ch: ClickHouse,
    pub name: String,
}

impl ChDatabase {
    /// A fresh name from `prefix` on the stack's ClickHouse (nothing is created yet).
    pub fn new(prefix: &str) -> ChDatabase {
        ChDatabase {
            ch: ClickHouse::new(clickhouse()).unwrap(),
            name: unique(prefix).replace('-', "_"),
        }
    }

    /// Adds to `c` the flags and the password that point encore at this database.
    pub fn flags<'c>(&self, c: &'c mut Command) -> &'c mut Command {
        let cfg = self.ch.config();
        c.args(["--clickhouse-url", &cfg.url])
            .args(["--clickhouse-user", &cfg.user])
            .args(["--clickhouse-database", &self.name])
            .env(
                "ENCORE_CLICKHOUSE_PASSWORD",
                cfg.password.as_deref().unwrap_or(""),
            )
    }

    /// The answer to `sql`, which must succeed.
    pub fn sql(&self, sql: &str) -> String {
        rt().block_on(self.ch.query(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The quoted name of this database's table `name`.
    pub fn table(&self, name: &str) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.name).unwrap(),
            quote_ident(name).unwrap()
        )
    }

    /// Polls `sql` (one number) every 500 ms until it reaches `want` or `deadline` passes;
    /// returns the last value seen (0 while the query fails: a server just started, a table
    /// not made yet).
    pub fn wait_for_count(&self, sql: &str, want: u64, deadline: Duration) -> u64 {
        let end = Instant::now() + deadline;
        loop {
            let n: u64 = rt()
                .block_on(self.ch.query(sql))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            if n >= want || Instant::now() > end {
                return n;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for ChDatabase {
    fn drop(&mut self) {
        if let Ok(q) = quote_ident(&self.name) {
            let _ = rt().block_on(self.ch.query(&format!("DROP DATABASE IF EXISTS {q}")));
        }
    }
}

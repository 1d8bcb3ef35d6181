//! ClickHouse over its HTTP interface: a small client for the DDL actor and the query presets.
//!
//! Credentials travel in the `X-ClickHouse-User` / `X-ClickHouse-Key` headers (supported since
//! long before 18.16), never in the URL, and are redacted from `Debug`. Connection failures are
//! retried with backoff; an answer from the server (syntax, permissions, a missing table) is not,
//! and comes back with ClickHouse's own code and message.

pub mod commands;
pub mod schema;
pub mod setup;

use std::fmt;
use std::time::Duration;

/// How to reach ClickHouse.
#[derive(Clone)]
pub struct ClickHouseConnection {
    /// `http://host:8123` (or https); no credentials in it.
    pub url: String,
    pub user: String,
    /// Never printed: `Debug` redacts it.
    pub password: Option<String>,
}

impl fmt::Debug for ClickHouseConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConnection")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChError {
    /// A bad URL, identifier or setting: the user's to fix.
    #[error("{0}")]
    Config(String),
    /// The server did not answer (after retries).
    #[error("cannot reach ClickHouse at {url} ({attempts} attempts): {reason}")]
    Connect {
        url: String,
        attempts: u32,
        reason: String,
    },
    /// The request left, and its answer did not come (a timeout, a dropped connection): not
    /// repeated, since it may have run.
    #[error("no answer from ClickHouse at {url}: {reason}")]
    Sent { url: String, reason: String },
    /// The server answered with an error: its code and message, as ClickHouse wrote them.
    #[error("ClickHouse refused the query (HTTP {status}{}): {message}", code.map(|c| format!(", code {c}")).unwrap_or_default())]
    Server {
        status: u16,
        code: Option<u32>,
        message: String,
    },
}

impl ChError {
    /// A connection that could not be made: nothing was sent, so trying again is safe.
    pub fn is_retriable(&self) -> bool {
        matches!(self, ChError::Connect { .. })
    }

    /// The server did not answer (not reached, or silent): a network or a server to look at,
    /// not a refusal.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ChError::Connect { .. } | ChError::Sent { .. })
    }
}

/// A server version, e.g. 18.16.1 or 25.8.1.5101.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let mut it = s.trim().split('.').map(|p| p.parse::<u32>());
        let major = it.next()?.ok()?;
        let minor = it.next()?.ok()?;
        let patch = it.next().and_then(|p| p.ok()).unwrap_or(0);
        Some(Version {
            major,
            minor,
            patch,
        })
    }

    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// How long a client keeps trying a server that refuses connections unless told otherwise:
/// five attempts (backoff 200 ms doubling to 3 s), enough for a server that is restarting.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(3);

/// A ClickHouse HTTP client.
#[derive(Clone, Debug)]
pub struct ClickHouse {
    cfg: ClickHouseConnection,
    /// How long a query keeps retrying a connection that fails (None: until it succeeds).
    patience: Option<Duration>,
    http: reqwest::Client,
    user: reqwest::header::HeaderValue,
    /// Marked sensitive: never shown by reqwest's Debug.
    key: Option<reqwest::header::HeaderValue>,
}

impl ClickHouse {
    pub fn new(cfg: ClickHouseConnection) -> Result<ClickHouse, ChError> {
        let url = reqwest::Url::parse(&cfg.url)
            .map_err(|e| ChError::Config(format!("--clickhouse-url `{}`: {e}", cfg.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ChError::Config(format!(
                "--clickhouse-url `{}`: use http:// or https://",
                cfg.url
            )));
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err(ChError::Config(
                "--clickhouse-url must not carry credentials or a query string; use \
                 --clickhouse-user and ENCORE_CLICKHOUSE_PASSWORD"
                    .into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ChError::Config(format!("HTTP client: {e}")))?;
        // Checked here, not at the first request: a user or password that cannot travel in a
        // header is a setting to fix, not a connection to retry.
        let header = |what: &str, v: &str| {
            reqwest::header::HeaderValue::from_str(v).map_err(|_| {
                ChError::Config(format!(
                    "the ClickHouse {what} contains characters an HTTP header cannot carry"
                ))
            })
        };
        let user = header("user", &cfg.user)?;
        let key = match &cfg.password {
            Some(p) => {
                let mut v = header("password", p)?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(ClickHouse {
            cfg,
            patience: Some(DEFAULT_PATIENCE),
            http,
            user,
            key,
        })
    }

    /// The same client, retrying failed connections for `patience` (None: for as long as it
    /// takes; ZERO: one attempt). The only place encore retries ClickHouse: callers that wait
    /// longer for a server ask for more patience rather than looping themselves.
    pub fn with_patience(mut self, patience: Option<Duration>) -> ClickHouse {
        self.patience = patience;
        self
    }

    pub fn config(&self) -> &ClickHouseConnection {
        &self.cfg
    }

    /// Runs one statement; the body of the answer (TabSeparated unless the SQL says otherwise).
    /// Only failures to connect are retried, within the client's patience: a request that
    /// timed out after it was sent may have run (a DROP, a slow query) and is not repeated.
    pub async fn query(&self, sql: &str) -> Result<String, ChError> {
        let started = tokio::time::Instant::now();
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(sql, attempt).await {
                Err(e) if e.is_retriable() && self.may_wait(started, delay) => {
                    // Loud once, then quiet: a long outage must not flood the log.
                    if attempt == 1 {
                        tracing::warn!(url = %self.cfg.url, error = %e, "ClickHouse not reachable; retrying");
                    } else {
                        tracing::debug!(url = %self.cfg.url, attempt, error = %e, "ClickHouse still not reachable");
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
                other => return other,
            }
        }
    }

    fn may_wait(&self, started: tokio::time::Instant, delay: Duration) -> bool {
        self.patience.is_none_or(|p| started.elapsed() + delay <= p)
    }

    async fn attempt(&self, sql: &str, attempt: u32) -> Result<String, ChError> {
        let mut req = self
            .http
            .post(&self.cfg.url)
            .header("X-ClickHouse-User", self.user.clone())
            .body(sql.to_string());
        if let Some(p) = &self.key {
            req = req.header("X-ClickHouse-Key", p.clone());
        }
        let connect = |reason: String| ChError::Connect {
            url: self.cfg.url.clone(),
            attempts: attempt,
            reason,
        };
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                connect(error_chain(&e))
            } else {
                ChError::Sent {
                    url: self.cfg.url.clone(),
                    reason: error_chain(&e),
                }
            }
        })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| ChError::Sent {
            url: self.cfg.url.clone(),
            reason: format!("reading the answer: {e}"),
        })?;
        if status.is_success() {
            return Ok(body);
        }
        Err(server_error(status.as_u16(), &body))
    }

    /// The server's version (`SELECT version()`).
    pub async fn version(&self) -> Result<Version, ChError> {
        let v = self.query("SELECT version()").await?;
        Version::parse(&v).ok_or_else(|| ChError::Server {
            status: 200,
            code: None,
            message: format!("unexpected version string `{}`", v.trim()),
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// ClickHouse error bodies start with `Code: N, e.displayText() = …` (old) or `Code: N. DB::…`.
fn server_error(status: u16, body: &str) -> ChError {
    let body = body.trim();
    let code = body
        .strip_prefix("Code: ")
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|d| d.parse().ok());
    ChError::Server {
        status,
        code,
        message: body.to_string(),
    }
}

/// A validated identifier (database, table, column), back-quoted for ClickHouse.
pub fn quote_ident(name: &str) -> Result<String, ChError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128;
    if !ok {
        return Err(ChError::Config(format!(
            "`{name}` is not a valid ClickHouse name (letters, digits and _, not starting with a digit, at most 128)"
        )));
    }
    Ok(format!("`{name}`"))
}

/// A string literal: single-quoted, with backslashes and quotes escaped.
pub fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_old_and_new() {
        let old = Version::parse("18.16.1\n").unwrap();
        assert_eq!((old.major, old.minor, old.patch), (18, 16, 1));
        let new = Version::parse("25.8.1.5101").unwrap();
        assert!(new.at_least(25, 8) && !old.at_least(19, 1) && new > old);
        assert!(Version::parse("x.y").is_none());
    }

    #[test]
    fn identifiers_are_validated_and_literals_escaped() {
        assert_eq!(quote_ident("music_events").unwrap(), "`music_events`");
        for bad in ["", "1abc", "a;drop table x", "a`b", "näme", "a b"] {
            assert!(quote_ident(bad).is_err(), "{bad}");
        }
        assert_eq!(quote_str(r"it's a \ test"), r"'it\'s a \\ test'");
    }

    #[test]
    fn server_errors_keep_code_and_message() {
        match server_error(
            400,
            "Code: 62, e.displayText() = DB::Exception: Syntax error\n",
        ) {
            ChError::Server { code, message, .. } => {
                assert_eq!(code, Some(62));
                assert!(message.contains("Syntax error"));
            }
            e => panic!("{e}"),
        }
        match server_error(404, "Code: 60. DB::Exception: Table x doesn't exist.") {
            ChError::Server { code, .. } => assert_eq!(code, Some(60)),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn urls_with_credentials_are_refused_and_debug_redacts() {
        let cfg = |url: &str| ClickHouseConnection {
            url: url.into(),
            user: "click".into(),
            password: Some("s3cr3t".into()),
        };
        assert!(ClickHouse::new(cfg("http://u:p@host:8123")).is_err());
        assert!(ClickHouse::new(cfg("http://host:8123/?password=p")).is_err());
        assert!(ClickHouse::new(cfg("ftp://host")).is_err());
        let ok = ClickHouse::new(cfg("http://127.0.0.1:8123")).unwrap();
        assert!(!format!("{ok:?}").contains("s3cr3t"));
        let mut bad = cfg("http://127.0.0.1:8123");
        bad.password = Some("line\nbreak".into());
        assert!(matches!(ClickHouse::new(bad), Err(ChError::Config(_))));
    }
}

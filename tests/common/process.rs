//! The encore binary as the tests run it: a command without the caller's settings, a child
//! process whose stderr is kept in a log file, and what a finished command printed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary with none of the caller's `ENCORE_*` settings (a shell that evaluated
/// `scripts/stack.sh env` would otherwise turn embedded runs into Kafka runs).
pub fn encore() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_encore"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ENCORE_") {
            c.env_remove(k);
        }
    }
    c
}

/// Everything a finished command printed: its stdout, then its stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The number after `label` in encore's summary.
pub fn figure(summary: &str, label: &str) -> u64 {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` in the summary:\n{summary}"));
    line.trim_start()[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no figure in `{line}`"))
}

/// A child `encore` process whose stderr goes to a log file (shown when an assertion fails).
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
    pub name: String,
}

impl Proc {
    pub fn spawn(cmd: Command, name: &str, dir: &Path) -> Proc {
        Self::start(cmd, name, dir, Stdio::null())
    }

    /// Like `spawn`, with stdout kept for `wait_output`.
    pub fn spawn_capturing(cmd: Command, name: &str, dir: &Path) -> Proc {
        Self::start(cmd, name, dir, Stdio::piped())
    }

    fn start(mut cmd: Command, name: &str, dir: &Path, out: Stdio) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let err = File::create(&log).unwrap();
        let child = cmd
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc {
            child,
            log,
            name: name.to_string(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle` (at most `deadline`).
    pub fn wait_log(&self, needle: &str, deadline: Duration) {
        let started = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                started.elapsed() < deadline,
                "`{needle}` not in {}'s log within {deadline:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig} {}", self.name);
    }

    /// SIGSTOP: the process keeps its sockets and stops answering (a long GC pause, a frozen VM).
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Proc::freeze`].
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// SIGTERM, without waiting (then `wait_output` for the summary).
    pub fn interrupt(&self) {
        self.signal("-TERM");
    }

    /// SIGKILL, and reap.
    pub fn kill(mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the drain (at most `patience`).
    pub fn term(mut self, patience: Duration) -> (ExitStatus, String) {
        self.signal("-TERM");
        let end = Instant::now() + patience;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st, self.log());
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not stop within {patience:?} of SIGTERM:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, whose drain (at most `patience`) must end with exit 0: the log.
    pub fn term_ok(self, patience: Duration) -> String {
        let name = self.name.clone();
        let (st, log) = self.term(patience);
        assert!(st.success(), "{name} exit {st}:\n{log}");
        log
    }

    /// Waits for the process to end by itself (at most `patience`): its status and stdout
    /// (see `spawn_capturing`).
    pub fn wait_output(&mut self, patience: Duration) -> (ExitStatus, String) {
        use std::io::Read;
        let mut out = String::new();
        let reader = self.child.stdout.take().map(|mut s| {
            std::thread::spawn(move || {
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                buf
            })
        });
        let end = Instant::now() + patience;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                Instant::now() < end,
                "{} did not finish within {patience:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        if let Some(r) = reader {
            out = r.join().unwrap_or_default();
        }
        (status, out)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A failed assertion must not leave a sink consuming in the background.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

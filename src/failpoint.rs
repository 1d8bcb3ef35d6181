//! Failpoints: named steps of the lake's claim and commit protocol where a test build can crash
//! the process or hold it, so that tests interrupt the real code at every step instead of
//! writing its intermediate states by hand. Compiled in only with the `failpoints` feature (the
//! stack tests turn it on); without it, [`at`] is an empty function.
//!
//! `ENCORE_FAILPOINTS="name=action;name=action"`, where an action is
//! - `abort`: the first time the step is reached, the process aborts (SIGABRT: no destructor,
//!   no flush, no goodbye to the group, like a power cut);
//! - `abort@N`: the same on the N-th time;
//! - `hold:PATH`: every time the step is reached, it waits until PATH exists, then goes on.
//!
//! Each line a failpoint prints starts with `failpoint <name>:`, which tests wait for.

/// Every failpoint, in protocol order (tests iterate over them).
pub const NAMES: &[&str] = &[
    CLAIM_BEFORE,
    CLAIM_AFTER,
    RECOVERY_BEFORE_CHECKPOINT,
    COMMIT_AFTER_INTENT,
    COMMIT_AFTER_FILE,
    COMMIT_BEFORE_MARKER,
    COMMIT_AFTER_MARKER,
    COMMIT_DONE,
    BEATEN_AFTER_FILES,
];

/// Before the create-only put of a claim.
pub const CLAIM_BEFORE: &str = "claim.before";
/// The claim is created; nothing of the partition deleted yet.
pub const CLAIM_AFTER: &str = "claim.after";
/// Recovery settled the intents; the checkpoint is not moved yet.
pub const RECOVERY_BEFORE_CHECKPOINT: &str = "recovery.before_checkpoint";
/// A batch's intent is written, none of its data files.
pub const COMMIT_AFTER_INTENT: &str = "commit.after_intent";
/// After each data file of a batch.
pub const COMMIT_AFTER_FILE: &str = "commit.after_file";
/// The fence was checked; the marker is not created yet.
pub const COMMIT_BEFORE_MARKER: &str = "commit.before_marker";
/// The marker is created (the range is committed); its intent is still there.
pub const COMMIT_AFTER_MARKER: &str = "commit.after_marker";
/// The commit is complete; the checkpoint is not moved yet.
pub const COMMIT_DONE: &str = "commit.done";
/// A beaten writer's files are removed; its intent is still there.
pub const BEATEN_AFTER_FILES: &str = "beaten.after_files";

/// Reaches the failpoint `name`: aborts or holds when `ENCORE_FAILPOINTS` says so.
#[cfg(feature = "failpoints")]
pub async fn at(name: &'static str) {
    imp::at(name).await
}

/// Checks `ENCORE_FAILPOINTS` at start (a test with a typo in it fails at once, not at the
/// first step reached).
#[cfg(feature = "failpoints")]
pub fn check() -> Result<(), String> {
    imp::check()
}

#[cfg(not(feature = "failpoints"))]
pub fn check() -> Result<(), String> {
    Ok(())
}

/// Without the `failpoints` feature, nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn at(_name: &'static str) {}

#[cfg(feature = "failpoints")]
mod imp {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    enum Action {
        Abort { on_hit: u64, hits: AtomicU64 },
        Hold(std::path::PathBuf),
    }

    fn actions() -> &'static HashMap<String, Action> {
        static ACTIONS: OnceLock<HashMap<String, Action>> = OnceLock::new();
        ACTIONS.get_or_init(|| parse_all().unwrap_or_else(|e| panic!("ENCORE_FAILPOINTS: {e}")))
    }

    fn parse_all() -> Result<HashMap<String, Action>, String> {
        let spec = std::env::var("ENCORE_FAILPOINTS").unwrap_or_default();
        spec.split(';')
            .filter(|s| !s.trim().is_empty())
            .map(parse)
            .collect()
    }

    pub fn check() -> Result<(), String> {
        parse_all()
            .map(drop)
            .map_err(|e| format!("ENCORE_FAILPOINTS: {e}"))
    }

    fn parse(item: &str) -> Result<(String, Action), String> {
        let (name, action) = item
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("'{item}' is not name=action"))?;
        if !super::NAMES.contains(&name) {
            return Err(format!(
                "unknown failpoint '{name}' (known: {:?})",
                super::NAMES
            ));
        }
        let action = if let Some(path) = action.strip_prefix("hold:") {
            Action::Hold(path.into())
        } else if action == "abort" {
            Action::Abort {
                on_hit: 1,
                hits: AtomicU64::new(0),
            }
        } else if let Some(n) = action.strip_prefix("abort@") {
            let on_hit = n
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("'{action}': abort@N needs N >= 1"))?;
            Action::Abort {
                on_hit,
                hits: AtomicU64::new(0),
            }
        } else {
            return Err(format!("'{action}': expected abort, abort@N or hold:PATH"));
        };
        Ok((name.to_string(), action))
    }

    pub async fn at(name: &'static str) {
        match actions().get(name) {
            None => {}
            Some(Action::Abort { on_hit, hits })
                if hits.fetch_add(1, Ordering::SeqCst) + 1 == *on_hit =>
            {
                eprintln!("failpoint {name}: abort (hit {on_hit})");
                std::process::abort();
            }
            Some(Action::Abort { .. }) => {}
            Some(Action::Hold(path)) => {
                eprintln!("failpoint {name}: holding until {} exists", path.display());
                while !path.exists() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                eprintln!("failpoint {name}: released");
            }
        }
    }
}

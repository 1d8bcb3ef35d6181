//! How a command failed, which decides its exit code: 1 when it ran and failed or found
//! problems, 2 when the user must fix a flag, a setting or a server's address (nothing was
//! written). `main.rs` maps it to the process's exit code; every subsystem's own error converts
//! into it.

use crate::clickhouse::ChError;
use crate::clickhouse::setup::SetupError;
use crate::kafka::KafkaSetupError;
use crate::pipeline::RunError;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A flag, a setting or a location to fix.
    #[error("{0}")]
    Usage(String),
    /// The command ran and failed; the message says why.
    #[error("{0}")]
    Failed(String),
    /// The command printed its findings already (verify's report): exit 1, nothing more to say.
    #[error("problems found")]
    Problems,
    /// A run's failure, with the summary of how far it got.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Usage(_) => 2,
            CommandError::Run(RunError::Usage(_) | RunError::Kafka(_)) => 2,
            // A bad location or rejected credentials is a usage error; a corrupt marker is not.
            CommandError::Run(RunError::Lake(e)) if e.is_config() => 2,
            _ => 1,
        }
    }
}

impl From<SetupError> for CommandError {
    /// A setting to fix or a server to reach is the user's (2); a refusal is the server's (1).
    fn from(e: SetupError) -> Self {
        match &e {
            SetupError::Ch(c @ ChError::Config(_)) => CommandError::Usage(c.to_string()),
            SetupError::Ch(c) if c.is_unreachable() => CommandError::Usage(c.to_string()),
            e => CommandError::Failed(e.to_string()),
        }
    }
}

impl From<KafkaSetupError> for CommandError {
    /// Every Kafka set-up failure is the user's to fix (see [`KafkaSetupError`]).
    fn from(e: KafkaSetupError) -> Self {
        CommandError::Usage(e.to_string())
    }
}

impl From<ChError> for CommandError {
    fn from(e: ChError) -> Self {
        SetupError::from(e).into()
    }
}

/// `eprintln!` that never panics: a closed stderr (`encore … 2>&1 | head`) must not turn a
/// run that is writing data into a crash.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_say_whose_move_it_is() {
        assert_eq!(CommandError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CommandError::Problems.exit_code(), 1);
        let refused = CommandError::from(SetupError::Drift(vec!["a".into()]));
        assert_eq!(refused.exit_code(), 1);
        let down = CommandError::from(ChError::Connect {
            url: "http://h".into(),
            attempts: 1,
            reason: "refused".into(),
        });
        assert_eq!(down.exit_code(), 2);
        assert_eq!(
            CommandError::from(RunError::Usage("x".into())).exit_code(),
            2
        );
        assert_eq!(
            CommandError::from(RunError::Refused("x".into())).exit_code(),
            1
        );
        let unreachable = KafkaSetupError::Unreachable {
            brokers: "b:9092".into(),
            timeout: std::time::Duration::from_secs(1),
            reason: "refused".into(),
        };
        assert_eq!(CommandError::from(unreachable).exit_code(), 2);
        let missing = RunError::from(KafkaSetupError::TopicMissing("t".into()));
        assert_eq!(CommandError::from(missing).exit_code(), 2);
    }
}

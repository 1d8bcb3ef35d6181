//! Secrets do not belong on the command line.

/// Refuses secrets typed on the command line (`--kafka-config sasl.password=…`): every user
/// of the machine can read a process's arguments. They belong in ENCORE_KAFKA_CONFIG or a
/// `--kafka-config-file`.
pub fn refuse_secrets_in_arguments(m: &clap::ArgMatches) -> Result<(), String> {
    use clap::parser::ValueSource;
    if let Some((_, sub)) = m.subcommand() {
        refuse_secrets_in_arguments(sub)?;
    }
    let from_args = m
        .try_get_many::<(String, String)>("kafka_config")
        .ok()
        .flatten()
        .filter(|_| m.value_source("kafka_config") == Some(ValueSource::CommandLine));
    if let Some(key) = from_args
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .find(|k| crate::kafka::is_secret(k))
    {
        return Err(format!(
            "--kafka-config {key}=…: a secret on the command line is visible to every user of this machine; put it in ENCORE_KAFKA_CONFIG or a --kafka-config-file"
        ));
    }
    Ok(())
}

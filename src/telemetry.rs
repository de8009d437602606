//! Logging setup.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A parsed log filter, checked before anything else runs so a typo in `--log-level` is an
/// error at start rather than silence.
pub struct Logging {
    format: LogFormat,
    filter: EnvFilter,
}

/// Parses the log settings without installing them.
pub fn parse(format: LogFormat, filter: &str) -> Result<Logging, String> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|err| format!("--log-level {filter:?} is not a valid filter: {err}"))?;
    Ok(Logging { format, filter })
}

/// Installs the global tracing subscriber.
pub fn init(Logging { format, filter }: Logging) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A subscriber already installed (tests run the operator in-process) is not an error.
    let _ = installed;
}

//! How the long-running commands (`server`, `worker`) log: one line per event on standard
//! error, as text or JSON, filtered by `STIGMER_LOG`.

use clap::ValueEnum;

/// How a long-running command logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// Logs to standard error in `format` (colored when `color`), at `STIGMER_LOG` or `info`.
pub(super) fn init_logging(format: LogFormat, color: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(super::settings::ENV_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(color);
    // A subscriber already set (a test harness) keeps its place.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

//! Settings resolved once, from flags > environment > defaults, into the value commands receive.
//! Environment variable names are declared here and nowhere else.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::backend::LocalBackend;

/// `NO_COLOR`: when set to anything non-empty, no colors (<https://no-color.org>).
pub const ENV_NO_COLOR: &str = "NO_COLOR";
/// `STIGMER_HOME`: where stigmer keeps its store and configuration (default `~/.stigmer`).
pub const ENV_HOME: &str = "STIGMER_HOME";
/// `STIGMER_LOCK_WAIT`: seconds to wait for another stigmer process holding the local store.
pub const ENV_LOCK_WAIT: &str = "STIGMER_LOCK_WAIT";
/// `USER` / `USERNAME`: the local actor recorded in revisions and the audit log.
const ENV_USER: [&str; 2] = ["USER", "USERNAME"];

/// When to color output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    /// Color when writing to a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// When to use colors.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// stigmer's home directory: store and configuration [env: `STIGMER_HOME`] [default: ~/.stigmer]
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
}

/// Resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Color standard output.
    pub color_stdout: bool,
    /// Color standard error.
    pub color_stderr: bool,
    /// Whether standard error is a terminal (for progress output).
    pub interactive: bool,
    /// stigmer's home directory.
    pub home: PathBuf,
    /// The local actor.
    pub actor: String,
    /// How long to wait for another process holding the local store.
    pub lock_wait: Duration,
}

impl Settings {
    /// Resolves settings from the flags and the process environment.
    #[must_use]
    pub fn resolve(args: &GlobalArgs) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let no_color = var(ENV_NO_COLOR).is_some();
        let decide = |is_terminal: bool| match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        };
        let home =
            args.home.clone().or_else(|| var(ENV_HOME).map(PathBuf::from)).unwrap_or_else(|| {
                std::env::home_dir().map_or_else(|| PathBuf::from(".stigmer"), |h| h.join(".stigmer"))
            });
        let actor = ENV_USER.iter().find_map(|name| var(name)).unwrap_or_else(|| "local".to_owned());
        let lock_wait = var(ENV_LOCK_WAIT).and_then(|s| s.parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0);
        Self {
            color_stdout: decide(std::io::stdout().is_terminal()),
            color_stderr: decide(std::io::stderr().is_terminal()),
            interactive: std::io::stderr().is_terminal(),
            home,
            actor,
            lock_wait: lock_wait.map_or(Duration::from_secs(10), Duration::from_secs_f64),
        }
    }

    /// The backend the commands use: the local store under the home directory.
    #[must_use]
    pub fn backend(&self) -> LocalBackend {
        LocalBackend::new(self.home.join("local.db"), self.actor.clone()).with_wait(self.lock_wait)
    }
}

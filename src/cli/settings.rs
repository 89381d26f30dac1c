//! Settings resolved once, from flags > environment > defaults, into the value commands receive.
//! Environment variable names are declared here and nowhere else.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};

/// `NO_COLOR`: when set to anything non-empty, no colors (<https://no-color.org>).
pub const ENV_NO_COLOR: &str = "NO_COLOR";

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
}

/// Resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Color standard output.
    pub color_stdout: bool,
    /// Color standard error.
    pub color_stderr: bool,
}

impl Settings {
    /// Resolves settings from the flags and the process environment.
    #[must_use]
    pub fn resolve(args: &GlobalArgs) -> Self {
        let no_color = std::env::var_os(ENV_NO_COLOR).is_some_and(|v| !v.is_empty());
        let decide = |is_terminal: bool| match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !no_color,
        };
        Self {
            color_stdout: decide(std::io::stdout().is_terminal()),
            color_stderr: decide(std::io::stderr().is_terminal()),
        }
    }
}

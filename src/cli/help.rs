//! What every command's help ends with: its examples, and the environment variables it reads,
//! each described once here so that every command says the same of it.

use std::fmt::Write as _;

use super::settings;
use crate::runner::agent::provider::settings as model;

/// An environment variable and what it does.
pub struct Var {
    /// Its name.
    pub name: &'static str,
    /// What it does, in a few words.
    pub about: &'static str,
}

/// Output: every command.
pub const COLOR: &[Var] = &[Var { name: settings::ENV_NO_COLOR, about: "no colors when set to anything" }];

/// Where stigmer keeps its store and configuration.
pub const HOME: &[Var] =
    &[Var { name: settings::ENV_HOME, about: "stigmer's home: store, configuration, contexts (default ~/.stigmer)" }];

/// Which backend a command uses, when not the current context.
pub const BACKEND: &[Var] = &[
    Var { name: settings::ENV_ENDPOINT, about: "a server to use instead of the current context (for CI)" },
    Var { name: settings::ENV_TOKEN, about: "the API token for STIGMER_ENDPOINT" },
    Var { name: settings::ENV_ORG, about: "the org to act in on STIGMER_ENDPOINT" },
    Var { name: settings::ENV_CA_CERT, about: "a PEM CA certificate to trust for STIGMER_ENDPOINT" },
    Var { name: settings::ENV_LOCK_WAIT, about: "seconds to wait for another process holding the local store (10)" },
];

/// The local store's secrets.
pub const SECRETS: &[Var] = &[Var {
    name: crate::secrets::ENV_MASTER_KEY,
    about: "64 hex digits: the local store's secrets key (else master.key in the home)",
}];

/// The model an agent runs on.
pub const MODEL: &[Var] = &[
    Var { name: model::ENV_LLM_PROVIDER, about: "ollama, openai or anthropic, when the agent names none" },
    Var { name: model::ENV_LLM_MODEL, about: "the model, when the agent names none" },
    Var { name: model::ENV_LLM_BASE_URL, about: "the provider's API URL (Ollama: http://localhost:11434/v1)" },
    Var { name: model::ENV_LLM_TIMEOUT, about: "seconds one model request may take, streaming included (600)" },
    Var { name: model::ENV_OPENAI_API_KEY, about: "the key for openai, unless a run's variables give one" },
    Var { name: model::ENV_ANTHROPIC_API_KEY, about: "the key for anthropic, unless a run's variables give one" },
];

/// What a server reads besides its flags.
pub const SERVER: &[Var] = &[
    Var {
        name: crate::secrets::ENV_MASTER_KEY,
        about: "64 hex digits: every org's secrets key (else DATA/master.key)",
    },
    Var { name: settings::ENV_LOG, about: "what the server logs: info (default), debug, or a tracing filter" },
];

/// What the server commands that take `--store` read.
pub const STORE: &[Var] = &[Var {
    name: settings::ENV_STORE_URL,
    about: "a PostgreSQL database (postgres://…) to use when --store names none",
}];

/// The text after a command's options: `Examples:` and `Environment:`.
pub fn after(examples: &[&str], groups: &[&[Var]]) -> String {
    let mut out = String::from("Examples:\n");
    for example in examples {
        out.push_str("  ");
        out.push_str(example);
        out.push('\n');
    }
    let vars: Vec<&Var> = groups.iter().flat_map(|group| group.iter()).collect();
    let width = vars.iter().map(|var| var.name.len()).max().unwrap_or(0);
    out.push_str("\nEnvironment:\n");
    for var in vars {
        let _ = writeln!(out, "  {:<width$}  {}", var.name, var.about);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widest help line, so that clap (which wraps at 100 columns where it cannot ask the
    /// terminal) never breaks one of ours.
    const WIDTH: usize = 100;

    #[test]
    fn every_variable_line_fits_without_wrapping() {
        let all = [COLOR, HOME, BACKEND, SECRETS, MODEL, SERVER];
        let text = after(&["stigmer"], &all);
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{} columns: {line}", line.chars().count());
        }
        assert!(text.contains("Examples:\n  stigmer\n\nEnvironment:\n  NO_COLOR"), "{text}");
    }
}

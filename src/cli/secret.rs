//! `stigmer secret …`: encrypted values that manifests refer to by name (`secretRef: NAME`).

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::common;
use super::help;
use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError};
use crate::backend::Backend;
use crate::secrets::SecretValue;

/// Manage secrets, stored encrypted in the backend.
///
/// Secrets live in the local store or on the server, encrypted; environments refer to them
/// with `secretRef: NAME`. A value is never printed unless you ask with --reveal.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer secret set OPENAI_API_KEY              # prompts without echo, or reads stdin",
        "stigmer secret set db-password --from-file ./password.txt",
        "stigmer secret set GITHUB_TOKEN --from-env GITHUB_TOKEN",
        "stigmer secret list",
        "stigmer secret get OPENAI_API_KEY --reveal",
        "stigmer secret rotate-key",
    ],
    &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS],
))]
#[allow(clippy::doc_markdown, reason = "help text, shown as written")]
pub struct SecretArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SecretCommand,
}

/// `stigmer secret …`.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret's value.
    ///
    /// The value is read from standard input by default (on a terminal, a prompt that does not
    /// echo), from --from-file, or from the variable --from-env names.
    #[command(after_help = help::after(
        &[
            "stigmer secret set OPENAI_API_KEY",
            "stigmer secret set db-password --from-file ./password.txt",
            "printf %s \"$TOKEN\" | stigmer secret set github-token",
        ],
        &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS],
    ))]
    Set {
        /// The secret's name.
        name: String,
        /// Read the value from this file (a trailing newline is dropped).
        #[arg(long, value_name = "FILE", conflicts_with = "from_env")]
        from_file: Option<PathBuf>,
        /// Take the value from this environment variable.
        #[arg(long, value_name = "VAR")]
        from_env: Option<String>,
    },
    /// List secrets: names and times, never values.
    #[command(after_help = help::after(
        &[
            "stigmer secret list",
            "stigmer secret list -o name",
        ],
        &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS],
    ))]
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show a secret; its value only with --reveal.
    #[command(after_help = help::after(
        &[
            "stigmer secret get OPENAI_API_KEY",
            "stigmer secret get OPENAI_API_KEY --reveal",
        ],
        &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS],
    ))]
    Get {
        /// The secret's name.
        name: String,
        /// Print the value (the only command that does).
        #[arg(long, conflicts_with = "output")]
        reveal: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete a secret.
    #[command(after_help = help::after(
        &[
            "stigmer secret delete db-password",
        ],
        &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS],
    ))]
    Delete {
        /// The secret's name.
        name: String,
    },
    /// Re-encrypt every secret under a new data key, in one transaction.
    #[command(after_help = help::after(
        &[
            "stigmer secret rotate-key",
        ],
        &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS],
    ))]
    RotateKey,
}

/// Runs `stigmer secret`.
pub async fn run(ctx: &CommandContext, args: &SecretArgs) -> Result<(), CommandError> {
    let backend = ctx.settings.backend()?;
    match &args.command {
        SecretCommand::Set { name, from_file, from_env } => {
            crate::backend::check_secret_name(name)?;
            let value = read_value(name, from_file.as_ref(), from_env.as_deref())?;
            let created = backend.secret_set(name, value).await?;
            ctx.out(&format!("secret/{name} {}\n", if created { "created" } else { "updated" }))
        }
        SecretCommand::List { output } => {
            let secrets = backend.secret_list().await?;
            if output::is_empty_table(output.output, &secrets) {
                return ctx.err("No secrets found.\n");
            }
            let table = |wide| {
                let time = |at: jiff::Timestamp| common::time_in(at, wide);
                let rows = secrets.iter().map(|s| vec![s.name.clone(), time(s.created_at), time(s.updated_at)]);
                common::table(&["NAME", "CREATED", "UPDATED"], rows)
            };
            ctx.out(&output::list(output.output, &secrets, table, |s| format!("secret/{}", s.name))?)
        }
        SecretCommand::Get { name, reveal, output } => {
            if *reveal {
                let value = backend.secret_reveal(name).await?;
                return ctx.out(&format!("{}\n", value.expose()));
            }
            let secret = backend.secret_list().await?.into_iter().find(|s| &s.name == name).ok_or_else(|| {
                CommandError::from(crate::backend::BackendError::NotFound { address: format!("secret/{name}") })
            })?;
            let text = |_| {
                format!(
                    "Name:     {}\nCreated:  {}\nUpdated:  {}\nValue:    (hidden; add --reveal to print it)\n",
                    secret.name,
                    common::time(secret.created_at),
                    common::time(secret.updated_at)
                )
            };
            ctx.out(&output::one(output.output, &secret, text, |s| format!("secret/{}", s.name))?)
        }
        SecretCommand::Delete { name } => {
            backend.secret_delete(name).await?;
            ctx.out(&format!("secret/{name} deleted\n"))
        }
        SecretCommand::RotateKey => {
            let count = backend.secret_rotate_key().await?;
            ctx.out(&format!("re-encrypted {} under a new key\n", common::counted(count, "secret")))
        }
    }
}

/// The largest secret value read from a file or standard input: keys, tokens, credential files
/// and certificate bundles fit many times; anything larger is the wrong file.
const MAX_SECRET_BYTES: u64 = 1024 * 1024;

fn read_value(name: &str, file: Option<&PathBuf>, variable: Option<&str>) -> Result<SecretValue, CommandError> {
    let value = if let Some(path) = file {
        strip_newline(common::read_text_file(path, MAX_SECRET_BYTES, "--from-file")?)
    } else if let Some(variable) = variable {
        std::env::var(variable)
            .map_err(|_| CommandError::user(format!("the environment variable {variable} is not set (or not UTF-8)")))?
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("value for {name} (not shown): "))
            .map_err(|e| CommandError::io("cannot read the value from the terminal", e))?
    } else {
        strip_newline(common::read_text_stdin(MAX_SECRET_BYTES, "standard input")?)
    };
    if value.is_empty() {
        return Err(CommandError::user(format!("the value for {name} is empty"))
            .hint("pipe it in, or use --from-file FILE or --from-env VAR"));
    }
    Ok(SecretValue::new(value))
}

/// Drops one trailing newline (`echo value |`, files saved by editors), nothing else.
fn strip_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

//! `stigmer login`: save a server context after checking its token with who-am-i.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::config::{Config, Context, LOCAL_CONTEXT, Secret};
use super::help;
use super::settings::remote_backend;
use super::{CommandContext, CommandError, common};
use crate::backend::Backend;

/// Log in to a stigmer server: check the token, save it as a context and make it current.
///
/// The token is read from --token-file, or from standard input. It is stored in
/// $STIGMER_HOME/config.yaml (mode 0600) and never printed.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer server token create --org acme | stigmer login --endpoint http://127.0.0.1:7234 --org acme",
        "stigmer login --endpoint https://stigmer.example.com --name prod --token-file ~/.stigmer-token",
    ],
    &[help::COLOR, help::HOME],
))]
#[allow(clippy::doc_markdown, reason = "help text, shown as written")]
pub struct LoginArgs {
    /// The server's URL
    #[arg(long)]
    pub endpoint: String,
    /// The org to act in [default: the token's]
    #[arg(long)]
    pub org: Option<String>,
    /// The context's name [default: the org's, or "remote"]
    #[arg(long)]
    pub name: Option<String>,
    /// Read the token from this file instead of standard input
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// A PEM CA certificate to trust for the server's TLS
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// Runs `stigmer login`.
pub async fn run(ctx: &CommandContext, args: &LoginArgs) -> Result<(), CommandError> {
    // The arguments are checked before the token is read, so a wrong one is named first.
    let name = args.name.clone().or_else(|| args.org.clone()).unwrap_or_else(|| "remote".to_owned());
    if name == LOCAL_CONTEXT {
        return Err(
            CommandError::user("the context name \"local\" is the local store's").hint("pick another with --name")
        );
    }
    let token = read_token(args.token_file.as_ref())?;
    let mut context = Context {
        name: name.clone(),
        endpoint: Some(args.endpoint.clone()),
        org: args.org.clone(),
        token: Some(Secret(token)),
        ca_cert: args.ca_cert.clone().map(|p| std::path::absolute(&p).unwrap_or(p)),
    };
    let backend = remote_backend(&context)?.ok_or_else(|| CommandError::user("an endpoint is needed"))?;
    let identity = backend.whoami().await?;
    context.org = context.org.or_else(|| identity.org.clone());

    let mut config = Config::load(&ctx.settings.home)?;
    config.upsert(context);
    config.current_context = Some(name.clone());
    config.save(&ctx.settings.home)?;
    ctx.out(&format!(
        "logged in to {} as {} in org {} ({}); context {name} is now current\n",
        args.endpoint,
        identity.actor,
        identity.org.as_deref().unwrap_or("-"),
        identity.role.as_deref().unwrap_or("-"),
    ))
}

/// The largest token file read: a token is 68 characters.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

fn read_token(file: Option<&PathBuf>) -> Result<String, CommandError> {
    let text = if let Some(path) = file {
        common::read_text_file(path, MAX_TOKEN_BYTES, "--token-file")?
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("token (not shown): ")
            .map_err(|e| CommandError::io("cannot read the token from the terminal", e))?
    } else {
        common::read_text_stdin(MAX_TOKEN_BYTES, "standard input")?
    };
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(CommandError::user("no token given")
            .hint("pipe it in (`stigmer server token create … | stigmer login …`) or pass --token-file FILE"));
    }
    Ok(token)
}

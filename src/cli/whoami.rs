//! `stigmer whoami`: who the backend takes you to be, and where the data is.

use clap::Args;

use super::help;
use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError};
use crate::backend::Backend;

/// Show who the backend takes you to be.
///
/// Your actor name (recorded in revisions and the audit log), the org and role your token
/// gives you on a server, and where the data is.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &["stigmer whoami", "stigmer whoami -o json", "STIGMER_ENDPOINT=https://stigmer.example.com STIGMER_TOKEN=… stigmer whoami"],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `stigmer whoami`.
pub async fn run(ctx: &CommandContext, args: &WhoamiArgs) -> Result<(), CommandError> {
    let identity = ctx.settings.backend()?.whoami().await?;
    let text = |_| {
        let org = identity.org.as_ref().map(|org| format!("org:     {org}\n")).unwrap_or_default();
        let role = identity.role.as_ref().map(|role| format!("role:    {role}\n")).unwrap_or_default();
        format!("actor:   {}\nbackend: {}\n{org}{role}", identity.actor, identity.backend)
    };
    ctx.out(&output::one(args.output.output, &identity, text, |identity| identity.actor.clone())?)
}

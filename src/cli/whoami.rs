//! `stigmer whoami`: who the backend takes you to be, and where the data is.

use clap::Args;

use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError};
use crate::backend::Backend;

/// Show who the backend takes you to be: your actor name, org and role, and where the data is.
#[derive(Debug, Args)]
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

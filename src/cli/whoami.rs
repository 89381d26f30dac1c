//! `stigmer whoami`: who the backend takes you to be, and where the data is.

use clap::Args;

use super::common;
use super::{CommandContext, CommandError};
use crate::backend::Backend;

/// Show who the backend takes you to be: your actor name, org and role, and where the data is.
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// Runs `stigmer whoami`.
pub async fn run(ctx: &CommandContext, args: &WhoamiArgs) -> Result<(), CommandError> {
    let identity = ctx.settings.backend()?.whoami().await?;
    if args.json {
        return ctx.out(&common::json(&identity)?);
    }
    let org = identity.org.map(|org| format!("org:     {org}\n")).unwrap_or_default();
    let role = identity.role.map(|role| format!("role:    {role}\n")).unwrap_or_default();
    ctx.out(&format!("actor:   {}\nbackend: {}\n{org}{role}", identity.actor, identity.backend))
}

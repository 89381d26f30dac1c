//! `stigmer schema`: print the JSON Schema of manifests.

use clap::Args;

use super::help;
use super::{CommandContext, CommandError};
use crate::model::Kind;
use crate::schema;

/// Print the JSON Schema of a kind's manifests, or of any manifest.
///
/// The same schemas are committed under schemas/ in the repository; point an editor's YAML
/// language server at them for completion and checks while typing.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer schema agent",
        "stigmer schema mcp-server > mcp-server.schema.json",
        "stigmer schema            # any manifest, chosen by kind",
    ],
    &[help::COLOR],
))]
pub struct SchemaArgs {
    /// A kind (agent, skill, mcpserver, environment, workflow, agentinstance, …).
    pub kind: Option<String>,
}

/// Runs `stigmer schema`.
pub async fn run(ctx: &CommandContext, args: &SchemaArgs) -> Result<(), CommandError> {
    let schema = match &args.kind {
        None => schema::for_any_manifest(),
        Some(name) => {
            let kind = Kind::from_cli(name).ok_or_else(|| {
                let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.cli_name()).collect();
                CommandError::user(format!("unknown kind \"{name}\"")).hint(format!("kinds: {}", kinds.join(", ")))
            })?;
            schema::for_kind(kind)
        }
    };
    ctx.out(&schema::to_text(&schema))
}

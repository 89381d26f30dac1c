//! `stigmer init`: scaffold a project that validates.

use std::fs;
use std::path::{Path, PathBuf};

use clap::Args;

use super::help;
use super::{CommandContext, CommandError};
use crate::model::meta::{check_name, suggest_name};

/// Create a project: stigmer.yaml and example manifests.
///
/// Writes stigmer.yaml (the project's name, which is its apply set) and an environment, a
/// skill, an MCP server, an agent that uses them, and a workflow that calls the agent. Refuses
/// to overwrite existing files; nothing is written then.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer init my-project && cd my-project && stigmer validate -f .",
        "stigmer init                     # in the current directory",
        "stigmer init ops --name ops-agents",
    ],
    &[help::COLOR],
))]
pub struct InitArgs {
    /// Directory to create the project in (created when missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Project name; defaults to the directory's name.
    #[arg(long)]
    pub name: Option<String>,
}

/// The files of a new project, with `{{project}}` standing for its name.
const TEMPLATES: [(&str, &str); 6] = [
    ("stigmer.yaml", include_str!("templates/stigmer.yaml")),
    ("environment.yaml", include_str!("templates/environment.yaml")),
    ("skill.yaml", include_str!("templates/skill.yaml")),
    ("mcp-server.yaml", include_str!("templates/mcp-server.yaml")),
    ("agent.yaml", include_str!("templates/agent.yaml")),
    ("workflow.yaml", include_str!("templates/workflow.yaml")),
];

/// Runs `stigmer init`.
pub async fn run(ctx: &CommandContext, args: &InitArgs) -> Result<(), CommandError> {
    let name = project_name(args)?;
    let existing: Vec<String> = TEMPLATES
        .iter()
        .map(|(file, _)| args.dir.join(file))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(CommandError::user(format!("{} already exists", existing.join(", ")))
            .hint("choose an empty directory: stigmer init DIR"));
    }
    fs::create_dir_all(&args.dir).map_err(|e| CommandError::io(&format!("cannot create {}", args.dir.display()), e))?;
    for (file, template) in TEMPLATES {
        let path = args.dir.join(file);
        write_new(&path, &template.replace("{{project}}", &name))?;
    }
    let dir = args.dir.display().to_string();
    let dir = if dir.contains(char::is_whitespace) { format!("\"{dir}\"") } else { dir };
    ctx.out(&format!(
        "Created project \"{name}\" in {dir}: stigmer.yaml and {} manifests.\nNext: stigmer validate -f {dir}\n",
        TEMPLATES.len() - 1
    ))
}

fn project_name(args: &InitArgs) -> Result<String, CommandError> {
    if let Some(name) = &args.name {
        return check_name(name).map(|()| name.clone()).map_err(|e| {
            CommandError::user(format!("project name \"{name}\" {e}")).hint(
                suggest_name(name)
                    .map_or_else(|| "use lower-case letters, digits and '-'".to_owned(), |s| format!("try --name {s}")),
            )
        });
    }
    let absolute = std::path::absolute(&args.dir).unwrap_or_else(|_| args.dir.clone());
    let base = absolute.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if check_name(&base).is_ok() {
        return Ok(base);
    }
    Ok(suggest_name(&base).unwrap_or_else(|| "my-project".to_owned()))
}

fn write_new(path: &Path, text: &str) -> Result<(), CommandError> {
    use std::io::Write as _;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| CommandError::io(&format!("cannot create {}", path.display()), e))?;
    file.write_all(text.as_bytes()).map_err(|e| CommandError::io(&format!("cannot write {}", path.display()), e))
}

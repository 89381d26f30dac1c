//! `stigmer validate`: load manifests, check them, report every problem.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::common::{self, counted};
use super::help;
use super::render::Style;
use super::{CommandContext, CommandError};
use crate::manifest::{Diagnostic, Location};
use crate::validate::{Checked, NoResources, check_set};

/// Check manifests without applying them.
///
/// Reads every file given (directories recursively: *.yaml and *.yml, hidden entries skipped;
/// `-` reads stdin) and reports every problem at once, each with `file:line:col` and a hint.
/// Exits 0 when everything is valid, 1 when something is not.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer validate -f examples/",
        "stigmer validate -f agents.yaml -f skills.yaml",
        "cat agent.yaml | stigmer validate -f -",
        "stigmer validate -f manifests/ -o json",
    ],
    &[help::COLOR],
))]
pub struct ValidateArgs {
    /// Manifest files or directories; `-` for stdin. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub files: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ValidateOutput::Text)]
    pub output: ValidateOutput,
}

/// Output formats of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateOutput {
    /// Diagnostics for people, on stderr; a summary on stdout.
    Text,
    /// One JSON object on stdout.
    Json,
}

/// The JSON report.
#[derive(Serialize)]
struct Report<'a> {
    valid: bool,
    errors: usize,
    warnings: usize,
    resources: Vec<ResourceEntry>,
    diagnostics: &'a [Diagnostic],
}

#[derive(Serialize)]
struct ResourceEntry {
    kind: &'static str,
    name: String,
    location: Location,
}

/// Runs `stigmer validate`.
pub async fn run(ctx: &CommandContext, args: &ValidateArgs) -> Result<(), CommandError> {
    let Checked { set, outcomes } = common::load_checked(&args.files);
    let validation = check_set(&set, outcomes, &NoResources);

    match args.output {
        ValidateOutput::Json => {
            let resources = validation
                .resources
                .iter()
                .map(|r| {
                    let document = &set.documents[r.document];
                    ResourceEntry {
                        kind: r.resource.kind().as_str(),
                        name: r.resource.name().to_owned(),
                        location: set.location(document, document.position),
                    }
                })
                .collect();
            let report = Report {
                valid: !validation.has_errors(),
                errors: validation.error_count(),
                warnings: validation.warning_count(),
                resources,
                diagnostics: &validation.diagnostics,
            };
            ctx.out(&common::json(&report)?)?;
        }
        ValidateOutput::Text => {
            common::report(ctx, &set, &validation.diagnostics)?;
            if !validation.has_errors() {
                let mut by_kind: BTreeMap<usize, (&str, usize)> = BTreeMap::new();
                for r in &validation.resources {
                    let kind = r.resource.kind();
                    by_kind.entry(kind.order()).or_insert((kind.cli_name(), 0)).1 += 1;
                }
                let kinds: Vec<String> = by_kind.values().map(|(name, n)| counted(*n, name)).collect();
                let files = set.documents.iter().map(|d| d.source).collect::<std::collections::BTreeSet<_>>().len();
                let summary = format!(
                    "{} {} valid in {} ({})\n",
                    Style::new(ctx.settings.color_stdout).good("ok:"),
                    counted(validation.resources.len(), "resource"),
                    counted(files, "file"),
                    kinds.join(", ")
                );
                ctx.out(&summary)?;
            }
        }
    }
    if validation.has_errors() { Err(CommandError::failed()) } else { Ok(()) }
}

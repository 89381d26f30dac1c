//! `stigmer workflow run`: run a stored Workflow, or a Workflow manifest or bare Serverless
//! Workflow document from a file, and show its tasks as they run.

use std::fmt::Write as _;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use super::common;
use super::help;
use super::placement::{self, Placement};
use super::render::Style;
use super::{CommandContext, CommandError, ErrorKind};
use crate::backend::Definition;
use crate::backend::{Backend, BackendError, DEFAULT_LEASE, ExecutionRecord, ExecutionStatus};
use crate::cli::backend::AnyBackend;
use crate::manifest::ManifestSet;
use crate::manifest::yaml::{self, SyntaxKind};
use crate::model::{AnyResource, EnvironmentSpec, Kind, dsl};
use crate::runner::environment::{self, Overrides};
use crate::runner::workflow::{self as interpreter, Observer, TaskEvent, Transition, WorkflowError};
use crate::secrets::{Redactor, SecretValue};
use crate::validate::{NoResources, validate};
use crate::worker::{self, Ended};

/// Run workflows.
///
/// Serverless Workflow 1.0 documents, stored as Workflow resources or read from a file; every
/// run is recorded as an execution (see `stigmer execution`).
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer workflow run ticket-triage --input '{\"ticket\": 42}'",
        "stigmer workflow run -f flow.yaml",
    ],
    &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS, help::MODEL],
))]
pub struct WorkflowArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: WorkflowCommand,
}

/// `stigmer workflow …`.
#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    Run(RunArgs),
}

/// Run a workflow and print its output.
///
/// A stored Workflow by name, or one from a file: a Workflow manifest, or a bare Serverless
/// Workflow document with `document` and `do`. Exits 0 when it completes, 1 when it faults.
///
/// Against a server, the execution is queued for the server's workers and followed here until
/// it ends; Ctrl-C detaches (the run goes on). Against the local store it runs in this process.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer workflow run ticket-triage --input '{\"ticket\": 42}'",
        "stigmer workflow run -f flow.yaml --input input.json --secret API_KEY=…",
        "stigmer workflow run nightly-report -o json",
        "stigmer workflow run nightly-report --detach",
    ],
    &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS, help::MODEL],
))]
#[allow(clippy::doc_markdown, reason = "help text, shown as written")]
pub struct RunArgs {
    /// The stored Workflow's name
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub name: Option<String>,
    /// Run the workflow in this file instead
    #[arg(short = 'f', long = "filename", value_name = "FILE", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub file: Option<String>,
    /// The input: a JSON value, a JSON or YAML file, or - for standard input [default: {}]
    #[arg(long, value_name = "JSON|FILE|-")]
    pub input: Option<String>,
    /// A variable for the run (repeatable), overriding the workflow's envSpec defaults
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// A secret variable for the run (repeatable): masked in every output
    #[arg(long = "secret", value_name = "KEY=VALUE", value_parser = key_value)]
    pub secret: Vec<(String, String)>,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = RunOutput::Text)]
    pub output: RunOutput,
    #[command(flatten)]
    pub placement: Placement,
}

/// How `workflow run` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunOutput {
    /// Task progress as it happens, then the output.
    Text,
    /// One JSON object at the end: id, status, output, error, tasks.
    Json,
}

pub(super) fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got \"{text}\"")),
    }
}

/// Runs `stigmer workflow`.
pub async fn run(ctx: &CommandContext, args: &WorkflowArgs) -> Result<(), CommandError> {
    match &args.command {
        // A run's future holds the interpreter's state: on the heap, not the stack.
        WorkflowCommand::Run(args) => Box::pin(run_workflow(ctx, args)).await,
    }
}

async fn run_workflow(ctx: &CommandContext, args: &RunArgs) -> Result<(), CommandError> {
    let backend = ctx.settings.backend()?;
    let (workflow, env_spec, target) = match (&args.name, &args.file) {
        (_, Some(file)) => {
            let (workflow, env_spec) = from_file(ctx, file)?;
            (workflow, env_spec, format!("file:{file}"))
        }
        (Some(name), None) => {
            let address = crate::backend::address(Kind::Workflow, name);
            let definition = Definition::of_stored(&backend, name)
                .await?
                .ok_or_else(|| BackendError::NotFound { address: address.clone() })?;
            (definition.workflow, definition.env_spec, address)
        }
        (None, None) => return Err(CommandError::user("name a stored workflow, or pass -f FILE")),
    };
    let input = input(args.input.as_deref())?;
    let overrides = overrides(&args.env, &args.secret);
    let Definition { workflow, env_spec, workflows, .. } =
        Definition::with_subflows(&backend, workflow, env_spec).await?;
    let run = Run { workflow, env_spec, target, input, overrides, output: args.output, resume: None, workflows };
    Box::pin(start(ctx, &backend, run, &args.placement)).await
}

/// Runs a stored workflow now with an empty input, detached (`schedule trigger`).
pub(super) async fn trigger(ctx: &CommandContext, backend: &AnyBackend, name: &str) -> Result<(), CommandError> {
    let address = crate::backend::address(Kind::Workflow, name);
    let Definition { workflow, env_spec, workflows, .. } = Definition::of_stored(backend, name)
        .await?
        .ok_or_else(|| BackendError::NotFound { address: address.clone() })?;
    let run = Run {
        workflow,
        env_spec,
        target: address,
        input: Value::Object(serde_json::Map::new()),
        overrides: Overrides::default(),
        output: RunOutput::Text,
        resume: None,
        workflows,
    };
    let placement = Placement { detach: true, ..Placement::default() };
    Box::pin(start(ctx, backend, run, &placement)).await
}

/// `--env` and `--secret` pairs as resolution overrides.
pub(super) fn overrides(env: &[(String, String)], secret: &[(String, String)]) -> Overrides {
    Overrides {
        env: env.to_vec(),
        secret: secret.iter().map(|(k, v)| (k.clone(), SecretValue::new(v.clone()))).collect(),
    }
}

/// One run to execute: a new execution, or the rest of an interrupted one.
pub(super) struct Run {
    pub workflow: dsl::Workflow,
    pub env_spec: Option<EnvironmentSpec>,
    /// `workflow/NAME` or `file:PATH`.
    pub target: String,
    pub input: Value,
    pub overrides: Overrides,
    pub output: RunOutput,
    /// The interrupted execution to continue, by id.
    pub resume: Option<String>,
    /// The stored workflows its `run: workflow` tasks may run, by name.
    pub workflows: std::collections::BTreeMap<String, dsl::Workflow>,
}

/// The execution's record as a new run starts it.
fn new_record(ctx: &CommandContext, run: &Run, status: ExecutionStatus, redactor: &Redactor) -> ExecutionRecord {
    let definition = Definition {
        workflow: run.workflow.clone(),
        env_spec: run.env_spec.clone(),
        workflows: run.workflows.clone(),
        env: run.overrides.env.clone(),
    };
    let id = uuid::Uuid::new_v4().to_string();
    let mut record = ExecutionRecord::new(
        id,
        run.target.clone(),
        ctx.settings.actor.clone(),
        redactor.redact_json(run.input.clone()),
        status,
    );
    // The document and `--env` values as given: `--secret` values are never part of it, and a
    // masked document could not be run again.
    record.definition = serde_json::to_value(&definition).ok();
    record
}

/// Checks that every variable the run needs has a value before anything is recorded.
async fn precheck(backend: &AnyBackend, run: &Run) -> Result<Redactor, CommandError> {
    let mut declared = crate::model::Declarations::default();
    declared.env_spec(&run.target, run.env_spec.as_ref());
    let resolved = environment::resolve(backend, &declared, &[], &run.overrides).await.map_err(|e| {
        CommandError::new(ErrorKind::User, e).hint("give the missing values with --env KEY=VALUE or --secret KEY=VALUE")
    })?;
    Ok(resolved.redactor())
}

/// Starts a run where it belongs: queued on a server for its workers (then followed, unless
/// detached), or run right here in the CLI (the local store, or `--local`).
pub(super) async fn start(
    ctx: &CommandContext,
    backend: &AnyBackend,
    run: Run,
    placement: &Placement,
) -> Result<(), CommandError> {
    if placement.here(backend) {
        return execute(ctx, backend, run).await;
    }
    let redactor = precheck(backend, &run).await?;
    // A run here records its refusal as a faulted execution; a queued one is refused before
    // it is created, so no worker is handed input it cannot take.
    interpreter::check_input(&run.workflow, &run.input).map_err(|error| {
        CommandError::user(format!("the input does not match the workflow's input schema: {error}"))
            .hint("fix --input; nothing was queued or recorded")
    })?;
    let record = new_record(ctx, &run, ExecutionStatus::Pending, &redactor);
    let id = record.id.clone();
    let quiet = run.output == RunOutput::Json;
    if !placement::queue(ctx, backend, record, run.overrides.secret.clone(), placement, quiet).await? {
        return Ok(());
    }
    follow(ctx, backend, &id, run.output, placement.cancel_on_interrupt).await
}

/// Runs the workflow in this process: records the execution (or continues its record), claims
/// it as this CLI's, runs it with progress through the same worker code the server uses, and
/// reports. Exit 0 when it completes, 1 when it faults.
pub(super) async fn execute(ctx: &CommandContext, backend: &AnyBackend, run: Run) -> Result<(), CommandError> {
    let redactor = precheck(backend, &run).await?;
    let id = if let Some(id) = &run.resume {
        id.clone()
    } else {
        let record = new_record(ctx, &run, ExecutionStatus::Running, &redactor);
        let id = record.id.clone();
        backend.execution_create(record, Vec::new()).await?;
        id
    };
    let claim = placement::claim_here(backend, &id).await?;
    let prepared =
        worker::prepare(backend, claim, run.overrides.clone(), DEFAULT_LEASE, ctx.settings.home.join("workspaces"))
            .await
            .map_err(|e| CommandError::new(ErrorKind::User, e))?;
    for reference in &prepared.replay.interrupted {
        ctx.err(&format!(
            "note: {reference} was running when the execution stopped; it runs again (at least once per task)\n"
        ))?;
    }
    let mut observer = Progress::new(ctx, run.output, prepared.redactor.clone());
    let redactor = prepared.redactor.clone();
    let started = Instant::now();
    let outcome = Box::pin(worker::run(backend, prepared, &mut observer, common::shutdown())).await;
    if let Err(error) = outcome.recorded {
        return Err(
            CommandError::from(error).hint(format!("the run finished, but its log is incomplete (execution {id})"))
        );
    }
    let (status, stopped) = (outcome.ended.status(), placement::stopped(&outcome.ended));
    let (output, error) = match outcome.ended {
        Ended::Ran(Ok(output)) => (Some(output), None),
        Ended::Ran(Err(error)) => (None, Some(error)),
        _ => (None, None),
    };
    let ending = Ending { id: &id, status, output, error, stopped, tasks: observer.tasks, took: started.elapsed() };
    report(ctx, run.output, ending, &redactor)
}

/// Follows a run started on a server: its task transitions as they happen (as a run here shows
/// them), then its output or error. Exit 0 when it completes, 1 otherwise; Ctrl-C detaches (or,
/// with `cancel_on_interrupt`, cancels it).
async fn follow(
    ctx: &CommandContext,
    backend: &AnyBackend,
    id: &str,
    output: RunOutput,
    cancel_on_interrupt: bool,
) -> Result<(), CommandError> {
    let started = Instant::now();
    let mut progress = Progress::new(ctx, output, Redactor::default());
    let record = placement::follow_to_end(ctx, backend, id, cancel_on_interrupt, |events| {
        for (_, event) in events {
            if let Ok(transition) = serde_json::from_value::<TaskEvent>(event.clone()) {
                progress.observe(transition);
            }
        }
        Ok(())
    })
    .await?;
    let ending = Ending {
        id,
        status: record.status,
        output: record.output.clone(),
        error: record.error.clone().and_then(|e| serde_json::from_value(e).ok()),
        stopped: None,
        tasks: progress.into_tasks(),
        took: started.elapsed(),
    };
    // What the server sends was redacted by the worker.
    report(ctx, output, ending, &Redactor::default())
}

/// How a run ended, here or on a server's worker.
struct Ending<'a> {
    id: &'a str,
    status: ExecutionStatus,
    output: Option<Value>,
    error: Option<WorkflowError>,
    /// Why it was cancelled, when that is known.
    stopped: Option<String>,
    tasks: Vec<JsonTask>,
    took: std::time::Duration,
}

/// Prints how a run ended (its output, its error, or why it stopped) and gives its exit code:
/// 0 when it completed, 1 otherwise.
fn report(
    ctx: &CommandContext,
    format: RunOutput,
    ending: Ending<'_>,
    redactor: &Redactor,
) -> Result<(), CommandError> {
    let Ending { id, status, output, error, stopped, tasks, took } = ending;
    match format {
        RunOutput::Json => {
            let report = JsonRun { id, status: status.as_str(), output, error, tasks };
            ctx.out(&redactor.redact(&common::json(&report)?))?;
        }
        RunOutput::Text => {
            let style = Style::new(ctx.settings.color_stdout);
            let text = match (status, &error) {
                (ExecutionStatus::Completed, _) => {
                    let text =
                        serde_json::to_string_pretty(output.as_ref().unwrap_or(&Value::Null)).unwrap_or_default();
                    format!("{} (execution {id})\n{text}\n", style.good(&format!("completed in {took:.2?}")))
                }
                (ExecutionStatus::Faulted, Some(error)) => {
                    format!("{} (execution {id}): {error}\n", style.error(&format!("faulted after {took:.2?}")))
                }
                (ExecutionStatus::Faulted, None) => {
                    format!(
                        "{} (execution {id}): no error recorded\n",
                        style.error(&format!("faulted after {took:.2?}"))
                    )
                }
                (status, _) => {
                    let why = stopped.map(|why| format!(": {why}")).unwrap_or_default();
                    format!(
                        "{} (execution {id}){why}\n",
                        style.warning(&format!("{} after {took:.2?}", status.as_str()))
                    )
                }
            };
            ctx.out(&redactor.redact(&text))?;
        }
    }
    if status == ExecutionStatus::Completed { Ok(()) } else { Err(CommandError::reported(ErrorKind::Failed)) }
}

/// A Workflow manifest (checked like `validate`, with `file:line:col`) or a bare DSL document.
/// Either is read like every manifest: bounded in size, text only, YAML within budgets.
fn from_file(
    ctx: &CommandContext,
    file: &str,
) -> Result<(dsl::Workflow, Option<crate::model::EnvironmentSpec>), CommandError> {
    if file != "-" && std::path::Path::new(file).is_dir() {
        return Err(CommandError::user(format!("{file} is a directory, not a file"))
            .hint("-f names the one file that holds the workflow"));
    }
    let set = common::load(&[file.to_owned()]);
    let unreadable: Vec<_> = set.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
    if !unreadable.is_empty() {
        common::report(ctx, &set, &unreadable)?;
        return Err(CommandError::reported(ErrorKind::User));
    }
    let is_manifest = set.documents.first().is_some_and(|document| set.tree(document).get("kind").is_some());
    if !is_manifest {
        let text = set.sources.first().map_or("", |source| source.text.as_str());
        let rewritten = summary_from_description(ctx, &set)?;
        let text = rewritten.as_deref().unwrap_or(text);
        let workflow: dsl::Workflow = yaml::from_str(text).map_err(|e| {
            let at = e.position.map(|p| format!(" (at {file}:{p})")).unwrap_or_default();
            CommandError::user(format!("{file} is not a Serverless Workflow document: {}{at}", e.message))
                .hint("a bare document has `document` and `do`; a manifest has `kind: Workflow`")
        })?;
        return Ok((workflow, None));
    }
    let validation = validate(&set, &NoResources);
    // References to stored agents are checked when a task calls them, not here.
    let blocking: Vec<_> =
        validation.diagnostics.iter().filter(|d| d.is_error() && d.code != "dangling-reference").cloned().collect();
    if !blocking.is_empty() {
        common::report(ctx, &set, &blocking)?;
        return Err(CommandError::reported(ErrorKind::Failed));
    }
    let mut workflows = validation.resources.iter().filter_map(|r| match r.resource.as_ref() {
        AnyResource::Workflow(workflow) => Some(workflow),
        _ => None,
    });
    match (workflows.next(), workflows.next()) {
        (Some(workflow), None) => Ok((workflow.spec.to_dsl(workflow.name(), None), workflow.spec.env_spec.clone())),
        (None, _) => Err(CommandError::user(format!("{file} holds no Workflow"))),
        (Some(_), Some(_)) => {
            Err(CommandError::user(format!("{file} holds several Workflows; apply them and run one by name")))
        }
    }
}

/// A bare document's `document.description`, read as `summary` with a warning (as `validate`
/// does for manifests): the document's text with the field renamed, or `None` when it has none.
fn summary_from_description(ctx: &CommandContext, set: &ManifestSet) -> Result<Option<String>, CommandError> {
    let Some(document) = set.documents.first() else { return Ok(None) };
    let mut value = set.tree(document).to_json();
    let Some(diagnostic) = crate::validate::description_as_summary(set, document, &mut value, "") else {
        return Ok(None);
    };
    let fails = diagnostic.is_error();
    common::report(ctx, set, &[diagnostic])?;
    if fails {
        return Err(CommandError::reported(ErrorKind::User));
    }
    Ok(Some(value.to_string()))
}

/// The largest `--input` read from a file or standard input.
const MAX_INPUT_BYTES: u64 = crate::manifest::MAX_MANIFEST_BYTES;

/// `--input`: JSON text, a JSON/YAML file, or `-` for stdin. Anything at the path given (a
/// directory, a pipe, a broken link) means a file was meant, and so does a missing path that
/// looks like one (`input.json`): neither is taken for text.
fn input(given: Option<&str>) -> Result<Value, CommandError> {
    let Some(given) = given else { return Ok(Value::Object(serde_json::Map::new())) };
    if given == "-" {
        let text = common::read_text_stdin(MAX_INPUT_BYTES, "--input")?;
        return parse_input("<stdin>", &text);
    }
    let path = std::path::Path::new(given);
    let exists = std::fs::symlink_metadata(path).is_ok();
    if !exists && let Ok(value) = serde_json::from_str(given) {
        return Ok(value);
    }
    if exists || looks_like_a_path(given) {
        let text = common::read_text_file(path, MAX_INPUT_BYTES, "--input")?;
        return parse_input(given, &text);
    }
    yaml::from_str(given).map_err(|e| {
        let at = e.position.map(|p| format!(" (at {p})")).unwrap_or_default();
        CommandError::user(format!("--input is neither JSON nor YAML: {}{at}", e.message))
            .hint("pass a JSON value, a file, or - for stdin")
    })
}

/// A file's (or stdin's) text as JSON, else as YAML.
fn parse_input(name: &str, text: &str) -> Result<Value, CommandError> {
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    yaml::from_str(text).map_err(|e| {
        let at = e.position.map(|p| format!(" (at {name}:{p})")).unwrap_or_default();
        let hint = match e.kind() {
            SyntaxKind::TooDeep => "real inputs nest far less deeply than this; check for a runaway structure",
            SyntaxKind::TooComplex => "the document expands beyond stigmer's limits (aliases); write it out plainly",
            SyntaxKind::Tabs => "YAML indents with spaces; replace the tab characters",
            SyntaxKind::Other => "--input takes a JSON value, a JSON or YAML file, or - for stdin",
        };
        CommandError::user(format!("--input {name} is neither JSON nor YAML: {}{at}", e.message)).hint(hint)
    })
}

/// Whether text given to `--input` names a file rather than being a value: one word with a
/// slash, or ending in `.json`, `.yaml` or `.yml`.
fn looks_like_a_path(text: &str) -> bool {
    let one_word = !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || "{}[]:,\"'".contains(c));
    one_word && (text.contains('/') || [".json", ".yaml", ".yml"].iter().any(|end| text.ends_with(end)))
}

/// Prints task transitions as they happen and keeps the task list for `-o json`.
struct Progress<'a> {
    live: bool,
    style: Style,
    redactor: Redactor,
    tasks: Vec<JsonTask>,
    ctx: &'a CommandContext,
}

impl<'a> Progress<'a> {
    /// Progress for `output`, masking what `redactor` knows.
    fn new(ctx: &'a CommandContext, output: RunOutput, redactor: Redactor) -> Self {
        Self {
            live: output == RunOutput::Text,
            style: Style::new(ctx.settings.color_stdout),
            redactor,
            tasks: Vec::new(),
            ctx,
        }
    }
}

impl Observer for Progress<'_> {
    fn observe(&mut self, event: TaskEvent) {
        let status = match &event.transition {
            Transition::Started { .. } => {
                self.tasks.push(JsonTask {
                    name: event.name.clone(),
                    reference: event.reference.clone(),
                    status: "running",
                    started_at: Some(event.at),
                    completed_at: None,
                    error: None,
                });
                None
            }
            Transition::Completed { .. } => Some("completed"),
            Transition::Failed { .. } => Some("faulted"),
            Transition::Cancelled => Some("cancelled"),
            Transition::Skipped => {
                self.tasks.push(JsonTask {
                    name: event.name.clone(),
                    reference: event.reference.clone(),
                    status: "skipped",
                    started_at: None,
                    completed_at: Some(event.at),
                    error: None,
                });
                None
            }
            Transition::Retrying { .. } | Transition::Emitted { .. } | Transition::Consumed { .. } => None,
        };
        let mut took = None;
        if let Some(status) = status
            && let Some(task) =
                self.tasks.iter_mut().rev().find(|t| t.reference == event.reference && t.completed_at.is_none())
        {
            task.status = status;
            task.completed_at = Some(event.at);
            if let Transition::Failed { error } = &event.transition {
                task.error = Some(error.clone());
            }
            took = task.started_at.and_then(|s| event.at.duration_since(s).try_into().ok());
        }
        if !self.live {
            return;
        }
        let mut line = String::new();
        let took: String = took.map(|d: std::time::Duration| format!(" ({d:.2?})")).unwrap_or_default();
        let _ = match &event.transition {
            Transition::Started { .. } => {
                writeln!(line, "  {} {} {}", self.style.dim("started  "), event.name, self.style.dim(&event.reference))
            }
            Transition::Completed { .. } => {
                writeln!(line, "  {} {}{}", self.style.good("completed"), event.name, took)
            }
            Transition::Failed { error } => {
                writeln!(line, "  {} {}{}: {error}", self.style.error("failed   "), event.name, took)
            }
            Transition::Skipped => {
                writeln!(line, "  {} {} (its `if` is false)", self.style.dim("skipped  "), event.name)
            }
            Transition::Retrying { attempt, delay_ms } => {
                writeln!(
                    line,
                    "  {} {} (retry {attempt} in {delay_ms} ms)",
                    self.style.warning("retrying "),
                    event.name
                )
            }
            Transition::Cancelled => writeln!(line, "  {} {}", self.style.warning("cancelled"), event.name),
            Transition::Emitted { cloud_event } => {
                writeln!(line, "  {} {} {}", self.style.dim("emitted  "), event.name, event_type(cloud_event))
            }
            Transition::Consumed { cloud_event } => {
                writeln!(line, "  {} {} {}", self.style.dim("received "), event.name, event_type(cloud_event))
            }
        };
        // Progress is best effort: a closed terminal must not stop the run.
        let _ = self.ctx.out(&self.redactor.redact(&line));
    }
}

/// An event's `type`, for progress lines.
fn event_type(event: &Value) -> &str {
    event.get("type").and_then(Value::as_str).unwrap_or("(no type)")
}

/// What `workflow run -o json` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRun<'a> {
    id: &'a str,
    status: &'static str,
    output: Option<Value>,
    error: Option<WorkflowError>,
    tasks: Vec<JsonTask>,
}

impl Progress<'_> {
    /// The tasks seen, for `-o json`.
    fn into_tasks(self) -> Vec<JsonTask> {
        self.tasks
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonTask {
    name: String,
    reference: String,
    status: &'static str,
    started_at: Option<jiff::Timestamp>,
    completed_at: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<WorkflowError>,
}

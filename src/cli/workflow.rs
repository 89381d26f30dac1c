//! `stigmer workflow run`: run a stored Workflow, or a Workflow manifest or bare Serverless
//! Workflow document from a file, and show its tasks as they run.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use super::common;
use super::help;
use super::render::Style;
use super::{CommandContext, CommandError, ErrorKind};
use crate::backend::{AnyBackend, Backend, BackendError, ExecutionRecord, ExecutionStatus};
use crate::manifest::ManifestSet;
use crate::manifest::yaml::{self, SyntaxKind};
use crate::model::{AnyResource, EnvironmentSpec, Kind, dsl};
use crate::runner::agent::launch::WorkflowAgents;
use crate::runner::environment::{self, Overrides};
use crate::runner::workflow::record::{self, EventSink};
use crate::runner::workflow::{
    self as interpreter, EventBus, Observer, RunOptions, TaskEvent, Transition, WorkflowError,
};
use crate::secrets::{Redactor, SecretValue};
use crate::validate::{NoResources, validate};

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
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer workflow run ticket-triage --input '{\"ticket\": 42}'",
        "stigmer workflow run -f flow.yaml --input input.json --secret API_KEY=…",
        "stigmer workflow run nightly-report -o json",
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
            let (workflow, env_spec) = stored(&backend, name).await?;
            (workflow, env_spec, crate::backend::address(Kind::Workflow, name))
        }
        (None, None) => return Err(CommandError::user("name a stored workflow, or pass -f FILE")),
    };
    let input = input(args.input.as_deref())?;
    let overrides = overrides(&args.env, &args.secret);
    let workflows = subflows(&backend, &workflow).await?;
    let run = Run { workflow, env_spec, target, input, overrides, output: args.output, resume: None, workflows };
    execute(ctx, &backend, run).await
}

/// Every stored Workflow that `run: workflow` tasks name, directly or through each other. A name
/// that is not stored is left out: the task that names it fails with a clear error if it runs.
async fn subflows(
    backend: &AnyBackend,
    workflow: &dsl::Workflow,
) -> Result<std::collections::BTreeMap<String, dsl::Workflow>, CommandError> {
    let mut found = std::collections::BTreeMap::new();
    let mut wanted = named_subflows(workflow);
    while let Some(name) = wanted.pop() {
        if found.contains_key(&name) {
            continue;
        }
        let Some(stored) = backend.get(Kind::Workflow, &name).await? else { continue };
        if let Ok(AnyResource::Workflow(resource)) = AnyResource::from_value(Kind::Workflow, stored.manifest) {
            let subflow = resource.spec.to_dsl(resource.name(), None);
            wanted.extend(named_subflows(&subflow));
            found.insert(name, subflow);
        }
    }
    Ok(found)
}

fn named_subflows(workflow: &dsl::Workflow) -> Vec<String> {
    let mut names = Vec::new();
    workflow.do_.walk("", &mut |visit| {
        if let dsl::Task::Run(task) = visit.task
            && let dsl::Process::Workflow(config) = &task.run.process
        {
            names.push(config.name.clone());
        }
    });
    names
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
    /// The execution to continue.
    pub resume: Option<Resume>,
    /// The stored workflows its `run: workflow` tasks may run, by name.
    pub workflows: std::collections::BTreeMap<String, dsl::Workflow>,
}

/// What an interrupted execution already did.
pub(super) struct Resume {
    pub id: String,
    /// The outputs of the tasks it completed, by reference, in order.
    pub completed: Vec<(String, Value)>,
    /// The tasks that were running when it stopped.
    pub interrupted: Vec<String>,
    /// The ids of the events its `listen` tasks consumed.
    pub consumed: Vec<String>,
}

/// Resolves the run's variables, records the execution (or continues its record), runs it with
/// progress, and reports. Exit 0 when it completes, 1 when it faults.
pub(super) async fn execute(ctx: &CommandContext, backend: &AnyBackend, run: Run) -> Result<(), CommandError> {
    let Run { workflow, env_spec, target, input, overrides, output, resume, workflows } = run;
    let mut declared = crate::model::Declarations::default();
    declared.env_spec(&target, env_spec.as_ref());
    let resolved = environment::resolve(backend, &declared, &[], &overrides).await.map_err(|e| {
        CommandError::new(ErrorKind::User, e).hint("give the missing values with --env KEY=VALUE or --secret KEY=VALUE")
    })?;
    let resuming = resume.is_some();
    let Resume { id, completed, interrupted, consumed } = resume.unwrap_or_else(|| Resume {
        id: uuid::Uuid::new_v4().to_string(),
        completed: Vec::new(),
        interrupted: Vec::new(),
        consumed: Vec::new(),
    });
    let bus = Arc::new(EventBus::new().consumed(consumed));
    let agents = WorkflowAgents::new(backend.clone(), ctx.settings.home.join("workspaces"));
    let mut options =
        RunOptions::new().replaying(completed).in_flight(interrupted).events(bus.clone()).agents(Arc::new(agents));
    for (name, subflow) in &workflows {
        options = options.workflow(name.clone(), subflow.clone());
    }
    options.instance_id = Some(id.clone());
    // The run's variables are what its expressions read as `$secret`.
    for (name, variable) in &resolved.variables {
        options = options.secret(name.clone(), &variable.value);
    }
    let redactor = resolved.redactor();
    if !resuming {
        let definition = serde_json::json!({ "workflow": workflow, "envSpec": env_spec, "workflows": workflows });
        let record = ExecutionRecord {
            id: id.clone(),
            target,
            status: ExecutionStatus::Running,
            started_at: jiff::Timestamp::now(),
            finished_at: None,
            actor: ctx.settings.actor.clone(),
            input: redactor.redact_json(input.clone()),
            output: None,
            error: None,
            definition: Some(redactor.redact_json(definition)),
        };
        backend.execution_create(record).await?;
    }
    let (sink, batches) = record::channel(redactor.clone());
    let mut observer = Progress {
        live: output == RunOutput::Text,
        style: Style::new(ctx.settings.color_stdout),
        redactor: redactor.clone(),
        tasks: Vec::new(),
        sink,
        ctx,
    };
    let started = Instant::now();
    // The run and the recorder share this task: each transition is appended to the execution's
    // log as the run goes, in batches of whatever accumulated.
    let recording = batches.append_to(backend, &id);
    let running = async {
        let ended = tokio::select! {
            result = interpreter::run(&workflow, input, &options, &mut observer) => Ended::Ran(result),
            stop = stop_requested(backend, &id) => Ended::Stopped(stop),
            never = deliver_signals(backend, &id, &bus) => match never {},
        };
        // Dropping the sink ends the recorder once it has appended the last batch.
        (ended, observer.tasks)
    };
    let ((ended, tasks), recorded) = tokio::join!(running, recording);
    let finish = match &ended {
        Ended::Ran(Ok(value)) => Some((ExecutionStatus::Completed, Some(redactor.redact_json(value.clone())), None)),
        Ended::Ran(Err(error)) => Some((ExecutionStatus::Faulted, None, Some(redactor.redact_json(error.to_value())))),
        Ended::Stopped(Stop::Interrupted) => Some((ExecutionStatus::Cancelled, None, None)),
        // `execution cancel` already recorded it.
        Ended::Stopped(Stop::Cancelled) => None,
    };
    if let Some((status, stored_output, stored_error)) = finish {
        backend.execution_finish(&id, status, stored_output, stored_error).await?;
    }
    if let Err(error) = recorded {
        return Err(
            CommandError::from(error).hint(format!("the run finished, but its log is incomplete (execution {id})"))
        );
    }
    let took = started.elapsed();
    match output {
        RunOutput::Json => {
            let (status, output, error) = match &ended {
                Ended::Ran(Ok(output)) => ("completed", Some(output.clone()), None),
                Ended::Ran(Err(error)) => ("faulted", None, Some(error.clone())),
                Ended::Stopped(_) => ("cancelled", None, None),
            };
            let report = JsonRun { id: &id, status, output, error, tasks };
            ctx.out(&redactor.redact(&common::json(&report)?))?;
        }
        RunOutput::Text => {
            let style = Style::new(ctx.settings.color_stdout);
            let text = match &ended {
                Ended::Ran(Ok(output)) => {
                    let text = serde_json::to_string_pretty(output).unwrap_or_default();
                    format!("{} (execution {id})\n{text}\n", style.good(&format!("completed in {took:.2?}")))
                }
                Ended::Ran(Err(error)) => {
                    format!("{} (execution {id}): {error}\n", style.error(&format!("faulted after {took:.2?}")))
                }
                Ended::Stopped(stop) => {
                    format!(
                        "{} (execution {id}): {}\n",
                        style.warning(&format!("cancelled after {took:.2?}")),
                        stop.why()
                    )
                }
            };
            ctx.out(&redactor.redact(&text))?;
        }
    }
    if matches!(ended, Ended::Ran(Ok(_))) { Ok(()) } else { Err(CommandError::reported(ErrorKind::Failed)) }
}

/// How a run ended.
enum Ended {
    /// The workflow completed or faulted.
    Ran(Result<Value, WorkflowError>),
    /// It was stopped before it ended.
    Stopped(Stop),
}

/// Why a run was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// `stigmer execution cancel`, seen in the execution's record.
    Cancelled,
}

impl Stop {
    fn why(self) -> &'static str {
        match self {
            Self::Interrupted => "interrupted",
            Self::Cancelled => "cancelled with `stigmer execution cancel`",
        }
    }
}

/// How often a run waiting in a `listen` task looks for signals in its log.
const SIGNAL_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Delivers the signals sent to the execution (`stigmer execution signal`, appended to its log)
/// to its bus. The log is read only while a `listen` task waits, from where it was last read.
async fn deliver_signals(backend: &AnyBackend, id: &str, bus: &EventBus) -> std::convert::Infallible {
    let mut after = 0;
    loop {
        bus.listening().await;
        // A failed read is tried again on the next tick; the run itself reports backend trouble.
        if let Ok(events) = backend.execution_events(id, after).await {
            for (sequence, event) in events {
                after = sequence;
                if event.get("event").and_then(Value::as_str) == Some("signal")
                    && let Some(signal) = event.get("cloudEvent")
                {
                    bus.publish(signal.clone());
                }
            }
        }
        tokio::time::sleep(SIGNAL_CHECK_EVERY).await;
    }
}

/// How often a run looks at its record for a cancellation.
const CANCEL_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Completes when the run should stop: on Ctrl-C or SIGTERM, or once its record says cancelled.
async fn stop_requested(backend: &AnyBackend, id: &str) -> Stop {
    let cancelled = async {
        loop {
            tokio::time::sleep(CANCEL_CHECK_EVERY).await;
            if let Ok(Some(record)) = backend.execution_get(id).await
                && record.status == ExecutionStatus::Cancelled
            {
                return;
            }
        }
    };
    tokio::select! {
        () = common::shutdown() => Stop::Interrupted,
        () = cancelled => Stop::Cancelled,
    }
}

/// A stored Workflow, as a DSL document, with its `envSpec`.
async fn stored<B: Backend>(
    backend: &B,
    name: &str,
) -> Result<(dsl::Workflow, Option<crate::model::EnvironmentSpec>), CommandError> {
    let stored = backend
        .get(Kind::Workflow, name)
        .await?
        .ok_or_else(|| BackendError::NotFound { address: crate::backend::address(Kind::Workflow, name) })?;
    match AnyResource::from_value(Kind::Workflow, stored.manifest) {
        Ok(AnyResource::Workflow(resource)) => {
            Ok((resource.spec.to_dsl(resource.name(), None), resource.spec.env_spec.clone()))
        }
        Ok(_) | Err(_) => Err(CommandError::user(format!("the stored workflow/{name} does not read as a Workflow"))),
    }
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
    let is_manifest = set.documents.first().is_some_and(|document| document.root.get("kind").is_some());
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
    let mut value = document.root.to_json();
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
    /// Every transition, redacted, on its way to the execution's log.
    sink: EventSink,
    ctx: &'a CommandContext,
}

impl Observer for Progress<'_> {
    fn observe(&mut self, event: TaskEvent) {
        self.sink.send(&event);
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRun<'a> {
    id: &'a str,
    status: &'static str,
    output: Option<Value>,
    error: Option<WorkflowError>,
    tasks: Vec<JsonTask>,
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

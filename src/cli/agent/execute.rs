//! `stigmer agent execute`: run an agent (or agent instance) on one message, streaming its
//! answer and its tool calls, recorded as an execution.

use std::fmt::Write as _;
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};

use super::super::approval::{self, AfterPark};
use super::super::common;
use super::super::config::Config;
use super::super::help;
use super::super::placement::{self, Placement};
use super::super::render::Style;
use super::super::workflow::{RunOutput, key_value, overrides};
use super::super::{CommandContext, CommandError, ErrorKind};
use crate::backend::{Backend, DEFAULT_LEASE, ExecutionRecord, ExecutionStatus};
use crate::cli::backend::AnyBackend;
use crate::runner::agent::conversation::{self, AgentError, AgentEvent, AgentObserver, Limits};
use crate::runner::agent::definition::{Ask, NewRun};
use crate::runner::agent::launch::LaunchError;
use crate::runner::agent::provider::{StreamEvent, excerpt};
use crate::runner::environment::Overrides;
use crate::secrets::Redactor;
use crate::worker::{self, Ended};

/// Run an agent on a message and stream its answer.
///
/// The model answers, calling its MCP tools and sub-agents as it goes. Text output streams the
/// answer and each tool call; the run is recorded as an execution, and continues a session.
/// Against a server the execution is queued for the server's workers and followed here.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer agent execute support-triage \"Summarize ticket 42\"",
        "stigmer agent execute support-triage \"And the next one?\" --session triage-monday",
        "stigmer agent execute helper \"Hi\" --model anthropic/claude-sonnet-4-5 -o json",
    ],
    &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS, help::MODEL],
))]
pub struct ExecuteArgs {
    /// The agent, or agent instance, to run.
    pub name: String,
    /// The message.
    pub message: String,
    /// Continue (or start) this named session; a new session otherwise.
    #[arg(long)]
    pub session: Option<String>,
    /// The model, as `provider/name` or `name`, instead of the agent's.
    #[arg(long)]
    pub model: Option<String>,
    /// A variable for the run (repeatable), overriding envSpec defaults and environments.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// A secret variable for the run (repeatable): masked in every output.
    #[arg(long = "secret", value_name = "KEY=VALUE", value_parser = key_value)]
    pub secret: Vec<(String, String)>,
    /// The most answers the model may give (each tool round is one).
    #[arg(long, default_value_t = conversation::DEFAULT_MAX_STEPS, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_steps: u32,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = RunOutput::Text)]
    pub output: RunOutput,
    #[command(flatten)]
    pub placement: Placement,
}

/// Runs `stigmer agent execute`.
pub async fn run(ctx: &CommandContext, args: &ExecuteArgs) -> Result<(), CommandError> {
    let backend = ctx.settings.backend()?;
    let id = uuid::Uuid::new_v4().to_string();
    let overrides = overrides(&args.env, &args.secret);
    let session = args.session.clone().unwrap_or_else(|| format!("{}-{}", args.name, &id[..8]));
    let ask = Ask {
        name: &args.name,
        message: &args.message,
        session: &session,
        model: args.model.as_deref(),
        limits: Limits { max_steps: args.max_steps, ..Limits::default() },
        overrides: &overrides,
    };
    let new = Box::pin(NewRun::read(&backend, &ask)).await.map_err(launch_failure)?;
    let redactor = new.variables.redactor();
    let here = args.placement.here(&backend);
    let status = if here { ExecutionStatus::Running } else { ExecutionStatus::Pending };
    let mut record = ExecutionRecord::new(
        id.clone(),
        new.target.address.clone(),
        ctx.settings.actor.clone(),
        redactor.redact_json(new.input.clone()),
        status,
    );
    record.definition = serde_json::to_value(&new.run).ok().map(|d| redactor.redact_json(d));
    if here {
        // Secret values stay in this process: nothing else runs it. The record masks them (a
        // secret default in its snapshot too), so the run takes them as resolved here.
        backend.execution_create(record, Vec::new()).await?;
        let resolved = Overrides { env: Vec::new(), secret: new.secrets() };
        return Box::pin(run_here(ctx, &backend, &id, resolved, args.output)).await;
    }
    // Stdout is the answer: the notice goes to stderr.
    if !placement::queue(ctx, &backend, record, new.secrets(), &args.placement, true).await? {
        return Ok(());
    }
    follow(ctx, &backend, &id, &new.target.name, args.output, args.placement.cancel_on_interrupt).await
}

/// Runs agent execution `id` in this process, through the same worker code the server uses:
/// a new one, or one whose runner died (`execution resume`: its turn runs again). `extra`
/// values go over those it was created with.
pub(in super::super) async fn run_here(
    ctx: &CommandContext,
    backend: &AnyBackend,
    id: &str,
    extra: Overrides,
    output: RunOutput,
) -> Result<(), CommandError> {
    let started = Instant::now();
    let workspaces = ctx.settings.home.join("workspaces");
    let prices = Config::load(&ctx.settings.home)?.model_prices;
    let mut terminal: Option<Terminal<'_>> = None;
    // Each pass runs until the end, or until a tool call waits on a person: then this process
    // waits for the decision (asking for it on a terminal) and runs the execution on.
    loop {
        let claim = placement::claim_here(backend, id).await?;
        let preparing = worker::agent::prepare(backend, claim.clone(), extra.clone(), DEFAULT_LEASE, &workspaces);
        let prepared = match Box::pin(preparing).await {
            Ok(prepared) => prepared,
            Err(why) => {
                // Recorded as faulted, so the execution does not stay running with no runner.
                let _ = worker::fault(backend, &claim, &why).await;
                return Err(match why {
                    worker::PrepareError::Agent(error) => launch_failure(error),
                    other => CommandError::new(ErrorKind::User, other),
                });
            }
        };
        let redactor = prepared.redactor().clone();
        let shown =
            terminal.get_or_insert_with(|| Terminal::new(ctx, output, redactor.clone(), (prepared.agent(), id), false));
        let (session, model) = (prepared.session().to_owned(), prepared.model().to_owned());
        let outcome = Box::pin(worker::agent::run(backend, prepared, &prices, shown, common::shutdown())).await;
        if let Err(error) = outcome.recorded {
            return Err(
                CommandError::from(error).hint(format!("the run finished, but its log is incomplete (execution {id})"))
            );
        }
        if let Ended::Ran(Err(AgentError::AwaitingApproval { .. })) = &outcome.ended {
            match approval::await_decision(ctx, backend, id).await? {
                AfterPark::Again => continue,
                AfterPark::Over(record) => {
                    let tally = terminal.take().map(|t| t.finish(model)).unwrap_or_default();
                    return report_recorded(ctx, output, &record, tally, started, &redactor);
                }
            }
        }
        let status = outcome.ended.status();
        let stopped = placement::stopped(&outcome.ended);
        let (answer, error) = match outcome.ended {
            Ended::Ran(Ok(answer)) => (Some(answer.text), None),
            Ended::Ran(Err(error)) => (None, Some(Failure { detail: error.to_string(), hint: error.hint() })),
            _ => (None, None),
        };
        let tally = terminal.take().map(|t| t.finish(model)).unwrap_or_default();
        let ending = Ending { id, status, session: &session, answer, error, stopped, tally, took: started.elapsed() };
        return report(ctx, output, &ending, &redactor);
    }
}

/// Follows an agent execution queued on the server: its steps as they are recorded, then its
/// answer or error.
async fn follow(
    ctx: &CommandContext,
    backend: &AnyBackend,
    id: &str,
    agent: &str,
    output: RunOutput,
    cancel_on_interrupt: bool,
) -> Result<(), CommandError> {
    let started = Instant::now();
    // What the server sends was redacted by the worker.
    let redactor = Redactor::default();
    let mut terminal = Terminal::new(ctx, output, redactor.clone(), (agent, id), true);
    let record = placement::follow_to_end(ctx, backend, id, cancel_on_interrupt, |events| {
        for (_, event) in events {
            if let Ok(step) = serde_json::from_value::<AgentEvent>(event.clone()) {
                terminal.event(&step);
            }
        }
        Ok(())
    })
    .await?;
    report_recorded(ctx, output, &record, terminal.finish(String::new()), started, &redactor)
}

/// Reports how an execution ended from its record: one followed on a server, or one that ended
/// elsewhere while this process waited on it.
fn report_recorded(
    ctx: &CommandContext,
    output: RunOutput,
    record: &ExecutionRecord,
    tally: Tally,
    started: Instant,
    redactor: &Redactor,
) -> Result<(), CommandError> {
    let text =
        |value: Option<&Value>, key: &str| value.and_then(|v| v.get(key)).and_then(Value::as_str).map(str::to_owned);
    let session =
        text(record.output.as_ref(), "session").or_else(|| text(Some(&record.input), "session")).unwrap_or_default();
    let error = record.error.as_ref().map(|error| Failure {
        detail: text(Some(error), "detail").or_else(|| text(Some(error), "title")).unwrap_or_default(),
        hint: text(Some(error), "hint"),
    });
    let stopped = (record.status == ExecutionStatus::Cancelled).then(|| "cancelled".to_owned());
    let ending = Ending {
        id: &record.id,
        status: record.status,
        session: &session,
        answer: text(record.output.as_ref(), "answer"),
        error,
        stopped,
        tally,
        took: started.elapsed(),
    };
    report(ctx, output, &ending, redactor)
}

/// A launch failure as the CLI reports it: a user error when the fault is in what was asked.
fn launch_failure(error: LaunchError) -> CommandError {
    let hint = error.hint();
    let kind = if error.is_input() { ErrorKind::User } else { ErrorKind::Failed };
    let failure = CommandError::new(kind, error);
    match hint {
        Some(hint) => failure.hint(hint),
        None => failure,
    }
}

/// Why a run failed, already redacted.
struct Failure {
    detail: String,
    hint: Option<String>,
}

/// How an agent run ended, here or on a server's worker.
struct Ending<'a> {
    id: &'a str,
    status: ExecutionStatus,
    session: &'a str,
    answer: Option<String>,
    error: Option<Failure>,
    /// Why it was cancelled, when that is known.
    stopped: Option<String>,
    tally: Tally,
    took: std::time::Duration,
}

/// Prints how a run ended and gives its exit code: 0 when it completed, 1 otherwise.
fn report(
    ctx: &CommandContext,
    output: RunOutput,
    ending: &Ending<'_>,
    redactor: &Redactor,
) -> Result<(), CommandError> {
    let Ending { id, status, session, answer, error, stopped, tally, took } = ending;
    match output {
        RunOutput::Json => {
            let report = JsonRun {
                id,
                status: status.as_str(),
                session,
                answer: answer.as_deref(),
                error: error.as_ref().map(|e| e.detail.clone()),
                steps: tally.steps,
                usage: answer
                    .as_ref()
                    .map(|_| json!({ "inputTokens": tally.input_tokens, "outputTokens": tally.output_tokens })),
                model: &tally.model,
            };
            ctx.out(&redactor.redact(&common::json(&report)?))?;
        }
        RunOutput::Text => {
            let style = Style::new(ctx.settings.color_stdout);
            let mut text = if tally.at_line_start { String::new() } else { "\n".to_owned() };
            match status {
                ExecutionStatus::Completed => {
                    let _ = writeln!(
                        text,
                        "{} (execution {id}, session {session}; continue with --session {session})",
                        style.dim(&format!("completed in {took:.2?}"))
                    );
                }
                ExecutionStatus::Cancelled => {
                    let why = stopped.as_deref().unwrap_or("cancelled");
                    let _ = writeln!(text, "{} (execution {id})", style.warning(why));
                }
                _ => {}
            }
            ctx.out(&redactor.redact(&text))?;
        }
    }
    match (status, error) {
        (ExecutionStatus::Completed, _) => Ok(()),
        (_, Some(error)) => {
            let mut failure = CommandError::new(ErrorKind::Failed, AgentFailure(redactor.redact(&error.detail)));
            if let Some(hint) = &error.hint {
                failure = failure.hint(hint.clone());
            }
            Err(failure)
        }
        _ => Err(CommandError::reported(ErrorKind::Failed)),
    }
}

/// An agent's failure, already redacted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct AgentFailure(String);

/// Shows a run as it goes: the answer as it streams (or, for a run followed on a server, as
/// each step is recorded) and each tool call; counts the root agent's steps and tokens.
struct Terminal<'a> {
    live: bool,
    /// Steps come recorded, not streamed: their text is shown whole.
    followed: bool,
    style: Style,
    redactor: Redactor,
    /// The agent run (its sub-agents' text is not shown, only their calls).
    root: String,
    /// The execution shown.
    execution: String,
    tally: Tally,
    ctx: &'a CommandContext,
}

/// What the root agent did.
#[derive(Default)]
struct Tally {
    steps: u32,
    input_tokens: u64,
    output_tokens: u64,
    /// The model that answered, as its server named it.
    model: String,
    at_line_start: bool,
}

impl<'a> Terminal<'a> {
    fn new(
        ctx: &'a CommandContext,
        output: RunOutput,
        redactor: Redactor,
        (root, execution): (&str, &str),
        followed: bool,
    ) -> Self {
        Self {
            execution: execution.to_owned(),
            live: output == RunOutput::Text,
            followed,
            style: Style::new(ctx.settings.color_stdout),
            redactor,
            root: root.to_owned(),
            tally: Tally { at_line_start: true, ..Tally::default() },
            ctx,
        }
    }

    /// The tally, with `model` when no step named one.
    fn finish(self, model: String) -> Tally {
        let mut tally = self.tally;
        if tally.model.is_empty() {
            tally.model = model;
        }
        tally
    }

    fn show(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.tally.at_line_start = text.ends_with('\n');
        // Output is best effort: a closed terminal must not stop the run.
        let _ = self.ctx.out(&self.redactor.redact(text));
    }

    fn line(&mut self, text: &str) {
        let prefix = if self.tally.at_line_start { "" } else { "\n" };
        self.show(&format!("{prefix}{text}\n"));
    }
}

impl AgentObserver for Terminal<'_> {
    fn event(&mut self, event: &AgentEvent) {
        if let AgentEvent::AssistantMessage { agent, model, input_tokens, output_tokens, .. } = event
            && agent == &self.root
        {
            self.tally.steps += 1;
            self.tally.input_tokens += input_tokens;
            self.tally.output_tokens += output_tokens;
            self.tally.model.clone_from(model);
        }
        if !self.live {
            return;
        }
        match event {
            AgentEvent::AssistantMessage { agent, text, tool_calls, .. } => {
                if self.followed && agent == &self.root {
                    self.show(text);
                }
                for call in tool_calls {
                    let arguments = excerpt(&call.arguments.to_string(), 120);
                    let who = if agent == &self.root { String::new() } else { format!("{agent}: ") };
                    let line = format!("  {} {who}{}({arguments})", self.style.dim("→"), call.name);
                    self.line(&line);
                }
            }
            // Run here, the wait for a decision says this itself (on stderr, with how to decide).
            AgentEvent::ApprovalRequested(request) if self.followed => {
                let arguments = excerpt(&request.arguments.to_string(), 120);
                let line = format!(
                    "  {} waiting for approval: {}({arguments}) — `stigmer execution approve {}` or `reject`",
                    self.style.warning("⏸"),
                    request.tool,
                    self.execution
                );
                self.line(&line);
            }
            AgentEvent::ApprovalDecided(decision) => {
                let line = if decision.approved {
                    format!("  {} approved by {}", self.style.good("✓"), decision.by)
                } else {
                    let reason = decision.reason.as_deref().unwrap_or("no reason given");
                    format!("  {} rejected by {}: {reason}", self.style.error("✗"), decision.by)
                };
                self.line(&line);
            }
            AgentEvent::ToolResult { tool, is_error: true, content, .. } => {
                let line = format!("  {} {tool}: {}", self.style.error("✗"), excerpt(content, 200));
                self.line(&line);
            }
            _ => {}
        }
    }

    fn stream(&mut self, agent: &str, event: &StreamEvent) {
        if !self.live {
            return;
        }
        match event {
            StreamEvent::Text(text) if agent == self.root => self.show(text),
            StreamEvent::Retrying { attempt, delay, reason } => {
                let line = format!("  {} {reason}: retry {attempt} in {delay:.1?}", self.style.warning("…"));
                self.line(&line);
            }
            _ => {}
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRun<'a> {
    id: &'a str,
    status: &'static str,
    session: &'a str,
    answer: Option<&'a str>,
    error: Option<String>,
    steps: u32,
    usage: Option<Value>,
    model: &'a str,
}

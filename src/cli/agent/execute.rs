//! `stigmer agent execute`: run an agent (or agent instance) on one message, streaming its
//! answer and its tool calls, recorded as an execution.

use std::fmt::Write as _;
use std::time::Instant;

use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};

use super::super::common;
use super::super::help;
use super::super::render::Style;
use super::super::workflow::{RunOutput, key_value, overrides};
use super::super::{CommandContext, CommandError, ErrorKind};
use crate::backend::{Backend, ExecutionRecord, ExecutionStatus};
use crate::runner::agent::conversation::{self, AgentEvent, AgentObserver, Limits};
use crate::runner::agent::launch::{Launched, launch};
use crate::runner::agent::provider::{StreamEvent, Usage, excerpt};
use crate::runner::agent::session;
use crate::runner::workflow::record::{self, EventSink};
use crate::secrets::Redactor;

/// Run an agent on a message and stream its answer.
///
/// The model answers, calling its MCP tools and sub-agents as it goes. Text output streams the
/// answer and each tool call; the run is recorded as an execution, and continues a session.
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
}

/// Runs `stigmer agent execute`.
pub async fn run(ctx: &CommandContext, args: &ExecuteArgs) -> Result<(), CommandError> {
    let backend = ctx.settings.backend()?;
    let id = uuid::Uuid::new_v4().to_string();
    let workspace = ctx.settings.home.join("workspaces").join(&id);
    let overrides = overrides(&args.env, &args.secret);
    let launched =
        launch(&backend, &args.name, args.model.as_deref(), &overrides, &workspace).await.map_err(|error| {
            let hint = error.hint();
            let kind = if error.is_input() { ErrorKind::User } else { ErrorKind::Failed };
            let failure = CommandError::new(kind, error);
            match hint {
                Some(hint) => failure.hint(hint),
                None => failure,
            }
        })?;
    let Launched { target, variables: resolved, agent, toolset } = &launched;
    let session_name = args.session.clone().unwrap_or_else(|| format!("{}-{}", target.name, &id[..8]));
    let history = session::open(&backend, &session_name, &target.name, &target.address, &args.message)
        .await
        .map_err(|e| CommandError::new(ErrorKind::User, e))?;
    let redactor = resolved.redactor();
    let mut record = ExecutionRecord::new(
        id.clone(),
        target.address.clone(),
        ctx.settings.actor.clone(),
        redactor.redact_json(json!({ "message": args.message, "session": session_name })),
        ExecutionStatus::Running,
    );
    record.definition = Some(redactor.redact_json(json!({
        "agent": target.spec,
        "session": session_name,
        "model": agent.settings.model,
        "provider": agent.settings.kind.name(),
    })));
    backend.execution_create(record, Vec::new()).await?;

    let (sink, batches) = record::channel(redactor.clone());
    let live = args.output == RunOutput::Text;
    let observer = Terminal {
        live,
        style: Style::new(ctx.settings.color_stdout),
        redactor: redactor.clone(),
        sink,
        root: target.name.clone(),
        at_line_start: true,
        steps: 0,
        ctx,
    };
    let started = Instant::now();
    let limits = Limits { max_steps: args.max_steps };
    let recording = batches.append_to(&backend, &id, None);
    let running = async {
        // Owned here, so its sink is dropped when the run ends and the recorder can finish.
        let mut observer = observer;
        let result = tokio::select! {
            result = conversation::converse(agent, toolset, history, args.message.clone(), limits, &mut observer) => Some(result),
            () = common::shutdown() => None,
        };
        (result, observer.steps, observer.at_line_start)
    };
    let ((result, steps, at_line_start), (recorded, last)) = tokio::join!(running, recording);
    let model = agent.settings.model.clone();
    launched.stop().await;
    let (status, answer, error) = match &result {
        Some(Ok(answer)) => (ExecutionStatus::Completed, Some(answer), None),
        Some(Err(error)) => (ExecutionStatus::Faulted, None, Some(error)),
        None => (ExecutionStatus::Cancelled, None, None),
    };
    let stored_output = answer.map(|a| redactor.redact_json(json!({ "answer": a.text, "session": session_name })));
    let stored_error = error
        .map(|e| redactor.redact_json(json!({ "title": "Agent Error", "detail": e.to_string(), "hint": e.hint() })));
    backend.execution_finish(&id, None, status, stored_output, stored_error, last).await?;
    if let Err(error) = recorded {
        return Err(
            CommandError::from(error).hint(format!("the run finished, but its log is incomplete (execution {id})"))
        );
    }
    let took = started.elapsed();
    match args.output {
        RunOutput::Json => {
            let report = JsonRun {
                id: &id,
                status: status.as_str(),
                session: &session_name,
                answer: answer.map(|a| a.text.as_str()),
                error: error.map(ToString::to_string),
                steps,
                usage: answer
                    .map(|a| a.usage)
                    .map(|u: Usage| json!({ "inputTokens": u.input_tokens, "outputTokens": u.output_tokens })),
                model: &model,
            };
            ctx.out(&redactor.redact(&common::json(&report)?))?;
        }
        RunOutput::Text => {
            let style = Style::new(ctx.settings.color_stdout);
            let mut text = if at_line_start { String::new() } else { "\n".to_owned() };
            match status {
                ExecutionStatus::Completed => {
                    let _ = writeln!(
                        text,
                        "{} (execution {id}, session {session_name}; continue with --session {session_name})",
                        style.dim(&format!("completed in {took:.2?}"))
                    );
                }
                ExecutionStatus::Cancelled => {
                    let _ = writeln!(text, "{} (execution {id})", style.warning("interrupted"));
                }
                _ => {}
            }
            ctx.out(&redactor.redact(&text))?;
        }
    }
    match (status, error) {
        (ExecutionStatus::Completed, _) => Ok(()),
        (_, Some(error)) => {
            let hint = error.hint();
            let mut failure = CommandError::new(ErrorKind::Failed, AgentFailure(redactor.redact(&error.to_string())));
            if let Some(hint) = hint {
                failure = failure.hint(hint);
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

/// Streams the answer and shows tool calls as they happen; sends every step to the recorder.
struct Terminal<'a> {
    live: bool,
    style: Style,
    redactor: Redactor,
    sink: EventSink,
    /// The agent run (its sub-agents' text is not streamed, only their calls).
    root: String,
    at_line_start: bool,
    steps: u32,
    ctx: &'a CommandContext,
}

impl Terminal<'_> {
    fn show(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.at_line_start = text.ends_with('\n');
        // Output is best effort: a closed terminal must not stop the run.
        let _ = self.ctx.out(&self.redactor.redact(text));
    }

    fn line(&mut self, text: &str) {
        let prefix = if self.at_line_start { "" } else { "\n" };
        self.show(&format!("{prefix}{text}\n"));
    }
}

impl AgentObserver for Terminal<'_> {
    fn event(&mut self, event: &AgentEvent) {
        self.sink.send(&Stamped { at: jiff::Timestamp::now(), event });
        if let AgentEvent::AssistantMessage { agent, .. } = event
            && agent == &self.root
        {
            self.steps += 1;
        }
        if !self.live {
            return;
        }
        match event {
            AgentEvent::AssistantMessage { agent, tool_calls, .. } => {
                for call in tool_calls {
                    let arguments = excerpt(&call.arguments.to_string(), 120);
                    let who = if agent == &self.root { String::new() } else { format!("{agent}: ") };
                    let line = format!("  {} {who}{}({arguments})", self.style.dim("→"), call.name);
                    self.line(&line);
                }
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

/// An agent event with when it happened, as the execution log keeps it.
#[derive(Serialize)]
struct Stamped<'a> {
    at: jiff::Timestamp,
    #[serde(flatten)]
    event: &'a AgentEvent,
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

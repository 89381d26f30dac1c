//! `stigmer execution list|get|logs|resume|cancel|signal|approvals|approve|reject`: the
//! recorded runs, their event logs, and what can be done to one still running.

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::common;
use super::help;
use super::output::{self, OutputArgs, OutputFormat};
use super::{CommandContext, CommandError};
use crate::backend::approval::Verdict;
use crate::backend::execution::ControlError;
use crate::backend::{Backend, BackendError, ExecutionQuery, ExecutionRecord, ExecutionStatus};
use crate::model::Kind;

/// Show recorded executions and their event logs.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer execution list --workflow ticket-triage --status faulted",
        "stigmer execution get 3f2a… -o json",
        "stigmer execution events 3f2a… -f",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct ExecutionArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ExecutionCommand,
}

/// `stigmer execution …`.
#[derive(Debug, Subcommand)]
pub enum ExecutionCommand {
    /// List executions, oldest first.
    #[command(after_help = help::after(
        &[
            "stigmer execution list",
            "stigmer execution list --workflow ticket-triage --status faulted",
            "stigmer execution list --status running -o name",
        ],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    List {
        /// Only runs of this stored workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only executions with this status: pending, running, waiting, completed, faulted, cancelled.
        #[arg(long, value_parser = |s: &str| s.parse::<ExecutionStatus>())]
        status: Option<ExecutionStatus>,
        /// Only executions started in the last DURATION (`90s`, `15m`, `2h`, `7d`) or since a
        /// time (`2026-12-01T00:00:00Z`).
        #[arg(long, value_name = "DURATION|TIME", value_parser = since)]
        since: Option<jiff::Timestamp>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show one execution: status, times, input, output or error.
    #[command(after_help = help::after(
        &[
            "stigmer execution get 3f2a…",
            "stigmer execution get 3f2a… -o json",
        ],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    Get {
        /// The execution's id.
        id: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Continue an interrupted execution in this process.
    ///
    /// A workflow goes on where it stopped: tasks it completed are not run again (their recorded
    /// outputs are reused), and the log goes on. An agent runs its turn again from the start.
    #[command(after_help = help::after(
        &[
            "stigmer execution list --status running",
            "stigmer execution resume 3f2a…",
            "stigmer execution resume 3f2a… --secret API_KEY=… -o json",
        ],
        &[help::COLOR, help::HOME, help::BACKEND, help::SECRETS, help::MODEL],
    ))]
    Resume {
        /// The execution's id (see `stigmer execution list --status running`).
        id: String,
        /// A variable for the run (repeatable), as for `workflow run`.
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = super::workflow::key_value)]
        env: Vec<(String, String)>,
        /// A secret variable for the run (repeatable): masked in every output.
        #[arg(long = "secret", value_name = "KEY=VALUE", value_parser = super::workflow::key_value)]
        secret: Vec<(String, String)>,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = super::workflow::RunOutput::Text)]
        output: super::workflow::RunOutput,
    },
    /// Cancel a running execution.
    ///
    /// Its runner stops within a second and records nothing more.
    #[command(after_help = help::after(
        &[
            "stigmer execution cancel 3f2a…",
        ],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    Cancel {
        /// The execution's id.
        id: String,
    },
    /// Send an event to a running execution.
    ///
    /// A `listen` task waiting for it (or reaching one later) consumes it. An interrupted
    /// execution gets it when it is resumed.
    #[command(after_help = help::after(
        &[
            "stigmer execution signal 3f2a… --type com.example.approved --data '{\"by\": \"ada\"}'",
            "stigmer execution signal 3f2a… --type com.example.note --data 'plain text is sent as a string'",
        ],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    Signal {
        /// The execution's id.
        id: String,
        /// The event's `type`.
        #[arg(long = "type", value_name = "TYPE")]
        type_: String,
        /// The event's `data`: JSON, or plain text sent as a string (text that starts like JSON,
        /// with `{`, `[` or `"`, must be JSON).
        #[arg(long, value_name = "JSON")]
        data: Option<String>,
        /// The event's `source`.
        #[arg(long, default_value = "stigmer:cli")]
        source: String,
        /// The event's `subject`.
        #[arg(long)]
        subject: Option<String>,
    },
    /// List the tool calls agents wait on a person to approve.
    #[command(after_help = help::after(
        &[
            "stigmer execution approvals",
            "stigmer execution approvals --all -o wide",
        ],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    Approvals {
        /// Every call ever asked about, with its decision, not only those waiting.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Approve the tool calls an execution waits on: they run, and the agent goes on.
    ///
    /// Needs the editor role on a server; the decision is in the audit log and the history.
    #[command(after_help = help::after(
        &[
            "stigmer execution approve 3f2a…",
            "stigmer execution approve 3f2a… --call call_7",
        ],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    Approve {
        /// The execution's id (see `stigmer execution approvals`).
        id: String,
        /// Only this call; every call it waits on otherwise.
        #[arg(long = "call", value_name = "CALL_ID")]
        call: Option<String>,
    },
    /// Reject the tool calls an execution waits on: the agent reads the reason as the result.
    #[command(after_help = help::after(
        &[
            "stigmer execution reject 3f2a… --reason \"not on production\"",
        ],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    Reject {
        /// The execution's id (see `stigmer execution approvals`).
        id: String,
        /// Why: the agent reads it as the tool's result.
        #[arg(long)]
        reason: String,
        /// Only this call; every call it waits on otherwise.
        #[arg(long = "call", value_name = "CALL_ID")]
        call: Option<String>,
    },
    /// Show an execution's event log.
    ///
    /// Every task transition, agent step and event, in order. Followed with -f, `-o json`
    /// prints one event per line as it comes.
    #[command(visible_alias = "logs", after_help = help::after(
        &[
            "stigmer execution events 3f2a…",
            "stigmer execution events 3f2a… -f",
            "stigmer execution events 3f2a… -o json | jq '.items[].event'",
        ],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    Events {
        /// The execution's id.
        id: String,
        /// Keep following the log until the execution finishes.
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Runs `stigmer execution`.
pub async fn run(ctx: &CommandContext, args: &ExecutionArgs) -> Result<(), CommandError> {
    let backend = ctx.settings.backend()?;
    match &args.command {
        ExecutionCommand::List { workflow, status, since, output } => {
            let query = ExecutionQuery {
                target: workflow.as_ref().map(|name| crate::backend::address(Kind::Workflow, name)),
                status: *status,
                since: *since,
                ..ExecutionQuery::default()
            };
            let records = backend.execution_list(&query).await?;
            if output::is_empty_table(output.output, &records) {
                return ctx.err("No executions found.\n");
            }
            // Wide shows what each agent execution spent (read from its history).
            let mut spending = Vec::new();
            if output.output == OutputFormat::Wide {
                let prices = super::config::Config::load(&ctx.settings.home)?.model_prices;
                for record in &records {
                    let spent = if crate::worker::agent::is_agent(&record.target) {
                        let spent = super::usage::spent(&backend, record).await?;
                        let cost = (!prices.is_empty()).then(|| format!("{:.4}", prices.cost(&spent).amount));
                        (spent.total().total().to_string(), cost.unwrap_or_else(|| "-".to_owned()))
                    } else {
                        ("-".to_owned(), "-".to_owned())
                    };
                    spending.push(spent);
                }
            }
            let table = |wide: bool| {
                let mut header = vec!["ID", "TARGET", "STATUS", "STARTED", "FINISHED"];
                if wide {
                    header.extend(["ACTOR", "DURATION", "TOKENS", "COST", "ERROR"]);
                }
                let rows = records.iter().enumerate().map(|(i, r)| {
                    let mut row = vec![
                        r.id.clone(),
                        r.target.clone(),
                        r.status.as_str().to_owned(),
                        common::time(r.started_at),
                        r.finished_at.map_or_else(|| "-".to_owned(), common::time),
                    ];
                    if wide {
                        row.push(r.actor.clone());
                        row.push(r.finished_at.map_or_else(|| "-".to_owned(), |end| duration(r.started_at, end)));
                        let (tokens, cost) = spending.get(i).cloned().unwrap_or_default();
                        row.extend([tokens, cost]);
                        let error = r.error.as_ref().and_then(|e| e.get("title").or_else(|| e.get("type")));
                        row.push(error.and_then(Value::as_str).unwrap_or("-").to_owned());
                    }
                    row
                });
                common::table(&header, rows)
            };
            ctx.out(&output::list(output.output, &records, table, |r| r.id.clone())?)
        }
        ExecutionCommand::Get { id, output } => {
            let record = get(&backend, id).await?;
            let mut text = describe(&record);
            if crate::worker::agent::is_agent(&record.target) {
                let prices = super::config::Config::load(&ctx.settings.home)?.model_prices;
                let spent = super::usage::spent(&backend, &record).await?;
                let _ = writeln!(text, "Usage:     {}", super::usage::line(&spent, &prices));
            }
            ctx.out(&output::one(output.output, &record, |_| text.clone(), |r| r.id.clone())?)
        }
        ExecutionCommand::Resume { id, env, secret, output } => {
            let record = get(&backend, id).await?;
            if crate::backend::approval::is_parked(&record) {
                return Err(CommandError::user(format!("execution {id} waits for a tool call's approval"))
                    .hint("`stigmer execution approvals` lists it; approve or reject it, then resume"));
            }
            let decided = record.status == ExecutionStatus::Pending && crate::worker::agent::is_agent(&record.target);
            if record.status.is_final() || (record.status == ExecutionStatus::Pending && !decided) {
                return Err(CommandError::user(format!(
                    "execution {id} is {}; only an interrupted (running) execution can be resumed",
                    record.status.as_str()
                ))
                .hint("run the workflow again with `stigmer workflow run`"));
            }
            if crate::worker::agent::is_agent(&record.target) {
                // An agent's turn runs again from its start: at least once per turn.
                let extra = super::workflow::overrides(env, secret);
                return Box::pin(super::agent::resume(ctx, &backend, id, extra, *output)).await;
            }
            let definition = record.definition.clone().unwrap_or(Value::Null);
            let workflow = serde_json::from_value(definition["workflow"].clone())
                .map_err(|e| CommandError::user(format!("execution {id} does not record the workflow it ran: {e}")))?;
            let env_spec = serde_json::from_value(definition["envSpec"].clone()).unwrap_or(None);
            let workflows = serde_json::from_value(definition["workflows"].clone()).unwrap_or_default();
            let run = super::workflow::Run {
                workflow,
                env_spec,
                target: record.target,
                input: record.input,
                overrides: super::workflow::overrides(env, secret),
                output: *output,
                resume: Some(id.clone()),
                workflows,
            };
            super::workflow::execute(ctx, &backend, run).await
        }
        ExecutionCommand::Cancel { id } => {
            crate::backend::execution::cancel(&backend, id).await.map_err(control_error)?;
            ctx.out(&format!("execution {id} cancelled\n"))
        }
        ExecutionCommand::Signal { id, type_, data, source, subject } => {
            let data = data.as_deref().map(signal_data).transpose()?;
            let event = crate::backend::events::new(type_, source, subject.as_deref(), data);
            let event_id = event["id"].as_str().unwrap_or_default().to_owned();
            crate::backend::execution::signal(&backend, id, &event).await.map_err(|error| match error {
                ControlError::Over { .. } => {
                    CommandError::user(format!("{error}; only a running execution can receive events"))
                }
                other @ ControlError::Backend(_) => control_error(other),
            })?;
            ctx.out(&format!("sent {type_} to execution {id} (event {event_id})\n"))
        }
        ExecutionCommand::Approvals { all, output } => super::approval::list(ctx, &backend, *all, output.output).await,
        ExecutionCommand::Approve { id, call } => {
            let verdict = Verdict { approve: true, reason: None };
            super::approval::decide(ctx, &backend, id, call.as_deref(), &verdict).await
        }
        ExecutionCommand::Reject { id, reason, call } => {
            let verdict = Verdict { approve: false, reason: Some(reason.clone()) };
            super::approval::decide(ctx, &backend, id, call.as_deref(), &verdict).await
        }
        ExecutionCommand::Events { id, follow, output } => {
            let events = backend.execution_events(id, 0, None).await?;
            // An id with no events must still exist.
            let record = get(&backend, id).await?;
            ctx.out(&events_text(output.output, &events, *follow)?)?;
            if !follow || record.status.is_final() {
                return Ok(());
            }
            let after = events.last().map_or(0, |(sequence, _)| *sequence);
            let format = output.output;
            let followed =
                super::follow::events(&backend, id, after, |events| ctx.out(&events_text(format, events, true)?))
                    .await?;
            if let super::follow::Followed::Ended(record) = followed {
                ctx.err(&format!("execution {id} {}\n", record.status.as_str()))?;
            }
            Ok(())
        }
    }
}

/// `--since`: a time, or a duration back from now.
fn since(text: &str) -> Result<jiff::Timestamp, String> {
    if let Ok(at) = text.parse::<jiff::Timestamp>() {
        return Ok(at);
    }
    let back = super::common::parse_duration(text)?;
    jiff::Timestamp::now().checked_sub(back).map_err(|e| format!("{text:?} reaches too far back: {e}"))
}

/// `--data`: JSON, or plain text as a string. Text that starts like JSON and is not is a typo,
/// not a string to send.
pub(super) fn signal_data(text: &str) -> Result<Value, CommandError> {
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(e) if text.trim_start().starts_with(['{', '[', '"']) => {
            Err(CommandError::user(format!("--data is not JSON: {e}"))
                .hint("fix the JSON, or pass plain text that does not start with {, [ or \""))
        }
        Err(_) => Ok(Value::String(text.to_owned())),
    }
}

fn control_error(error: ControlError) -> CommandError {
    match error {
        ControlError::Backend(error) => error.into(),
        over @ ControlError::Over { .. } => CommandError::user(over.to_string()),
    }
}

async fn get<B: Backend>(backend: &B, id: &str) -> Result<ExecutionRecord, CommandError> {
    backend
        .execution_get(id)
        .await?
        .ok_or_else(|| CommandError::from(BackendError::NotFound { address: format!("execution/{id}") }))
}

/// A batch of an execution's events in the format asked for. Followed, JSON and YAML print
/// each event on its own (JSON Lines, YAML documents), since a list cannot be closed while the
/// log grows.
fn events_text(format: OutputFormat, events: &[(u64, Value)], follow: bool) -> Result<String, CommandError> {
    let items: Vec<Value> = events
        .iter()
        .map(|(sequence, event)| {
            let mut item = event.clone();
            if let Some(fields) = item.as_object_mut() {
                fields.insert("sequence".to_owned(), Value::from(*sequence));
            }
            item
        })
        .collect();
    let sequence = |event: &Value| event["sequence"].to_string();
    match format {
        OutputFormat::Json if follow => Ok(items.iter().map(|item| item.to_string() + "\n").collect()),
        OutputFormat::Yaml if follow => {
            Ok(items.iter().map(|item| String::from("---\n") + &crate::model::canonical::to_yaml(item)).collect())
        }
        _ => output::list(
            format,
            &items,
            |wide| {
                items
                    .iter()
                    .map(
                        |item| if wide { format!("{:>6} {}\n", sequence(item), line(item)) } else { line(item) + "\n" },
                    )
                    .collect()
            },
            sequence,
        ),
    }
}

/// `1.2s`, `3m04s`: how long a run took.
fn duration(start: jiff::Timestamp, end: jiff::Timestamp) -> String {
    let millis = end.as_millisecond().saturating_sub(start.as_millisecond()).max(0);
    if millis < 60_000 {
        format!("{}.{}s", millis / 1000, (millis % 1000) / 100)
    } else {
        format!("{}m{:02}s", millis / 60_000, (millis % 60_000) / 1000)
    }
}

fn describe(record: &ExecutionRecord) -> String {
    let mut out = format!(
        "ID:        {}\nTarget:    {}\nStatus:    {}\nActor:     {}\nStarted:   {}\n",
        record.id,
        record.target,
        record.status.as_str(),
        record.actor,
        common::time(record.started_at)
    );
    if let Some(at) = record.finished_at {
        let _ = writeln!(out, "Finished:  {}", common::time(at));
    }
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let _ = writeln!(out, "Input:\n{}", indent(&pretty(&record.input)));
    if let Some(output) = &record.output {
        let _ = writeln!(out, "Output:\n{}", indent(&pretty(output)));
    }
    if let Some(error) = &record.error {
        let _ = writeln!(out, "Error:\n{}", indent(&pretty(error)));
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

/// One event as a log line: `12:03:04.123 completed /do/0/greet`.
pub(super) fn line(event: &Value) -> String {
    let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or("");
    let at = text("at")
        .parse::<jiff::Timestamp>()
        .map_or_else(|_| text("at").to_owned(), |t| t.strftime("%H:%M:%S%.3f").to_string());
    let detail = match text("event") {
        "failed" => event.get("error").and_then(|e| e.get("title")).and_then(Value::as_str).map(|t| format!(": {t}")),
        "retrying" => event.get("attempt").map(|a| format!(" (retry {a})")),
        "signal" | "emitted" | "consumed" => {
            event.pointer("/cloudEvent/type").and_then(Value::as_str).map(|t| format!(" {t}"))
        }
        "claimed" => Some(format!(
            " by {}{}",
            text("worker"),
            event["attempt"]
                .as_u64()
                .filter(|n| *n > 1)
                .map(|n| format!(" (attempt {n}, resumed)"))
                .unwrap_or_default()
        )),
        "toolResult" => Some(format!(" {}{}", text("tool"), if event["isError"] == true { " (error)" } else { "" })),
        "approvalRequested" => Some(format!(" {} (call {})", text("tool"), text("callId"))),
        "approvalDecided" => Some(format!(
            " {} by {} (call {}){}",
            if event["approved"] == true { "approved" } else { "rejected" },
            text("by"),
            text("callId"),
            event.get("reason").and_then(Value::as_str).map(|r| format!(": {r}")).unwrap_or_default()
        )),
        "assistantMessage" => {
            let calls: Vec<&str> =
                event["toolCalls"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str()).collect();
            Some(if calls.is_empty() { String::new() } else { format!(" → {}", calls.join(", ")) })
        }
        _ => None,
    };
    // A signal belongs to no task: it has no reference. An agent's step names its agent.
    let reference = match (text("reference"), text("agent")) {
        ("", "") => String::new(),
        ("", agent) => format!(" {agent}"),
        (reference, _) => format!(" {reference}"),
    };
    format!("{at} {:<9}{reference}{}", text("event"), detail.unwrap_or_default())
}

//! `stigmer execution approvals|approve|reject`: the tool calls agents wait on a person for, and
//! the decisions that let them go on; and the wait of `agent execute` for such a decision.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::backend::AnyBackend;
use super::common;
use super::output::{self, OutputFormat};
use super::{CommandContext, CommandError};
use crate::backend::approval::{self, Approval, ApprovalError, Verdict};
use crate::backend::{Backend, ExecutionQuery, ExecutionRecord, ExecutionStatus};
use crate::runner::agent::provider::excerpt;

/// One approval as listed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed<'a> {
    execution: &'a str,
    call: &'a str,
    agent: &'a str,
    tool: &'a str,
    arguments: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asked_at: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<jiff::Timestamp>,
    /// `waiting`, `approved` or `rejected`.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl<'a> From<&'a Approval> for Listed<'a> {
    fn from(a: &'a Approval) -> Self {
        let decision = a.decision.as_ref();
        Self {
            execution: &a.execution,
            call: &a.request.call_id,
            agent: &a.request.agent,
            tool: &a.request.tool,
            arguments: &a.request.arguments,
            message: a.request.message.as_deref(),
            asked_at: a.asked_at,
            deadline: a.request.deadline,
            state: match decision {
                None => "waiting",
                Some(d) if d.approved => "approved",
                Some(_) => "rejected",
            },
            decided_by: decision.map(|d| d.by.as_str()),
            reason: decision.and_then(|d| d.reason.as_deref()),
        }
    }
}

/// `stigmer execution approvals`: the calls waiting (with `all`, every one ever asked about,
/// with its decision).
pub(super) async fn list(
    ctx: &CommandContext,
    backend: &AnyBackend,
    all: bool,
    format: OutputFormat,
) -> Result<(), CommandError> {
    let query = ExecutionQuery {
        status: (!all).then_some(ExecutionStatus::Waiting),
        target_prefixes: vec!["agent/".to_owned(), "agentinstance/".to_owned()],
        ..ExecutionQuery::default()
    };
    let records = backend.execution_list(&query).await?;
    let records: Vec<ExecutionRecord> = records.into_iter().filter(|r| all || approval::is_parked(r)).collect();
    let approvals: Vec<Approval> =
        approval::listed(backend, &records).await?.into_iter().filter(|a| all || a.decision.is_none()).collect();
    let items: Vec<Listed<'_>> = approvals.iter().map(Listed::from).collect();
    if output::is_empty_table(format, &items) {
        return ctx.err(if all { "No approvals found.\n" } else { "No tool calls are waiting for approval.\n" });
    }
    let table = |wide: bool| {
        let mut header = vec!["EXECUTION", "CALL", "AGENT", "TOOL", "ASKED", "DEADLINE", "STATE"];
        if wide {
            header.extend(["ARGUMENTS", "MESSAGE", "BY", "REASON"]);
        }
        let rows = items.iter().map(|item| {
            let mut row = vec![
                item.execution.to_owned(),
                item.call.to_owned(),
                item.agent.to_owned(),
                item.tool.to_owned(),
                item.asked_at.map_or_else(|| "-".to_owned(), common::time),
                item.deadline.map_or_else(|| "-".to_owned(), common::time),
                item.state.to_owned(),
            ];
            if wide {
                row.push(excerpt(&item.arguments.to_string(), 80));
                row.push(item.message.unwrap_or("-").to_owned());
                row.push(item.decided_by.unwrap_or("-").to_owned());
                row.push(item.reason.unwrap_or("-").to_owned());
            }
            row
        });
        common::table(&header, rows)
    };
    ctx.out(&output::list(format, &items, table, |item| format!("{}/{}", item.execution, item.call))?)
}

/// `stigmer execution approve|reject`: decides the calls execution `id` waits on.
pub(super) async fn decide(
    ctx: &CommandContext,
    backend: &AnyBackend,
    id: &str,
    call: Option<&str>,
    verdict: &Verdict,
) -> Result<(), CommandError> {
    let decided = approval::decide(backend, id, call, verdict).await.map_err(approval_error)?;
    let word = if verdict.approve { "approved" } else { "rejected" };
    let mut text = String::new();
    for request in &decided {
        let _ = writeln!(text, "{word} {} (call {}) of execution {id}", request.tool, request.call_id);
    }
    ctx.out(&text)
}

fn approval_error(error: ApprovalError) -> CommandError {
    let hint = error.hint();
    let failure = match error {
        ApprovalError::Backend(error) => CommandError::from(error),
        other => CommandError::user(other.to_string()),
    };
    match hint {
        Some(hint) => failure.hint(hint),
        None => failure,
    }
}

/// What became of an execution this process parked.
pub(super) enum AfterPark {
    /// Decided (or its deadline passed): run it again here.
    Again,
    /// It ended meanwhile (cancelled), or another worker runs it: how it ended.
    Over(Box<ExecutionRecord>),
}

/// How often a waiting CLI looks at the execution again.
const LOOK_AGAIN: Duration = Duration::from_millis(200);

/// Waits for the decisions execution `id` was parked for: on a terminal, asks for them; else
/// says how to decide from another one. Returns once it can run again, or it is over.
///
/// # Errors
/// The backend failed, or Ctrl-C (the execution keeps waiting; the error says how to go on).
pub(super) async fn await_decision(
    ctx: &CommandContext,
    backend: &AnyBackend,
    id: &str,
) -> Result<AfterPark, CommandError> {
    let events = backend.execution_events(id, 0, None).await?;
    let waiting: Vec<Approval> =
        approval::approvals(id, &events).into_iter().filter(|a| a.decision.is_none()).collect();
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    for pending in &waiting {
        let request = &pending.request;
        let mut text = format!(
            "waiting for approval: {}({}) asked by {} (call {})\n",
            request.tool,
            excerpt(&request.arguments.to_string(), 200),
            request.agent,
            request.call_id
        );
        if let Some(message) = &request.message {
            let _ = writeln!(text, "  {message}");
        }
        if let Some(deadline) = request.deadline {
            let _ = writeln!(text, "  rejected unless decided by {}", common::time(deadline));
        }
        ctx.err(&text)?;
        if interactive {
            let verdict = ask_person(ctx).await?;
            match approval::decide(backend, id, Some(&request.call_id), &verdict).await {
                // Decided elsewhere meanwhile: that decision stands.
                Ok(_) | Err(ApprovalError::NotWaiting { .. } | ApprovalError::NoSuchCall { .. }) => {}
                Err(error) => return Err(approval_error(error)),
            }
        }
    }
    if !interactive {
        ctx.err(&format!(
            "decide from another terminal: `stigmer execution approve {id}` or `stigmer execution reject {id} --reason …`\n"
        ))?;
    }
    let shutdown = common::shutdown();
    tokio::pin!(shutdown);
    loop {
        let record =
            backend.execution_get(id).await?.ok_or_else(|| CommandError::user(format!("execution {id} is gone")))?;
        let now = jiff::Timestamp::now();
        match record.status {
            ExecutionStatus::Pending => {
                tell_decisions(ctx, backend, id, &waiting).await?;
                return Ok(AfterPark::Again);
            }
            // Its deadline passed: the run rejects what is still undecided.
            _ if approval::is_parked(&record) => {
                if record.lease.as_ref().is_some_and(|lease| lease.expires_at <= now) {
                    return Ok(AfterPark::Again);
                }
            }
            _ => return Ok(AfterPark::Over(Box::new(record))),
        }
        tokio::select! {
            () = &mut shutdown => {
                return Err(CommandError::user(format!("stopped waiting; execution {id} still waits for approval"))
                    .hint(format!("once decided, run it on with `stigmer execution resume {id}`")));
            }
            () = tokio::time::sleep(LOOK_AGAIN) => {}
        }
    }
}

/// Tells what was decided about the calls this process waited on (by whom, and why not).
async fn tell_decisions(
    ctx: &CommandContext,
    backend: &AnyBackend,
    id: &str,
    waited: &[Approval],
) -> Result<(), CommandError> {
    let events = backend.execution_events(id, 0, None).await?;
    let mut text = String::new();
    for decided in approval::approvals(id, &events) {
        let Some(decision) = &decided.decision else { continue };
        if !waited.iter().any(|w| w.request.call_id == decided.request.call_id) {
            continue;
        }
        let verdict = if decision.approved { "approved" } else { "rejected" };
        let _ = write!(text, "{} {verdict} by {}", decided.request.tool, decision.by);
        if let Some(reason) = &decision.reason {
            let _ = write!(text, ": {reason}");
        }
        text.push('\n');
    }
    ctx.err(&text)
}

/// Asks the person at the terminal to approve or reject (with a reason).
async fn ask_person(ctx: &CommandContext) -> Result<Verdict, CommandError> {
    loop {
        ctx.err("approve? [y]es / [n]o: ")?;
        let answer = read_line().await?;
        match answer.trim().to_lowercase().as_str() {
            "y" | "yes" => return Ok(Verdict { approve: true, reason: None }),
            "n" | "no" => {
                ctx.err("reason (the agent reads it): ")?;
                let reason = read_line().await?;
                let reason = Some(reason.trim().to_owned()).filter(|r| !r.is_empty());
                return Ok(Verdict { approve: false, reason });
            }
            _ => {}
        }
    }
}

async fn read_line() -> Result<String, CommandError> {
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    match read.await {
        Ok(Ok(line)) if line.is_empty() => Err(CommandError::user("no answer: the input ended")),
        Ok(Ok(line)) => Ok(line),
        Ok(Err(error)) => Err(CommandError::user(format!("cannot read the answer: {error}"))),
        Err(error) => Err(CommandError::user(format!("cannot read the answer: {error}"))),
    }
}

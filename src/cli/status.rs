//! `stigmer status`: the health of everything stored, problems first; exits 1 when a condition
//! says something is wrong (a `False` one, or `Drifted`), for CI after an apply.

use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::backend::AnyBackend;
use super::common;
use super::get::age;
use super::help;
use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError, ErrorKind};
use crate::backend::Backend;
use crate::backend::condition::{Condition, ConditionStatus, Observed};
use crate::runner::health::{self, ProbeOptions};

/// Show the health of every resource: MCP servers, models, secrets, skills, agents, drift.
///
/// On the local store the probes run now (each MCP server is started and asked for its tools,
/// each model endpoint for its models); a server probes by itself after each apply and every
/// `--health-interval`, and `status` shows what it last saw (`--probe` probes from here).
/// Exits 1 when something is not ready.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &["stigmer status", "stigmer apply -f agents/ && stigmer status", "stigmer status -o json"],
    &[help::COLOR, help::HOME, help::BACKEND, help::MODEL],
))]
pub struct StatusArgs {
    /// Probe from this machine even against a server (and record what is found).
    #[arg(long)]
    pub probe: bool,
    /// How long one probe (an MCP server start, a model listing) may take.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = common::parse_positive_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// One condition of one resource, as listed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    resource: &'a str,
    #[serde(flatten)]
    condition: &'a Condition,
}

/// Runs `stigmer status`.
pub async fn run(ctx: &CommandContext, args: &StatusArgs) -> Result<(), CommandError> {
    let backend = ctx.settings.backend()?;
    let observed = observe(&backend, args.probe, ProbeOptions { timeout: args.timeout }).await?;
    let mut lines: Vec<Line<'_>> = observed
        .iter()
        .flat_map(|o| o.conditions.iter().map(|condition| Line { resource: &o.address, condition }))
        .collect();
    // Problems first, then unknown, then the rest, each by resource.
    let rank = |condition: &Condition| match condition.status {
        _ if condition.is_problem() => 0,
        ConditionStatus::Unknown => 1,
        _ => 2,
    };
    lines.sort_by(|a, b| (rank(a.condition), a.resource).cmp(&(rank(b.condition), b.resource)));
    let format = args.output.output;
    if output::is_empty_table(format, &lines) {
        let why = if args.probe || matches!(backend, AnyBackend::Local(_)) {
            "Nothing to probe: no MCP servers, environments, skills or agents are stored.\n"
        } else {
            "Nothing observed yet: the server probes within seconds of an apply (unless started with \
             --health-interval 0); `stigmer status --probe` probes from here.\n"
        };
        ctx.err(why)?;
        return Ok(());
    }
    let now = jiff::Timestamp::now();
    let table = |wide: bool| {
        let mut header = vec!["RESOURCE", "CONDITION", "STATUS", "REASON", "MESSAGE"];
        if wide {
            header.extend(["SINCE", "OBSERVED"]);
        }
        let rows = lines.iter().map(|line| {
            let c = line.condition;
            let mut row = vec![
                line.resource.to_owned(),
                c.kind.clone(),
                c.status.as_str().to_owned(),
                c.reason.clone(),
                c.message.clone(),
            ];
            if wide {
                row.push(format!("{} ago", age(now, c.last_transition_time)));
                row.push(format!("{} ago", age(now, c.observed_at)));
            }
            row
        });
        common::table(&header, rows)
    };
    ctx.out(&output::list(format, &lines, table, |line| format!("{} {}", line.resource, line.condition.kind))?)?;
    let failing = lines.iter().filter(|line| line.condition.is_problem()).count();
    if failing > 0 {
        ctx.err(&format!("{} not ready\n", common::counted(failing, "condition")))?;
        return Err(CommandError::reported(ErrorKind::Failed));
    }
    Ok(())
}

/// The conditions to show: probed now (always on the local store, which nothing else probes)
/// and recorded, or what the server recorded.
pub(super) async fn observe(
    backend: &AnyBackend,
    probe: bool,
    options: ProbeOptions,
) -> Result<Vec<Observed>, CommandError> {
    if probe || matches!(backend, AnyBackend::Local(_)) {
        let found = health::probe(backend, options).await?;
        backend.conditions_record(found).await?;
    }
    Ok(backend.conditions().await?)
}

/// Waits until every resource in `addresses` that has a health condition is ready: probed
/// here on the local store, as the server recorded it (after `applied`) otherwise.
///
/// # Errors
/// `timeout` passed with something not ready (each one named), or the backend failed.
pub(super) async fn wait_ready(
    ctx: &CommandContext,
    backend: &AnyBackend,
    addresses: &[String],
    timeout: Duration,
) -> Result<(), CommandError> {
    let applied = jiff::Timestamp::now();
    let wanted: Vec<(&str, &'static str)> = addresses
        .iter()
        .filter_map(|at| {
            let kind = crate::model::Kind::from_cli(at.split_once('/')?.0)?;
            Some((at.as_str(), crate::backend::condition::primary(kind)?))
        })
        .collect();
    let started = std::time::Instant::now();
    let local = matches!(backend, AnyBackend::Local(_));
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        let options = ProbeOptions { timeout: left.min(ProbeOptions::default().timeout).max(Duration::from_secs(1)) };
        let observed = observe(backend, false, options).await?;
        let not_ready: Vec<String> = wanted
            .iter()
            .filter_map(|(at, kind)| {
                let found = observed.iter().find(|o| o.address == *at).and_then(|o| o.condition(kind));
                match found {
                    Some(c) if c.status == ConditionStatus::True && (local || c.observed_at >= applied) => None,
                    Some(c) if local || c.observed_at >= applied => {
                        Some(format!("{at}: {kind}={} ({}: {})", c.status.as_str(), c.reason, c.message))
                    }
                    _ => Some(format!("{at}: {kind} not observed yet")),
                }
            })
            .collect();
        if not_ready.is_empty() {
            return ctx.err(&format!("{} ready\n", common::counted(wanted.len(), "resource")));
        }
        if started.elapsed() >= timeout {
            return Err(CommandError::new(
                ErrorKind::Failed,
                NotReady(format!("not ready after {timeout:?}:\n  {}", not_ready.join("\n  "))),
            )
            .hint("`stigmer status` shows every condition; `stigmer describe KIND NAME` one resource's"));
        }
        tokio::time::sleep(Duration::from_secs(if local { 2 } else { 1 }).min(left)).await;
    }
}

/// What `apply --wait` found not ready.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NotReady(String);

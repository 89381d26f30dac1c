//! `stigmer usage`: what agent executions spent (tokens, and cost under the price table in
//! `config.yaml`), summed by agent, model or day; and the usage line of `execution get|list`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::backend::AnyBackend;
use super::common;
use super::config::Config;
use super::help;
use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError};
use crate::backend::{Backend, ExecutionQuery, ExecutionRecord};
use crate::runner::agent::usage::{Prices, Spent, Tokens};

/// Show what agent executions spent: tokens, and their cost.
///
/// Tokens are those the model's provider reported for every answer (sub-agents' and retried
/// attempts' included). Cost needs a price table in config.yaml:
/// `model_prices: {gpt-4o: {input: 2.5, output: 10, cached: 1.25}}`, per million tokens.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &["stigmer usage", "stigmer usage --since 7d --by model", "stigmer usage --by day -o json"],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct UsageArgs {
    /// Only executions started within this long (`24h`, `7d`) or since this time (RFC 3339).
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    /// How to group.
    #[arg(long, value_enum, default_value_t = By::Agent)]
    pub by: By,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How `stigmer usage` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum By {
    /// The agent (or agent instance) run.
    Agent,
    /// The model as its provider named it.
    Model,
    /// The day the execution started (UTC).
    Day,
}

/// One group's sum.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    name: String,
    executions: u64,
    #[serde(flatten)]
    tokens: Tokens,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<f64>,
}

/// Runs `stigmer usage`.
pub async fn run(ctx: &CommandContext, args: &UsageArgs) -> Result<(), CommandError> {
    let backend = ctx.settings.backend()?;
    let prices = Config::load(&ctx.settings.home)?.model_prices;
    let since = args.since.as_deref().map(super::audit::since).transpose()?;
    let query = ExecutionQuery {
        since,
        target_prefixes: vec!["agent/".to_owned(), "agentinstance/".to_owned()],
        ..ExecutionQuery::default()
    };
    let records = backend.execution_list(&query).await?;
    let mut groups: BTreeMap<String, (u64, Spent)> = BTreeMap::new();
    for record in &records {
        let spent = spent(&backend, record).await?;
        match args.by {
            By::Model => {
                for (model, tokens) in &spent.0 {
                    let entry = groups.entry(model.clone()).or_default();
                    entry.0 += 1;
                    entry.1.merge(&Spent(BTreeMap::from([(model.clone(), *tokens)])));
                }
            }
            By::Agent | By::Day => {
                let key = match args.by {
                    By::Day => record.started_at.strftime("%Y-%m-%d").to_string(),
                    _ => record.target.clone(),
                };
                let entry = groups.entry(key).or_default();
                entry.0 += 1;
                entry.1.merge(&spent);
            }
        }
    }
    let rows: Vec<Row> = groups
        .into_iter()
        .map(|(name, (executions, spent))| Row {
            name,
            executions,
            tokens: spent.total(),
            cost: (!prices.is_empty()).then(|| prices.cost(&spent).amount),
        })
        .collect();
    let format = args.output.output;
    if output::is_empty_table(format, &rows) {
        return ctx.err("No agent executions found.\n");
    }
    let group = match args.by {
        By::Agent => "AGENT",
        By::Model => "MODEL",
        By::Day => "DAY",
    };
    let table = |_wide: bool| {
        let mut header = vec![group, "EXECUTIONS", "TURNS", "INPUT", "CACHED", "OUTPUT"];
        if !prices.is_empty() {
            header.push("COST");
        }
        let body = rows.iter().map(|row| {
            let t = &row.tokens;
            let mut cells = vec![
                row.name.clone(),
                row.executions.to_string(),
                t.turns.to_string(),
                t.input.to_string(),
                t.cached.to_string(),
                t.output.to_string(),
            ];
            if let Some(cost) = row.cost {
                cells.push(format!("{cost:.4}"));
            }
            cells
        });
        common::table(&header, body)
    };
    ctx.out(&output::list(format, &rows, table, |row| row.name.clone())?)
}

/// What execution `record` spent, read from its history.
pub(super) async fn spent(backend: &AnyBackend, record: &ExecutionRecord) -> Result<Spent, CommandError> {
    let events = backend.execution_events(&record.id, 0, None).await?;
    Ok(Spent::of_events(events.iter().map(|(_, event)| event)))
}

/// `12 turns, 3400 in (800 cached), 560 out tokens; cost 0.0123` (cost when priced).
pub(super) fn line(spent: &Spent, prices: &Prices) -> String {
    let t = spent.total();
    let mut text = format!("{} turns, {} in ({} cached), {} out tokens", t.turns, t.input, t.cached, t.output);
    if !prices.is_empty() {
        let cost = prices.cost(spent);
        let _ = write!(text, "; cost {:.4}", cost.amount);
        if !cost.unpriced.is_empty() {
            let _ = write!(text, " (no price for {})", cost.unpriced.join(", "));
        }
    }
    text
}

//! `stigmer schedule list|pause|resume|trigger`: the workflows that run on their own (their
//! `schedule`), when they fire next, and how their last run went. A server fires them.

use clap::{Args, Subcommand};

use super::common;
use super::help;
use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError};
use crate::backend::Backend;

/// Show and control the schedules of workflows.
///
/// A Workflow with a `schedule` (`every`, `cron`, `after`) runs on its own on a server, each
/// slot exactly once; `schedulePolicy` on its spec sets the cron's time zone, what happens to
/// slots missed while the server was down (`catchUp`) and to a slot that comes while the last
/// run still goes (`overlap`).
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer schedule list",
        "stigmer schedule pause nightly-report",
        "stigmer schedule trigger nightly-report",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct ScheduleArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ScheduleCommand,
}

/// `stigmer schedule …`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// List scheduled workflows: their schedule, next fire time and last run.
    #[command(after_help = help::after(
        &["stigmer schedule list", "stigmer schedule list -o json"],
        &[help::COLOR, help::HOME, help::BACKEND],
    ))]
    List {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Pause a workflow's schedule (it stays paused across restarts).
    #[command(after_help = help::after(&["stigmer schedule pause nightly-report"], &[help::COLOR, help::HOME, help::BACKEND]))]
    Pause {
        /// The workflow.
        workflow: String,
    },
    /// Resume a paused schedule; slots missed while paused are not run.
    #[command(after_help = help::after(&["stigmer schedule resume nightly-report"], &[help::COLOR, help::HOME, help::BACKEND]))]
    Resume {
        /// The workflow.
        workflow: String,
    },
    /// Run a scheduled workflow now, outside its schedule.
    #[command(after_help = help::after(&["stigmer schedule trigger nightly-report"], &[help::COLOR, help::HOME, help::BACKEND]))]
    Trigger {
        /// The workflow.
        workflow: String,
    },
}

/// Runs `stigmer schedule`.
pub async fn run(ctx: &CommandContext, args: &ScheduleArgs) -> Result<(), CommandError> {
    let backend = ctx.settings.backend()?;
    match &args.command {
        ScheduleCommand::List { output } => {
            let schedules = backend.schedule_list().await?;
            if output::is_empty_table(output.output, &schedules) {
                return ctx.err("No scheduled workflows found.\n");
            }
            let table = |wide: bool| {
                let mut header = vec!["WORKFLOW", "SCHEDULE", "NEXT", "LAST RUN", "LAST STATUS"];
                if wide {
                    header.push("PAUSED");
                }
                let rows = schedules.iter().map(|s| {
                    let next = match (s.paused, s.next) {
                        (true, _) => "paused".to_owned(),
                        (false, Some(at)) => common::time_in(at, wide),
                        (false, None) => "-".to_owned(),
                    };
                    let mut row = vec![
                        s.workflow.clone(),
                        s.spec.clone(),
                        next,
                        s.last_execution.clone().unwrap_or_else(|| "-".to_owned()),
                        s.last_status.map_or_else(|| "-".to_owned(), |status| status.as_str().to_owned()),
                    ];
                    if wide {
                        row.push(s.paused.to_string());
                    }
                    row
                });
                common::table(&header, rows)
            };
            ctx.out(&output::list(output.output, &schedules, table, |s| s.workflow.clone())?)
        }
        ScheduleCommand::Pause { workflow } => {
            backend.schedule_pause(workflow, true).await?;
            ctx.out(&format!("schedule of workflow/{workflow} paused\n"))
        }
        ScheduleCommand::Resume { workflow } => {
            backend.schedule_pause(workflow, false).await?;
            ctx.out(&format!("schedule of workflow/{workflow} resumed\n"))
        }
        ScheduleCommand::Trigger { workflow } => Box::pin(super::workflow::trigger(ctx, &backend, workflow)).await,
    }
}

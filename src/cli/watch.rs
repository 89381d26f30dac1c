//! `stigmer apply --watch`: one line per reconcile while people edit.

use std::fmt::Write as _;
use std::time::Duration;

use super::common;
use super::render::Style;
use super::{CommandContext, CommandError};
use crate::reconcile::watch::{self, DriftMode, WatchOptions, WatchReport};
use crate::reconcile::{Change, PlanOptions};

/// How long the files must be quiet after a change before reconciling.
const DEBOUNCE: Duration = Duration::from_millis(30);

/// How often `--drift` checks when `--interval` does not say.
const DEFAULT_DRIFT_INTERVAL: Duration = Duration::from_secs(30);

/// How many changed resources a line names before "and N more".
const NAMED_CHANGES: usize = 5;

/// Watches the files and reconciles until Ctrl-C or SIGTERM; exits 0 then.
pub async fn run(
    ctx: &CommandContext,
    files: &[String],
    plan: PlanOptions,
    interval: Option<Duration>,
    drift: Option<DriftMode>,
) -> Result<(), CommandError> {
    let inputs = common::inputs(files);
    // A drift mode checks on a period: every 30 s unless one is given.
    let interval = interval.or(drift.map(|_| DEFAULT_DRIFT_INTERVAL));
    let options = WatchOptions { plan, interval, drift, debounce: DEBOUNCE };
    let backend = ctx.settings.backend_for(common::load_project(files).project.as_ref())?;
    let mut first = true;
    let result = watch::run(
        &backend,
        inputs,
        &options,
        |report| {
            // Output is best effort: a closed terminal must not stop the reconciling.
            let _ = show(ctx, report, first);
            first = false;
        },
        common::shutdown(),
    )
    .await;
    result.map_err(|e| CommandError::user(e.to_string()).hint("watch directories or files: -f manifests/"))
}

fn show(ctx: &CommandContext, report: WatchReport, first: bool) -> Result<(), CommandError> {
    let style = Style::new(ctx.settings.color_stdout);
    match report {
        WatchReport::Applied { at, plan, took, files_read } => {
            let changed: Vec<String> = plan
                .changes
                .iter()
                .filter(|change| !matches!(change, Change::Unchanged { .. }))
                .map(|change| format!("{} {}", change.address(), change.verb()))
                .collect();
            let mut named = changed.iter().take(NAMED_CHANGES).cloned().collect::<Vec<_>>().join(", ");
            if changed.len() > NAMED_CHANGES {
                let _ = write!(named, " and {} more", changed.len() - NAMED_CHANGES);
            }
            ctx.out(&format!(
                "{} {named} — {} ({} ms, {} read)\n",
                style.dim(&clock(at)),
                common::plan_summary(plan.counts()),
                took.as_millis(),
                common::counted(files_read, "file")
            ))
        }
        WatchReport::Unchanged { files_read } if first => ctx.out(&format!(
            "{} up to date ({} read); watching for changes, Ctrl-C to stop\n",
            style.dim(&clock(jiff::Timestamp::now())),
            common::counted(files_read, "file")
        )),
        WatchReport::Unchanged { .. } => Ok(()),
        WatchReport::Drifted { at, mode, drifted } => {
            let done = match mode {
                DriftMode::Detect => "left as it is (--drift detect)",
                DriftMode::Warn => "marked Drifted (--drift warn)",
                DriftMode::Correct => "put back to the files' version (--drift correct)",
            };
            let mut text = String::new();
            for drift in &drifted {
                let _ = writeln!(
                    text,
                    "{} drift: {} {}; {done}",
                    style.dim(&clock(at)),
                    style.warning(&drift.address),
                    drift.story()
                );
            }
            ctx.out(&text)
        }
        WatchReport::Invalid { at, set, diagnostics } => {
            common::report(ctx, &set, &diagnostics)?;
            ctx.err(&format!(
                "{} not applied: the store keeps the last good state until the files are fixed\n",
                clock(at)
            ))
        }
        WatchReport::Failed { at, error } => {
            let rendered = CommandError::from(error).render(ctx.settings.color_stderr).unwrap_or_default();
            ctx.err(&format!("{} {rendered}", clock(at)))
        }
    }
}

/// `12:03:04`, local time when the zone is known.
fn clock(at: jiff::Timestamp) -> String {
    at.to_zoned(jiff::tz::TimeZone::system()).strftime("%H:%M:%S").to_string()
}

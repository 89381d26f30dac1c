//! The overview: how many resources of each kind, executions by state over the last 24 hours,
//! the ones that failed, the workers and when each was last heard from, and the schedules with
//! their next fire times.

use std::fmt::Write as _;

use axum::response::IntoResponse;
use jiff::Timestamp;

use super::executions::{self, COLUMNS, window_start};
use super::html::{self, esc, link, table, time, url_encode};
use super::session::Signed;
use super::{Authority, Page, Shared};
use crate::backend::{Backend, ExecutionQuery, ExecutionRecord, ExecutionStatus};

/// How many failed executions the overview lists.
const FAILURES_SHOWN: usize = 10;

/// `GET /`.
pub(crate) async fn page<A: Authority>(console: Shared<A>, signed: Signed<A>) -> Page {
    let backend = &signed.backend;
    let recent = ExecutionQuery { since: window_start("24h"), ..ExecutionQuery::default() };
    let failed = ExecutionQuery { status: Some(ExecutionStatus::Faulted), ..recent.clone() };
    let (catalog, counts, failed, workers, schedules) = tokio::join!(
        console.catalogs.current(signed.principal.org.as_deref(), backend),
        backend.execution_counts(&recent),
        backend.execution_list(&failed),
        backend.worker_list(),
        backend.schedule_list(),
    );
    let (catalog, counts, failed, workers, schedules) = (catalog?, counts?, failed?, workers?, schedules?);
    let mut body = String::from("<div class=\"cards\" id=\"counts\">");
    for (kind, count) in catalog.counts() {
        let _ = write!(
            body,
            "<a class=\"card\" href=\"/resources/{}\"><span class=\"count\">{count}</span><span>{}</span></a>",
            kind.cli_name(),
            esc(kind.as_str())
        );
    }
    body.push_str("</div><h2>Executions, last 24 hours</h2><div class=\"cards\" id=\"by-state\">");
    for state in [
        ExecutionStatus::Pending,
        ExecutionStatus::Running,
        ExecutionStatus::Waiting,
        ExecutionStatus::Completed,
        ExecutionStatus::Faulted,
        ExecutionStatus::Cancelled,
    ] {
        let count = counts.get(&state).copied().unwrap_or(0);
        let _ = write!(
            body,
            "<a class=\"card {0}\" href=\"/executions?status={0}&amp;since=24h\"><span class=\"count\">{count}</span><span>{0}</span></a>",
            state.as_str()
        );
    }
    body.push_str("</div><h2>Failed, last 24 hours</h2>");
    let failed: Vec<&ExecutionRecord> = failed.iter().rev().take(FAILURES_SHOWN).collect();
    body.push_str(&table("failures", &COLUMNS, executions::rows(&failed)));
    let now = Timestamp::now();
    let rows = workers.iter().map(|worker| {
        let ago = now.as_second() - worker.last_seen.as_second();
        vec![
            esc(&worker.id),
            esc(&worker.host),
            esc(&worker.queues.join(", ")),
            format!("{} / {}", worker.running, worker.concurrency),
            format!("{} <span class=\"muted\">({}s ago)</span>", time(worker.last_seen), ago.max(0)),
            esc(&worker.version),
        ]
    });
    body.push_str("<h2>Workers</h2>");
    body.push_str(&table("workers", &["Worker", "Host", "Queues", "Running", "Last heartbeat", "Version"], rows));
    let rows = schedules.iter().map(|schedule| {
        let last = match (&schedule.last_execution, schedule.last_status) {
            (Some(id), Some(state)) => format!("{} {}", link(&html::execution_href(id), id), html::status(state)),
            (Some(id), None) => link(&html::execution_href(id), id),
            _ => "—".to_owned(),
        };
        vec![
            link(&format!("/resources/workflow/{}", url_encode(&schedule.workflow)), &schedule.workflow),
            esc(&schedule.spec),
            if schedule.paused { "<span class=\"state paused\">paused</span>".to_owned() } else { "active".to_owned() },
            schedule.next.map_or_else(|| "—".to_owned(), time),
            last,
        ]
    });
    body.push_str("<h2>Schedules</h2>");
    body.push_str(&table("schedules", &["Workflow", "Schedule", "State", "Next", "Last execution"], rows));
    Ok(html::layout(&signed.frame, "Overview", &body).into_response())
}

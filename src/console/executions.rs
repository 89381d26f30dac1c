//! The execution pages: the list with its filters, one execution (its task tree or agent turns
//! as a timeline, input, output and error, its events a page at a time) following it live over
//! Server-Sent Events while it runs, and the editors' cancel and send-an-event forms.

use std::convert::Infallible;
use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect};
use futures_util::StreamExt as _;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use super::html::{self, esc, execution_href as href, link, status, table, time, took, url_encode};
use super::resources::masked;
use super::session::Signed;
use super::{Authority, Failure, Page};
use super::{approvals, timeline};
use crate::backend::execution::{self, ControlError};
use crate::backend::{Backend, ExecutionPage, ExecutionQuery, ExecutionRecord, ExecutionStatus};

/// How many events an execution's page and each page of its events show.
pub(crate) const EVENTS_PAGE: usize = 500;

/// The windows the lists filter by.
const SINCE: [(&str, &str, i64); 5] = [
    ("1h", "last hour", 1),
    ("24h", "last 24 hours", 24),
    ("7d", "last 7 days", 24 * 7),
    ("30d", "last 30 days", 24 * 30),
    ("", "any time", 0),
];

/// The start of the window `since` names (`24h`), if it names one.
pub(crate) fn window_start(since: &str) -> Option<Timestamp> {
    let hours = SINCE.iter().find(|(key, _, _)| *key == since && !key.is_empty())?.2;
    Timestamp::now().checked_sub(SignedDuration::from_hours(hours)).ok()
}

/// The window filter of a list, `selected` chosen.
pub(crate) fn since_select(selected: &str) -> String {
    let options: Vec<(&str, &str)> = SINCE.iter().map(|(key, label, _)| (*key, *label)).collect();
    html::select("since", &options, selected)
}

/// How long an execution ran (or has been running).
fn ran(record: &ExecutionRecord) -> String {
    let end = record.finished_at.unwrap_or_else(Timestamp::now);
    took(end.as_millisecond() - record.started_at.as_millisecond())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    status: String,
    /// `workflow` or `agent`.
    #[serde(default)]
    kind: String,
    /// A target (`workflow/triage`), or part of one.
    #[serde(default)]
    target: String,
    /// A window: `1h`, `24h`, `7d`, `30d`.
    #[serde(default)]
    since: String,
    #[serde(default)]
    page: Option<usize>,
}

/// The executions a row of a list shows, newest first.
pub(crate) fn rows(records: &[&ExecutionRecord]) -> Vec<Vec<String>> {
    records
        .iter()
        .map(|record| {
            vec![
                link(&href(&record.id), &record.id),
                target_link(&record.target),
                status(record.status),
                time(record.started_at),
                ran(record),
                esc(&record.actor),
            ]
        })
        .collect()
}

/// The header of a list of executions.
pub(crate) const COLUMNS: [&str; 6] = ["ID", "Target", "Status", "Started", "Took", "By"];

/// An execution's target, linked to the resource it ran when it is one.
fn target_link(target: &str) -> String {
    match target.split_once('/') {
        Some((kind, name)) if crate::model::Kind::from_cli(kind).is_some_and(crate::model::Kind::is_declarative) => {
            link(&format!("/resources/{kind}/{}", url_encode(name)), target)
        }
        _ => esc(target),
    }
}

/// `GET /executions`: the executions, newest first, filtered.
pub(crate) async fn list<A: Authority>(signed: Signed<A>, Query(query): Query<ListQuery>) -> Page {
    let exact_target = query.target.contains('/').then(|| query.target.clone());
    let kind_prefixes: &[&str] = match query.kind.as_str() {
        "workflow" => &["workflow/", "file:"],
        "agent" => &["agent/", "agentinstance/"],
        _ => &[],
    };
    let filter = ExecutionQuery {
        target_contains: (exact_target.is_none() && !query.target.is_empty()).then(|| query.target.clone()),
        target: exact_target,
        target_prefixes: kind_prefixes.iter().map(|prefix| (*prefix).to_owned()).collect(),
        status: query.status.parse::<ExecutionStatus>().ok(),
        since: window_start(&query.since),
        ..ExecutionQuery::default()
    };
    // The store counts them and reads only the page shown.
    let total: u64 = signed.backend.execution_counts(&filter).await?.values().sum();
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let (page, skip) = html::page_of(total, query.page.unwrap_or(1));
    let shown = ExecutionQuery { page: Some(ExecutionPage { skip, take: html::PAGE_SIZE }), ..filter };
    let records = signed.backend.execution_list(&shown).await?;
    let listed: Vec<&ExecutionRecord> = records.iter().collect();
    let links = html::page_links(
        total,
        page,
        listed.len(),
        "/executions",
        &[("status", &query.status), ("kind", &query.kind), ("target", &query.target), ("since", &query.since)],
    );
    let statuses = [
        ("", "any status"),
        ("pending", "pending"),
        ("running", "running"),
        ("waiting", "waiting"),
        ("completed", "completed"),
        ("faulted", "faulted"),
        ("cancelled", "cancelled"),
    ];
    let body = format!(
        "<form method=\"get\" action=\"/executions\" class=\"filters\">{}{}\
           <input type=\"search\" name=\"target\" placeholder=\"workflow or agent\" value=\"{}\">{}\
           <button type=\"submit\">Filter</button></form>{}{}",
        html::select("status", &statuses, &query.status),
        html::select(
            "kind",
            &[("", "workflows and agents"), ("workflow", "workflows"), ("agent", "agents")],
            &query.kind
        ),
        esc(&query.target),
        since_select(&query.since),
        table("executions", &COLUMNS, rows(&listed)),
        links
    );
    Ok(html::layout(&signed.frame, "Executions", &body).into_response())
}

/// The execution `id`, or its 404 page.
async fn record<B: Backend>(backend: &B, id: &str) -> Result<ExecutionRecord, Failure> {
    backend
        .execution_get(id)
        .await?
        .ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, format!("execution {id} does not exist")))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DetailQuery {
    /// `live`: only the part that follows the run, for the page's script to swap in.
    #[serde(default)]
    fragment: Option<String>,
}

/// `GET /executions/{id}`: the execution, following it while it runs.
pub(crate) async fn detail<A: Authority>(
    signed: Signed<A>,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> Page {
    let record = record(&signed.backend, &id).await?;
    let events = signed.backend.execution_events(&id, 0, Some(EVENTS_PAGE + 1)).await?;
    let more = events.len() > EVENTS_PAGE;
    let events = &events[..events.len().min(EVENTS_PAGE)];
    let pending = approvals::pending(&signed.backend, &record).await?;
    let waiting = approvals::section(&id, &pending, &signed.frame, signed.principal.role.writes());
    let live = live_section(&record, events, more, &waiting);
    if query.fragment.as_deref() == Some("live") {
        return Ok(Html(live).into_response());
    }
    let last = events.last().map_or(0, |(sequence, _)| *sequence);
    // A run with more events than a page follows its status only; its events are paged.
    let follow = if record.status.is_final() {
        String::new()
    } else {
        format!(
            " data-live=\"{}/live?after={last}&amp;seen={}{}\" data-fragment=\"{}?fragment=live\"",
            esc(&href(&id)),
            record.status.as_str(),
            if more { "&amp;status=1" } else { "" },
            esc(&href(&id))
        )
    };
    // The forms stay outside what updates, so what is typed in them is kept; they go when the
    // run ends.
    let controls = if signed.principal.role.writes() && !record.status.is_final() {
        controls(&record, &signed.frame)
    } else {
        String::new()
    };
    let following = if follow.is_empty() {
        ""
    } else {
        "<p id=\"following\" class=\"following\" hidden>following the run live</p>"
    };
    let body = format!("{following}{controls}<div id=\"live\"{follow}>{live}</div>");
    Ok(html::layout(&signed.frame, &format!("Execution {id}"), &body).into_response())
}

/// What changes while an execution runs: its facts, the calls it waits on a person for (a
/// parked run changes nothing while it waits, so what is typed in their forms is kept), its
/// timeline and events.
fn live_section(record: &ExecutionRecord, events: &[(u64, Value)], more: bool, waiting: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<dl class=\"facts\"><dt>Target</dt><dd>{}</dd><dt>Status</dt><dd id=\"status\">{}</dd>\
         <dt>Started</dt><dd>{}</dd><dt>Finished</dt><dd>{}</dd><dt>Took</dt><dd>{}</dd><dt>By</dt><dd>{}</dd>\
         <dt>Queue</dt><dd>{}</dd><dt>Attempts</dt><dd>{}</dd><dt>Worker</dt><dd>{}</dd></dl>",
        target_link(&record.target),
        status(record.status),
        time(record.started_at),
        record.finished_at.map_or_else(|| "—".to_owned(), time),
        ran(record),
        esc(&record.actor),
        esc(&record.queue),
        record.attempts,
        esc(record.lease.as_ref().map_or("—", |lease| lease.worker.as_str())),
    );
    out.push_str(waiting);
    if let Some(error) = &record.error {
        out.push_str("<h2>Error</h2>");
        out.push_str(&error_box(error));
    }
    out.push_str(&timeline::render(record, events));
    if let Some(output) = &record.output {
        let _ = write!(out, "<h2>Output</h2><pre id=\"output\">{}</pre>", html::json(&masked(output)));
    }
    let _ = write!(out, "<h2>Input</h2><pre id=\"input\">{}</pre>", html::json(&masked(&record.input)));
    let _ = write!(out, "<h2>Events</h2>{}", events_table(events));
    if more {
        let after = events.last().map_or(0, |(sequence, _)| *sequence);
        let _ = write!(
            out,
            "<p class=\"pages\">The first {} events. {}</p>",
            events.len(),
            link(&format!("{}/events?after={after}", href(&record.id)), "More events →")
        );
    }
    out
}

/// An error, with its type first.
fn error_box(error: &Value) -> String {
    let text = |key: &str| error.get(key).map(|value| value.as_str().map_or_else(|| value.to_string(), str::to_owned));
    let mut out = String::from("<dl class=\"facts error-box\" id=\"error\">");
    for (key, label) in [
        ("type", "Type"),
        ("title", "Title"),
        ("status", "Status"),
        ("detail", "Detail"),
        ("instance", "Task"),
        ("hint", "Hint"),
    ] {
        if let Some(value) = text(key) {
            let _ = write!(out, "<dt>{label}</dt><dd>{}</dd>", esc(&value));
        }
    }
    out.push_str("</dl>");
    out
}

/// The editors' forms: cancel, and send an event to a waiting (or running) execution.
fn controls(record: &ExecutionRecord, frame: &html::Frame) -> String {
    let action = href(&record.id);
    format!(
        "<div class=\"controls\" data-while-live>\
           <form method=\"post\" action=\"{action}/cancel\" data-confirm=\"Cancel this execution?\">{csrf}\
             <button type=\"submit\" class=\"danger\" id=\"cancel\">Cancel execution</button></form>\
           <details{open}><summary>Send an event</summary>\
           <form method=\"post\" action=\"{action}/signal\" class=\"signal\" id=\"signal\">{csrf}\
             <label>type <input type=\"text\" name=\"type\" required placeholder=\"com.example.approved\"></label>\
             <label>source <input type=\"text\" name=\"source\" value=\"stigmer-console\"></label>\
             <label>data (JSON) <textarea name=\"data\" rows=\"1\" placeholder=\"{{}}\"></textarea></label>\
             <button type=\"submit\" id=\"send-event\">Send</button></form></details></div>",
        action = esc(&action),
        csrf = frame.csrf_field(),
        open = if record.status == ExecutionStatus::Waiting { " open" } else { "" },
    )
}

/// Events as rows: number, time, what, whose, and the event itself folded.
fn events_table(events: &[(u64, Value)]) -> String {
    let rows = events.iter().map(|(sequence, event)| {
        let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or("");
        let subject =
            [text("reference"), text("agent"), text("worker")].into_iter().find(|s| !s.is_empty()).unwrap_or("");
        vec![
            sequence.to_string(),
            text("at").parse::<Timestamp>().map_or_else(|_| String::new(), time),
            format!("<span class=\"event {0}\">{0}</span>", esc(text("event"))),
            format!("<code>{}</code>", esc(subject)),
            format!("<details><summary>JSON</summary><pre>{}</pre></details>", html::json(&masked(event))),
        ]
    });
    table("events", &["#", "When", "Event", "Task / agent", ""], rows)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EventsQuery {
    #[serde(default)]
    after: u64,
}

/// `GET /executions/{id}/events?after=N`: a page of events after number `N`.
pub(crate) async fn events<A: Authority>(
    signed: Signed<A>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Page {
    record(&signed.backend, &id).await?;
    let events = signed.backend.execution_events(&id, query.after, Some(EVENTS_PAGE + 1)).await?;
    let more = events.len() > EVENTS_PAGE;
    let events = &events[..events.len().min(EVENTS_PAGE)];
    let mut body = format!("<p>{}</p>{}", link(&href(&id), "← the execution"), events_table(events));
    let _ = write!(body, "<p class=\"pages\">Events after {}", query.after);
    if query.after > 0 {
        let back = query.after.saturating_sub(EVENTS_PAGE as u64);
        let _ = write!(body, " · {}", link(&format!("{}/events?after={back}", href(&id)), "← previous"));
    }
    if more && let Some((last, _)) = events.last() {
        let _ = write!(body, " · {}", link(&format!("{}/events?after={last}", href(&id)), "next →"));
    }
    body.push_str("</p>");
    Ok(html::layout(&signed.frame, &format!("Events of execution {id}"), &body).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LiveQuery {
    #[serde(default)]
    after: u64,
    /// Set: the status only, not a word per event (a run whose events are paged).
    #[serde(default)]
    status: Option<u8>,
    /// The status the page shows: no word until it moves.
    #[serde(default)]
    seen: Option<String>,
}

/// `GET /executions/{id}/live`: Server-Sent Events while the execution runs — an `update` with
/// its status and last event number whenever either moves, then `end`.
pub(crate) async fn live<A: Authority>(
    signed: Signed<A>,
    Path(id): Path<String>,
    Query(query): Query<LiveQuery>,
) -> Page {
    let feed = signed.backend.execution_follow(&id, query.after).await?;
    let status_only = query.status.is_some();
    let mut last_status = query.seen.as_deref().and_then(|seen| seen.parse::<ExecutionStatus>().ok());
    let updates = feed.filter_map(move |update| {
        let event = match update {
            Ok(update) => {
                let moved = last_status != Some(update.record.status) || (!status_only && !update.events.is_empty());
                last_status = Some(update.record.status);
                let last = update.events.last().map(|(sequence, _)| *sequence);
                let name = if update.record.status.is_final() { "end" } else { "update" };
                moved.then(|| {
                    Event::default()
                        .event(name)
                        .data(json!({"status": update.record.status.as_str(), "last": last}).to_string())
                })
            }
            Err(error) => Some(Event::default().event("failure").data(error.to_string())),
        };
        std::future::ready(event.map(Ok::<_, Infallible>))
    });
    Ok(Sse::new(updates).keep_alive(KeepAlive::default()).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct CancelForm {
    #[serde(default)]
    csrf: String,
}

impl From<ControlError> for Failure {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::Over { .. } => Self::new(StatusCode::CONFLICT, error.to_string()),
            ControlError::Backend(error) => error.into(),
        }
    }
}

/// `POST /executions/{id}/cancel`.
pub(crate) async fn cancel<A: Authority>(
    signed: Signed<A>,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Page {
    signed.must_write()?;
    signed.check_csrf(&form.csrf)?;
    execution::cancel(&signed.backend, &id).await?;
    Ok(Redirect::to(&href(&id)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignalForm {
    #[serde(default)]
    csrf: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    data: String,
}

/// `POST /executions/{id}/signal`: a CloudEvent made of the form, handed to the execution.
pub(crate) async fn signal<A: Authority>(
    signed: Signed<A>,
    Path(id): Path<String>,
    Form(form): Form<SignalForm>,
) -> Page {
    signed.must_write()?;
    signed.check_csrf(&form.csrf)?;
    if form.kind.trim().is_empty() {
        return Err(Failure::new(StatusCode::BAD_REQUEST, "an event needs a type"));
    }
    let mut event = json!({
        "specversion": "1.0",
        "id": uuid::Uuid::new_v4().to_string(),
        "source": if form.source.trim().is_empty() { "stigmer-console" } else { form.source.trim() },
        "type": form.kind.trim(),
        "time": Timestamp::now().to_string(),
    });
    if !form.data.trim().is_empty() {
        match serde_json::from_str::<Value>(&form.data) {
            Ok(data) => event["data"] = data,
            Err(error) => {
                return Err(Failure::new(StatusCode::BAD_REQUEST, format!("the event's data is not JSON: {error}")));
            }
        }
    }
    execution::signal(&signed.backend, &id, &event).await?;
    Ok(Redirect::to(&href(&id)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_link_to_resources_only() {
        assert_eq!(target_link("workflow/triage"), "<a href=\"/resources/workflow/triage\">workflow/triage</a>");
        assert_eq!(target_link("file:<flow>.yaml"), "file:&lt;flow&gt;.yaml");
        assert!(window_start("24h").is_some() && window_start("").is_none() && window_start("2y").is_none());
    }
}

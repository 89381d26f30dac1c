//! An execution's history read as a timeline: a workflow's tasks as a tree (each nested under
//! the task whose reference contains it) with when each started, how long it took and how it
//! ended; an agent's turns (messages, tool calls and their results) in order. Bars are drawn by
//! the page's script from `data-` attributes: the policy allows no inline style.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde_json::Value;

use super::html::{self, esc, took};
use super::resources::masked;
use crate::backend::ExecutionRecord;

/// One run of one task.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    reference: String,
    name: String,
    started: Option<Timestamp>,
    ended: Option<Timestamp>,
    /// `running`, `completed`, `failed`, `skipped`, `cancelled`.
    state: String,
    error: Option<Value>,
    depth: usize,
}

/// The tasks of a workflow's events, in the order they started.
fn steps(events: &[(u64, Value)]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for (_, event) in events {
        let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or("");
        let reference = text("reference");
        if reference.is_empty() {
            continue; // a claim, a signal: no task's
        }
        let at = text("at").parse::<Timestamp>().ok();
        let open = steps.iter().rposition(|step| step.reference == reference && step.ended.is_none());
        match (text("event"), open) {
            ("started", _) => steps.push(Step {
                reference: reference.to_owned(),
                name: text("name").to_owned(),
                started: at,
                ended: None,
                state: "running".to_owned(),
                error: None,
                depth: 0,
            }),
            (ended @ ("completed" | "failed" | "cancelled"), Some(index)) => {
                let step = &mut steps[index];
                step.ended = at;
                ended.clone_into(&mut step.state);
                step.error = event.get("error").cloned();
            }
            ("skipped", _) => steps.push(Step {
                reference: reference.to_owned(),
                name: text("name").to_owned(),
                started: at,
                ended: at,
                state: "skipped".to_owned(),
                error: None,
                depth: 0,
            }),
            _ => {}
        }
    }
    // A task's depth: how many other tasks' references contain its own.
    let references: std::collections::BTreeSet<String> = steps.iter().map(|step| step.reference.clone()).collect();
    for step in &mut steps {
        step.depth = references
            .iter()
            .filter(|other| {
                step.reference.len() > other.len()
                    && step.reference.starts_with(other.as_str())
                    && step.reference.as_bytes().get(other.len()) == Some(&b'/')
            })
            .count();
    }
    steps
}

/// The timeline section of an execution's page.
pub(crate) fn render(record: &ExecutionRecord, events: &[(u64, Value)]) -> String {
    let is_agent = record.target.starts_with("agent/") || record.target.starts_with("agentinstance/");
    if is_agent { turns(events) } else { tasks(record, events) }
}

fn tasks(record: &ExecutionRecord, events: &[(u64, Value)]) -> String {
    let steps = steps(events);
    let start = record.started_at.as_millisecond();
    let end = record.finished_at.unwrap_or_else(Timestamp::now).as_millisecond();
    let span = (end - start).max(1);
    let mut out = String::from(
        "<h2>Tasks</h2><table id=\"tasks\" class=\"timeline\"><thead><tr><th>Task</th><th>State</th><th>Started</th><th>Took</th><th class=\"bar-cell\">Timeline</th></tr></thead><tbody>",
    );
    if steps.is_empty() {
        out.push_str("<tr><td colspan=\"5\" class=\"muted\">No task has started yet.</td></tr>");
    }
    for step in &steps {
        let began = step.started.map_or(start, Timestamp::as_millisecond);
        let finished = step.ended.map_or(end, Timestamp::as_millisecond);
        // Both as thousandths of the run, for the script to draw.
        let offset = ((began - start).clamp(0, span) * 1000) / span;
        let width = (((finished - began).max(0) * 1000) / span).max(4);
        let error = step.error.as_ref().map_or_else(String::new, |error| {
            let kind = error.get("type").and_then(Value::as_str).unwrap_or("error");
            let title = error.get("title").and_then(Value::as_str).unwrap_or("");
            format!("<div class=\"error\">{} — {}</div>", esc(kind), esc(title))
        });
        let _ = write!(
            out,
            "<tr class=\"step {state}\" data-reference=\"{reference}\"><td><span class=\"indent\" data-depth=\"{depth}\"></span>\
             <span title=\"{reference}\">{name}</span>{error}</td><td><span class=\"state {state}\">{state}</span></td>\
             <td>{started}</td><td>{took}</td><td class=\"bar-cell\"><span class=\"bar {state}\" data-offset=\"{offset}\" data-width=\"{width}\"></span></td></tr>",
            state = esc(&step.state),
            reference = esc(&step.reference),
            depth = step.depth.min(12),
            name = esc(if step.name.is_empty() { &step.reference } else { &step.name }),
            started = step.started.map_or_else(String::new, html::time),
            took = if step.ended.is_some() || step.state == "running" { took(finished - began) } else { String::new() },
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn turns(events: &[(u64, Value)]) -> String {
    let mut out = String::from("<h2>Turns</h2><ol id=\"turns\" class=\"turns\">");
    let mut any = false;
    for (_, event) in events {
        let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or("");
        let agent = esc(text("agent"));
        let item = match text("event") {
            "userMessage" => {
                format!("<li class=\"turn user\"><b>{agent}</b> was asked<pre>{}</pre></li>", esc(text("text")))
            }
            "assistantMessage" => {
                let mut calls = String::new();
                for call in event.get("toolCalls").and_then(Value::as_array).into_iter().flatten() {
                    let _ = write!(
                        calls,
                        "<li>calls <code>{}</code><pre>{}</pre></li>",
                        esc(call.get("name").and_then(Value::as_str).unwrap_or("")),
                        html::json(&masked(call.get("arguments").unwrap_or(&Value::Null)))
                    );
                }
                format!(
                    "<li class=\"turn assistant\"><b>{agent}</b> step {} <span class=\"muted\">{} · {} in / {} out tokens</span>\
                     <pre>{}</pre><ul>{calls}</ul></li>",
                    event.get("step").and_then(Value::as_u64).unwrap_or(0),
                    esc(text("model")),
                    event.get("inputTokens").and_then(Value::as_u64).unwrap_or(0),
                    event.get("outputTokens").and_then(Value::as_u64).unwrap_or(0),
                    esc(text("text")),
                )
            }
            "toolResult" => format!(
                "<li class=\"turn tool{}\"><b>{agent}</b> ← <code>{}</code> <span class=\"muted\">{}</span><pre>{}</pre></li>",
                if event.get("isError") == Some(&Value::Bool(true)) { " failed" } else { "" },
                esc(text("tool")),
                took(event.get("durationMs").and_then(Value::as_i64).unwrap_or(0)),
                esc(text("content")),
            ),
            "answer" => {
                format!("<li class=\"turn answer\"><b>{agent}</b> answered<pre>{}</pre></li>", esc(text("text")))
            }
            _ => continue,
        };
        any = true;
        out.push_str(&item);
    }
    if !any {
        out.push_str("<li class=\"muted\">No turn yet.</li>");
    }
    out.push_str("</ol>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tasks_nest_by_reference_and_retries_are_runs_of_their_own() {
        let events: Vec<(u64, Value)> = [
            json!({"event": "claimed", "worker": "w1"}),
            json!({"event": "started", "name": "fetch", "reference": "/do/0/fetch", "at": "2026-01-01T00:00:00Z"}),
            json!({"event": "started", "name": "get", "reference": "/do/0/fetch/try/0/get", "at": "2026-01-01T00:00:01Z"}),
            json!({"event": "failed", "reference": "/do/0/fetch/try/0/get", "at": "2026-01-01T00:00:02Z",
                   "error": {"type": "https://serverlessworkflow.io/spec/1.0.0/errors/communication", "title": "<down>"}}),
            json!({"event": "started", "name": "get", "reference": "/do/0/fetch/try/0/get", "at": "2026-01-01T00:00:03Z"}),
            json!({"event": "completed", "reference": "/do/0/fetch/try/0/get", "at": "2026-01-01T00:00:04Z"}),
            json!({"event": "completed", "reference": "/do/0/fetch", "at": "2026-01-01T00:00:05Z"}),
            json!({"event": "skipped", "name": "notify", "reference": "/do/1/notify", "at": "2026-01-01T00:00:05Z"}),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, e)| (i as u64 + 1, e))
        .collect();
        let steps = steps(&events);
        let summary: Vec<(&str, &str, usize)> =
            steps.iter().map(|s| (s.name.as_str(), s.state.as_str(), s.depth)).collect();
        assert_eq!(
            summary,
            [("fetch", "completed", 0), ("get", "failed", 1), ("get", "completed", 1), ("notify", "skipped", 0)]
        );
        let mut record = ExecutionRecord::new(
            "x".into(),
            "workflow/w".into(),
            "me".into(),
            json!({}),
            crate::backend::ExecutionStatus::Completed,
        );
        record.started_at = "2026-01-01T00:00:00Z".parse().unwrap();
        record.finished_at = Some("2026-01-01T00:00:10Z".parse().unwrap());
        let shown = render(&record, &events);
        assert!(shown.contains("&lt;down&gt;") && !shown.contains("<down>"), "{shown}");
        assert!(shown.contains("data-offset=\"500\""), "notify starts half way: {shown}");
    }

    #[test]
    fn agent_turns_show_calls_and_results_escaped() {
        let events = vec![
            (1, json!({"event": "userMessage", "agent": "bot", "text": "<hi>"})),
            (
                2,
                json!({"event": "assistantMessage", "agent": "bot", "step": 1, "text": "", "model": "m",
                       "toolCalls": [{"id": "c1", "name": "search", "arguments": {"q": "x"}}], "inputTokens": 10, "outputTokens": 2}),
            ),
            (
                3,
                json!({"event": "toolResult", "agent": "bot", "callId": "c1", "tool": "search", "content": "found", "isError": false, "durationMs": 1200}),
            ),
            (4, json!({"event": "answer", "agent": "bot", "text": "done"})),
        ];
        let record = ExecutionRecord::new(
            "x".into(),
            "agent/bot".into(),
            "me".into(),
            json!({}),
            crate::backend::ExecutionStatus::Completed,
        );
        let shown = render(&record, &events);
        assert!(
            shown.contains("&lt;hi&gt;") && shown.contains("<code>search</code>") && shown.contains("1.2s"),
            "{shown}"
        );
        assert_eq!(shown.matches("<li class=\"turn").count(), 4);
    }
}

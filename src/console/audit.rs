//! The audit log, for admins: who changed what, when and from where, filterable.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::executions::{since_select, window_start};
use super::html::{self, esc, link, paginate, table, time};
use super::session::Signed;
use super::{Authority, Failure, Page};
use crate::backend::{AuditEntry, Backend, Role};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    /// Part of the actor's name.
    #[serde(default)]
    actor: String,
    /// Part of the target (`agent/support-bot`).
    #[serde(default)]
    target: String,
    /// `created`, `updated`, `deleted`.
    #[serde(default)]
    action: String,
    /// A window: `1h`, `24h`, `7d`, `30d`.
    #[serde(default)]
    since: String,
    #[serde(default)]
    page: Option<usize>,
}

/// `GET /audit`.
pub(crate) async fn page<A: Authority>(signed: Signed<A>, Query(query): Query<AuditQuery>) -> Page {
    if signed.principal.role != Role::Admin {
        return Err(Failure::new(StatusCode::FORBIDDEN, "the audit log is for admins"));
    }
    let entries = signed.backend.audit(window_start(&query.since)).await?;
    let (actor, target) = (query.actor.to_lowercase(), query.target.to_lowercase());
    let matching: Vec<&AuditEntry> = entries
        .iter()
        .rev()
        .filter(|e| actor.is_empty() || e.actor.to_lowercase().contains(&actor))
        .filter(|e| target.is_empty() || e.target.to_lowercase().contains(&target))
        .filter(|e| query.action.is_empty() || e.action.as_str() == query.action)
        .collect();
    let paged = paginate(
        &matching,
        query.page.unwrap_or(1),
        "/audit",
        &[("actor", &query.actor), ("target", &query.target), ("action", &query.action), ("since", &query.since)],
    );
    let rows = paged.items.iter().map(|entry| {
        let target = match entry.target.split_once('/') {
            Some((kind, name))
                if crate::model::Kind::from_cli(kind).is_some_and(crate::model::Kind::is_declarative) =>
            {
                link(&format!("/resources/{kind}/{}", html::url_encode(name)), &entry.target)
            }
            _ => esc(&entry.target),
        };
        vec![
            time(entry.at),
            esc(&entry.actor),
            esc(entry.action.as_str()),
            target,
            esc(entry.apply_set.as_deref().unwrap_or("—")),
            esc(entry.address.as_deref().unwrap_or("—")),
        ]
    });
    let body = format!(
        "<form method=\"get\" action=\"/audit\" class=\"filters\">\
           <input type=\"search\" name=\"actor\" placeholder=\"who\" value=\"{}\">\
           <input type=\"search\" name=\"target\" placeholder=\"what (agent/…)\" value=\"{}\">\
           {}{}\
           <button type=\"submit\">Filter</button></form>{}{}",
        esc(&query.actor),
        esc(&query.target),
        html::select(
            "action",
            &[("", "any change"), ("created", "created"), ("updated", "updated"), ("deleted", "deleted")],
            &query.action
        ),
        since_select(&query.since),
        table("audit", &["When", "Who", "Action", "Target", "Apply set", "From"], rows),
        paged.links
    );
    Ok(html::layout(&signed.frame, "Audit log", &body).into_response())
}

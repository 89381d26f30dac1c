//! The tool calls an execution waits on a person for, on its page: each call's tool, agent,
//! arguments (masked when recorded) and message, and for editors the approve and reject forms.
//! Deciding goes through `backend::approval::decide`, as `stigmer execution approve` does.

use std::fmt::Write as _;

use axum::extract::{Form, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Redirect};
use serde::Deserialize;

use super::html::{self, esc, execution_href as href, time};
use super::resources::masked;
use super::session::Signed;
use super::{Authority, Failure, Page};
use crate::backend::approval::{self, Approval, ApprovalError, Verdict};
use crate::backend::{Backend, BackendError, ExecutionRecord};

/// The calls execution `record` waits on, undecided; none unless it is parked.
pub(crate) async fn pending<B: Backend>(backend: &B, record: &ExecutionRecord) -> Result<Vec<Approval>, BackendError> {
    if !approval::is_parked(record) {
        return Ok(Vec::new());
    }
    let events = backend.execution_events(&record.id, 0, None).await?;
    Ok(approval::approvals(&record.id, &events).into_iter().filter(|a| a.decision.is_none()).collect())
}

/// The waiting calls, each with the forms that decide it when the viewer may write.
pub(crate) fn section(id: &str, pending: &[Approval], frame: &html::Frame, writes: bool) -> String {
    if pending.is_empty() {
        return String::new();
    }
    let action = esc(&format!("{}/approvals", href(id)));
    let mut out = String::from("<h2>Waiting for approval</h2><div class=\"approvals\" id=\"approvals\">");
    for waiting in pending {
        let request = &waiting.request;
        let call = esc(&request.call_id);
        let _ = write!(
            out,
            "<div class=\"approval\" data-call=\"{call}\"><dl class=\"facts\"><dt>Tool</dt><dd class=\"tool\">{}</dd>\
             <dt>Agent</dt><dd>{}</dd><dt>Call</dt><dd>{call}</dd><dt>Asked</dt><dd>{}</dd>",
            esc(&request.tool),
            esc(&request.agent),
            waiting.asked_at.map_or_else(|| "—".to_owned(), time),
        );
        if let Some(message) = &request.message {
            let _ = write!(out, "<dt>Why</dt><dd class=\"message\">{}</dd>", esc(message));
        }
        if let Some(deadline) = request.deadline {
            let _ = write!(out, "<dt>Rejected at</dt><dd>{}</dd>", time(deadline));
        }
        let _ = write!(out, "</dl><pre class=\"arguments\">{}</pre>", html::json(&masked(&request.arguments)));
        if writes {
            let csrf = frame.csrf_field();
            let _ = write!(
                out,
                "<form method=\"post\" action=\"{action}\" class=\"decide\">{csrf}\
                   <input type=\"hidden\" name=\"call\" value=\"{call}\">\
                   <input type=\"hidden\" name=\"verdict\" value=\"approve\">\
                   <button type=\"submit\" id=\"approve-{call}\">Approve</button></form>\
                 <form method=\"post\" action=\"{action}\" class=\"decide\">{csrf}\
                   <input type=\"hidden\" name=\"call\" value=\"{call}\">\
                   <input type=\"hidden\" name=\"verdict\" value=\"reject\">\
                   <label>reason <input type=\"text\" name=\"reason\" placeholder=\"the agent reads it\"></label>\
                   <button type=\"submit\" class=\"danger\" id=\"reject-{call}\">Reject</button></form>"
            );
        }
        out.push_str("</div>");
    }
    out.push_str("</div>");
    out
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    csrf: String,
    call: String,
    /// `approve` or `reject`.
    verdict: String,
    #[serde(default)]
    reason: String,
}

/// `POST /executions/{id}/approvals`: one call approved or rejected.
pub(crate) async fn decide<A: Authority>(
    signed: Signed<A>,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Page {
    signed.must_write()?;
    signed.check_csrf(&form.csrf)?;
    let approve = match form.verdict.as_str() {
        "approve" => true,
        "reject" => false,
        other => return Err(Failure::new(StatusCode::BAD_REQUEST, format!("no such verdict: {other}"))),
    };
    let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty() && !approve);
    approval::decide(&signed.backend, &id, Some(&form.call), &Verdict { approve, reason }).await.map_err(|error| {
        match error {
            ApprovalError::Backend(error) => Failure::from(error),
            other => Failure::new(StatusCode::CONFLICT, other.to_string()),
        }
    })?;
    Ok(Redirect::to(&href(&id)).into_response())
}

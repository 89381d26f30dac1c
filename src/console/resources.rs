//! The resource pages: the kinds, a kind's list with its filters, one resource (manifest,
//! status, references both ways), its history with the diff between any two revisions, and a
//! rollback that shows its diff before it is made.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use serde_json::Value;

use super::html::{self, esc, link, paginate, table, time, url_encode};
use super::session::Signed;
use super::{Authority, Failure, Page, Shared};
use crate::backend::{Backend, Revision, RevisionAction, StoredResource};
use crate::model::{Kind, canonical};
use crate::reconcile::diff::{Line, between};
use crate::reconcile::{self, Change, ReconcileError};

/// What a secret value is shown as.
const MASK: &str = "(secret)";

/// The manifest as a page may show it: every value an entry marks `isSecret` replaced by
/// [`MASK`]. The store keeps secrets as references already; this covers a secret default a
/// manifest declares (`defaultValue` of an `isSecret` variable).
pub(crate) fn masked(manifest: &Value) -> Value {
    match manifest {
        Value::Object(map) => {
            let secret = ["isSecret", "is_secret"].iter().any(|key| map.get(*key) == Some(&Value::Bool(true)));
            let shown = map
                .iter()
                .map(|(key, value)| {
                    let hide = secret
                        && matches!(key.as_str(), "value" | "defaultValue" | "default_value" | "default")
                        && !value.is_null();
                    (key.clone(), if hide { Value::String(MASK.to_owned()) } else { masked(value) })
                })
                .collect();
            Value::Object(shown)
        }
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

/// The kind in a URL (`agent`, `agents`, `mcpserver`), or a 404 page.
fn kind_of(segment: &str) -> Result<Kind, Failure> {
    Kind::from_cli(segment)
        .filter(|kind| kind.is_declarative())
        .ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, format!("no kind of resource is called \"{segment}\"")))
}

/// A resource's page.
pub(crate) fn href(kind: Kind, name: &str) -> String {
    format!("/resources/{}/{}", kind.cli_name(), url_encode(name))
}

/// `GET /resources`: every kind with how many there are.
pub(crate) async fn kinds<A: Authority>(console: Shared<A>, signed: Signed<A>) -> Page {
    let catalog = console.catalogs.current(signed.principal.org.as_deref(), &signed.backend).await?;
    let rows = catalog
        .counts()
        .into_iter()
        .map(|(kind, count)| vec![link(&format!("/resources/{}", kind.cli_name()), kind.as_str()), count.to_string()]);
    Ok(html::layout(&signed.frame, "Resources", &table("kinds", &["Kind", "Resources"], rows)).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    /// Part of the name.
    #[serde(default)]
    q: String,
    /// `key=value` labels, comma-separated, all of which must match.
    #[serde(default)]
    label: String,
    #[serde(default)]
    page: Option<usize>,
}

/// `GET /resources/{kind}`: its resources, filtered by name and labels.
pub(crate) async fn list<A: Authority>(
    console: Shared<A>,
    signed: Signed<A>,
    Path(kind): Path<String>,
    Query(query): Query<ListQuery>,
) -> Page {
    let kind = kind_of(&kind)?;
    // As kubectl's selectors: `team=cs` matches that value, a bare `team` any value of it.
    let labels: Vec<(&str, Option<&str>)> = query
        .label
        .split(',')
        .map(str::trim)
        .filter(|term| !term.is_empty())
        .map(|term| match term.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim())),
            None => (term, None),
        })
        .collect();
    let catalog = console.catalogs.current(signed.principal.org.as_deref(), &signed.backend).await?;
    let needle = query.q.to_lowercase();
    let matching: Vec<_> = catalog
        .of_kind(kind)
        .filter(|entry| needle.is_empty() || entry.name.to_lowercase().contains(&needle))
        .filter(|entry| {
            labels
                .iter()
                .all(|(key, value)| entry.labels.get(*key).is_some_and(|v| value.is_none_or(|value| v == value)))
        })
        .collect();
    let base = format!("/resources/{}", kind.cli_name());
    let paged = paginate(&matching, query.page.unwrap_or(1), &base, &[("q", &query.q), ("label", &query.label)]);
    let rows = paged.items.iter().map(|entry| {
        let labels: Vec<String> = entry.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        vec![
            link(&href(kind, &entry.name), &entry.name),
            entry.generation.to_string(),
            time(entry.updated_at),
            esc(entry.apply_set.as_deref().unwrap_or("—")),
            esc(&labels.join(", ")),
        ]
    });
    let body = format!(
        "<form method=\"get\" action=\"{base}\" class=\"filters\">\
           <input type=\"search\" name=\"q\" placeholder=\"name contains\" value=\"{}\">\
           <input type=\"text\" name=\"label\" placeholder=\"label=value,…\" value=\"{}\">\
           <button type=\"submit\">Filter</button></form>{}{}",
        esc(&query.q),
        esc(&query.label),
        table("resources", &["Name", "Generation", "Updated", "Apply set", "Labels"], rows),
        paged.links
    );
    Ok(html::layout(&signed.frame, &format!("{kind} resources"), &body).into_response())
}

/// The stored resource `kind/name`, or its 404 page.
async fn stored<B: Backend>(backend: &B, kind: Kind, name: &str) -> Result<StoredResource, Failure> {
    backend.get(kind, name).await?.ok_or_else(|| {
        Failure::new(StatusCode::NOT_FOUND, format!("{} does not exist", crate::backend::address(kind, name)))
    })
}

/// `GET /resources/{kind}/{name}`: manifest, status, references in and out.
pub(crate) async fn detail<A: Authority>(
    console: Shared<A>,
    signed: Signed<A>,
    Path((kind, name)): Path<(String, String)>,
) -> Page {
    let kind = kind_of(&kind)?;
    let resource = stored(&signed.backend, kind, &name).await?;
    let catalog = console.catalogs.current(signed.principal.org.as_deref(), &signed.backend).await?;
    let mut body = String::new();
    let _ = write!(
        body,
        "<dl class=\"facts\"><dt>Generation</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd><dt>Updated</dt><dd>{}</dd>\
         <dt>Apply set</dt><dd>{}</dd><dt>UID</dt><dd><code>{}</code></dd><dt>Hash</dt><dd><code>{}</code></dd></dl>\
         <p>{}</p>",
        resource.generation,
        time(resource.created_at),
        time(resource.updated_at),
        esc(resource.apply_set.as_deref().unwrap_or("— (made by hand)")),
        esc(&resource.uid),
        esc(&resource.hash),
        link(&format!("{}/history", href(kind, &name)), "Revision history"),
    );
    body.push_str("<h2>Status</h2>");
    body.push_str(&status_section(resource.status.as_ref()));
    body.push_str("<h2>References</h2><div class=\"columns\"><section><h3>Uses</h3><ul id=\"uses\">");
    let mut uses = 0;
    if let Some(entry) = catalog.find(&[kind], &name) {
        for (kinds, target) in &entry.references {
            uses += 1;
            let item = if let Some(found) = catalog.find(kinds, target) {
                link(&href(found.kind, &found.name), &crate::backend::address(found.kind, &found.name))
            } else {
                let kind = kinds.first().map_or("", |kind| kind.cli_name());
                format!("{}/{} <span class=\"error\">(missing)</span>", esc(kind), esc(target))
            };
            let _ = write!(body, "<li>{item}</li>");
        }
    }
    if uses == 0 {
        body.push_str("<li class=\"muted\">nothing</li>");
    }
    body.push_str("</ul></section><section><h3>Used by</h3><ul id=\"used-by\">");
    let mut used_by = 0;
    for referrer in catalog.referrers(kind, &name) {
        used_by += 1;
        let _ = write!(
            body,
            "<li>{}</li>",
            link(&href(referrer.kind, &referrer.name), &crate::backend::address(referrer.kind, &referrer.name))
        );
    }
    if used_by == 0 {
        body.push_str("<li class=\"muted\">nothing</li>");
    }
    let _ = write!(
        body,
        "</ul></section></div><h2>Manifest</h2><pre class=\"manifest\">{}</pre>",
        esc(&canonical::to_yaml(&masked(&resource.manifest)))
    );
    Ok(html::layout(&signed.frame, &resource.address(), &body).into_response())
}

/// A resource's status: its conditions as a table, the rest as YAML.
fn status_section(status: Option<&Value>) -> String {
    let Some(status) = status.filter(|status| !status.is_null()) else {
        return "<p class=\"muted\">No status recorded.</p>".to_owned();
    };
    let mut out = String::new();
    if let Some(conditions) = status.get("conditions").and_then(Value::as_array) {
        let text = |condition: &Value, key: &str| esc(condition.get(key).and_then(Value::as_str).unwrap_or(""));
        let rows = conditions.iter().map(|condition| {
            vec![
                text(condition, "type"),
                text(condition, "status"),
                text(condition, "reason"),
                text(condition, "message"),
                text(condition, "lastTransitionTime"),
            ]
        });
        out.push_str(&table("conditions", &["Type", "Status", "Reason", "Message", "Since"], rows));
    }
    let mut rest = status.clone();
    if let Some(map) = rest.as_object_mut() {
        map.remove("conditions");
    }
    if rest.as_object().is_none_or(|map| !map.is_empty()) {
        let _ = write!(out, "<pre>{}</pre>", esc(&canonical::to_yaml(&masked(&rest))));
    }
    out
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct HistoryQuery {
    /// The older generation of the diff.
    #[serde(default)]
    from: Option<u64>,
    /// The newer generation of the diff.
    #[serde(default)]
    to: Option<u64>,
    #[serde(default)]
    page: Option<usize>,
    /// Set after a rollback: the generation it restored.
    #[serde(default)]
    restored: Option<u64>,
}

/// The revision that produced generation `generation` (a deletion records no manifest of its
/// own): the latest, since generations start again at 1 when a deleted resource is created again.
fn revision(history: &[Revision], generation: u64) -> Option<&Revision> {
    history.iter().rev().find(|r| r.generation == generation && r.action != RevisionAction::Deleted)
}

/// Whether the revision at `index` of `history` is the one its generation names: not a deletion,
/// and not of an earlier life whose number a later revision took again.
fn named_by_generation(history: &[Revision], index: usize) -> bool {
    history.get(index).is_some_and(|r| {
        r.action != RevisionAction::Deleted
            && revision(history, r.generation).is_some_and(|latest| std::ptr::eq(latest, r))
    })
}

/// `GET /resources/{kind}/{name}/history`: every revision, and the diff between two of them.
pub(crate) async fn history<A: Authority>(
    signed: Signed<A>,
    Path((kind, name)): Path<(String, String)>,
    Query(query): Query<HistoryQuery>,
) -> Page {
    let kind = kind_of(&kind)?;
    let history = signed.backend.history(kind, &name).await?;
    if history.is_empty() {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            format!("{} has no history", crate::backend::address(kind, &name)),
        ));
    }
    let current = signed.backend.get(kind, &name).await?;
    let generations: Vec<u64> = history
        .iter()
        .enumerate()
        .filter(|(index, _)| named_by_generation(&history, *index))
        .map(|(_, r)| r.generation)
        .collect();
    let latest = generations.last().copied().unwrap_or(0);
    let to = query.to.filter(|g| generations.contains(g)).unwrap_or(latest);
    let from = query
        .from
        .filter(|g| generations.contains(g))
        .unwrap_or_else(|| generations.iter().rev().copied().find(|g| *g < to).unwrap_or(to));
    let page = format!("{}/history", href(kind, &name));
    let mut body = String::new();
    if let Some(restored) = query.restored {
        let now = current.as_ref().map_or(0, |c| c.generation);
        let _ = write!(
            body,
            "<p class=\"notice\" id=\"notice\">Rolled back to generation {restored}; now generation {now}.</p>"
        );
    }
    let _ = write!(body, "<p>{}</p>", link(&href(kind, &name), "← the resource"));
    // Newest first, as people read a history; each with whether its generation names it.
    let newest_first: Vec<(&Revision, bool)> =
        history.iter().enumerate().rev().map(|(index, r)| (r, named_by_generation(&history, index))).collect();
    let (from_text, to_text) = (from.to_string(), to.to_string());
    let paged = paginate(&newest_first, query.page.unwrap_or(1), &page, &[("from", &from_text), ("to", &to_text)]);
    let writes = signed.principal.role.writes() && current.is_some();
    let rows = paged.items.iter().map(|&(r, named)| {
        let compare = if named {
            link(&format!("{page}?from={}&to={to}", r.generation), "diff against shown")
        } else if r.action == RevisionAction::Deleted {
            String::new()
        } else {
            "<span class=\"muted\">an earlier life</span>".to_owned()
        };
        let rollback = match &current {
            Some(current) if writes && named && r.generation != current.generation => {
                format!(
                    "<a class=\"button\" href=\"{}/rollback?to={}\">Roll back to this</a>",
                    esc(&href(kind, &name)),
                    r.generation
                )
            }
            _ => String::new(),
        };
        vec![
            r.generation.to_string(),
            esc(r.action.as_str()),
            time(r.at),
            esc(&r.actor),
            esc(r.apply_set.as_deref().unwrap_or("—")),
            format!("<code>{}</code>", esc(r.hash.get(..12).unwrap_or(&r.hash))),
            format!("{compare} {rollback}"),
        ]
    });
    body.push_str(&table("revisions", &["Generation", "Action", "When", "Who", "Apply set", "Hash", ""], rows));
    body.push_str(&paged.links);
    let numbers: Vec<String> = generations.iter().rev().map(u64::to_string).collect();
    let options: Vec<(&str, &str)> = numbers.iter().map(|n| (n.as_str(), n.as_str())).collect();
    let _ = write!(
        body,
        "<h2>Diff</h2><form method=\"get\" action=\"{}\" class=\"filters\" id=\"compare\">\
           <label>from generation {}</label><label>to generation {}</label>\
           <button type=\"submit\">Compare</button></form>",
        esc(&page),
        html::select("from", &options, &from.to_string()),
        html::select("to", &options, &to.to_string())
    );
    if let (Some(old), Some(new)) = (revision(&history, from), revision(&history, to)) {
        body.push_str(&diff(kind, &name, old, new));
    }
    Ok(html::layout(&signed.frame, &format!("History of {}", crate::backend::address(kind, &name)), &body)
        .into_response())
}

/// The unified diff between two revisions, secrets masked.
fn diff(kind: Kind, name: &str, old: &Revision, new: &Revision) -> String {
    let address = crate::backend::address(kind, name);
    let lines = between(
        kind,
        (&format!("{address} (generation {})", old.generation), &masked(&old.manifest)),
        (&format!("{address} (generation {})", new.generation), &masked(&new.manifest)),
        3,
    );
    render_diff(&lines)
}

/// Diff lines as a block, each line classed by what it is.
fn render_diff(lines: &[Line]) -> String {
    let changed = lines.iter().any(|line| matches!(line, Line::Added(_) | Line::Removed(_)));
    if !changed {
        return "<p class=\"muted\" id=\"diff\">The two generations have the same manifest.</p>".to_owned();
    }
    let mut out = String::from("<pre class=\"diff\" id=\"diff\">");
    for line in lines {
        let (class, sign, text) = match line {
            Line::Header(text) => ("header", "", text),
            Line::Hunk(text) => ("hunk", "", text),
            Line::Removed(text) => ("removed", "-", text),
            Line::Added(text) => ("added", "+", text),
            Line::Context(text) => ("context", " ", text),
        };
        let _ = write!(out, "<span class=\"{class}\">{sign}{}</span>", esc(text));
    }
    out.push_str("</pre>");
    out
}

#[derive(Debug, Deserialize)]
pub(crate) struct RollbackQuery {
    to: u64,
}

/// The rollback of `kind/name` to `to`, planned as the CLI's `rollback` plans it.
async fn plan<B: Backend>(backend: &B, kind: Kind, name: &str, to: u64) -> Result<reconcile::Plan, Failure> {
    let current = backend.get(kind, name).await?;
    let history = backend.history(kind, name).await?;
    Ok(reconcile::plan_rollback(current.as_ref(), &history, kind, name, to)?)
}

impl From<ReconcileError> for Failure {
    fn from(error: ReconcileError) -> Self {
        match error {
            ReconcileError::Backend(error) => error.into(),
            ReconcileError::NotFound { .. } | ReconcileError::NoSuchRevision { .. } => {
                Self::new(StatusCode::NOT_FOUND, error.to_string())
            }
            other => Self::new(StatusCode::CONFLICT, other.to_string()),
        }
    }
}

/// `GET /resources/{kind}/{name}/rollback?to=G`: what rolling back would change, and the button.
pub(crate) async fn confirm_rollback<A: Authority>(
    signed: Signed<A>,
    Path((kind, name)): Path<(String, String)>,
    Query(query): Query<RollbackQuery>,
) -> Page {
    let kind = kind_of(&kind)?;
    signed.must_write()?;
    let plan = plan(&signed.backend, kind, &name, query.to).await?;
    let address = crate::backend::address(kind, &name);
    let body = match plan.changes.first() {
        Some(Change::Update { before, after, generation, .. }) => {
            let lines = between(
                kind,
                (&format!("{address} (generation {generation}, current)"), &masked(before)),
                (&format!("{address} (generation {}, to restore)", query.to), &masked(after)),
                3,
            );
            format!(
                "<p>Rolling back writes the manifest of generation {to} as generation {next}. It keeps its apply set: \
                 the next <code>apply</code> of that set puts the manifests' version back.</p>{diff}\
                 <form method=\"post\" action=\"{action}\">{csrf}<input type=\"hidden\" name=\"to\" value=\"{to}\">\
                 <input type=\"hidden\" name=\"generation\" value=\"{generation}\">\
                 <button type=\"submit\" class=\"danger\" id=\"confirm-rollback\">Roll back to generation {to}</button> \
                 {cancel}</form>",
                to = query.to,
                next = generation + 1,
                diff = render_diff(&lines),
                action = esc(&format!("{}/rollback", href(kind, &name))),
                csrf = signed.frame.csrf_field(),
                cancel = link(&format!("{}/history", href(kind, &name)), "Cancel"),
            )
        }
        _ => format!(
            "<p class=\"muted\">Generation {} has the manifest {address} has now: nothing to roll back.</p><p>{}</p>",
            query.to,
            link(&format!("{}/history", href(kind, &name)), "← history")
        ),
    };
    Ok(html::layout(&signed.frame, &format!("Roll back {address}"), &body).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct RollbackForm {
    #[serde(default)]
    csrf: String,
    to: u64,
    /// The generation the confirmation was shown for: a change since then is a conflict.
    #[serde(default)]
    generation: Option<u64>,
}

/// `POST /resources/{kind}/{name}/rollback`: the rollback, as the confirmation showed it.
pub(crate) async fn rollback<A: Authority>(
    signed: Signed<A>,
    Path((kind, name)): Path<(String, String)>,
    Form(form): Form<RollbackForm>,
) -> Page {
    let kind = kind_of(&kind)?;
    signed.must_write()?;
    signed.check_csrf(&form.csrf)?;
    let plan = plan(&signed.backend, kind, &name, form.to).await?;
    if let (Some(shown), Some(Change::Update { generation, .. })) = (form.generation, plan.changes.first())
        && shown != *generation
    {
        return Err(Failure::new(
            StatusCode::CONFLICT,
            format!(
                "{} changed since the confirmation was shown (generation {shown}, now {generation}); review the diff again",
                crate::backend::address(kind, &name)
            ),
        ));
    }
    reconcile::apply(&signed.backend, &plan, false).await?;
    Ok(Redirect::to(&format!("{}/history?restored={}", href(kind, &name), form.to)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_are_masked_wherever_they_are_declared() {
        let manifest = json!({"spec": {
            "env": {"API_KEY": {"isSecret": true, "defaultValue": "sk-live"}, "REGION": {"defaultValue": "eu"}},
            "data": {"TOKEN": {"is_secret": true, "value": "t0k"}, "REF": {"secretRef": "prod.TOKEN", "isSecret": true}},
        }});
        let shown = masked(&manifest).to_string();
        assert!(!shown.contains("sk-live") && !shown.contains("t0k"), "{shown}");
        assert!(shown.contains("\"eu\"") && shown.contains("prod.TOKEN"), "{shown}");
    }

    #[test]
    fn a_diff_escapes_what_it_shows() {
        let lines = [Line::Removed("name: <script>".into()), Line::Added("name: ok".into())];
        let shown = render_diff(&lines);
        assert!(shown.contains("-name: &lt;script&gt;") && !shown.contains("<script>"), "{shown}");
        assert!(render_diff(&[Line::Context("same".into())]).contains("same manifest"));
    }
}

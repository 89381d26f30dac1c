//! `stigmer describe`: one resource in full, with its references and recent revisions.

use std::fmt::Write as _;

use clap::Args;

use serde_json::{Value, json};

use super::common::{self, parse_kind};
use super::get::{age, take_bundle, with_status};
use super::help;
use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError};
use crate::backend::condition::Condition;
use crate::backend::{Backend, BackendError, ResourceQuery, Revision, StoredResource, address};
use crate::model::AnyResource;
use crate::reconcile::canonical;

/// Show one resource in full.
///
/// Its spec, status, owning apply set, generation, references in and out, and its last
/// revisions.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer describe agent support-bot",
        "stigmer describe mcpserver tickets -o yaml   # the manifest; references and revisions in status",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct DescribeArgs {
    /// The kind.
    pub kind: String,
    /// The name.
    pub name: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How many revisions `describe` shows.
const RECENT_REVISIONS: usize = 5;

/// Runs `stigmer describe`.
pub async fn run(ctx: &CommandContext, args: &DescribeArgs) -> Result<(), CommandError> {
    let kind = parse_kind(&args.kind)?;
    let backend = ctx.settings.backend()?;
    let everything = backend.list(&ResourceQuery::all()).await?;
    let resource = everything
        .iter()
        .find(|r| r.kind == kind && r.name == args.name)
        .ok_or_else(|| BackendError::NotFound { address: address(kind, &args.name) })?;
    let history = backend.history(kind, &args.name).await?;
    let outgoing: Vec<(String, bool)> = AnyResource::from_value(kind, Value::clone(&resource.manifest))
        .map(|r| r.references())
        .unwrap_or_default()
        .iter()
        .map(|reference| {
            let target = reference
                .kinds
                .iter()
                .find_map(|k| everything.iter().find(|r| r.kind == *k && r.name == reference.name));
            let kind = target.map_or_else(|| reference.kinds.first().copied().unwrap_or(kind), |t| t.kind);
            (address(kind, &reference.name), target.is_some())
        })
        .collect();
    let incoming = crate::reconcile::referrers(&everything, kind, &resource.name);
    let recent: Vec<&Revision> = history.iter().rev().take(RECENT_REVISIONS).collect();
    let observed = backend.conditions().await?;
    let conditions = observed.into_iter().find(|o| o.address == resource.address()).map(|o| o.conditions);
    let described = Described {
        resource,
        outgoing: &outgoing,
        incoming: &incoming,
        recent: &recent,
        conditions: conditions.as_deref().unwrap_or_default(),
    };
    let object = described.object();
    let text = output::one(args.output.output, &object, |_| described.text(), |_| resource.address())?;
    ctx.out(&text)
}

/// What `describe` shows of one resource.
struct Described<'a> {
    resource: &'a StoredResource,
    /// Each reference's target address, and whether it exists.
    outgoing: &'a [(String, bool)],
    incoming: &'a [String],
    /// The last revisions, newest first.
    recent: &'a [&'a Revision],
    /// What was last observed of it.
    conditions: &'a [Condition],
}

impl Described<'_> {
    /// The manifest as `get` shows it, with the references and revisions in `status`, which
    /// `import` ignores.
    fn object(&self) -> Value {
        let mut object = with_status(self.resource);
        let revisions: Vec<Value> = self
            .recent
            .iter()
            .map(|r| {
                json!({
                    "generation": r.generation,
                    "action": format!("{:?}", r.action).to_lowercase(),
                    "at": r.at.to_string(),
                    "actor": r.actor,
                    "applySet": r.apply_set,
                })
            })
            .collect();
        if let Some(status) = object.get_mut("status").and_then(Value::as_object_mut) {
            let references: Vec<Value> =
                self.outgoing.iter().map(|(target, exists)| json!({"target": target, "exists": exists})).collect();
            status.insert("references".to_owned(), Value::from(references));
            status.insert("referencedBy".to_owned(), json!(self.incoming));
            status.insert("revisions".to_owned(), Value::from(revisions));
            if !self.conditions.is_empty() {
                status.insert("conditions".to_owned(), serde_json::to_value(self.conditions).unwrap_or_default());
            }
        }
        object
    }

    fn text(&self) -> String {
        let resource = self.resource;
        let kind = resource.kind;
        let now = jiff::Timestamp::now();
        let mut out = String::new();
        let _ = writeln!(out, "Name:        {}", resource.name);
        let _ = writeln!(out, "Kind:        {}", resource.kind);
        let _ = writeln!(out, "Apply set:   {}", resource.apply_set.as_deref().unwrap_or("(none: made by hand)"));
        let _ = writeln!(out, "Generation:  {}", resource.generation);
        let _ = writeln!(out, "UID:         {}", resource.uid);
        let _ =
            writeln!(out, "Created:     {} ({} ago)", common::time(resource.created_at), age(now, resource.created_at));
        let _ =
            writeln!(out, "Updated:     {} ({} ago)", common::time(resource.updated_at), age(now, resource.updated_at));
        let _ = writeln!(out, "Hash:        {}", resource.hash);

        let _ = writeln!(out, "References:");
        if self.outgoing.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for (target, exists) in self.outgoing {
            let missing = if *exists { "" } else { " (missing)" };
            let _ = writeln!(out, "  {target}{missing}");
        }
        let _ = writeln!(out, "Referenced by:");
        if self.incoming.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for referrer in self.incoming {
            let _ = writeln!(out, "  {referrer}");
        }
        let _ = writeln!(out, "Spec:");
        let mut manifest = Value::clone(&resource.manifest);
        let bundle = take_bundle(kind, &mut manifest);
        let spec = manifest.get("spec").map(canonical::to_yaml).unwrap_or_default();
        for line in spec.lines() {
            let _ = writeln!(out, "  {line}");
        }
        if let Some(bundle) = bundle {
            let files = common::counted(bundle["files"].as_array().map_or(0, Vec::len), "file");
            let _ = writeln!(
                out,
                "Bundle:      {} ({files}, {} bytes)",
                bundle["digest"].as_str().unwrap_or("?"),
                bundle["size"]
            );
            for file in bundle["files"].as_array().into_iter().flatten() {
                let executable = if file["executable"] == true { "  executable" } else { "" };
                let _ = writeln!(
                    out,
                    "  {:<40} {:>9} bytes{executable}",
                    file["path"].as_str().unwrap_or("?"),
                    file["size"]
                );
            }
        }
        if let Some(status) = &resource.status {
            let _ = writeln!(out, "Status:");
            for line in canonical::to_yaml(status).lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        if !self.conditions.is_empty() {
            let _ = writeln!(out, "Conditions:");
            let rows = self.conditions.iter().map(|c| {
                vec![
                    c.kind.clone(),
                    c.status.as_str().to_owned(),
                    c.reason.clone(),
                    format!("{} ago", age(now, c.last_transition_time)),
                    c.message.clone(),
                ]
            });
            for line in common::table(&["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], rows).lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        let _ = writeln!(out, "Revisions:");
        for revision in self.recent {
            let _ = writeln!(
                out,
                "  {:>4}  {:<8} {} by {}{}",
                revision.generation,
                format!("{:?}", revision.action).to_lowercase(),
                common::time(revision.at),
                revision.actor,
                revision.apply_set.as_ref().map(|s| format!(" (set {s})")).unwrap_or_default()
            );
        }
        out
    }
}

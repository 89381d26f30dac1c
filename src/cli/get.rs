//! `stigmer get`: list resources.

use clap::Args;
use serde_json::{Value, json};

use super::common::{self, parse_kind};
use super::help;
use super::output::{self, OutputArgs};
use super::{CommandContext, CommandError};
use crate::backend::condition::{self, Observed};
use crate::backend::{Backend, ResourceQuery, StoredResource};
use crate::model::{Kind, SkillBundle};

/// List resources: all declarative kinds, one kind, or named resources.
#[derive(Debug, Args)]
#[command(after_help = help::after(
    &[
        "stigmer get",
        "stigmer get agents",
        "stigmer get agent support-bot -o yaml           # the object itself",
        "stigmer get agents -o json                      # {\"kind\": \"List\", \"items\": [...]}",
        "stigmer get skills -l team=cs -o name",
    ],
    &[help::COLOR, help::HOME, help::BACKEND],
))]
pub struct GetArgs {
    /// A kind (agent, skill, mcpserver, …); all declarative kinds when absent.
    pub kind: Option<String>,
    /// Names of resources of that kind.
    pub names: Vec<String>,
    /// Only resources with these labels: `key=value,key2=value2`.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `stigmer get`.
pub async fn run(ctx: &CommandContext, args: &GetArgs) -> Result<(), CommandError> {
    let kinds = args.kind.as_deref().map(parse_kind).transpose()?.into_iter().collect::<Vec<_>>();
    if kinds.is_empty() && !args.names.is_empty() {
        return Err(CommandError::user("names need a kind").hint("stigmer get agent support-bot"));
    }
    let labels = parse_selector(args.selector.as_deref())?;
    let query = ResourceQuery { kinds: kinds.clone(), names: args.names.clone(), labels };
    let backend = ctx.settings.backend()?;
    let resources = backend.list(&query).await?;
    // Workflows show when their schedule fires next.
    let next_fire: Option<std::collections::HashMap<String, String>> = if kinds == [Kind::Workflow] {
        let schedules = backend.schedule_list().await?;
        Some(
            schedules
                .into_iter()
                .map(|s| {
                    let next = if s.paused {
                        "paused".to_owned()
                    } else {
                        s.next.map_or_else(|| s.spec.clone(), common::time)
                    };
                    (s.workflow, next)
                })
                .collect(),
        )
    } else {
        None
    };
    if let Some(kind) = kinds.first()
        && let Some(missing) = args.names.iter().find(|n| !resources.iter().any(|r| &r.name == *n))
    {
        return Err(crate::backend::BackendError::NotFound { address: crate::backend::address(*kind, missing) }.into());
    }
    let format = args.output.output;
    let single_kind = kinds.len() == 1;
    let observed = backend.conditions().await?;
    let ready = Ready::of(&resources, &observed);
    let table = |wide| table(&resources, single_kind, wide, next_fire.as_ref(), ready.as_ref());
    let name = |resource: &Value| address_of(resource);
    let objects: Vec<Value> = resources.iter().map(|r| with_conditions(with_status(r), r, &observed)).collect();
    // `get KIND NAME` shows that object; every other form lists.
    let text = match (args.names.len(), objects.as_slice()) {
        (1, [object]) => output::one(format, object, table, name)?,
        _ if output::is_empty_table(format, &objects) => return ctx.err("No resources found.\n"),
        _ => output::list(format, &objects, table, name)?,
    };
    ctx.out(&text)
}

/// `agent/support-bot`, from a manifest.
fn address_of(manifest: &Value) -> String {
    let kind = manifest["kind"].as_str().and_then(Kind::from_manifest);
    let name = manifest.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    kind.map_or_else(|| name.to_owned(), |kind| crate::backend::address(kind, name))
}

/// `team=cs,tier=1` → [("team", "cs"), ("tier", "1")].
fn parse_selector(selector: Option<&str>) -> Result<Vec<(String, String)>, CommandError> {
    let Some(selector) = selector else { return Ok(Vec::new()) };
    selector
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .filter(|(key, _)| !key.is_empty())
                .ok_or_else(|| {
                    CommandError::user(format!("bad label selector \"{pair}\""))
                        .hint("write key=value, separated by commas")
                })
        })
        .collect()
}

/// The manifest with the server-owned fields in `status`, which `import` accepts and ignores.
/// A skill's bundle is computed, not written: it is shown in `status` as a summary (digest,
/// sizes), never with the files' contents.
pub fn with_status(resource: &StoredResource) -> Value {
    let mut manifest = Value::clone(&resource.manifest);
    let bundle = take_bundle(resource.kind, &mut manifest);
    let mut status = json!({
        "uid": resource.uid,
        "generation": resource.generation,
        "applySet": resource.apply_set,
        "createdAt": resource.created_at.to_string(),
        "updatedAt": resource.updated_at.to_string(),
        "hash": resource.hash,
    });
    if let (Some(extra), Some(fields)) = (resource.status.as_ref().and_then(Value::as_object), status.as_object_mut()) {
        fields.extend(extra.clone());
    }
    if let (Some(bundle), Some(fields)) = (bundle, status.as_object_mut()) {
        fields.insert("bundle".to_owned(), bundle);
    }
    if let Some(fields) = manifest.as_object_mut() {
        fields.insert("status".to_owned(), status);
    }
    manifest
}

/// Takes a skill's bundle out of its manifest and returns its summary: file contents are for
/// the runner and `export`, not for the terminal.
pub fn take_bundle(kind: Kind, manifest: &mut Value) -> Option<Value> {
    if kind != Kind::Skill {
        return None;
    }
    let bundle = manifest.get_mut("spec")?.as_object_mut()?.remove("bundle")?;
    Some(match serde_json::from_value::<SkillBundle>(bundle.clone()) {
        Ok(bundle) => bundle.summary(),
        Err(_) => json!({"digest": bundle.get("digest"), "files": "(unreadable)"}),
    })
}

/// The READY column: each listed resource's primary condition (see
/// `backend::condition::primary`), when any listed kind has one.
struct Ready(std::collections::HashMap<String, String>);

impl Ready {
    fn of(resources: &[StoredResource], observed: &[Observed]) -> Option<Self> {
        let any = resources.iter().any(|r| condition::primary(r.kind).is_some());
        any.then(|| {
            Self(
                resources
                    .iter()
                    .filter_map(|r| {
                        let at = r.address();
                        let wanted = condition::primary(r.kind)?;
                        let found = observed.iter().find(|o| o.address == at)?.condition(wanted)?;
                        Some((at, found.status.as_str().to_owned()))
                    })
                    .collect(),
            )
        })
    }
}

/// The manifest as shown, with the resource's observed conditions in `status.conditions`.
pub fn with_conditions(mut object: Value, resource: &StoredResource, observed: &[Observed]) -> Value {
    let at = resource.address();
    if let Some(found) = observed.iter().find(|o| o.address == at)
        && let Some(status) = object.get_mut("status").and_then(Value::as_object_mut)
    {
        status.insert("conditions".to_owned(), serde_json::to_value(&found.conditions).unwrap_or_default());
    }
    object
}

fn table(
    resources: &[StoredResource],
    single_kind: bool,
    wide: bool,
    next_fire: Option<&std::collections::HashMap<String, String>>,
    ready: Option<&Ready>,
) -> String {
    let mut header = vec!["NAME"];
    if ready.is_some() {
        header.push("READY");
    }
    header.extend(["GENERATION", "SET", "AGE"]);
    if next_fire.is_some() {
        header.push("NEXT FIRE");
    }
    if wide {
        header.extend(["UID", "HASH", "CREATED"]);
    }
    let now = jiff::Timestamp::now();
    let rows = resources.iter().map(|r| {
        let name = if single_kind { r.name.clone() } else { r.address() };
        let mut row = vec![name];
        if let Some(ready) = ready {
            row.push(ready.0.get(&r.address()).cloned().unwrap_or_else(|| "-".to_owned()));
        }
        row.extend([
            r.generation.to_string(),
            r.apply_set.clone().unwrap_or_else(|| "-".to_owned()),
            age(now, r.updated_at),
        ]);
        if let Some(next_fire) = next_fire {
            row.push(next_fire.get(&r.name).cloned().unwrap_or_else(|| "-".to_owned()));
        }
        if wide {
            row.extend([r.uid.clone(), r.hash.chars().take(12).collect(), common::time(r.created_at)]);
        }
        row
    });
    common::table(&header, rows)
}

/// `42s`, `5m`, `3h`, `12d`.
pub fn age(now: jiff::Timestamp, then: jiff::Timestamp) -> String {
    let seconds = now.as_second().saturating_sub(then.as_second()).max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

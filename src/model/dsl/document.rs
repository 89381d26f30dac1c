//! The workflow document: the top-level [`Workflow`], its `document` header, reusable components
//! (`use`), schedule, expression evaluation settings, extensions and catalogs.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::auth::AuthenticationPolicy;
use super::data::{Duration, Endpoint, ErrorDefinition, Input, Output, RetryPolicy, Timeout, TimeoutOrReference};
use super::event::EventConsumptionStrategy;
use super::support::{self, single_entry_map};
use super::task::{Task, TaskList};
use super::walk::{NO_SIBLINGS, TaskVisit};

/// The DSL version written by [`Document::new`].
pub const DSL_VERSION: &str = "1.0.0";

/// A Serverless Workflow document: its header, reusable components and the tasks it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workflow {
    /// Documents the workflow: DSL version, namespace, name, version.
    pub document: Document,
    /// How the workflow's input is validated and transformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    /// The workflow's reusable components.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<Use>,
    /// The tasks the workflow runs, in order.
    #[serde(rename = "do")]
    pub do_: TaskList,
    /// How long the workflow may run: inline, or the name of a timeout in `use.timeouts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutOrReference>,
    /// How the workflow's output is transformed and validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    /// When the workflow runs on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// How runtime expressions are evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluate: Option<Evaluate>,
}

impl Workflow {
    /// A workflow with this header running these tasks.
    #[must_use]
    pub fn new(document: Document, tasks: TaskList) -> Self {
        Self {
            document,
            input: None,
            use_: None,
            do_: tasks,
            timeout: None,
            output: None,
            schedule: None,
            evaluate: None,
        }
    }

    /// Visits every task of `do`, recursively and in document order; `base_pointer` is the
    /// pointer of this document, so the first task is at `{base_pointer}/do/0/{name}`.
    pub fn walk_tasks<'a>(&'a self, base_pointer: &str, visit: &mut dyn FnMut(&TaskVisit<'a>)) {
        self.do_.walk(base_pointer, visit);
    }

    /// Like [`walk_tasks`](Self::walk_tasks), but first visits the tasks of the reusable
    /// components: each function of `use.functions` (at `{base_pointer}/use/functions/{name}`,
    /// with no siblings), then the `before` and `after` tasks of each extension.
    pub fn walk_all_tasks<'a>(&'a self, base_pointer: &str, visit: &mut dyn FnMut(&TaskVisit<'a>)) {
        if let Some(uses) = &self.use_ {
            for (name, task) in &uses.functions {
                let pointer = format!("{base_pointer}/use/functions/{}", crate::model::escape_pointer(name));
                TaskVisit { pointer, name, task, siblings: &NO_SIBLINGS }.walk(visit);
            }
            for (index, item) in uses.extensions.iter().enumerate() {
                let pointer =
                    format!("{base_pointer}/use/extensions/{index}/{}", crate::model::escape_pointer(&item.name));
                item.extension.before.walk_at(&format!("{pointer}/before"), visit);
                item.extension.after.walk_at(&format!("{pointer}/after"), visit);
            }
        }
        self.walk_tasks(base_pointer, visit);
    }
}

/// The workflow's header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    /// The version of the DSL the workflow is written in, e.g. `1.0.0`.
    #[schemars(schema_with = "support::semver_schema")]
    pub dsl: String,
    /// The workflow's namespace.
    #[schemars(schema_with = "support::name_schema")]
    pub namespace: String,
    /// The workflow's name.
    #[schemars(schema_with = "support::name_schema")]
    pub name: String,
    /// The workflow's semantic version.
    #[schemars(schema_with = "support::semver_schema")]
    pub version: String,
    /// The workflow's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The workflow's Markdown summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The workflow's tags, as key/value pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Map<String, Value>>,
    /// Additional information about the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// What [`summary_from_description`] found in a document's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescriptionField {
    /// No `document.description`.
    Absent,
    /// `document.description` was renamed to `summary`, the field the DSL defines.
    ReadAsSummary,
    /// Both are written; nothing was changed.
    BesideSummary,
}

/// Reads `document.description`, which many existing workflow files carry though the DSL calls
/// the field `summary`, as `summary` in a workflow document's JSON (the document itself, or a
/// Workflow manifest's `spec`). The caller warns, naming the standard field.
pub fn summary_from_description(workflow: &mut Value) -> DescriptionField {
    let Some(header) = workflow.get_mut("document").and_then(Value::as_object_mut) else {
        return DescriptionField::Absent;
    };
    if !header.contains_key("description") {
        return DescriptionField::Absent;
    }
    if header.contains_key("summary") {
        return DescriptionField::BesideSummary;
    }
    if let Some(description) = header.remove("description") {
        header.insert("summary".to_owned(), description);
    }
    DescriptionField::ReadAsSummary
}

impl Document {
    /// A header for DSL [`DSL_VERSION`] with this namespace, name and version.
    #[must_use]
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            dsl: DSL_VERSION.to_owned(),
            namespace: namespace.into(),
            name: name.into(),
            version: version.into(),
            title: None,
            summary: None,
            tags: None,
            metadata: None,
        }
    }
}

/// The workflow's reusable components, referenced by name from tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Use {
    /// Reusable authentication policies, by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub authentications: IndexMap<String, AuthenticationPolicy>,
    /// Reusable errors, by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub errors: IndexMap<String, ErrorDefinition>,
    /// Extensions, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<ExtensionItem>,
    /// Reusable functions (tasks), by name; called with `call: <name>`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub functions: IndexMap<String, Task>,
    /// Reusable retry policies, by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub retries: IndexMap<String, RetryPolicy>,
    /// The secrets the workflow uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Reusable timeouts, by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub timeouts: IndexMap<String, Timeout>,
    /// Resource catalogs, by name; functions are called from them as `name:version@catalog`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub catalogs: IndexMap<String, Catalog>,
}

/// When a workflow runs on its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// Run at this interval, even if the previous run is still going.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    /// Run on this CRON expression, e.g. `0 0 * * *` for daily at midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Run again this long after each run completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Duration>,
    /// Run when these events are consumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<EventConsumptionStrategy>,
}

/// How runtime expressions are evaluated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Evaluate {
    /// The expression language; defaults to `jq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The evaluation mode; defaults to `strict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<EvaluateMode>,
}

/// How strictly strings are recognized as runtime expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EvaluateMode {
    /// Only values enclosed in `${ }` are expressions.
    Strict,
    /// Any value is evaluated; on failure it stays the string it is.
    Loose,
}

/// A named extension, written as a single-key map `{name: extension}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionItem {
    /// The extension's name.
    pub name: String,
    /// The extension.
    pub extension: Extension,
}
single_entry_map!(ExtensionItem, extension: Extension, "extension", "A named extension: a map with a single key, the extension name.");

/// Runs tasks before and/or after the tasks of a kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Extension {
    /// The kind of task to extend.
    pub extend: ExtensionTarget,
    /// A runtime expression deciding whether the extension applies in a given context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// The tasks to run before the extended task.
    #[serde(default, skip_serializing_if = "TaskList::is_empty")]
    pub before: TaskList,
    /// The tasks to run after the extended task.
    #[serde(default, skip_serializing_if = "TaskList::is_empty")]
    pub after: TaskList,
}

/// The kind of task an extension extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ExtensionTarget {
    /// `call` tasks.
    Call,
    /// Composite tasks (`do`, `for`, `fork`, `try`).
    Composite,
    /// `emit` tasks.
    Emit,
    /// `for` tasks.
    For,
    /// `listen` tasks.
    Listen,
    /// `raise` tasks.
    Raise,
    /// `run` tasks.
    Run,
    /// `set` tasks.
    Set,
    /// `switch` tasks.
    Switch,
    /// `try` tasks.
    Try,
    /// `wait` tasks.
    Wait,
    /// All tasks.
    All,
}

/// A resource catalog: where reusable functions are published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Catalog {
    /// The root URL of the catalog.
    pub endpoint: Endpoint,
}

//! The `run` task: containers, scripts, shell commands and sub-workflows, with how their result
//! becomes the task's output.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::base::TaskBase;
use super::data::{Duration, ExternalResource};

/// Runs a container, a script, a shell command or another workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct RunTask {
    /// The process to run.
    pub run: RunConfiguration,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The process a `run` task runs, and how its result is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct RunConfiguration {
    /// The process: exactly one of `container`, `script`, `shell` or `workflow`.
    #[serde(flatten)]
    pub process: Process,
    /// Whether to wait for the process to complete; defaults to `true`.
    #[serde(default, rename = "await", skip_serializing_if = "Option::is_none")]
    pub await_: Option<bool>,
    /// What the process outputs; defaults to `stdout`.
    #[serde(default, rename = "return", skip_serializing_if = "Option::is_none")]
    pub return_: Option<ProcessReturnType>,
}

/// A process to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Process {
    /// Runs a container.
    Container(Container),
    /// Runs a script.
    Script(Script),
    /// Runs a shell command.
    Shell(Shell),
    /// Runs another workflow.
    Workflow(SubflowConfiguration),
}

/// What a process outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ProcessReturnType {
    /// The content of STDOUT.
    Stdout,
    /// The content of STDERR.
    Stderr,
    /// The exit code.
    Code,
    /// The exit code, STDOUT and STDERR, as a process result object.
    All,
    /// Nothing.
    None,
}

/// What a process returns when its `return` is `all`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessResult {
    /// The process's exit code.
    pub code: i64,
    /// The content of the process's STDOUT.
    pub stdout: String,
    /// The content of the process's STDERR.
    pub stderr: String,
}

/// A container to run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    /// The container image to run.
    pub image: String,
    /// A runtime expression, if any, naming the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The command, if any, to run in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The container's port mappings, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Map<String, Value>>,
    /// The container's volume mappings, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Map<String, Value>>,
    /// The environment variables, if any, of the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Map<String, Value>>,
    /// A runtime expression, if any, passed as standard input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// The arguments, if any, passed as argv.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// The container's lifetime, if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<ContainerLifetime>,
    /// How the image is pulled; defaults to `ifNotPresent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
}

/// How a container image is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PullPolicy {
    /// Pull only when the image is not present.
    IfNotPresent,
    /// Always pull.
    Always,
    /// Never pull.
    Never,
}

/// The lifetime of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = after_only_when_eventually)]
pub struct ContainerLifetime {
    /// The cleanup policy; defaults to `never`.
    pub cleanup: ContainerCleanupPolicy,
    /// When to delete the container; required with `eventually`, and only then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Duration>,
}

/// Requires `after` exactly when `cleanup` is `eventually` (as the official schema does).
fn after_only_when_eventually(schema: &mut schemars::Schema) {
    schema.insert("if".to_owned(), serde_json::json!({ "properties": { "cleanup": { "const": "eventually" } } }));
    schema.insert("then".to_owned(), serde_json::json!({ "required": ["after"] }));
    schema.insert("else".to_owned(), serde_json::json!({ "not": { "required": ["after"] } }));
}

/// When a container is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ContainerCleanupPolicy {
    /// Right after it ran.
    Always,
    /// Never.
    Never,
    /// A while (`after`) after it ran.
    Eventually,
}

/// A script to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Script {
    /// The script's language, e.g. `js` or `python`.
    pub language: String,
    /// The script: inline `code` or an external `source`.
    #[serde(flatten)]
    pub source: ScriptSource,
    /// A runtime expression, if any, passed as standard input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// The arguments, if any, passed as argv.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// The environment variables, if any, of the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Map<String, Value>>,
}

/// Where a script's code comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ScriptSource {
    /// The script's code, inline.
    Code(String),
    /// The script, loaded from an external resource.
    Source(ExternalResource),
}

/// A shell command to run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Shell {
    /// The shell command to run.
    pub command: String,
    /// A runtime expression, if any, passed as standard input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// The arguments, if any, passed as argv.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// The environment variables, if any, of the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Map<String, Value>>,
}

/// A workflow to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubflowConfiguration {
    /// The namespace of the workflow to run.
    pub namespace: String,
    /// The name of the workflow to run.
    pub name: String,
    /// The version of the workflow to run (`latest` for the latest one).
    pub version: String,
    /// The input, if any, of the workflow to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Map<String, Value>>,
}

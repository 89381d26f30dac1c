//! A Serverless Workflow 1.0 interpreter (the core): runs a [`dsl::Workflow`] on a JSON input
//! and returns its JSON output, reporting every task transition to an [`Observer`].
//!
//! Supported: `do`, `set`, `switch`, `for`, `fork` (with `compete`), `try`/`catch` (with retry
//! policies), `raise`, `wait`; `if` and `then` on every task; the data flow of the DSL
//! (`input.from`, `output.as`, `export.as` into `$context`, inline JSON schemas validated) and
//! task / workflow timeouts; `call: http` and `call: openapi` (Swagger 2.0 and OpenAPI 3.x
//! documents, JSON or YAML) with basic, bearer, digest, OAuth2 and OpenID Connect
//! authentication; `run: shell` / `run: script` (`js` with `node`, `python` with `python3`; the
//! code inline or from a `source` file or URL) and `run: workflow`; `emit` and `listen` on the
//! run's event bus. Their decisions are documented in the `http`, `openapi`, `digest`, `oauth2`,
//! `process`, `bus` and `listen` modules. Other calls and `run: container` fail with a runtime
//! error saying why.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use stigmer::model::dsl::Workflow;
//! use stigmer::runner::workflow::{RunOptions, run};
//!
//! let workflow: Workflow = serde_saphyr::from_str(
//!     "document: { dsl: '1.0.0', namespace: demo, name: greet, version: '0.1.0' }\n\
//!      do:\n  - greet:\n      set:\n        greeting: ${ \"Hello, \" + .name }\n",
//! )
//! .unwrap();
//! let output = run(&workflow, serde_json::json!({ "name": "Ada" }), &RunOptions::new(), &mut ()).await.unwrap();
//! assert_eq!(output, serde_json::json!({ "greeting": "Hello, Ada" }));
//! # });
//! ```
//!
//! Semantics the specification leaves open, as implemented here:
//! - `$context` starts as `{}`; `export.as` replaces it.
//! - In `output.as`, `.` and `$output` are the raw output; in `export.as`, the transformed one.
//! - A jq expression's first output is its value (`null` when it has none).
//! - A skipped task (its `if` false) passes its raw input on and does not follow its `then`.
//! - `for` feeds each iteration's output to the next; `while` is checked before each one.
//! - `fork` without `compete` fails on the first branch error (cancelling the others); with
//!   `compete`, the first branch to succeed wins and the others are cancelled; if all fail, the
//!   first error is raised. A branch's own `then` is not followed.
//! - `retry.limit.attempt.count` counts retries (not the first attempt); `limit.attempt.duration`
//!   bounds each attempt; `limit.duration` stops retrying once the next delay would pass it;
//!   backoff multiplies `delay` by 1 (constant), n (linear) or 2^(n-1) (exponential) for retry n.
//!   Once retries are exhausted the error is handled by `catch.do`; a `catch` without `do`
//!   swallows it, the `try` task's input becoming its output.
//! - A runaway jq expression (an infinite `repeat`) is not bounded: expressions run inline.

mod bus;
mod digest;
mod encode;
mod error;
mod eval;
mod events;
mod http;
mod interpreter;
#[cfg(test)]
mod io_tests;
mod listen;
mod oauth2;
mod openapi;
mod process;
pub mod record;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

pub use bus::EventBus;
pub use error::WorkflowError;
pub use events::{Observer, TaskEvent, Transition};

use crate::model::dsl::{self, TimeoutOrReference, duration};
use crate::secrets::{Redactor, SecretValue};

/// How to run a workflow: its secrets and limits.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// `$secret`, by name. Private so it is only ever read by expressions, never printed.
    secrets: Map<String, Value>,
    /// The most a run may take, on top of the workflow's own `timeout`.
    pub timeout: Option<Duration>,
    /// `$workflow.id`; a random UUID when unset (a durable runner passes its execution id).
    pub instance_id: Option<String>,
    /// Outputs of tasks that completed in an earlier, interrupted run of the same execution, by
    /// task reference, in the order they completed: those tasks are not run again.
    replay: HashMap<String, VecDeque<Recorded>>,
    /// The workflows `run: workflow` tasks may run, by name (the caller loads them).
    workflows: HashMap<String, dsl::Workflow>,
    /// How many `run: workflow` levels deep this run is.
    depth: u32,
    /// Where `emit` publishes and `listen` consumes; a fresh bus when unset.
    bus: Option<Arc<EventBus>>,
    /// Who runs `call: agent` tasks; they fail with a clear error when unset.
    agents: Option<Arc<dyn AgentCaller>>,
}

/// One `call: agent`, its expressions evaluated.
#[derive(Debug, Clone)]
pub struct AgentCall {
    /// The `Agent` (or `AgentInstance`) to run.
    pub agent: String,
    /// The message.
    pub message: String,
    /// Variables for this call (`with.env`), over the agent's own.
    pub env: Vec<(String, String)>,
    /// The model to use instead of the agent's (`with.config.model`).
    pub model: Option<String>,
}

/// Runs agents for `call: agent` tasks. The interpreter never reads a backend; its caller
/// provides this.
pub trait AgentCaller: Send + Sync {
    /// Runs the agent on the message; its final answer, or why it failed.
    fn call(&self, call: AgentCall) -> std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>>;
}

/// What an earlier, interrupted run recorded for one run of a task: it completed with this
/// (transformed) output. A task that started and never finished is not recorded: it runs again
/// (at least once per task).
#[derive(Debug, Clone)]
pub(crate) enum Recorded {
    /// It completed with this (transformed) output.
    Output(Value),
}

/// How deep `run: workflow` may nest before a run is taken to be recursing forever.
const MAX_SUBFLOW_DEPTH: u32 = 16;

impl RunOptions {
    /// No secrets, no limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a string secret, `$secret.<name>` in expressions (builder style).
    #[must_use]
    pub fn secret(mut self, name: impl Into<String>, value: &SecretValue) -> Self {
        self.secrets.insert(name.into(), Value::String(value.expose().to_owned()));
        self
    }

    /// Adds a structured secret (e.g. `{ user, password }`) (builder style).
    #[must_use]
    pub fn secret_value(mut self, name: impl Into<String>, value: Value) -> Self {
        self.secrets.insert(name.into(), value);
        self
    }

    /// Resumes an interrupted run: each `(reference, output)` is a task that completed before,
    /// in order. A simple task (`set`, `call`, `run`, `wait`, `emit`, `listen`) whose next
    /// recorded completion exists is not run again: its recorded output is used, and its
    /// `export.as` applied again. Tasks that hold others (`do`, `for`, `fork`, `try`, `switch`)
    /// re-run their control flow, which is pure, down to those simple tasks.
    #[must_use]
    pub fn replaying(mut self, completed: impl IntoIterator<Item = (String, Value)>) -> Self {
        for (reference, output) in completed {
            self.replay.entry(reference).or_default().push_back(Recorded::Output(output));
        }
        self
    }

    /// Makes a workflow available to `run: workflow` tasks naming `name` (builder style). The
    /// interpreter never reads a backend; its caller loads what may be run.
    #[must_use]
    pub fn workflow(mut self, name: impl Into<String>, workflow: dsl::Workflow) -> Self {
        self.workflows.insert(name.into(), workflow);
        self
    }

    /// The options for a `run: workflow` task at `reference`: the same secrets and workflows,
    /// one level deeper, and the recorded completions under that task, re-rooted.
    pub(crate) fn for_subflow(
        &self,
        reference: &str,
        replay: HashMap<String, VecDeque<Recorded>>,
    ) -> Result<Self, WorkflowError> {
        if self.depth >= MAX_SUBFLOW_DEPTH {
            return Err(WorkflowError::runtime(
                format!(
                    "`run: workflow` nests more than {MAX_SUBFLOW_DEPTH} levels deep; a workflow probably runs itself"
                ),
                reference,
            ));
        }
        Ok(Self {
            secrets: self.secrets.clone(),
            timeout: None,
            instance_id: self.instance_id.clone(),
            replay,
            workflows: self.workflows.clone(),
            depth: self.depth + 1,
            bus: self.bus.clone(),
            agents: self.agents.clone(),
        })
    }

    /// Runs on `bus`, so events from outside (signals) reach its `listen` tasks (builder style).
    #[must_use]
    pub fn events(mut self, bus: Arc<EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Tells nested runs apart in keys built from task references (`run: workflow` re-roots them).
    pub(crate) fn depth_label(&self) -> String {
        if self.depth == 0 { String::new() } else { format!("{}", self.depth) }
    }

    /// Runs `call: agent` tasks with `caller` (builder style).
    #[must_use]
    pub fn agents(mut self, caller: Arc<dyn AgentCaller>) -> Self {
        self.agents = Some(caller);
        self
    }

    /// Limits the run's duration (builder style).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A redactor masking every string inside the secrets, for whatever records events or
    /// outputs (a workflow may copy a secret into its data).
    pub fn redactor(&self) -> Redactor {
        fn strings(value: &Value, out: &mut Vec<SecretValue>) {
            match value {
                Value::String(text) => out.push(SecretValue::new(text.clone())),
                Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
                Value::Object(map) => map.values().for_each(|item| strings(item, out)),
                _ => {}
            }
        }
        let mut values = Vec::new();
        self.secrets.values().for_each(|value| strings(value, &mut values));
        Redactor::new(values)
    }
}

impl fmt::Debug for RunOptions {
    /// Secret names only, never their values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("instance_id", &self.instance_id)
            .field("replaying", &self.replay.values().map(VecDeque::len).sum::<usize>())
            .field("workflows", &self.workflows.keys().collect::<Vec<_>>())
            .field("depth", &self.depth)
            .field("events", &self.bus.is_some())
            .field("agents", &self.agents.is_some())
            .finish()
    }
}

/// Checks `input` against the workflow's `input.schema`, as the run would first: so a caller
/// can refuse bad input before it records an execution.
///
/// # Errors
/// The input does not match, or the schema cannot be used.
pub fn check_input(workflow: &dsl::Workflow, input: &Value) -> Result<(), WorkflowError> {
    match workflow.input.as_ref().and_then(|input| input.schema.as_ref()) {
        Some(schema) => interpreter::validate(schema, input, "/input/schema"),
        None => Ok(()),
    }
}

/// Runs `workflow` on `input` and returns its output, reporting task transitions to
/// `observer`. Dropping the future cancels the run (between two awaits).
///
/// # Errors
/// The error that faulted the workflow: raised by a task and not caught, an expression that
/// failed, an unsupported task kind, or a timeout.
pub async fn run(
    workflow: &dsl::Workflow,
    input: Value,
    options: &RunOptions,
    observer: &mut dyn Observer,
) -> Result<Value, WorkflowError> {
    let workflow_timeout = match &workflow.timeout {
        None => None,
        Some(TimeoutOrReference::Timeout(timeout)) => Some(&timeout.after),
        Some(TimeoutOrReference::Reference(name)) => {
            let timeout = workflow.use_.as_ref().and_then(|uses| uses.timeouts.get(name)).ok_or_else(|| {
                WorkflowError::configuration(format!("no timeout named \"{name}\" in use.timeouts"), "/timeout")
            })?;
            Some(&timeout.after)
        }
    };
    let workflow_timeout = workflow_timeout
        .map(duration::literal)
        .transpose()
        .map_err(|error| WorkflowError::configuration(error, "/timeout"))?;
    let limit = match (workflow_timeout, options.timeout) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let runner = interpreter::Runner::new(workflow, &input, options, observer);
    let running = runner.run(input);
    match limit {
        None => running.await,
        Some(limit) => tokio::time::timeout(limit, running).await.unwrap_or_else(|_| {
            Err(WorkflowError::timeout(format!("the workflow did not complete within {limit:?}"), "/timeout"))
        }),
    }
}

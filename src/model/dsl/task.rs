//! The recursive core of the DSL: the [`Task`] enum, task lists, and every task that holds a
//! task list — `do`, `for`, `fork`, `try` and its `catch`, `listen` with its `foreach`, and
//! `call: asyncapi` with its subscription's `foreach`. These types contain each other, so they
//! live together; the leaf kinds (the other calls, `run`, `emit`, `set`, `switch`, `raise`,
//! `wait`) have files of their own that import only `base.rs`. Dispatch on a task's kind is in
//! `dispatch.rs`, walking in `walk.rs`.

// Doc comments are the JSON Schema descriptions editors show: product names (OAuth2, OpenAPI,
// AsyncAPI, CloudEvents) are written as prose, not code.
#![allow(clippy::doc_markdown, reason = "doc comments double as schema descriptions")]

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::auth::ReferenceableAuthenticationPolicy;
use super::base::TaskBase;
use super::call::{
    AsyncApiMessageConsumptionPolicy, AsyncApiOutboundMessage, AsyncApiProtocol, AsyncApiServer, CallA2a, CallAgent,
    CallFunction, CallGrpc, CallHttp, CallMcp, CallOpenApi, call_discriminator,
};
use super::data::RetryPolicyOrReference;
use super::data::{Export, ExternalResource, Output};
use super::event::{EmitTask, ListenConfiguration};
use super::flow::{CatchErrors, ForLoop, RaiseTask, SetTask, SwitchTask, WaitTask};
use super::run::RunTask;
use super::support::{self, single_entry_map};

/// A unit of work; which kind is given by the property naming it (`call`, `do`, `for`, …).
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Calls a service or function.
    Call(CallTask),
    /// Runs tasks in sequence.
    Do(DoTask),
    /// Publishes an event.
    Emit(EmitTask),
    /// Runs tasks for each item of a collection.
    For(ForTask),
    /// Runs branches concurrently.
    Fork(ForkTask),
    /// Waits for events.
    Listen(ListenTask),
    /// Raises an error.
    Raise(RaiseTask),
    /// Runs a container, script, shell command or workflow.
    Run(RunTask),
    /// Sets data.
    Set(SetTask),
    /// Picks what runs next from conditions.
    Switch(SwitchTask),
    /// Runs tasks and handles their errors.
    Try(TryTask),
    /// Pauses.
    Wait(WaitTask),
}

/// A named task, written as a single-key map `{name: task}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskItem {
    /// The task's name, unique within its list.
    pub name: String,
    /// The task.
    pub task: Task,
}
single_entry_map!(TaskItem, task: Task, "task", "A named task: a map with a single key, the task name.");

/// A list of named tasks, run in order; written as a list of single-key maps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct TaskList(pub Vec<TaskItem>);

impl TaskList {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends a named task (builder style).
    #[must_use]
    pub fn push(mut self, name: impl Into<String>, task: Task) -> Self {
        self.0.push(TaskItem { name: name.into(), task });
        self
    }

    /// The number of tasks in the list (not counting nested ones).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list has no task.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tasks, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, TaskItem> {
        self.0.iter()
    }

    /// The first task with this name, if any.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Task> {
        self.0.iter().find(|item| item.name == name).map(|item| &item.task)
    }
}

impl<'a> IntoIterator for &'a TaskList {
    type Item = &'a TaskItem;
    type IntoIter = std::slice::Iter<'a, TaskItem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<TaskItem> for TaskList {
    fn from_iter<I: IntoIterator<Item = TaskItem>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Runs a list of tasks in sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct DoTask {
    /// The tasks to run in order.
    #[serde(rename = "do")]
    pub do_: TaskList,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// Runs a list of tasks for each item of a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ForTask {
    /// The loop: the collection and the variables holding the item and its index.
    #[serde(rename = "for")]
    pub for_: ForLoop,
    /// A runtime expression that must hold, if set, for the iteration to continue.
    #[serde(default, rename = "while", skip_serializing_if = "Option::is_none")]
    pub while_: Option<String>,
    /// The tasks to run for each item.
    #[serde(rename = "do")]
    pub do_: TaskList,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// Runs branches concurrently, optionally racing them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ForkTask {
    /// The branches and how they combine.
    pub fork: ForkConfiguration,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The branches of a fork.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForkConfiguration {
    /// The tasks to run concurrently, one branch each.
    pub branches: TaskList,
    /// Whether branches race, the first to finish setting the output; defaults to `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compete: Option<bool>,
}

/// Runs tasks and handles the errors they raise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct TryTask {
    /// The tasks to attempt.
    #[serde(rename = "try")]
    pub try_: TaskList,
    /// Which errors to catch and how to handle them.
    pub catch: Catch,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// Which errors to catch and how to handle them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Catch {
    /// A static filter on the errors to catch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<CatchErrors>,
    /// The variable holding the caught error; defaults to `error`.
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub as_: Option<String>,
    /// A runtime expression deciding whether to catch the filtered error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// A runtime expression deciding whether not to catch the filtered error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except_when: Option<String>,
    /// The retry policy, if any, for caught errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicyOrReference>,
    /// The tasks to run when an error is caught.
    #[serde(default, rename = "do", skip_serializing_if = "TaskList::is_empty")]
    pub do_: TaskList,
}

/// Waits for one or more events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ListenTask {
    /// The configuration of the listener.
    pub listen: ListenConfiguration,
    /// The iterator, if any, run for each consumed event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreach: Option<SubscriptionIterator>,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The tasks run for each event or message consumed by a subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionIterator {
    /// The variable holding the current item; defaults to `item`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The variable holding the index of the current item; defaults to `index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The tasks to run for each consumed item.
    #[serde(default, rename = "do", skip_serializing_if = "TaskList::is_empty")]
    pub do_: TaskList,
    /// How each item's output is transformed and validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    /// How each item updates the workflow context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Export>,
}

/// Calls a service or function; the value of `call` selects the kind of call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallTask {
    /// `call: asyncapi`: an operation described by an AsyncAPI document.
    AsyncApi(CallAsyncApi),
    /// `call: grpc`: a gRPC method.
    Grpc(CallGrpc),
    /// `call: http`: an HTTP request.
    Http(CallHttp),
    /// `call: openapi`: an operation described by an OpenAPI document.
    OpenApi(CallOpenApi),
    /// `call: a2a`: an A2A (agent-to-agent) JSON-RPC method.
    A2a(CallA2a),
    /// `call: mcp`: a Model Context Protocol method.
    Mcp(CallMcp),
    /// `call: agent` (Stigmer extension): sends a message to a Stigmer `Agent` resource.
    Agent(CallAgent),
    /// Any other `call`: a custom or cataloged function, with free-form arguments.
    Function(CallFunction),
}

/// `call: asyncapi`: an operation described by an AsyncAPI document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, transform = CallAsyncApi::add_call_property)]
pub struct CallAsyncApi {
    /// The operation to call.
    pub with: AsyncApiArguments,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The arguments of an AsyncAPI call: `operation` or `channel`, and `message` or `subscription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = asyncapi_alternatives)]
pub struct AsyncApiArguments {
    /// The AsyncAPI document defining the operation.
    pub document: ExternalResource,
    /// The channel to use (AsyncAPI v2.6.0 documents only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The operation to call (AsyncAPI v3.0.0 documents only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The server to call the operation on; by default the first matching the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<AsyncApiServer>,
    /// The protocol used to select the server, when `server` is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<AsyncApiProtocol>,
    /// The message to publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<AsyncApiOutboundMessage>,
    /// The subscription consuming messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<AsyncApiSubscription>,
    /// The authentication policy, if any, to call the operation with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Box<ReferenceableAuthenticationPolicy>>,
}

/// Requires `operation` or `channel`, and `message` or `subscription` (as the official schema does).
fn asyncapi_alternatives(schema: &mut schemars::Schema) {
    support::require_one_of(
        schema,
        &[
            &["document", "operation", "message"],
            &["document", "operation", "subscription"],
            &["document", "channel", "message"],
            &["document", "channel", "subscription"],
        ],
    );
}

/// A subscription to the messages of an AsyncAPI operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AsyncApiSubscription {
    /// A runtime expression, if any, filtering consumed messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "support::runtime_expression_schema")]
    pub filter: Option<String>,
    /// How many messages, or for how long, to consume.
    pub consume: AsyncApiMessageConsumptionPolicy,
    /// The iterator, if any, run for each consumed message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreach: Option<SubscriptionIterator>,
}

call_discriminator! { CallAsyncApi = "asyncapi" }

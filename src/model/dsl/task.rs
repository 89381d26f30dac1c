//! Tasks: the [`Task`] enum and its kind dispatch, the properties every task has ([`TaskBase`]),
//! task lists, the recursive walker used by validation, and constructors for building tasks in
//! code.

// Doc comments are the JSON Schema descriptions editors show: product names (OAuth2, OpenAPI,
// AsyncAPI, CloudEvents) are written as prose, not code.
#![allow(clippy::doc_markdown, reason = "doc comments double as schema descriptions")]

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::call::{CallAgent, CallAgentArguments, CallHttp, CallTask, HttpArguments};
use super::data::{Endpoint, Export, Input, Output, TimeoutOrReference};
use super::event::{EmitTask, ListenTask};
use super::flow::{DoTask, FlowDirective, ForTask, ForkTask, RaiseTask, SetTask, SwitchTask, TryTask, WaitTask};
use super::run::RunTask;
use super::support::{self, single_entry_map};

/// The task kinds, in the order they are listed in error messages.
pub const TASK_KINDS: [&str; 12] =
    ["call", "do", "emit", "for", "fork", "listen", "raise", "run", "set", "switch", "try", "wait"];

/// The message of the error raised for a task without any kind property.
pub const NO_KIND_MESSAGE: &str =
    "task has no kind: expected one of call, do, emit, for, fork, listen, raise, run, set, switch, try, wait";

/// The properties every task has.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskBase {
    /// A runtime expression deciding whether the task runs; when false it is skipped.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    /// How the task's input is validated and transformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    /// How the task's output is transformed and validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    /// How the task's output updates the workflow context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Export>,
    /// How long the task may run: inline, or the name of a timeout in `use.timeouts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutOrReference>,
    /// What runs after the task; defaults to `continue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<FlowDirective>,
    /// Additional information about the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

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

/// Matches every task kind: `$body` runs with `$task` bound to the payload of every kind but
/// `call`, whose payload (an enum of call kinds) is bound to `$call` for `$call_body`.
macro_rules! each_kind {
    ($value:expr, $task:ident => $body:expr, call $call:ident => $call_body:expr) => {
        match $value {
            Task::Call($call) => $call_body,
            Task::Do($task) => $body,
            Task::Emit($task) => $body,
            Task::For($task) => $body,
            Task::Fork($task) => $body,
            Task::Listen($task) => $body,
            Task::Raise($task) => $body,
            Task::Run($task) => $body,
            Task::Set($task) => $body,
            Task::Switch($task) => $body,
            Task::Try($task) => $body,
            Task::Wait($task) => $body,
        }
    };
}

impl Task {
    /// The properties every task has.
    #[must_use]
    pub fn base(&self) -> &TaskBase {
        each_kind!(self, task => &task.base, call call => call.base())
    }

    /// The properties every task has, for editing.
    pub fn base_mut(&mut self) -> &mut TaskBase {
        each_kind!(self, task => &mut task.base, call call => call.base_mut())
    }

    /// The task's kind, as the property that names it: `call`, `do`, `for`, …
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Call(_) => "call",
            Self::Do(_) => "do",
            Self::Emit(_) => "emit",
            Self::For(_) => "for",
            Self::Fork(_) => "fork",
            Self::Listen(_) => "listen",
            Self::Raise(_) => "raise",
            Self::Run(_) => "run",
            Self::Set(_) => "set",
            Self::Switch(_) => "switch",
            Self::Try(_) => "try",
            Self::Wait(_) => "wait",
        }
    }

    /// The task lists nested directly in this task, each with its JSON pointer relative to the
    /// task: `/do`, `/fork/branches`, `/try`, `/catch/do`, `/foreach/do` (listen) and
    /// `/with/subscription/foreach/do` (AsyncAPI subscriptions), in document order.
    #[must_use]
    pub fn subtasks(&self) -> Vec<(&'static str, &TaskList)> {
        match self {
            Self::Do(task) => vec![("/do", &task.do_)],
            Self::For(task) => vec![("/do", &task.do_)],
            Self::Fork(task) => vec![("/fork/branches", &task.fork.branches)],
            Self::Try(task) => vec![("/try", &task.try_), ("/catch/do", &task.catch.do_)],
            Self::Listen(task) => task.foreach.iter().map(|each| ("/foreach/do", &each.do_)).collect(),
            Self::Call(CallTask::AsyncApi(call)) => call
                .with
                .subscription
                .iter()
                .filter_map(|subscription| subscription.foreach.as_ref())
                .map(|each| ("/with/subscription/foreach/do", &each.do_))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Sets the task's `then` (builder style).
    #[must_use]
    pub fn then(mut self, directive: impl Into<FlowDirective>) -> Self {
        self.base_mut().then = Some(directive.into());
        self
    }

    /// Sets the task's `if` condition: the task runs only if it holds (builder style).
    #[must_use]
    pub fn only_if(mut self, condition: impl Into<String>) -> Self {
        self.base_mut().if_ = Some(condition.into());
        self
    }

    /// A `set` task: `value` must be an object, or a string holding a runtime expression.
    #[must_use]
    pub fn set(value: Value) -> Self {
        Self::Set(SetTask { set: value, base: TaskBase::default() })
    }

    /// A `call: agent` task sending `message` to the `Agent` resource named `agent`.
    #[must_use]
    pub fn call_agent(agent: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Call(CallTask::Agent(CallAgent {
            with: CallAgentArguments::new(agent, message),
            base: TaskBase::default(),
        }))
    }

    /// A `call: http` task sending a `method` request to `endpoint`.
    #[must_use]
    pub fn call_http(method: impl Into<String>, endpoint: impl Into<Endpoint>) -> Self {
        Self::Call(CallTask::Http(CallHttp { with: HttpArguments::new(method, endpoint), base: TaskBase::default() }))
    }

    /// A `do` task running `tasks` in sequence.
    #[must_use]
    pub fn do_(tasks: TaskList) -> Self {
        Self::Do(DoTask { do_: tasks, base: TaskBase::default() })
    }

    /// Reads a task from its properties, dispatching on the kind property present.
    fn from_map(map: Map<String, Value>) -> Result<Self, String> {
        let present: Vec<&str> = TASK_KINDS.iter().copied().filter(|kind| map.contains_key(*kind)).collect();
        let kind = match present.as_slice() {
            [] => return Err(NO_KIND_MESSAGE.to_owned()),
            [kind] => *kind,
            // A `for` task has its subtasks under `do`.
            ["do", "for"] => "for",
            kinds => return Err(format!("task has more than one kind: {}", kinds.join(", "))),
        };
        let input = Value::Object(map.clone());
        let parsed = match kind {
            "call" => CallTask::from_map(map).map(Self::Call),
            "do" => parse(map).map(Self::Do),
            "emit" => parse(map).map(Self::Emit),
            "for" => parse(map).map(Self::For),
            "fork" => parse(map).map(Self::Fork),
            "listen" => parse(map).map(Self::Listen),
            "raise" => parse(map).map(Self::Raise),
            "run" => parse(map).map(Self::Run),
            "set" => parse(map).map(Self::Set),
            "switch" => parse(map).map(Self::Switch),
            "try" => parse(map).map(Self::Try),
            // The last of `TASK_KINDS`.
            _ => parse(map).map(Self::Wait),
        };
        let task = parsed.map_err(|error| error.to_string())?;
        let output = serde_json::to_value(&task).map_err(|error| error.to_string())?;
        support::ensure_nothing_ignored(&input, &output, kind)?;
        Ok(task)
    }
}

/// Reads one kind's struct from a task's properties.
fn parse<T: serde::de::DeserializeOwned>(map: Map<String, Value>) -> Result<T, serde_json::Error> {
    serde_json::from_value(Value::Object(map))
}

impl Serialize for Task {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        each_kind!(self, task => task.serialize(serializer), call call => call.serialize(serializer))
    }
}

impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let map = Map::<String, Value>::deserialize(deserializer)?;
        Self::from_map(map).map_err(D::Error::custom)
    }
}

impl JsonSchema for Task {
    fn schema_name() -> Cow<'static, str> {
        "Task".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Task").into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        support::schema_from(serde_json::json!({
            "description": "A unit of work; which kind is given by the property naming it (`call`, `do`, `for`, …).",
            "oneOf": [
                generator.subschema_for::<CallTask>(),
                generator.subschema_for::<DoTask>(),
                generator.subschema_for::<EmitTask>(),
                generator.subschema_for::<ForTask>(),
                generator.subschema_for::<ForkTask>(),
                generator.subschema_for::<ListenTask>(),
                generator.subschema_for::<RaiseTask>(),
                generator.subschema_for::<RunTask>(),
                generator.subschema_for::<SetTask>(),
                generator.subschema_for::<SwitchTask>(),
                generator.subschema_for::<TryTask>(),
                generator.subschema_for::<WaitTask>(),
            ]
        }))
    }
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

/// One task met while walking a document, with where it sits.
#[derive(Debug, Clone)]
pub struct TaskVisit<'a> {
    /// The JSON pointer of the task object, e.g. `/do/0/greet` (after the base pointer given).
    pub pointer: String,
    /// The task's name.
    pub name: &'a str,
    /// The task.
    pub task: &'a Task,
    /// The list the task is in (the scope of its `then` targets).
    pub siblings: &'a TaskList,
}

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

    /// Visits every task recursively, in document order, treating this list as the `do` of the
    /// object at `base_pointer`: the first task's pointer is `{base_pointer}/do/0/{name}`.
    ///
    /// Nested lists are walked right after the task holding them: `do`, `for.do`,
    /// `fork.branches`, `try.try`, `try.catch.do`, `listen.foreach.do` and AsyncAPI
    /// `with.subscription.foreach.do`. Names are escaped per RFC 6901 (`~` → `~0`, `/` → `~1`).
    pub fn walk<'a>(&'a self, base_pointer: &str, visit: &mut dyn FnMut(&TaskVisit<'a>)) {
        self.walk_at(&format!("{base_pointer}/do"), visit);
    }

    /// Like [`walk`](Self::walk), but `list_pointer` is the pointer of this list itself (for
    /// lists not under `do`, e.g. `/use/extensions/0/log/before`).
    pub fn walk_at<'a>(&'a self, list_pointer: &str, visit: &mut dyn FnMut(&TaskVisit<'a>)) {
        for (index, item) in self.0.iter().enumerate() {
            let pointer = format!("{list_pointer}/{index}/{}", crate::model::escape_pointer(&item.name));
            TaskVisit { pointer, name: &item.name, task: &item.task, siblings: self }.walk(visit);
        }
    }
}

/// The list a task outside any list (a function in `use.functions`) is given as its siblings.
pub(crate) static NO_SIBLINGS: TaskList = TaskList(Vec::new());

impl<'a> TaskVisit<'a> {
    /// Visits this task, then the lists nested in it, recursively.
    pub(crate) fn walk(self, visit: &mut dyn FnMut(&TaskVisit<'a>)) {
        visit(&self);
        for (suffix, list) in self.task.subtasks() {
            list.walk_at(&format!("{}{suffix}", self.pointer), visit);
        }
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

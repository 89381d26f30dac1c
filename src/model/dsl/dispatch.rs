//! Dispatch on a task's kind: reading a task from its properties (the kind property present
//! picks the struct, and nothing may be ignored), writing it back, its schema (`oneOf` the
//! kinds), accessors and constructors; and the same for the kinds of `call`.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::base::{FlowDirective, TaskBase};
use super::call::{
    CallA2a, CallAgent, CallAgentArguments, CallFunction, CallGrpc, CallHttp, CallMcp, CallOpenApi, HttpArguments,
};
use super::data::Endpoint;
use super::event::EmitTask;
use super::flow::{RaiseTask, SetTask, SwitchTask, WaitTask};
use super::run::RunTask;
use super::support;
use super::task::{CallAsyncApi, CallTask, DoTask, ForTask, ForkTask, ListenTask, Task, TaskList, TryTask};

/// The task kinds, in the order they are listed in error messages.
pub const TASK_KINDS: [&str; 12] =
    ["call", "do", "emit", "for", "fork", "listen", "raise", "run", "set", "switch", "try", "wait"];

/// The message of the error raised for a task without any kind property.
pub const NO_KIND_MESSAGE: &str =
    "task has no kind: expected one of call, do, emit, for, fork, listen, raise, run, set, switch, try, wait";

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
    /// `/with/subscription/foreach/do` (subscriptions of `call: asyncapi`), in document order.
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

/// For each built-in call kind: its variant, struct and `call` value. Expands the dispatch code
/// (serialization, deserialization, schema, accessors) so it is written once.
macro_rules! builtin_calls {
    ($($variant:ident($ty:ident)),+ $(,)?) => {
        /// Every built-in kind's `call` value, in the order of [`super::call::BUILTIN_CALLS`].
        #[cfg(test)]
        const CALLS: &[&str] = &[$($ty::CALL),+];

        impl CallTask {
            /// The value of `call`: the built-in kind, or the function's name.
            #[must_use]
            pub fn function_name(&self) -> &str {
                match self {
                    $(Self::$variant(_) => $ty::CALL,)+
                    Self::Function(call) => &call.call,
                }
            }

            /// The properties every task has.
            #[must_use]
            pub fn base(&self) -> &TaskBase {
                match self {
                    $(Self::$variant(call) => &call.base,)+
                    Self::Function(call) => &call.base,
                }
            }

            /// The properties every task has, for editing.
            pub fn base_mut(&mut self) -> &mut TaskBase {
                match self {
                    $(Self::$variant(call) => &mut call.base,)+
                    Self::Function(call) => &mut call.base,
                }
            }

            /// Reads a call task from its properties (without the unknown-property check).
            pub(crate) fn from_map(mut map: Map<String, Value>) -> Result<Self, serde_json::Error> {
                use serde::de::Error as _;
                let name = match map.get("call") {
                    Some(Value::String(name)) => name.clone(),
                    Some(other) => {
                        return Err(serde_json::Error::custom(format!(
                            "`call` must be a string, found {}",
                            support::describe(other)
                        )));
                    }
                    None => return Err(serde_json::Error::missing_field("call")),
                };
                match name.as_str() {
                    $(name if name == $ty::CALL => {
                        map.remove("call");
                        serde_json::from_value(Value::Object(map)).map(Self::$variant)
                    })+
                    _ => serde_json::from_value(Value::Object(map)).map(Self::Function),
                }
            }
        }

        impl Serialize for CallTask {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                /// A built-in call with its `call` discriminator first.
                #[derive(Serialize)]
                struct Tagged<'a, T> {
                    call: &'static str,
                    #[serde(flatten)]
                    inner: &'a T,
                }
                match self {
                    $(Self::$variant(call) => Tagged { call: $ty::CALL, inner: call }.serialize(serializer),)+
                    Self::Function(call) => call.serialize(serializer),
                }
            }
        }

        impl JsonSchema for CallTask {
            fn schema_name() -> Cow<'static, str> {
                "CallTask".into()
            }

            fn schema_id() -> Cow<'static, str> {
                concat!(module_path!(), "::CallTask").into()
            }

            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                support::schema_from(serde_json::json!({
                    "description": "Calls a service or function; the value of `call` selects the kind of call.",
                    "oneOf": [
                        $(generator.subschema_for::<$ty>(),)+
                        generator.subschema_for::<CallFunction>(),
                    ]
                }))
            }
        }
    };
}

builtin_calls! {
    AsyncApi(CallAsyncApi),
    Grpc(CallGrpc),
    Http(CallHttp),
    OpenApi(CallOpenApi),
    A2a(CallA2a),
    Mcp(CallMcp),
    Agent(CallAgent),
}

impl<'de> Deserialize<'de> for CallTask {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let input = Value::Object(map.clone());
        let call = Self::from_map(map).map_err(D::Error::custom)?;
        let output = serde_json::to_value(&call).map_err(D::Error::custom)?;
        support::ensure_nothing_ignored(&input, &output, "call").map_err(D::Error::custom)?;
        Ok(call)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_call_names_are_the_kinds_own() {
        assert_eq!(super::CALLS, super::super::call::BUILTIN_CALLS);
    }
}

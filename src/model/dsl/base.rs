//! What every task has: the properties of [`TaskBase`] (`if`, `input`, `output`, `export`,
//! `timeout`, `then`, `metadata`) and the [`FlowDirective`] of `then`. Every task kind imports
//! this file; it imports none of them.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::data::{Export, Input, Output, TimeoutOrReference};
use super::support;

/// The properties every task has.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskBase {
    /// A runtime expression deciding whether the task runs; when false it is skipped.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub if_: Option<String>,
    // This and the next two are boxed: they are rare, and inline they tripled every task's size.
    /// How the task's input is validated and transformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Box<Input>>,
    /// How the task's output is transformed and validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Box<Output>>,
    /// How the task's output updates the workflow context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Box<Export>>,
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

/// What runs after a task: `continue`, `exit`, `end`, or the name of a task in the same list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FlowDirective {
    /// Proceed with the next task in the list (the default).
    Continue,
    /// Complete the current list; in the workflow's top-level `do`, the workflow ends.
    Exit,
    /// End the workflow gracefully.
    End,
    /// Continue at the named task, which must be in the same list.
    Goto(String),
}

impl FlowDirective {
    /// The directive as written in a document.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Continue => "continue",
            Self::Exit => "exit",
            Self::End => "end",
            Self::Goto(task) => task,
        }
    }

    /// The name of the task jumped to, if this directive is a jump.
    #[must_use]
    pub fn target(&self) -> Option<&str> {
        match self {
            Self::Goto(task) => Some(task),
            _ => None,
        }
    }
}

impl fmt::Display for FlowDirective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for FlowDirective {
    fn from(text: &str) -> Self {
        match text {
            "continue" => Self::Continue,
            "exit" => Self::Exit,
            "end" => Self::End,
            task => Self::Goto(task.to_owned()),
        }
    }
}

impl From<String> for FlowDirective {
    fn from(text: String) -> Self {
        match text.as_str() {
            "continue" | "exit" | "end" => Self::from(text.as_str()),
            _ => Self::Goto(text),
        }
    }
}

impl Serialize for FlowDirective {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FlowDirective {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

impl JsonSchema for FlowDirective {
    fn schema_name() -> Cow<'static, str> {
        "FlowDirective".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::FlowDirective").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        support::schema_from(serde_json::json!({
            "description": "What runs next: `continue` (the default), `exit`, `end`, or the name of a task in the same list.",
            "anyOf": [
                { "type": "string", "enum": ["continue", "exit", "end"] },
                { "type": "string" },
            ]
        }))
    }
}

//! Control flow that holds no tasks: the `switch`, `raise`, `set` and `wait` tasks, a `for`
//! loop's iteration, and the error filters of `catch`. The tasks that hold task lists (`do`,
//! `for`, `fork`, `try`) are in `task.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::base::{FlowDirective, TaskBase};
use super::data::{Duration, ErrorOrReference};
use super::support::{self, single_entry_map};

/// The definition of a loop over a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForLoop {
    /// The variable holding the current item; defaults to `item`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub each: Option<String>,
    /// A runtime expression giving the collection to iterate over.
    #[serde(rename = "in")]
    pub in_: String,
    /// The variable holding the index of the current item; defaults to `index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// Picks what runs next from the first matching case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct SwitchTask {
    /// The cases, tried in order.
    #[schemars(length(min = 1))]
    pub switch: Vec<SwitchItem>,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// A named switch case, written as a single-key map `{name: case}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchItem {
    /// The case's name.
    pub name: String,
    /// The case.
    pub case: SwitchCase,
}
single_entry_map!(SwitchItem, case: SwitchCase, "case", "A named switch case: a map with a single key, the case name.");

/// A switch case: a condition and the flow directive to follow when it matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SwitchCase {
    /// A runtime expression deciding whether the case matches; unset for the default case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// The flow directive to follow when the case matches.
    pub then: FlowDirective,
}

/// A static filter on the errors to catch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatchErrors {
    /// The values caught errors must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<ErrorFilter>,
}

/// Static values an error must have to be caught.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = support::non_empty_object)]
pub struct ErrorFilter {
    /// The error type to match.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The error status to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The error instance to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The error title to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The error details to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// Raises an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct RaiseTask {
    /// The error to raise.
    pub raise: RaiseConfiguration,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The error a `raise` task raises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RaiseConfiguration {
    /// The error: inline, or the name of an error declared in `use.errors`.
    pub error: ErrorOrReference,
}

/// Sets data: an object whose values may be runtime expressions, or a single runtime expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct SetTask {
    /// The data to set: a non-empty object, or a runtime expression string.
    #[serde(deserialize_with = "support::deserialize_object_or_string")]
    #[schemars(schema_with = "support::object_or_string_schema")]
    pub set: Value,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// Pauses for a while.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct WaitTask {
    /// How long to wait.
    pub wait: Duration,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn flow_directives_are_strings() {
        for (text, directive) in [
            ("continue", FlowDirective::Continue),
            ("exit", FlowDirective::Exit),
            ("end", FlowDirective::End),
            ("retry", FlowDirective::Goto("retry".to_owned())),
        ] {
            assert_eq!(FlowDirective::from(text), directive);
            assert_eq!(FlowDirective::from(text.to_owned()), directive);
            assert_eq!(serde_json::from_value::<FlowDirective>(json!(text)).unwrap(), directive);
            assert_eq!(serde_json::to_value(&directive).unwrap(), json!(text));
            assert_eq!(directive.to_string(), text);
        }
        assert_eq!(FlowDirective::Goto("x".into()).target(), Some("x"));
        assert_eq!(FlowDirective::Exit.target(), None);
        assert!(serde_json::from_value::<FlowDirective>(json!(1)).is_err());
    }

    #[test]
    fn switch_cases_are_single_key_maps() {
        let value = json!([{ "big": { "when": "${ .n > 1 }", "then": "end" } }, { "default": { "then": "continue" } }]);
        let cases: Vec<SwitchItem> = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(cases[0].name, "big");
        assert_eq!(cases[1].case.then, FlowDirective::Continue);
        assert_eq!(serde_json::to_value(&cases).unwrap(), value);
        let error = serde_json::from_value::<SwitchItem>(json!({ "a": { "then": "end" }, "b": { "then": "end" } }));
        assert!(error.unwrap_err().to_string().contains("found `a` and `b`"));
        let error = serde_json::from_value::<SwitchItem>(json!({}));
        assert!(error.unwrap_err().to_string().contains("found an empty map"));
    }

    #[test]
    fn set_takes_an_object_or_an_expression() {
        let task: SetTask = serde_json::from_value(json!({ "set": "${ .x }" })).unwrap();
        assert_eq!(task.set, json!("${ .x }"));
        let error = serde_json::from_value::<SetTask>(json!({ "set": 3 })).unwrap_err();
        assert!(error.to_string().contains("expected an object or a runtime expression string, found a number"));
    }
}

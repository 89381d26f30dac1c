//! Events: the `emit` task, what `listen` listens to (CloudEvents properties, event filters and
//! correlations, consumption strategies). `listen` itself holds tasks (its `foreach`), so it is
//! in `task.rs` with the iterator over consumed events or messages.

// Doc comments are the JSON Schema descriptions editors show: product names (OAuth2, OpenAPI,
// AsyncAPI, CloudEvents) are written as prose, not code.
#![allow(clippy::doc_markdown, reason = "doc comments double as schema descriptions")]

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::base::TaskBase;
use super::support::{self, deserialize_by_key, deserialize_string_or_object};

/// Publishes an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct EmitTask {
    /// The configuration of the event's emission.
    pub emit: EmitConfiguration,
    /// The properties every task has.
    #[serde(flatten)]
    pub base: TaskBase,
}

/// The configuration of an event's emission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmitConfiguration {
    /// The definition of the event to emit.
    pub event: EmitEventDefinition,
}

/// The definition of an event to emit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmitEventDefinition {
    /// The properties of the event to emit; `source` and `type` are required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = require_source_and_type)]
    pub with: Option<EventProperties>,
    /// Additional properties of the event definition, if any.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// Requires `source` and `type` on the event properties of an emitted event.
fn require_source_and_type(schema: &mut schemars::Schema) {
    schema.insert("required".to_owned(), serde_json::json!(["source", "type"]));
}

/// The configuration of a listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenConfiguration {
    /// The event(s) to listen to.
    pub to: EventConsumptionStrategy,
    /// How consumed events are read; defaults to `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<ListenRead>,
}

/// How a listener reads consumed events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ListenRead {
    /// The event's data.
    Data,
    /// The event's envelope, with its context attributes.
    Envelope,
    /// The event's raw data.
    Raw,
}

/// The properties of a CloudEvent, used to emit events and to filter consumed ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventProperties {
    /// The event's unique identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A URI template or runtime expression identifying the context in which the event happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "support::uri_or_expression_schema")]
    pub source: Option<String>,
    /// The type of the event.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// When the event happened: a date-time or a runtime expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The subject of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The content type of `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    /// A URI template or runtime expression identifying the schema `data` adheres to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "support::uri_or_expression_schema")]
    pub dataschema: Option<String>,
    /// The event's payload (when filtering, may be a runtime expression).
    #[serde(default, deserialize_with = "support::deserialize_present", skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// CloudEvents extension attributes, if any.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

/// Selects events by their properties, optionally correlating them with data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventFilter {
    /// The properties filtered events must have (regular expressions and runtime expressions allowed).
    #[schemars(extend("minProperties" = 1))]
    pub with: EventProperties,
    /// The correlations to attempt when filtering events, by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub correlate: IndexMap<String, Correlation>,
}

/// A correlation between an event attribute and data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Correlation {
    /// A runtime expression extracting the correlation value from the filtered event.
    pub from: String,
    /// A constant or runtime expression the extracted value must match; the first value if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
}

/// Which events to consume: all of a list, any of a list, or exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", untagged)]
pub enum EventConsumptionStrategy {
    /// Consume all the listed events.
    All(AllEventConsumptionStrategy),
    /// Consume any of the listed events.
    Any(AnyEventConsumptionStrategy),
    /// Consume a single event.
    One(OneEventConsumptionStrategy),
}
deserialize_by_key!(EventConsumptionStrategy, "an event consumption strategy", ["all" => All, "any" => Any, "one" => One]);

/// Consume all the listed events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllEventConsumptionStrategy {
    /// The events that must all be consumed.
    pub all: Vec<EventFilter>,
}

/// Consume any of the listed events, until a condition holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnyEventConsumptionStrategy {
    /// The events to consume; empty means any event.
    pub any: Vec<EventFilter>,
    /// When to stop listening: a runtime expression or the events to consume; once, if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<AnyEventUntil>,
}

/// When an `any` strategy stops listening.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", untagged)]
pub enum AnyEventUntil {
    /// A runtime expression evaluated after each consumed event.
    Condition(String),
    /// The event(s) whose consumption stops the listener.
    Events(Box<EventConsumptionStrategy>),
}
deserialize_string_or_object!(AnyEventUntil, "until", Condition, Events);

/// Consume a single event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OneEventConsumptionStrategy {
    /// The event to consume.
    pub one: EventFilter,
}

/// Whether `event` has the properties a filter's `with` wants: each attribute equal, or matching
/// it as a whole regular expression, or — for a runtime expression — what `expression` says of
/// the attribute; nested objects match field by field. The runner judges expressions with jq;
/// the backend, routing an event before any run sees it, takes them as matching.
///
/// # Errors
/// What `expression` returned.
pub fn properties_match<E>(
    wanted: &Value,
    event: &Value,
    expression: &mut dyn FnMut(&str, &Value) -> Result<bool, E>,
) -> Result<bool, E> {
    let Value::Object(wanted) = wanted else { return Ok(true) };
    object_matches(wanted, event, expression)
}

fn object_matches<E>(
    wanted: &Map<String, Value>,
    actual: &Value,
    expression: &mut dyn FnMut(&str, &Value) -> Result<bool, E>,
) -> Result<bool, E> {
    for (key, want) in wanted {
        let Some(have) = actual.get(key) else { return Ok(false) };
        let matched = match want {
            Value::String(text) => match crate::expr::enclosed(text) {
                Some(code) => expression(code, have)?,
                None => {
                    want == have
                        || have.as_str().is_some_and(|have| {
                            regex::Regex::new(&format!("^(?:{text})$")).is_ok_and(|pattern| pattern.is_match(have))
                        })
                }
            },
            Value::Object(nested) if have.is_object() => object_matches(nested, have, expression)?,
            _ => want == have,
        };
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

impl EventConsumptionStrategy {
    /// The filters of the strategy, in order.
    #[must_use]
    pub fn filters(&self) -> Vec<&EventFilter> {
        match self {
            Self::All(all) => all.all.iter().collect(),
            Self::Any(any) => any.any.iter().collect(),
            Self::One(one) => vec![&one.one],
        }
    }

    /// Whether `event` may be one of the events it consumes, as far as can be told without
    /// evaluating runtime expressions (which are taken as matching).
    #[must_use]
    pub fn may_consume(&self, event: &Value) -> bool {
        self.filters().into_iter().any(|filter| filter.may_match(event))
    }
}

impl EventFilter {
    /// Whether `event` may match, runtime expressions taken as matching.
    #[must_use]
    pub fn may_match(&self, event: &Value) -> bool {
        let wanted = serde_json::to_value(&self.with).unwrap_or(Value::Null);
        properties_match::<std::convert::Infallible>(&wanted, event, &mut |_, _| Ok(true)).unwrap_or(false)
    }
}

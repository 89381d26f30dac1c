//! Data shapes shared across the DSL: input/output/export filters, schemas, durations, timeouts,
//! endpoints, external resources, errors and retry policies.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::auth::ReferenceableAuthenticationPolicy;
use super::support::{self, deserialize_by_key, deserialize_string_or_object, non_empty_object, pattern_schema};

/// Configures the input of a workflow or task: its schema and an optional transformation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    /// The schema used to describe and validate the raw input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<DataSchema>,
    /// A runtime expression (or object template) used to filter and/or mutate the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectOrExpression>,
}

/// Configures the output of a workflow or task: its schema and an optional transformation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Output {
    /// The schema used to describe and validate the (transformed) output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<DataSchema>,
    /// A runtime expression (or object template) used to filter and/or mutate the output.
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub as_: Option<ObjectOrExpression>,
}

/// Sets the content of the workflow context from a task's transformed output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Export {
    /// The schema used to describe and validate the new context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<DataSchema>,
    /// A runtime expression (or object template) whose result becomes the new context.
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub as_: Option<ObjectOrExpression>,
}

/// A runtime expression, or an object whose values may embed runtime expressions.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", untagged)]
pub enum ObjectOrExpression {
    /// A runtime expression, e.g. `${ .order.pet }`.
    Expression(String),
    /// An object whose values may be runtime expressions.
    Object(Map<String, Value>),
}
deserialize_string_or_object!(ObjectOrExpression, "value", Expression, Object);

/// Describes a data schema: inline or loaded from an external resource.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", untagged)]
pub enum DataSchema {
    /// A schema written inline.
    Inline(InlineSchema),
    /// A schema loaded from an external resource.
    External(ExternalSchema),
}
deserialize_by_key!(DataSchema, "a schema", ["document" => Inline, "resource" => External]);

impl DataSchema {
    /// The schema's format (`json` when unset), optionally versioned as `{format}:{version}`.
    #[must_use]
    pub fn format(&self) -> Option<&str> {
        match self {
            Self::Inline(schema) => schema.format.as_deref(),
            Self::External(schema) => schema.format.as_deref(),
        }
    }
}

/// A schema written inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InlineSchema {
    /// The schema's format; defaults to `json`. A version may be given as `{format}:{version}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The schema's inline definition.
    pub document: Value,
}

/// A schema loaded from an external resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalSchema {
    /// The schema's format; defaults to `json`. A version may be given as `{format}:{version}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The schema's external resource.
    pub resource: ExternalResource,
}

/// A duration: an ISO 8601 literal, a runtime expression producing one, or an object of components.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", untagged)]
pub enum Duration {
    /// An ISO 8601 duration literal (e.g. `PT30S`) or a runtime expression evaluating to one.
    #[schemars(schema_with = "duration_string_schema")]
    Iso8601(String),
    /// A duration given by its components.
    Inline(DurationInline),
}
deserialize_string_or_object!(Duration, "duration", Iso8601, Inline);

impl Duration {
    /// A duration of whole seconds.
    #[must_use]
    pub fn seconds(seconds: u64) -> Self {
        Self::Inline(DurationInline { seconds: Some(seconds), ..DurationInline::default() })
    }
}

/// Schema of the string form of a duration: a runtime expression or an ISO 8601 literal.
fn duration_string_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    support::schema_from(serde_json::json!({
        "oneOf": [
            pattern_schema(support::RUNTIME_EXPRESSION_PATTERN),
            pattern_schema(support::ISO8601_DURATION_PATTERN),
        ]
    }))
}

/// A duration given by its components; at least one must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = non_empty_object)]
pub struct DurationInline {
    /// Number of days, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u64>,
    /// Number of hours, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<u64>,
    /// Number of minutes, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u64>,
    /// Number of seconds, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// Number of milliseconds, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milliseconds: Option<u64>,
}

/// The definition of a timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeout {
    /// The duration after which the workflow or task times out.
    pub after: Duration,
}

/// A timeout: inline, or the name of a timeout declared in `use.timeouts`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", untagged)]
pub enum TimeoutOrReference {
    /// An inline timeout definition.
    Timeout(Timeout),
    /// The name of a timeout declared in `use.timeouts`.
    Reference(String),
}
deserialize_string_or_object!(TimeoutOrReference, "timeout", Reference, Timeout);

/// An endpoint: a URI template or runtime expression, or an object with a URI and authentication.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", untagged)]
pub enum Endpoint {
    /// A URI template (e.g. `https://petstore.swagger.io/v2/pet/{petId}`) or a runtime expression.
    #[schemars(schema_with = "support::uri_or_expression_schema")]
    Uri(String),
    /// An endpoint with its URI and, optionally, the authentication to use.
    Configuration(EndpointConfiguration),
}
deserialize_string_or_object!(Endpoint, "endpoint", Uri, Configuration);

impl Endpoint {
    /// The endpoint's URI (template or runtime expression), whichever form it is written in.
    #[must_use]
    pub fn uri(&self) -> &str {
        match self {
            Self::Uri(uri) => uri,
            Self::Configuration(configuration) => &configuration.uri,
        }
    }
}

impl From<&str> for Endpoint {
    fn from(uri: &str) -> Self {
        Self::Uri(uri.to_owned())
    }
}

impl From<String> for Endpoint {
    fn from(uri: String) -> Self {
        Self::Uri(uri)
    }
}

/// An endpoint written as an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointConfiguration {
    /// The endpoint's URI: a URI template or a runtime expression.
    #[schemars(schema_with = "support::uri_or_expression_schema")]
    pub uri: String,
    /// The authentication policy to use, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Box<ReferenceableAuthenticationPolicy>>,
}

/// An external resource: a document, proto file, script or schema reachable at an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalResource {
    /// The name of the external resource, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The endpoint at which to get the resource.
    pub endpoint: Endpoint,
}

/// An error, described after the Problem Details RFC 7807.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorDefinition {
    /// A URI reference (or runtime expression) that identifies the error type.
    #[serde(rename = "type")]
    #[schemars(schema_with = "support::uri_or_expression_schema")]
    pub type_: String,
    /// The status code generated by the origin for this occurrence of the error.
    pub status: u16,
    /// A JSON pointer (or runtime expression) to the component the error originates from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// A short, human-readable summary of the error (or a runtime expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A human-readable explanation of this occurrence of the error (or a runtime expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An error: inline, or the name of an error declared in `use.errors`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", untagged)]
pub enum ErrorOrReference {
    /// An inline error definition.
    Error(ErrorDefinition),
    /// The name of an error declared in `use.errors`.
    Reference(String),
}
deserialize_string_or_object!(ErrorOrReference, "error", Reference, Error);

/// A retry policy: when to retry a failed task, how long to wait and when to give up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// A runtime expression deciding whether to retry, in a given context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// A runtime expression deciding whether not to retry, in a given context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except_when: Option<String>,
    /// The duration to wait between retry attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// The backoff strategy to use, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<RetryBackoff>,
    /// The limits, if any, of the retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<RetryLimit>,
    /// The randomness, if any, added to the delay between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<RetryJitter>,
}

/// A retry policy: inline, or the name of a policy declared in `use.retries`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", untagged)]
pub enum RetryPolicyOrReference {
    /// An inline retry policy.
    Policy(RetryPolicy),
    /// The name of a retry policy declared in `use.retries`.
    Reference(String),
}
deserialize_string_or_object!(RetryPolicyOrReference, "retry policy", Reference, Policy);

/// The backoff strategy of a retry policy; its configuration object is free-form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RetryBackoff {
    /// A constant backoff.
    Constant(Map<String, Value>),
    /// An exponential backoff.
    Exponential(Map<String, Value>),
    /// A linear backoff.
    Linear(Map<String, Value>),
}

/// The limits of a retry policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryLimit {
    /// Limits on the attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<RetryLimitAttempt>,
    /// The duration limit, if any, for all retry attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

/// Limits on retry attempts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryLimitAttempt {
    /// The maximum number of retry attempts, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The maximum duration of each retry attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

/// The range of the random jitter added to the delay between retry attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryJitter {
    /// The minimum duration of the jitter range.
    pub from: Duration,
    /// The maximum duration of the jitter range.
    pub to: Duration,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn string_or_object_shapes_dispatch_on_the_json_type() {
        let duration: Duration = serde_json::from_value(json!("PT1M")).unwrap();
        assert_eq!(duration, Duration::Iso8601("PT1M".into()));
        let duration: Duration = serde_json::from_value(json!({ "seconds": 3 })).unwrap();
        assert_eq!(duration, Duration::seconds(3));
        let error = serde_json::from_value::<Duration>(json!(5)).unwrap_err();
        assert_eq!(error.to_string(), "invalid duration: expected a string or an object, found a number");
        // The error of the matching shape is kept.
        let error = serde_json::from_value::<Duration>(json!({ "secs": 3 })).unwrap_err();
        assert!(error.to_string().contains("unknown field `secs`"), "{error}");

        let endpoint: Endpoint = serde_json::from_value(json!({ "uri": "https://x.example" })).unwrap();
        assert_eq!(endpoint.uri(), "https://x.example");
        assert_eq!(Endpoint::from("https://y.example").uri(), "https://y.example");
        let timeout: TimeoutOrReference = serde_json::from_value(json!("short")).unwrap();
        assert_eq!(timeout, TimeoutOrReference::Reference("short".into()));
        let error: ErrorOrReference =
            serde_json::from_value(json!({ "type": "https://e.example", "status": 500 })).unwrap();
        assert!(matches!(error, ErrorOrReference::Error(ErrorDefinition { status: 500, .. })));
    }

    #[test]
    fn schemas_are_inline_or_external() {
        let schema: DataSchema =
            serde_json::from_value(json!({ "format": "json", "document": { "type": "object" } })).unwrap();
        assert_eq!(schema.format(), Some("json"));
        assert!(matches!(schema, DataSchema::Inline(_)));
        let schema: DataSchema =
            serde_json::from_value(json!({ "resource": { "endpoint": "https://s.example" } })).unwrap();
        assert!(matches!(schema, DataSchema::External(_)));
        let error = serde_json::from_value::<DataSchema>(json!({ "format": "json" })).unwrap_err();
        assert_eq!(error.to_string(), "a schema must have one of the properties `document`, `resource`");
    }

    #[test]
    fn retry_backoff_is_tagged_by_its_strategy() {
        let policy: RetryPolicyOrReference =
            serde_json::from_value(json!({ "backoff": { "exponential": {} }, "limit": { "attempt": { "count": 5 } } }))
                .unwrap();
        let RetryPolicyOrReference::Policy(policy) = policy else { panic!("not inline") };
        assert_eq!(policy.backoff, Some(RetryBackoff::Exponential(Map::new())));
        assert_eq!(serde_json::to_value(&policy).unwrap()["backoff"], json!({ "exponential": {} }));
    }
}

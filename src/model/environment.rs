//! `Environment`: named configuration values and secret references, bound to instances.
//! The same shape declares what an agent, MCP server or workflow needs (`envSpec`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::Kind;
use super::resource::{Resource, ResourceSpec};

/// An `Environment` resource.
pub type Environment = Resource<EnvironmentSpec>;

/// Configuration values, keyed by variable name (`OPENAI_API_KEY`, `REGION`).
///
/// In an `Environment` each entry provides a value or a secret reference; in an `envSpec` each
/// entry declares a variable the resource needs, with an optional default `value` (no value
/// means the variable is required at run time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// What this environment is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The variables, in the order written.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub data: IndexMap<String, EnvironmentValue>,
}

/// One variable: a plain value, a reference to a stored secret, or (in an `envSpec`) a
/// declaration with an optional default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentValue {
    /// The value (a default, in an `envSpec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Name of a secret in the backend's encrypted store that provides the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
    /// Marks the value as secret: it is moved to the secret store on apply and masked in output.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_secret: bool,
    /// What the variable is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ResourceSpec for EnvironmentSpec {
    const KIND: Kind = Kind::Environment;
}

impl EnvironmentSpec {
    /// An empty environment.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a plain value.
    #[must_use]
    pub fn value(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(key.into(), EnvironmentValue { value: Some(value.into()), ..EnvironmentValue::default() });
        self
    }

    /// Adds a variable whose value comes from the secret named `secret`.
    #[must_use]
    pub fn secret_ref(mut self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.data
            .insert(key.into(), EnvironmentValue { secret_ref: Some(secret.into()), ..EnvironmentValue::default() });
        self
    }

    /// Declares a required variable (for an `envSpec`).
    #[must_use]
    pub fn require(mut self, key: impl Into<String>, description: impl Into<String>) -> Self {
        self.data.insert(
            key.into(),
            EnvironmentValue { description: Some(description.into()), ..EnvironmentValue::default() },
        );
        self
    }
}

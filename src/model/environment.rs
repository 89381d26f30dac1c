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

/// A variable a resource needs, in Stigmer's `env` shape: an `Agent`'s or `McpServer`'s `spec.env`
/// maps each variable's name to one of these. An environment attached to an instance, or
/// `--env`/`--secret`, gives the value; without one the default is used, and a variable that is
/// neither optional nor defaulted is an error when the agent runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VariableSpec {
    /// What the variable is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its value is a secret: masked in everything printed and recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_secret: bool,
    /// The resource works without it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// The value used when no environment gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

impl VariableSpec {
    /// Whether a run cannot start without a value for it.
    #[must_use]
    pub fn is_required(&self) -> bool {
        !self.optional && self.default_value.is_none()
    }
}

/// The secret an inline value (`{value, isSecret: true}`) of `environment`'s `key` is stored as:
/// validation checks the name, apply stores the value under it.
#[must_use]
pub fn inline_secret_name(environment: &str, key: &str) -> String {
    format!("{environment}.{key}")
}

/// One variable a run declares it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declaration {
    /// The resource that declared it first (`agent/triage`, `mcpserver/tickets`).
    pub declared_by: String,
    /// The value used when nothing else gives one.
    pub default: Option<String>,
    /// Its value is secret wherever it comes from: masked like a stored secret.
    pub secret: bool,
    /// The run cannot start without a value.
    pub required: bool,
    /// What it is for, for the error that names it missing.
    pub description: Option<String>,
}

/// The variables a run declares, in the order first declared: an agent's or workflow's
/// `envSpec` and `env`, then those of the MCP servers it uses. The first declaration of a name
/// wins, so an agent can give a server's variable its own default. Validation and the runner
/// both read them from here, so a warning and a run's error never disagree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declarations {
    /// By name.
    pub entries: IndexMap<String, Declaration>,
}

impl Declarations {
    /// Adds what `by` declares in an `envSpec`: an entry with a `value` has that default; one
    /// without is required.
    pub fn env_spec(&mut self, by: &str, spec: Option<&EnvironmentSpec>) -> &mut Self {
        for (key, entry) in spec.iter().flat_map(|spec| spec.data.iter()) {
            self.entries.entry(key.clone()).or_insert_with(|| Declaration {
                declared_by: by.to_owned(),
                default: entry.value.clone(),
                secret: entry.is_secret,
                required: entry.value.is_none(),
                description: entry.description.clone(),
            });
        }
        self
    }

    /// Adds what `by` declares in Stigmer's `env`: name → description, secret, optional, default.
    pub fn env(&mut self, by: &str, env: &IndexMap<String, VariableSpec>) -> &mut Self {
        for (key, variable) in env {
            self.entries.entry(key.clone()).or_insert_with(|| Declaration {
                declared_by: by.to_owned(),
                default: variable.default_value.clone(),
                secret: variable.is_secret,
                required: variable.is_required(),
                description: variable.description.clone(),
            });
        }
        self
    }

    /// The variables a run cannot start without, in declaration order.
    pub fn required(&self) -> impl Iterator<Item = (&str, &Declaration)> {
        self.entries.iter().filter(|(_, declaration)| declaration.required).map(|(key, d)| (key.as_str(), d))
    }
}

impl ResourceSpec for EnvironmentSpec {
    const KIND: Kind = Kind::Environment;
}

impl EnvironmentSpec {
    /// Whether the environment gives `key` a value (plain, or by secret reference).
    #[must_use]
    pub fn provides(&self, key: &str) -> bool {
        self.data.get(key).is_some_and(|entry| entry.value.is_some() || entry.secret_ref.is_some())
    }

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

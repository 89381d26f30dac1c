//! The envelope every manifest shares, the trait each kind's spec implements, and the dynamic
//! form for documents whose kind is only known at run time.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::kind::Kind;
use super::meta::{API_VERSION, ObjectMeta};
use super::reference::Reference;

/// What every kind's `spec` type provides.
pub trait ResourceSpec: Serialize + DeserializeOwned + JsonSchema + Clone + PartialEq {
    /// The kind this spec belongs to.
    const KIND: Kind;

    /// References this spec makes to other resources, with JSON pointers relative to the
    /// manifest root (so `/spec/...`).
    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }
}

/// A typed resource: `apiVersion`, `kind`, `metadata`, `spec` and server-owned `status`.
///
/// ```
/// use stigmer::model::{Agent, AgentSpec};
/// let agent = Agent::new("support-bot", AgentSpec::new("Answer support questions."));
/// assert_eq!(agent.kind(), stigmer::model::Kind::Agent);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Resource<S> {
    /// Name, organization, labels and annotations.
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: S,
    /// Server-owned observed state; accepted in input and ignored, never diffed.
    pub status: Option<serde_json::Value>,
}

impl<S: ResourceSpec> Resource<S> {
    /// A resource with a name and a spec.
    #[must_use]
    pub fn new(name: impl Into<String>, spec: S) -> Self {
        Self { metadata: ObjectMeta::named(name), spec, status: None }
    }

    /// Adds a label.
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.labels.insert(key.into(), value.into());
        self
    }

    /// Adds an annotation.
    #[must_use]
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.annotations.insert(key.into(), value.into());
        self
    }

    /// The resource's kind.
    #[must_use]
    pub fn kind(&self) -> Kind {
        S::KIND
    }

    /// The resource's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The address people type and read: `agent/support-bot`.
    #[must_use]
    pub fn address(&self) -> String {
        format!("{}/{}", S::KIND.cli_name(), self.name())
    }

    /// The manifest as YAML, exactly as `export` writes it.
    ///
    /// # Errors
    /// Fails only if the spec holds a value YAML cannot represent.
    pub fn to_yaml(&self) -> Result<String, serde_saphyr::ser_error::Error> {
        serde_saphyr::to_string(self)
    }
}

/// The envelope as it is written, for (de)serialization.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Envelope<S> {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<serde_json::Value>,
}

impl<S: ResourceSpec> Serialize for Resource<S> {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        Envelope {
            api_version: API_VERSION.to_owned(),
            kind: S::KIND.as_str().to_owned(),
            metadata: self.metadata.clone(),
            spec: &self.spec,
            status: self.status.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de, S: ResourceSpec> Deserialize<'de> for Resource<S> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let envelope = Envelope::<S>::deserialize(deserializer)?;
        if envelope.api_version != API_VERSION {
            return Err(serde::de::Error::custom(format!(
                "apiVersion is \"{}\"; expected \"{API_VERSION}\"",
                envelope.api_version
            )));
        }
        if envelope.kind != S::KIND.as_str() {
            return Err(serde::de::Error::custom(format!("kind is \"{}\"; expected \"{}\"", envelope.kind, S::KIND)));
        }
        Ok(Self { metadata: envelope.metadata, spec: envelope.spec, status: envelope.status })
    }
}

impl<S: ResourceSpec> JsonSchema for Resource<S> {
    fn schema_name() -> Cow<'static, str> {
        S::KIND.as_str().into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let spec = generator.subschema_for::<S>();
        let metadata = generator.subschema_for::<ObjectMeta>();
        let kind = S::KIND.as_str();
        json_schema!({
            "type": "object",
            "title": kind,
            "description": format!("A stigmer {kind} manifest."),
            "additionalProperties": false,
            "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {
                "apiVersion": {"const": API_VERSION, "description": "Always `agentic.stigmer.ai/v1`."},
                "kind": {"const": kind, "description": "The kind of resource."},
                "metadata": metadata,
                "spec": spec,
                "status": {"type": "object", "description": "Server-owned observed state; ignored in input."}
            }
        })
    }
}

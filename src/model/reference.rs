//! References between resources: by name, or Stigmer's long reference object.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::kind::Kind;

/// A reference to another resource of the same organization.
///
/// Written as a plain name (`calculator`), or as Stigmer's reference object
/// `{kind, slug | name, org, scope, version}`; `export` writes the plain name unless more is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceRef {
    /// Name of the referenced resource.
    pub name: String,
    /// The kind the author says it is; checked against the kind the field expects.
    pub kind: Option<String>,
    /// Organization, when not the referrer's own.
    pub org: Option<String>,
    /// Stigmer's visibility scope (`organization`, `platform`); kept as written.
    pub scope: Option<String>,
    /// A version or tag to pin (skills).
    pub version: Option<String>,
}

impl ResourceRef {
    /// A reference by name only.
    #[must_use]
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into(), kind: None, org: None, scope: None, version: None }
    }

    /// Whether only the name is set, so the short form says everything.
    #[must_use]
    pub fn is_plain(&self) -> bool {
        self.kind.is_none() && self.org.is_none() && self.scope.is_none() && self.version.is_none()
    }
}

impl From<&str> for ResourceRef {
    fn from(name: &str) -> Self {
        Self::named(name)
    }
}

impl From<String> for ResourceRef {
    fn from(name: String) -> Self {
        Self::named(name)
    }
}

/// The object form as written in manifests (`slug` is Stigmer's spelling of `name`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefObject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing)]
    slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RefForm {
    Name(String),
    Object(RefObject),
}

impl<'de> Deserialize<'de> for ResourceRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match RefForm::deserialize(deserializer)? {
            RefForm::Name(name) => Ok(Self::named(name)),
            RefForm::Object(o) => {
                let name = o
                    .name
                    .or(o.slug)
                    .ok_or_else(|| serde::de::Error::custom("a reference object needs `name` (or `slug`)"))?;
                Ok(Self { name, kind: o.kind, org: o.org, scope: o.scope, version: o.version })
            }
        }
    }
}

impl Serialize for ResourceRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_plain() {
            return serializer.serialize_str(&self.name);
        }
        RefObject {
            kind: self.kind.clone(),
            name: Some(self.name.clone()),
            slug: None,
            org: self.org.clone(),
            scope: self.scope.clone(),
            version: self.version.clone(),
        }
        .serialize(serializer)
    }
}

impl JsonSchema for ResourceRef {
    fn schema_name() -> Cow<'static, str> {
        "ResourceRef".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A reference to another resource: its name, or an object {kind, name | slug, org, scope, version}.",
            "anyOf": [
                {"type": "string", "description": "Name of the referenced resource."},
                {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "kind": {"type": "string", "description": "Kind of the referenced resource."},
                        "name": {"type": "string", "description": "Name of the referenced resource."},
                        "slug": {"type": "string", "description": "Stigmer's spelling of `name`."},
                        "org": {"type": "string", "description": "Organization of the referenced resource."},
                        "scope": {"type": "string", "description": "Visibility scope, as in Stigmer."},
                        "version": {"type": "string", "description": "Version or tag to pin."}
                    },
                    "anyOf": [{"required": ["name"]}, {"required": ["slug"]}]
                }
            ]
        })
    }
}

/// One outgoing reference of a resource, with where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Kinds the target may be (the first is the expected one; `call: agent` may name an
    /// agent or an agent instance).
    pub kinds: &'static [Kind],
    /// The target: its name, or its stored id when [`Reference::by_id`].
    pub name: String,
    /// The target is named by the id the backend gave it (`agentId`), not by its name.
    pub by_id: bool,
    /// The kind the author wrote in a reference object, if any.
    pub written_kind: Option<String>,
    /// The organization the author wrote in a reference object, if any.
    pub org: Option<String>,
    /// JSON pointer of the reference within the manifest (`/spec/skillRefs/0`).
    pub pointer: String,
}

impl Reference {
    /// A reference to a resource of one kind, from the field at `pointer`.
    #[must_use]
    pub fn to(kind: &'static [Kind], reference: &ResourceRef, pointer: String) -> Self {
        Self {
            kinds: kind,
            name: reference.name.clone(),
            by_id: false,
            written_kind: reference.kind.clone(),
            org: reference.org.clone(),
            pointer,
        }
    }

    /// A reference by stored id (Stigmer's `agent_id`), from the field at `pointer`.
    #[must_use]
    pub fn id(kind: &'static [Kind], id: &str, pointer: String) -> Self {
        Self { kinds: kind, name: id.to_owned(), by_id: true, written_kind: None, org: None, pointer }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_read_and_the_short_one_is_written() {
        let plain: ResourceRef = serde_json::from_value(serde_json::json!("calc")).unwrap();
        assert_eq!(plain, ResourceRef::named("calc"));
        let long: ResourceRef =
            serde_json::from_value(serde_json::json!({"kind": "Skill", "slug": "calc", "org": "acme"})).unwrap();
        assert_eq!(long.name, "calc");
        assert_eq!(serde_json::to_value(&plain).unwrap(), serde_json::json!("calc"));
        assert_eq!(
            serde_json::to_value(&long).unwrap(),
            serde_json::json!({"kind": "Skill", "name": "calc", "org": "acme"})
        );
    }
}

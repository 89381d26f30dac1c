//! JSON Schemas for manifests, generated from the model's Rust types: one per kind and one for
//! any manifest. The committed copies under `schemas/` are checked against these by a test, so
//! editors (yaml-language-server) always see what stigmer accepts.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

#[allow(clippy::wildcard_imports)]
use crate::model::*;
use crate::model::{Kind, Resource, for_each_kind};

/// Base of the schemas' `$id`s.
pub const SCHEMA_BASE_URL: &str = "https://schemas.stigmer.ai/v1";

/// The file name of a kind's schema under `schemas/` (`agent.json`).
#[must_use]
pub fn file_name(kind: Option<Kind>) -> String {
    kind.map_or_else(|| "manifest.json".to_owned(), |k| format!("{}.json", k.cli_name()))
}

/// The JSON Schema of one kind's manifests, with `$id` and title.
#[must_use]
pub fn for_kind(kind: Kind) -> Value {
    let mut schema = serde_json::to_value(AnyResource::schema_for(kind)).unwrap_or(Value::Null);
    if let Some(fields) = schema.as_object_mut() {
        let mut ordered = Map::new();
        ordered.insert("$schema".to_owned(), json!("https://json-schema.org/draft/2020-12/schema"));
        ordered.insert("$id".to_owned(), json!(format!("{SCHEMA_BASE_URL}/{}", file_name(Some(kind)))));
        for (key, value) in std::mem::take(fields) {
            if key != "$schema" {
                ordered.insert(key, value);
            }
        }
        *fields = ordered;
    }
    schema
}

macro_rules! definitions_of_every_kind {
    ($($kind:ident => $spec:ident),* $(,)?) => {
        /// Every kind's schema as definitions of one generator, so shared types appear once.
        fn every_kind_definitions() -> Map<String, Value> {
            let mut generator = SchemaSettings::draft2020_12().into_generator();
            let mut roots = Map::new();
            $(
                let root = generator.root_schema_for::<Resource<$spec>>();
                let mut root = serde_json::to_value(root).unwrap_or(Value::Null);
                if let Some(fields) = root.as_object_mut() {
                    fields.remove("$schema");
                    fields.remove("$defs");
                }
                roots.insert(Kind::$kind.as_str().to_owned(), root);
            )*
            let mut definitions: Map<String, Value> = generator
                .take_definitions(true)
                .into_iter()
                .collect();
            definitions.extend(roots);
            definitions
        }
    };
}
for_each_kind!(definitions_of_every_kind);

/// The schema of any stigmer manifest: the kind's schema, chosen by `kind`.
#[must_use]
pub fn for_any_manifest() -> Value {
    let kinds: Vec<&str> = Kind::DECLARATIVE.iter().map(|k| k.as_str()).collect();
    let branches: Vec<Value> = Kind::DECLARATIVE
        .iter()
        .map(|k| {
            json!({
                "if": {"properties": {"kind": {"const": k.as_str()}}, "required": ["kind"]},
                "then": {"$ref": format!("#/$defs/{}", k.as_str())}
            })
        })
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{SCHEMA_BASE_URL}/{}", file_name(None)),
        "title": "stigmer manifest",
        "description": "Any stigmer manifest: apiVersion agentic.stigmer.ai/v1, a kind, metadata and spec.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"enum": kinds}
        },
        "allOf": branches,
        "$defs": every_kind_definitions()
    })
}

/// Pretty JSON text of a schema, as committed under `schemas/` (with a final newline).
#[must_use]
pub fn to_text(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

//! Structural checks: `snake_case` spellings normalized to camelCase, then the document checked
//! against the kind's JSON Schema, every error reported with its place.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::locate::readable;
use super::shapes::{KnownFields, Shapes};
use crate::manifest::did_you_mean;
use crate::model::meta::{check_name, suggest_name};
use crate::model::{AnyResource, Kind};

/// A compiled schema with the raw JSON it came from (for field-name lookups).
pub struct CompiledSchema {
    /// The schema document.
    pub json: Value,
    /// Its validator.
    pub validator: Validator,
    /// Its shapes, worked out on first use.
    shapes: OnceLock<Shapes>,
}

impl CompiledSchema {
    /// Compiles `json`, or `None` when it is not a valid schema.
    pub fn new(json: Value) -> Option<Self> {
        let validator = jsonschema::validator_for(&json).ok()?;
        Some(Self { json, validator, shapes: OnceLock::new() })
    }

    /// Where fields are, for normalizing documents and naming the known fields.
    pub fn shapes(&self) -> &Shapes {
        self.shapes.get_or_init(|| Shapes::of(&self.json))
    }
}

/// The schema of each kind, generated from the Rust types and compiled once.
pub fn kind_schema(kind: Kind) -> Option<&'static CompiledSchema> {
    static SCHEMAS: OnceLock<HashMap<Kind, CompiledSchema>> = OnceLock::new();
    SCHEMAS
        .get_or_init(|| {
            Kind::ALL
                .into_iter()
                .filter_map(|kind| {
                    let json = serde_json::to_value(AnyResource::schema_for(kind)).ok()?;
                    Some((kind, CompiledSchema::new(json)?))
                })
                .collect()
        })
        .get(&kind)
}

/// A problem found by a schema, before it is given a source location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    /// JSON pointer of the value concerned.
    pub pointer: String,
    /// A key of the object at `pointer` to point at (an unknown field, a duplicate task name).
    pub at_key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// A stable code.
    pub code: &'static str,
}

/// Runs the validator and turns every error into a [`SchemaProblem`].
///
/// `prefix` is prepended to every pointer, for schemas that check a part of the manifest
/// (the DSL schema checks `spec`).
pub fn check(schema: &CompiledSchema, instance: &Value, prefix: &str, known: &KnownFields<'_>) -> Vec<SchemaProblem> {
    let mut problems = Vec::new();
    for error in schema.validator.iter_errors(instance) {
        for error in most_relevant(&error) {
            problems.extend(describe(error, instance, prefix, known));
        }
    }
    problems.dedup();
    problems
}

/// For `anyOf`/`oneOf` failures, the errors of the alternative that matched best (the one whose
/// errors reach deepest into the value); otherwise the error itself.
fn most_relevant<'e>(error: &'e ValidationError<'e>) -> Vec<&'e ValidationError<'e>> {
    let (ValidationErrorKind::AnyOf { context: branches } | ValidationErrorKind::OneOfNotValid { context: branches }) =
        error.kind()
    else {
        return vec![error];
    };
    let base_depth = error.instance_path().as_str().len();
    // Score each alternative: one that failed on the type or a discriminating constant (such as
    // `call: http`) is not what the author meant; among the rest, the one whose errors reach
    // deepest into the value matched best.
    let score = |branch: &Vec<ValidationError<'_>>| {
        let type_mismatch_here = branch.iter().any(|e| {
            e.instance_path().as_str().len() == base_depth && matches!(e.kind(), ValidationErrorKind::Type { .. })
        });
        let discriminator_mismatch = branch.iter().any(|e| {
            matches!(
                e.kind(),
                ValidationErrorKind::Constant { .. }
                    | ValidationErrorKind::Enum { .. }
                    | ValidationErrorKind::Not { .. }
            )
        });
        let deepest = branch.iter().map(|e| e.instance_path().as_str().len()).max().unwrap_or(0);
        (!type_mismatch_here, !discriminator_mismatch, deepest, usize::MAX - branch.len())
    };
    let best = branches.iter().filter(|branch| !branch.is_empty()).max_by_key(|branch| score(branch));
    match best {
        Some(branch) if score(branch).0 => branch.iter().flat_map(|e| most_relevant(e)).collect(),
        _ => vec![error],
    }
}

fn describe(
    error: &ValidationError<'_>,
    instance: &Value,
    prefix: &str,
    known: &KnownFields<'_>,
) -> Vec<SchemaProblem> {
    let relative = error.instance_path().as_str();
    let pointer = format!("{prefix}{relative}");
    let place = readable(&pointer);
    let problem = |code, message: String, hint: Option<String>| SchemaProblem {
        pointer: pointer.clone(),
        at_key: None,
        message,
        hint,
        code,
    };
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            let fields = known.get(&pointer);
            unexpected
                .iter()
                .map(|field| {
                    let suggestion = fields.and_then(|f| did_you_mean(field, f.iter().map(String::as_str)));
                    let hint = match (suggestion, fields) {
                        (Some(s), _) => Some(format!("did you mean \"{s}\"?")),
                        (None, Some(f)) if !f.is_empty() => Some(format!("known fields here: {}", f.join(", "))),
                        _ => None,
                    };
                    SchemaProblem {
                        pointer: pointer.clone(),
                        at_key: Some(field.clone()),
                        message: format!("unknown field \"{field}\" in {place}"),
                        hint,
                        code: "unknown-field",
                    }
                })
                .collect()
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
            vec![problem("missing-field", format!("{place} is missing the required field \"{name}\""), None)]
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => article(&t.to_string()),
                // `null` is allowed only because the field is optional; do not suggest writing it.
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .filter(|t| t != "null")
                    .map(|t| article(&t))
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            let found = instance.pointer(relative).map_or("nothing".to_owned(), json_type);
            vec![problem("wrong-type", format!("{place} must be {expected}, not {found}"), None)]
        }
        ValidationErrorKind::Enum { options } => {
            let options = options
                .as_array()
                .map_or_else(|| options.to_string(), |o| o.iter().map(Value::to_string).collect::<Vec<_>>().join(", "));
            vec![problem("invalid-value", format!("{place} must be one of {options}"), None)]
        }
        ValidationErrorKind::Pattern { .. } | ValidationErrorKind::MaxLength { .. } if pointer == "/metadata/name" => {
            let name = instance.pointer(relative).and_then(Value::as_str).unwrap_or_default();
            let reason = check_name(name).err().map_or_else(|| "it is not a valid name".to_owned(), |e| e.to_string());
            let hint = suggest_name(name).map_or_else(
                || "names use lower-case letters, digits and '-', at most 63 characters".to_owned(),
                |s| format!("try \"{s}\""),
            );
            vec![problem("bad-name", format!("name \"{name}\" {reason}"), Some(hint))]
        }
        ValidationErrorKind::Pattern { pattern } => {
            let value = instance.pointer(relative).map_or_else(String::new, Value::to_string);
            vec![problem("invalid-value", format!("{place} {value} does not match the pattern {pattern}"), None)]
        }
        ValidationErrorKind::Constant { expected_value } => {
            vec![problem("invalid-value", format!("{place} must be {expected_value}"), None)]
        }
        _ => {
            let detail = error.to_string();
            vec![problem("invalid-value", format!("{place}: {detail}"), None)]
        }
    }
}

fn article(type_name: &str) -> String {
    match type_name {
        "object" => "a mapping".to_owned(),
        "array" => "a list".to_owned(),
        "integer" => "an integer".to_owned(),
        "null" => "null".to_owned(),
        other => format!("a {other}"),
    }
}

/// How a value's type reads in a message.
#[must_use]
pub fn json_type(value: &Value) -> String {
    match value {
        Value::Null => "null (an empty value)".to_owned(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) if s.chars().count() > 40 => "a string".to_owned(),
        Value::String(s) => format!("a string (\"{s}\")"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snake_case_is_normalized_only_where_the_schema_has_the_field() {
        let schema = kind_schema(Kind::Agent).unwrap();
        let mut doc = json!({
            "apiVersion": "agentic.stigmer.ai/v1", "kind": "Agent",
            "metadata": {"name": "a", "labels": {"my_label": "x"}},
            "spec": {"instructions": "x", "skill_refs": ["s"], "mcp_server_usages": [{"mcp_server_ref": "m"}]}
        });
        schema.shapes().normalize(&mut doc);
        assert_eq!(doc["spec"]["skillRefs"], json!(["s"]));
        assert_eq!(doc["spec"]["mcpServerUsages"][0]["mcpServerRef"], json!("m"));
        assert_eq!(doc["metadata"]["labels"], json!({"my_label": "x"}));
        let known = KnownFields::new(&doc, schema.shapes());
        assert!(known.get("/spec").unwrap().contains(&"instructions".to_owned()));
        assert!(known.get("/spec/mcpServerUsages/0").unwrap().contains(&"mcpServerRef".to_owned()));
        assert_eq!(known.get("/metadata/labels"), None, "a free-form map has no known fields");
        assert_eq!(known.get("/spec/nowhere"), None);
    }

    #[test]
    fn every_schema_error_is_reported_with_its_pointer() {
        let schema = kind_schema(Kind::Agent).unwrap();
        let doc = json!({
            "apiVersion": "agentic.stigmer.ai/v1", "kind": "Agent",
            "metadata": {"name": "a"},
            "spec": {"instructons": "x", "model": {"temperature": "hot"}}
        });
        let mut normalized = doc.clone();
        schema.shapes().normalize(&mut normalized);
        let problems = check(schema, &normalized, "", &KnownFields::new(&normalized, schema.shapes()));
        let codes: Vec<_> = problems.iter().map(|p| (p.code, p.pointer.as_str())).collect();
        assert!(codes.contains(&("unknown-field", "/spec")), "{problems:#?}");
        assert!(codes.contains(&("missing-field", "/spec")), "{problems:#?}");
        assert!(codes.contains(&("wrong-type", "/spec/model/temperature")), "{problems:#?}");
        let unknown = problems.iter().find(|p| p.code == "unknown-field").unwrap();
        assert_eq!(unknown.hint.as_deref(), Some("did you mean \"instructions\"?"));
    }
}

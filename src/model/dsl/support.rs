//! Serde and JSON Schema plumbing shared by the DSL types: deserializers for "one of several
//! shapes" properties, single-key-map list items, the unknown-property check for tasks, JSON
//! pointer escaping and the string patterns the official schema uses.

use schemars::Schema;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

/// The pattern of a runtime expression, `${ … }` (official `runtimeExpression`).
pub(crate) const RUNTIME_EXPRESSION_PATTERN: &str = r"^\s*\$\{.+\}\s*$";

/// The pattern of a literal URI or URI template: a scheme followed by `://` (official `uriTemplate`).
pub(crate) const URI_TEMPLATE_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9+\-.]*://.*";

/// The pattern of an ISO 8601 duration literal (official `duration` literal form).
pub(crate) const ISO8601_DURATION_PATTERN: &str = r"^P(?!$)(\d+(?:\.\d+)?Y)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?W)?(\d+(?:\.\d+)?D)?(T(?=\d)(\d+(?:\.\d+)?H)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?S)?)?$";

/// The pattern of a semantic version (official `document.dsl` and `document.version`).
pub(crate) const SEMVER_PATTERN: &str = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$";

/// The pattern of a DNS-label-like name (official `document.namespace` and `document.name`).
pub(crate) const NAME_PATTERN: &str = r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$";

use crate::model::escape_pointer;

/// Names a JSON value's type for error messages.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads an optional "any" value so that an explicit `null` stays `Some(Value::Null)`.
///
/// Use with `#[serde(default, deserialize_with = …)]` on `Option<Value>` fields whose schema
/// allows `null`, so that it survives a round trip.
pub(crate) fn deserialize_present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Reads a value that must be an object or a string (a runtime expression).
pub(crate) fn deserialize_object_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    use serde::de::Error as _;
    let value = Value::deserialize(deserializer)?;
    match value {
        Value::Object(_) | Value::String(_) => Ok(value),
        other => Err(D::Error::custom(format!(
            "expected an object or a runtime expression string, found {}",
            describe(&other)
        ))),
    }
}

/// Checks that deserializing `input` kept every property: any property present in `input` but
/// missing from `output` (its re-serialization) was silently dropped, i.e. unknown.
///
/// Serde cannot deny unknown fields on structs that flatten others (every task flattens
/// [`TaskBase`](super::TaskBase)), so tasks run this check instead. `null`, `[]` and `{}` may
/// disappear: unset optional values and empty optional collections are written as absent.
pub(crate) fn ensure_nothing_ignored(input: &Value, output: &Value, kind: &str) -> Result<(), String> {
    fn check(input: &Value, output: &Value, path: &mut String, kind: &str) -> Result<(), String> {
        match (input, output) {
            (Value::Object(input), Value::Object(output)) => {
                for (key, value) in input {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&escape_pointer(key));
                    match output.get(key) {
                        Some(kept) => check(value, kept, path, kind)?,
                        // Canonical form: `null`, `[]` and `{}` optional values are omitted.
                        None if value.is_null() || is_empty_collection(value) => {}
                        None => return Err(format!("unknown property `{key}` in {kind} task (at {path})")),
                    }
                    path.truncate(len);
                }
                Ok(())
            }
            (Value::Array(input), Value::Array(output)) => {
                for (index, (value, kept)) in input.iter().zip(output).enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&index.to_string());
                    check(value, kept, path, kind)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    check(input, output, &mut String::new(), kind)
}

/// Whether a value is `[]` or `{}`.
fn is_empty_collection(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// Builds a [`Schema`] from a JSON object literal (non-objects give the `true` schema).
pub(crate) fn schema_from(value: Value) -> Schema {
    match value {
        Value::Object(map) => Schema::from(map),
        Value::Bool(flag) => Schema::from(flag),
        _ => Schema::default(),
    }
}

/// A string matching `pattern`.
pub(crate) fn pattern_schema(pattern: &str) -> Schema {
    schema_from(json!({ "type": "string", "pattern": pattern }))
}

/// Schema of a runtime expression string (`${ … }`).
pub(crate) fn runtime_expression_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    pattern_schema(RUNTIME_EXPRESSION_PATTERN)
}

/// Schema of a URI template (literal URI with a scheme, `{var}` placeholders allowed).
pub(crate) fn uri_template_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    pattern_schema(URI_TEMPLATE_PATTERN)
}

/// Schema of a string that is a URI template or a runtime expression.
pub(crate) fn uri_or_expression_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    schema_from(json!({
        "anyOf": [
            { "type": "string", "pattern": URI_TEMPLATE_PATTERN },
            { "type": "string", "pattern": RUNTIME_EXPRESSION_PATTERN },
        ]
    }))
}

/// Schema of a semantic version string.
pub(crate) fn semver_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    pattern_schema(SEMVER_PATTERN)
}

/// Schema of a DNS-label-like name.
pub(crate) fn name_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    pattern_schema(NAME_PATTERN)
}

/// Schema of a value that is a non-empty object or a runtime expression string.
pub(crate) fn object_or_string_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    schema_from(json!({
        "oneOf": [
            { "type": "object", "minProperties": 1, "additionalProperties": true },
            { "type": "string" },
        ]
    }))
}

/// Adds `minProperties: 1` to an object schema.
pub(crate) fn non_empty_object(schema: &mut Schema) {
    schema.insert("minProperties".to_owned(), json!(1));
}

/// Adds a `oneOf` of `required` groups: exactly one group of properties must be present.
pub(crate) fn require_one_of(schema: &mut Schema, groups: &[&[&str]]) {
    let alternatives: Vec<Value> = groups.iter().map(|group| json!({ "required": group })).collect();
    schema.insert("oneOf".to_owned(), Value::Array(alternatives));
}

/// Adds a required property with a constant string value first in an object schema (the `call`
/// discriminator of call tasks).
pub(crate) fn add_const_property(schema: &mut Schema, key: &str, value: &str) {
    let object = schema.ensure_object();
    let mut properties = Map::new();
    properties.insert(key.to_owned(), json!({ "type": "string", "const": value }));
    if let Some(Value::Object(existing)) = object.remove("properties") {
        properties.extend(existing);
    }
    object.insert("properties".to_owned(), Value::Object(properties));
    match object.get_mut("required") {
        Some(Value::Array(required)) => required.insert(0, json!(key)),
        _ => {
            object.insert("required".to_owned(), json!([key]));
        }
    }
}

/// Implements `Deserialize` for an enum whose variants are objects told apart by which property
/// they have. The first listed key found wins; `else Variant` names the variant to try when none
/// is present (otherwise that is an error naming the expected keys).
macro_rules! deserialize_by_key {
    ($ty:ident, $what:literal, [$($key:literal => $variant:ident),+ $(,)?]) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::Error as _;
                let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
                $(
                    if map.contains_key($key) {
                        return serde_json::from_value(serde_json::Value::Object(map))
                            .map(Self::$variant)
                            .map_err(D::Error::custom);
                    }
                )+
                let expected: Vec<String> = [$($key),+].iter().map(|key| format!("`{key}`")).collect();
                Err(D::Error::custom(format!(concat!($what, " must have one of the properties {}"), expected.join(", "))))
            }
        }
    };
    ($ty:ident, [$($key:literal => $variant:ident),+ $(,)?], else $fallback:ident) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::Error as _;
                let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
                $(
                    if map.contains_key($key) {
                        return serde_json::from_value(serde_json::Value::Object(map))
                            .map(Self::$variant)
                            .map_err(D::Error::custom);
                    }
                )+
                serde_json::from_value(serde_json::Value::Object(map))
                    .map(Self::$fallback)
                    .map_err(D::Error::custom)
            }
        }
    };
}
pub(crate) use deserialize_by_key;

/// Implements `Deserialize` for an enum with one variant holding a `String` and one holding an
/// object shape, dispatching on the JSON type so that errors come from the matching shape.
macro_rules! deserialize_string_or_object {
    ($ty:ident, $what:literal, $string:ident, $object:ident) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::Error as _;
                match serde_json::Value::deserialize(deserializer)? {
                    serde_json::Value::String(text) => Ok(Self::$string(text)),
                    value @ serde_json::Value::Object(_) => {
                        serde_json::from_value(value).map(Self::$object).map_err(D::Error::custom)
                    }
                    other => Err(D::Error::custom(format!(
                        concat!("invalid ", $what, ": expected a string or an object, found {}"),
                        $crate::model::dsl::support::describe(&other)
                    ))),
                }
            }
        }
    };
}
pub(crate) use deserialize_string_or_object;

/// Implements `Serialize`, `Deserialize` and `JsonSchema` for a `{ name, <field> }` struct written
/// as a single-key map `{name: value}` (task list items, switch cases, extensions).
macro_rules! single_entry_map {
    ($ty:ident, $field:ident: $value:ty, $what:literal, $description:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(&self.name, &self.$field)?;
                map.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct EntryVisitor;

                impl<'de> serde::de::Visitor<'de> for EntryVisitor {
                    type Value = $ty;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        formatter.write_str(concat!("a map with a single key, the ", $what, " name"))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        use serde::de::Error as _;
                        let Some(name) = map.next_key::<String>()? else {
                            return Err(A::Error::custom(concat!(
                                "expected a map with a single key, the ", $what, " name, found an empty map"
                            )));
                        };
                        let $field = map.next_value::<$value>()?;
                        if let Some(other) = map.next_key::<String>()? {
                            return Err(A::Error::custom(format!(
                                concat!(
                                    "expected a map with a single key, the ", $what,
                                    " name, found `{}` and `{}`: write each ", $what, " as its own list item"
                                ),
                                name, other
                            )));
                        }
                        Ok($ty { name, $field })
                    }
                }

                deserializer.deserialize_map(EntryVisitor)
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn schema_id() -> std::borrow::Cow<'static, str> {
                concat!(module_path!(), "::", stringify!($ty)).into()
            }

            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                $crate::model::dsl::support::schema_from(serde_json::json!({
                    "description": $description,
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 1,
                    "additionalProperties": generator.subschema_for::<$value>(),
                }))
            }
        }
    };
}
pub(crate) use single_entry_map;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(escape_pointer("a/b~c"), "a~1b~0c");
        assert_eq!(escape_pointer("~/"), "~0~1");
        assert_eq!(escape_pointer("plain"), "plain");
    }

    #[test]
    fn dropped_properties_are_reported_with_their_path() {
        let output = json!({ "set": { "a": 1 }, "list": [ { "x": 1 } ] });
        assert_eq!(ensure_nothing_ignored(&output, &output, "set"), Ok(()));
        let input = json!({ "set": { "a": 1 }, "list": [ { "x": 1, "y/z": 2 } ] });
        assert_eq!(
            ensure_nothing_ignored(&input, &output, "set"),
            Err("unknown property `y/z` in set task (at /list/0/y~1z)".to_owned())
        );
        // Canonical form: unset values and empty optional collections are omitted.
        let input = json!({ "set": { "a": 1 }, "list": [ { "x": 1 } ], "if": null, "tags": [], "meta": {} });
        assert_eq!(ensure_nothing_ignored(&input, &output, "set"), Ok(()));
    }
}

//! Looking into stored JSON without reading it whole: whether a document has a value at a path,
//! found by walking only that path and skipping everything beside it unparsed into values.
//! A store that keeps resources as JSON uses it to leave out, cheaply, the many that a query
//! does not want (most workflows have no `schedule`).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Whether the JSON document `json` has a value other than `null` at `path` (object keys from
/// the root). A document that does not parse has none.
pub fn sets(json: &[u8], path: &[&str]) -> bool {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    At(path).deserialize(&mut deserializer).unwrap_or(false)
}

/// `path` within a stored resource's manifest, as a path within the stored resource.
pub fn in_manifest<'p>(path: &[&'p str]) -> Vec<&'p str> {
    std::iter::once("manifest").chain(path.iter().copied()).collect()
}

/// Whether `value` has a value other than `null` at `path`: what [`sets`] finds in its JSON.
pub fn value_sets(value: &serde_json::Value, path: &[&str]) -> bool {
    path.iter().try_fold(value, |value, key| value.get(key)).is_some_and(|value| !value.is_null())
}

/// Reads a value and says whether the rest of the path is set in it.
struct At<'p>(&'p [&'p str]);

impl<'de> DeserializeSeed<'de> for At<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        match self.0.split_first() {
            None => Ok(serde::Deserialize::deserialize(deserializer).map(|v: Option<IgnoredAny>| v.is_some())?),
            Some((key, rest)) => deserializer.deserialize_any(Within { key, rest }),
        }
    }
}

/// Visits a value that should be an object holding `key`, whose value should set `rest`.
struct Within<'p> {
    key: &'p str,
    rest: &'p [&'p str],
}

impl<'de> Visitor<'de> for Within<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut set = false;
        while let Some(wanted) = map.next_key_seed(KeyIs(self.key))? {
            if wanted {
                set = map.next_value_seed(At(self.rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(set)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// Reads an object key and says whether it is the one looked for, without keeping it.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn probe(value: &Value, path: &[&str]) -> bool {
        sets(value.to_string().as_bytes(), path)
    }

    #[test]
    fn a_value_on_the_path_is_found_and_null_or_absent_is_not() {
        let doc = json!({"kind": "Workflow", "manifest": {"spec": {"do": [{"a": {"set": {}}}], "schedule": {"every": "PT1M"}}}});
        assert!(probe(&doc, &["manifest", "spec", "schedule"]));
        assert!(probe(&doc, &["manifest", "spec"]));
        assert!(!probe(&doc, &["manifest", "spec", "timeout"]));
        assert!(!probe(&doc, &["manifest", "spec", "schedule", "cron"]));
        assert!(!probe(&json!({"manifest": {"spec": {"schedule": null}}}), &["manifest", "spec", "schedule"]));
        assert!(!probe(&json!({"manifest": [1, {"spec": 2}]}), &["manifest", "spec"]), "arrays are not objects");
        assert!(!probe(&json!({"manifest": "spec"}), &["manifest", "spec"]));
        assert!(probe(&json!({"a\"b": 0}), &["a\"b"]), "escaped keys compare as text");
        assert!(!sets(b"{\"manifest\": {\"spec\"", &["manifest", "spec"]), "a broken document sets nothing");
        assert!(probe(&json!({"x": false}), &["x"]), "false is a value");
    }

    fn document() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-c]{0,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The probe agrees with reading the document whole and looking (with a JSON pointer,
        /// which unlike `value_sets` indexes arrays: the paths here are letters, so never do).
        #[test]
        fn it_agrees_with_a_pointer_into_the_whole_document(doc in document(), path in prop::collection::vec("[a-c]", 0..4)) {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let pointer: String = path.iter().flat_map(|key| ["/", key]).collect();
            let expected = doc.pointer(&pointer).is_some_and(|v| !v.is_null());
            prop_assert_eq!(probe(&doc, &path), expected);
            prop_assert_eq!(value_sets(&doc, &path), expected);
        }
    }
}

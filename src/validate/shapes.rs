//! The shape of a kind's schema, flattened for walking documents: which fields each object may
//! have and the schema of each child, with `$ref`s followed and `anyOf`/`oneOf`/`allOf` merged,
//! worked out once per schema node instead of once per document node. Used to normalize
//! `snake_case` spellings to camelCase and to name the known fields in "did you mean" hints.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::locate::{segments, to_camel_case};

/// The shapes of one schema's nodes; the first is the root's.
#[derive(Debug, Default)]
pub struct Shapes {
    shapes: Vec<Shape>,
}

/// One schema node with its alternatives merged.
#[derive(Debug, Default)]
struct Shape {
    /// Every alternative's property names, in order.
    fields: Vec<String>,
    /// Each property's shape, from the first alternative that has the property.
    properties: HashMap<String, usize>,
    /// The first alternative's object `additionalProperties` (a free-form map's values).
    additional: Option<usize>,
    /// The first alternative's `items`.
    items: Option<usize>,
}

/// A shape's place in [`Shapes`].
type ShapeId = usize;

/// `$ref` chains and `anyOf` nesting deeper than this are not followed (generated schemas stay
/// far below it).
const MAX_INDIRECTION: usize = 16;

impl Shapes {
    /// The shapes of `root` and of every schema reachable from it.
    pub fn of(root: &Value) -> Self {
        let mut shapes = Self::default();
        let mut seen = HashMap::new();
        shapes.add(root, root, &mut seen);
        shapes
    }

    /// Adds the shape of `schema` (unless `seen` has it) and of every schema under it.
    fn add(&mut self, schema: &Value, root: &Value, seen: &mut HashMap<*const Value, ShapeId>) -> ShapeId {
        if let Some(id) = seen.get(&std::ptr::from_ref(schema)) {
            return *id;
        }
        let id = self.shapes.len();
        // Recorded before the children, so a recursive schema refers back to this shape.
        seen.insert(std::ptr::from_ref(schema), id);
        self.shapes.push(Shape::default());
        let mut alternatives = Vec::new();
        collect_alternatives(schema, root, &mut alternatives, 0);
        let mut shape = Shape::default();
        for alternative in &alternatives {
            if let Some(properties) = alternative.get("properties").and_then(Value::as_object) {
                for (name, child) in properties {
                    shape.fields.push(name.clone());
                    if !shape.properties.contains_key(name) {
                        let child = self.add(child, root, seen);
                        shape.properties.insert(name.clone(), child);
                    }
                }
            }
        }
        if let Some(additional) =
            alternatives.iter().find_map(|s| s.get("additionalProperties").filter(|a| a.is_object()))
        {
            shape.additional = Some(self.add(additional, root, seen));
        }
        if let Some(items) = alternatives.iter().find_map(|s| s.get("items")) {
            shape.items = Some(self.add(items, root, seen));
        }
        self.shapes[id] = shape;
        id
    }

    fn shape(&self, id: ShapeId) -> Option<&Shape> {
        self.shapes.get(id)
    }

    /// Rewrites `snake_case` keys to their camelCase field names wherever the schema has that
    /// field. Free-form maps (labels, data, `set` values) keep their keys, since the schema lists
    /// no properties for them.
    pub fn normalize(&self, value: &mut Value) {
        self.normalize_at(value, 0);
    }

    fn normalize_at(&self, value: &mut Value, id: ShapeId) {
        let Some(shape) = self.shape(id) else { return };
        match value {
            Value::Object(map) => {
                shape.rename_keys(map);
                for (key, child) in map.iter_mut() {
                    if let Some(child_id) = shape.child(key) {
                        self.normalize_at(child, child_id);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_id) = shape.items {
                    for item in items {
                        self.normalize_at(item, item_id);
                    }
                }
            }
            _ => {}
        }
    }

    /// The fields the schema lists for the object at `pointer` in `document` (normalized), if it
    /// lists any.
    pub fn fields_at(&self, document: &Value, pointer: &str) -> Option<&[String]> {
        let (mut value, mut id) = (document, 0);
        for segment in segments(pointer) {
            let shape = self.shape(id)?;
            (value, id) = match value {
                Value::Object(map) => (map.get(&segment)?, shape.child(&segment)?),
                Value::Array(items) => (items.get(segment.parse::<usize>().ok()?)?, shape.items?),
                _ => return None,
            };
        }
        let fields = &self.shape(id)?.fields;
        (value.is_object() && !fields.is_empty()).then_some(fields.as_slice())
    }
}

impl Shape {
    fn child(&self, key: &str) -> Option<ShapeId> {
        self.properties.get(key).copied().or(self.additional)
    }

    fn rename_keys(&self, map: &mut Map<String, Value>) {
        // Only a key with `_` in it can have a camelCase spelling of its own.
        let renames = |key: &str| {
            key.contains('_') && !self.properties.contains_key(key) && self.properties.contains_key(&to_camel_case(key))
        };
        if !map.keys().any(|key| renames(key)) {
            return;
        }
        let old = std::mem::take(map);
        for (key, value) in old {
            let target =
                if renames(&key) && !map.contains_key(&to_camel_case(&key)) { to_camel_case(&key) } else { key };
            map.insert(target, value);
        }
    }
}

/// The schema itself and the members of its `anyOf`/`oneOf`/`allOf`, with `$ref`s followed.
fn collect_alternatives<'a>(schema: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
    if depth > MAX_INDIRECTION {
        return;
    }
    let schema = resolve(schema, root);
    out.push(schema);
    for keyword in ["anyOf", "oneOf", "allOf"] {
        if let Some(members) = schema.get(keyword).and_then(Value::as_array) {
            for member in members {
                collect_alternatives(member, root, out, depth + 1);
            }
        }
    }
}

fn resolve<'a>(mut schema: &'a Value, root: &'a Value) -> &'a Value {
    for _ in 0..MAX_INDIRECTION {
        let Some(target) = schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) else {
            break;
        };
        match root.pointer(target) {
            Some(next) => schema = next,
            None => break,
        }
    }
    schema
}

/// The field names an object in a normalized document may have, for "did you mean" hints.
#[derive(Clone, Copy)]
pub struct KnownFields<'a> {
    document: &'a Value,
    shapes: Option<&'a Shapes>,
}

impl<'a> KnownFields<'a> {
    /// The fields of `document`, normalized with `shapes`.
    pub fn new(document: &'a Value, shapes: &'a Shapes) -> Self {
        Self { document, shapes: Some(shapes) }
    }

    /// No fields known anywhere.
    pub fn none() -> KnownFields<'static> {
        KnownFields { document: &Value::Null, shapes: None }
    }

    /// The fields the schema lists for the object at `pointer`, if it lists any.
    pub fn get(&self, pointer: &str) -> Option<&'a [String]> {
        self.shapes?.fields_at(self.document, pointer)
    }
}

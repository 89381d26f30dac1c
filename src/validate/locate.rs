//! Finding where a JSON pointer into a (normalized) manifest was written in the YAML source.

use crate::manifest::yaml::{Node, NodeValue, Position};

/// Where a pointer leads in the source tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Start of the value the pointer names, or of the deepest ancestor that exists.
    pub value: Position,
    /// Start of the key of the last mapping entry on the way (for "unknown field" errors).
    pub key: Option<Position>,
    /// Whether the whole pointer was found.
    pub exact: bool,
}

/// Follows `pointer` (RFC 6901) through `root`. Keys match as written or in their camelCase
/// spelling, because validation sees keys after `snake_case` → camelCase normalization.
#[must_use]
pub fn locate(root: &Node, pointer: &str) -> Found {
    let mut node = root;
    let mut key = None;
    for segment in segments(pointer) {
        let next = match &node.value {
            NodeValue::Mapping(entries) => entries
                .iter()
                .find(|e| e.key == segment)
                .or_else(|| entries.iter().find(|e| to_camel_case(&e.key) == segment))
                .map(|e| {
                    key = Some(e.key_position);
                    &e.value
                }),
            NodeValue::Sequence(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(child) => node = child,
            None => return Found { value: node.position, key, exact: false },
        }
    }
    Found { value: node.position, key, exact: true }
}

/// The unescaped segments of a JSON pointer.
pub fn segments(pointer: &str) -> impl Iterator<Item = String> + '_ {
    pointer.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~"))
}

pub use crate::model::escape_pointer as escape;

/// A pointer as people read it: `/spec/skillRefs/0` → `spec.skillRefs[0]`.
#[must_use]
pub fn readable(pointer: &str) -> String {
    let mut out = String::new();
    for segment in segments(pointer) {
        if segment.parse::<usize>().is_ok() {
            out.push('[');
            out.push_str(&segment);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    if out.is_empty() { "the manifest".to_owned() } else { out }
}

/// `snake_case` → `camelCase` (`mcp_server_usages` → `mcpServerUsages`); other keys unchanged.
#[must_use]
pub fn to_camel_case(key: &str) -> String {
    if !key.contains('_') || key.starts_with('_') {
        return key.to_owned();
    }
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml::parse_stream;

    #[test]
    fn pointers_find_values_and_keys_through_snake_case() {
        let doc = parse_stream("spec:\n  skill_refs:\n    - calc\n    - web\n").documents.remove(0);
        let found = locate(&doc.root, "/spec/skillRefs/1");
        assert!(found.exact);
        assert_eq!(found.value, Position { line: 4, column: 7 });
        assert_eq!(found.key, Some(Position { line: 2, column: 3 }));
        let missing = locate(&doc.root, "/spec/instructions");
        assert!(!missing.exact);
        assert_eq!(missing.value, Position { line: 2, column: 3 });
    }

    #[test]
    fn names_convert_and_read_well() {
        assert_eq!(to_camel_case("mcp_server_usages"), "mcpServerUsages");
        assert_eq!(to_camel_case("plain"), "plain");
        assert_eq!(readable("/spec/skillRefs/0"), "spec.skillRefs[0]");
        assert_eq!(readable("/spec/do/0/a~1b"), "spec.do[0].a/b");
        assert_eq!(escape("a/b~c"), "a~1b~0c");
    }
}

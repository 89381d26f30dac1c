//! YAML parsing, kept behind [`parse_stream`] so the parser can change without touching the rest.
//!
//! A stream is parsed into [`Node`] trees that remember where every key and value starts, so
//! later diagnostics can point at `file:line:col`. Budgets bound depth, node counts and alias
//! expansion, so hostile input fails fast instead of exhausting the machine.
//!
//! Two paths give the same trees: [`events`] builds them straight from the parser's events for
//! the YAML manifests are written in (no tags, anchors or merge keys, every scalar's type plain
//! to see), about three times faster; anything else, and every error, goes through
//! serde-saphyr's deserializer, which owns YAML's finer points and the wording of its errors.

mod events;

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based line and column in a source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Position {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

impl Position {
    /// The start of a text.
    pub const START: Self = Self { line: 1, column: 1 };

    fn from_location(location: serde_saphyr::Location) -> Option<Self> {
        Self::new(location.line(), location.column())
    }

    /// A 1-based line and column, if both are in range.
    fn new(line: impl TryInto<u32>, column: impl TryInto<u32>) -> Option<Self> {
        let line = line.try_into().ok()?;
        let column = column.try_into().ok()?;
        (line > 0 && column > 0).then_some(Self { line, column })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One parsed YAML node with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts.
    pub position: Position,
    /// The value itself.
    pub value: NodeValue,
}

/// The value of a [`Node`]: YAML's core schema, as JSON sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer or a float.
    Number(serde_json::Number),
    /// Any other scalar.
    String(String),
    /// A block or flow sequence.
    Sequence(Vec<Node>),
    /// A mapping, in the author's order.
    Mapping(Vec<Entry>),
}

/// One `key: value` pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as written.
    pub key: String,
    /// Where the key starts.
    pub key_position: Position,
    /// The value.
    pub value: Node,
}

/// One document of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 0-based index of the document among the non-empty documents of the stream.
    pub index: usize,
    /// The document's root node (shared: caches and sets hold the same tree).
    pub root: std::sync::Arc<Node>,
}

/// A stream that could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// What is wrong, without location.
    pub message: String,
    /// Where, when the parser knows.
    pub position: Option<Position>,
}

/// What sort of syntax error, for choosing words of advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxKind {
    /// Tabs where YAML wants spaces.
    Tabs,
    /// Aliases expanding beyond the budget.
    TooComplex,
    /// Nesting beyond [`MAX_DEPTH`].
    TooDeep,
    /// Anything else.
    Other,
}

impl SyntaxError {
    /// What sort of error this is.
    #[must_use]
    pub fn kind(&self) -> SyntaxKind {
        let lower = self.message.to_lowercase();
        if lower.contains("tab") {
            SyntaxKind::Tabs
        } else if ["alias", "budget", "anchor", "replay"].iter().any(|word| lower.contains(word)) {
            SyntaxKind::TooComplex
        } else if ["depth", "nesting", "recursion"].iter().any(|word| lower.contains(word)) {
            SyntaxKind::TooDeep
        } else {
            SyntaxKind::Other
        }
    }
}

/// The result of parsing a stream: the documents read before any syntax error, and that error.
#[derive(Debug, Default)]
pub struct Stream {
    /// Documents parsed successfully, in order.
    pub documents: Vec<Document>,
    /// The syntax error that ended the stream early, if any.
    pub error: Option<SyntaxError>,
}

/// Nesting deeper than this is refused: real manifests stay far below it, and it bounds recursion.
pub const MAX_DEPTH: usize = 64;

/// Stack for the parsing thread: the deserializer recurses once per nesting level with large
/// frames (tens of KiB each in debug builds), so [`MAX_DEPTH`] levels need more than the 2 MiB a
/// test or async worker thread has.
const PARSER_STACK_BYTES: usize = 32 * 1024 * 1024;

/// Documents in one stream, at most.
const MAX_DOCUMENTS: usize = 1_000_000;
/// Nodes (scalars, sequences, mappings) in one stream, at most, aliases expanded.
const MAX_NODES: usize = 20_000_000;
/// Parser events in one stream, at most.
const MAX_EVENTS: usize = 50_000_000;

/// Parses a multi-document YAML stream into span-carrying trees.
///
/// Budgets allow a 10,000-document stream but refuse alias bombs, very deep nesting and
/// amplification; callers bound the input size before calling. Parsing runs on its own thread
/// with a stack sized for [`MAX_DEPTH`], so it is safe from any caller's thread.
pub fn parse_stream(text: &str) -> Stream {
    match events::parse_plain_stream(text) {
        Some(documents) => Stream { documents, error: None },
        None => parse_with_serde(text),
    }
}

/// [`parse_stream`] through serde-saphyr: all of YAML, and the errors.
fn parse_with_serde(text: &str) -> Stream {
    std::thread::scope(|scope| {
        let parser = std::thread::Builder::new().name("yaml-parser".to_owned()).stack_size(PARSER_STACK_BYTES);
        match parser.spawn_scoped(scope, || parse_on_this_thread(text)) {
            Ok(handle) => handle.join().unwrap_or_else(|_| failed("the YAML parser failed on this input")),
            Err(_) => failed("cannot start the YAML parser (out of threads or memory)"),
        }
    })
}

fn failed(message: &str) -> Stream {
    Stream { documents: Vec::new(), error: Some(SyntaxError { message: message.to_owned(), position: None }) }
}

/// Deserializes one YAML document into `T` under the same budgets as [`parse_stream`], on a
/// thread with the stack they need: for YAML that is not a manifest (a workflow's input, a bare
/// workflow document) but comes from the same hostile world.
pub fn from_str<T: serde::de::DeserializeOwned + Send>(text: &str) -> Result<T, SyntaxError> {
    std::thread::scope(|scope| {
        let parser = std::thread::Builder::new().name("yaml-parser".to_owned()).stack_size(PARSER_STACK_BYTES);
        match parser.spawn_scoped(scope, || serde_saphyr::from_str_with_options(text, options())) {
            Ok(handle) => match handle.join() {
                Ok(result) => result.map_err(|error| syntax_error(&error)),
                Err(_) => {
                    Err(SyntaxError { message: "the YAML parser failed on this input".to_owned(), position: None })
                }
            },
            Err(_) => Err(SyntaxError {
                message: "cannot start the YAML parser (out of threads or memory)".to_owned(),
                position: None,
            }),
        }
    })
}

/// The parser's budgets and settings.
fn options() -> serde_saphyr::Options {
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 100_000;
    alias_limits.max_replay_stack_depth = 32;
    alias_limits.max_alias_expansions_per_anchor = 10_000;
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: None,
            max_events: MAX_EVENTS,
            max_documents: MAX_DOCUMENTS,
            max_nodes: MAX_NODES,
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_aliases: 100_000,
            max_anchors: 100_000,
        },
        alias_limits: alias_limits,
        with_snippet: false,
        // Comments are not data; emitted, more than 32 in a row failed with "too many buffered
        // comments".
        emit_comments: false,
        // YAML 1.2: `yes`, `no`, `on`, `y` are strings, not booleans.
        strict_booleans: true,
    }
}

fn parse_on_this_thread(text: &str) -> Stream {
    let options = options();
    let mut stream = Stream::default();
    let mut reader = text.as_bytes();
    for result in serde_saphyr::read_with_options::<_, SpannedNode>(&mut reader, options) {
        match result {
            Ok(node) => {
                let index = stream.documents.len();
                stream.documents.push(Document { index, root: std::sync::Arc::new(node.0) });
            }
            Err(error) => {
                stream.error = Some(syntax_error(&error));
                break;
            }
        }
    }
    stream
}

fn syntax_error(error: &serde_saphyr::Error) -> SyntaxError {
    let plain = error.without_snippet();
    let position = plain.location().and_then(Position::from_location);
    let mut message = plain.to_string();
    // The parser appends its own "at line X column Y"; we show the position separately.
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    SyntaxError { message: message.trim().to_owned(), position }
}

impl Node {
    /// Converts the tree into a JSON value (keys as written).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Number(n) => Value::Number(n.clone()),
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Sequence(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Mapping(entries) => {
                Value::Object(entries.iter().map(|e| (e.key.clone(), e.value.to_json())).collect())
            }
        }
    }

    /// The entry of a mapping with this exact key.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            NodeValue::Mapping(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }
}

/// `Spanned<NodeValue>` flattened into a [`Node`].
struct SpannedNode(Node);

impl<'de> Deserialize<'de> for SpannedNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeValue>::deserialize(deserializer)?;
        let position = Position::from_location(spanned.referenced).unwrap_or(Position::START);
        Ok(Self(Node { position, value: spanned.value }))
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeValue, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<NodeValue, E> {
        Ok(i64::try_from(v).map_or_else(|_| NodeValue::String(v.to_string()), |n| NodeValue::Number(n.into())))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<NodeValue, E> {
        Ok(u64::try_from(v).map_or_else(|_| NodeValue::String(v.to_string()), |n| NodeValue::Number(n.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeValue, E> {
        // JSON has no NaN or infinity; keep them as the text YAML would print.
        Ok(serde_json::Number::from_f64(v).map_or_else(|| NodeValue::String(v.to_string()), NodeValue::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<NodeValue, E> {
        Ok(NodeValue::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<NodeValue, E> {
        Ok(NodeValue::String(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(SpannedNode(node)) = seq.next_element()? {
            items.push(node);
        }
        Ok(NodeValue::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries: Vec<Entry> = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let SpannedNode(value) = map.next_value()?;
            let key_position = Position::from_location(key.referenced).unwrap_or(value.position);
            entries.push(Entry { key: key.value.0, key_position, value });
        }
        Ok(NodeValue::Mapping(entries))
    }
}

/// A mapping key: any scalar, as text (`1: x` has the key `"1"`, as in JSON).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = KeyText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a plain mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
        Ok(KeyText(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<KeyText, E> {
        Ok(KeyText(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
        Ok(KeyText(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
        Ok(KeyText("null".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_values_are_one_based() {
        let stream = parse_stream("a: 1\nb:\n  - x\n  - {c: true}\n");
        assert!(stream.error.is_none(), "{:?}", stream.error);
        let root = &stream.documents[0].root;
        let b = root.get("b").unwrap();
        assert_eq!(b.key_position, Position { line: 2, column: 1 });
        let NodeValue::Sequence(items) = &b.value.value else { panic!("not a sequence") };
        assert_eq!(items[0].position, Position { line: 3, column: 5 });
        assert_eq!(items[1].get("c").unwrap().key_position, Position { line: 4, column: 6 });
        assert_eq!(root.to_json(), serde_json::json!({"a": 1, "b": ["x", {"c": true}]}));
    }

    #[test]
    fn multi_document_streams_keep_every_document() {
        let stream = parse_stream("a: 1\n---\nb: 2\n---\n---\nc: 3\n");
        assert!(stream.error.is_none());
        assert_eq!(stream.documents.len(), 3);
        assert_eq!(stream.documents[2].root.get("c").unwrap().key_position.line, 6);
    }

    #[test]
    fn syntax_errors_carry_a_position_and_keep_earlier_documents() {
        let stream = parse_stream("a: 1\n---\nb: [1, 2\nc: 3\n");
        assert_eq!(stream.documents.len(), 1);
        let error = stream.error.unwrap();
        assert!(error.position.is_some(), "{error:?}");
        assert!(!error.message.contains(" at line "), "{}", error.message);
    }

    #[test]
    fn alias_bombs_are_refused() {
        use std::fmt::Write as _;
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            let aliases = vec![format!("*a{p}"); 10].join(", ");
            let _ = writeln!(text, "a{i}: &a{i} [{aliases}]");
        }
        let started = std::time::Instant::now();
        let stream = parse_stream(&text);
        assert!(stream.error.is_some());
        // Refused without expanding: far below what a hang would take, even on a loaded machine.
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        let stream = parse_stream(&text);
        assert!(stream.error.is_some());
        let text: String = (0..200).flat_map(|i| ["  ".repeat(i), format!("k{i}:\n")]).collect();
        assert!(parse_stream(&text).error.is_some());
    }

    #[test]
    fn keys_and_values_follow_yaml_1_2() {
        let stream = parse_stream("y: yes\non: off\n1: 2\nk: ~\n");
        assert!(stream.error.is_none(), "{:?}", stream.error);
        assert_eq!(stream.documents[0].root.to_json(), serde_json::json!({"y": "yes", "on": "off", "1": 2, "k": null}));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let stream = parse_stream("a: 1\na: 2\n");
        assert_eq!(stream.error.unwrap().position.map(|p| p.line), Some(2));
    }

    #[test]
    fn long_comment_blocks_are_fine() {
        let comments = "  # a line of explanation\n".repeat(100);
        let text = format!("{}a:\n{comments}  b: 1\n{comments}c: [1, # x\n{comments}  2]\n", comments.trim_start());
        let stream = parse_stream(&text);
        assert!(stream.error.is_none(), "{:?}", stream.error);
        assert_eq!(stream.documents[0].root.to_json(), serde_json::json!({"a": {"b": 1}, "c": [1, 2]}));
        assert!(parse_with_serde(&text).error.is_none());
    }

    #[test]
    fn merge_keys_are_applied() {
        let stream = parse_stream("base: &b {x: 1}\nderived:\n  <<: *b\n  y: 2\n");
        assert!(stream.error.is_none(), "{:?}", stream.error);
        assert_eq!(
            stream.documents[0].root.get("derived").unwrap().value.to_json(),
            serde_json::json!({"x": 1, "y": 2})
        );
    }
}

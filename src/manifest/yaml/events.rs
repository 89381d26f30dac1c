//! [`Node`] trees built straight from the YAML parser's events, for the YAML manifests are
//! written in.
//!
//! serde-saphyr's deserializer spends about three times what its parser does (measured: 139 ms
//! of events against 467 ms into `IgnoredAny` for 7.4 MiB, one core). Most manifests use none
//! of what that buys: no tags, anchors, aliases, merge keys or directives, and scalars whose
//! type shows at a glance. For those, this builds the same trees from the events alone. Anything
//! else (and any error, budget or doubt) returns `None`, and the stream is parsed again by
//! serde-saphyr: the two paths never disagree on a tree, because this one declines rather than
//! guesses. A property test holds them equal.

use std::borrow::Cow;

use serde_saphyr::granit_parser::{self, Event, Parser, ScalarStyle, Span};

use super::{Document, Entry, MAX_DEPTH, MAX_DOCUMENTS, MAX_EVENTS, MAX_NODES, Node, NodeValue, Position};

/// A collection whose items are still being read.
enum Open {
    Sequence { position: Position, items: Vec<Node> },
    Mapping { position: Position, entries: Vec<Entry>, key: Option<(String, Position)> },
}

/// Parses `text` into its non-null documents, or `None` when the stream needs serde-saphyr: a
/// tag, an anchor or alias, a merge key, a directive, a key or scalar whose meaning is not
/// plain, a duplicate key, nesting near [`MAX_DEPTH`], a budget more than half spent, or a
/// syntax error.
pub(super) fn parse_plain_stream(text: &str) -> Option<Vec<super::Document>> {
    let mut parser = Parser::new_from_str_with_options(text, parser_options());
    let mut documents = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    let (mut events, mut nodes, mut starts) = (0_usize, 0_usize, 0_usize);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.ok()?;
        events += 1;
        if events > MAX_EVENTS / 2 {
            return None;
        }
        let position = position(&span);
        let node = match event {
            Event::StreamStart | Event::StreamEnd => continue,
            Event::DocumentStart(_, version) => {
                starts += 1;
                if version.is_some() || root.is_some() || !stack.is_empty() || starts > MAX_DOCUMENTS / 2 {
                    return None;
                }
                continue;
            }
            Event::DocumentEnd => {
                if !stack.is_empty() {
                    return None;
                }
                // Null documents (`---` alone, `~`) are skipped, as serde-saphyr does.
                match root.take() {
                    Some(Node { value: NodeValue::Null, .. }) | None => {}
                    Some(node) => {
                        let index = documents.len();
                        documents.push(Document { index, root: std::sync::Arc::new(node) });
                    }
                }
                continue;
            }
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                nodes += 1;
                if let Some(Open::Mapping { key: key @ None, .. }) = stack.last_mut() {
                    *key = Some((key_text(text, style)?, position));
                    continue;
                }
                Node { position, value: scalar(text, style)? }
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                nodes += 1;
                let in_key = matches!(stack.last(), Some(Open::Mapping { key: None, .. }));
                if anchor != 0 || tag.is_some() || in_key || stack.len() + 2 >= MAX_DEPTH {
                    return None;
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Open::Sequence { position, items: Vec::new() }
                } else {
                    Open::Mapping { position, entries: Vec::new(), key: None }
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop()? {
                Open::Sequence { position, items } => Node { position, value: NodeValue::Sequence(items) },
                Open::Mapping { .. } => return None,
            },
            Event::MappingEnd => match stack.pop()? {
                Open::Mapping { position, entries, key: None } if !has_duplicate_keys(&entries) => {
                    Node { position, value: NodeValue::Mapping(entries) }
                }
                _ => return None,
            },
            // Aliases, anchors, unresolved aliases and comments: serde-saphyr's business.
            _ => return None,
        };
        if nodes > MAX_NODES / 2 {
            return None;
        }
        match stack.last_mut() {
            None if root.is_none() => root = Some(node),
            None => return None,
            Some(Open::Sequence { items, .. }) => items.push(node),
            Some(Open::Mapping { entries, key, .. }) => {
                let (key, key_position) = key.take()?;
                entries.push(Entry { key, key_position, value: node });
            }
        }
    }
    (stack.is_empty() && root.is_none()).then_some(documents)
}

/// The parser's settings as serde-saphyr sets them under [`super::options`], so both paths
/// accept the same text.
fn parser_options() -> granit_parser::Options {
    granit_parser::options! {
        flow_nesting_limit: MAX_DEPTH,
        block_nesting_limit: granit_parser::Options::default().block_nesting_limit.max(MAX_DEPTH + 1),
        simple_key_max_lookahead: 1024,
        emit_comments: false,
    }
}

/// Where an event starts, as [`Position::from_location`] makes it of serde-saphyr's location.
fn position(span: &Span) -> Position {
    // The parser's columns are 0-based; serde-saphyr adds one, as this does.
    Position::new(span.start.line(), span.start.col() + 1).unwrap_or(Position::START)
}

/// A mapping key, when its text is plainly what it says: quoted, or plain and starting like a
/// word (not a number, `~`, `null`, a boolean or `<<`).
fn key_text(text: Cow<'_, str>, style: ScalarStyle) -> Option<String> {
    let plain_word = match text.as_bytes().first() {
        None => false,
        Some(first) => {
            !matches!(first, b'0'..=b'9' | b'+' | b'-' | b'.' | b'~' | b'<')
                && !matches!(
                    text.as_ref(),
                    "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
                )
        }
    };
    (style != ScalarStyle::Plain || plain_word).then(|| text.into_owned())
}

/// A scalar's value under YAML 1.2's core schema, for the spellings whose type is not in doubt:
/// quoted and block scalars are strings; plain ones are null, a boolean, a plain decimal number,
/// or a string that no number syntax could read (`1.0.0`, `30s`, `2024-01-01`, `-x`).
fn scalar(text: Cow<'_, str>, style: ScalarStyle) -> Option<NodeValue> {
    if style != ScalarStyle::Plain {
        return Some(NodeValue::String(text.into_owned()));
    }
    Some(match text.as_ref() {
        "" | "~" | "null" | "Null" | "NULL" => NodeValue::Null,
        "true" | "True" | "TRUE" => NodeValue::Bool(true),
        "false" | "False" | "FALSE" => NodeValue::Bool(false),
        plain if might_be_number(plain) => decimal(plain)?,
        _ => NodeValue::String(text.into_owned()),
    })
}

/// Whether any number syntax serde-saphyr knows could read `plain`: a superset of YAML 1.2's
/// integers (with radix prefixes), Rust's float syntax and `.inf`/`.nan`, with `_` anywhere in
/// the digits. What this rejects is certainly a string.
fn might_be_number(plain: &str) -> bool {
    let unsigned = plain.strip_prefix(['+', '-']).unwrap_or(plain);
    let bytes = unsigned.as_bytes();
    if let [b'0', b'x' | b'X' | b'o' | b'O' | b'b' | b'B', rest @ ..] = bytes {
        return rest.iter().all(|b| b.is_ascii_hexdigit() || *b == b'_');
    }
    if matches!(unsigned, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let mut at = 0;
    let mut digits = 0;
    let mut digit_run = |at: &mut usize| {
        while let Some(b) = bytes.get(*at).filter(|b| b.is_ascii_digit() || **b == b'_') {
            digits += usize::from(b.is_ascii_digit());
            *at += 1;
        }
    };
    digit_run(&mut at);
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        digit_run(&mut at);
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        digit_run(&mut at);
    }
    digits > 0 && at == bytes.len()
}

/// A plain decimal number, `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, as serde-saphyr reads it: an
/// integer in 64 bits or a finite fraction. Anything else that might be a number (exponents,
/// `+1`, radix prefixes, leading zeros, `-0`, `_`, `.inf`, out of range) is declined.
fn decimal(plain: &str) -> Option<NodeValue> {
    let negative = plain.starts_with('-');
    let unsigned = plain.strip_prefix('-').unwrap_or(plain);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let is_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !is_digits(whole) || (whole.len() > 1 && whole.starts_with('0')) {
        return None;
    }
    match fraction {
        None if negative && whole == "0" => None,
        None if negative => plain.parse::<i64>().ok().map(|n| NodeValue::Number(n.into())),
        None => plain.parse::<u64>().ok().map(|n| NodeValue::Number(n.into())),
        Some(fraction) if is_digits(fraction) => {
            let value = plain.parse::<f64>().ok().filter(|v| v.is_finite())?;
            serde_json::Number::from_f64(value).map(NodeValue::Number)
        }
        Some(_) => None,
    }
}

/// Whether two entries share a key (serde-saphyr refuses that, with its error).
fn has_duplicate_keys(entries: &[Entry]) -> bool {
    if entries.len() <= 8 {
        return entries.iter().enumerate().any(|(i, a)| entries[i + 1..].iter().any(|b| a.key == b.key));
    }
    let mut keys: Vec<&str> = entries.iter().map(|entry| entry.key.as_str()).collect();
    keys.sort_unstable();
    keys.windows(2).any(|pair| pair[0] == pair[1])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{parse_stream, parse_with_serde};
    use super::parse_plain_stream;

    /// The fast path, where it answers, gives exactly serde-saphyr's documents and positions.
    fn agrees(text: &str) -> Result<bool, TestCaseError> {
        let Some(fast) = parse_plain_stream(text) else { return Ok(false) };
        let slow = parse_with_serde(text);
        prop_assert!(slow.error.is_none(), "fast path accepted what serde-saphyr refuses: {text:?}: {:?}", slow.error);
        prop_assert_eq!(fast, slow.documents, "for {:?}", text);
        Ok(true)
    }

    #[test]
    fn manifests_take_the_fast_path() {
        let text = "apiVersion: agentic.stigmer.ai/v1\nkind: Agent\nmetadata:\n  name: a-1\n  labels: {team: x}\n\
                    spec:\n  instructions: |\n    Be brief.\n  temperature: 0.7\n  maxTurns: 12\n  offset: -3\n\
                    \x20 version: 1.0.0\n  since: 2024-01-01\n  timeout: 30s\n  path: ./skills\n  empty: ~\n\
                    \x20 flags: [true, False, 'yes', \"on\"]\n---\n---\nkind: Skill # trailing\n";
        assert!(agrees(text).is_ok_and(|fast| fast), "declined a plain manifest");
        assert_eq!(parse_stream(text).documents.len(), 2);
    }

    #[test]
    fn anything_unusual_is_left_to_serde_saphyr() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "base: &b {x: 1}\nd:\n  <<: *b\n",
            "a: 1\na: 2\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: [1, 2\n",
            "a: 1e3\n",
            "a: 0x1F\n",
            "a: 007\n",
            "a: +1\n",
            "a: .inf\n",
            "a: 1_000\n",
            "a: 99999999999999999999\n",
            "1: one\n",
            "? [a]\n: b\n",
            "null: x\n",
        ] {
            assert!(parse_plain_stream(text).is_none(), "fast path took {text:?}");
        }
    }

    /// Pieces of YAML, good and bad, for streams the parser has to make sense of.
    const PIECES: &[&str] = &[
        "a",
        "b",
        "key",
        ":",
        ": ",
        "- ",
        "\n",
        "  ",
        "    ",
        "\t",
        "'",
        "\"",
        "'q'",
        "\"d\\n\"",
        "#c",
        " # c\n",
        "---\n",
        "...\n",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "1",
        "0",
        "-1",
        "-0",
        "0.5",
        "-2.25",
        "10.",
        "1.0.0",
        "2024-01-01",
        "30s",
        "-x",
        "+1",
        "~",
        "null",
        "Null",
        "true",
        "TRUE",
        "yes",
        "&x ",
        "*x",
        "!!str ",
        "!t ",
        "<<",
        "|\n",
        ">-\n",
        "%YAML 1.2\n",
        "? ",
        "0x1F",
        "1e3",
        ".inf",
        ".5",
        "./p",
        "007",
        "1_0",
        "é",
        "\r\n",
        "a b",
        "http://h:1/p",
        "${X}",
        "18446744073709551616",
        "-9223372036854775809",
    ];

    fn value(depth: u32) -> BoxedStrategy<serde_json::Value> {
        let scalar = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e6_f64..1e6).prop_map(serde_json::Value::from),
            "[a-zA-Z0-9 ._:/#'\"-]{0,12}".prop_map(serde_json::Value::from),
            prop::sample::select(PIECES).prop_map(|p| serde_json::Value::from(p.trim())),
        ];
        if depth == 0 {
            return scalar.boxed();
        }
        prop_oneof![
            scalar,
            prop::collection::vec(value(depth - 1), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z_][a-z0-9_]{0,6}", value(depth - 1), 0..4)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
        .boxed()
    }

    /// Renders a value as block YAML, with scalars written plain where that reads back as the
    /// same text (serde-saphyr's serializer decides) or plain regardless, to probe resolution.
    fn block(value: &serde_json::Value, indent: usize, plain: bool, out: &mut String) {
        use std::fmt::Write as _;
        let pad = " ".repeat(indent);
        match value {
            serde_json::Value::Array(items) if !items.is_empty() => {
                for item in items {
                    let _ = write!(out, "\n{pad}- ");
                    block(item, indent + 2, plain, out);
                }
            }
            serde_json::Value::Object(map) if !map.is_empty() => {
                for (key, item) in map {
                    let _ = write!(out, "\n{pad}{key}: ");
                    block(item, indent + 2, plain, out);
                }
            }
            serde_json::Value::String(text) if plain => out.push_str(text),
            other => out.push_str(&serde_json::to_string(other).unwrap_or_default()),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn streams_of_pieces_agree(pieces in prop::collection::vec(prop::sample::select(PIECES), 0..40)) {
            agrees(&pieces.concat())?;
        }

        #[test]
        fn block_documents_agree(documents in prop::collection::vec(value(3), 1..4), plain in any::<bool>()) {
            let mut text = String::new();
            for document in &documents {
                text.push_str("---");
                block(document, 0, plain, &mut text);
                text.push('\n');
            }
            agrees(&text)?;
        }
    }
}

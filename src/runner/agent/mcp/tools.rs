//! The tools a server offers as the model sees them: filtered by the enabled list, named
//! `<server>__<tool>` so tools of different servers never collide, and their results turned into
//! text. Pure: no process, no network.

use std::fmt::Write as _;
use std::time::Duration;

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents, Tool};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::McpError;

/// Longest tool name the model providers accept (`^[a-zA-Z0-9_-]{1,64}$`).
const MAX_TOOL_NAME: usize = 64;

/// One tool of an MCP server, as offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    /// The name the model calls it by: `<server>__<tool>`, see [`exposed_tool_name`].
    pub exposed_name: String,
    /// The server's name.
    pub server: String,
    /// The tool's name at its server.
    pub name: String,
    /// What the tool does, as the server describes it.
    pub description: Option<String>,
    /// The JSON Schema of its arguments (an object schema).
    pub input_schema: Value,
}

/// What a tool call gave: text for the model, whether it is an error, and how long it took.
/// Failures of every kind (the tool's own, the protocol's, a timeout, a dead server) are an
/// outcome with `is_error`, so the agent loop can hand them to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallOutcome {
    /// The tool's text content, non-text content described briefly; or what went wrong.
    pub text: String,
    /// Whether the call failed.
    pub is_error: bool,
    /// From sending the call to its outcome.
    pub duration: Duration,
}

/// The name under which `tool` of `server` is offered to the model: `<server>__<tool>` when that
/// is made of `[a-zA-Z0-9_-]`, fits 64 characters and splits back unambiguously (the server name
/// has no `__`). Otherwise the name is sanitized, shortened and suffixed with a hash of the exact
/// pair, so it stays unique and the same from run to run.
pub fn exposed_tool_name(server: &str, tool: &str) -> String {
    let plain = format!("{server}__{tool}");
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !server.is_empty() && !server.contains("__") && plain.len() <= MAX_TOOL_NAME && plain.chars().all(allowed) {
        return plain;
    }
    let digest = Sha256::digest(format!("{server}\0{tool}").as_bytes());
    let hash = hex::encode(&digest[..4]);
    let sanitized: String = plain.chars().map(|c| if allowed(c) { c } else { '_' }).collect();
    // Sanitized is ASCII, so any byte index is a character boundary.
    let keep = sanitized.len().min(MAX_TOOL_NAME - hash.len() - 1);
    format!("{}_{hash}", &sanitized[..keep])
}

/// The server's tools that are enabled, in the server's order.
///
/// # Errors
/// [`McpError::UnknownTools`] naming every enabled tool the server does not offer.
pub(super) fn select_tools(server: &str, offered: Vec<Tool>, enabled: &[String]) -> Result<Vec<McpTool>, McpError> {
    let unknown: Vec<String> =
        enabled.iter().filter(|name| !offered.iter().any(|tool| tool.name == name.as_str())).cloned().collect();
    if !unknown.is_empty() {
        let available = offered.iter().map(|tool| tool.name.to_string()).collect();
        return Err(McpError::UnknownTools { server: server.to_owned(), unknown, available });
    }
    Ok(offered
        .into_iter()
        .filter(|tool| enabled.is_empty() || enabled.iter().any(|name| tool.name == name.as_str()))
        .map(|tool| McpTool {
            exposed_name: exposed_tool_name(server, &tool.name),
            server: server.to_owned(),
            name: tool.name.to_string(),
            description: tool.description.map(|description| description.to_string()),
            input_schema: Value::Object(tool.input_schema.as_ref().clone()),
        })
        .collect())
}

/// A tool's result as text: text blocks joined by newlines, other blocks described in a line,
/// the structured content as JSON when there is nothing else.
pub(super) fn result_text(result: &CallToolResult) -> String {
    let mut parts: Vec<String> = result.content.iter().map(describe).collect();
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    parts.join("\n")
}

fn describe(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(text) => text.text.clone(),
        ContentBlock::Image(image) => format!("[image: {}, {} bytes of base64]", image.mime_type, image.data.len()),
        ContentBlock::Audio(audio) => format!("[audio: {}, {} bytes of base64]", audio.mime_type, audio.data.len()),
        ContentBlock::Resource(embedded) => match &embedded.resource {
            ResourceContents::TextResourceContents { text, .. } => text.clone(),
            ResourceContents::BlobResourceContents { uri, mime_type, blob, .. } => {
                let mut line = format!("[resource {uri}");
                if let Some(mime_type) = mime_type {
                    let _ = write!(line, ", {mime_type}");
                }
                let _ = write!(line, ", {} bytes of base64]", blob.len());
                line
            }
            _ => "[a resource of a kind this client does not know]".to_owned(),
        },
        ContentBlock::ResourceLink(link) => format!("[resource link: {}]", link.uri),
        // The union is non-exhaustive: a newer kind of content is still mentioned.
        _ => "[content of a kind this client does not know]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_server_double_underscore_tool() {
        assert_eq!(exposed_tool_name("github", "create_issue"), "github__create_issue");
        assert_eq!(exposed_tool_name("fs-local", "read-file"), "fs-local__read-file");
    }

    #[test]
    fn other_names_are_sanitized_bounded_and_unique() {
        let dotted = exposed_tool_name("files", "read.file");
        let underscored = exposed_tool_name("files", "read_file");
        assert_eq!(underscored, "files__read_file");
        assert!(dotted.starts_with("files__read_file_"), "{dotted}");
        assert_ne!(dotted, underscored, "a sanitized name never takes a plain one");
        assert_eq!(dotted, exposed_tool_name("files", "read.file"), "the same pair gives the same name");

        // `a__b` + `c` and `a` + `b__c` would both read `a__b__c`.
        assert_ne!(exposed_tool_name("a__b", "c"), exposed_tool_name("a", "b__c"));

        let long_tool = "t".repeat(100);
        let long = exposed_tool_name("server", &long_tool);
        assert_eq!(long.len(), 64);
        assert_ne!(long, exposed_tool_name("server", &"t".repeat(101)), "cut names still differ");
        let unicode = exposed_tool_name("srv", "grüße ✓");
        assert!(unicode.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{unicode}");
    }

    fn tool(name: &str) -> Tool {
        let schema = serde_json::json!({ "type": "object", "properties": { "x": { "type": "string" } } });
        let Value::Object(schema) = schema else { unreachable!() };
        Tool::new(name.to_owned(), format!("does {name}"), schema)
    }

    #[test]
    fn enabled_tools_filter_and_unknown_ones_are_named_with_what_exists() {
        let offered = || vec![tool("echo"), tool("add"), tool("fail")];
        let all = select_tools("t", offered(), &[]).unwrap();
        assert_eq!(all.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["echo", "add", "fail"]);
        assert_eq!(all[0].exposed_name, "t__echo");
        assert_eq!(all[0].description.as_deref(), Some("does echo"));
        assert_eq!(all[0].input_schema["properties"]["x"]["type"], "string");

        let some = select_tools("t", offered(), &["fail".into(), "echo".into()]).unwrap();
        assert_eq!(some.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["echo", "fail"], "server order");

        let error = select_tools("t", offered(), &["echo".into(), "ech0".into(), "mul".into()]).unwrap_err();
        assert_eq!(error.to_string(), "MCP server \"t\" does not offer \"ech0\", \"mul\"; it offers: echo, add, fail");
    }

    #[test]
    fn results_become_text_with_other_content_described() {
        let result = CallToolResult::success(vec![
            ContentBlock::text("first"),
            ContentBlock::image("aGVsbG8=", "image/png"),
            ContentBlock::embedded_text("file:///a.txt", "inside"),
        ]);
        assert_eq!(result_text(&result), "first\n[image: image/png, 8 bytes of base64]\ninside");
        let mut structured = CallToolResult::success(vec![]);
        structured.structured_content = Some(serde_json::json!({ "sum": 3 }));
        assert_eq!(result_text(&structured), r#"{"sum":3}"#);
    }
}

//! A scripted LLM server for tests: real HTTP/1.1 on 127.0.0.1 with an ephemeral port, real
//! `text/event-stream` bodies (chunked or close-delimited), answering each request with the next
//! [`Reply`] of its script and recording what it was sent.
//!
//! The builders at the bottom write the two wire formats as the real servers do (OpenAI's
//! `chat.completion.chunk`s ending in `[DONE]`, Anthropic's named events), so tests of the
//! providers and of the agent loop script whole conversations.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How a streamed body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Transfer-Encoding: chunked`, one HTTP chunk per script chunk.
    Chunked,
    /// No length: the body ends when the server closes the connection.
    CloseDelimited,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// A `200 text/event-stream` answer written chunk by chunk.
    Stream {
        /// The body's pieces, each written (and flushed) on its own.
        chunks: Vec<Vec<u8>>,
        /// How the body is delimited.
        framing: Framing,
        /// A pause before each chunk, so they reach the client apart.
        pause: Duration,
        /// Close the connection after this many chunks, without ending the body.
        cut_after: Option<usize>,
        /// Extra response headers.
        headers: Vec<(String, String)>,
    },
    /// A complete answer with a status and a body (an error, or a non-streamed body).
    Status {
        /// The status code.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// `Content-Type` of the body.
        content_type: String,
        /// The body.
        body: String,
    },
    /// Read the request, then close the connection without answering.
    Hangup,
    /// Read the request, then answer nothing for this long (then hang up).
    Stall(Duration),
}

impl Reply {
    /// A chunked event stream of these pieces (use the wire builders below).
    pub(crate) fn sse(chunks: Vec<String>) -> Self {
        Self::Stream {
            chunks: chunks.into_iter().map(String::into_bytes).collect(),
            framing: Framing::Chunked,
            pause: Duration::from_millis(5),
            cut_after: None,
            headers: Vec::new(),
        }
    }

    /// A status with a JSON body.
    pub(crate) fn json_status(status: u16, body: &Value) -> Self {
        Self::Status {
            status,
            headers: Vec::new(),
            content_type: "application/json".to_owned(),
            body: body.to_string(),
        }
    }

    /// A status with a plain-text body.
    pub(crate) fn text_status(status: u16, body: &str) -> Self {
        Self::Status { status, headers: Vec::new(), content_type: "text/plain".to_owned(), body: body.to_owned() }
    }

    /// Adds a response header.
    #[must_use]
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        if let Self::Stream { headers, .. } | Self::Status { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Ends the stream by closing the connection instead of a last empty chunk.
    #[must_use]
    pub(crate) fn close_delimited(mut self) -> Self {
        if let Self::Stream { framing, .. } = &mut self {
            *framing = Framing::CloseDelimited;
        }
        self
    }

    /// Breaks the stream off after `count` chunks.
    #[must_use]
    pub(crate) fn cut_after(mut self, count: usize) -> Self {
        if let Self::Stream { cut_after, .. } = &mut self {
            *cut_after = Some(count);
        }
        self
    }

    /// Re-splits the stream every `size` bytes, so chunk boundaries fall inside lines and events
    /// (and inside multi-byte characters).
    #[must_use]
    pub(crate) fn rechunked(mut self, size: usize) -> Self {
        if let Self::Stream { chunks, .. } = &mut self {
            let whole: Vec<u8> = chunks.concat();
            *chunks = whole.chunks(size.max(1)).map(<[u8]>::to_vec).collect();
        }
        self
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub(crate) struct RecordedRequest {
    /// `POST`, …
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
    /// When it was received.
    pub at: Instant,
}

impl RecordedRequest {
    /// A header's value (the first, if repeated).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`null` when it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
}

/// The server; it stops when dropped.
pub(crate) struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accepting: JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl ScriptedServer {
    /// Starts a server that answers requests with `script`, in order.
    pub(crate) async fn start(script: impl IntoIterator<Item = Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared { script: Mutex::new(script.into_iter().collect()), ..Shared::default() });
        let serving = Arc::clone(&shared);
        let accepting = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&serving);
                tokio::spawn(async move { serve(stream, &shared).await });
            }
        });
        Self { addr, shared, accepting }
    }

    /// Adds a reply at the end of the script.
    pub(crate) fn push(&self, reply: Reply) {
        self.shared.script.lock().unwrap().push_back(reply);
    }

    /// `http://127.0.0.1:PORT`, with no trailing slash.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The only request received; fails the test if there were more or none.
    pub(crate) fn only_request(&self) -> RecordedRequest {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected one request, got {}", requests.len());
        requests.into_iter().next().unwrap()
    }
}

/// Reads one request, records it, and plays the next reply.
async fn serve(mut stream: TcpStream, shared: &Shared) {
    let Some(request) = read_request(&mut stream).await else { return };
    shared.requests.lock().unwrap().push(request);
    let reply = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| Reply::text_status(500, "the scripted server has no reply left for this request"));
    // Write errors mean the client went away, which some tests do on purpose.
    let _ = play(&mut stream, reply).await;
}

async fn read_request(stream: &mut TcpStream) -> Option<RecordedRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(RecordedRequest {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    })
}

async fn play(stream: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Hangup => Ok(()),
        Reply::Stall(duration) => {
            tokio::time::sleep(duration).await;
            Ok(())
        }
        Reply::Status { status, headers, content_type, body } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
                reason(status),
                body.len()
            );
            for (name, value) in headers {
                let _ = write!(head, "{name}: {value}\r\n");
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
            stream.flush().await
        }
        Reply::Stream { chunks, framing, pause, cut_after, headers } => {
            let mut head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n"
                .to_owned();
            if framing == Framing::Chunked {
                head.push_str("Transfer-Encoding: chunked\r\n");
            }
            for (name, value) in headers {
                let _ = write!(head, "{name}: {value}\r\n");
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.flush().await?;
            for (written, chunk) in chunks.iter().enumerate() {
                if cut_after == Some(written) {
                    return Ok(());
                }
                tokio::time::sleep(pause).await;
                write_chunk(stream, chunk, framing).await?;
            }
            if framing == Framing::Chunked {
                stream.write_all(b"0\r\n\r\n").await?;
            }
            stream.flush().await?;
            stream.shutdown().await
        }
    }
}

async fn write_chunk(stream: &mut TcpStream, bytes: &[u8], framing: Framing) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    match framing {
        Framing::Chunked => {
            stream.write_all(format!("{:x}\r\n", bytes.len()).as_bytes()).await?;
            stream.write_all(bytes).await?;
            stream.write_all(b"\r\n").await?;
        }
        Framing::CloseDelimited => stream.write_all(bytes).await?,
    }
    stream.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

// ---- OpenAI-compatible chat completions ------------------------------------------------------

/// `data: {chunk}` for one `chat.completion.chunk` with this delta and finish reason.
pub(crate) fn openai_chunk(model: &str, delta: &Value, finish_reason: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-7",
        "object": "chat.completion.chunk",
        "created": 1_735_000_000,
        "model": model,
        "system_fingerprint": "fp_ollama",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }],
    });
    format!("data: {chunk}\n\n")
}

/// The usage chunk (`choices: []`) sent when `stream_options.include_usage` is set. A quarter
/// of the prompt is reported as read from the provider's cache, as OpenAI reports a reused
/// prefix.
pub(crate) fn openai_usage(model: &str, input: u64, output: u64) -> String {
    let chunk = json!({
        "id": "chatcmpl-7",
        "object": "chat.completion.chunk",
        "created": 1_735_000_000,
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": input,
            "completion_tokens": output,
            "total_tokens": input + output,
            "prompt_tokens_details": { "cached_tokens": input / 4 },
        },
    });
    format!("data: {chunk}\n\n")
}

/// The end marker.
pub(crate) fn openai_done() -> String {
    "data: [DONE]\n\n".to_owned()
}

/// A text answer streamed in `parts`, then its usage and `[DONE]`.
pub(crate) fn openai_text(model: &str, parts: &[&str], usage: (u64, u64)) -> Vec<String> {
    let mut chunks = vec![openai_chunk(model, &json!({ "role": "assistant", "content": "" }), None)];
    chunks.extend(parts.iter().map(|part| openai_chunk(model, &json!({ "content": part }), None)));
    chunks.push(openai_chunk(model, &json!({}), Some("stop")));
    chunks.push(openai_usage(model, usage.0, usage.1));
    chunks.push(openai_done());
    chunks
}

/// A scripted tool call: its id, name and its arguments' text in fragments.
pub(crate) struct ScriptedCall<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub fragments: &'a [&'a str],
}

/// Tool calls streamed as OpenAI does: per call, a first fragment with id and name, then one
/// fragment per piece of arguments text; then `finish_reason: tool_calls`, usage and `[DONE]`.
pub(crate) fn openai_tool_calls(model: &str, calls: &[ScriptedCall<'_>], usage: (u64, u64)) -> Vec<String> {
    let mut chunks = vec![openai_chunk(model, &json!({ "role": "assistant", "content": null }), None)];
    for (index, call) in calls.iter().enumerate() {
        let first = json!({ "tool_calls": [{
            "index": index, "id": call.id, "type": "function",
            "function": { "name": call.name, "arguments": "" },
        }] });
        chunks.push(openai_chunk(model, &first, None));
        for fragment in call.fragments {
            let next = json!({ "tool_calls": [{ "index": index, "function": { "arguments": fragment } }] });
            chunks.push(openai_chunk(model, &next, None));
        }
    }
    chunks.push(openai_chunk(model, &json!({}), Some("tool_calls")));
    chunks.push(openai_usage(model, usage.0, usage.1));
    chunks.push(openai_done());
    chunks
}

// ---- Anthropic Messages ----------------------------------------------------------------------

/// `event: {type}\ndata: {value}` for one Messages API event (its `type` names the event).
pub(crate) fn anthropic_event(value: &Value) -> String {
    let name = value.get("type").and_then(Value::as_str).unwrap_or("message");
    format!("event: {name}\ndata: {value}\n\n")
}

/// `message_start` with the model and input tokens.
pub(crate) fn anthropic_start(model: &str, input_tokens: u64) -> String {
    anthropic_event(&json!({
        "type": "message_start",
        "message": {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "content": [],
            "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": { "input_tokens": input_tokens, "output_tokens": 1 },
        },
    }))
}

/// `message_delta` with the stop reason and output tokens, then `message_stop`.
pub(crate) fn anthropic_end(stop_reason: &str, output_tokens: u64) -> Vec<String> {
    vec![
        anthropic_event(&json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop_reason, "stop_sequence": null },
            "usage": { "output_tokens": output_tokens },
        })),
        anthropic_event(&json!({ "type": "message_stop" })),
    ]
}

/// A text block at `index` streamed in `parts`.
pub(crate) fn anthropic_text_block(index: usize, parts: &[&str]) -> Vec<String> {
    let mut events = vec![anthropic_event(
        &json!({ "type": "content_block_start", "index": index, "content_block": { "type": "text", "text": "" } }),
    )];
    events.extend(parts.iter().map(|part| {
        anthropic_event(
            &json!({ "type": "content_block_delta", "index": index, "delta": { "type": "text_delta", "text": part } }),
        )
    }));
    events.push(anthropic_event(&json!({ "type": "content_block_stop", "index": index })));
    events
}

/// A `tool_use` block at `index`, its input streamed as `input_json_delta`s.
pub(crate) fn anthropic_tool_block(index: usize, call: &ScriptedCall<'_>) -> Vec<String> {
    let mut events = vec![anthropic_event(&json!({
        "type": "content_block_start", "index": index,
        "content_block": { "type": "tool_use", "id": call.id, "name": call.name, "input": {} },
    }))];
    events.extend(call.fragments.iter().map(|fragment| {
        anthropic_event(&json!({
            "type": "content_block_delta", "index": index,
            "delta": { "type": "input_json_delta", "partial_json": fragment },
        }))
    }));
    events.push(anthropic_event(&json!({ "type": "content_block_stop", "index": index })));
    events
}

/// A text answer streamed in `parts`, with a `ping` as the real API sends.
pub(crate) fn anthropic_text(model: &str, parts: &[&str], usage: (u64, u64)) -> Vec<String> {
    let mut events = vec![anthropic_start(model, usage.0), anthropic_event(&json!({ "type": "ping" }))];
    events.extend(anthropic_text_block(0, parts));
    events.extend(anthropic_end("end_turn", usage.1));
    events
}

/// Optional text, then tool calls, ending with `stop_reason: tool_use`.
pub(crate) fn anthropic_tool_use(
    model: &str,
    text: &[&str],
    calls: &[ScriptedCall<'_>],
    usage: (u64, u64),
) -> Vec<String> {
    let mut events = vec![anthropic_start(model, usage.0)];
    let mut index = 0;
    if !text.is_empty() {
        events.extend(anthropic_text_block(0, text));
        index = 1;
    }
    for call in calls {
        events.extend(anthropic_tool_block(index, call));
        index += 1;
    }
    events.extend(anthropic_end("tool_use", usage.1));
    events
}

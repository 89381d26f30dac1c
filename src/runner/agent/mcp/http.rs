//! The streamable HTTP transport of a server: its URL with the query parameters added, its
//! headers marked sensitive, over a reqwest client with rustls (ring), as elsewhere in stigmer.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Client, Url, redirect};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

use super::McpError;
use super::config::ResolvedHttp;

/// How long connecting may take; the request timeouts bound the rest.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers the transport sets itself and refuses from the caller (lowercase, as `HeaderName`s are).
const RESERVED_HEADERS: [&str; 3] = ["accept", "mcp-session-id", "last-event-id"];

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// The transport to `http`'s server, not yet connected.
pub(super) fn transport(server: &str, http: &ResolvedHttp) -> Result<StreamableHttpClientTransport<Client>, McpError> {
    let invalid = |field: String, reason: String| McpError::InvalidSetting { server: server.to_owned(), field, reason };
    // The parse error never quotes the URL, which may hold a secret.
    let mut url = Url::parse(http.url.expose()).map_err(|error| invalid("http.url".into(), error.to_string()))?;
    if !http.query_params.is_empty() {
        let mut query = url.query_pairs_mut();
        for (name, value) in &http.query_params {
            query.append_pair(name, value.expose());
        }
    }
    let mut headers = HashMap::new();
    for (name, value) in &http.headers {
        let field = || format!("http.headers.{name}");
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|error| invalid(field(), error.to_string()))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(invalid(field(), "the MCP transport sets this header itself".into()));
        }
        let mut value = HeaderValue::from_str(value.expose())
            .map_err(|_| invalid(field(), "the value holds characters a header cannot carry".into()))?;
        value.set_sensitive(true);
        headers.insert(header, value);
    }
    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(headers);
    Ok(StreamableHttpClientTransport::with_client(client(server)?, config))
}

fn client(server: &str) -> Result<Client, McpError> {
    // reqwest is built without a default crypto provider; ring is the one the rest of stigmer
    // uses. A provider installed earlier (by anyone) is kept: `install_default` then fails.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(same_origin_redirects())
        // A pooled connection whose last response was not read to the end stalls the next
        // request for the delayed ACK; MCP requests are few, so do without the pool.
        .pool_max_idle_per_host(0)
        .user_agent(concat!("stigmer/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| McpError::InvalidSetting {
            server: server.to_owned(),
            field: "http".into(),
            reason: format!("cannot create the HTTP client: {error}"),
        })
}

/// Follows only redirects that keep the method and body (307, 308) to the same origin: the
/// headers may carry credentials, and they must not reach another host.
fn same_origin_redirects() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
        let keeps_body = matches!(attempt.status().as_u16(), 307 | 308);
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if same_origin && keeps_body {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

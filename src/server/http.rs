//! The server's HTTP side (`stigmer server --http-listen ADDR`): the web console at `/`
//! (`crate::console`, each session in its token's org); `POST /v1/events` takes
//! CloudEvents 1.0 in structured mode (`application/cloudevents+json`) or binary mode (`ce-*`
//! headers, the body as `data`) with the same bearer tokens as gRPC; `GET /metrics` (Prometheus
//! text), `/healthz` (the process answers) and `/readyz` (the stores open). An accepted event is
//! durable before its `202 Accepted`; a malformed one gets `400` with the reason.

use std::future::{Future, IntoFuture as _};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value};
use tokio::net::TcpListener;

use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::{ServerError, Service, TlsIdentity};

/// The largest event body taken.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Serves the HTTP endpoints on `listener` until `shutdown` completes — over TLS with `tls`
/// ([`acceptor`]: the same certificate as gRPC), when the console's cookie is also `Secure`.
///
/// # Errors
/// The listener failed.
pub async fn serve(
    service: Arc<Service>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let address = listener
        .local_addr()
        .map_err(|source| ServerError::Listen { address: SocketAddr::from(([0, 0, 0, 0], 0)), source })?;
    let console = crate::console::Console::new(super::console::ServerAuthority::new(service.clone()), tls.is_some());
    let app = Router::new()
        .route("/v1/events", post(events))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_EVENT_BYTES))
        .with_state(service)
        .merge(crate::console::router(console))
        .layer(axum::middleware::from_fn(log));
    // Shutdown lets requests in flight finish, but not a page following a run that goes on:
    // after the grace period the rest are cut.
    let (stopping, mut stop) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    let cut_off = async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(super::SHUTDOWN_GRACE).await;
    };
    let Some(acceptor) = tls else {
        let graceful = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .into_future();
        return tokio::select! {
            served = graceful => served.map_err(|source| ServerError::Listen { address, source }),
            () = cut_off => Ok(()),
        };
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // A connection that failed before it was ours (reset, out of descriptors for a
                // moment) is that connection's problem, not the listener's.
                Err(error) => {
                    tracing::warn!(%error, "an HTTP connection could not be accepted");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else { return };
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request.map(axum::body::Body::new))
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = connection.await;
        });
    }
    Ok(())
}

/// What accepts TLS connections with the server's certificate, made before anything listens so
/// a certificate rustls cannot use is said at start.
///
/// # Errors
/// The certificate chain or the key cannot be used.
pub fn acceptor(tls: &TlsIdentity) -> Result<TlsAcceptor, ServerError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let unusable = |what: &str, error: &dyn std::fmt::Display| ServerError::TlsConfig(format!("{what}: {error}"));
    let chain = CertificateDer::pem_slice_iter(&tls.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable("the certificate chain", &e))?;
    let key = PrivateKeyDer::from_pem_slice(&tls.key).map_err(|e| unusable("the private key", &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| unusable("TLS", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| unusable("the certificate and key", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// One line per request, as every gRPC call gets: method, path (never the query, which may
/// hold what a form searched for), status and how long it took to answer.
async fn log(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let (method, path) = (request.method().to_string(), request.uri().path().to_owned());
    let response = next.run(request).await;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::info!(method, path, status = response.status().as_u16(), micros, "http");
    response
}

/// A JSON answer with a status.
fn answer(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], format!("{body}\n")).into_response()
}

fn refused(status: StatusCode, message: &str) -> Response {
    answer(status, &serde_json::json!({ "error": message }))
}

async fn events(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let event = match event_from(&headers, &body) {
        Ok(event) => event,
        Err(reason) => return refused(StatusCode::BAD_REQUEST, &reason),
    };
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match service.publish_http(authorization, peer, &event).await {
        Ok(receipt) => answer(StatusCode::ACCEPTED, &serde_json::to_value(&receipt).unwrap_or(Value::Null)),
        Err(status) => {
            let code = match status.code() {
                tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
                tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
                tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            refused(code, status.message())
        }
    }
}

/// The event a request carries: the body itself in structured mode, or the `ce-` headers with
/// the body as `data` in binary mode.
fn event_from(headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media == "application/cloudevents-batch+json" {
        return Err("batched events are not taken; send one event per request".to_owned());
    }
    if media == "application/cloudevents+json" {
        let event: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        return Ok(event);
    }
    let mut event = Map::new();
    for (name, value) in headers {
        if let Some(attribute) = name.as_str().strip_prefix("ce-") {
            let value = value.to_str().map_err(|_| format!("header {name} is not text"))?;
            event.insert(attribute.to_owned(), Value::from(value));
        }
    }
    if event.is_empty() {
        return Err(
            "no event: send application/cloudevents+json, or the attributes as ce-* headers (binary mode)".to_owned()
        );
    }
    if !body.is_empty() {
        let data = if media.ends_with("json") {
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?
        } else {
            Value::String(String::from_utf8(body.to_vec()).map_err(|_| "the body is not UTF-8 text".to_owned())?)
        };
        if !content_type.is_empty() {
            event.insert("datacontenttype".to_owned(), Value::from(content_type));
        }
        event.insert("data".to_owned(), data);
    }
    Ok(Value::Object(event))
}

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    let orgs = match service.org_backends().await {
        Ok(orgs) => orgs,
        Err(error) => return refused(StatusCode::SERVICE_UNAVAILABLE, &error.to_string()),
    };
    match service.metrics().render(&orgs).await {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(error) => refused(StatusCode::SERVICE_UNAVAILABLE, &error.to_string()),
    }
}

async fn ready(State(service): State<Arc<Service>>) -> Response {
    match service.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {error}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_content_modes_read_as_one_event() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/cloudevents+json".parse().unwrap());
        let body = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"a":1}}"#;
        assert_eq!(event_from(&headers, body).unwrap()["data"]["a"], 1);

        let mut headers = HeaderMap::new();
        for (name, value) in [("ce-specversion", "1.0"), ("ce-id", "2"), ("ce-source", "s"), ("ce-type", "t")] {
            headers.insert(name, value.parse().unwrap());
        }
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let event = event_from(&headers, br#"{"b": 2}"#).unwrap();
        assert_eq!((event["id"].as_str(), event["data"]["b"].as_i64()), (Some("2"), Some(2)));
        assert_eq!(event["datacontenttype"], "application/json");

        assert!(event_from(&HeaderMap::new(), b"{}").unwrap_err().contains("no event"));
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/cloudevents+json".parse().unwrap());
        assert!(event_from(&headers, b"{not json").unwrap_err().contains("not JSON"));
    }
}

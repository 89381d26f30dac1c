//! The web console: server-rendered pages over the `Backend` contract, served by `stigmer
//! server --http-listen` for each caller's org and by `stigmer ui` for the local store. A small
//! script (`assets/console.js`) follows live executions and asks for confirmations; everything
//! else is HTML from the server, every user-supplied text escaped ([`html::esc`]).
//!
//! Security, as for any admin interface on a network: a login secret (an API token, or `stigmer
//! ui`'s one-time token) is exchanged for a server-side session named by an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` over TLS); every state-changing request carries the
//! session's CSRF token; every page is sent with a `Content-Security-Policy` that allows no
//! inline script, `X-Frame-Options: DENY` and `Cache-Control: no-store`; every request checks
//! the session's role on the server (a viewer's forged write is refused with 403); one org per
//! session. No secret value is ever rendered: the store keeps references, and values a manifest
//! declares secret are masked before a page shows them.
//!
//! The console decides nothing the CLI does not: it reads and writes through the `Backend`
//! trait and the same library functions (`reconcile::plan_rollback`, `backend::execution::cancel`
//! and `signal`, `backend::approval::decide`).

mod approvals;
mod audit;
mod catalog;
mod executions;
pub mod html;
mod overview;
mod resources;
pub mod session;
mod timeline;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use session::{MemorySessions, Session, SessionStore};

use crate::backend::{Backend, BackendError, Role};

/// Who a session acts as.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// The org it acts in (none for the local store).
    pub org: Option<String>,
    /// The actor recorded for its changes.
    pub actor: String,
    /// What it may do.
    pub role: Role,
    /// The public id of the API token it logged in with, whose revocation ends the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

/// Why a login or a session is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not a secret this console takes (unknown, revoked, expired, used already).
    #[error("{0}")]
    Secret(String),
    /// A token whose role has no business in the console (a worker's, an events sender's).
    #[error("a {0} token cannot use the console; log in with a viewer, editor or admin token")]
    Role(&'static str),
}

/// What the console stands on: who may log in, and the store each principal acts on.
pub trait Authority: Send + Sync + 'static {
    /// The backend a principal acts through.
    type Backend: Backend + Clone + Send + Sync + 'static;
    /// Where sessions are kept.
    type Sessions: SessionStore;

    /// Who `secret` (what the login form or link carried) is.
    fn login(&self, secret: &str) -> impl Future<Output = Result<Principal, Refused>> + Send;

    /// Whether `principal` may still act (its token is neither revoked nor expired).
    fn still_valid(&self, principal: &Principal) -> impl Future<Output = bool> + Send;

    /// The store, acting as `principal` in its org, for a request from `peer`.
    fn backend(
        &self,
        principal: &Principal,
        peer: Option<SocketAddr>,
    ) -> impl Future<Output = Result<Self::Backend, BackendError>> + Send;

    /// The sessions.
    fn sessions(&self) -> &Self::Sessions;

    /// What the pages call the store (`local store at …`, `stigmer server … (org acme)`).
    fn describe(&self, principal: &Principal) -> String;

    /// Whether a login secret may come in a link (`/login?token=…`): only a one-time secret
    /// should, since a link stays in the browser's history.
    fn takes_links(&self) -> bool {
        false
    }
}

/// The console over an authority.
pub struct Console<A> {
    authority: A,
    /// Every org's resources as lists show them, read again when its store changes.
    catalogs: catalog::Catalogs,
    /// Cookies go only over TLS.
    secure: bool,
}

impl<A: Authority> Console<A> {
    /// A console over `authority`; `secure` when it is served over TLS (its cookie is then
    /// `Secure`).
    pub fn new(authority: A, secure: bool) -> Arc<Self> {
        Arc::new(Self { authority, catalogs: catalog::Catalogs::default(), secure })
    }

    /// The authority underneath.
    pub fn authority(&self) -> &A {
        &self.authority
    }
}

/// The console's routes, every one with its security headers.
pub fn router<A: Authority>(console: Arc<Console<A>>) -> Router {
    Router::new()
        .route("/", get(overview::page::<A>))
        .route("/login", get(session::login_page::<A>).post(session::login::<A>))
        .route("/logout", post(session::logout::<A>))
        .route("/resources", get(resources::kinds::<A>))
        .route("/resources/{kind}", get(resources::list::<A>))
        .route("/resources/{kind}/{name}", get(resources::detail::<A>))
        .route("/resources/{kind}/{name}/history", get(resources::history::<A>))
        .route(
            "/resources/{kind}/{name}/rollback",
            get(resources::confirm_rollback::<A>).post(resources::rollback::<A>),
        )
        .route("/executions", get(executions::list::<A>))
        .route("/executions/{id}", get(executions::detail::<A>))
        .route("/executions/{id}/events", get(executions::events::<A>))
        .route("/executions/{id}/live", get(executions::live::<A>))
        .route("/executions/{id}/cancel", post(executions::cancel::<A>))
        .route("/executions/{id}/signal", post(executions::signal::<A>))
        .route("/executions/{id}/approvals", post(approvals::decide::<A>))
        .route("/audit", get(audit::page::<A>))
        .route("/assets/console.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/assets/console.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
        .layer(middleware::from_fn(headers))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(console)
}

/// The largest form a page posts.
const MAX_FORM_BYTES: usize = 256 * 1024;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The policy every response carries: scripts and styles from this origin only, no inline
/// script, no framing, forms posting here only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

/// Adds the security headers to every response.
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// What went wrong, as a page with the status that says so.
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

impl From<BackendError> for Failure {
    fn from(error: BackendError) -> Self {
        let status = match &error {
            BackendError::NotFound { .. } => StatusCode::NOT_FOUND,
            BackendError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            BackendError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            BackendError::Conflict { .. } => StatusCode::CONFLICT,
            BackendError::Unavailable(_) | BackendError::Busy { .. } | BackendError::Unreachable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, error.to_string())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = format!("<p class=\"error\">{}</p><p><a href=\"/\">Overview</a></p>", html::esc(&self.message));
        (self.status, html::layout(&html::Frame::bare(), title, &body)).into_response()
    }
}

/// What a page handler answers: the page, or why there is none.
pub(crate) type Page = Result<Response, Failure>;

/// The state every handler gets.
pub(crate) type Shared<A> = State<Arc<Console<A>>>;

//! Sessions: a login secret exchanged for a random session id, kept by the server as its
//! SHA-256 and named by an `HttpOnly; SameSite=Strict` cookie (`Secure` over TLS), with a CSRF
//! token every state-changing form carries. A session ends at logout, after [`SESSION_LIFETIME`],
//! or as soon as the API token it was made with is revoked or expires.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, extract::OriginalUri};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::html::{self, Frame, esc};
use super::{Authority, Console, Failure, Page, Principal};
use crate::backend::BackendError;

/// How long a session lasts.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(12);

/// The session cookie.
const COOKIE: &str = "stigmer_session";
/// The cookie the login form is paired with, so a login cannot be forged from another site.
const LOGIN_COOKIE: &str = "stigmer_login";

/// A session as the server keeps it (under the SHA-256 of its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Who it acts as.
    pub principal: Principal,
    /// What every state-changing form must carry.
    pub csrf: String,
    /// When it ends.
    pub expires_at: Timestamp,
}

/// Where sessions are kept: in the process, or where every replica sees them.
pub trait SessionStore: Send + Sync + 'static {
    /// Keeps `session` under `key`.
    fn put(&self, key: &str, session: &Session) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// The session under `key`, if any.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Session>, BackendError>> + Send;
    /// Forgets the session under `key`.
    fn remove(&self, key: &str) -> impl Future<Output = Result<(), BackendError>> + Send;
}

/// Sessions kept in this process.
#[derive(Debug, Default)]
pub struct MemorySessions(Mutex<HashMap<String, Session>>);

impl SessionStore for MemorySessions {
    async fn put(&self, key: &str, session: &Session) -> Result<(), BackendError> {
        let now = Timestamp::now();
        if let Ok(mut sessions) = self.0.lock() {
            sessions.retain(|_, kept| kept.expires_at > now);
            sessions.insert(key.to_owned(), session.clone());
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Session>, BackendError> {
        Ok(self.0.lock().ok().and_then(|sessions| sessions.get(key).cloned()))
    }

    async fn remove(&self, key: &str) -> Result<(), BackendError> {
        if let Ok(mut sessions) = self.0.lock() {
            sessions.remove(key);
        }
        Ok(())
    }
}

/// 32 random bytes, hex.
pub(crate) fn random_hex() -> Result<String, BackendError> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| BackendError::Storage(format!("no randomness available: {e}")))?;
    Ok(hex::encode(bytes))
}

fn key_of(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0_u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")).ok()
}

/// A request from a signed-in session: who it is, its CSRF token, and the store acting for it.
pub(crate) struct Signed<A: Authority> {
    pub principal: Principal,
    pub csrf: String,
    pub backend: A::Backend,
    pub frame: Frame,
}

impl<A: Authority> Signed<A> {
    /// Refuses (403) unless the session may change things.
    pub fn must_write(&self) -> Result<(), Failure> {
        if self.principal.role.writes() {
            Ok(())
        } else {
            Err(Failure::new(
                StatusCode::FORBIDDEN,
                "a viewer cannot change anything; log in with an editor or admin token",
            ))
        }
    }

    /// Refuses (403) a form whose CSRF token is not the session's.
    pub fn check_csrf(&self, given: &str) -> Result<(), Failure> {
        if same(given, &self.csrf) {
            Ok(())
        } else {
            Err(Failure::new(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is not this session's; reload the page and try again",
            ))
        }
    }
}

impl<A: Authority> FromRequestParts<Arc<Console<A>>> for Signed<A> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console<A>>) -> Result<Self, Response> {
        let to_login = |parts: &Parts| {
            if parts.method == axum::http::Method::GET {
                let next = parts
                    .extensions
                    .get::<OriginalUri>()
                    .map_or_else(|| parts.uri.to_string(), |uri| uri.0.to_string());
                Redirect::to(&format!("/login?next={}", html::url_encode(&next))).into_response()
            } else {
                Failure::new(StatusCode::UNAUTHORIZED, "not logged in, or the session ended; log in again")
                    .into_response()
            }
        };
        let Some(id) = cookie(&parts.headers, COOKIE) else { return Err(to_login(parts)) };
        let key = key_of(id);
        let sessions = console.authority.sessions();
        let session = match sessions.get(&key).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(to_login(parts)),
            Err(error) => return Err(Failure::from(error).into_response()),
        };
        if session.expires_at <= Timestamp::now() || !console.authority.still_valid(&session.principal).await {
            let _ = sessions.remove(&key).await;
            return Err(to_login(parts));
        }
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
        let backend =
            console.authority.backend(&session.principal, peer).await.map_err(|e| Failure::from(e).into_response())?;
        let frame = Frame::signed(&session.principal, &session.csrf, &console.authority.describe(&session.principal));
        Ok(Self { principal: session.principal, csrf: session.csrf, backend, frame })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
    /// A one-time link's secret (`stigmer ui`).
    #[serde(default)]
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    login: String,
}

/// Where to go after logging in: a path of this site, never another one. Browsers drop tabs
/// and newlines from a URL and read `\\` as `/`, so `/\t/evil.example` would leave the site:
/// a path with any of them, or with a space, goes to the overview instead.
fn destination(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.chars().any(|c| c == '\\' || c.is_whitespace() || c.is_control()) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// `GET /login`: the form; or, with `?token=`, a one-time link taken at once.
pub(crate) async fn login_page<A: Authority>(
    State(console): State<Arc<Console<A>>>,
    Query(query): Query<LoginQuery>,
) -> Page {
    if let Some(secret) = &query.token {
        if !console.authority.takes_links() {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "this console takes API tokens through its login form only, not in links; open /login",
            ));
        }
        return start(&console, secret, query.next.as_deref()).await;
    }
    let pairing = random_hex()?;
    let body = format!(
        "<form method=\"post\" action=\"/login\" class=\"login\">\
           <label for=\"token\">API token</label>\
           <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" autofocus required>\
           <input type=\"hidden\" name=\"next\" value=\"{}\">\
           <input type=\"hidden\" name=\"login\" value=\"{}\">\
           <button type=\"submit\" id=\"log-in\">Log in</button>\
         </form>\
         <p class=\"muted\">A viewer, editor or admin token of this server (<code>stigmer server token create</code>).</p>",
        esc(&destination(query.next.as_deref())),
        esc(&pairing)
    );
    let mut response = html::layout(&Frame::bare(), "Log in", &body).into_response();
    if let Some(cookie) = set_cookie(LOGIN_COOKIE, &pairing, 600, console.secure) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// `POST /login`: the token exchanged for a session.
pub(crate) async fn login<A: Authority>(
    State(console): State<Arc<Console<A>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Page {
    // The form must come from the page this browser was given, not from another site.
    let paired =
        cookie(&headers, LOGIN_COOKIE).is_some_and(|expected| !form.login.is_empty() && same(expected, &form.login));
    if !paired {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "this login form was not the one this server gave you; open /login again",
        ));
    }
    start(&console, form.token.trim(), form.next.as_deref()).await
}

/// Exchanges `secret` for a session and sends the browser on to `next`.
async fn start<A: Authority>(console: &Console<A>, secret: &str, next: Option<&str>) -> Page {
    let principal = console
        .authority
        .login(secret)
        .await
        .map_err(|refused| Failure::new(StatusCode::UNAUTHORIZED, refused.to_string()))?;
    if !principal.role.reads() {
        return Err(Failure::new(StatusCode::UNAUTHORIZED, super::Refused::Role(principal.role.as_str()).to_string()));
    }
    let (id, csrf) = (random_hex()?, random_hex()?);
    let expires_at = Timestamp::now().checked_add(SESSION_LIFETIME).unwrap_or_else(|_| Timestamp::now());
    let session = Session { principal, csrf, expires_at };
    console.authority.sessions().put(&key_of(&id), &session).await?;
    let mut response = Redirect::to(&destination(next)).into_response();
    let lifetime = SESSION_LIFETIME.as_secs();
    let cookies = [set_cookie(COOKIE, &id, lifetime, console.secure), set_cookie(LOGIN_COOKIE, "", 0, console.secure)];
    for cookie in cookies.into_iter().flatten() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: the session ends here and now.
pub(crate) async fn logout<A: Authority>(
    State(console): State<Arc<Console<A>>>,
    signed: Signed<A>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    signed.check_csrf(&form.csrf)?;
    if let Some(id) = cookie(&headers, COOKIE) {
        console.authority.sessions().remove(&key_of(id)).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    if let Some(cookie) = set_cookie(COOKIE, "", 0, console.secure) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name_and_next_stays_on_this_site() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; stigmer_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
        assert_eq!(destination(Some("/executions?status=running")), "/executions?status=running");
        for away in
            ["//evil.example", "https://evil.example", "\\\\evil", "/\\evil", "/\t/evil.example", "/\n/evil", "/ /evil"]
        {
            assert_eq!(destination(Some(away)), "/", "{away}");
        }
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}

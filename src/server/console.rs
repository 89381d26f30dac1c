//! The web console as the server serves it: a login is one of the server's API tokens (a
//! viewer's, an editor's or an admin's), a session acts in that token's org with its role and
//! ends when the token is revoked or expires; sessions live in the database when replicas share
//! one, so any replica behind a load balancer takes them.

use std::net::SocketAddr;
use std::sync::Arc;

use jiff::Timestamp;

use super::service::Service;
use super::stores::ServerBackend;
use super::tokens::Refusal;
use crate::backend::BackendError;
use crate::console::{Authority, MemorySessions, Principal, Refused, Session, SessionStore};
use crate::store::postgres::SessionRows;

/// Where the server keeps console sessions.
pub enum ServerSessions {
    /// In this process (a server on a data directory: there is one process).
    Memory(MemorySessions),
    /// In the database every replica shares.
    Database(SessionRows),
}

impl SessionStore for ServerSessions {
    async fn put(&self, key: &str, session: &Session) -> Result<(), BackendError> {
        match self {
            Self::Memory(sessions) => sessions.put(key, session).await,
            Self::Database(rows) => {
                let body = serde_json::to_string(session)
                    .map_err(|e| BackendError::Storage(format!("cannot encode a session: {e}")))?;
                rows.put(key, &body, session.expires_at).await
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Session>, BackendError> {
        match self {
            Self::Memory(sessions) => sessions.get(key).await,
            // A session that does not read (written by another version) is no session: log in again.
            Self::Database(rows) => Ok(rows.get(key).await?.and_then(|body| serde_json::from_str(&body).ok())),
        }
    }

    async fn remove(&self, key: &str) -> Result<(), BackendError> {
        match self {
            Self::Memory(sessions) => sessions.remove(key).await,
            Self::Database(rows) => rows.remove(key).await,
        }
    }
}

/// The server's side of the console.
pub struct ServerAuthority {
    service: Arc<Service>,
    sessions: ServerSessions,
}

impl ServerAuthority {
    /// The console's authority over `service`.
    pub fn new(service: Arc<Service>) -> Self {
        let sessions = match service.console_sessions() {
            Some(rows) => ServerSessions::Database(rows),
            None => ServerSessions::Memory(MemorySessions::default()),
        };
        Self { service, sessions }
    }
}

impl Authority for ServerAuthority {
    type Backend = ServerBackend;
    type Sessions = ServerSessions;

    async fn login(&self, secret: &str) -> Result<Principal, Refused> {
        let record = self.service.tokens().verify(Some(&format!("Bearer {secret}")), Timestamp::now()).await;
        let record = record.map_err(|refusal| match refusal {
            Refusal::Malformed | Refusal::Missing => Refused::Secret(
                "that is not an API token (they start with stk_); make one with `stigmer server token create`"
                    .to_owned(),
            ),
            other => Refused::Secret(other.to_string()),
        })?;
        if !record.role.reads() {
            return Err(Refused::Role(record.role.as_str()));
        }
        Ok(Principal { org: Some(record.org), actor: record.name, role: record.role, token_id: Some(record.id) })
    }

    async fn still_valid(&self, principal: &Principal) -> bool {
        match &principal.token_id {
            Some(id) => self.service.tokens().still_valid(id, Timestamp::now()).await,
            None => false,
        }
    }

    async fn backend(&self, principal: &Principal, peer: Option<SocketAddr>) -> Result<ServerBackend, BackendError> {
        let org = principal
            .org
            .as_deref()
            .ok_or_else(|| BackendError::Unauthenticated("a session without an org".to_owned()))?;
        self.service.backend_for(org, &principal.actor, peer).await
    }

    fn sessions(&self) -> &ServerSessions {
        &self.sessions
    }

    fn describe(&self, principal: &Principal) -> String {
        format!("stigmer server, org {}", principal.org.as_deref().unwrap_or("?"))
    }
}

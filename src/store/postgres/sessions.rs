//! The web console's sessions on PostgreSQL, so a browser's session holds on every replica
//! behind a load balancer. What a session holds is the console's business; here a session is a
//! key (the SHA-256 of its id: the id itself is never stored), its JSON and when it ends.

use jiff::Timestamp;
use sqlx::{PgPool, Row as _};

use super::{database_error, to_ns};
use crate::backend::BackendError;

/// The session table.
#[derive(Debug, Clone)]
pub struct SessionRows {
    pool: PgPool,
}

impl SessionRows {
    pub(super) fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Keeps `body` under `key` until `expires_at`, and forgets the sessions that ended.
    ///
    /// # Errors
    /// The database failed.
    pub async fn put(&self, key: &str, body: &str, expires_at: Timestamp) -> Result<(), BackendError> {
        sqlx::query("DELETE FROM stigmer.console_sessions WHERE expires_at <= $1")
            .bind(to_ns(Timestamp::now())?)
            .execute(&self.pool)
            .await
            .map_err(database_error)?;
        sqlx::query(
            "INSERT INTO stigmer.console_sessions (key, body, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at",
        )
        .bind(key)
        .bind(body)
        .bind(to_ns(expires_at)?)
        .execute(&self.pool)
        .await
        .map_err(database_error)?;
        Ok(())
    }

    /// The JSON kept under `key`, unless it ended.
    ///
    /// # Errors
    /// The database failed.
    pub async fn get(&self, key: &str) -> Result<Option<String>, BackendError> {
        let row = sqlx::query("SELECT body FROM stigmer.console_sessions WHERE key = $1 AND expires_at > $2")
            .bind(key)
            .bind(to_ns(Timestamp::now())?)
            .fetch_optional(&self.pool)
            .await
            .map_err(database_error)?;
        row.map(|row| row.try_get::<String, _>("body").map_err(database_error)).transpose()
    }

    /// Forgets the session under `key`.
    ///
    /// # Errors
    /// The database failed.
    pub async fn remove(&self, key: &str) -> Result<(), BackendError> {
        sqlx::query("DELETE FROM stigmer.console_sessions WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(database_error)?;
        Ok(())
    }
}

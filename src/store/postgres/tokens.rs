//! The API token records of a server on PostgreSQL: one table for every org and replica. What a
//! record holds and what a token may do is the server's business; here a record is its id, the
//! hash of its token and its JSON.

use sqlx::{PgPool, Row as _};

use super::database_error;
use crate::backend::BackendError;
use crate::backend::storage::Changes;

/// The token table, and what says it changed on any replica.
#[derive(Debug, Clone)]
pub struct TokenRows {
    pool: PgPool,
    changes: Changes,
}

impl TokenRows {
    pub(super) fn new(pool: PgPool, changes: Changes) -> Self {
        Self { pool, changes }
    }

    /// Every record's JSON.
    ///
    /// # Errors
    /// The database failed.
    pub async fn all(&self) -> Result<Vec<String>, BackendError> {
        let rows =
            sqlx::query("SELECT body FROM stigmer.tokens").fetch_all(&self.pool).await.map_err(database_error)?;
        rows.iter().map(|row| row.try_get::<String, _>("body").map_err(database_error)).collect()
    }

    /// Adds a record.
    ///
    /// # Errors
    /// The id or hash is taken, or the database failed.
    pub async fn insert(&self, id: &str, hash: &str, body: &str) -> Result<(), BackendError> {
        sqlx::query("INSERT INTO stigmer.tokens (id, hash, body) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(hash)
            .bind(body)
            .execute(&self.pool)
            .await
            .map_err(database_error)?;
        Ok(())
    }

    /// Adds a record copied from elsewhere, unless one with its id is there; a record with the
    /// id that says something else is refused.
    ///
    /// # Errors
    /// A different record has the id, or the database failed.
    pub async fn insert_unless_there(&self, id: &str, hash: &str, body: &str) -> Result<(), BackendError> {
        sqlx::query("INSERT INTO stigmer.tokens (id, hash, body) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(hash)
            .bind(body)
            .execute(&self.pool)
            .await
            .map_err(database_error)?;
        let there: String = sqlx::query("SELECT body FROM stigmer.tokens WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(database_error)?
            .try_get("body")
            .map_err(database_error)?;
        let same = serde_json::from_str::<serde_json::Value>(&there).ok()
            == serde_json::from_str::<serde_json::Value>(body).ok();
        if same { Ok(()) } else { Err(BackendError::Storage(format!("the database has another token with id {id}"))) }
    }

    /// Replaces a record's JSON; `false` when there is no such id.
    ///
    /// # Errors
    /// The database failed.
    pub async fn replace(&self, id: &str, body: &str) -> Result<bool, BackendError> {
        let updated = sqlx::query("UPDATE stigmer.tokens SET body = $2 WHERE id = $1")
            .bind(id)
            .bind(body)
            .execute(&self.pool)
            .await
            .map_err(database_error)?;
        Ok(updated.rows_affected() == 1)
    }

    /// What moves when any token changes, on any replica.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

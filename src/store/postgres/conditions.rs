//! Observed conditions in PostgreSQL: a row per resource of an org.

use sqlx::Row as _;

use super::{PgStorage, database_error, from_text, to_text};
use crate::backend::BackendError;
use crate::backend::condition::Observed;

impl PgStorage {
    pub(super) async fn condition_rows(&self) -> Result<Vec<Observed>, BackendError> {
        let rows = sqlx::query("SELECT body FROM stigmer.conditions WHERE org = $1 ORDER BY address")
            .bind(&self.org)
            .fetch_all(self.pool())
            .await
            .map_err(database_error)?;
        rows.iter().map(|row| from_text(row.try_get("body").map_err(database_error)?, "conditions")).collect()
    }

    pub(super) async fn put_condition_rows(&self, observed: &[Observed]) -> Result<(), BackendError> {
        let mut txn = self.pool().begin().await.map_err(database_error)?;
        for one in observed {
            sqlx::query(
                "INSERT INTO stigmer.conditions (org, address, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (org, address) DO UPDATE SET body = EXCLUDED.body",
            )
            .bind(&self.org)
            .bind(&one.address)
            .bind(to_text(one)?)
            .execute(&mut *txn)
            .await
            .map_err(database_error)?;
        }
        txn.commit().await.map_err(database_error)
    }
}

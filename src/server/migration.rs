//! Moving a server's data directory into a PostgreSQL database (`stigmer server migrate-store`):
//! every org's store read whole and copied in one checked transaction, and every token.

use std::path::Path;
use std::time::Duration;

use crate::backend::BackendError;
use crate::store::postgres::PgStore;
use crate::store::redb::{OpenOptions, Store};
use crate::store::transfer::TableSum;

use super::stores::{org_names, org_store};
use super::{TokenError, Tokens};

/// What was copied: per org, its tables; and how many tokens.
#[derive(Debug, Clone, Default)]
pub struct Copied {
    /// Each org's tables, as the copy holds them (equal to the directory's).
    pub orgs: Vec<(String, Vec<TableSum>)>,
    /// The tokens the database holds that the directory has.
    pub tokens: usize,
}

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// An org store cannot be read, or the database failed or holds something else.
    #[error("org {org}")]
    Org {
        /// The org.
        org: String,
        /// Why.
        #[source]
        source: BackendError,
    },
    /// The tokens cannot be read or written.
    #[error(transparent)]
    Tokens(#[from] TokenError),
}

/// Every org store of data directory `data`: (org, its file).
pub fn org_stores(data: &Path) -> Vec<(String, std::path::PathBuf)> {
    org_names(data)
        .into_iter()
        .map(|org| {
            let path = org_store(data, &org);
            (org, path)
        })
        .collect()
}

/// Copies every org of data directory `data`, and its tokens, into `database`; orgs copied
/// before this one stay copied when a later one fails (each is whole on its own).
///
/// # Errors
/// See [`CopyError`].
pub async fn copy_directory(data: &Path, database: &PgStore) -> Result<Copied, CopyError> {
    let mut copied = Copied::default();
    for (org, path) in org_stores(data) {
        let failed = |source| CopyError::Org { org: org.clone(), source };
        let options = OpenOptions::new(
            Duration::from_secs(5),
            format!("stigmer server migrate-store (pid {})", std::process::id()),
        );
        let dump = tokio::task::spawn_blocking(move || Store::open_read_only(&path, &options)?.dump())
            .await
            .map_err(|e| failed(BackendError::Storage(format!("reading the store did not finish: {e}"))))?
            .map_err(failed)?;
        database.copy_org(&org, &dump).await.map_err(failed)?;
        copied.orgs.push((org, dump.sums()));
    }
    let rows = database.tokens();
    for record in Tokens::in_dir(data).list().await? {
        let body = serde_json::to_string(&record)
            .map_err(|e| TokenError::Store(BackendError::Storage(format!("cannot encode a token: {e}"))))?;
        rows.insert_unless_there(&record.id, &record.hash, &body).await.map_err(TokenError::Store)?;
        copied.tokens += 1;
    }
    Ok(copied)
}

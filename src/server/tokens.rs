//! API tokens: `stk_` + 32 random bytes, shown once at creation and kept only as a SHA-256 hash
//! — in `DATA/tokens.json` for a server on a data directory, in the database for one on
//! PostgreSQL. The file is rewritten whole (temp file + rename, under a lock file), so
//! `stigmer server token …` works on a data directory whether or not a server is running, and a
//! running server sees a revocation on its next request; in the database, a change reaches
//! every replica's cache through `LISTEN/NOTIFY` at once (and within a few seconds without it).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::backend::BackendError;
pub use crate::backend::Role;
use crate::store::postgres::TokenRows;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The prefix every token starts with, so a leaked one is easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "stk_";

/// A token as the server keeps it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    /// A short public id, for `token list` and `token revoke`.
    pub id: String,
    /// Who or what holds it; recorded as the actor of every change made with it.
    pub name: String,
    /// The org it acts in.
    pub org: String,
    /// What it may do there.
    pub role: Role,
    /// SHA-256 of the whole token, hex.
    pub hash: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

impl TokenRecord {
    /// Refused when it was revoked or has expired at `now`.
    fn may_act(&self, now: Timestamp) -> Result<(), Refusal> {
        if let Some(at) = self.revoked_at {
            return Err(Refusal::Revoked { id: self.id.clone(), at });
        }
        if let Some(at) = self.expires_at.filter(|at| *at <= now) {
            return Err(Refusal::Expired { id: self.id.clone(), at });
        }
        Ok(())
    }
}

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read or written.
    #[error("cannot use {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database holding the tokens failed.
    #[error(transparent)]
    Store(#[from] BackendError),
    /// The token file does not parse.
    #[error("{} is damaged: {detail}", .path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// No random bytes could be had from the operating system.
    #[error("no randomness available: {0}")]
    Random(String),
    /// No token has this id.
    #[error("no token has id {0}")]
    UnknownId(String),
    /// Not a role.
    #[error("unknown role {0:?}; roles are admin, editor, viewer, worker, events")]
    BadRole(String),
    /// Not a usable org name.
    #[error("invalid org name {name:?}: {reason}")]
    BadOrg {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a presented token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `authorization` header.
    #[error("no token: send `authorization: Bearer stk_…`")]
    Missing,
    /// Not `Bearer stk_…` with the right length.
    #[error("malformed token: expected `Bearer stk_` followed by 64 hex digits")]
    Malformed,
    /// Well-formed but not issued by this server.
    #[error("unknown token")]
    Unknown,
    /// Past its expiry.
    #[error("token {id} expired at {at}")]
    Expired {
        /// The token's id.
        id: String,
        /// When.
        at: Timestamp,
    },
    /// Revoked.
    #[error("token {id} was revoked at {at}")]
    Revoked {
        /// The token's id.
        id: String,
        /// When.
        at: Timestamp,
    },
    /// The token registry could not be read; nobody gets in.
    #[error("the server cannot read its tokens")]
    Unavailable,
}

/// The token registry of a server: its data directory's file, or its database.
#[derive(Debug)]
pub struct Tokens {
    registry: Registry,
}

#[derive(Debug)]
enum Registry {
    File {
        path: PathBuf,
        lock_path: PathBuf,
        /// The records as last read, with the file's identity then (changes when it is replaced).
        cache: Mutex<Option<(FileStamp, Vec<TokenRecord>)>>,
    },
    Database {
        rows: TokenRows,
        /// The records as last read, and when; read again when a token changed anywhere.
        cache: Mutex<Option<(Instant, Vec<TokenRecord>)>>,
        changed: Mutex<tokio::sync::watch::Receiver<u64>>,
    },
}

type FileStamp = (SystemTime, u64, u64);

/// The longest a replica trusts its cache of the database's tokens without hearing of a change.
const TRUST_CACHE: Duration = Duration::from_secs(5);

impl Tokens {
    /// The registry in `data_dir` (nothing is read or created until used).
    pub fn in_dir(data_dir: &Path) -> Self {
        Self {
            registry: Registry::File {
                path: data_dir.join("tokens.json"),
                lock_path: data_dir.join("tokens.lock"),
                cache: Mutex::new(None),
            },
        }
    }

    /// The registry in a server's database.
    pub fn in_database(rows: TokenRows) -> Self {
        let changed = Mutex::new(rows.changes());
        Self { registry: Registry::Database { rows, cache: Mutex::new(None), changed } }
    }

    /// Makes a token. Returns the token itself — the only time it exists outside its holder —
    /// and its record.
    pub async fn create(
        &self,
        org: &str,
        role: Role,
        name: Option<&str>,
        expires_in: Option<SignedDuration>,
        now: Timestamp,
    ) -> Result<(String, TokenRecord), TokenError> {
        check_org(org)?;
        let mut secret = [0_u8; 32];
        getrandom::fill(&mut secret).map_err(|e| TokenError::Random(e.to_string()))?;
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let hash = hash(&token);
        let id = hash[..12].to_owned();
        let record = TokenRecord {
            name: name.map_or_else(|| format!("token-{id}"), str::to_owned),
            id,
            org: org.to_owned(),
            role,
            hash,
            created_at: now,
            expires_at: expires_in.and_then(|d| now.checked_add(d).ok()),
            revoked_at: None,
        };
        match &self.registry {
            Registry::File { .. } => self.update_file(|records| {
                records.push(record.clone());
                Ok(())
            })?,
            Registry::Database { rows, .. } => rows.insert(&record.id, &record.hash, &encode(&record)?).await?,
        }
        Ok((token, record))
    }

    /// Every token ever made, revoked and expired ones included, oldest first.
    pub async fn list(&self) -> Result<Vec<TokenRecord>, TokenError> {
        self.read().await
    }

    /// Revokes a token by id; it stops working on the server's next request.
    pub async fn revoke(&self, id: &str, now: Timestamp) -> Result<TokenRecord, TokenError> {
        // An unknown id is refused before anything is written, so it creates no file.
        let Some(mut record) = self.read().await?.into_iter().find(|r| r.id == id) else {
            return Err(TokenError::UnknownId(id.to_owned()));
        };
        match &self.registry {
            Registry::File { .. } => {
                let mut revoked = None;
                self.update_file(|records| {
                    let record =
                        records.iter_mut().find(|r| r.id == id).ok_or_else(|| TokenError::UnknownId(id.to_owned()))?;
                    record.revoked_at.get_or_insert(now);
                    revoked = Some(record.clone());
                    Ok(())
                })?;
                revoked.ok_or_else(|| TokenError::UnknownId(id.to_owned()))
            }
            Registry::Database { rows, .. } => {
                record.revoked_at.get_or_insert(now);
                if !rows.replace(id, &encode(&record)?).await? {
                    return Err(TokenError::UnknownId(id.to_owned()));
                }
                Ok(record)
            }
        }
    }

    /// The record of a presented `authorization` header value, if it may act now.
    pub async fn verify(&self, authorization: Option<&str>, now: Timestamp) -> Result<TokenRecord, Refusal> {
        let value = authorization.ok_or(Refusal::Missing)?;
        let token = value.strip_prefix("Bearer ").ok_or(Refusal::Malformed)?.trim();
        let digits = token.strip_prefix(TOKEN_PREFIX).ok_or(Refusal::Malformed)?;
        if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Refusal::Malformed);
        }
        let hash = hash(token);
        let record = self.current().await.map_err(|_| Refusal::Unavailable)?.into_iter().find(|r| r.hash == hash);
        let record = record.ok_or(Refusal::Unknown)?;
        record.may_act(now)?;
        Ok(record)
    }

    /// Whether the token with public id `id` may still act: neither revoked nor expired (a
    /// console session made with it ends as soon as it may not).
    pub async fn still_valid(&self, id: &str, now: Timestamp) -> bool {
        self.current().await.is_ok_and(|records| records.iter().any(|r| r.id == id && r.may_act(now).is_ok()))
    }

    /// The records, read again only when they may have changed since the last read.
    async fn current(&self) -> Result<Vec<TokenRecord>, TokenError> {
        match &self.registry {
            Registry::File { path, cache, .. } => {
                let stamp = file_stamp(path);
                let mut cache = cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let (Some(stamp), Some((cached, records))) = (stamp, cache.as_ref())
                    && *cached == stamp
                {
                    return Ok(records.clone());
                }
                let records = self.read_file()?;
                if let Some(stamp) = stamp {
                    *cache = Some((stamp, records.clone()));
                }
                Ok(records)
            }
            Registry::Database { cache, changed, .. } => {
                let moved = changed.lock().map_or(true, |changed| changed.has_changed().unwrap_or(true));
                if !moved
                    && let Ok(cache) = cache.lock()
                    && let Some((read_at, records)) = cache.as_ref()
                    && read_at.elapsed() < TRUST_CACHE
                {
                    return Ok(records.clone());
                }
                if let Ok(mut changed) = changed.lock() {
                    changed.borrow_and_update();
                }
                let records = self.read().await?;
                if let Ok(mut cache) = cache.lock() {
                    *cache = Some((Instant::now(), records.clone()));
                }
                Ok(records)
            }
        }
    }

    async fn read(&self) -> Result<Vec<TokenRecord>, TokenError> {
        match &self.registry {
            Registry::File { .. } => self.read_file(),
            Registry::Database { rows, .. } => {
                let mut records = rows
                    .all()
                    .await?
                    .iter()
                    .map(|body| {
                        serde_json::from_str::<TokenRecord>(body).map_err(|e| {
                            TokenError::Store(BackendError::Storage(format!("a token record does not read: {e}")))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                Ok(records)
            }
        }
    }

    fn read_file(&self) -> Result<Vec<TokenRecord>, TokenError> {
        let Registry::File { path, .. } = &self.registry else { return Ok(Vec::new()) };
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| TokenError::Damaged { path: path.clone(), detail: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(TokenError::Io { path: path.clone(), source }),
        }
    }

    /// Read, change and write the file's records under the lock, replacing the file atomically.
    fn update_file(
        &self,
        change: impl FnOnce(&mut Vec<TokenRecord>) -> Result<(), TokenError>,
    ) -> Result<(), TokenError> {
        let Registry::File { path, lock_path, .. } = &self.registry else { return Ok(()) };
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TokenError::Io { path, source }
        };
        if let Some(dir) = path.parent() {
            crate::private_fs::create_private_dir(dir).map_err(io(dir))?;
        }
        let lock = fs::File::create(lock_path).map_err(io(lock_path))?;
        lock.lock().map_err(io(lock_path))?;
        let mut records = self.read_file()?;
        change(&mut records)?;
        let json = serde_json::to_vec_pretty(&records)
            .map_err(|e| TokenError::Damaged { path: path.clone(), detail: e.to_string() })?;
        let temp = path.with_extension("json.tmp");
        let mut file = crate::private_fs::private_file(&temp).map_err(io(&temp))?;
        file.write_all(&json).and_then(|()| file.sync_all()).map_err(io(&temp))?;
        fs::rename(&temp, path).map_err(io(path))?;
        Ok(())
    }
}

/// A record as the database keeps it.
fn encode(record: &TokenRecord) -> Result<String, TokenError> {
    serde_json::to_string(record)
        .map_err(|e| TokenError::Store(BackendError::Storage(format!("cannot encode a token: {e}"))))
}

/// SHA-256 of a token, hex.
fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn check_org(org: &str) -> Result<(), TokenError> {
    crate::model::meta::check_name(org).map_err(|e| TokenError::BadOrg { name: org.to_owned(), reason: e.to_string() })
}

fn file_stamp(path: &Path) -> Option<FileStamp> {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_works_until_revoked_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::in_dir(dir.path());
        let now = Timestamp::now();
        let (token, record) = tokens.create("acme", Role::Editor, None, None, now).await.unwrap();
        assert!(token.starts_with("stk_") && token.len() == 4 + 64);
        let stored = fs::read_to_string(dir.path().join("tokens.json")).unwrap();
        assert!(!stored.contains(&token[4..]), "only the hash is stored");
        let header = format!("Bearer {token}");
        assert_eq!(tokens.verify(Some(&header), now).await.unwrap().id, record.id);

        assert_eq!(tokens.verify(None, now).await, Err(Refusal::Missing));
        assert_eq!(tokens.verify(Some("Bearer nope"), now).await, Err(Refusal::Malformed));
        let forged = format!("Bearer stk_{}", "0".repeat(64));
        assert_eq!(tokens.verify(Some(&forged), now).await, Err(Refusal::Unknown));

        // Another handle (the CLI) revokes; this one (the server) sees it at once.
        Tokens::in_dir(dir.path()).revoke(&record.id, now).await.unwrap();
        assert!(matches!(tokens.verify(Some(&header), now).await, Err(Refusal::Revoked { .. })));

        let (short, _) =
            tokens.create("acme", Role::Viewer, Some("ci"), Some(SignedDuration::from_secs(60)), now).await.unwrap();
        let later = now.checked_add(SignedDuration::from_secs(61)).unwrap();
        assert!(matches!(tokens.verify(Some(&format!("Bearer {short}")), later).await, Err(Refusal::Expired { .. })));
        assert_eq!(tokens.list().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn bad_orgs_and_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::in_dir(dir.path());
        assert!(matches!(
            tokens.create("../etc", Role::Admin, None, None, Timestamp::now()).await,
            Err(TokenError::BadOrg { .. })
        ));
        assert!(matches!(tokens.revoke("nope", Timestamp::now()).await, Err(TokenError::UnknownId(_))));
    }
}

//! The PostgreSQL store: every org's data in one database that any number of `stigmer server`
//! replicas share, used the way job systems built on PostgreSQL use it — one transaction per
//! primitive, claims by `FOR UPDATE SKIP LOCKED`, exactly-once by primary keys (a schedule slot,
//! an event's identity), wake-ups by `LISTEN/NOTIFY` with a slow poll as the safety net.
//!
//! [`PgStore`] is the connection pool and the listener a server process shares; [`PgStorage`]
//! is one org's view of it, a [`crate::backend::Storage`]. Secret values are sealed by the
//! backend before they get here: the database never sees a plaintext.

mod conditions;
mod executions;
mod resources;
pub mod schema;
mod sessions;
mod storage;
mod tokens;
mod transfer;

use std::collections::HashSet;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Connection as _, PgPool, Row as _};

use crate::backend::BackendError;
use crate::backend::storage::Changes;

pub use schema::{Migrated, SCHEMA_VERSION};
pub use sessions::SessionRows;
pub use tokens::TokenRows;

/// How long a request waits for a connection from the pool before it fails as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a listing of the orgs is used before the database is asked again (another
/// replica's new org is seen within it).
const LIST_ORGS_AGAIN: Duration = Duration::from_secs(1);

/// How long the listener waits before connecting again after losing its connection.
const LISTEN_AGAIN: Duration = Duration::from_secs(1);

/// The channel an execution's changes are announced on (payload: `org/id`).
const EXECUTION_CHANNEL: &str = "stigmer_execution";
/// The channel a queued execution is announced on (payload: the org).
const QUEUE_CHANNEL: &str = "stigmer_queue";
/// The channel token changes are announced on.
const TOKENS_CHANNEL: &str = "stigmer_tokens";

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user@host:5432/db?sslmode=verify-full`.
    pub url: String,
    /// The most connections this process holds (the listener's one besides).
    pub pool: u32,
}

/// The database a server process uses: its pool, and what the listener hears.
#[derive(Clone)]
pub struct PgStore {
    shared: Arc<Shared>,
}

struct Shared {
    pool: PgPool,
    /// How to connect, for the connections that live outside the pool.
    connect: PgConnectOptions,
    /// `PostgreSQL stigmer@db.example.com:5432/stigmer`: never the password.
    description: String,
    /// Bumped when an execution is queued, on any replica: what waiting claims wait on.
    queue: Changes,
    /// Each followed execution's signal, bumped when it changes on any replica.
    executions: Watches,
    /// Bumped when any token changes, on any replica (and whenever the listener reconnects).
    tokens: Changes,
    /// The orgs this process has made sure exist.
    orgs: Mutex<HashSet<String>>,
    /// Every org, as last listed and when: the scheduler and the workers ask many times a
    /// second, and a new org may wait a moment to be seen.
    listed: Mutex<Option<(std::time::Instant, Vec<String>)>>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Ok(mut listener) = self.listener.lock()
            && let Some(task) = listener.take()
        {
            task.abort();
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("database", &self.shared.description).finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `options.url` and checks it is usable: reachable, with the
    /// rights the server needs. Nothing is created: see [`PgStore::migrate`].
    ///
    /// # Errors
    /// The URL does not parse, the database cannot be reached or refuses the role.
    pub async fn connect(options: &PgOptions) -> Result<Self, BackendError> {
        let not_postgres =
            |why: &str| BackendError::Storage(format!("{} is not a PostgreSQL URL: {why}", redact_url(&options.url)));
        if !(options.url.starts_with("postgres://") || options.url.starts_with("postgresql://")) {
            return Err(not_postgres("it starts with neither postgres:// nor postgresql://"));
        }
        let connect = PgConnectOptions::from_str(&options.url).map_err(|error| not_postgres(&error.to_string()))?;
        let description = format!(
            "PostgreSQL {}@{}:{}/{}",
            connect.get_username(),
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or(connect.get_username())
        );
        let pool = PgPoolOptions::new()
            .max_connections(options.pool.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(connect.clone())
            .await
            .map_err(|error| match database_error(error) {
                BackendError::Unavailable(detail) => BackendError::Unavailable(format!("{description}: {detail}")),
                other => other,
            })?;
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(connect.clone());
        let shared = Arc::new(Shared {
            pool,
            connect: connect.clone(),
            description,
            queue: Changes::new(),
            executions: Watches::default(),
            tokens: Changes::new(),
            orgs: Mutex::default(),
            listed: Mutex::new(None),
            listener: Mutex::new(None),
        });
        let task = tokio::spawn(listen(listen_pool, Arc::downgrade(&shared)));
        if let Ok(mut listener) = shared.listener.lock() {
            *listener = Some(task);
        }
        Ok(Self { shared })
    }

    /// Brings the schema up to this binary's version (see [`schema::migrate`]).
    ///
    /// # Errors
    /// The schema is newer than this binary, or the role may not create it.
    pub async fn migrate(&self) -> Result<Migrated, BackendError> {
        schema::migrate(&self.shared.pool).await
    }

    /// Checks the schema is the one this binary writes, without changing it.
    ///
    /// # Errors
    /// It is older (run `stigmer server migrate`) or newer (upgrade stigmer).
    pub async fn check_schema(&self) -> Result<(), BackendError> {
        let mut connection = self.shared.pool.acquire().await.map_err(database_error)?;
        let found = schema::current(&mut connection).await?;
        schema::refuse_newer(found)?;
        if found < SCHEMA_VERSION {
            return Err(BackendError::Incompatible(format!(
                "the database's stigmer schema is at version {found}; this stigmer needs version {SCHEMA_VERSION}: \
                 run `stigmer server migrate --store URL`"
            )));
        }
        Ok(())
    }

    /// Whether the database answers now.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<(), BackendError> {
        sqlx::query("SELECT 1").execute(&self.shared.pool).await.map(drop).map_err(database_error)
    }

    /// Where the data is, for people (never the password).
    pub fn describe(&self) -> &str {
        &self.shared.description
    }

    /// What says an execution was queued, in any org, on any replica.
    pub fn queue_changes(&self) -> &Changes {
        &self.shared.queue
    }

    /// One org's data, the org recorded as existing.
    ///
    /// # Errors
    /// The database failed.
    pub async fn org(&self, org: &str) -> Result<PgStorage, BackendError> {
        let known = self.shared.orgs.lock().is_ok_and(|orgs| orgs.contains(org));
        if !known {
            sqlx::query("INSERT INTO stigmer.orgs (org) VALUES ($1) ON CONFLICT (org) DO NOTHING")
                .bind(org)
                .execute(&self.shared.pool)
                .await
                .map_err(database_error)?;
            if let Ok(mut orgs) = self.shared.orgs.lock() {
                orgs.insert(org.to_owned());
            }
            // A new org here is listed at once.
            if let Ok(mut listed) = self.shared.listed.lock() {
                *listed = None;
            }
        }
        Ok(PgStorage { shared: self.shared.clone(), org: org.to_owned() })
    }

    /// Every org that has data, by name.
    ///
    /// # Errors
    /// The database failed.
    pub async fn orgs(&self) -> Result<Vec<String>, BackendError> {
        if let Ok(listed) = self.shared.listed.lock()
            && let Some((at, orgs)) = listed.as_ref()
            && at.elapsed() < LIST_ORGS_AGAIN
        {
            return Ok(orgs.clone());
        }
        let rows =
            sqlx::query("SELECT org FROM stigmer.orgs").fetch_all(&self.shared.pool).await.map_err(database_error)?;
        let mut orgs = rows
            .iter()
            .map(|row| row.try_get::<String, _>("org"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(database_error)?;
        orgs.sort();
        if let Ok(mut listed) = self.shared.listed.lock() {
            *listed = Some((std::time::Instant::now(), orgs.clone()));
        }
        Ok(orgs)
    }

    /// The web console's sessions, kept server-wide.
    pub fn sessions(&self) -> SessionRows {
        SessionRows::new(self.shared.pool.clone())
    }

    /// The token records, kept server-wide.
    pub fn tokens(&self) -> TokenRows {
        TokenRows::new(self.shared.pool.clone(), self.shared.tokens.clone())
    }

    /// Takes the scheduler's lock if no other replica holds it: the replica holding it fires the
    /// schedules. The lock lives as long as the connection it was taken on, outside the pool: a
    /// replica that dies or loses the database lets go of it.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub async fn lead_schedules(&self) -> Result<Option<Leadership>, BackendError> {
        let mut connection = sqlx::PgConnection::connect_with(&self.shared.connect).await.map_err(database_error)?;
        let taken: bool = sqlx::query("SELECT pg_try_advisory_lock($1) AS taken")
            .bind(SCHEDULER_LOCK)
            .fetch_one(&mut connection)
            .await
            .map_err(database_error)?
            .try_get("taken")
            .map_err(database_error)?;
        Ok(taken.then_some(Leadership { connection }))
    }

    /// Closes the pool: calls in flight finish, new ones fail.
    pub async fn close(&self) {
        self.shared.pool.close().await;
    }
}

/// The advisory lock whose holder fires the schedules ("stgs").
const SCHEDULER_LOCK: i64 = 0x7374_6773;

/// The scheduler's lock, held on a connection of its own.
pub struct Leadership {
    connection: sqlx::PgConnection,
}

impl Leadership {
    /// Whether the lock is still held: its connection still answers.
    pub async fn holds(&mut self) -> bool {
        sqlx::query("SELECT 1").execute(&mut self.connection).await.is_ok()
    }
}

/// Listens for what other replicas (and this one) change, for as long as the store lives;
/// after every (re)connection it says everything changed, since notifications sent while it
/// was away are lost.
async fn listen(pool: PgPool, shared: std::sync::Weak<Shared>) {
    let everything = |shared: &Shared| {
        shared.queue.notify();
        shared.executions.notify_all();
        shared.tokens.notify();
    };
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for changes in the database; trying again");
                tokio::time::sleep(LISTEN_AGAIN).await;
                continue;
            }
        };
        if let Err(error) = listener.listen_all([EXECUTION_CHANNEL, QUEUE_CHANNEL, TOKENS_CHANNEL]).await {
            tracing::warn!(%error, "cannot listen for changes in the database; trying again");
            tokio::time::sleep(LISTEN_AGAIN).await;
            continue;
        }
        let Some(live) = shared.upgrade() else { return };
        everything(&live);
        drop(live);
        loop {
            let heard = listener.try_recv().await;
            let Some(shared) = shared.upgrade() else { return };
            match heard {
                Ok(Some(notification)) => match notification.channel() {
                    TOKENS_CHANNEL => shared.tokens.notify(),
                    QUEUE_CHANNEL => shared.queue.notify(),
                    _ => shared.executions.notify(notification.payload()),
                },
                // Reconnected: anything may have changed meanwhile.
                Ok(None) => everything(&shared),
                Err(error) => {
                    tracing::warn!(%error, "lost the database's change notifications; listening again");
                    everything(&shared);
                    tokio::time::sleep(LISTEN_AGAIN).await;
                    break;
                }
            }
        }
    }
}

/// A signal per followed execution (`org/id`): the ones nobody follows any more are dropped
/// as others are added.
#[derive(Default)]
struct Watches(Mutex<std::collections::HashMap<String, tokio::sync::watch::Sender<u64>>>);

impl Watches {
    fn watch(&self, org: &str, id: &str) -> tokio::sync::watch::Receiver<u64> {
        let Ok(mut watches) = self.0.lock() else { return tokio::sync::watch::Sender::new(0).subscribe() };
        watches.retain(|_, sender| sender.receiver_count() > 0);
        watches.entry(format!("{org}/{id}")).or_insert_with(|| tokio::sync::watch::Sender::new(0)).subscribe()
    }

    fn notify(&self, key: &str) {
        if let Ok(watches) = self.0.lock()
            && let Some(sender) = watches.get(key)
        {
            sender.send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    fn notify_all(&self) {
        if let Ok(watches) = self.0.lock() {
            for sender in watches.values() {
                sender.send_modify(|count| *count = count.wrapping_add(1));
            }
        }
    }
}

/// One org's data in the database: a [`crate::backend::Storage`].
#[derive(Clone)]
pub struct PgStorage {
    shared: Arc<Shared>,
    org: String,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage").field("database", &self.shared.description).field("org", &self.org).finish()
    }
}

impl PgStorage {
    fn pool(&self) -> &PgPool {
        &self.shared.pool
    }
}

/// A failure of the database as a backend error: one a retry may cure (the database is down,
/// restarting, out of connections, or a transaction lost a race) is
/// [`BackendError::Unavailable`]; the rest say what the database said.
#[allow(clippy::needless_pass_by_value, reason = "map_err hands the error over by value")]
pub(crate) fn database_error(error: sqlx::Error) -> BackendError {
    match &error {
        sqlx::Error::Database(database) => {
            let code = database.code().map(std::borrow::Cow::into_owned).unwrap_or_default();
            let message = database.message();
            if code.starts_with("08")
                || matches!(code.as_str(), "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01")
            {
                BackendError::Unavailable(format!(
                    "the database is unavailable ({message}); the request may be retried"
                ))
            } else if code == "42501" {
                BackendError::Storage(format!(
                    "the database refused: {message} (the role lacks a privilege; see `stigmer server migrate`)"
                ))
            } else {
                BackendError::Storage(format!("the database failed ({code}): {message}"))
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => {
            BackendError::Unavailable(format!("the database is unavailable ({error}); the request may be retried"))
        }
        _ => BackendError::Storage(format!("the database failed: {error}")),
    }
}

/// `url` without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A value as the JSON text a row keeps.
fn to_text<T: Serialize>(value: &T) -> Result<String, BackendError> {
    serde_json::to_string(value).map_err(|e| BackendError::Storage(format!("cannot encode a value: {e}")))
}

/// A row's JSON text as a value.
fn from_text<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, BackendError> {
    serde_json::from_str(text)
        .map_err(|e| BackendError::Storage(format!("the database holds a {what} that does not read: {e}")))
}

/// A time as the nanoseconds a row keeps.
fn to_ns(at: Timestamp) -> Result<i64, BackendError> {
    i64::try_from(at.as_nanosecond()).map_err(|_| BackendError::Storage(format!("{at} is out of the stored range")))
}

/// A row's nanoseconds as a time.
fn from_ns(ns: i64) -> Result<Timestamp, BackendError> {
    Timestamp::from_nanosecond(i128::from(ns))
        .map_err(|e| BackendError::Storage(format!("the database holds a time that does not read: {e}")))
}

/// A count as the database keeps it.
fn to_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// A count the database kept.
fn to_u64(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_in_a_message_never_carries_its_password() {
        assert_eq!(redact_url("postgres://ana:s3cret@db:5432/x"), "postgres://ana:***@db:5432/x");
        assert_eq!(redact_url("postgres://ana@db/x"), "postgres://ana@db/x");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}

//! The database schema, as numbered migrations embedded in the binary. Every table lives in the
//! `stigmer` schema; every row of an org's data carries its org, so orgs are isolated by the
//! primary keys every query goes through.
//!
//! A migration runs once, in its own transaction, recorded in `stigmer.schema_migrations`;
//! replicas starting together take turns through an advisory lock. A database whose schema is
//! newer than this binary knows is refused, not touched.

use sqlx::{Executor as _, PgPool, Row as _};

use super::database_error;
use crate::backend::BackendError;

/// One schema change.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first. Never edit one that shipped: add the next.
const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "the server's store", sql: INITIAL },
    Migration { version: 2, name: "console sessions", sql: CONSOLE_SESSIONS },
    Migration { version: 3, name: "observed conditions", sql: CONDITIONS },
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i32 = 3;

/// The advisory lock migrations take, so two replicas never migrate at once ("stgm").
const MIGRATION_LOCK: i64 = 0x7374_676d;

const INITIAL: &str = r"
CREATE TABLE stigmer.orgs (
    org text PRIMARY KEY,
    -- Committed batches and secret changes: the backend's version.
    commit_count bigint NOT NULL DEFAULT 0,
    -- The last audit entry's sequence number.
    audit_sequence bigint NOT NULL DEFAULT 0
);

-- Resources, revisions and audit entries are kept as the JSON the backend speaks.
CREATE TABLE stigmer.resources (
    org text NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (org, kind, name)
);

CREATE TABLE stigmer.revisions (
    org text NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    -- The audit entry's sequence number: a resource deleted and created again keeps its past.
    sequence bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (org, kind, name, sequence)
);

CREATE TABLE stigmer.audit (
    org text NOT NULL,
    sequence bigint NOT NULL,
    at_ns bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (org, sequence)
);

CREATE TABLE stigmer.inventories (
    org text NOT NULL,
    apply_set text NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    PRIMARY KEY (org, apply_set, kind, name)
);

-- Secret values sealed by the server before they get here: never a plaintext.
CREATE TABLE stigmer.secrets (
    org text NOT NULL,
    name text NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (org, name)
);

CREATE TABLE stigmer.keyrings (
    org text PRIMARY KEY,
    body text NOT NULL
);

-- The order executions were queued in, across orgs.
CREATE SEQUENCE stigmer.queue_order;

CREATE TABLE stigmer.executions (
    org text NOT NULL,
    id text NOT NULL,
    target text NOT NULL,
    status text NOT NULL,
    started_ns bigint NOT NULL,
    finished_ns bigint,
    actor text NOT NULL,
    input text NOT NULL,
    output text,
    error text,
    definition text,
    queue text NOT NULL,
    -- Its place in the queue while it is pending.
    queued bigint,
    lease_worker text,
    lease_token text,
    lease_epoch bigint,
    lease_expires_ns bigint,
    attempts bigint NOT NULL DEFAULT 0,
    -- The sequence number of its last event.
    last_event bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (org, id)
);
CREATE INDEX executions_pending ON stigmer.executions (org, queue, queued) WHERE status = 'pending';
CREATE INDEX executions_leased ON stigmer.executions (org, lease_expires_ns) WHERE lease_expires_ns IS NOT NULL;
CREATE INDEX executions_started ON stigmer.executions (org, started_ns);

CREATE TABLE stigmer.execution_events (
    org text NOT NULL,
    id text NOT NULL,
    sequence bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (org, id, sequence)
);

CREATE TABLE stigmer.execution_secrets (
    org text NOT NULL,
    id text NOT NULL,
    sealed bytea NOT NULL,
    PRIMARY KEY (org, id)
);

CREATE TABLE stigmer.workers (
    org text NOT NULL,
    id text NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (org, id)
);

CREATE TABLE stigmer.schedules (
    org text NOT NULL,
    workflow text NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (org, workflow)
);

-- A slot that fired, written with the execution it started: the key is what makes a slot fire
-- once, whichever replica's scheduler gets there.
CREATE TABLE stigmer.schedule_slots (
    org text NOT NULL,
    workflow text NOT NULL,
    slot_ms bigint NOT NULL,
    execution text NOT NULL,
    PRIMARY KEY (org, workflow, slot_ms)
);

-- Events sent in, by their CloudEvent identity: a duplicate is known.
CREATE TABLE stigmer.events (
    org text NOT NULL,
    source text NOT NULL,
    id text NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (org, source, id)
);

-- API tokens: their SHA-256, never a token.
CREATE TABLE stigmer.tokens (
    id text PRIMARY KEY,
    hash text NOT NULL UNIQUE,
    body text NOT NULL
);

-- Followers on every replica wake when their execution changes (payload: org/id), waiting
-- claims when one is queued (payload: org); token changes reach every replica's cache the same
-- way. Notifications are sent at commit, each distinct one once per transaction.
CREATE FUNCTION stigmer.notify_execution() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('stigmer_execution', NEW.org || '/' || NEW.id);
    RETURN NULL;
END $$;
CREATE FUNCTION stigmer.notify_execution_and_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('stigmer_execution', NEW.org || '/' || NEW.id);
    IF NEW.status = 'pending' AND (TG_OP = 'INSERT' OR OLD.status <> 'pending') THEN
        PERFORM pg_notify('stigmer_queue', NEW.org);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER executions_changed AFTER INSERT OR UPDATE ON stigmer.executions
    FOR EACH ROW EXECUTE FUNCTION stigmer.notify_execution_and_queue();
CREATE TRIGGER execution_events_added AFTER INSERT ON stigmer.execution_events
    FOR EACH ROW EXECUTE FUNCTION stigmer.notify_execution();

CREATE FUNCTION stigmer.notify_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('stigmer_tokens', '');
    RETURN NULL;
END $$;
CREATE TRIGGER tokens_changed AFTER INSERT OR UPDATE OR DELETE ON stigmer.tokens
    FOR EACH STATEMENT EXECUTE FUNCTION stigmer.notify_tokens();
";

/// The web console's sessions, which every replica behind a load balancer must see: a row per
/// session under the SHA-256 of its id, with when it ends (nanoseconds since the epoch).
const CONSOLE_SESSIONS: &str = r"
CREATE TABLE stigmer.console_sessions (
    key text PRIMARY KEY,
    body text NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX console_sessions_expiry ON stigmer.console_sessions (expires_at);
";

/// Each resource's observed conditions (health probes), by org and address: observations, not
/// desired state, so apart from the resources and their revisions.
const CONDITIONS: &str = r"
CREATE TABLE stigmer.conditions (
    org text NOT NULL,
    address text NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (org, address)
);
";

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The schema version before.
    pub from: i32,
    /// The schema version now.
    pub to: i32,
}

/// Brings the schema to [`SCHEMA_VERSION`], each missing migration in its own transaction.
///
/// # Errors
/// The database is newer than this binary, unreachable, or the role lacks the rights.
pub async fn migrate(pool: &PgPool) -> Result<Migrated, BackendError> {
    let mut connection = pool.acquire().await.map_err(database_error)?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *connection)
        .await
        .map_err(database_error)?;
    let outcome = migrate_locked(&mut connection).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *connection).await;
    let migrated = outcome?;
    unlocked.map_err(database_error)?;
    Ok(migrated)
}

async fn migrate_locked(connection: &mut sqlx::PgConnection) -> Result<Migrated, BackendError> {
    // A schema made beforehand by someone with more rights is used as it is: creating it needs
    // the right to create schemas in the database, which the server's role may lack.
    let exists = sqlx::query("SELECT to_regnamespace('stigmer') IS NOT NULL AS present")
        .fetch_one(&mut *connection)
        .await
        .map_err(database_error)?
        .try_get::<bool, _>("present")
        .map_err(database_error)?;
    if !exists {
        connection.execute("CREATE SCHEMA stigmer").await.map_err(database_error)?;
    }
    connection
        .execute(
            "CREATE TABLE IF NOT EXISTS stigmer.schema_migrations ( \
                 version integer PRIMARY KEY, name text NOT NULL, \
                 applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL)",
        )
        .await
        .map_err(database_error)?;
    let from = current(&mut *connection).await?;
    refuse_newer(from)?;
    for migration in MIGRATIONS.iter().filter(|m| m.version > from) {
        let mut txn = sqlx::Connection::begin(&mut *connection).await.map_err(database_error)?;
        txn.execute(migration.sql).await.map_err(database_error)?;
        sqlx::query("INSERT INTO stigmer.schema_migrations (version, name, applied_by) VALUES ($1, $2, $3)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(format!("stigmer {}", env!("CARGO_PKG_VERSION")))
            .execute(&mut *txn)
            .await
            .map_err(database_error)?;
        txn.commit().await.map_err(database_error)?;
    }
    Ok(Migrated { from, to: SCHEMA_VERSION })
}

/// The schema version the database is at (0: none yet).
///
/// # Errors
/// The database cannot be read.
pub async fn current(connection: &mut sqlx::PgConnection) -> Result<i32, BackendError> {
    let present = sqlx::query("SELECT to_regclass('stigmer.schema_migrations') IS NOT NULL AS present")
        .fetch_one(&mut *connection)
        .await
        .map_err(database_error)?
        .try_get::<bool, _>("present")
        .map_err(database_error)?;
    if !present {
        return Ok(0);
    }
    sqlx::query("SELECT coalesce(max(version), 0) AS version FROM stigmer.schema_migrations")
        .fetch_one(&mut *connection)
        .await
        .map_err(database_error)?
        .try_get::<i32, _>("version")
        .map_err(database_error)
}

/// Refuses a schema newer than this binary's.
///
/// # Errors
/// [`BackendError::Incompatible`] naming both versions.
pub fn refuse_newer(found: i32) -> Result<(), BackendError> {
    if found > SCHEMA_VERSION {
        return Err(BackendError::Incompatible(format!(
            "the database's stigmer schema is at version {found}, newer than this stigmer {} knows ({SCHEMA_VERSION}); \
             upgrade stigmer to use it",
            env!("CARGO_PKG_VERSION")
        )));
    }
    Ok(())
}

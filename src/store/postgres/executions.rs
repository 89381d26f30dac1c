//! Executions and the execution service in the database: the queue is the pending rows in
//! claim order, a claim takes one row with `FOR UPDATE SKIP LOCKED` (so claimers on any number
//! of replicas never wait for each other or take the same one), and every write a worker makes
//! carries its fence in the statement itself: an append or a finish under a lease that is no
//! longer the execution's changes no row and is refused. Schedule slots and events are kept
//! once by their primary keys.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Row as _};

use super::{PgStorage, database_error, from_ns, from_text, to_i64, to_ns, to_text, to_u64};
use crate::backend::storage::{
    Claimed, EventEffects, Fence, Finish, Fire, claim_record, claimable, fenced, history_moved, no_execution,
    not_parked,
};
use crate::backend::{
    BackendError, ClaimRequest, ExecutionCounts, ExecutionQuery, ExecutionRecord, ExecutionStatus, Lease,
    ScheduleState, WorkerInfo,
};

/// The columns an execution's record is read from (a macro, so queries stay `&'static str`).
macro_rules! record_columns {
    () => {
        "e.id, e.target, e.status, e.started_ns, e.finished_ns, e.actor, e.input, e.output, e.error, e.definition, \
         e.queue, e.lease_worker, e.lease_token, e.lease_epoch, e.lease_expires_ns, e.attempts"
    };
}

pub(super) use record_columns;

/// [`record_columns`] with the definition only when `$7` is true: what a list reads (a definition
/// can be large, and most lists never look into it).
macro_rules! listed_columns {
    () => {
        "e.id, e.target, e.status, e.started_ns, e.finished_ns, e.actor, e.input, e.output, e.error, \
         CASE WHEN $7::boolean THEN e.definition END AS definition, e.queue, e.lease_worker, e.lease_token, \
         e.lease_epoch, e.lease_expires_ns, e.attempts"
    };
}

/// The executions of org `$1` an [`ExecutionQuery`] asks for, its target, status, start,
/// target prefixes and target text bound by [`matching`] as `$2` to `$6`.
macro_rules! matches_query {
    () => {
        " FROM stigmer.executions e WHERE e.org = $1 \
           AND ($2::text IS NULL OR e.target = $2) \
           AND ($3::text IS NULL OR e.status = $3) \
           AND ($4::bigint IS NULL OR e.started_ns >= $4) \
           AND (cardinality($5::text[]) = 0 OR EXISTS (SELECT 1 FROM unnest($5::text[]) p WHERE starts_with(e.target, p))) \
           AND ($6::text IS NULL OR strpos(lower(e.target), lower($6)) > 0)"
    };
}

/// `sql` (which ends in [`matches_query`]) with the org and the query bound.
fn matching<'q>(
    sql: &'static str,
    org: &'q str,
    query: &ExecutionQuery,
) -> Result<sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>, BackendError> {
    Ok(sqlx::query(sql)
        .bind(org)
        .bind(query.target.clone())
        .bind(query.status.map(ExecutionStatus::as_str))
        .bind(query.since.map(to_ns).transpose()?)
        .bind(query.target_prefixes.clone())
        .bind(query.target_contains.clone()))
}

/// The statuses of an execution that is not over, as the rows keep them.
macro_rules! live {
    () => {
        "('pending', 'running', 'waiting')"
    };
}

/// How many candidates of each kind a claim looks at: enough that claimers racing for the
/// same ones still find one that is free.
const CANDIDATES: i64 = 32;

pub(super) fn record_from(row: &PgRow) -> Result<ExecutionRecord, BackendError> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(database_error);
    let json = |name: &str| -> Result<Option<serde_json::Value>, BackendError> {
        row.try_get::<Option<String>, _>(name)
            .map_err(database_error)?
            .map(|text| from_text(&text, "value of an execution"))
            .transpose()
    };
    let status = text("status")?;
    let lease = match (
        row.try_get::<Option<String>, _>("lease_worker").map_err(database_error)?,
        row.try_get::<Option<String>, _>("lease_token").map_err(database_error)?,
        row.try_get::<Option<i64>, _>("lease_epoch").map_err(database_error)?,
        row.try_get::<Option<i64>, _>("lease_expires_ns").map_err(database_error)?,
    ) {
        (Some(worker), Some(token), Some(epoch), Some(expires)) => {
            Some(Lease { worker, token, epoch: to_u64(epoch), expires_at: from_ns(expires)? })
        }
        _ => None,
    };
    Ok(ExecutionRecord {
        id: text("id")?,
        target: text("target")?,
        status: status.parse().map_err(|e: String| BackendError::Storage(e))?,
        started_at: from_ns(row.try_get("started_ns").map_err(database_error)?)?,
        finished_at: row.try_get::<Option<i64>, _>("finished_ns").map_err(database_error)?.map(from_ns).transpose()?,
        actor: text("actor")?,
        input: json("input")?.unwrap_or(serde_json::Value::Null),
        output: json("output")?,
        error: json("error")?,
        definition: json("definition")?,
        queue: text("queue")?,
        lease,
        attempts: to_u64(row.try_get("attempts").map_err(database_error)?),
    })
}

/// Inserts a new execution, queued when pending, with its sealed run secrets; `false`, with
/// nothing written, when one with its id is there already.
async fn insert_execution<'c>(
    executor: impl PgExecutor<'c>,
    org: &str,
    record: &ExecutionRecord,
    sealed: Option<Vec<u8>>,
) -> Result<bool, BackendError> {
    let optional = |value: &Option<serde_json::Value>| value.as_ref().map(to_text).transpose();
    let lease = record.lease.as_ref();
    let inserted = sqlx::query(
        "WITH created AS ( \
             INSERT INTO stigmer.executions (org, id, target, status, started_ns, finished_ns, actor, input, output, \
                 error, definition, queue, queued, lease_worker, lease_token, lease_epoch, lease_expires_ns, attempts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 CASE WHEN $4 = 'pending' THEN nextval('stigmer.queue_order') END, $13, $14, $15, $16, $17) \
             ON CONFLICT (org, id) DO NOTHING RETURNING id \
         ), sealed AS ( \
             INSERT INTO stigmer.execution_secrets (org, id, sealed) SELECT $1, id, $18 FROM created \
             WHERE $18 IS NOT NULL \
         ) \
         SELECT count(*) AS created FROM created",
    )
    .bind(org)
    .bind(&record.id)
    .bind(&record.target)
    .bind(record.status.as_str())
    .bind(to_ns(record.started_at)?)
    .bind(record.finished_at.map(to_ns).transpose()?)
    .bind(&record.actor)
    .bind(to_text(&record.input)?)
    .bind(optional(&record.output)?)
    .bind(optional(&record.error)?)
    .bind(optional(&record.definition)?)
    .bind(&record.queue)
    .bind(lease.map(|l| l.worker.clone()))
    .bind(lease.map(|l| l.token.clone()))
    .bind(lease.map(|l| to_i64(l.epoch)))
    .bind(lease.map(|l| to_ns(l.expires_at)).transpose()?)
    .bind(to_i64(record.attempts))
    .bind(sealed)
    .fetch_one(executor)
    .await
    .map_err(database_error)?;
    Ok(inserted.try_get::<i64, _>("created").map_err(database_error)? == 1)
}

/// Inserts a new execution (its id must be new).
async fn insert_new_execution<'c>(
    executor: impl PgExecutor<'c>,
    org: &str,
    record: &ExecutionRecord,
    sealed: Option<Vec<u8>>,
) -> Result<(), BackendError> {
    if insert_execution(executor, org, record, sealed).await? {
        Ok(())
    } else {
        Err(BackendError::Storage(format!("execution {} already exists", record.id)))
    }
}

/// Inserts an execution copied from another store, unless it is there already.
pub(super) async fn insert_execution_unless_there(
    connection: &mut sqlx::PgConnection,
    org: &str,
    record: &ExecutionRecord,
) -> Result<(), BackendError> {
    insert_execution(connection, org, record, None).await.map(|_| ())
}

/// Appends events under `fence` in one statement; the new last sequence number, or `None`
/// when no row took them (no such execution, or the fence does not hold).
async fn append<'c>(
    executor: impl PgExecutor<'c>,
    org: &str,
    id: &str,
    fence: Option<Fence<'_>>,
    events: &[Box<RawValue>],
) -> Result<Option<u64>, BackendError> {
    let bodies: Vec<String> = events.iter().map(|event| event.get().to_owned()).collect();
    let row = sqlx::query(concat!(
        "WITH e AS ( \
             UPDATE stigmer.executions SET last_event = last_event + $3 \
             WHERE org = $1 AND id = $2 \
               AND ($4::bigint IS NULL OR (lease_epoch = $4 AND lease_token = $5 AND status IN ",
        live!(),
        ")) \
             RETURNING last_event \
         ), added AS ( \
             INSERT INTO stigmer.execution_events (org, id, sequence, body) \
             SELECT $1, $2, e.last_event - $3 + v.n, v.b FROM e, unnest($6::text[]) WITH ORDINALITY AS v(b, n) \
         ) \
         SELECT last_event FROM e"
    ))
    .bind(org)
    .bind(id)
    .bind(i64::try_from(bodies.len()).unwrap_or(i64::MAX))
    .bind(fence.map(|(epoch, _)| to_i64(epoch)))
    .bind(fence.map(|(_, token)| token.to_owned()))
    .bind(bodies)
    .fetch_optional(executor)
    .await
    .map_err(database_error)?;
    row.map(|row| row.try_get::<i64, _>("last_event").map(to_u64)).transpose().map_err(database_error)
}

impl PgStorage {
    pub(super) async fn create(&self, record: ExecutionRecord, sealed: Option<Vec<u8>>) -> Result<(), BackendError> {
        insert_new_execution(self.pool(), &self.org, &record, sealed).await
    }

    /// Why a write under `fence` changed no row: the execution is gone, or the fence no longer
    /// holds (said as a store that checks first would say it).
    async fn refused(&self, id: &str, fence: Option<Fence<'_>>) -> BackendError {
        match self.execution_record(id).await {
            Ok(None) => no_execution(id),
            Ok(Some(record)) => match fenced(&record, fence) {
                Err(error) => error,
                // It moved between the write and this look: the write was refused all the same.
                Ok(()) => BackendError::LeaseLost { id: id.to_owned(), reason: "its lease changed meanwhile".into() },
            },
            Err(error) => error,
        }
    }

    pub(super) async fn claim(
        &self,
        request: &ClaimRequest,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<Claimed>, BackendError> {
        let mut txn = self.pool().begin().await.map_err(database_error)?;
        let found = match &request.id {
            Some(id) => {
                sqlx::query(concat!(
                    "SELECT ",
                    record_columns!(),
                    ", s.sealed FROM stigmer.executions e \
                 LEFT JOIN stigmer.execution_secrets s ON s.org = e.org AND s.id = e.id \
                 WHERE e.org = $1 AND e.id = $2 FOR UPDATE OF e"
                ))
                .bind(&self.org)
                .bind(id)
                .fetch_optional(&mut *txn)
                .await
            }
            // A lapsed lease first (its worker is gone), then the oldest pending one; a row
            // another claimer holds is skipped, not waited for.
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    record_columns!(),
                    ", s.sealed FROM stigmer.executions e \
                 LEFT JOIN stigmer.execution_secrets s ON s.org = e.org AND s.id = e.id \
                 WHERE e.org = $1 AND e.id = ANY(ARRAY( \
                     (SELECT id FROM stigmer.executions WHERE org = $1 AND status IN ('running', 'waiting') \
                        AND lease_expires_ns <= $3 AND queue = ANY($2) ORDER BY lease_expires_ns LIMIT $4) \
                     UNION ALL \
                     (SELECT id FROM stigmer.executions WHERE org = $1 AND status = 'pending' \
                        AND queue = ANY($2) ORDER BY queued LIMIT $4))) \
                   AND (e.status = 'pending' OR (e.status IN ('running', 'waiting') AND e.lease_expires_ns <= $3)) \
                 ORDER BY e.status = 'pending', e.lease_expires_ns, e.queued \
                 LIMIT 1 FOR UPDATE OF e SKIP LOCKED"
                ))
                .bind(&self.org)
                .bind(request.worker.queues.clone())
                .bind(to_ns(now)?)
                .bind(CANDIDATES)
                .fetch_optional(&mut *txn)
                .await
            }
        }
        .map_err(database_error)?;
        let Some(row) = found else {
            txn.rollback().await.map_err(database_error)?;
            return Ok(None);
        };
        let mut record = record_from(&row)?;
        // Claimed by another between its look and this lock, or not claimable by this request.
        if !claimable(&record, now, request.take_over.as_deref()) {
            txn.rollback().await.map_err(database_error)?;
            return Ok(None);
        }
        let sealed: Option<Vec<u8>> = row.try_get("sealed").map_err(database_error)?;
        let event = claim_record(&mut record, request, token, now)?;
        let lease = record.lease.as_ref().ok_or_else(|| BackendError::Storage("a claim made no lease".into()))?;
        sqlx::query(
            "WITH e AS ( \
                 UPDATE stigmer.executions SET status = 'running', attempts = $3, queued = NULL, lease_worker = $4, \
                     lease_token = $5, lease_epoch = $3, lease_expires_ns = $6, last_event = last_event + 1 \
                 WHERE org = $1 AND id = $2 RETURNING last_event \
             ) \
             INSERT INTO stigmer.execution_events (org, id, sequence, body) SELECT $1, $2, last_event, $7 FROM e",
        )
        .bind(&self.org)
        .bind(&record.id)
        .bind(to_i64(record.attempts))
        .bind(&lease.worker)
        .bind(&lease.token)
        .bind(to_ns(lease.expires_at)?)
        .bind(event.get())
        .execute(&mut *txn)
        .await
        .map_err(database_error)?;
        txn.commit().await.map_err(database_error)?;
        Ok(Some((record, sealed)))
    }

    pub(super) async fn renew(
        &self,
        id: &str,
        fence: Fence<'_>,
        lease: Duration,
        now: Timestamp,
    ) -> Result<ExecutionRecord, BackendError> {
        let expires = crate::backend::storage::expiry(now, lease);
        let row = sqlx::query(concat!(
            "UPDATE stigmer.executions e SET lease_expires_ns = $5 \
             WHERE org = $1 AND id = $2 AND lease_epoch = $3 AND lease_token = $4 AND status IN ",
            live!(),
            " \
             RETURNING ",
            record_columns!(),
            ""
        ))
        .bind(&self.org)
        .bind(id)
        .bind(to_i64(fence.0))
        .bind(fence.1)
        .bind(to_ns(expires)?)
        .fetch_optional(self.pool())
        .await
        .map_err(database_error)?;
        match row {
            Some(row) => record_from(&row),
            None => Err(self.refused(id, Some(fence)).await),
        }
    }

    pub(super) async fn append_events(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        events: &[Box<RawValue>],
    ) -> Result<u64, BackendError> {
        match append(self.pool(), &self.org, id, fence, events).await? {
            Some(last) => Ok(last),
            None => Err(self.refused(id, fence).await),
        }
    }

    pub(super) async fn finish(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        finish: Finish<'_>,
        now: Timestamp,
    ) -> Result<(), BackendError> {
        let Finish { status, output, error, last } = finish;
        let optional = |value: Option<&serde_json::Value>| value.map(to_text).transpose();
        let bodies: Vec<String> = last.iter().map(|event| event.get().to_owned()).collect();
        // A final status releases the lease, leaves the queue and drops the run secrets.
        let row = sqlx::query(concat!(
            "WITH e AS ( \
                 UPDATE stigmer.executions SET status = $6, output = $7, error = $8, \
                     finished_ns = CASE WHEN $9 THEN $10::bigint END, \
                     queued = CASE WHEN $9 THEN NULL ELSE queued END, \
                     lease_worker = CASE WHEN $9 THEN NULL ELSE lease_worker END, \
                     lease_token = CASE WHEN $9 THEN NULL ELSE lease_token END, \
                     lease_epoch = CASE WHEN $9 THEN NULL ELSE lease_epoch END, \
                     lease_expires_ns = CASE WHEN $9 THEN NULL ELSE lease_expires_ns END, \
                     last_event = last_event + $3 \
                 WHERE org = $1 AND id = $2 \
                   AND ($4::bigint IS NULL OR (lease_epoch = $4 AND lease_token = $5 AND status IN ",
            live!(),
            ")) \
                 RETURNING last_event \
             ), added AS ( \
                 INSERT INTO stigmer.execution_events (org, id, sequence, body) \
                 SELECT $1, $2, e.last_event - $3 + v.n, v.b FROM e, unnest($11::text[]) WITH ORDINALITY AS v(b, n) \
             ), released AS ( \
                 DELETE FROM stigmer.execution_secrets s USING e WHERE $9 AND s.org = $1 AND s.id = $2 \
             ) \
             SELECT last_event FROM e"
        ))
        .bind(&self.org)
        .bind(id)
        .bind(i64::try_from(bodies.len()).unwrap_or(i64::MAX))
        .bind(fence.map(|(epoch, _)| to_i64(epoch)))
        .bind(fence.map(|(_, token)| token.to_owned()))
        .bind(status.as_str())
        .bind(optional(output)?)
        .bind(optional(error)?)
        .bind(status.is_final())
        .bind(to_ns(now)?)
        .bind(bodies)
        .fetch_optional(self.pool())
        .await
        .map_err(database_error)?;
        match row {
            Some(_) => Ok(()),
            None => Err(self.refused(id, fence).await),
        }
    }

    pub(super) async fn park(
        &self,
        id: &str,
        fence: Fence<'_>,
        until: Option<Timestamp>,
        last: &[Box<RawValue>],
    ) -> Result<(), BackendError> {
        let bodies: Vec<String> = last.iter().map(|event| event.get().to_owned()).collect();
        // No worker holds it from here: a lease of none, lapsing at `until`, or no lease at all.
        let row = sqlx::query(concat!(
            "WITH e AS ( \
                 UPDATE stigmer.executions SET status = 'waiting', \
                     lease_worker = CASE WHEN $6::bigint IS NULL THEN NULL ELSE $7 END, \
                     lease_token = CASE WHEN $6::bigint IS NULL THEN NULL ELSE '' END, \
                     lease_epoch = CASE WHEN $6::bigint IS NULL THEN NULL ELSE lease_epoch END, \
                     lease_expires_ns = $6, \
                     last_event = last_event + $3 \
                 WHERE org = $1 AND id = $2 AND lease_epoch = $4 AND lease_token = $5 AND status IN ",
            live!(),
            " \
                 RETURNING last_event \
             ), added AS ( \
                 INSERT INTO stigmer.execution_events (org, id, sequence, body) \
                 SELECT $1, $2, e.last_event - $3 + v.n, v.b FROM e, unnest($8::text[]) WITH ORDINALITY AS v(b, n) \
             ) \
             SELECT last_event FROM e"
        ))
        .bind(&self.org)
        .bind(id)
        .bind(i64::try_from(bodies.len()).unwrap_or(i64::MAX))
        .bind(to_i64(fence.0))
        .bind(fence.1)
        .bind(until.map(to_ns).transpose()?)
        .bind(crate::backend::approval::PARKED)
        .bind(bodies)
        .fetch_optional(self.pool())
        .await
        .map_err(database_error)?;
        match row {
            Some(_) => Ok(()),
            None => Err(self.refused(id, Some(fence)).await),
        }
    }

    pub(super) async fn decide(
        &self,
        id: &str,
        after: u64,
        events: &[Box<RawValue>],
        audit: &[crate::backend::AuditEntry],
        requeue: bool,
    ) -> Result<(), BackendError> {
        let mut txn = self.pool().begin().await.map_err(database_error)?;
        let row = sqlx::query(concat!(
            "SELECT e.last_event, ",
            record_columns!(),
            " FROM stigmer.executions e WHERE e.org = $1 AND e.id = $2 FOR UPDATE OF e"
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_optional(&mut *txn)
        .await
        .map_err(database_error)?;
        let Some(row) = row else { return Err(no_execution(id)) };
        let record = record_from(&row)?;
        if !crate::backend::approval::is_parked(&record) {
            return Err(not_parked(&record));
        }
        let last = to_u64(row.try_get("last_event").map_err(database_error)?);
        if last != after {
            return Err(history_moved(id, after, last));
        }
        append(&mut *txn, &self.org, id, None, events).await?;
        if requeue {
            sqlx::query(
                "UPDATE stigmer.executions SET status = 'pending', queued = nextval('stigmer.queue_order'), \
                     lease_worker = NULL, lease_token = NULL, lease_epoch = NULL, lease_expires_ns = NULL \
                 WHERE org = $1 AND id = $2",
            )
            .bind(&self.org)
            .bind(id)
            .execute(&mut *txn)
            .await
            .map_err(database_error)?;
        }
        self.audit_entries(&mut txn, audit).await?;
        txn.commit().await.map_err(database_error)
    }

    pub(super) async fn execution_record(&self, id: &str) -> Result<Option<ExecutionRecord>, BackendError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            record_columns!(),
            " FROM stigmer.executions e WHERE e.org = $1 AND e.id = $2"
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(database_error)?;
        row.as_ref().map(record_from).transpose()
    }

    pub(super) async fn execution_records(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, BackendError> {
        let rows = match query.page {
            Some(page) => {
                // Ids compare byte by byte, as Rust compares them, whatever the database's locale.
                let sql = concat!(
                    "SELECT ",
                    listed_columns!(),
                    matches_query!(),
                    " ORDER BY e.started_ns DESC, e.id COLLATE \"C\" DESC LIMIT $8 OFFSET $9"
                );
                matching(sql, &self.org, query)?
                    .bind(query.definitions)
                    .bind(i64::try_from(page.take).unwrap_or(i64::MAX))
                    .bind(i64::try_from(page.skip).unwrap_or(i64::MAX))
                    .fetch_all(self.pool())
                    .await
            }
            None => {
                matching(concat!("SELECT ", listed_columns!(), matches_query!()), &self.org, query)?
                    .bind(query.definitions)
                    .fetch_all(self.pool())
                    .await
            }
        }
        .map_err(database_error)?;
        let mut found = rows.iter().map(record_from).collect::<Result<Vec<_>, _>>()?;
        if query.page.is_none() {
            found.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        }
        Ok(found)
    }

    pub(super) async fn count_executions(&self, query: &ExecutionQuery) -> Result<ExecutionCounts, BackendError> {
        let sql = concat!("SELECT e.status, count(*) AS executions", matches_query!(), " GROUP BY e.status");
        let rows = matching(sql, &self.org, query)?.fetch_all(self.pool()).await.map_err(database_error)?;
        let mut counts = ExecutionCounts::new();
        for row in &rows {
            let status: String = row.try_get("status").map_err(database_error)?;
            let count: i64 = row.try_get("executions").map_err(database_error)?;
            counts.insert(status.parse().map_err(BackendError::Storage)?, to_u64(count));
        }
        Ok(counts)
    }

    pub(super) async fn execution_events(
        &self,
        id: &str,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, serde_json::Value)>, BackendError> {
        let rows = sqlx::query(
            "SELECT sequence, body FROM stigmer.execution_events \
             WHERE org = $1 AND id = $2 AND sequence > $3 ORDER BY sequence LIMIT $4",
        )
        .bind(&self.org)
        .bind(id)
        .bind(to_i64(after))
        .bind(limit.map(|limit| i64::try_from(limit).unwrap_or(i64::MAX)))
        .fetch_all(self.pool())
        .await
        .map_err(database_error)?;
        rows.iter()
            .map(|row| {
                let sequence = to_u64(row.try_get("sequence").map_err(database_error)?);
                Ok((sequence, from_text(row.try_get("body").map_err(database_error)?, "event")?))
            })
            .collect()
    }

    pub(super) async fn seen(&self, worker: &WorkerInfo, now: Timestamp) -> Result<(), BackendError> {
        let worker = WorkerInfo { last_seen: now, ..worker.clone() };
        sqlx::query(
            "INSERT INTO stigmer.workers (org, id, body) VALUES ($1, $2, $3) \
             ON CONFLICT (org, id) DO UPDATE SET body = EXCLUDED.body",
        )
        .bind(&self.org)
        .bind(&worker.id)
        .bind(to_text(&worker)?)
        .execute(self.pool())
        .await
        .map_err(database_error)?;
        Ok(())
    }

    pub(super) async fn worker_rows(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        let rows = sqlx::query("SELECT body FROM stigmer.workers WHERE org = $1")
            .bind(&self.org)
            .fetch_all(self.pool())
            .await
            .map_err(database_error)?;
        let mut workers: Vec<WorkerInfo> = rows
            .iter()
            .map(|row| from_text(row.try_get("body").map_err(database_error)?, "worker"))
            .collect::<Result<_, _>>()?;
        workers.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(workers)
    }

    pub(super) async fn schedule_rows(&self) -> Result<Vec<(String, ScheduleState)>, BackendError> {
        let rows = sqlx::query("SELECT workflow, body FROM stigmer.schedules WHERE org = $1")
            .bind(&self.org)
            .fetch_all(self.pool())
            .await
            .map_err(database_error)?;
        let mut states = rows
            .iter()
            .map(|row| {
                let workflow: String = row.try_get("workflow").map_err(database_error)?;
                Ok((workflow, from_text(row.try_get("body").map_err(database_error)?, "schedule")?))
            })
            .collect::<Result<Vec<_>, BackendError>>()?;
        states.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(states)
    }

    pub(super) async fn put_schedule(&self, workflow: &str, state: &ScheduleState) -> Result<(), BackendError> {
        put_schedule(self.pool(), &self.org, workflow, state).await
    }

    /// Only the flag changes; the row is written with `initial` when there is none.
    pub(super) async fn pause(
        &self,
        workflow: &str,
        paused: bool,
        initial: &ScheduleState,
    ) -> Result<(), BackendError> {
        sqlx::query(
            "INSERT INTO stigmer.schedules (org, workflow, body) VALUES ($1, $2, $3) \
             ON CONFLICT (org, workflow) DO UPDATE \
             SET body = jsonb_set(stigmer.schedules.body::jsonb, '{paused}', to_jsonb($4::boolean))::text",
        )
        .bind(&self.org)
        .bind(workflow)
        .bind(to_text(initial)?)
        .bind(paused)
        .execute(self.pool())
        .await
        .map_err(database_error)?;
        Ok(())
    }

    /// One transaction: each slot's key inserted unless it is there or its schedule is paused
    /// (the row locked until the commit), and only then its state and its execution.
    pub(super) async fn fire(&self, fires: Vec<Fire>) -> Result<Vec<bool>, BackendError> {
        if fires.is_empty() {
            return Ok(Vec::new());
        }
        let mut txn = self.pool().begin().await.map_err(database_error)?;
        let mut outcomes = Vec::with_capacity(fires.len());
        for fire in &fires {
            let paused = sqlx::query_scalar::<_, bool>(
                "SELECT COALESCE((body::jsonb ->> 'paused')::boolean, false) FROM stigmer.schedules \
                 WHERE org = $1 AND workflow = $2 FOR UPDATE",
            )
            .bind(&self.org)
            .bind(&fire.workflow)
            .fetch_optional(&mut *txn)
            .await
            .map_err(database_error)?;
            if paused == Some(true) {
                outcomes.push(false);
                continue;
            }
            let taken = sqlx::query(
                "INSERT INTO stigmer.schedule_slots (org, workflow, slot_ms, execution) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (org, workflow, slot_ms) DO NOTHING",
            )
            .bind(&self.org)
            .bind(&fire.workflow)
            .bind(fire.slot.as_millisecond())
            .bind(&fire.record.id)
            .execute(&mut *txn)
            .await
            .map_err(database_error)?;
            let first = taken.rows_affected() == 1;
            if first {
                put_schedule(&mut *txn, &self.org, &fire.workflow, &fire.state).await?;
                insert_new_execution(&mut *txn, &self.org, &fire.record, None).await?;
            }
            outcomes.push(first);
        }
        txn.commit().await.map_err(database_error)?;
        Ok(outcomes)
    }

    pub(super) async fn publish(
        &self,
        event: &serde_json::Value,
        effects: EventEffects,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        let text = |name: &str| event.get(name).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
        let mut txn = self.pool().begin().await.map_err(database_error)?;
        let kept = sqlx::query(
            "INSERT INTO stigmer.events (org, source, id, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org, source, id) DO NOTHING",
        )
        .bind(&self.org)
        .bind(text("source"))
        .bind(text("id"))
        .bind(to_text(event)?)
        .execute(&mut *txn)
        .await
        .map_err(database_error)?;
        if kept.rows_affected() == 0 {
            txn.rollback().await.map_err(database_error)?;
            return Ok(false);
        }
        let signal = serde_json::json!({ "at": now, "event": "signal", "cloudEvent": event });
        let raw = serde_json::value::to_raw_value(&signal)
            .map_err(|e| BackendError::Storage(format!("cannot encode the event: {e}")))?;
        for execution in &effects.deliver {
            // One removed since it was picked has nothing to be handed to: `None` is fine.
            append(&mut *txn, &self.org, execution, None, std::slice::from_ref(&raw)).await?;
        }
        for (workflow, record, state) in &effects.start {
            if let Some(record) = record {
                insert_new_execution(&mut *txn, &self.org, record, None).await?;
            }
            put_schedule(&mut *txn, &self.org, workflow, state).await?;
        }
        txn.commit().await.map_err(database_error)?;
        Ok(true)
    }
}

async fn put_schedule(
    executor: impl PgExecutor<'_>,
    org: &str,
    workflow: &str,
    state: &ScheduleState,
) -> Result<(), BackendError> {
    // The stored `paused` flag is kept: only a pause changes it.
    sqlx::query(
        "INSERT INTO stigmer.schedules (org, workflow, body) VALUES ($1, $2, $3) \
         ON CONFLICT (org, workflow) DO UPDATE SET body = jsonb_set(EXCLUDED.body::jsonb, '{paused}', \
         COALESCE(stigmer.schedules.body::jsonb -> 'paused', 'false'::jsonb))::text",
    )
    .bind(org)
    .bind(workflow)
    .bind(to_text(state)?)
    .execute(executor)
    .await
    .map_err(database_error)?;
    Ok(())
}

//! One org's data copied into the database whole, and read back to prove it: the copy, the read
//! and the comparison are one transaction, so a copy that does not match leaves nothing behind;
//! rows already there are kept, so copying again adds nothing and checks the same.

use sqlx::{PgConnection, Row as _};

use super::executions::{insert_execution_unless_there, record_columns, record_from};
use super::{PgStore, database_error, from_text, to_i64, to_ns, to_text, to_u64};
use crate::backend::BackendError;
use crate::model::Kind;
use crate::store::transfer::{OrgData, differences};

impl PgStore {
    /// Copies `data` into org `org` and checks the org then holds exactly it.
    ///
    /// # Errors
    /// The org in the database holds something else (it was changed since an earlier copy), or
    /// the database failed; nothing was written.
    pub async fn copy_org(&self, org: &str, data: &OrgData) -> Result<(), BackendError> {
        let mut txn = self.shared.pool.begin().await.map_err(database_error)?;
        write(&mut txn, org, data).await?;
        let copied = read(&mut txn, org).await?;
        let wrong = differences(&data.sums(), &copied.sums());
        if !wrong.is_empty() {
            txn.rollback().await.map_err(database_error)?;
            return Err(BackendError::Storage(format!(
                "the database's org {org} does not hold what the directory holds ({}); it was changed since an \
                 earlier copy, so nothing was copied",
                wrong.join("; ")
            )));
        }
        txn.commit().await.map_err(database_error)
    }

    /// Every org's data, for a check from outside (`migrate-store` run again).
    ///
    /// # Errors
    /// The database failed.
    pub async fn read_org(&self, org: &str) -> Result<OrgData, BackendError> {
        let mut connection = self.shared.pool.acquire().await.map_err(database_error)?;
        read(&mut connection, org).await
    }
}

/// Writes every row of `data` that is not there yet.
async fn write(connection: &mut PgConnection, org: &str, data: &OrgData) -> Result<(), BackendError> {
    let audit_sequence = data.audit.iter().map(|(sequence, _)| *sequence).max().unwrap_or(0);
    sqlx::query(
        "INSERT INTO stigmer.orgs (org, commit_count, audit_sequence) VALUES ($1, $2, $3) \
         ON CONFLICT (org) DO UPDATE SET commit_count = EXCLUDED.commit_count, audit_sequence = EXCLUDED.audit_sequence \
         WHERE stigmer.orgs.commit_count = 0 AND stigmer.orgs.audit_sequence = 0",
    )
    .bind(org)
    .bind(to_i64(data.commit_count))
    .bind(to_i64(audit_sequence))
    .execute(&mut *connection)
    .await
    .map_err(database_error)?;

    let (kinds, names, bodies) =
        columns3(data.resources.iter().map(|r| Ok((r.kind.as_str().to_owned(), r.name.clone(), to_text(r)?))))?;
    run(
        connection,
        "INSERT INTO stigmer.resources (org, kind, name, body) \
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
        org,
        |q| q.bind(kinds).bind(names).bind(bodies),
    )
    .await?;

    let mut revisions = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (sequence, revision) in &data.revisions {
        revisions.0.push(revision.kind.as_str().to_owned());
        revisions.1.push(revision.name.clone());
        revisions.2.push(to_i64(*sequence));
        revisions.3.push(to_text(revision)?);
    }
    run(
        connection,
        "INSERT INTO stigmer.revisions (org, kind, name, sequence, body) \
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[]) ON CONFLICT DO NOTHING",
        org,
        |q| q.bind(revisions.0).bind(revisions.1).bind(revisions.2).bind(revisions.3),
    )
    .await?;

    let mut audit = (Vec::new(), Vec::new(), Vec::new());
    for (sequence, entry) in &data.audit {
        audit.0.push(to_i64(*sequence));
        audit.1.push(to_ns(entry.at)?);
        audit.2.push(to_text(entry)?);
    }
    run(
        connection,
        "INSERT INTO stigmer.audit (org, sequence, at_ns, body) \
         SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::text[]) ON CONFLICT DO NOTHING",
        org,
        |q| q.bind(audit.0).bind(audit.1).bind(audit.2),
    )
    .await?;

    let mut members = (Vec::new(), Vec::new(), Vec::new());
    for (set, owned) in &data.inventories {
        for (kind, name) in owned {
            members.0.push(set.clone());
            members.1.push(kind.as_str().to_owned());
            members.2.push(name.clone());
        }
    }
    run(
        connection,
        "INSERT INTO stigmer.inventories (org, apply_set, kind, name) \
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
        org,
        |q| q.bind(members.0).bind(members.1).bind(members.2),
    )
    .await?;

    if let Some(keyring) = &data.keyring {
        let body = to_text(keyring)?;
        run(connection, "INSERT INTO stigmer.keyrings (org, body) VALUES ($1, $2) ON CONFLICT DO NOTHING", org, |q| {
            q.bind(body)
        })
        .await?;
    }
    let (names, bodies): (Vec<String>, Vec<String>) = data
        .secrets
        .iter()
        .map(|s| Ok((s.name.clone(), to_text(s)?)))
        .collect::<Result<Vec<_>, BackendError>>()?
        .into_iter()
        .unzip();
    run(
        connection,
        "INSERT INTO stigmer.secrets (org, name, body) SELECT $1, * FROM unnest($2::text[], $3::text[]) \
         ON CONFLICT DO NOTHING",
        org,
        |q| q.bind(names).bind(bodies),
    )
    .await?;

    // Executions one by one, the queued ones in their queue's order, so the copy's queue keeps it.
    let mut executions: Vec<_> = data.executions.iter().collect();
    executions.sort_by_key(|(record, place)| (place.is_none(), *place, record.id.clone()));
    for (record, _) in executions {
        insert_execution_unless_there(&mut *connection, org, record).await?;
    }
    let mut events = (Vec::new(), Vec::new(), Vec::new());
    for (id, sequence, event) in &data.events {
        events.0.push(id.clone());
        events.1.push(to_i64(*sequence));
        events.2.push(to_text(event)?);
    }
    run(
        connection,
        "INSERT INTO stigmer.execution_events (org, id, sequence, body) \
         SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[]) ON CONFLICT DO NOTHING",
        org,
        |q| q.bind(events.0).bind(events.1).bind(events.2),
    )
    .await?;
    run(
        connection,
        "UPDATE stigmer.executions e SET last_event = m.last \
         FROM (SELECT id, max(sequence) AS last FROM stigmer.execution_events WHERE org = $1 GROUP BY id) m \
         WHERE e.org = $1 AND e.id = m.id AND e.last_event < m.last",
        org,
        |q| q,
    )
    .await?;
    let (ids, sealed): (Vec<String>, Vec<Vec<u8>>) = data.run_secrets.iter().cloned().unzip();
    run(
        connection,
        "INSERT INTO stigmer.execution_secrets (org, id, sealed) \
         SELECT $1, * FROM unnest($2::text[], $3::bytea[]) ON CONFLICT DO NOTHING",
        org,
        |q| q.bind(ids).bind(sealed),
    )
    .await?;

    let (ids, bodies): (Vec<String>, Vec<String>) = data
        .workers
        .iter()
        .map(|w| Ok((w.id.clone(), to_text(w)?)))
        .collect::<Result<Vec<_>, BackendError>>()?
        .into_iter()
        .unzip();
    run(
        connection,
        "INSERT INTO stigmer.workers (org, id, body) SELECT $1, * FROM unnest($2::text[], $3::text[]) \
         ON CONFLICT DO NOTHING",
        org,
        |q| q.bind(ids).bind(bodies),
    )
    .await?;
    let (workflows, bodies): (Vec<String>, Vec<String>) = data
        .schedules
        .iter()
        .map(|(workflow, state)| Ok((workflow.clone(), to_text(state)?)))
        .collect::<Result<Vec<_>, BackendError>>()?
        .into_iter()
        .unzip();
    run(
        connection,
        "INSERT INTO stigmer.schedules (org, workflow, body) SELECT $1, * FROM unnest($2::text[], $3::text[]) \
         ON CONFLICT DO NOTHING",
        org,
        |q| q.bind(workflows).bind(bodies),
    )
    .await?;
    let mut slots = (Vec::new(), Vec::new(), Vec::new());
    for (workflow, slot, execution) in &data.slots {
        slots.0.push(workflow.clone());
        slots.1.push(to_i64(*slot));
        slots.2.push(execution.clone());
    }
    run(
        connection,
        "INSERT INTO stigmer.schedule_slots (org, workflow, slot_ms, execution) \
         SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[]) ON CONFLICT DO NOTHING",
        org,
        |q| q.bind(slots.0).bind(slots.1).bind(slots.2),
    )
    .await?;
    let mut kept = (Vec::new(), Vec::new(), Vec::new());
    for (source, id, event) in &data.events_in {
        kept.0.push(source.clone());
        kept.1.push(id.clone());
        kept.2.push(to_text(event)?);
    }
    run(
        connection,
        "INSERT INTO stigmer.events (org, source, id, body) \
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
        org,
        |q| q.bind(kept.0).bind(kept.1).bind(kept.2),
    )
    .await
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Runs one statement whose first parameter is the org.
async fn run(
    connection: &mut PgConnection,
    sql: &'static str,
    org: &str,
    bind: impl for<'q> FnOnce(Query<'q>) -> Query<'q>,
) -> Result<(), BackendError> {
    bind(sqlx::query(sql).bind(org.to_owned())).execute(connection).await.map_err(database_error)?;
    Ok(())
}

/// Three text columns.
type Columns3 = (Vec<String>, Vec<String>, Vec<String>);

fn columns3(
    rows: impl Iterator<Item = Result<(String, String, String), BackendError>>,
) -> Result<Columns3, BackendError> {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        let (a, b, c) = row?;
        columns.0.push(a);
        columns.1.push(b);
        columns.2.push(c);
    }
    Ok(columns)
}

/// The `body` column of every row `sql` finds for `org`, read as `what`.
async fn bodies<T: serde::de::DeserializeOwned>(
    connection: &mut PgConnection,
    sql: &'static str,
    org: &str,
    what: &str,
) -> Result<Vec<T>, BackendError> {
    let rows = sqlx::query(sql).bind(org).fetch_all(connection).await.map_err(database_error)?;
    rows.iter().map(|row| from_text(row.try_get("body").map_err(database_error)?, what)).collect()
}

/// Everything the database holds for `org`.
async fn read(connection: &mut PgConnection, org: &str) -> Result<OrgData, BackendError> {
    let rows = |sql: &'static str| sqlx::query(sql).bind(org.to_owned());
    let mut data = OrgData::default();
    if let Some(row) = rows("SELECT commit_count FROM stigmer.orgs WHERE org = $1")
        .fetch_optional(&mut *connection)
        .await
        .map_err(database_error)?
    {
        data.commit_count = to_u64(row.try_get("commit_count").map_err(database_error)?);
    }
    data.resources = bodies(connection, "SELECT body FROM stigmer.resources WHERE org = $1", org, "resource").await?;
    for row in rows("SELECT sequence, body FROM stigmer.revisions WHERE org = $1")
        .fetch_all(&mut *connection)
        .await
        .map_err(database_error)?
    {
        let sequence = to_u64(row.try_get("sequence").map_err(database_error)?);
        data.revisions.push((sequence, from_text(row.try_get("body").map_err(database_error)?, "revision")?));
    }
    for row in rows("SELECT sequence, body FROM stigmer.audit WHERE org = $1")
        .fetch_all(&mut *connection)
        .await
        .map_err(database_error)?
    {
        let sequence = to_u64(row.try_get("sequence").map_err(database_error)?);
        data.audit.push((sequence, from_text(row.try_get("body").map_err(database_error)?, "audit entry")?));
    }
    let mut inventories: std::collections::BTreeMap<String, std::collections::BTreeSet<(Kind, String)>> =
        std::collections::BTreeMap::new();
    for row in rows("SELECT apply_set, kind, name FROM stigmer.inventories WHERE org = $1")
        .fetch_all(&mut *connection)
        .await
        .map_err(database_error)?
    {
        let kind: String = row.try_get("kind").map_err(database_error)?;
        let kind = Kind::from_manifest(&kind).ok_or_else(|| BackendError::Storage(format!("unknown kind {kind}")))?;
        inventories
            .entry(row.try_get("apply_set").map_err(database_error)?)
            .or_default()
            .insert((kind, row.try_get("name").map_err(database_error)?));
    }
    data.inventories = inventories.into_iter().map(|(set, members)| (set, members.into_iter().collect())).collect();
    data.keyring = bodies(connection, "SELECT body FROM stigmer.keyrings WHERE org = $1", org, "keyring").await?.pop();
    data.secrets = bodies(connection, "SELECT body FROM stigmer.secrets WHERE org = $1", org, "secret").await?;
    for row in rows(concat!("SELECT ", record_columns!(), ", e.queued FROM stigmer.executions e WHERE e.org = $1"))
        .fetch_all(&mut *connection)
        .await
        .map_err(database_error)?
    {
        let place = row.try_get::<Option<i64>, _>("queued").map_err(database_error)?.map(to_u64);
        data.executions.push((record_from(&row)?, place));
    }
    for row in rows("SELECT id, sequence, body FROM stigmer.execution_events WHERE org = $1")
        .fetch_all(&mut *connection)
        .await
        .map_err(database_error)?
    {
        data.events.push((
            row.try_get("id").map_err(database_error)?,
            to_u64(row.try_get("sequence").map_err(database_error)?),
            from_text(row.try_get("body").map_err(database_error)?, "event")?,
        ));
    }
    for row in rows("SELECT id, sealed FROM stigmer.execution_secrets WHERE org = $1")
        .fetch_all(&mut *connection)
        .await
        .map_err(database_error)?
    {
        data.run_secrets
            .push((row.try_get("id").map_err(database_error)?, row.try_get("sealed").map_err(database_error)?));
    }
    data.workers = bodies(connection, "SELECT body FROM stigmer.workers WHERE org = $1", org, "worker").await?;
    for row in rows("SELECT workflow, body FROM stigmer.schedules WHERE org = $1")
        .fetch_all(&mut *connection)
        .await
        .map_err(database_error)?
    {
        data.schedules.push((
            row.try_get("workflow").map_err(database_error)?,
            from_text(row.try_get("body").map_err(database_error)?, "schedule")?,
        ));
    }
    for row in rows("SELECT workflow, slot_ms, execution FROM stigmer.schedule_slots WHERE org = $1")
        .fetch_all(&mut *connection)
        .await
        .map_err(database_error)?
    {
        data.slots.push((
            row.try_get("workflow").map_err(database_error)?,
            to_u64(row.try_get("slot_ms").map_err(database_error)?),
            row.try_get("execution").map_err(database_error)?,
        ));
    }
    for row in rows("SELECT source, id, body FROM stigmer.events WHERE org = $1")
        .fetch_all(&mut *connection)
        .await
        .map_err(database_error)?
    {
        data.events_in.push((
            row.try_get("source").map_err(database_error)?,
            row.try_get("id").map_err(database_error)?,
            from_text(row.try_get("body").map_err(database_error)?, "event")?,
        ));
    }
    Ok(data)
}

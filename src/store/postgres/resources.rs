//! Resources, their revisions, inventories and audit, and secrets, in the database. Every write
//! that changes resources or secrets first takes its org's row (`stigmer.orgs`) for update:
//! writers of one org go one at a time, as redb's single writer does, so a batch's
//! preconditions are checked against a state nobody else can move until it commits — on any
//! replica. A batch of any size is a fixed number of round trips.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use sqlx::{Postgres, Row as _, Transaction};

use super::{PgStorage, database_error, from_text, to_ns, to_text, to_u64};
use crate::backend::batch::{self, ResourceKey};
use crate::backend::probe;
use crate::backend::storage::{Author, Keyring, Reseal, SealedSecret};
use crate::backend::{
    ApplyBatch, ApplyReceipt, AuditEntry, BackendError, Moved, ResourceHead, ResourceQuery, Revision, RevisionAction,
    StoredResource,
};
use crate::model::Kind;

/// The org's row, locked until the transaction ends: its commit count and last audit sequence.
async fn lock_org(txn: &mut Transaction<'_, Postgres>, org: &str) -> Result<(i64, i64), BackendError> {
    let row = sqlx::query(
        "INSERT INTO stigmer.orgs (org) VALUES ($1) \
         ON CONFLICT (org) DO UPDATE SET org = EXCLUDED.org \
         RETURNING commit_count, audit_sequence",
    )
    .bind(org)
    .fetch_one(&mut **txn)
    .await
    .map_err(database_error)?;
    Ok((row.try_get("commit_count").map_err(database_error)?, row.try_get("audit_sequence").map_err(database_error)?))
}

fn kind_of(text: &str) -> Result<Kind, BackendError> {
    Kind::from_manifest(text)
        .ok_or_else(|| BackendError::Storage(format!("the database holds an unknown kind {text:?}")))
}

impl PgStorage {
    /// The resources the query matches (whose manifest has a value at `path`, when given).
    pub(super) async fn list_resources(
        &self,
        query: &ResourceQuery,
        path: Option<&[&str]>,
    ) -> Result<Vec<StoredResource>, BackendError> {
        let stored_path = path.map(probe::in_manifest);
        let kinds: Vec<String> = query.kinds_in_order().iter().map(|kind| kind.as_str().to_owned()).collect();
        let rows = if query.names.is_empty() {
            sqlx::query("SELECT body FROM stigmer.resources WHERE org = $1 AND kind = ANY($2)")
                .bind(&self.org)
                .bind(kinds)
                .fetch_all(self.pool())
                .await
        } else {
            sqlx::query("SELECT body FROM stigmer.resources WHERE org = $1 AND kind = ANY($2) AND name = ANY($3)")
                .bind(&self.org)
                .bind(kinds)
                .bind(query.names.clone())
                .fetch_all(self.pool())
                .await
        }
        .map_err(database_error)?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            let body: &str = row.try_get("body").map_err(database_error)?;
            if stored_path.as_ref().is_some_and(|path| !probe::sets(body.as_bytes(), path)) {
                continue;
            }
            let resource: StoredResource = from_text(body, "resource")?;
            if query.has_labels_of(&resource) {
                found.push(resource);
            }
        }
        found.sort_by(|a, b| (a.kind.order(), &a.name).cmp(&(b.kind.order(), &b.name)));
        Ok(found)
    }

    /// Every resource's head; rows are read one at a time and their manifests skipped over.
    pub(super) async fn resource_heads(&self) -> Result<Vec<ResourceHead>, BackendError> {
        use futures_util::TryStreamExt as _;
        let kinds: Vec<String> = Kind::DECLARATIVE.iter().map(|kind| kind.as_str().to_owned()).collect();
        let mut rows = sqlx::query("SELECT body FROM stigmer.resources WHERE org = $1 AND kind = ANY($2)")
            .bind(&self.org)
            .bind(kinds)
            .fetch(self.pool());
        let mut found: Vec<ResourceHead> = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(database_error)? {
            found.push(from_text(row.try_get("body").map_err(database_error)?, "resource")?);
        }
        found.sort_by(|a, b| (a.kind.order(), &a.name).cmp(&(b.kind.order(), &b.name)));
        Ok(found)
    }

    pub(super) async fn get_resource(&self, kind: Kind, name: &str) -> Result<Option<StoredResource>, BackendError> {
        let row = sqlx::query("SELECT body FROM stigmer.resources WHERE org = $1 AND kind = $2 AND name = $3")
            .bind(&self.org)
            .bind(kind.as_str())
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(database_error)?;
        row.map(|row| from_text(row.try_get("body").map_err(database_error)?, "resource")).transpose()
    }

    /// One transaction of four statements, whatever the batch's size: lock the org, read what
    /// the batch touches, write everything it does, commit.
    pub(super) async fn apply_batch(
        &self,
        batch: ApplyBatch,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<ApplyReceipt, BackendError> {
        let mut txn = self.pool().begin().await.map_err(database_error)?;
        let (commits, audit_sequence) = lock_org(&mut txn, &self.org).await?;
        let touched = batch::touched(&batch);
        let (kinds, names): (Vec<String>, Vec<String>) =
            touched.iter().map(|(kind, name)| (kind.as_str().to_owned(), name.clone())).unzip();
        let rows = sqlx::query(
            "SELECT body FROM stigmer.resources \
             WHERE org = $1 AND (kind, name) IN (SELECT * FROM unnest($2::text[], $3::text[]))",
        )
        .bind(&self.org)
        .bind(kinds)
        .bind(names)
        .fetch_all(&mut *txn)
        .await
        .map_err(database_error)?;
        let mut before: BTreeMap<ResourceKey, StoredResource> = BTreeMap::new();
        for row in rows {
            let resource: StoredResource = from_text(row.try_get("body").map_err(database_error)?, "resource")?;
            before.insert((resource.kind, resource.name.clone()), resource);
        }
        let mut outcome = batch::decide(&batch, &before, author, now)?;
        if batch.dry_run {
            txn.rollback().await.map_err(database_error)?;
            return Ok(ApplyReceipt { written: outcome.written, committed: false, version: None });
        }
        if !outcome.renames.is_empty() {
            let rows = sqlx::query("SELECT body FROM stigmer.resources WHERE org = $1 AND kind = $2")
                .bind(&self.org)
                .bind(Kind::Session.as_str())
                .fetch_all(&mut *txn)
                .await
                .map_err(database_error)?;
            let sessions = rows
                .iter()
                .map(|row| from_text(row.try_get("body").map_err(database_error)?, "resource"))
                .collect::<Result<Vec<StoredResource>, BackendError>>()?;
            batch::follow_renames(&mut outcome, &sessions, author, now);
            // What the old name recorded moves to the new one, before the rename's own revision
            // is written under it; so do an agent's executions.
            for ((kind, old), (_, new)) in &outcome.renames {
                sqlx::query(
                    "UPDATE stigmer.revisions SET name = $4, body = jsonb_set(body::jsonb, '{name}', to_jsonb($4::text))::text                      WHERE org = $1 AND kind = $2 AND name = $3",
                )
                .bind(&self.org)
                .bind(kind.as_str())
                .bind(old)
                .bind(new)
                .execute(&mut *txn)
                .await
                .map_err(database_error)?;
                sqlx::query("UPDATE stigmer.executions SET target = $3 WHERE org = $1 AND target = $2")
                    .bind(&self.org)
                    .bind(crate::backend::address(*kind, old))
                    .bind(crate::backend::address(*kind, new))
                    .execute(&mut *txn)
                    .await
                    .map_err(database_error)?;
            }
        }
        let mut changes = Changes::default();
        for ((kind, name), after) in &outcome.resources {
            match after {
                Some(resource) => changes.upsert(*kind, name, to_text(resource)?),
                None if before.contains_key(&(*kind, name.clone())) => changes.delete(*kind, name),
                None => {}
            }
        }
        let mut sequence = audit_sequence;
        for (revision, entry) in outcome.revisions.iter().zip(&outcome.audit) {
            sequence += 1;
            changes.revise(revision, sequence, to_text(revision)?, to_text(entry)?);
        }
        for ((kind, name), leaves, joins) in &outcome.owners {
            changes.move_owner(*kind, name, leaves.as_deref(), joins.as_deref());
        }
        let version: i64 = sqlx::query(
            "WITH upserted AS ( \
                 INSERT INTO stigmer.resources (org, kind, name, body) \
                 SELECT $1, k, n, b FROM unnest($2::text[], $3::text[], $4::text[]) AS u(k, n, b) \
                 ON CONFLICT (org, kind, name) DO UPDATE SET body = EXCLUDED.body \
             ), deleted AS ( \
                 DELETE FROM stigmer.resources r USING unnest($5::text[], $6::text[]) AS d(k, n) \
                 WHERE r.org = $1 AND r.kind = d.k AND r.name = d.n \
             ), revised AS ( \
                 INSERT INTO stigmer.revisions (org, kind, name, sequence, body) \
                 SELECT $1, k, n, s, b FROM unnest($7::text[], $8::text[], $9::bigint[], $10::text[]) AS v(k, n, s, b) \
             ), audited AS ( \
                 INSERT INTO stigmer.audit (org, sequence, at_ns, body) \
                 SELECT $1, s, $11, b FROM unnest($9::bigint[], $12::text[]) AS a(s, b) \
             ), left_sets AS ( \
                 DELETE FROM stigmer.inventories i USING unnest($13::text[], $14::text[], $15::text[]) AS l(s, k, n) \
                 WHERE i.org = $1 AND i.apply_set = l.s AND i.kind = l.k AND i.name = l.n \
             ), joined AS ( \
                 INSERT INTO stigmer.inventories (org, apply_set, kind, name) \
                 SELECT $1, s, k, n FROM unnest($16::text[], $17::text[], $18::text[]) AS j(s, k, n) \
                 ON CONFLICT DO NOTHING \
             ) \
             UPDATE stigmer.orgs SET commit_count = commit_count + 1, audit_sequence = $19 \
             WHERE org = $1 RETURNING commit_count",
        )
        .bind(&self.org)
        .bind(changes.upsert_kinds)
        .bind(changes.upsert_names)
        .bind(changes.upsert_bodies)
        .bind(changes.delete_kinds)
        .bind(changes.delete_names)
        .bind(changes.revision_kinds)
        .bind(changes.revision_names)
        .bind(changes.sequences)
        .bind(changes.revision_bodies)
        .bind(to_ns(now)?)
        .bind(changes.audit_bodies)
        .bind(changes.leave_sets)
        .bind(changes.leave_kinds)
        .bind(changes.leave_names)
        .bind(changes.join_sets)
        .bind(changes.join_kinds)
        .bind(changes.join_names)
        .bind(sequence)
        .fetch_one(&mut *txn)
        .await
        .map_err(database_error)?
        .try_get("commit_count")
        .map_err(database_error)?;
        txn.commit().await.map_err(database_error)?;
        debug_assert_eq!(version, commits + 1);
        Ok(ApplyReceipt { written: outcome.written, committed: true, version: Some(to_u64(version)) })
    }

    pub(super) async fn history_of(&self, kind: Kind, name: &str) -> Result<Vec<Revision>, BackendError> {
        let rows = sqlx::query(
            "SELECT body FROM stigmer.revisions WHERE org = $1 AND kind = $2 AND name = $3 ORDER BY sequence",
        )
        .bind(&self.org)
        .bind(kind.as_str())
        .bind(name)
        .fetch_all(self.pool())
        .await
        .map_err(database_error)?;
        rows.iter().map(|row| from_text(row.try_get("body").map_err(database_error)?, "revision")).collect()
    }

    pub(super) async fn inventory_of(&self, apply_set: &str) -> Result<Vec<(Kind, String)>, BackendError> {
        let rows = sqlx::query("SELECT kind, name FROM stigmer.inventories WHERE org = $1 AND apply_set = $2")
            .bind(&self.org)
            .bind(apply_set)
            .fetch_all(self.pool())
            .await
            .map_err(database_error)?;
        let mut members = BTreeSet::new();
        for row in rows {
            let kind: &str = row.try_get("kind").map_err(database_error)?;
            members.insert((kind_of(kind)?, row.try_get::<String, _>("name").map_err(database_error)?));
        }
        Ok(members.into_iter().collect())
    }

    pub(super) async fn audit_since(&self, since: Option<Timestamp>) -> Result<Vec<AuditEntry>, BackendError> {
        let since = since.map(to_ns).transpose()?.unwrap_or(i64::MIN);
        let rows = sqlx::query("SELECT body FROM stigmer.audit WHERE org = $1 AND at_ns >= $2 ORDER BY sequence")
            .bind(&self.org)
            .bind(since)
            .fetch_all(self.pool())
            .await
            .map_err(database_error)?;
        rows.iter().map(|row| from_text(row.try_get("body").map_err(database_error)?, "audit entry")).collect()
    }

    pub(super) async fn commit_count(&self) -> Result<u64, BackendError> {
        let row = sqlx::query("SELECT commit_count FROM stigmer.orgs WHERE org = $1")
            .bind(&self.org)
            .fetch_optional(self.pool())
            .await
            .map_err(database_error)?;
        Ok(row.map(|row| row.try_get::<i64, _>("commit_count")).transpose().map_err(database_error)?.map_or(0, to_u64))
    }

    pub(super) async fn get_keyring(&self) -> Result<Option<Keyring>, BackendError> {
        let row = sqlx::query("SELECT body FROM stigmer.keyrings WHERE org = $1")
            .bind(&self.org)
            .fetch_optional(self.pool())
            .await
            .map_err(database_error)?;
        row.map(|row| from_text(row.try_get("body").map_err(database_error)?, "keyring")).transpose()
    }

    pub(super) async fn first_keyring(&self, candidate: Keyring) -> Result<Keyring, BackendError> {
        sqlx::query("INSERT INTO stigmer.keyrings (org, body) VALUES ($1, $2) ON CONFLICT (org) DO NOTHING")
            .bind(&self.org)
            .bind(to_text(&candidate)?)
            .execute(self.pool())
            .await
            .map_err(database_error)?;
        // Ours, or the one another writer made first.
        self.get_keyring().await?.ok_or_else(|| BackendError::Storage("the data key vanished as it was made".into()))
    }

    pub(super) async fn all_secrets(&self) -> Result<Vec<SealedSecret>, BackendError> {
        let rows = sqlx::query("SELECT body FROM stigmer.secrets WHERE org = $1")
            .bind(&self.org)
            .fetch_all(self.pool())
            .await
            .map_err(database_error)?;
        let mut secrets: Vec<SealedSecret> = rows
            .iter()
            .map(|row| from_text(row.try_get("body").map_err(database_error)?, "secret"))
            .collect::<Result<_, _>>()?;
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(secrets)
    }

    pub(super) async fn one_secret(&self, name: &str) -> Result<Option<SealedSecret>, BackendError> {
        let row = sqlx::query("SELECT body FROM stigmer.secrets WHERE org = $1 AND name = $2")
            .bind(&self.org)
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(database_error)?;
        row.map(|row| from_text(row.try_get("body").map_err(database_error)?, "secret")).transpose()
    }

    pub(super) async fn set_secret(
        &self,
        name: &str,
        key_id: &str,
        sealed: Vec<u8>,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        let mut txn = self.pool().begin().await.map_err(database_error)?;
        lock_org(&mut txn, &self.org).await?;
        let keyring = sqlx::query("SELECT body FROM stigmer.keyrings WHERE org = $1")
            .bind(&self.org)
            .fetch_optional(&mut *txn)
            .await
            .map_err(database_error)?
            .map(|row| from_text::<Keyring>(row.try_get("body").map_err(database_error)?, "keyring"))
            .transpose()?;
        if keyring.as_ref().map(|k| k.key_id.as_str()) != Some(key_id) {
            return Err(rotated_meanwhile());
        }
        let previous = sqlx::query("SELECT body FROM stigmer.secrets WHERE org = $1 AND name = $2")
            .bind(&self.org)
            .bind(name)
            .fetch_optional(&mut *txn)
            .await
            .map_err(database_error)?
            .map(|row| from_text::<SealedSecret>(row.try_get("body").map_err(database_error)?, "secret"))
            .transpose()?;
        let record = SealedSecret {
            name: name.to_owned(),
            created_at: previous.as_ref().map_or(now, |p| p.created_at),
            updated_at: now,
            key_id: key_id.to_owned(),
            sealed: hex::encode(sealed),
        };
        sqlx::query(
            "INSERT INTO stigmer.secrets (org, name, body) VALUES ($1, $2, $3) \
             ON CONFLICT (org, name) DO UPDATE SET body = EXCLUDED.body",
        )
        .bind(&self.org)
        .bind(name)
        .bind(to_text(&record)?)
        .execute(&mut *txn)
        .await
        .map_err(database_error)?;
        let action = if previous.is_some() { RevisionAction::Updated } else { RevisionAction::Created };
        self.audit_secret(&mut txn, action, &format!("secret/{name}"), author, now).await?;
        txn.commit().await.map_err(database_error)?;
        Ok(previous.is_none())
    }

    pub(super) async fn remove_secret(
        &self,
        name: &str,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<(), BackendError> {
        let mut txn = self.pool().begin().await.map_err(database_error)?;
        lock_org(&mut txn, &self.org).await?;
        let deleted = sqlx::query("DELETE FROM stigmer.secrets WHERE org = $1 AND name = $2")
            .bind(&self.org)
            .bind(name)
            .execute(&mut *txn)
            .await
            .map_err(database_error)?;
        if deleted.rows_affected() == 0 {
            return Err(BackendError::NotFound { address: format!("secret/{name}") });
        }
        self.audit_secret(&mut txn, RevisionAction::Deleted, &format!("secret/{name}"), author, now).await?;
        txn.commit().await.map_err(database_error)
    }

    pub(super) async fn rotate(
        &self,
        new: Keyring,
        reseal: Reseal,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<usize, BackendError> {
        let mut txn = self.pool().begin().await.map_err(database_error)?;
        lock_org(&mut txn, &self.org).await?;
        let rows = sqlx::query("SELECT body FROM stigmer.secrets WHERE org = $1")
            .bind(&self.org)
            .fetch_all(&mut *txn)
            .await
            .map_err(database_error)?;
        let (mut names, mut bodies) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
        for row in &rows {
            let secret: SealedSecret = from_text(row.try_get("body").map_err(database_error)?, "secret")?;
            let record =
                SealedSecret { key_id: new.key_id.clone(), sealed: hex::encode(reseal(&secret)?), ..secret.clone() };
            names.push(secret.name);
            bodies.push(to_text(&record)?);
        }
        sqlx::query(
            "WITH resealed AS ( \
                 UPDATE stigmer.secrets s SET body = r.b FROM unnest($2::text[], $3::text[]) AS r(n, b) \
                 WHERE s.org = $1 AND s.name = r.n \
             ) \
             INSERT INTO stigmer.keyrings (org, body) VALUES ($1, $4) \
             ON CONFLICT (org) DO UPDATE SET body = EXCLUDED.body",
        )
        .bind(&self.org)
        .bind(names.clone())
        .bind(bodies)
        .bind(to_text(&new)?)
        .execute(&mut *txn)
        .await
        .map_err(database_error)?;
        self.audit_secret(&mut txn, RevisionAction::Updated, "secret-key", author, now).await?;
        txn.commit().await.map_err(database_error)?;
        Ok(names.len())
    }

    /// Appends an audit entry for a secret change and counts the commit, in the org's locked
    /// transaction.
    async fn audit_secret(
        &self,
        txn: &mut Transaction<'_, Postgres>,
        action: RevisionAction,
        target: &str,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<(), BackendError> {
        let entry = AuditEntry {
            at: now,
            action,
            target: target.to_owned(),
            actor: author.actor.to_owned(),
            apply_set: None,
            address: author.address.map(str::to_owned),
            detail: None,
        };
        self.audit_entries(txn, std::slice::from_ref(&entry)).await
    }

    /// Appends audit entries, each counted as a commit.
    pub(super) async fn audit_entries(
        &self,
        txn: &mut Transaction<'_, Postgres>,
        entries: &[AuditEntry],
    ) -> Result<(), BackendError> {
        for entry in entries {
            sqlx::query(
                "WITH counted AS ( \
                     UPDATE stigmer.orgs SET commit_count = commit_count + 1, audit_sequence = audit_sequence + 1 \
                     WHERE org = $1 RETURNING audit_sequence \
                 ) \
                 INSERT INTO stigmer.audit (org, sequence, at_ns, body) SELECT $1, audit_sequence, $2, $3 FROM counted",
            )
            .bind(&self.org)
            .bind(to_ns(entry.at)?)
            .bind(to_text(entry)?)
            .execute(&mut **txn)
            .await
            .map_err(database_error)?;
        }
        Ok(())
    }
}

/// A secret sealed under a data key that a rotation replaced meanwhile.
fn rotated_meanwhile() -> BackendError {
    BackendError::Conflict { moved: vec![Moved { address: "secret key".to_owned(), expected: None, found: None }] }
}

/// What a batch writes, as the columns the write statement takes.
#[derive(Default)]
struct Changes {
    upsert_kinds: Vec<String>,
    upsert_names: Vec<String>,
    upsert_bodies: Vec<String>,
    delete_kinds: Vec<String>,
    delete_names: Vec<String>,
    revision_kinds: Vec<String>,
    revision_names: Vec<String>,
    sequences: Vec<i64>,
    revision_bodies: Vec<String>,
    audit_bodies: Vec<String>,
    leave_sets: Vec<String>,
    leave_kinds: Vec<String>,
    leave_names: Vec<String>,
    join_sets: Vec<String>,
    join_kinds: Vec<String>,
    join_names: Vec<String>,
}

impl Changes {
    fn upsert(&mut self, kind: Kind, name: &str, body: String) {
        self.upsert_kinds.push(kind.as_str().to_owned());
        self.upsert_names.push(name.to_owned());
        self.upsert_bodies.push(body);
    }

    fn delete(&mut self, kind: Kind, name: &str) {
        self.delete_kinds.push(kind.as_str().to_owned());
        self.delete_names.push(name.to_owned());
    }

    fn revise(&mut self, revision: &Revision, sequence: i64, body: String, audit: String) {
        self.revision_kinds.push(revision.kind.as_str().to_owned());
        self.revision_names.push(revision.name.clone());
        self.sequences.push(sequence);
        self.revision_bodies.push(body);
        self.audit_bodies.push(audit);
    }

    fn move_owner(&mut self, kind: Kind, name: &str, leaves: Option<&str>, joins: Option<&str>) {
        if let Some(set) = leaves {
            self.leave_sets.push(set.to_owned());
            self.leave_kinds.push(kind.as_str().to_owned());
            self.leave_names.push(name.to_owned());
        }
        if let Some(set) = joins {
            self.join_sets.push(set.to_owned());
            self.join_kinds.push(kind.as_str().to_owned());
            self.join_names.push(name.to_owned());
        }
    }
}

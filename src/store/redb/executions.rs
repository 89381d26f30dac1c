//! Executions, their event logs, and the execution service's state: the queue of pending
//! executions, the leases of running ones, the secret values given for one run, and the workers
//! that claimed work. An execution's events are appended in order under sequence numbers from
//! 1; a worker that resumes continues after the last one. The store keeps what it is given —
//! runners redact before they hand anything over, and run secrets arrive sealed.
//!
//! Fencing: an append or a finish that carries a lease epoch is refused unless that epoch's
//! lease is the execution's current one and the execution is not over, so a worker whose lease
//! lapsed and was claimed again can never write into the new holder's history.

use std::time::Duration;

use jiff::Timestamp;
use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, TableError, WriteTransaction};

use super::Store;
use super::tables::{
    EXECUTION_DEFINITIONS, EXECUTION_EVENTS, EXECUTION_LEASES, EXECUTION_QUEUE, EXECUTION_SECRETS, EXECUTIONS, META,
    QUEUE_SEQUENCE_KEY, WORKERS,
};
use crate::backend::storage::{
    Claimed, Fence, Finish, claim_record, claimable, expiry, fenced, history_moved, no_execution, not_parked,
    parked_lease,
};
use crate::backend::{
    BackendError, ClaimRequest, ExecutionCounts, ExecutionQuery, ExecutionRecord, ExecutionStatus, WorkerInfo,
};

impl Store {
    /// Records a new execution (its id must be new), queued when it is pending, with the sealed
    /// secret values given for this run.
    pub fn create_execution(
        &self,
        record: &ExecutionRecord,
        sealed_secrets: Option<&[u8]>,
    ) -> Result<(), BackendError> {
        let txn = self.begin_write()?;
        self.insert_execution(&txn, record, sealed_secrets)?;
        self.commit_execution_write(txn)
    }

    /// Points every execution of `from` (an address) at `to`, in the caller's transaction: the
    /// executions of a renamed agent follow it.
    pub(super) fn retarget_executions(&self, txn: &WriteTransaction, from: &str, to: &str) -> Result<(), BackendError> {
        let mut table = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
        let mut following = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (_, value) = entry.map_err(|e| self.engine(e))?;
            let record: ExecutionRecord = self.decode(value.value())?;
            if record.target == from {
                following.push(record);
            }
        }
        for mut record in following {
            to.clone_into(&mut record.target);
            table.insert(record.id.as_str(), self.encode(&record)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        Ok(())
    }

    /// [`Store::create_execution`] in the caller's transaction.
    pub(super) fn insert_execution(
        &self,
        txn: &WriteTransaction,
        record: &ExecutionRecord,
        sealed_secrets: Option<&[u8]>,
    ) -> Result<(), BackendError> {
        let mut table = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
        if table.get(record.id.as_str()).map_err(|e| self.engine(e))?.is_some() {
            return Err(BackendError::Storage(format!("execution {} already exists", record.id)));
        }
        // The definition is kept apart: written once here, never rewritten with the record.
        let light = ExecutionRecord { definition: None, ..record.clone() };
        table.insert(record.id.as_str(), self.encode(&light)?.as_slice()).map_err(|e| self.engine(e))?;
        if let Some(definition) = &record.definition {
            let mut definitions = txn.open_table(EXECUTION_DEFINITIONS).map_err(|e| self.engine(e))?;
            definitions.insert(record.id.as_str(), self.encode(definition)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        if record.status == ExecutionStatus::Pending {
            self.enqueue(txn, &record.queue, &record.id)?;
        }
        if let Some(sealed) = sealed_secrets {
            let mut secrets = txn.open_table(EXECUTION_SECRETS).map_err(|e| self.engine(e))?;
            secrets.insert(record.id.as_str(), sealed).map_err(|e| self.engine(e))?;
        }
        Ok(())
    }

    fn enqueue(&self, txn: &WriteTransaction, queue: &str, id: &str) -> Result<(), BackendError> {
        let mut meta = txn.open_table(META).map_err(|e| self.engine(e))?;
        let sequence = meta.get(QUEUE_SEQUENCE_KEY).map_err(|e| self.engine(e))?.map_or(0, |v| v.value()) + 1;
        meta.insert(QUEUE_SEQUENCE_KEY, sequence).map_err(|e| self.engine(e))?;
        let mut table = txn.open_table(EXECUTION_QUEUE).map_err(|e| self.engine(e))?;
        table.insert((queue, sequence), id).map_err(|e| self.engine(e))?;
        Ok(())
    }

    /// Claims the next execution for `request.worker` (or the one `request.id` names), as
    /// `token`: an execution whose lease lapsed first (its worker is gone), then the oldest
    /// pending one in the queues the worker serves. It becomes `running` under a new lease whose
    /// epoch is one more than the last. `None` when there is nothing to claim.
    pub fn claim_execution(
        &self,
        request: &ClaimRequest,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<Claimed>, BackendError> {
        // Looking is a read; only a found candidate costs a write (and its sync to disk).
        let Some(candidate) = self.claim_candidate(request, now)? else { return Ok(None) };
        let txn = self.begin_write()?;
        let claimed = {
            let mut table = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
            let mut record: ExecutionRecord = match table.get(candidate.as_str()).map_err(|e| self.engine(e))? {
                Some(value) => self.decode(value.value())?,
                None => return Ok(None),
            };
            // Another claimer may have won between the look and this transaction.
            if !claimable(&record, now, request.take_over.as_deref()) {
                return Ok(None);
            }
            let mut leases = txn.open_table(EXECUTION_LEASES).map_err(|e| self.engine(e))?;
            if let Some(old) = &record.lease {
                leases.remove((millis(old.expires_at), record.id.as_str())).map_err(|e| self.engine(e))?;
            }
            if record.status == ExecutionStatus::Pending {
                self.dequeue(&txn, &record.queue, &record.id)?;
            }
            let raw = claim_record(&mut record, request, token, now)?;
            let expires_at = record.lease.as_ref().map_or(now, |lease| lease.expires_at);
            leases.insert((millis(expires_at), record.id.as_str()), record.attempts).map_err(|e| self.engine(e))?;
            table.insert(record.id.as_str(), self.encode(&record)?.as_slice()).map_err(|e| self.engine(e))?;
            drop(table);
            self.append_in(&txn, &record.id, None, &[raw])?;
            let secrets = txn.open_table(EXECUTION_SECRETS).map_err(|e| self.engine(e))?;
            let sealed = secrets.get(record.id.as_str()).map_err(|e| self.engine(e))?.map(|v| v.value().to_vec());
            // Its worker runs the definition.
            let definitions = txn.open_table(EXECUTION_DEFINITIONS).map_err(|e| self.engine(e))?;
            record.definition = self.definition_in(&definitions, &record.id)?;
            (record, sealed)
        };
        self.commit_execution_write(txn)?;
        Ok(Some(claimed))
    }

    /// The execution a claim would take, found in a read transaction.
    fn claim_candidate(&self, request: &ClaimRequest, now: Timestamp) -> Result<Option<String>, BackendError> {
        let txn = self.begin_read()?;
        let executions = match txn.open_table(EXECUTIONS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(self.engine(error)),
        };
        let record = |id: &str| -> Result<Option<ExecutionRecord>, BackendError> {
            match executions.get(id).map_err(|e| self.engine(e))? {
                Some(value) => self.decode(value.value()).map(Some),
                None => Ok(None),
            }
        };
        if let Some(id) = &request.id {
            return Ok(record(id)?.filter(|r| claimable(r, now, request.take_over.as_deref())).map(|r| r.id));
        }
        let serves = |queue: &str| request.worker.queues.iter().any(|q| q == queue);
        let leases = txn.open_table(EXECUTION_LEASES).map_err(|e| self.engine(e))?;
        for entry in leases.range((0, "")..(millis(now), "")).map_err(|e| self.engine(e))? {
            let (key, _) = entry.map_err(|e| self.engine(e))?;
            if let Some(lapsed) = record(key.value().1)?
                && serves(&lapsed.queue)
                && claimable(&lapsed, now, None)
            {
                return Ok(Some(lapsed.id));
            }
        }
        let queue = txn.open_table(EXECUTION_QUEUE).map_err(|e| self.engine(e))?;
        let mut oldest: Option<(u64, String)> = None;
        for served in &request.worker.queues {
            let first =
                queue.range((served.as_str(), 0)..=(served.as_str(), u64::MAX)).map_err(|e| self.engine(e))?.next();
            if let Some(entry) = first {
                let (key, id) = entry.map_err(|e| self.engine(e))?;
                let sequence = key.value().1;
                if oldest.as_ref().is_none_or(|(best, _)| sequence < *best) {
                    oldest = Some((sequence, id.value().to_owned()));
                }
            }
        }
        Ok(oldest.map(|(_, id)| id))
    }

    /// Takes an execution out of its queue (a linear look, only for the queue it is in).
    fn dequeue(&self, txn: &WriteTransaction, queue: &str, id: &str) -> Result<(), BackendError> {
        let mut table = txn.open_table(EXECUTION_QUEUE).map_err(|e| self.engine(e))?;
        let mut found = None;
        for entry in table.range((queue, 0)..=(queue, u64::MAX)).map_err(|e| self.engine(e))? {
            let (key, value) = entry.map_err(|e| self.engine(e))?;
            if value.value() == id {
                found = Some(key.value().1);
                break;
            }
        }
        if let Some(sequence) = found {
            table.remove((queue, sequence)).map_err(|e| self.engine(e))?;
        }
        Ok(())
    }

    /// Renews the lease `fence` holds on execution `id` for another `lease`; returns the
    /// record (a cancelled one tells its worker to stop).
    ///
    /// # Errors
    /// [`BackendError::LeaseLost`] when that lease is no longer the execution's.
    pub fn renew_lease(
        &self,
        id: &str,
        fence: Fence<'_>,
        lease: Duration,
        now: Timestamp,
    ) -> Result<ExecutionRecord, BackendError> {
        let txn = self.begin_write()?;
        let record = {
            let mut table = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
            let mut record: ExecutionRecord = match table.get(id).map_err(|e| self.engine(e))? {
                Some(value) => self.decode(value.value())?,
                None => return Err(no_execution(id)),
            };
            fenced(&record, Some(fence))?;
            let epoch = fence.0;
            let mut leases = txn.open_table(EXECUTION_LEASES).map_err(|e| self.engine(e))?;
            if let Some(held) = record.lease.as_mut() {
                leases.remove((millis(held.expires_at), id)).map_err(|e| self.engine(e))?;
                held.expires_at = expiry(now, lease);
                leases.insert((millis(held.expires_at), id), epoch).map_err(|e| self.engine(e))?;
            }
            table.insert(id, self.encode(&record)?.as_slice()).map_err(|e| self.engine(e))?;
            record
        };
        txn.commit().map_err(|e| self.engine(e))?;
        Ok(record)
    }

    /// Appends events to an execution's log, in one transaction; returns the last sequence
    /// number. With `fence`, only while that lease epoch holds the execution.
    pub fn append_events(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        events: &[Box<serde_json::value::RawValue>],
    ) -> Result<u64, BackendError> {
        let txn = self.begin_write()?;
        let last = self.append_in(&txn, id, fence, events)?;
        self.commit_execution_write(txn)?;
        Ok(last)
    }

    /// [`Store::append_events`] in the caller's transaction.
    pub(super) fn append_in(
        &self,
        txn: &WriteTransaction,
        id: &str,
        fence: Option<Fence<'_>>,
        events: &[Box<serde_json::value::RawValue>],
    ) -> Result<u64, BackendError> {
        let executions = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
        let record: ExecutionRecord = match executions.get(id).map_err(|e| self.engine(e))? {
            Some(value) => self.decode(value.value())?,
            None => return Err(no_execution(id)),
        };
        fenced(&record, fence)?;
        let mut table = txn.open_table(EXECUTION_EVENTS).map_err(|e| self.engine(e))?;
        let mut last = table
            .range((id, 0)..=(id, u64::MAX))
            .map_err(|e| self.engine(e))?
            .next_back()
            .transpose()
            .map_err(|e| self.engine(e))?
            .map_or(0, |(key, _)| key.value().1);
        for event in events {
            last += 1;
            table.insert((id, last), self.encode(event)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        Ok(last)
    }

    /// Sets an execution's status with its output or error, after appending `last` in the same
    /// transaction; a final status releases its lease,
    /// takes it out of its queue and deletes its run secrets. With `fence`, only while that
    /// lease epoch holds the execution.
    pub fn finish_execution(
        &self,
        id: &str,
        fence: Option<Fence<'_>>,
        finish: Finish<'_>,
        now: Timestamp,
    ) -> Result<(), BackendError> {
        let Finish { status, output, error, last } = finish;
        let txn = self.begin_write()?;
        if !last.is_empty() {
            self.append_in(&txn, id, fence, last)?;
        }
        {
            let mut table = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
            let mut record: ExecutionRecord = match table.get(id).map_err(|e| self.engine(e))? {
                Some(value) => self.decode(value.value())?,
                None => return Err(no_execution(id)),
            };
            fenced(&record, fence)?;
            if status.is_final() {
                if let Some(lease) = record.lease.take() {
                    let mut leases = txn.open_table(EXECUTION_LEASES).map_err(|e| self.engine(e))?;
                    leases.remove((millis(lease.expires_at), id)).map_err(|e| self.engine(e))?;
                }
                if record.status == ExecutionStatus::Pending {
                    self.dequeue(&txn, &record.queue, id)?;
                }
                let mut secrets = txn.open_table(EXECUTION_SECRETS).map_err(|e| self.engine(e))?;
                secrets.remove(id).map_err(|e| self.engine(e))?;
            }
            record.status = status;
            record.output = output.cloned();
            record.error = error.cloned();
            record.finished_at = status.is_final().then_some(now);
            table.insert(id, self.encode(&record)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        self.commit_execution_write(txn)
    }

    /// Parks a running execution under `fence`: see [`crate::backend::Storage::park_execution`].
    pub fn park_execution(
        &self,
        id: &str,
        fence: Fence<'_>,
        until: Option<Timestamp>,
        last: &[Box<serde_json::value::RawValue>],
    ) -> Result<(), BackendError> {
        let txn = self.begin_write()?;
        if !last.is_empty() {
            self.append_in(&txn, id, Some(fence), last)?;
        }
        {
            let mut table = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
            let mut record: ExecutionRecord = match table.get(id).map_err(|e| self.engine(e))? {
                Some(value) => self.decode(value.value())?,
                None => return Err(no_execution(id)),
            };
            fenced(&record, Some(fence))?;
            let mut leases = txn.open_table(EXECUTION_LEASES).map_err(|e| self.engine(e))?;
            if let Some(lease) = record.lease.take() {
                leases.remove((millis(lease.expires_at), id)).map_err(|e| self.engine(e))?;
            }
            record.lease = parked_lease(fence.0, until);
            if let Some(lease) = &record.lease {
                leases.insert((millis(lease.expires_at), id), lease.epoch).map_err(|e| self.engine(e))?;
            }
            record.status = ExecutionStatus::Waiting;
            table.insert(id, self.encode(&record)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        self.commit_execution_write(txn)
    }

    /// Appends decisions to a parked execution: see
    /// [`crate::backend::Storage::decide_execution`].
    pub fn decide_execution(
        &self,
        id: &str,
        after: u64,
        events: &[Box<serde_json::value::RawValue>],
        audit: &[crate::backend::AuditEntry],
        requeue: bool,
    ) -> Result<(), BackendError> {
        let txn = self.begin_write()?;
        {
            let table = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
            let mut record: ExecutionRecord = match table.get(id).map_err(|e| self.engine(e))? {
                Some(value) => self.decode(value.value())?,
                None => return Err(no_execution(id)),
            };
            if !crate::backend::approval::is_parked(&record) {
                return Err(not_parked(&record));
            }
            drop(table);
            let last = self.append_in(&txn, id, None, &[])?;
            if last != after {
                return Err(history_moved(id, after, last));
            }
            self.append_in(&txn, id, None, events)?;
            if requeue {
                if let Some(lease) = record.lease.take() {
                    let mut leases = txn.open_table(EXECUTION_LEASES).map_err(|e| self.engine(e))?;
                    leases.remove((millis(lease.expires_at), id)).map_err(|e| self.engine(e))?;
                }
                record.status = ExecutionStatus::Pending;
                self.enqueue(&txn, &record.queue, id)?;
                let mut table = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
                table.insert(id, self.encode(&record)?.as_slice()).map_err(|e| self.engine(e))?;
            }
            self.audit_in(&txn, audit)?;
        }
        self.commit_execution_write(txn)
    }

    /// Appends audit entries and counts the commit, in the caller's transaction.
    fn audit_in(&self, txn: &WriteTransaction, entries: &[crate::backend::AuditEntry]) -> Result<(), BackendError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut audit = txn.open_table(super::tables::AUDIT).map_err(|e| self.engine(e))?;
        let mut sequence = audit.last().map_err(|e| self.engine(e))?.map_or(0, |(key, _)| key.value());
        for entry in entries {
            sequence += 1;
            audit.insert(sequence, self.encode(entry)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        let mut meta = txn.open_table(META).map_err(|e| self.engine(e))?;
        self.count_commit(&mut meta)?;
        Ok(())
    }

    /// Records that a worker is alive, as it describes itself.
    pub fn worker_seen(&self, worker: &WorkerInfo, now: Timestamp) -> Result<(), BackendError> {
        let mut worker = worker.clone();
        worker.last_seen = now;
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(WORKERS).map_err(|e| self.engine(e))?;
            table.insert(worker.id.as_str(), self.encode(&worker)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        txn.commit().map_err(|e| self.engine(e))
    }

    /// Every worker that claimed work here, by id.
    pub fn workers(&self) -> Result<Vec<WorkerInfo>, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(WORKERS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(self.engine(error)),
        };
        let mut workers = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (_, value) = entry.map_err(|e| self.engine(e))?;
            workers.push(self.decode(value.value())?);
        }
        Ok(workers)
    }

    /// Commits a change to executions and wakes whoever waits for one.
    pub(super) fn commit_execution_write(&self, txn: WriteTransaction) -> Result<(), BackendError> {
        txn.commit().map_err(|e| self.engine(e))?;
        self.changes.notify();
        Ok(())
    }

    /// One execution.
    pub fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(EXECUTIONS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(self.engine(error)),
        };
        let mut record: ExecutionRecord = match table.get(id).map_err(|e| self.engine(e))? {
            Some(value) => self.decode(value.value())?,
            None => return Ok(None),
        };
        self.put_definition_back(self.definitions(&txn)?.as_ref(), &mut record)?;
        Ok(Some(record))
    }

    /// The table of definitions, when the store has one (a store of format 4 opened for
    /// reading only still keeps each in its record).
    fn definitions(
        &self,
        txn: &ReadTransaction,
    ) -> Result<Option<ReadOnlyTable<&'static str, &'static [u8]>>, BackendError> {
        match txn.open_table(EXECUTION_DEFINITIONS) {
            Ok(definitions) => Ok(Some(definitions)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(error) => Err(self.engine(error)),
        }
    }

    /// Puts `record`'s definition, kept apart, back in it.
    fn put_definition_back(
        &self,
        definitions: Option<&ReadOnlyTable<&'static str, &'static [u8]>>,
        record: &mut ExecutionRecord,
    ) -> Result<(), BackendError> {
        if let Some(definitions) = definitions
            && record.definition.is_none()
        {
            record.definition = self.definition_in(definitions, &record.id)?;
        }
        Ok(())
    }

    fn definition_in(
        &self,
        definitions: &impl ReadableTable<&'static str, &'static [u8]>,
        id: &str,
    ) -> Result<Option<serde_json::Value>, BackendError> {
        definitions.get(id).map_err(|e| self.engine(e))?.map(|value| self.decode(value.value())).transpose()
    }

    /// Moves every record's definition into [`EXECUTION_DEFINITIONS`] (the migration to format 5).
    pub(super) fn move_definitions_out(&self, txn: &WriteTransaction) -> Result<(), BackendError> {
        let mut table = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
        let mut definitions = txn.open_table(EXECUTION_DEFINITIONS).map_err(|e| self.engine(e))?;
        let mut inline = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (_, value) = entry.map_err(|e| self.engine(e))?;
            let record: ExecutionRecord = self.decode(value.value())?;
            if record.definition.is_some() {
                inline.push(record);
            }
        }
        for mut record in inline {
            if let Some(definition) = record.definition.take() {
                definitions
                    .insert(record.id.as_str(), self.encode(&definition)?.as_slice())
                    .map_err(|e| self.engine(e))?;
            }
            table.insert(record.id.as_str(), self.encode(&record)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        Ok(())
    }

    /// Executions matching the query, oldest first, without their definitions.
    pub fn executions(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(EXECUTIONS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(self.engine(error)),
        };
        let definitions = if query.definitions { self.definitions(&txn)? } else { None };
        let read = |value: &[u8]| -> Result<ExecutionRecord, BackendError> {
            let mut record: ExecutionRecord = self.decode(value)?;
            if query.definitions {
                self.put_definition_back(definitions.as_ref(), &mut record)?;
            } else {
                record.definition = None;
            }
            Ok(record)
        };
        let Some(page) = query.page else {
            let narrows = query.narrows();
            let mut found = Vec::new();
            for entry in table.iter().map_err(|e| self.engine(e))? {
                let (_, value) = entry.map_err(|e| self.engine(e))?;
                // Most filters leave most records out: those are not read whole.
                if !narrows || self.decode::<Head<'_>>(value.value())?.admitted_by(query) {
                    found.push(read(value.value())?);
                }
            }
            found.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
            return Ok(found);
        };
        // A page: which ones, from the heads alone; then only the page's records read whole.
        let mut admitted = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (key, value) = entry.map_err(|e| self.engine(e))?;
            let head: Head<'_> = self.decode(value.value())?;
            if head.admitted_by(query) {
                admitted.push((head.started_at, key.value().to_owned()));
            }
        }
        admitted.sort_by(|a, b| b.cmp(a));
        let mut found = Vec::new();
        for (_, id) in admitted.into_iter().skip(page.skip).take(page.take) {
            if let Some(value) = table.get(id.as_str()).map_err(|e| self.engine(e))? {
                found.push(read(value.value())?);
            }
        }
        Ok(found)
    }

    /// How many executions matching the query stand at each status.
    pub fn execution_counts(&self, query: &ExecutionQuery) -> Result<ExecutionCounts, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(EXECUTIONS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(ExecutionCounts::new()),
            Err(error) => return Err(self.engine(error)),
        };
        let mut counts = ExecutionCounts::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (_, value) = entry.map_err(|e| self.engine(e))?;
            let head: Head<'_> = self.decode(value.value())?;
            if head.admitted_by(query) {
                *counts.entry(head.status).or_default() += 1;
            }
        }
        Ok(counts)
    }

    /// An execution's events after sequence number `after` (0: from the first), with their
    /// numbers; at most `limit` of them when given.
    pub fn events(
        &self,
        id: &str,
        after: u64,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, serde_json::Value)>, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(EXECUTION_EVENTS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(self.engine(error)),
        };
        let mut events = Vec::new();
        let range = table.range((id, after.saturating_add(1))..=(id, u64::MAX)).map_err(|e| self.engine(e))?;
        for entry in range.take(limit.unwrap_or(usize::MAX)) {
            let (key, value) = entry.map_err(|e| self.engine(e))?;
            events.push((key.value().1, self.decode(value.value())?));
        }
        Ok(events)
    }
}

/// A time as Unix milliseconds, the leases' key (times before 1970 are 0).
fn millis(at: Timestamp) -> u64 {
    u64::try_from(at.as_millisecond()).unwrap_or(0)
}

/// The fields of a stored record a query looks at, read without the rest.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    #[serde(borrow)]
    target: std::borrow::Cow<'a, str>,
    status: ExecutionStatus,
    started_at: Timestamp,
}

impl Head<'_> {
    fn admitted_by(&self, query: &ExecutionQuery) -> bool {
        query.admits(&self.target, self.status, self.started_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::DEFAULT_QUEUE;
    use crate::store::redb::OpenOptions;

    fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&dir.path().join("s.db"), &OpenOptions::new(std::time::Duration::ZERO, "t")).unwrap()
    }

    fn record(id: &str, status: ExecutionStatus) -> ExecutionRecord {
        ExecutionRecord::new(id.into(), "workflow/w".into(), "ana".into(), serde_json::json!({}), status)
    }

    fn claim(id: Option<&str>, worker: &str) -> ClaimRequest {
        ClaimRequest {
            worker: WorkerInfo {
                id: worker.into(),
                host: "h".into(),
                version: "v".into(),
                queues: vec![DEFAULT_QUEUE.into()],
                concurrency: 1,
                running: 0,
                last_seen: Timestamp::UNIX_EPOCH,
            },
            lease: Duration::from_secs(30),
            wait: Duration::ZERO,
            id: id.map(str::to_owned),
            take_over: None,
        }
    }

    #[test]
    fn an_execution_log_appends_in_order_and_reads_from_any_point() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let record = record("e1", ExecutionStatus::Running);
        store.create_execution(&record, None).unwrap();
        assert!(store.create_execution(&record, None).is_err(), "ids are unique");
        let raw = |n: u64| serde_json::value::to_raw_value(&n).unwrap();
        assert_eq!(store.append_events("e1", None, &[raw(1), raw(2)]).unwrap(), 2);
        assert_eq!(store.append_events("e1", None, &[raw(3)]).unwrap(), 3);
        assert!(matches!(store.append_events("nope", None, &[raw(1)]), Err(BackendError::NotFound { .. })));
        let after_one: Vec<u64> = store.events("e1", 1, None).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(after_one, [2, 3]);
        let done = Some(serde_json::json!("done"));
        store
            .finish_execution(
                "e1",
                None,
                Finish { output: done.as_ref(), ..Finish::status(ExecutionStatus::Completed) },
                Timestamp::UNIX_EPOCH,
            )
            .unwrap();
        let stored = store.execution("e1").unwrap().unwrap();
        assert_eq!((stored.status, stored.output), (ExecutionStatus::Completed, Some(serde_json::json!("done"))));
        let query = ExecutionQuery { status: Some(ExecutionStatus::Running), ..ExecutionQuery::default() };
        assert!(store.executions(&query).unwrap().is_empty());
        assert_eq!(store.executions(&ExecutionQuery::default()).unwrap().len(), 1);
    }

    #[test]
    fn claims_take_the_oldest_pending_then_a_lapsed_lease_fences_the_old_holder_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        for id in ["first", "second"] {
            store.create_execution(&record(id, ExecutionStatus::Pending), None).unwrap();
        }
        let now = Timestamp::now();
        let (a, _) = store.claim_execution(&claim(None, "w1"), "tok-a", now).unwrap().unwrap();
        assert_eq!((a.id.as_str(), a.status, a.attempts), ("first", ExecutionStatus::Running, 1));
        let (b, _) = store.claim_execution(&claim(None, "w2"), "tok-b", now).unwrap().unwrap();
        assert_eq!(b.id, "second");
        assert!(store.claim_execution(&claim(None, "w3"), "tok-c", now).unwrap().is_none(), "both are held");
        let raw = serde_json::value::to_raw_value(&1).unwrap();
        store.append_events("first", Some((1, "tok-a")), std::slice::from_ref(&raw)).unwrap();
        assert!(
            matches!(
                store.append_events("first", Some((1, "tok-b")), std::slice::from_ref(&raw)),
                Err(BackendError::LeaseLost { .. })
            ),
            "the epoch alone is not enough: the token must be the holder's"
        );

        // w1 goes silent: once its lease has lapsed, w3 takes the execution over under epoch 2.
        let later = now.checked_add(Duration::from_secs(31)).unwrap();
        let (taken, _) = store.claim_execution(&claim(None, "w3"), "tok-c", later).unwrap().unwrap();
        assert_eq!((taken.id.as_str(), taken.attempts), ("first", 2));
        for late in [
            store.append_events("first", Some((1, "tok-a")), std::slice::from_ref(&raw)).map(|_| ()),
            store.renew_lease("first", (1, "tok-a"), Duration::from_secs(30), later).map(|_| ()),
            store.finish_execution("first", Some((1, "tok-a")), Finish::status(ExecutionStatus::Completed), later),
        ] {
            assert!(matches!(late, Err(BackendError::LeaseLost { .. })), "{late:?}");
        }
        store.append_events("first", Some((2, "tok-c")), std::slice::from_ref(&raw)).unwrap();
        store.finish_execution("first", Some((2, "tok-c")), Finish::status(ExecutionStatus::Completed), later).unwrap();
        assert!(store.execution("first").unwrap().unwrap().lease.is_none(), "a final status releases the lease");
        let events = store.events("first", 0, None).unwrap();
        let claims = events.iter().filter(|(_, e)| e["event"] == "claimed").count();
        assert_eq!((claims, events.len() - claims), (2, 2), "each claim is recorded; the late append is not");
    }

    #[test]
    fn a_cancelled_pending_execution_leaves_the_queue_and_a_claim_by_id_takes_only_that_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        for id in ["a", "b"] {
            store.create_execution(&record(id, ExecutionStatus::Pending), Some(b"sealed")).unwrap();
        }
        store.finish_execution("a", None, Finish::status(ExecutionStatus::Cancelled), Timestamp::now()).unwrap();
        let (b, sealed) = store.claim_execution(&claim(Some("b"), "cli"), "ana", Timestamp::now()).unwrap().unwrap();
        assert_eq!((b.id.as_str(), sealed.as_deref()), ("b", Some(&b"sealed"[..])));
        assert!(store.claim_execution(&claim(None, "w"), "tok", Timestamp::now()).unwrap().is_none());
        store
            .finish_execution("b", Some((1, "ana")), Finish::status(ExecutionStatus::Completed), Timestamp::now())
            .unwrap();
        let txn = store.begin_read().unwrap();
        assert!(txn.open_table(EXECUTION_SECRETS).unwrap().get("b").unwrap().is_none(), "run secrets end with the run");
    }
}

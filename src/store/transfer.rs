//! Everything a store holds for one org, as one value: what `stigmer server migrate-store`
//! reads out of a redb org store and writes into the database, and what it compares afterwards
//! — table by table, row counts and a SHA-256 of the rows — to prove the copy whole.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::backend::storage::{Keyring, SealedSecret};
use crate::backend::{AuditEntry, ExecutionRecord, Revision, ScheduleState, StoredResource, WorkerInfo};
use crate::model::Kind;

/// One org's data, every table of it, each in its store's key order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgData {
    /// How many batches and secret changes were committed: the backend's version.
    pub commit_count: u64,
    /// The resources, by kind and name.
    pub resources: Vec<StoredResource>,
    /// Every revision, by resource and then sequence number.
    pub revisions: Vec<(u64, Revision)>,
    /// The audit log, by sequence number.
    pub audit: Vec<(u64, AuditEntry)>,
    /// Each apply set's members.
    pub inventories: Vec<(String, Vec<(Kind, String)>)>,
    /// The data key, wrapped.
    pub keyring: Option<Keyring>,
    /// The sealed secrets, by name.
    pub secrets: Vec<SealedSecret>,
    /// The executions, by id, each with its place in the queue while pending (lower first).
    pub executions: Vec<(ExecutionRecord, Option<u64>)>,
    /// Every execution's events: (execution, sequence number, event).
    pub events: Vec<(String, u64, serde_json::Value)>,
    /// The sealed run secrets of executions not over, by execution.
    pub run_secrets: Vec<(String, Vec<u8>)>,
    /// The workers, by id.
    pub workers: Vec<WorkerInfo>,
    /// Each scheduled workflow's state, by workflow.
    pub schedules: Vec<(String, ScheduleState)>,
    /// Every slot that fired: (workflow, slot in Unix milliseconds, execution).
    pub slots: Vec<(String, u64, String)>,
    /// Every event sent in: (source, id, event).
    pub events_in: Vec<(String, String, serde_json::Value)>,
}

/// One table's rows, summed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSum {
    /// The table.
    pub table: &'static str,
    /// How many rows.
    pub rows: usize,
    /// SHA-256 of the rows, hex.
    pub digest: String,
}

impl OrgData {
    /// Each table's row count and digest, to compare two copies by: the rows' JSON, sorted, so
    /// the order a store keeps them in does not matter (the queue's order does, as its own
    /// table).
    pub fn sums(&self) -> Vec<TableSum> {
        let records: Vec<&ExecutionRecord> = self.executions.iter().map(|(record, _)| record).collect();
        let mut queued: Vec<(u64, &String)> =
            self.executions.iter().filter_map(|(record, place)| place.map(|place| (place, &record.id))).collect();
        queued.sort();
        let queue: Vec<&String> = queued.into_iter().map(|(_, id)| id).collect();
        vec![
            sum("orgs", std::iter::once(&self.commit_count)),
            sum("resources", self.resources.iter()),
            sum("revisions", self.revisions.iter()),
            sum("audit", self.audit.iter()),
            sum("inventories", self.inventories.iter()),
            sum("keyrings", self.keyring.iter()),
            sum("secrets", self.secrets.iter()),
            sum("executions", records.iter()),
            sum("queue", std::iter::once(&queue)),
            sum("execution_events", self.events.iter()),
            sum("execution_secrets", self.run_secrets.iter()),
            sum("workers", self.workers.iter()),
            sum("schedules", self.schedules.iter()),
            sum("schedule_slots", self.slots.iter()),
            sum("events", self.events_in.iter()),
        ]
    }
}

fn sum<'a, T: Serialize + 'a>(table: &'static str, rows: impl Iterator<Item = &'a T>) -> TableSum {
    let mut texts: Vec<String> = rows.map(|row| serde_json::to_string(row).unwrap_or_default()).collect();
    texts.sort();
    let mut hasher = Sha256::new();
    for text in &texts {
        hasher.update(text.as_bytes());
        hasher.update(b"\n");
    }
    TableSum { table, rows: texts.len(), digest: hex::encode(hasher.finalize()) }
}

/// Where two copies differ: each table whose rows or digest do not match.
pub fn differences(expected: &[TableSum], found: &[TableSum]) -> Vec<String> {
    expected
        .iter()
        .zip(found)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| {
            if a.rows == b.rows {
                format!("{}: the {} rows differ in content", a.table, a.rows)
            } else {
                format!("{}: {} rows in the source, {} in the copy", a.table, a.rows, b.rows)
            }
        })
        .collect()
}

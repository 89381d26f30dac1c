//! Every redb table of the store, in one place, with the shape of its keys and values.
//!
//! Values are bytes in the layout of [`super::encoding`]; this file says which table holds what,
//! not how a value is laid out. Adding, renaming or re-keying a table is a format change: bump
//! [`super::FORMAT_VERSION`] and add a migration.

use redb::TableDefinition;

use crate::model::Kind;

/// Store-wide counters and settings, by name. Holds [`FORMAT_VERSION_KEY`] (written once, when
/// the store is created) and [`COMMIT_COUNT_KEY`] (incremented by every committed batch).
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The store format version; a store with a higher one was written by a newer stigmer.
pub(crate) const FORMAT_VERSION_KEY: &str = "format_version";

/// How many batches have been committed; a batch that writes nothing leaves it unchanged.
pub(crate) const COMMIT_COUNT_KEY: &str = "commit_count";

/// The current resources, keyed by [`resource_key`] (`Agent/support-bot`), so the resources of
/// one kind are one range scan ([`kind_range`]) and come out sorted by name. Value: an encoded
/// `StoredResource`.
pub(crate) const RESOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("resources");

/// Every change of every resource, keyed by (resource key, change sequence number), so one
/// resource's history is one range scan, oldest first. The sequence number is the key of the
/// matching [`AUDIT`] entry, not the generation: a resource deleted and created again starts again
/// at generation 1, and its old revisions must stay. Value: an encoded `Revision`.
pub(crate) const REVISIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("revisions");

/// The inventory of each apply set: set name → the resources it owns, as an encoded sorted list
/// of `(Kind, name)`. A set that owns nothing has no entry.
pub(crate) const APPLY_SETS: TableDefinition<&str, &[u8]> = TableDefinition::new("apply_sets");

/// The audit log, keyed by a change sequence number that grows by one with every write (the last
/// key plus one), so the log is append-only and reads oldest first. Value: an encoded
/// `AuditEntry`.
pub(crate) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// Secrets, by name: an encoded `SealedSecret` (the value sealed under the data key, never the
/// plaintext). Added in format 2.
pub(crate) const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

/// The data key the secrets are sealed with, wrapped by the master key: one entry,
/// [`DATA_KEY`], an encoded `Keyring`. Added in format 2.
pub(crate) const KEYRING: TableDefinition<&str, &[u8]> = TableDefinition::new("keyring");

/// The one key of [`KEYRING`].
pub(crate) const DATA_KEY: &str = "data";

/// Executions of workflows and agents, by id: an encoded `ExecutionRecord`, without its
/// definition from format 5 on (see [`EXECUTION_DEFINITIONS`]). Added in format 3.
pub(crate) const EXECUTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("executions");

/// What each execution runs, by execution id: the encoded definition of its `ExecutionRecord`.
/// Kept apart because it is written once and can be large, while the record is rewritten at
/// every claim, renewal and finish and read whole by every list. Added in format 5.
pub(crate) const EXECUTION_DEFINITIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("execution_definitions");

/// Each execution's event log, keyed by (execution id, sequence number from 1), so one
/// execution's events are one range scan, in order. Value: the event as encoded JSON. Added in
/// format 3.
pub(crate) const EXECUTION_EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("execution_events");

/// Pending executions in claim order, keyed by (queue, enqueue sequence number): one queue's
/// oldest is the first entry of its range. Value: the execution id. Added in format 4.
pub(crate) const EXECUTION_QUEUE: TableDefinition<(&str, u64), &str> = TableDefinition::new("execution_queue");

/// The live leases, keyed by (expiry in Unix milliseconds, execution id), so the lapsed ones are
/// the range up to now. Value: the lease's epoch. Added in format 4.
pub(crate) const EXECUTION_LEASES: TableDefinition<(u64, &str), u64> = TableDefinition::new("execution_leases");

/// The secret values given for one run (`--secret`), by execution id: sealed by the backend
/// under the data key before they get here, and deleted when the execution ends. Added in
/// format 4.
pub(crate) const EXECUTION_SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("execution_secrets");

/// The workers that claimed work here, by worker id: an encoded `WorkerInfo`. Added in format 4.
pub(crate) const WORKERS: TableDefinition<&str, &[u8]> = TableDefinition::new("workers");

/// Each scheduled workflow's scheduler state, by workflow name: an encoded `ScheduleState`.
/// Added in format 4.
pub(crate) const SCHEDULES: TableDefinition<&str, &[u8]> = TableDefinition::new("schedules");

/// Each resource's observed conditions, by address: an encoded `Observed`. Added after format
/// 5 without a new format: a store without the table has observed nothing, and an older binary
/// leaves it alone.
pub(crate) const CONDITIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("conditions");

/// Every schedule slot that fired, keyed by (workflow name, slot time in Unix milliseconds):
/// written in the transaction that creates the slot's execution, so a slot fires once however
/// often the server restarts. Value: the execution id. Added in format 4.
pub(crate) const SCHEDULE_SLOTS: TableDefinition<(&str, u64), &str> = TableDefinition::new("schedule_slots");

/// Every event sent in, keyed by (`source`, `id`) — a CloudEvent's identity, so a duplicate is
/// known — with the event as encoded JSON. Added in format 4.
pub(crate) const EVENTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("events");

/// The next enqueue sequence number of [`EXECUTION_QUEUE`], in [`META`].
pub(crate) const QUEUE_SEQUENCE_KEY: &str = "queue_sequence";

/// The key of a resource in [`RESOURCES`] and [`REVISIONS`]: `Agent/support-bot`.
///
/// Uses the manifest name of the kind (which never changes) rather than the CLI name.
pub(crate) fn resource_key(kind: Kind, name: &str) -> String {
    format!("{}/{name}", kind.as_str())
}

/// The keys of every resource of one kind in [`RESOURCES`]: from `Agent/` up to, not including,
/// `Agent0` (`0` is the byte after `/`), which leaves out `AgentInstance/…`.
pub(crate) fn kind_range(kind: Kind) -> (String, String) {
    (format!("{}/", kind.as_str()), format!("{}0", kind.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_range_holds_only_that_kind() {
        let (start, end) = kind_range(Kind::Agent);
        let inside = |key: &str| start.as_str() <= key && key < end.as_str();
        assert!(inside(&resource_key(Kind::Agent, "a")));
        assert!(inside(&resource_key(Kind::Agent, "with/slash")));
        assert!(!inside(&resource_key(Kind::AgentInstance, "a")));
        assert!(!inside(&resource_key(Kind::AgentExecution, "a")));
        assert!(!inside(&resource_key(Kind::Skill, "a")));
    }
}

//! A redb store read whole, for `stigmer server migrate-store`.

use redb::{ReadableTable, TableError};

use super::Store;
use super::tables::{
    APPLY_SETS, AUDIT, COMMIT_COUNT_KEY, EVENTS, EXECUTION_DEFINITIONS, EXECUTION_EVENTS, EXECUTION_QUEUE,
    EXECUTION_SECRETS, EXECUTIONS, META, RESOURCES, REVISIONS, SCHEDULE_SLOTS, SCHEDULES, SECRETS, WORKERS,
};
use crate::backend::BackendError;
use crate::store::transfer::OrgData;

impl Store {
    /// Everything the store holds, read in one transaction.
    pub fn dump(&self) -> Result<OrgData, BackendError> {
        let txn = self.begin_read()?;
        let engine = |e: redb::StorageError| self.engine(e);
        let missing = |e: TableError| match e {
            TableError::TableDoesNotExist(_) => None,
            other => Some(self.engine(other)),
        };
        let mut data = OrgData::default();
        macro_rules! each {
            ($table:expr, |$key:ident, $value:ident| $body:block) => {
                match txn.open_table($table) {
                    Ok(table) => {
                        for entry in table.iter().map_err(engine)? {
                            let ($key, $value) = entry.map_err(engine)?;
                            $body
                        }
                    }
                    Err(error) => {
                        if let Some(error) = missing(error) {
                            return Err(error);
                        }
                    }
                }
            };
        }
        let meta = txn.open_table(META).map_err(|e| self.engine(e))?;
        data.commit_count = meta.get(COMMIT_COUNT_KEY).map_err(engine)?.map_or(0, |v| v.value());
        each!(RESOURCES, |_key, value| { data.resources.push(self.decode(value.value())?) });
        each!(REVISIONS, |key, value| { data.revisions.push((key.value().1, self.decode(value.value())?)) });
        each!(AUDIT, |key, value| { data.audit.push((key.value(), self.decode(value.value())?)) });
        each!(APPLY_SETS, |key, value| {
            data.inventories.push((key.value().to_owned(), self.decode(value.value())?));
        });
        data.keyring = self.keyring()?;
        each!(SECRETS, |_key, value| { data.secrets.push(self.decode(value.value())?) });
        let mut queued = std::collections::HashMap::new();
        each!(EXECUTION_QUEUE, |key, value| {
            queued.insert(value.value().to_owned(), key.value().1);
        });
        let mut definitions = std::collections::HashMap::new();
        each!(EXECUTION_DEFINITIONS, |key, value| {
            definitions.insert(key.value().to_owned(), self.decode::<serde_json::Value>(value.value())?);
        });
        each!(EXECUTIONS, |_key, value| {
            let mut record: crate::backend::ExecutionRecord = self.decode(value.value())?;
            if let Some(definition) = definitions.remove(&record.id) {
                record.definition = Some(definition);
            }
            let place = queued.get(&record.id).copied();
            data.executions.push((record, place));
        });
        each!(EXECUTION_EVENTS, |key, value| {
            let (id, sequence) = key.value();
            data.events.push((id.to_owned(), sequence, self.decode(value.value())?));
        });
        each!(EXECUTION_SECRETS, |key, value| {
            data.run_secrets.push((key.value().to_owned(), value.value().to_vec()));
        });
        each!(WORKERS, |_key, value| { data.workers.push(self.decode(value.value())?) });
        each!(SCHEDULES, |key, value| { data.schedules.push((key.value().to_owned(), self.decode(value.value())?)) });
        each!(SCHEDULE_SLOTS, |key, value| {
            let (workflow, slot) = key.value();
            data.slots.push((workflow.to_owned(), slot, value.value().to_owned()));
        });
        each!(EVENTS, |key, value| {
            let (source, id) = key.value();
            data.events_in.push((source.to_owned(), id.to_owned(), self.decode(value.value())?));
        });
        Ok(data)
    }
}

//! Executions and their event logs. An execution's events are appended in order under
//! sequence numbers from 1; a runner that restarts continues after the last one. The store keeps
//! what it is given — runners redact before they hand anything over.

use jiff::Timestamp;
use redb::{ReadableTable, TableError};

use super::Store;
use super::tables::{EXECUTION_EVENTS, EXECUTIONS};
use crate::backend::{BackendError, ExecutionQuery, ExecutionRecord, ExecutionStatus};

impl Store {
    /// Records a new execution; its id must be new.
    pub fn create_execution(&self, record: &ExecutionRecord) -> Result<(), BackendError> {
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
            if table.get(record.id.as_str()).map_err(|e| self.engine(e))?.is_some() {
                return Err(BackendError::Storage(format!("execution {} already exists", record.id)));
            }
            table.insert(record.id.as_str(), self.encode(record)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        txn.commit().map_err(|e| self.engine(e))
    }

    /// Appends events to an execution's log, in one transaction; returns the last sequence number.
    pub fn append_events(&self, id: &str, events: &[Box<serde_json::value::RawValue>]) -> Result<u64, BackendError> {
        let txn = self.begin_write()?;
        let last = {
            if txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?.get(id).map_err(|e| self.engine(e))?.is_none() {
                return Err(not_found(id));
            }
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
            last
        };
        txn.commit().map_err(|e| self.engine(e))?;
        Ok(last)
    }

    /// Sets an execution's final status with its output or error.
    pub fn finish_execution(
        &self,
        id: &str,
        status: ExecutionStatus,
        output: Option<serde_json::Value>,
        error: Option<serde_json::Value>,
        now: Timestamp,
    ) -> Result<(), BackendError> {
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(EXECUTIONS).map_err(|e| self.engine(e))?;
            let mut record: ExecutionRecord = match table.get(id).map_err(|e| self.engine(e))? {
                Some(value) => self.decode(value.value())?,
                None => return Err(not_found(id)),
            };
            record.status = status;
            record.output = output;
            record.error = error;
            record.finished_at = status.is_final().then_some(now);
            table.insert(id, self.encode(&record)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        txn.commit().map_err(|e| self.engine(e))
    }

    /// One execution.
    pub fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(EXECUTIONS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(self.engine(error)),
        };
        match table.get(id).map_err(|e| self.engine(e))? {
            Some(value) => self.decode(value.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Executions matching the query, oldest first.
    pub fn executions(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(EXECUTIONS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(self.engine(error)),
        };
        let mut found = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (_, value) = entry.map_err(|e| self.engine(e))?;
            let record: ExecutionRecord = self.decode(value.value())?;
            let wanted = query.target.as_ref().is_none_or(|t| *t == record.target)
                && query.status.is_none_or(|s| s == record.status);
            if wanted {
                found.push(record);
            }
        }
        found.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(found)
    }

    /// An execution's events after sequence number `after` (0: all), with their numbers.
    pub fn events(&self, id: &str, after: u64) -> Result<Vec<(u64, serde_json::Value)>, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(EXECUTION_EVENTS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(self.engine(error)),
        };
        let mut events = Vec::new();
        for entry in table.range((id, after.saturating_add(1))..=(id, u64::MAX)).map_err(|e| self.engine(e))? {
            let (key, value) = entry.map_err(|e| self.engine(e))?;
            events.push((key.value().1, self.decode(value.value())?));
        }
        Ok(events)
    }
}

fn not_found(id: &str) -> BackendError {
    BackendError::NotFound { address: format!("execution/{id}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OpenOptions;

    #[test]
    fn an_execution_log_appends_in_order_and_reads_from_any_point() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db"), &OpenOptions::new(std::time::Duration::ZERO, "t")).unwrap();
        let record = ExecutionRecord {
            id: "e1".into(),
            target: "workflow/w".into(),
            status: ExecutionStatus::Running,
            started_at: Timestamp::UNIX_EPOCH,
            finished_at: None,
            actor: "ana".into(),
            input: serde_json::json!({}),
            output: None,
            error: None,
            definition: None,
        };
        store.create_execution(&record).unwrap();
        assert!(store.create_execution(&record).is_err(), "ids are unique");
        let raw = |n: u64| serde_json::value::to_raw_value(&n).unwrap();
        assert_eq!(store.append_events("e1", &[raw(1), raw(2)]).unwrap(), 2);
        assert_eq!(store.append_events("e1", &[raw(3)]).unwrap(), 3);
        assert!(matches!(store.append_events("nope", &[raw(1)]), Err(BackendError::NotFound { .. })));
        let after_one: Vec<u64> = store.events("e1", 1).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(after_one, [2, 3]);
        store
            .finish_execution(
                "e1",
                ExecutionStatus::Completed,
                Some(serde_json::json!("done")),
                None,
                Timestamp::UNIX_EPOCH,
            )
            .unwrap();
        let stored = store.execution("e1").unwrap().unwrap();
        assert_eq!((stored.status, stored.output), (ExecutionStatus::Completed, Some(serde_json::json!("done"))));
        let query = ExecutionQuery { status: Some(ExecutionStatus::Running), ..ExecutionQuery::default() };
        assert!(store.executions(&query).unwrap().is_empty());
        assert_eq!(store.executions(&ExecutionQuery::default()).unwrap().len(), 1);
    }
}

//! The scheduler's state: per scheduled workflow, where its slots stand, and every slot that
//! fired. A slot and the execution it starts are written in one transaction, so a slot fires
//! exactly once however often the server stops and starts.

use jiff::Timestamp;
use redb::{ReadableTable, TableError};

use super::Store;
use super::tables::{EVENTS, SCHEDULE_SLOTS, SCHEDULES};
use crate::backend::storage::{EventEffects, Fire};
use crate::backend::{BackendError, ScheduleState};

impl Store {
    /// Every scheduled workflow's state, by workflow name.
    pub fn schedule_states(&self) -> Result<Vec<(String, ScheduleState)>, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(SCHEDULES) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(self.engine(error)),
        };
        let mut states = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (key, value) = entry.map_err(|e| self.engine(e))?;
            states.push((key.value().to_owned(), self.decode(value.value())?));
        }
        Ok(states)
    }

    /// Records a scheduled workflow's state.
    /// The stored `paused` flag is kept (see [`Store::pause_schedule`]).
    pub fn put_schedule_state(&self, workflow: &str, state: &ScheduleState) -> Result<(), BackendError> {
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(SCHEDULES).map_err(|e| self.engine(e))?;
            let paused = self.stored_paused(&table, workflow)?.unwrap_or(state.paused);
            let state = ScheduleState { paused, ..state.clone() };
            table.insert(workflow, self.encode(&state)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        txn.commit().map_err(|e| self.engine(e))
    }

    /// Pauses or resumes a schedule: only its flag changes (`initial` when it has no state).
    pub fn pause_schedule(&self, workflow: &str, paused: bool, initial: &ScheduleState) -> Result<(), BackendError> {
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(SCHEDULES).map_err(|e| self.engine(e))?;
            let stored: Option<ScheduleState> = match table.get(workflow).map_err(|e| self.engine(e))? {
                Some(value) => Some(self.decode(value.value())?),
                None => None,
            };
            let state = ScheduleState { paused, ..stored.unwrap_or_else(|| initial.clone()) };
            table.insert(workflow, self.encode(&state)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        txn.commit().map_err(|e| self.engine(e))
    }

    /// The `paused` flag a schedule's stored state has, if it has one.
    fn stored_paused(
        &self,
        table: &redb::Table<'_, &str, &[u8]>,
        workflow: &str,
    ) -> Result<Option<bool>, BackendError> {
        match table.get(workflow).map_err(|e| self.engine(e))? {
            Some(value) => Ok(Some(self.decode::<ScheduleState>(value.value())?.paused)),
            None => Ok(None),
        }
    }

    /// Fires schedule slots, each with its execution and its schedule's new state, in one
    /// transaction: a slot that already fired is left out, with nothing of it written. Returns
    /// whether each fired.
    pub fn fire_slots(&self, fires: &[Fire]) -> Result<Vec<bool>, BackendError> {
        if fires.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.begin_write()?;
        let mut outcomes = Vec::with_capacity(fires.len());
        for fire in fires {
            let key = (fire.workflow.as_str(), u64::try_from(fire.slot.as_millisecond()).unwrap_or(0));
            {
                let mut slots = txn.open_table(SCHEDULE_SLOTS).map_err(|e| self.engine(e))?;
                let mut table = txn.open_table(SCHEDULES).map_err(|e| self.engine(e))?;
                let paused = self.stored_paused(&table, &fire.workflow)?.unwrap_or(false);
                if paused || slots.get(key).map_err(|e| self.engine(e))?.is_some() {
                    outcomes.push(false);
                    continue;
                }
                slots.insert(key, fire.record.id.as_str()).map_err(|e| self.engine(e))?;
                table
                    .insert(fire.workflow.as_str(), self.encode(&fire.state)?.as_slice())
                    .map_err(|e| self.engine(e))?;
            }
            self.insert_execution(&txn, &fire.record, None)?;
            outcomes.push(true);
        }
        self.commit_execution_write(txn)?;
        Ok(outcomes)
    }

    /// Keeps an event sent in and does what it does, in one transaction: appends it as a
    /// `signal` to the executions it is delivered to, creates the executions it starts (if any)
    /// and writes their schedules' new states. `false`, with nothing written, when an event of
    /// the same `source` and `id` was kept before.
    pub fn publish_event(
        &self,
        event: &serde_json::Value,
        effects: &EventEffects,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        let EventEffects { deliver, start } = effects;
        let text = |name: &str| event.get(name).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
        let (source, id) = (text("source"), text("id"));
        let txn = self.begin_write()?;
        {
            let mut events = txn.open_table(EVENTS).map_err(|e| self.engine(e))?;
            if events.get((source.as_str(), id.as_str())).map_err(|e| self.engine(e))?.is_some() {
                return Ok(false);
            }
            events
                .insert((source.as_str(), id.as_str()), self.encode(event)?.as_slice())
                .map_err(|e| self.engine(e))?;
        }
        let signal = serde_json::json!({ "at": now, "event": "signal", "cloudEvent": event });
        let raw = serde_json::value::to_raw_value(&signal)
            .map_err(|e| BackendError::Storage(format!("cannot encode the event: {e}")))?;
        for execution in deliver {
            match self.append_in(&txn, execution, None, std::slice::from_ref(&raw)) {
                // It was removed since it was picked: nothing to hand it to.
                Ok(_) | Err(BackendError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        for (workflow, record, state) in start {
            if let Some(record) = record {
                self.insert_execution(&txn, record, None)?;
            }
            let mut table = txn.open_table(SCHEDULES).map_err(|e| self.engine(e))?;
            table.insert(workflow.as_str(), self.encode(state)?.as_slice()).map_err(|e| self.engine(e))?;
        }
        self.commit_execution_write(txn)?;
        Ok(true)
    }
}

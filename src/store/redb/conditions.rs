//! Observed conditions, by resource address: observations, not desired state, so written
//! outside any apply and kept out of revisions and the audit log.

use redb::{ReadableTable, TableError};

use super::Store;
use super::tables::CONDITIONS;
use crate::backend::BackendError;
use crate::backend::condition::Observed;

impl Store {
    /// Every resource's observed conditions.
    pub fn conditions(&self) -> Result<Vec<Observed>, BackendError> {
        let txn = self.begin_read()?;
        // A store written before conditions existed has no table: nothing was observed.
        let table = match txn.open_table(CONDITIONS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(self.engine(error)),
        };
        let mut observed = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (_, value) = entry.map_err(|e| self.engine(e))?;
            observed.push(self.decode(value.value())?);
        }
        Ok(observed)
    }

    /// Records resources' observed conditions, replacing what each had, in one transaction.
    pub fn put_conditions(&self, observed: &[Observed]) -> Result<(), BackendError> {
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(CONDITIONS).map_err(|e| self.engine(e))?;
            for one in observed {
                table.insert(one.address.as_str(), self.encode(one)?.as_slice()).map_err(|e| self.engine(e))?;
            }
        }
        txn.commit().map_err(|e| self.engine(e))
    }
}

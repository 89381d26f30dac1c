//! The secret tables: sealed values and the wrapped data key. The store never sees a plaintext
//! or an unwrapped key — the caller seals and opens; the store keeps the bytes, checks that a
//! value was sealed under the current data key, audits every change and rotates in one
//! transaction.

use jiff::Timestamp;
use redb::{ReadableTable, TableError};

use super::Store;
use super::tables::{AUDIT, DATA_KEY, KEYRING, META, SECRETS};
use crate::backend::storage::{Author, Keyring, SealedSecret};
use crate::backend::{AuditEntry, BackendError, RevisionAction};

impl Store {
    /// The wrapped data key, if any secret was ever stored.
    pub fn keyring(&self) -> Result<Option<Keyring>, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(KEYRING) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(self.engine(error)),
        };
        match table.get(DATA_KEY).map_err(|e| self.engine(e))? {
            Some(value) => self.decode(value.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `candidate` as the data key unless one exists; returns the one in force.
    pub fn ensure_keyring(&self, candidate: &Keyring) -> Result<Keyring, BackendError> {
        let txn = self.begin_write()?;
        let current = {
            let mut table = txn.open_table(KEYRING).map_err(|e| self.engine(e))?;
            let existing = table.get(DATA_KEY).map_err(|e| self.engine(e))?.map(|v| v.value().to_vec());
            if let Some(bytes) = existing {
                self.decode(&bytes)?
            } else {
                table.insert(DATA_KEY, self.encode(candidate)?.as_slice()).map_err(|e| self.engine(e))?;
                candidate.clone()
            }
        };
        txn.commit().map_err(|e| self.engine(e))?;
        Ok(current)
    }

    /// Every secret, by name.
    pub fn secrets(&self) -> Result<Vec<SealedSecret>, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(SECRETS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(self.engine(error)),
        };
        let mut secrets = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (_, value) = entry.map_err(|e| self.engine(e))?;
            secrets.push(self.decode(value.value())?);
        }
        Ok(secrets)
    }

    /// One secret.
    pub fn secret(&self, name: &str) -> Result<Option<SealedSecret>, BackendError> {
        let txn = self.begin_read()?;
        let table = match txn.open_table(SECRETS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(self.engine(error)),
        };
        match table.get(name).map_err(|e| self.engine(e))? {
            Some(value) => self.decode(value.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Sets a secret's sealed value; it must be sealed under the data key in force (a rotation
    /// in between is a conflict). Returns whether the secret is new.
    pub fn put_secret(
        &self,
        name: &str,
        key_id: &str,
        sealed: &[u8],
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<bool, BackendError> {
        let txn = self.begin_write()?;
        let created = {
            let keyring = txn.open_table(KEYRING).map_err(|e| self.engine(e))?;
            let current: Option<Keyring> = match keyring.get(DATA_KEY).map_err(|e| self.engine(e))? {
                Some(value) => Some(self.decode(value.value())?),
                None => None,
            };
            if current.as_ref().map(|k| k.key_id.as_str()) != Some(key_id) {
                return Err(BackendError::Conflict {
                    moved: vec![crate::backend::Moved {
                        address: "secret key".to_owned(),
                        expected: None,
                        found: None,
                    }],
                });
            }
            let mut table = txn.open_table(SECRETS).map_err(|e| self.engine(e))?;
            let previous: Option<SealedSecret> = match table.get(name).map_err(|e| self.engine(e))? {
                Some(value) => Some(self.decode(value.value())?),
                None => None,
            };
            let record = SealedSecret {
                name: name.to_owned(),
                created_at: previous.as_ref().map_or(now, |p| p.created_at),
                updated_at: now,
                key_id: key_id.to_owned(),
                sealed: hex::encode(sealed),
            };
            table.insert(name, self.encode(&record)?.as_slice()).map_err(|e| self.engine(e))?;
            let action = if previous.is_some() { RevisionAction::Updated } else { RevisionAction::Created };
            self.audit_secret(&txn, action, &format!("secret/{name}"), author, now)?;
            previous.is_none()
        };
        txn.commit().map_err(|e| self.engine(e))?;
        Ok(created)
    }

    /// Deletes a secret.
    pub fn delete_secret(&self, name: &str, author: Author<'_>, now: Timestamp) -> Result<(), BackendError> {
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(SECRETS).map_err(|e| self.engine(e))?;
            if table.remove(name).map_err(|e| self.engine(e))?.is_none() {
                return Err(BackendError::NotFound { address: format!("secret/{name}") });
            }
            self.audit_secret(&txn, RevisionAction::Deleted, &format!("secret/{name}"), author, now)?;
        }
        txn.commit().map_err(|e| self.engine(e))
    }

    /// Replaces the data key and re-seals every secret under it, in one transaction: after a
    /// crash either every value is under the old key (and the old key is in force) or every
    /// value is under the new one. `reseal` gets each stored secret and returns its new sealed
    /// bytes. Returns how many secrets were re-sealed.
    pub fn rotate_keyring(
        &self,
        new: &Keyring,
        reseal: impl Fn(&SealedSecret) -> Result<Vec<u8>, BackendError>,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<usize, BackendError> {
        let txn = self.begin_write()?;
        let count = {
            let mut table = txn.open_table(SECRETS).map_err(|e| self.engine(e))?;
            let mut secrets: Vec<SealedSecret> = Vec::new();
            for entry in table.iter().map_err(|e| self.engine(e))? {
                let (_, value) = entry.map_err(|e| self.engine(e))?;
                secrets.push(self.decode(value.value())?);
            }
            for secret in &secrets {
                let sealed = reseal(secret)?;
                let record = SealedSecret { key_id: new.key_id.clone(), sealed: hex::encode(sealed), ..secret.clone() };
                table.insert(secret.name.as_str(), self.encode(&record)?.as_slice()).map_err(|e| self.engine(e))?;
            }
            let mut keyring = txn.open_table(KEYRING).map_err(|e| self.engine(e))?;
            keyring.insert(DATA_KEY, self.encode(new)?.as_slice()).map_err(|e| self.engine(e))?;
            self.audit_secret(&txn, RevisionAction::Updated, "secret-key", author, now)?;
            secrets.len()
        };
        txn.commit().map_err(|e| self.engine(e))?;
        Ok(count)
    }

    /// Appends an audit entry for a secret change and counts the commit.
    fn audit_secret(
        &self,
        txn: &redb::WriteTransaction,
        action: RevisionAction,
        target: &str,
        author: Author<'_>,
        now: Timestamp,
    ) -> Result<(), BackendError> {
        let mut audit = txn.open_table(AUDIT).map_err(|e| self.engine(e))?;
        let sequence = audit.last().map_err(|e| self.engine(e))?.map_or(1, |(key, _)| key.value() + 1);
        let entry = AuditEntry {
            at: now,
            action,
            target: target.to_owned(),
            actor: author.actor.to_owned(),
            apply_set: None,
            address: author.address.map(str::to_owned),
            detail: None,
        };
        audit.insert(sequence, self.encode(&entry)?.as_slice()).map_err(|e| self.engine(e))?;
        let mut meta = txn.open_table(META).map_err(|e| self.engine(e))?;
        self.count_commit(&mut meta)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redb::OpenOptions;

    fn author() -> Author<'static> {
        Author { actor: "ana", address: None }
    }

    fn keyring(id: &str) -> Keyring {
        Keyring {
            key_id: id.into(),
            wrapped: "00".into(),
            master_fingerprint: "f".into(),
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_rotation_that_fails_midway_leaves_every_value_under_the_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db"), &OpenOptions::new(std::time::Duration::ZERO, "t")).unwrap();
        let old = store.ensure_keyring(&keyring("old")).unwrap();
        assert_eq!(store.ensure_keyring(&keyring("other")).unwrap(), old, "the first key stays");
        for name in ["a", "b", "c"] {
            assert!(store.put_secret(name, "old", name.as_bytes(), author(), Timestamp::UNIX_EPOCH).unwrap());
        }
        let failing = |secret: &SealedSecret| {
            if secret.name == "b" { Err(BackendError::Storage("crash".into())) } else { Ok(b"new".to_vec()) }
        };
        assert!(store.rotate_keyring(&keyring("new"), failing, author(), Timestamp::UNIX_EPOCH).is_err());
        assert_eq!(store.keyring().unwrap().unwrap().key_id, "old");
        assert!(store.secrets().unwrap().iter().all(|s| s.key_id == "old" && s.bytes().unwrap() == s.name.as_bytes()));

        assert_eq!(
            store.rotate_keyring(&keyring("new"), |_| Ok(b"new".to_vec()), author(), Timestamp::UNIX_EPOCH).unwrap(),
            3
        );
        assert!(store.secrets().unwrap().iter().all(|s| s.key_id == "new"));
        // A value sealed under the old key can no longer be stored.
        assert!(matches!(
            store.put_secret("d", "old", b"x", author(), Timestamp::UNIX_EPOCH),
            Err(BackendError::Conflict { .. })
        ));
        store.delete_secret("a", author(), Timestamp::UNIX_EPOCH).unwrap();
        assert!(matches!(
            store.delete_secret("a", author(), Timestamp::UNIX_EPOCH),
            Err(BackendError::NotFound { .. })
        ));
        assert_eq!(store.audit(None).unwrap().len(), 3 + 1 + 1, "sets, the rotation and the delete are audited");
    }
}

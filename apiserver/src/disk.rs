//! `--data`: the store's objects kept in one file, so a server started again on the same
//! file serves what the last one held. Every write is its own redb transaction, committed
//! (fsync'd) before the request is answered, so a crash loses no answered write; the watch
//! history is not kept, and watches from before a restart get 410 Expired and list again,
//! as after an etcd compaction.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

/// Objects by the store's key text, as the store serialized them.
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
/// The one global revision, under `REVISION`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";

/// Why the data file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct DiskError {
    pub path: PathBuf,
    pub reason: String,
}

/// The revision and the records (key text, bytes) a data file holds.
pub type Kept = (u64, Vec<(String, Vec<u8>)>);

pub struct Disk {
    db: redb::Database,
    path: PathBuf,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk").field("path", &self.path).finish()
    }
}

impl Disk {
    /// Opens the file, creating it when missing. Another live server on the same file is
    /// refused rather than shared: two servers would each hand out the same revisions.
    pub fn open(path: &Path) -> Result<Self, DiskError> {
        let fail = |reason: String| DiskError {
            path: path.to_owned(),
            reason,
        };
        let db = redb::Database::create(path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                fail("already in use by another running server; stop it first".into())
            }
            other => fail(other.to_string()),
        })?;
        let disk = Self {
            db,
            path: path.to_owned(),
        };
        // Both tables exist from the first open, so a read of a fresh file finds them.
        disk.write(|txn| {
            txn.open_table(OBJECTS)?;
            txn.open_table(META)?;
            Ok(())
        })
        .map_err(|err| fail(err.reason))?;
        Ok(disk)
    }

    /// The revision and every record kept.
    pub fn load(&self) -> Result<Kept, DiskError> {
        let fail = |reason: String| DiskError {
            path: self.path.clone(),
            reason,
        };
        let read = || -> Result<Kept, Box<dyn std::error::Error>> {
            let txn = self.db.begin_read()?;
            let revision = txn
                .open_table(META)?
                .get(REVISION)?
                .map_or(1, |v| v.value());
            let mut objects = Vec::new();
            for entry in txn.open_table(OBJECTS)?.iter()? {
                let (key, value) = entry?;
                objects.push((key.value().to_owned(), value.value().to_vec()));
            }
            Ok((revision, objects))
        };
        read().map_err(|err| fail(format!("cannot be read: {err}")))
    }

    /// Keeps a new version of a record, and the revision it was written at.
    pub fn put(&self, key: &str, record: &[u8], revision: u64) -> Result<(), DiskError> {
        self.write(|txn| {
            txn.open_table(OBJECTS)?.insert(key, record)?;
            txn.open_table(META)?.insert(REVISION, revision)?;
            Ok(())
        })
    }

    /// Forgets a record, and keeps the revision its deletion took.
    pub fn remove(&self, key: &str, revision: u64) -> Result<(), DiskError> {
        self.write(|txn| {
            txn.open_table(OBJECTS)?.remove(key)?;
            txn.open_table(META)?.insert(REVISION, revision)?;
            Ok(())
        })
    }

    /// The error for a record that does not read back.
    pub fn unreadable(&self, key: &str) -> DiskError {
        DiskError {
            path: self.path.clone(),
            reason: format!(
                "cannot be read: the record {:?} is not one this server wrote",
                key.replace('\0', "/")
            ),
        }
    }

    fn write(
        &self,
        change: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), DiskError> {
        let run = || -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            change(&txn)?;
            txn.commit()?;
            Ok(())
        };
        run().map_err(|err| DiskError {
            path: self.path.clone(),
            reason: format!("cannot be written: {err}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_written_is_read_back_by_the_next_open_and_removals_stay_removed() {
        let dir = std::env::temp_dir().join(format!("apiserver-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data.redb");
        let _ = std::fs::remove_file(&path);
        {
            let disk = Disk::open(&path).unwrap();
            assert_eq!(
                disk.load().unwrap().0,
                1,
                "a fresh file starts at revision 1"
            );
            disk.put("a", b"first", 2).unwrap();
            disk.put("b", b"second", 3).unwrap();
            disk.remove("b", 4).unwrap();
        }
        let disk = Disk::open(&path).unwrap();
        let (revision, records) = disk.load().unwrap();
        assert_eq!(revision, 4);
        assert_eq!(records, [("a".to_owned(), b"first".to_vec())]);
        assert!(
            Disk::open(&path).is_err(),
            "a second server on a file in use is refused"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

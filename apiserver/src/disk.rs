//! `--data`: the store's objects kept in one file, so a server started again on the same
//! file serves what the last one held. Every write is its own redb transaction, committed
//! (fsync'd) before the request is answered, so a crash loses no answered write; the watch
//! history is not kept, and watches from before a restart get 410 Expired and list again,
//! as after an etcd compaction.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::ownership::Managers;
use crate::store::{Key, Stored};

/// Objects by `resource \0 namespace \0 name` (NUL never appears in any of the three).
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

/// What one object is kept as: the object and who owns its fields.
#[derive(Serialize, Deserialize)]
struct Record {
    object: Value,
    managers: Managers,
}

/// The revision and the objects a data file holds.
pub type Kept = (u64, Vec<(Key, Stored)>);

pub struct Disk {
    db: redb::Database,
    path: PathBuf,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk").field("path", &self.path).finish()
    }
}

fn key_text(key: &Key) -> String {
    format!("{}\0{}\0{}", key.resource, key.namespace, key.name)
}

fn parse_key(text: &str) -> Option<Key> {
    let mut parts = text.splitn(3, '\0');
    Some(Key {
        resource: parts.next()?.to_owned(),
        namespace: parts.next()?.to_owned(),
        name: parts.next()?.to_owned(),
    })
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

    /// The revision and every object kept.
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
                let key = parse_key(key.value()).ok_or("a stored key is malformed")?;
                let record: Record = serde_json::from_slice(value.value())?;
                let stored = Stored {
                    object: record.object,
                    managers: record.managers,
                };
                objects.push((key, stored));
            }
            Ok((revision, objects))
        };
        read().map_err(|err| fail(format!("cannot be read: {err}")))
    }

    /// Keeps a new version of an object, and the revision it was written at.
    pub fn put(&self, key: &Key, stored: &Stored, revision: u64) -> Result<(), DiskError> {
        let record = serde_json::to_vec(&Record {
            object: stored.object.clone(),
            managers: stored.managers.clone(),
        })
        .map_err(|err| DiskError {
            path: self.path.clone(),
            reason: err.to_string(),
        })?;
        self.write(|txn| {
            txn.open_table(OBJECTS)?
                .insert(key_text(key).as_str(), record.as_slice())?;
            txn.open_table(META)?.insert(REVISION, revision)?;
            Ok(())
        })
    }

    /// Forgets an object, and keeps the revision its deletion took.
    pub fn remove(&self, key: &Key, revision: u64) -> Result<(), DiskError> {
        self.write(|txn| {
            txn.open_table(OBJECTS)?.remove(key_text(key).as_str())?;
            txn.open_table(META)?.insert(REVISION, revision)?;
            Ok(())
        })
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

    fn key(name: &str) -> Key {
        Key {
            resource: "connections.plugboard.dev".into(),
            namespace: "acme".into(),
            name: name.into(),
        }
    }

    fn stored(n: u64) -> Stored {
        Stored {
            object: serde_json::json!({"metadata": {"name": "a", "resourceVersion": n.to_string()}}),
            managers: Managers::default(),
        }
    }

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
            disk.put(&key("a"), &stored(2), 2).unwrap();
            disk.put(&key("b"), &stored(3), 3).unwrap();
            disk.remove(&key("b"), 4).unwrap();
        }
        let disk = Disk::open(&path).unwrap();
        let (revision, objects) = disk.load().unwrap();
        assert_eq!(revision, 4);
        let names: Vec<&str> = objects.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(names, ["a"]);
        assert_eq!(objects[0].1.object["metadata"]["resourceVersion"], "2");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

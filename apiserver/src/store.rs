//! What etcd keeps: the objects, one global revision (`resourceVersion`) across every kind,
//! and a bounded history of changes for watches to resume from. One lock guards it all; no
//! request holds it across an await.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::disk::{Disk, DiskError};
use crate::ownership::Managers;
use crate::resource::Registry;

/// Where an object lives: qualified resource (`plural.group`), namespace (`""` when
/// cluster-scoped), name. Ordered as etcd orders its keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Key {
    /// `resource \0 namespace \0 name`, how the data file keys objects: NUL appears in
    /// none of the three.
    fn text(&self) -> String {
        format!("{}\0{}\0{}", self.resource, self.namespace, self.name)
    }

    fn parse(text: &str) -> Option<Key> {
        let mut parts = text.splitn(3, '\0');
        Some(Key {
            resource: parts.next()?.to_owned(),
            namespace: parts.next()?.to_owned(),
            name: parts.next()?.to_owned(),
        })
    }
}

/// What the data file keeps of one object: the object and who owns its fields.
#[derive(serde::Deserialize)]
struct Record {
    object: Value,
    managers: Managers,
}

#[derive(serde::Serialize)]
struct RecordRef<'a> {
    object: &'a Value,
    managers: &'a Managers,
}

/// ADDED, MODIFIED or DELETED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub key: Key,
    pub change: Change,
    pub object: Value,
    /// The object before the change, so a watch with a selector can tell an object that
    /// stopped matching (DELETED for it) from one it never saw.
    pub prev: Option<Value>,
}

/// A stored object and who owns its fields.
#[derive(Debug, Clone)]
pub struct Stored {
    pub object: Value,
    pub managers: Managers,
}

/// What the control-plane loops look up instead of reading every object: a sweep follows
/// every write, and with thousands of objects a full scan per sweep made the server, not the
/// client under test, the slow part.
#[derive(Default)]
struct Index {
    /// Owner uid to the objects whose `ownerReferences` name it.
    dependents: HashMap<String, BTreeSet<Key>>,
    /// Objects with a `deletionTimestamp`.
    deleting: BTreeSet<Key>,
    /// Objects with owners whose standing may have changed since the garbage collector last
    /// looked: the object itself was written, or one of its owners was written or removed.
    unchecked: BTreeSet<Key>,
}

impl Index {
    fn forget(&mut self, key: &Key, object: &Value) {
        for uid in owner_uids(object) {
            if let Some(set) = self.dependents.get_mut(uid) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(uid);
                }
            }
        }
        self.deleting.remove(key);
    }

    fn learn(&mut self, key: &Key, object: &Value) {
        let mut owned = false;
        for uid in owner_uids(object) {
            owned = true;
            self.dependents
                .entry(uid.to_owned())
                .or_default()
                .insert(key.clone());
        }
        if owned {
            self.unchecked.insert(key.clone());
        }
        if object.pointer("/metadata/deletionTimestamp").is_some() {
            self.deleting.insert(key.clone());
        }
    }

    /// An owner changed or went: its dependents need another look.
    fn owner_changed(&mut self, object: &Value) {
        let uid = object.pointer("/metadata/uid").and_then(Value::as_str);
        if let Some(deps) = uid.and_then(|u| self.dependents.get(u)) {
            self.unchecked.extend(deps.iter().cloned());
        }
    }
}

fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str))
}

pub struct Store {
    objects: BTreeMap<Key, Stored>,
    index: Index,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    events: broadcast::Sender<Arc<Event>>,
    pub registry: Registry,
    /// Where every change is also written, when the server keeps its data (`--data`).
    disk: Option<Disk>,
}

impl Store {
    pub fn new(history_limit: usize, registry: Registry) -> Self {
        Self {
            objects: BTreeMap::new(),
            index: Index::default(),
            rv: 1,
            history: VecDeque::new(),
            history_limit,
            events: broadcast::channel(16_384).0,
            registry,
            disk: None,
        }
    }

    /// A store that keeps its objects in `disk`, starting from what it already holds.
    pub fn on_disk(
        history_limit: usize,
        registry: Registry,
        disk: Disk,
    ) -> Result<Self, DiskError> {
        let (rv, records) = disk.load()?;
        let mut store = Self::new(history_limit, registry);
        store.rv = rv;
        for (text, bytes) in records {
            let (key, record) = Key::parse(&text)
                .zip(serde_json::from_slice::<Record>(&bytes).ok())
                .ok_or_else(|| disk.unreadable(&text))?;
            store.index.learn(&key, &record.object);
            let stored = Stored {
                object: record.object,
                managers: record.managers,
            };
            store.objects.insert(key, stored);
        }
        store.disk = Some(disk);
        Ok(store)
    }

    /// A change the disk did not take is logged and served from memory: refusing the write
    /// would leave clients retrying against a full or read-only disk they cannot fix.
    fn keep(&self, key: &Key) {
        let Some(disk) = &self.disk else { return };
        let kept = match self.objects.get(key) {
            Some(stored) => {
                let record = serde_json::to_vec(&RecordRef {
                    object: &stored.object,
                    managers: &stored.managers,
                })
                .expect("a JSON value and field sets serialize");
                disk.put(&key.text(), &record, self.rv)
            }
            None => disk.remove(&key.text(), self.rv),
        };
        if let Err(err) = kept {
            tracing::error!(error = %err, object = %key.name, "the data file missed a write");
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, key: &Key) -> Option<&Stored> {
        self.objects.get(key)
    }

    /// Objects of one resource, in one namespace or all, in key order.
    pub fn list<'a>(
        &'a self,
        resource: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Stored)> + 'a {
        // Keys sort by resource first: a list walks its own resource's range, not the store.
        let from = Key {
            resource: resource.to_owned(),
            namespace: namespace.unwrap_or_default().to_owned(),
            name: String::new(),
        };
        self.objects.range(from..).take_while(move |(k, _)| {
            k.resource == resource && namespace.is_none_or(|n| n == k.namespace)
        })
    }

    /// Objects of one resource after the key `(namespace, name)`, in key order: where a
    /// continued list picks up, without walking the pages before it.
    pub fn list_after<'a>(
        &'a self,
        resource: &'a str,
        namespace: Option<&'a str>,
        after: (&str, &str),
    ) -> impl Iterator<Item = (&'a Key, &'a Stored)> + 'a {
        use std::ops::Bound;
        let from = Key {
            resource: resource.to_owned(),
            namespace: after.0.to_owned(),
            name: after.1.to_owned(),
        };
        self.objects
            .range((Bound::Excluded(from), Bound::Unbounded))
            .take_while(move |(k, _)| {
                k.resource == resource && namespace.is_none_or(|n| n == k.namespace)
            })
    }

    /// Every stored object (a deleted Namespace's content is found this way).
    pub fn all(&self) -> impl Iterator<Item = (&Key, &Stored)> {
        self.objects.iter()
    }

    /// The objects whose owner references name this uid.
    pub fn dependents(&self, uid: &str) -> impl Iterator<Item = (&Key, &Stored)> {
        self.index
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|k| self.objects.get_key_value(k))
    }

    /// The objects being deleted.
    pub fn deleting(&self) -> impl Iterator<Item = (&Key, &Stored)> {
        self.index
            .deleting
            .iter()
            .filter_map(|k| self.objects.get_key_value(k))
    }

    /// The owned objects the garbage collector has not looked at since they or their owners
    /// changed; taking them marks them looked at.
    pub fn take_unchecked(&mut self) -> BTreeSet<Key> {
        std::mem::take(&mut self.index.unchecked)
    }

    /// Every owned object needs another look (the kinds served changed, so owner references
    /// that named an unknown kind may name a known one now).
    pub fn recheck_all(&mut self) {
        let all = self.index.dependents.values().flatten().cloned();
        self.index.unchecked.extend(all);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// History after `rv`, or the oldest version still kept when it no longer reaches back
    /// that far.
    pub fn since(&self, rv: u64) -> Result<Vec<Arc<Event>>, u64> {
        let oldest = self.history.front().map_or(self.rv + 1, |e| e.rv);
        if rv + 1 < oldest {
            return Err(oldest - 1);
        }
        Ok(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    fn record(&mut self, key: &Key, change: Change, object: Value, prev: Option<Value>) {
        let event = Arc::new(Event {
            rv: self.rv,
            key: key.clone(),
            change,
            object,
            prev,
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
        let _ = self.events.send(event);
    }

    /// Stores a new version of an object under the next revision.
    pub fn put(&mut self, key: &Key, mut object: Value, managers: Managers) -> Value {
        tidy_metadata(&mut object);
        self.rv += 1;
        object["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        let rendered = managers.render();
        let metadata = object["metadata"]
            .as_object_mut()
            .expect("objects have metadata");
        if rendered.as_array().is_some_and(Vec::is_empty) {
            metadata.remove("managedFields");
        } else {
            metadata.insert("managedFields".into(), rendered);
        }
        let prev = self.objects.get(key).map(|s| s.object.clone());
        if let Some(prev) = &prev {
            self.index.forget(key, prev);
        }
        self.index.learn(key, &object);
        self.index.owner_changed(&object);
        let change = if prev.is_some() {
            Change::Modified
        } else {
            Change::Added
        };
        self.objects.insert(
            key.clone(),
            Stored {
                object: object.clone(),
                managers,
            },
        );
        self.keep(key);
        self.record(key, change, object.clone(), prev);
        object
    }

    /// Removes an object under the next revision; watchers get its last state.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let stored = self.objects.remove(key)?;
        self.index.forget(key, &stored.object);
        self.index.owner_changed(&stored.object);
        self.rv += 1;
        let mut object = stored.object.clone();
        object["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        self.keep(key);
        self.record(key, Change::Deleted, object.clone(), Some(stored.object));
        Some(object)
    }
}

/// ObjectMeta as Go serializes it: only its own fields, and no empty or null ones.
fn tidy_metadata(object: &mut Value) {
    const FIELDS: [&str; 15] = [
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    ];
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, v| {
            let empty = v.is_null()
                || v.as_object().is_some_and(|o| o.is_empty())
                || v.as_array().is_some_and(|a| a.is_empty())
                || v.as_str().is_some_and(str::is_empty);
            FIELDS.contains(&k.as_str()) && !empty
        });
    }
}

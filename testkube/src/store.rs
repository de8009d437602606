//! The objects, their versions and their history: what etcd and the API server's registry
//! keep. One lock guards it all; no request holds it across an await.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::fields::{self, Managers, Owned};
use crate::resource::ResourceType;
use crate::status::ApiError;
use crate::validation;

/// ADDED, MODIFIED or DELETED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub resource: String,
    pub change: Change,
    pub object: Value,
}

/// Identifies an object: qualified resource, namespace ("" when cluster-scoped), name.
pub type Key = (String, String, String);

pub struct Store {
    objects: BTreeMap<Key, Value>,
    managers: BTreeMap<Key, Managers>,
    /// etcd's revision: one counter for every kind.
    rv: u64,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    pub events: broadcast::Sender<Arc<Event>>,
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta<'a>(object: &'a Value, field: &str) -> Option<&'a Value> {
    object.get("metadata").and_then(|m| m.get(field))
}

/// Everything outside metadata and status: a change to it bumps `generation`.
fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(k);
        }
    }
    copy
}

/// Secrets never store `stringData`: it is merged into base64 `data` on every write.
fn fold_string_data(object: &mut Value) {
    use base64::Engine as _;
    let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let Some(string_data) = object.as_object_mut().and_then(|o| o.remove("stringData")) else {
        return;
    };
    let data = object
        .as_object_mut()
        .unwrap()
        .entry("data")
        .or_insert_with(|| json!({}));
    if data.is_null() {
        *data = json!({});
    }
    for (k, v) in string_data.as_object().into_iter().flatten() {
        data[k] = Value::String(encode(v.as_str().unwrap_or_default().as_bytes()));
    }
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Self {
            objects: BTreeMap::new(),
            managers: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_limit,
            events: broadcast::channel(4096).0,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of one resource, in one namespace or all.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((r, ns, _), _)| r == resource && namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
            .collect()
    }

    /// History after `rv`, or 410 when it no longer reaches back that far.
    pub fn since(&self, rv: u64) -> Result<Vec<Arc<Event>>, ApiError> {
        let oldest = self.history.front().map_or(self.rv, |e| e.rv);
        if rv + 1 < oldest && rv < self.rv {
            return Err(ApiError::gone(rv));
        }
        Ok(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    fn record(&mut self, key: &Key, change: Change, object: Value) {
        let event = Arc::new(Event {
            rv: self.rv,
            resource: key.0.clone(),
            change,
            object,
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
        let _ = self.events.send(event);
    }

    /// Stores `object` under `key` as a new version, or removes it when it is being deleted
    /// and has no finalizers left.
    fn commit(&mut self, rt: &ResourceType, key: &Key, mut object: Value, change: Change) -> Value {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        if let Some(managers) = self.managers.get(key) {
            object["metadata"]["managedFields"] =
                fields::render(managers, &rt.api_version(), &now());
        }
        let finalizers_left = meta(&object, "finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if meta(&object, "deletionTimestamp").is_some() && !finalizers_left {
            self.objects.remove(key);
            self.managers.remove(key);
            self.record(key, Change::Deleted, object.clone());
            self.collect_garbage(&object);
            return object;
        }
        self.objects.insert(key.clone(), object.clone());
        self.record(key, change, object.clone());
        object
    }

    /// Deletes what the removed object owned (the garbage collector's job in a cluster), and
    /// what a removed Namespace contained.
    fn collect_garbage(&mut self, removed: &Value) {
        let uid = meta(removed, "uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let namespace =
            (removed.get("kind").and_then(Value::as_str) == Some("Namespace")).then(|| {
                meta(removed, "name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            });
        let doomed: Vec<Key> = self
            .objects
            .iter()
            .filter(|(key, object)| {
                namespace.as_deref().is_some_and(|ns| key.1 == ns)
                    || meta(object, "ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| {
                            refs.iter()
                                .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid.as_str()))
                        })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in doomed {
            self.mark_deleted(&key);
        }
    }

    /// DELETE: objects with finalizers get a deletionTimestamp and stay until the last
    /// finalizer goes; others go now.
    pub fn mark_deleted(&mut self, key: &Key) -> Option<Value> {
        let mut object = self.objects.get(key)?.clone();
        if meta(&object, "deletionTimestamp").is_some() {
            return Some(object);
        }
        object["metadata"]["deletionTimestamp"] = Value::String(now());
        object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        let rt = ResourceType::placeholder(&key.0);
        Some(self.commit(&rt, key, object, Change::Modified))
    }

    /// Creates an object: fills in what the server maintains.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        key: &Key,
        mut object: Value,
        manager: Option<(&str, &str)>,
    ) -> Result<Value, ApiError> {
        if self.objects.contains_key(key) {
            return Err(ApiError::already_exists(&rt.qualified(), &key.2));
        }
        prepare(rt, &mut object, &key.2)?;
        let metadata = object["metadata"].as_object_mut().expect("prepared");
        metadata.insert("name".into(), key.2.clone().into());
        if rt.namespaced {
            metadata.insert("namespace".into(), key.1.clone().into());
        }
        metadata.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
        metadata.insert("creationTimestamp".into(), now().into());
        metadata.remove("resourceVersion");
        metadata.remove("deletionTimestamp");
        if rt.tracks_generation {
            metadata.insert("generation".into(), json!(1));
        }
        if let Some((manager, operation)) = manager {
            let owned = Owned {
                operation: operation.into(),
                fields: fields::leaves(&object),
            };
            self.managers
                .insert(key.clone(), Managers::from([(manager.to_owned(), owned)]));
        }
        Ok(self.commit(rt, key, object, Change::Added))
    }

    /// Replaces an object's content (PUT, or the result of a patch), keeping what the client
    /// may not change and enforcing optimistic concurrency when the body names a version.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        key: &Key,
        mut object: Value,
        status_only: bool,
        manager: &str,
        operation: &str,
    ) -> Result<Value, ApiError> {
        let current = self
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), &key.2))?;
        if let Some(sent) = meta(&object, "resourceVersion")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            && Some(sent) != meta(&current, "resourceVersion").and_then(Value::as_str)
        {
            return Err(ApiError::conflict(&rt.qualified(), &key.2));
        }
        prepare(rt, &mut object, &key.2)?;
        if rt.status_subresource {
            // Each endpoint writes only its part: /status the status, the main one the rest.
            if status_only {
                let status = object.get("status").cloned();
                object = current.clone();
                match status {
                    Some(s) => object["status"] = s,
                    None => drop(object.as_object_mut().map(|o| o.remove("status"))),
                }
            } else {
                match current.get("status") {
                    Some(s) => object["status"] = s.clone(),
                    None => drop(object.as_object_mut().map(|o| o.remove("status"))),
                }
            }
        }
        let adding_finalizers = meta(&current, "deletionTimestamp").is_some()
            && meta(&object, "finalizers")
                .and_then(Value::as_array)
                .is_some_and(|new| {
                    let old = meta(&current, "finalizers")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    new.iter().any(|f| !old.contains(f))
                });
        if adding_finalizers {
            return Err(ApiError::invalid(
                &rt.kind,
                &rt.group,
                &key.2,
                vec![(
                    "metadata.finalizers".into(),
                    "Forbidden: no new finalizers can be added if the object is being deleted"
                        .into(),
                )],
            ));
        }
        for kept in [
            "uid",
            "creationTimestamp",
            "name",
            "namespace",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match meta(&current, kept) {
                Some(v) => object["metadata"][kept] = v.clone(),
                None => drop(object["metadata"].as_object_mut().map(|m| m.remove(kept))),
            }
        }
        if rt.tracks_generation && spec_part(&object) != spec_part(&current) {
            let generation = meta(&current, "generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            object["metadata"]["generation"] = json!(generation + 1);
        }
        self.transfer_changed(key, &current, &object, manager, operation);
        Ok(self.commit(rt, key, object, Change::Modified))
    }

    /// On an update, the fields whose values changed now belong to `manager`.
    fn transfer_changed(
        &mut self,
        key: &Key,
        before: &Value,
        after: &Value,
        manager: &str,
        operation: &str,
    ) {
        let changed: Vec<fields::Path> = fields::leaves(after)
            .into_iter()
            .filter(|p| fields::get(before, p) != fields::get(after, p))
            .collect();
        let managers = self.managers.entry(key.clone()).or_default();
        for owned in managers.values_mut() {
            owned
                .fields
                .retain(|p| !changed.contains(p) && fields::get(after, p).is_some());
        }
        if !changed.is_empty() {
            let entry = managers.entry(manager.to_owned()).or_insert_with(|| Owned {
                operation: operation.into(),
                ..Owned::default()
            });
            entry.fields.extend(changed);
        }
    }

    /// Server-side apply of `applied` by `manager`.
    pub fn apply(
        &mut self,
        rt: &ResourceType,
        key: &Key,
        applied: Value,
        manager: &str,
        force: bool,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let mut applied = applied;
        fold_string_data(&mut applied);
        let Some(current) = self.objects.get(key).cloned() else {
            return self.create(rt, key, applied, Some((manager, "Apply")));
        };
        if let Some(sent) = meta(&applied, "resourceVersion")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            && Some(sent) != meta(&current, "resourceVersion").and_then(Value::as_str)
        {
            return Err(ApiError::conflict(&rt.qualified(), &key.2));
        }
        let wanted = fields::leaves(&applied);
        let mut managers = self.managers.get(key).cloned().unwrap_or_default();
        let mut conflicts = Vec::new();
        for (other, owned) in managers.iter_mut().filter(|(m, _)| m.as_str() != manager) {
            let clashing: Vec<_> = owned
                .fields
                .iter()
                .filter(|p| {
                    wanted.contains(*p) && fields::get(&current, p) != fields::get(&applied, p)
                })
                .cloned()
                .collect();
            if force {
                owned.fields.retain(|p| !clashing.contains(p));
            } else {
                conflicts.extend(clashing.iter().map(|p| (other.clone(), fields::dotted(p))));
            }
        }
        if !conflicts.is_empty() {
            return Err(ApiError::apply_conflict(
                &rt.qualified(),
                &key.2,
                &conflicts,
            ));
        }
        let mut object = current.clone();
        let previous = managers
            .get(manager)
            .map(|o| o.fields.clone())
            .unwrap_or_default();
        for dropped in previous.difference(&wanted) {
            let shared = managers
                .iter()
                .any(|(m, o)| m != manager && o.fields.contains(dropped));
            if !shared {
                fields::remove(&mut object, dropped);
            }
        }
        fields::merge(&mut object, &applied);
        managers.insert(
            manager.to_owned(),
            Owned {
                operation: "Apply".into(),
                fields: wanted,
            },
        );
        self.managers.insert(key.clone(), managers);
        object["metadata"]["resourceVersion"] = meta(&current, "resourceVersion")
            .cloned()
            .unwrap_or(Value::Null);
        // Ownership is settled above; update must not hand the fields to anyone else.
        self.update(rt, key, object, status_only, manager, "Apply")
    }
}

/// Checks and normalises a written object: its kind, Secret data, schema validation and
/// pruning.
fn prepare(rt: &ResourceType, object: &mut Value, name: &str) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request("the body must be an object"));
    }
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["apiVersion"] = Value::String(rt.api_version());
    object["kind"] = Value::String(rt.kind.clone());
    if rt.plural == "secrets" {
        fold_string_data(object);
    }
    if let Some(schema) = &rt.schema {
        let causes = validation::check_object(schema, object);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&rt.kind, &rt.group, name, causes));
        }
        let metadata = object["metadata"].take();
        validation::prune(schema, object);
        object["metadata"] = metadata;
    }
    Ok(())
}

impl ResourceType {
    /// A stand-in when only the qualified name is at hand (finalizer-driven deletion).
    fn placeholder(qualified: &str) -> Self {
        let (plural, group) = qualified.split_once('.').unwrap_or((qualified, ""));
        Self {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            kind: String::new(),
            namespaced: true,
            status_subresource: false,
            tracks_generation: false,
            schema: None,
        }
    }
}

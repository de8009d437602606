//! Which Connections read which Secrets through `inputFrom`, kept from the Connection watch.
//!
//! A change of a Secret that no connector or Tenant names concerns only the Connections that
//! read it as input. Finding them by scanning every cached Connection made the first list
//! after a start O(Secrets × Connections): with 10,000 unrelated Secrets and 10,000
//! Connections, the restart took twice as long. This index makes it a lookup.
//!
//! It may name a Connection that no longer reads a Secret (its `inputFrom` changed since the
//! last relist): that costs one reconcile that finds nothing to do. It never misses one that
//! does, because every Connection event adds what the object reads now.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;

use crate::api::Connection;

/// Connection names by the `namespace/secret` they read as input.
type Index = HashMap<Box<str>, Vec<Box<str>>>;

#[derive(Debug, Default)]
pub struct InputReaders(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    index: Index,
    /// The index a relist is building; it replaces `index` when the relist is complete, which
    /// drops what the watch missed being deleted.
    relisting: Option<Index>,
}

fn key(namespace: &str, secret: &str) -> Box<str> {
    format!("{namespace}/{secret}").into()
}

fn add(index: &mut Index, conn: &Connection) {
    let (Some(ns), name) = (conn.metadata.namespace.as_deref(), conn.name_any()) else {
        return;
    };
    for input in &conn.spec.input_from {
        let readers = index
            .entry(key(ns, &input.secret_key_ref.name))
            .or_default();
        if !readers.iter().any(|r| **r == *name) {
            readers.push(name.as_str().into());
        }
    }
}

fn remove(index: &mut Index, conn: &Connection) {
    let (Some(ns), name) = (conn.metadata.namespace.as_deref(), conn.name_any()) else {
        return;
    };
    for input in &conn.spec.input_from {
        let key = key(ns, &input.secret_key_ref.name);
        if let Some(readers) = index.get_mut(&key) {
            readers.retain(|r| **r != *name);
            if readers.is_empty() {
                index.remove(&key);
            }
        }
    }
}

impl InputReaders {
    /// Follows one event of the Connection watch.
    pub fn observe(&self, event: &Event<Connection>) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::Init => state.relisting = Some(Index::default()),
            Event::InitDone => {
                if let Some(index) = state.relisting.take() {
                    state.index = index;
                }
            }
            // Added to the index in use as well: while a relist runs, it answers.
            Event::Apply(conn) | Event::InitApply(conn) => {
                add(&mut state.index, conn);
                if let Some(relisting) = &mut state.relisting {
                    add(relisting, conn);
                }
            }
            Event::Delete(conn) => {
                remove(&mut state.index, conn);
                if let Some(relisting) = &mut state.relisting {
                    remove(relisting, conn);
                }
            }
        }
    }

    /// The Connections that read the Secret `namespace/secret` through `inputFrom`.
    pub fn of(&self, namespace: &str, secret: &str) -> Vec<ObjectRef<Connection>> {
        let state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .index
            .get(&key(namespace, secret))
            .into_iter()
            .flatten()
            .map(|name| ObjectRef::new(name).within(namespace))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(ns: &str, name: &str, inputs: &[&str]) -> Connection {
        let input_from: Vec<serde_json::Value> = inputs
            .iter()
            .map(
                |s| serde_json::json!({"field": "apiKey", "secretKeyRef": {"name": s, "key": "k"}}),
            )
            .collect();
        let spec = serde_json::json!({
            "tenantRef": {"name": "t"}, "connectorRef": {"name": "c"}, "inputFrom": input_from
        });
        let mut conn = Connection::new(name, serde_json::from_value(spec).expect("a spec"));
        conn.metadata.namespace = Some(ns.into());
        conn
    }

    fn names(refs: Vec<ObjectRef<Connection>>) -> Vec<String> {
        let mut names: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    #[test]
    fn a_secret_finds_the_connections_of_its_namespace_that_read_it() {
        let readers = InputReaders::default();
        readers.observe(&Event::Apply(conn("acme", "a", &["key", "other"])));
        readers.observe(&Event::Apply(conn("acme", "b", &["key"])));
        readers.observe(&Event::Apply(conn("globex", "c", &["key"])));
        // A repeated event adds no second entry.
        readers.observe(&Event::Apply(conn("acme", "b", &["key"])));
        assert_eq!(names(readers.of("acme", "key")), ["a", "b"]);
        assert_eq!(names(readers.of("acme", "other")), ["a"]);
        assert!(readers.of("acme", "unrelated").is_empty());
        readers.observe(&Event::Delete(conn("acme", "a", &["key", "other"])));
        assert_eq!(names(readers.of("acme", "key")), ["b"]);
        assert!(readers.of("acme", "other").is_empty());
    }

    #[test]
    fn a_relist_forgets_what_the_watch_missed_and_keeps_what_it_lists() {
        let readers = InputReaders::default();
        readers.observe(&Event::Apply(conn("acme", "gone", &["key"])));
        readers.observe(&Event::Apply(conn("acme", "kept", &["key"])));
        readers.observe(&Event::Init);
        readers.observe(&Event::InitApply(conn("acme", "kept", &["key"])));
        readers.observe(&Event::InitApply(conn("acme", "new", &["key"])));
        // Until the relist is complete, the old index answers, with what the relist found.
        assert_eq!(names(readers.of("acme", "key")), ["gone", "kept", "new"]);
        readers.observe(&Event::InitDone);
        assert_eq!(names(readers.of("acme", "key")), ["kept", "new"]);
    }
}

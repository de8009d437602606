//! The control-plane loops a cluster runs beside its API server, reduced to what the
//! objects served here need: the garbage collector (owner references, orphan and
//! foreground deletion), the namespace controller (a deleted Namespace empties itself, then
//! goes) and the CRD controllers (a CRD's types are served from the moment it is written; a
//! deleted CRD takes its objects with it). They run after each write, asynchronously, as in
//! a cluster: a test that deletes an owner must wait for the dependents to go.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use crate::delete::{FOREGROUND, ORPHAN, delete_as_controller};
use crate::fieldpath::Schema;
use crate::ownership::{ManagerId, Operation};
use crate::resource::{ResourceType, builtins};
use crate::store::{Key, Store};
use crate::strategy::{CRD_FINALIZER, NAMESPACE_FINALIZER, now};
use crate::write::{finalized, meta_str};

const MANAGER: &str = "kube-controller-manager";

/// One pass of every loop; true when it changed something (run another).
pub fn sweep(store: &mut Store) -> bool {
    let mut changed = namespaces(store);
    changed |= crds(store);
    changed |= orphans(store);
    changed |= garbage(store);
    changed |= foreground(store);
    changed
}

/// Serves the types of every stored CRD, and only those (plus the built-ins).
pub fn sync_crds(store: &mut Store) {
    let mut types = builtins();
    let crds: Vec<Value> = store
        .list("customresourcedefinitions.apiextensions.k8s.io", None)
        .map(|(_, s)| s.object.clone())
        .collect();
    for crd in crds {
        if let Ok(crd) = serde_json::from_value::<CustomResourceDefinition>(crd) {
            types.extend(ResourceType::from_crd(&crd));
        }
    }
    store.registry = crate::resource::Registry::new(types);
    store.recheck_all();
}

fn has_finalizer(object: &Value, name: &str) -> bool {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == name))
}

fn deleting(object: &Value) -> bool {
    object.pointer("/metadata/deletionTimestamp").is_some()
}

/// Writes a controller's change to an object: the update that removes the last finalizer
/// of a deleting object deletes it, as on the real registry.
fn write(store: &mut Store, key: &Key, object: Value) {
    let Some(rt) = store.registry.by_qualified(&key.resource) else {
        return;
    };
    let Some(current) = store.get(key).cloned() else {
        return;
    };
    if deleting(&object) && finalized(&rt, &object) {
        store.remove(key);
        return;
    }
    let mut managers = current.managers;
    let id = ManagerId::new(MANAGER, Operation::Update, None, &rt.api_version());
    managers.record_update(
        &id,
        &current.object,
        &object,
        Schema::root(rt.schema.as_deref()),
        &now(),
    );
    store.put(key, object, managers);
}

fn without_finalizer(mut object: Value, pointer: &str, name: &str) -> Value {
    if let Some(list) = object.pointer_mut(pointer).and_then(Value::as_array_mut) {
        list.retain(|f| f != name);
    }
    object
}

/// A deleted Namespace: its content is deleted, and once none is left its `kubernetes`
/// finalizer goes, and with it the Namespace.
fn namespaces(store: &mut Store) -> bool {
    let terminating: Vec<(Key, Value)> = store
        .list("namespaces", None)
        .filter(|(_, s)| deleting(&s.object))
        .map(|(k, s)| (k.clone(), s.object.clone()))
        .collect();
    let mut changed = false;
    for (key, ns) in terminating {
        let content: Vec<(Key, bool)> = store
            .all()
            .filter(|(k, _)| k.namespace == key.name && k.resource != "namespaces")
            .map(|(k, s)| (k.clone(), deleting(&s.object)))
            .collect();
        for (k, _) in content.iter().filter(|(_, d)| !d) {
            delete_as_controller(store, k, Some("Background"));
            changed = true;
        }
        let has = ns
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x == NAMESPACE_FINALIZER));
        if content.is_empty() && has {
            write(
                store,
                &key,
                without_finalizer(ns, "/spec/finalizers", NAMESPACE_FINALIZER),
            );
            changed = true;
        }
    }
    changed
}

/// A deleted CRD: its objects are deleted, then its cleanup finalizer goes, and with the
/// CRD its types.
fn crds(store: &mut Store) -> bool {
    let terminating: Vec<(Key, Value)> = store
        .list("customresourcedefinitions.apiextensions.k8s.io", None)
        .filter(|(_, s)| deleting(&s.object) && has_finalizer(&s.object, CRD_FINALIZER))
        .map(|(k, s)| (k.clone(), s.object.clone()))
        .collect();
    let mut changed = false;
    for (key, crd) in terminating {
        let content: Vec<(Key, bool)> = store
            .list(&key.name, None)
            .map(|(k, s)| (k.clone(), deleting(&s.object)))
            .collect();
        for (k, _) in content.iter().filter(|(_, d)| !d) {
            delete_as_controller(store, k, Some("Background"));
            changed = true;
        }
        if content.is_empty() {
            write(
                store,
                &key,
                without_finalizer(crd, "/metadata/finalizers", CRD_FINALIZER),
            );
            sync_crds(store);
            changed = true;
        }
    }
    changed
}

/// Where an owner reference points, if the kind is served.
struct Owner {
    key: Key,
    uid: String,
    blocking: bool,
}

fn owners_of(store: &Store, dependent: &Key, object: &Value) -> Option<Vec<Owner>> {
    let refs = object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?;
    refs.iter()
        .map(|r| {
            let s = |k: &str| {
                r.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let rt = store.registry.by_kind(&s("apiVersion"), &s("kind"))?;
            let namespace = if rt.namespaced {
                dependent.namespace.clone()
            } else {
                String::new()
            };
            Some(Owner {
                key: Key {
                    resource: rt.qualified(),
                    namespace,
                    name: s("name"),
                },
                uid: s("uid"),
                blocking: r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true),
            })
        })
        .collect()
}

/// The garbage collector's verdict on one owner: present (with that uid) and not waiting
/// for its dependents to go.
fn solid(store: &Store, owner: &Owner) -> bool {
    store.get(&owner.key).is_some_and(|s| {
        meta_str(&s.object, "uid") == owner.uid
            && !(deleting(&s.object) && has_finalizer(&s.object, FOREGROUND))
    })
}

/// What the garbage collector does to one dependent.
enum Verdict {
    /// Every owner is gone: delete it.
    Collect,
    /// Some owners are gone: keep only the references to these (uids).
    Keep(Vec<String>),
}

/// The collector's verdict on one owned object, if it has one.
fn verdict(store: &Store, key: &Key) -> Option<Verdict> {
    let object = &store.get(key)?.object;
    let refs = object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?;
    if refs.is_empty() {
        return None;
    }
    // An owner kind this server does not serve: leave it, as GC would.
    let owners = owners_of(store, key, object)?;
    let alive: Vec<bool> = owners.iter().map(|o| solid(store, o)).collect();
    if alive.iter().all(|a| *a) {
        None
    } else if alive.iter().all(|a| !a) {
        (!deleting(object)).then_some(Verdict::Collect)
    } else {
        let keep = owners
            .into_iter()
            .zip(&alive)
            .filter(|(_, a)| **a)
            .map(|(o, _)| o.uid)
            .collect();
        Some(Verdict::Keep(keep))
    }
}

/// Dependents whose owners are all gone are deleted; those with some owners left lose the
/// references to the gone (or foreground-deleting) ones.
fn garbage(store: &mut Store) -> bool {
    // Only the dependents that were written, or whose owners were, since the last look: a
    // sweep follows every write, and judging every owned object each time made a store of
    // thousands of them slow to write to.
    let unchecked = store.take_unchecked();
    let verdicts: Vec<(Key, Verdict)> = unchecked
        .iter()
        .filter_map(|key| verdict(store, key).map(|v| (key.clone(), v)))
        .collect();
    let changed = !verdicts.is_empty();
    for (key, verdict) in verdicts {
        match verdict {
            Verdict::Collect => delete_as_controller(store, &key, Some("Background")),
            Verdict::Keep(keep) => {
                let Some(mut next) = store.get(&key).map(|s| s.object.clone()) else {
                    continue;
                };
                if let Some(refs) = next
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| {
                        r.get("uid")
                            .and_then(Value::as_str)
                            .is_some_and(|u| keep.iter().any(|k| k == u))
                    });
                }
                write(store, &key, next);
            }
        }
    }
    changed
}

fn dependents_of(store: &Store, uid: &str) -> Vec<(Key, Value)> {
    store
        .dependents(uid)
        .map(|(k, s)| (k.clone(), s.object.clone()))
        .collect()
}

fn deleting_with(store: &Store, finalizer: &str) -> Vec<(Key, Value)> {
    store
        .deleting()
        .filter(|(_, s)| has_finalizer(&s.object, finalizer))
        .map(|(k, s)| (k.clone(), s.object.clone()))
        .collect()
}

/// Orphan deletion: dependents lose their reference to the owner, then the owner goes.
fn orphans(store: &mut Store) -> bool {
    let owners = deleting_with(store, ORPHAN);
    let changed = !owners.is_empty();
    for (key, owner) in owners {
        let uid = meta_str(&owner, "uid").to_owned();
        for (dep_key, mut dep) in dependents_of(store, &uid) {
            if let Some(refs) = dep
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
            }
            write(store, &dep_key, dep);
        }
        write(
            store,
            &key,
            without_finalizer(owner, "/metadata/finalizers", ORPHAN),
        );
    }
    changed
}

/// Foreground deletion: the owner stays until no dependent that blocks it is left (the
/// garbage collector deletes them meanwhile).
fn foreground(store: &mut Store) -> bool {
    let mut changed = false;
    for (key, owner) in deleting_with(store, FOREGROUND) {
        let uid = meta_str(&owner, "uid").to_owned();
        let blocking = dependents_of(store, &uid).into_iter().any(|(k, d)| {
            owners_of(store, &k, &d)
                .unwrap_or_default()
                .iter()
                .any(|o| o.uid == uid && o.blocking)
        });
        if !blocking {
            write(
                store,
                &key,
                without_finalizer(owner, "/metadata/finalizers", FOREGROUND),
            );
            changed = true;
        }
    }
    changed
}

/// A map from uid to key, for tests of the loops above.
#[cfg(test)]
fn uids(store: &Store) -> std::collections::HashMap<String, Key> {
    store
        .all()
        .map(|(k, s)| (meta_str(&s.object, "uid").to_owned(), k.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ownership::Managers;
    use crate::resource::Registry;

    fn put(store: &mut Store, resource: &str, ns: &str, name: &str, object: Value) -> Key {
        let key = Key {
            resource: resource.into(),
            namespace: ns.into(),
            name: name.into(),
        };
        store.put(&key, object, Managers::default());
        key
    }

    #[test]
    fn a_dependent_whose_owner_is_gone_is_collected() {
        let mut store = Store::new(100, Registry::new(builtins()));
        let owner =
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "o", "uid": "u1"}});
        let ref_ = json!([{"apiVersion": "v1", "kind": "Secret", "name": "o", "uid": "u1"}]);
        let dep = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "d", "uid": "u2", "ownerReferences": ref_}});
        let owner_key = put(&mut store, "secrets", "ns", "o", owner);
        put(&mut store, "secrets", "ns", "d", dep);
        assert!(!sweep(&mut store), "nothing to do while the owner is there");
        store.remove(&owner_key);
        while sweep(&mut store) {}
        assert!(uids(&store).is_empty());
    }

    #[test]
    fn only_dependents_touched_since_the_last_sweep_are_judged_and_none_is_missed() {
        let mut store = Store::new(100, Registry::new(builtins()));
        let ref_to =
            |uid: &str| json!([{"apiVersion": "v1", "kind": "Secret", "name": "o", "uid": uid}]);
        let owner =
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "o", "uid": "u1"}});
        put(&mut store, "secrets", "ns", "o", owner);
        let dep = |name: &str, uid: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "uid": format!("d-{name}"), "ownerReferences": ref_to(uid)}});
        put(&mut store, "secrets", "ns", "kept", dep("kept", "u1"));
        while sweep(&mut store) {}
        assert!(
            store.take_unchecked().is_empty(),
            "a sweep looks at each once"
        );
        // Written after its owner went (or never was): judged because it was written.
        put(&mut store, "secrets", "ns", "late", dep("late", "gone"));
        while sweep(&mut store) {}
        let left: Vec<String> = uids(&store)
            .into_keys()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(left, ["d-kept", "u1"]);
    }
}

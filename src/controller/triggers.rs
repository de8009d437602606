//! Which changes of a referenced object wake the Connections that use it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::ObjectMeta;
use kube::core::{PartialObjectMeta, PartialObjectMetaExt};
use kube::runtime::watcher;

/// What a watch passes on about one object.
#[derive(Debug)]
pub enum Change<K> {
    /// The object first seen, changed, or deleted (as it was last).
    Object(K),
    /// An object a relist no longer has: it was deleted while the watch was down. The watcher
    /// sends no deletion for it, and the list told nothing else of it than that it is
    /// missing, so only its namespace and name are known (from [`Seen`]'s key).
    Gone {
        namespace: Option<String>,
        name: String,
    },
}

impl<K: Resource> Change<K> {
    /// The object's metadata: all that the Connection controller's mappers read (its
    /// namespace and name), and all there is of a gone object.
    pub fn into_meta(self) -> PartialObjectMeta<K> {
        match self {
            Self::Object(mut obj) => std::mem::take(obj.meta_mut()).into_response_partial(),
            Self::Gone { namespace, name } => ObjectMeta {
                namespace,
                name: Some(name),
                ..ObjectMeta::default()
            }
            .into_response_partial(),
        }
    }

    /// The object, unless it is gone.
    pub fn into_object(self) -> Option<K> {
        match self {
            Self::Object(obj) => Some(obj),
            Self::Gone { .. } => None,
        }
    }
}

/// Passes on an object when its spec changed (a new `metadata.generation`), when it is first
/// seen, and when it is deleted, or found gone by a relist; drops changes of its status or
/// metadata alone.
///
/// A Connector's or Tenant's status is of no concern to its Connections, and a Tenant's
/// status changes with every one of its Connections' (it counts them): passing those on
/// would wake all of a Tenant's Connections each time one of them changed.
pub fn spec_changes<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
) -> impl Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    changes(events, |obj: &K| fingerprint(&obj.meta().generation))
        .map(|change| change.map(Change::into_meta))
}

/// Passes on an object when `what` of it changed, when it is first seen or comes back as
/// another object of the same name (a new uid), when it is deleted, and, once a relist is
/// complete, each object the relist no longer had ([`Change::Gone`]).
///
/// In place of kube-runtime's predicate filter, for three reasons. That filter sees objects,
/// not events, so it would drop a deletion whose object looks as before, which the
/// Connections using it must learn of. It cannot tell that a relist after a broken watch
/// (410 Gone, a desync) lacks an object, since the watcher sends no deletion for it: this
/// remembers what it passed on, and passes on what the relist dropped. And it keeps a name,
/// a namespace and a uid, three allocations, per object for as long as the process runs;
/// this keeps one short string: with 10,000 Connections, 0.6 MB instead of 2.1 MB
/// (heaptrack).
pub fn changes<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    what: impl Fn(&K) -> u64,
) -> impl Stream<Item = Result<Change<K>, watcher::Error>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let mut seen = Seen::default();
    events.flat_map(move |event| {
        let mut gone = Vec::new();
        let passed = match event {
            Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                // The uid too: an object deleted and created again while the watch was down
                // may come back with the same generation, and is new to its Connections.
                let now = fingerprint(&(what(&obj), &obj.meta().uid));
                seen.changed(key(&obj), now)
                    .then_some(Ok(Change::Object(obj)))
            }
            Ok(watcher::Event::Delete(obj)) => {
                seen.forget(&key(&obj));
                Some(Ok(Change::Object(obj)))
            }
            Ok(watcher::Event::Init) => {
                seen.relisting();
                None
            }
            Ok(watcher::Event::InitDone) => {
                gone = seen.relisted();
                None
            }
            Err(err) => Some(Err(err)),
        };
        let gone = gone.into_iter().map(Ok);
        futures::stream::iter(passed.into_iter().chain(gone))
    })
}

/// Passes every object on as the watch reports it, keeping nothing of it, and signals on
/// `relisted` each time a relist after a broken watch is done (not after the first list).
///
/// For the Secret watch: a namespace may hold many more Secrets than Connections, most of
/// them nothing to plugboard, and they must cost no memory. Without a record of them a relist
/// cannot say which Secret was deleted while the watch was down, so the signal asks for all
/// Connections to be checked again.
pub fn objects_and_relists<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    relisted: futures::channel::mpsc::UnboundedSender<()>,
) -> impl Stream<Item = Result<K, watcher::Error>> {
    let mut lists = 0_u32;
    events.filter_map(move |event| {
        let passed = match event {
            Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => Some(Ok(obj)),
            Ok(watcher::Event::Delete(obj)) => Some(Ok(obj)),
            Ok(watcher::Event::Init) => {
                lists = lists.saturating_add(1);
                None
            }
            Ok(watcher::Event::InitDone) => {
                if lists > 1 {
                    // Gone only with the controller, and then there is nobody to wake.
                    let _ = relisted.unbounded_send(());
                }
                None
            }
            Err(err) => Some(Err(err)),
        };
        futures::future::ready(passed)
    })
}

/// What was last passed on of each object, by `namespace/name`, and in which list.
#[derive(Default)]
struct Seen {
    last: HashMap<Box<str>, (u64, u32)>,
    /// Bumped at each relist: an object the new list no longer has was deleted while the
    /// watch was down, and its entry goes when the list is done.
    list: u32,
}

impl Seen {
    /// Records `what` of the object; true if it differs from before or is new.
    fn changed(&mut self, key: Box<str>, what: u64) -> bool {
        let list = self.list;
        self.last
            .insert(key, (what, list))
            .is_none_or(|(before, _)| before != what)
    }

    fn forget(&mut self, key: &str) {
        self.last.remove(key);
    }

    fn relisting(&mut self) {
        self.list = self.list.wrapping_add(1);
    }

    /// Forgets the objects the relist did not have, and returns them.
    fn relisted<K>(&mut self) -> Vec<Change<K>> {
        let list = self.list;
        self.last
            .extract_if(|_, (_, seen_in)| *seen_in != list)
            .map(|(key, _)| gone(&key))
            .collect()
    }
}

fn key<K: Resource>(obj: &K) -> Box<str> {
    let meta = obj.meta();
    let (ns, name) = (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    );
    format!("{ns}/{name}").into_boxed_str()
}

/// The object a [`key`] was made of, gone. Neither a namespace nor a name can hold a `/`
/// (both are DNS names), and a cluster-scoped object's key starts with one.
fn gone<K>(key: &str) -> Change<K> {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    Change::Gone {
        namespace: (!ns.is_empty()).then(|| ns.to_owned()),
        name: name.to_owned(),
    }
}

/// A fingerprint of what a filter compares.
pub fn fingerprint(value: &impl Hash) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ClusterConnector, Tenant, TenantSpec};
    use futures::executor::block_on;
    use k8s_openapi::api::core::v1::Secret;

    fn tenant(name: &str, generation: i64) -> Tenant {
        let mut t = Tenant::new(name, TenantSpec::default());
        t.metadata.namespace = Some("acme".into());
        t.metadata.generation = Some(generation);
        t
    }

    fn run<K: Resource<DynamicType = ()> + Clone>(
        events: Vec<watcher::Event<K>>,
        what: impl Fn(&K) -> u64,
    ) -> Vec<Change<K>> {
        let out: Vec<_> =
            block_on(changes(futures::stream::iter(events.into_iter().map(Ok)), what).collect());
        out.into_iter()
            .map(|r| r.expect("no watch errors"))
            .collect()
    }

    /// What was passed on, as `name@generation` for an object and `-namespace/name` for one
    /// found gone.
    fn seen<K: Resource<DynamicType = ()> + Clone>(
        events: Vec<watcher::Event<K>>,
        what: impl Fn(&K) -> u64,
    ) -> Vec<String> {
        run(events, what)
            .into_iter()
            .map(|change| match change {
                Change::Object(obj) => {
                    let meta = obj.meta();
                    let generation = meta.generation.unwrap_or_default();
                    format!("{}@{generation}", meta.name.as_deref().unwrap_or_default())
                }
                Change::Gone { namespace, name } => {
                    format!("-{}/{name}", namespace.unwrap_or_default())
                }
            })
            .collect()
    }

    fn generation<K: Resource>(obj: &K) -> u64 {
        fingerprint(&obj.meta().generation)
    }

    #[test]
    fn a_status_change_is_dropped_a_spec_change_and_a_deletion_pass() {
        let mut with_status = tenant("globex", 1);
        with_status.status = Some(Default::default());
        let events = vec![
            watcher::Event::Init,
            watcher::Event::InitApply(tenant("globex", 1)),
            watcher::Event::InitDone,
            watcher::Event::Apply(with_status),
            watcher::Event::Apply(tenant("globex", 2)),
            watcher::Event::Delete(tenant("globex", 2)),
            watcher::Event::Apply(tenant("globex", 1)),
        ];
        assert_eq!(
            seen(events, generation),
            ["globex@1", "globex@2", "globex@2", "globex@1"],
            "first sight, the spec change, the deletion, and a re-created object"
        );
    }

    #[test]
    fn an_object_a_relist_no_longer_has_is_passed_on_as_gone() {
        let events = vec![
            watcher::Event::Init,
            watcher::Event::InitApply(tenant("globex", 1)),
            watcher::Event::InitApply(tenant("initech", 1)),
            watcher::Event::InitDone,
            // The watch broke; globex was deleted meanwhile and is missing from the relist,
            // and the watcher sends no deletion for it.
            watcher::Event::Init,
            watcher::Event::InitApply(tenant("initech", 1)),
            watcher::Event::InitDone,
            watcher::Event::Apply(tenant("globex", 1)),
            watcher::Event::Apply(tenant("initech", 1)),
        ];
        assert_eq!(
            seen(events, generation),
            ["globex@1", "initech@1", "-acme/globex", "globex@1"],
            "both at first; the unchanged one not again; globex as gone once the relist is \
             done, and as a new object when it comes back"
        );
    }

    #[test]
    fn a_gone_object_passes_on_its_namespace_and_name_only() {
        let mut cluster_wide = ClusterConnector::new(
            "github",
            serde_json::from_value(
                serde_json::json!({"auth": {"type": "static", "credentials": {}}}),
            )
            .expect("a valid spec"),
        );
        cluster_wide.metadata.generation = Some(3);
        let events = vec![
            watcher::Event::Init,
            watcher::Event::InitApply(cluster_wide),
            watcher::Event::InitDone,
            watcher::Event::Init,
            watcher::Event::InitDone,
        ];
        let mut out = run(events, generation);
        let Some(Change::Gone { namespace, name }) = out.pop() else {
            panic!("the ClusterConnector is gone after the relist");
        };
        assert_eq!((namespace, name.as_str()), (None, "github"));
        let ns = vec![
            watcher::Event::Init,
            watcher::Event::InitApply(tenant("globex", 1)),
            watcher::Event::InitDone,
            watcher::Event::Init,
            watcher::Event::InitDone,
        ];
        let gone = spec_changes(futures::stream::iter(ns.into_iter().map(Ok)));
        let metas: Vec<_> = block_on(gone.collect::<Vec<_>>());
        let last = metas.last().expect("passed on").as_ref().expect("no error");
        assert_eq!(
            (
                last.metadata.namespace.as_deref(),
                last.metadata.name.as_deref()
            ),
            (Some("acme"), Some("globex"))
        );
    }

    #[test]
    fn an_object_deleted_and_created_again_while_the_watch_was_down_is_new() {
        let mut before = tenant("globex", 1);
        before.metadata.uid = Some("uid-1".into());
        let mut again = tenant("globex", 1);
        again.metadata.uid = Some("uid-2".into());
        let events = vec![
            watcher::Event::Init,
            watcher::Event::InitApply(before),
            watcher::Event::InitDone,
            watcher::Event::Init,
            watcher::Event::InitApply(again),
            watcher::Event::InitDone,
        ];
        assert_eq!(
            seen(events, generation),
            ["globex@1", "globex@1"],
            "the same generation, but another object"
        );
    }

    #[test]
    fn secrets_pass_as_they_come_and_only_a_relist_after_the_first_list_is_signalled() {
        let secret = |name: &str| {
            ObjectMeta {
                name: Some(name.into()),
                namespace: Some("acme".into()),
                ..ObjectMeta::default()
            }
            .into_response_partial::<Secret>()
        };
        let events = vec![
            watcher::Event::Init,
            watcher::Event::InitApply(secret("kept")),
            watcher::Event::InitApply(secret("deleted")),
            watcher::Event::InitDone,
            watcher::Event::Apply(secret("kept")),
            // The watch broke; "deleted" went meanwhile and the relist does not have it.
            watcher::Event::Init,
            watcher::Event::InitApply(secret("kept")),
            watcher::Event::InitDone,
        ];
        let (relisted, mut signals) = futures::channel::mpsc::unbounded();
        let passed: Vec<String> = block_on(
            objects_and_relists(futures::stream::iter(events.into_iter().map(Ok)), relisted)
                .map(|s| {
                    s.expect("no watch errors")
                        .metadata
                        .name
                        .unwrap_or_default()
                })
                .collect(),
        );
        assert_eq!(passed, ["kept", "deleted", "kept", "kept"]);
        assert_eq!(signals.try_recv().ok(), Some(()), "the relist");
        assert!(
            signals.try_recv().is_err(),
            "nothing more: the first list is no relist"
        );
    }
}

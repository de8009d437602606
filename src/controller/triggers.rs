//! Which changes of a referenced object wake the Connections that use it.

use std::collections::HashMap;

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

/// Passes on an object when its spec changed (a new `metadata.generation`), when it is first
/// seen, and when it is deleted; drops changes of its status or metadata alone.
///
/// A Connector's or Tenant's status is of no concern to its Connections, and a Tenant's
/// status changes with every one of its Connections' (it counts them): passing those on
/// would wake all of a Tenant's Connections each time one of them changed. kube-runtime's
/// generation predicate cannot be used here because it sees objects, not events, and so
/// would also drop a deletion, which Connections must learn of.
pub fn spec_changes<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
) -> impl Stream<Item = Result<K, watcher::Error>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let mut seen: HashMap<ObjectRef<K>, Option<i64>> = HashMap::new();
    events
        .map(move |event| -> Vec<Result<K, watcher::Error>> {
            match event {
                Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                    let generation = obj.meta().generation;
                    match seen.insert(ObjectRef::from_obj(&obj), generation) {
                        Some(before) if before == generation => Vec::new(),
                        _ => vec![Ok(obj)],
                    }
                }
                Ok(watcher::Event::Delete(obj)) => {
                    seen.remove(&ObjectRef::from_obj(&obj));
                    vec![Ok(obj)]
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) => Vec::new(),
                Err(err) => vec![Err(err)],
            }
        })
        .flat_map(futures::stream::iter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Tenant, TenantSpec};
    use futures::executor::block_on;

    fn tenant(generation: i64, suspended: bool) -> Tenant {
        let mut t = Tenant::new(
            "globex",
            TenantSpec {
                suspended: Some(suspended),
                ..TenantSpec::default()
            },
        );
        t.metadata.namespace = Some("acme".into());
        t.metadata.generation = Some(generation);
        t
    }

    fn passed(events: Vec<watcher::Event<Tenant>>) -> Vec<(Option<i64>, bool)> {
        let out: Vec<_> =
            block_on(spec_changes(futures::stream::iter(events.into_iter().map(Ok))).collect());
        out.into_iter()
            .map(|r| {
                let t = r.unwrap();
                (t.metadata.generation, t.spec.suspended == Some(true))
            })
            .collect()
    }

    #[test]
    fn a_status_change_is_dropped_a_spec_change_and_a_deletion_pass() {
        let mut with_status = tenant(1, false);
        with_status.status = Some(Default::default());
        let seen = passed(vec![
            watcher::Event::Init,
            watcher::Event::InitApply(tenant(1, false)),
            watcher::Event::InitDone,
            watcher::Event::Apply(with_status),
            watcher::Event::Apply(tenant(2, true)),
            watcher::Event::Delete(tenant(2, true)),
            watcher::Event::Apply(tenant(1, false)),
        ]);
        assert_eq!(
            seen,
            vec![
                (Some(1), false),
                (Some(2), true),
                (Some(2), true),
                (Some(1), false)
            ],
            "first sight, the spec change, the deletion, and a re-created object"
        );
    }
}

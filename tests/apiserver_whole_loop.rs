//! The whole loop — watch → reconcile → write → watch again — through kube-runtime's own
//! Controller and finalizer helper, observed by the test through a watch of its own. Runs
//! against the test API server, or unchanged against a real cluster with
//! PLUGBOARD_TEST_KUBECONFIG.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::{Controller, watcher};
use serde_json::json;

use plugboard::api::Connection;

const FINALIZER: &str = "tests.plugboard.dev/cleanup";

async fn reconcile(
    conn: Arc<Connection>,
    api: Arc<Api<Connection>>,
) -> Result<Action, kube::runtime::finalizer::Error<kube::Error>> {
    finalizer(&api, FINALIZER, conn, |event| async {
        if let Event::Apply(conn) = event {
            let status = json!({"status": {"conditions": [{
                "type": "Ready", "status": "True", "reason": "Seen", "message": "the test controller saw it",
                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": conn.metadata.generation,
            }]}});
            api.patch_status(&conn.name_any(), &PatchParams::default(), &Patch::Merge(status))
                .await?;
        }
        Ok(Action::await_change())
    })
    .await
}

fn ready(c: &Connection) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True" && c.reason == "Seen")
    })
}

/// Waits (a minute at most, so a failure is an assertion, not a hang) for the first watch
/// event that `pick` accepts.
async fn until<S, T>(
    events: &mut S,
    what: &str,
    mut pick: impl FnMut(watcher::Event<Connection>) -> Option<T>,
) -> T
where
    S: Stream<Item = Result<watcher::Event<Connection>, watcher::Error>> + Unpin,
{
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let event = events
                .try_next()
                .await
                .expect("the watch works")
                .expect("the watch goes on");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    });
    found
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test]
async fn a_controller_adds_a_finalizer_sets_a_condition_and_lets_go_on_delete() {
    let cluster = support::TestCluster::start().await;
    let api: Api<Connection> = Api::namespaced(cluster.client(), cluster.namespace());
    let controller = tokio::spawn(
        Controller::new(api.clone(), watcher::Config::default())
            .run(
                reconcile,
                |_, _, _| Action::requeue(Duration::from_millis(200)),
                Arc::new(api.clone()),
            )
            .for_each(|_| async {}),
    );
    // The test watches as a user would with `kubectl get -w`.
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();

    let conn: Connection = serde_json::from_value(json!({
        "apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": "watched"},
        "spec": {"tenantRef": {"name": "t"}, "connectorRef": {"name": "c"}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &conn).await.unwrap();

    let seen = until(
        &mut events,
        "the finalizer and the Ready condition",
        |e| match e {
            watcher::Event::Apply(c) | watcher::Event::InitApply(c)
                if ready(&c) && c.finalizers().iter().any(|f| f == FINALIZER) =>
            {
                Some(c)
            }
            _ => None,
        },
    )
    .await;
    let condition = &seen.status.as_ref().unwrap().conditions[0];
    assert_eq!(condition.observed_generation, seen.metadata.generation);

    api.delete("watched", &DeleteParams::default())
        .await
        .unwrap();
    let held = until(
        &mut events,
        "the deletion to be held by the finalizer",
        |e| match e {
            watcher::Event::Apply(c) if c.metadata.deletion_timestamp.is_some() => Some(c),
            _ => None,
        },
    )
    .await;
    assert!(held.finalizers().iter().any(|f| f == FINALIZER));
    until(
        &mut events,
        "the controller to remove its finalizer and the object to go",
        |e| match e {
            watcher::Event::Delete(c) if c.name_any() == "watched" => Some(()),
            _ => None,
        },
    )
    .await;
    assert!(api.get_opt("watched").await.unwrap().is_none());
    controller.abort();
    cluster.cleanup().await;
}

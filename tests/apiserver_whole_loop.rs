//! The whole loop — watch → reconcile → write → watch again — through kube-runtime's own
//! Controller and finalizer helper, observed by the test through a watch. Runs against the
//! test API server, or unchanged against a real cluster with PLUGBOARD_TEST_KUBECONFIG.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::{Controller, WatchStreamExt, watcher};
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
            api.patch_status(&conn.name_any(), &PatchParams::default(), &Patch::Merge(status)).await?;
        }
        Ok(Action::await_change())
    })
    .await
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
    let mut seen = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();

    let conn: Connection = serde_json::from_value(json!({
        "apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": "watched"},
        "spec": {"tenantRef": {"name": "t"}, "connectorRef": {"name": "c"}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &conn).await.unwrap();

    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(c) = seen.try_next().await.unwrap() {
            let ready = c.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if ready && c.finalizers().iter().any(|f| f == FINALIZER) {
                return c;
            }
        }
        panic!("the watch ended");
    })
    .await
    .expect("the controller set the finalizer and the condition");
    assert_eq!(ready.status.unwrap().conditions[0].reason, "Seen");

    api.delete("watched", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while api.get_opt("watched").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the controller removed its finalizer and the object went");
    controller.abort();
    cluster.cleanup().await;
}

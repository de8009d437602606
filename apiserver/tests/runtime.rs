//! kube-runtime and kube's discovery against plugboard-apiserver, unmodified: a Controller with the
//! finalizer helper and the events Recorder, and Discovery in both its forms.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalize, finalizer};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;

const FINALIZER: &str = "example.dev/cleanup";

struct Ctx {
    api: Api<Widget>,
    recorder: Recorder,
}

async fn reconcile(
    w: Arc<Widget>,
    ctx: Arc<Ctx>,
) -> Result<Action, kube::runtime::finalizer::Error<kube::Error>> {
    finalizer(&ctx.api, FINALIZER, w, |event| async {
        if let Finalize::Apply(w) = event {
            let reference = w.object_ref(&());
            let note = Event { type_: EventType::Normal, reason: "Seen".into(), note: Some("seen".into()), action: "Reconcile".into(), secondary: None };
            ctx.recorder.publish(&note, &reference).await?;
            let status = json!({"status": {"phase": "Seen", "conditions": [{"type": "Ready", "status": "True", "reason": "Seen",
                "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": w.metadata.generation}]}});
            ctx.api.patch_status(&w.name_any(), &PatchParams::default(), &Patch::Merge(status)).await?;
        }
        Ok(Action::await_change())
    })
    .await
}

#[tokio::test]
async fn a_controller_with_a_finalizer_and_events_runs_its_whole_loop() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        recorder: Recorder::new(client.clone(), Reporter::from("example-controller")),
    });
    let controller = tokio::spawn(
        Controller::new(api.clone(), watcher::Config::default())
            .run(
                reconcile,
                |_, _, _| Action::requeue(Duration::from_millis(100)),
                ctx,
            )
            .for_each(|_| async {}),
    );
    let mut seen = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    within("the controller to finish", async {
        loop {
            let w = seen.try_next().await.unwrap().unwrap();
            let phase = w.status.as_ref().and_then(|s| s.phase.clone());
            if phase.as_deref() == Some("Seen") && w.finalizers().iter().any(|f| f == FINALIZER) {
                break;
            }
        }
    })
    .await;
    let events: Api<K8sEvent> = Api::namespaced(client.clone(), "ns");
    let recorded = events.list(&ListParams::default()).await.unwrap().items;
    assert!(recorded.iter().any(|e| e.reason.as_deref() == Some("Seen")
        && e.reporting_controller.as_deref() == Some("example-controller")));
    api.delete("a", &DeleteParams::default()).await.unwrap();
    eventually("the controller to let go", || async {
        api.get_opt("a").await.unwrap().is_none()
    })
    .await;
    controller.abort();
}

#[tokio::test]
async fn discovery_finds_every_served_kind_both_ways() {
    let (_server, client) = setup().await;
    for discovery in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let (ar, caps) = discovery
            .resolve_gvk(&kube::core::GroupVersionKind::gvk(
                "example.dev",
                "v1",
                "Widget",
            ))
            .expect("Widget is discovered");
        assert_eq!(
            (ar.plural.as_str(), caps.scope.clone()),
            ("widgets", Scope::Namespaced)
        );
        assert!(
            caps.subresources
                .iter()
                .any(|(sub, _)| sub.plural == "widgets/status" || sub.plural == "status"),
            "{:?}",
            caps.subresources
        );
        let (_, gadget) = discovery
            .resolve_gvk(&kube::core::GroupVersionKind::gvk(
                "example.dev",
                "v1",
                "Gadget",
            ))
            .unwrap();
        assert_eq!(gadget.scope, Scope::Cluster);
        for core in ["Namespace", "Secret"] {
            assert!(
                discovery
                    .resolve_gvk(&kube::core::GroupVersionKind::gvk("", "v1", core))
                    .is_some(),
                "{core}"
            );
        }
        assert!(
            discovery
                .resolve_gvk(&kube::core::GroupVersionKind::gvk(
                    "coordination.k8s.io",
                    "v1",
                    "Lease"
                ))
                .is_some()
        );
    }
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );
}

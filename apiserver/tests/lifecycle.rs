//! Deletion: finalizers, owner-reference garbage collection (background, orphan,
//! foreground, cascading through finalizers), and CRDs written through the API.

mod common;

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};

fn owned_secret(name: &str, owner: &Widget, finalizer: Option<&str>) -> Secret {
    serde_json::from_value(json!({"metadata": {"name": name, "finalizers": finalizer.map(|f| vec![f]), "ownerReferences": [{
        "apiVersion": "example.dev/v1", "kind": "Widget", "name": owner.metadata.name, "uid": owner.metadata.uid,
        "controller": true, "blockOwnerDeletion": true,
    }]}}))
    .unwrap()
}

fn secrets(client: &kube::Client) -> Api<Secret> {
    Api::namespaced(client.clone(), "ns")
}

async fn gone<K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug>(
    api: &Api<K>,
    name: &str,
) {
    eventually(&format!("{name} to be deleted"), || async {
        api.get_opt(name).await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn finalizers_hold_an_object_until_the_last_one_goes() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    let mut w = widget("a", 1);
    w.metadata.finalizers = Some(vec!["example.dev/x".into(), "example.dev/y".into()]);
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    let mut events = api
        .watch(
            &WatchParams::default(),
            &created.metadata.resource_version.unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    let (code, _, body) = raw(
        &client,
        "DELETE",
        "/apis/example.dev/v1/namespaces/ns/widgets/a",
        "application/json",
        json!({}),
    )
    .await;
    assert_eq!(code, 200);
    assert!(body["metadata"]["deletionTimestamp"].is_string(), "{body}");
    assert_eq!(body["metadata"]["deletionGracePeriodSeconds"], 0);
    assert!(matches!(
        within("MODIFIED", events.try_next()).await.unwrap(),
        Some(WatchEvent::Modified(_))
    ));
    let err = status_of(api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": ["example.dev/x", "example.dev/y", "example.dev/z"]}}))).await.unwrap_err());
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        "Widget.example.dev \"a\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.dev/z\"}"
    );
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.dev/y"]}})),
    )
    .await
    .unwrap();
    assert!(
        api.get_opt("a").await.unwrap().is_some(),
        "one finalizer is left"
    );
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(status_of(api.get("a").await.unwrap_err()).code, 404);
    let mut kinds = Vec::new();
    while kinds.last() != Some(&"DELETED") {
        kinds.push(
            match within("the deletion", events.try_next())
                .await
                .unwrap()
                .unwrap()
            {
                WatchEvent::Modified(_) => "MODIFIED",
                WatchEvent::Deleted(_) => "DELETED",
                _ => "other",
            },
        );
    }
    assert_eq!(kinds, ["MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn deleting_an_owner_collects_its_dependents_in_the_background() {
    let (_server, client) = setup().await;
    let owner = widgets(&client)
        .create(&PostParams::default(), &widget("owner", 1))
        .await
        .unwrap();
    secrets(&client)
        .create(&PostParams::default(), &owned_secret("plain", &owner, None))
        .await
        .unwrap();
    secrets(&client)
        .create(
            &PostParams::default(),
            &owned_secret("held", &owner, Some("example.dev/hold")),
        )
        .await
        .unwrap();
    widgets(&client)
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    gone(&secrets(&client), "plain").await;
    eventually("the held dependent to be marked deleted", || async {
        secrets(&client)
            .get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    })
    .await;
    secrets(&client)
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    gone(&secrets(&client), "held").await;
}

#[tokio::test]
async fn collection_cascades_through_dependents_of_dependents() {
    let (_server, client) = setup().await;
    let owner = widgets(&client)
        .create(&PostParams::default(), &widget("owner", 1))
        .await
        .unwrap();
    let mut child = widget("child", 1);
    child.metadata.owner_references = Some(vec![owner_ref(&owner)]);
    let child = widgets(&client)
        .create(&PostParams::default(), &child)
        .await
        .unwrap();
    secrets(&client)
        .create(
            &PostParams::default(),
            &owned_secret("grandchild", &child, None),
        )
        .await
        .unwrap();
    widgets(&client)
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    gone(&widgets(&client), "child").await;
    gone(&secrets(&client), "grandchild").await;
}

fn owner_ref(w: &Widget) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    serde_json::from_value(json!({"apiVersion": "example.dev/v1", "kind": "Widget", "name": w.metadata.name, "uid": w.metadata.uid})).unwrap()
}

#[tokio::test]
async fn a_dependent_whose_owner_never_existed_is_collected_and_a_live_owner_keeps_it() {
    let (_server, client) = setup().await;
    let owner = widgets(&client)
        .create(&PostParams::default(), &widget("owner", 1))
        .await
        .unwrap();
    let mut stale = owner.clone();
    stale.metadata.uid = Some("00000000-0000-0000-0000-000000000000".into());
    secrets(&client)
        .create(
            &PostParams::default(),
            &owned_secret("dangling", &stale, None),
        )
        .await
        .unwrap();
    secrets(&client)
        .create(&PostParams::default(), &owned_secret("kept", &owner, None))
        .await
        .unwrap();
    gone(&secrets(&client), "dangling").await;
    assert!(secrets(&client).get_opt("kept").await.unwrap().is_some());
}

#[tokio::test]
async fn orphan_deletion_leaves_dependents_without_the_reference() {
    let (_server, client) = setup().await;
    let owner = widgets(&client)
        .create(&PostParams::default(), &widget("owner", 1))
        .await
        .unwrap();
    secrets(&client)
        .create(&PostParams::default(), &owned_secret("s", &owner, None))
        .await
        .unwrap();
    let deleting = widgets(&client)
        .delete("owner", &DeleteParams::orphan())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(
        deleting.metadata.finalizers,
        Some(vec!["orphan".to_owned()])
    );
    gone(&widgets(&client), "owner").await;
    let s = secrets(&client).get("s").await.unwrap();
    assert_eq!(s.metadata.owner_references, None);
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let (_server, client) = setup().await;
    let owner = widgets(&client)
        .create(&PostParams::default(), &widget("owner", 1))
        .await
        .unwrap();
    secrets(&client)
        .create(
            &PostParams::default(),
            &owned_secret("s", &owner, Some("example.dev/hold")),
        )
        .await
        .unwrap();
    let deleting = widgets(&client)
        .delete("owner", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(
        deleting.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_owned()])
    );
    eventually("the dependent to be marked deleted", || async {
        secrets(&client)
            .get("s")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    })
    .await;
    assert!(
        widgets(&client).get_opt("owner").await.unwrap().is_some(),
        "the owner waits"
    );
    secrets(&client)
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    gone(&widgets(&client), "owner").await;
}

#[tokio::test]
async fn a_crd_written_through_the_api_is_established_served_and_cleaned_up() {
    let server = ApiServer::start(Vec::new()).await;
    let client = server.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "gadgets.example.dev",
        &PatchParams::apply("installer"),
        &Patch::Apply(&gadget_crd()),
    )
    .await
    .unwrap();
    within(
        "Established",
        await_condition(
            crds.clone(),
            "gadgets.example.dev",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap();
    let crd = crds.get("gadgets.example.dev").await.unwrap();
    assert_eq!(
        crd.metadata.finalizers,
        Some(vec![
            "customresourcecleanup.apiextensions.k8s.io".to_owned()
        ])
    );
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.dev", "v1", "Gadget"));
    let gadgets: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let g: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.dev/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"count": 1}})).unwrap();
    gadgets.create(&PostParams::default(), &g).await.unwrap();
    crds.delete("gadgets.example.dev", &DeleteParams::default())
        .await
        .unwrap();
    gone(&crds, "gadgets.example.dev").await;
    let (code, _, _) = raw(
        &client,
        "GET",
        "/apis/example.dev/v1/gadgets",
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, 404, "the type is no longer served");
    assert!(
        crds.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

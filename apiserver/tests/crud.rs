//! Create, get, list, replace, delete, and what the server maintains, observed through an
//! unmodified `kube::Client`.

mod common;

use common::*;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;

#[tokio::test]
async fn create_fills_in_what_the_server_maintains_and_drops_status() {
    let (_server, client) = setup().await;
    let mut w = widget("a", 1);
    w.status = Some(WidgetStatus {
        phase: Some("Sneaky".into()),
        ..Default::default()
    });
    let created = widgets(&client)
        .create(&PostParams::default(), &w)
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(uuid_like(meta.uid.as_deref().unwrap()), "{:?}", meta.uid);
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    assert_eq!(meta.namespace.as_deref(), Some("ns"));
    assert!(rv(meta) > 1);
    assert_eq!(
        created.status, None,
        "status is written only through /status"
    );
    let got = widgets(&client).get("a").await.unwrap();
    assert_eq!(got.metadata.resource_version, meta.resource_version);
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
}

#[tokio::test]
async fn one_resource_version_counter_runs_across_kinds() {
    let (_server, client) = setup().await;
    let a = widgets(&client)
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    let s = Api::<Secret>::namespaced(client.clone(), "ns")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let ns = common::create_namespace(&client, "other").await;
    assert_eq!(rv(&s.metadata), rv(&a.metadata) + 1);
    assert_eq!(rv(&ns.metadata), rv(&s.metadata) + 1);
    let list = widgets(&client).list(&ListParams::default()).await.unwrap();
    assert_eq!(
        list.metadata.resource_version, ns.metadata.resource_version,
        "a list reports the current revision"
    );
}

#[tokio::test]
async fn generation_counts_spec_changes_only() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let labelled = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let status = api
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        status.metadata.generation,
        Some(1),
        "status changes keep the generation"
    );
    assert!(rv(&status.metadata) > rv(&labelled.metadata));
    let spec = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));

    let gadgets: Api<Gadget> = Api::all(client.clone());
    gadgets
        .create(
            &PostParams::default(),
            &Gadget::new("g", GadgetSpec { count: 1 }),
        )
        .await
        .unwrap();
    let g = gadgets
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"note": "n"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        g.metadata.generation,
        Some(2),
        "without a status subresource, status is just another field"
    );
    assert_eq!(g.status.unwrap().note.as_deref(), Some("n"));

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "ns");
    let s = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(s.metadata.generation, None, "Secrets have no generation");
}

#[tokio::test]
async fn not_found_and_already_exists_are_status_bodies_like_the_real_servers() {
    let (_server, client) = setup().await;
    let (code, _, body) = raw(
        &client,
        "GET",
        "/apis/example.dev/v1/namespaces/ns/widgets/missing",
        "application/json",
        json!(null),
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "widgets.example.dev \"missing\" not found", "reason": "NotFound",
            "details": {"name": "missing", "group": "example.dev", "kind": "widgets"}, "code": 404})
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "ns");
    let missing = status_of(secrets.get("s").await.unwrap_err());
    assert_eq!(missing.message, "secrets \"s\" not found");
    widgets(&client)
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let again = status_of(
        widgets(&client)
            .create(&PostParams::default(), &widget("a", 1))
            .await
            .unwrap_err(),
    );
    assert_eq!((again.code, again.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(again.message, "widgets.example.dev \"a\" already exists");
    let (code, _, body) = raw(
        &client,
        "GET",
        "/apis/example.dev/v1/sprockets",
        "application/json",
        json!(null),
    )
    .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (
            404,
            Some("the server could not find the requested resource")
        )
    );
}

#[tokio::test]
async fn replace_is_conditional_on_the_resource_version() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    let old = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 2}})),
    )
    .await
    .unwrap();
    let err = status_of(
        api.replace("a", &PostParams::default(), &old)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on widgets.example.dev \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let mut current = api.get("a").await.unwrap();
    current.spec.size = 3;
    let replaced = api
        .replace("a", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(
        (replaced.spec.size, replaced.metadata.generation),
        (3, Some(3))
    );
}

#[tokio::test]
async fn a_custom_resource_cannot_be_replaced_without_a_resource_version_but_a_secret_can() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let err = status_of(
        api.replace("a", &PostParams::default(), &widget("a", 2))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        "Widget.example.dev \"a\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "ns");
    let s: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}))
            .unwrap();
    secrets.create(&PostParams::default(), &s).await.unwrap();
    let unconditional: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "w"}}))
            .unwrap();
    let replaced = secrets
        .replace("s", &PostParams::default(), &unconditional)
        .await
        .unwrap();
    assert_eq!(replaced.data.unwrap()["k"].0, b"w");
}

#[tokio::test]
async fn an_update_that_changes_nothing_writes_nothing() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    let created = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let same = api
        .replace("a", &PostParams::default(), &created)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        created.metadata.resource_version
    );
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.resource_version,
        created.metadata.resource_version
    );
}

#[tokio::test]
async fn the_name_and_namespace_in_a_body_must_match_the_url() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    let current = api
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let mut renamed = current.clone();
    renamed.metadata.name = Some("b".into());
    let err = status_of(
        api.replace("a", &PostParams::default(), &renamed)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            400,
            "the name of the object (b) does not match the name on the URL (a)"
        )
    );
    let mut elsewhere = widget("c", 1);
    elsewhere.metadata.namespace = Some("other".into());
    let err = status_of(
        api.create(&PostParams::default(), &elsewhere)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            400,
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    );
}

#[tokio::test]
async fn secret_string_data_is_folded_into_data_and_never_stored() {
    let (_server, client) = setup().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "ns");
    let s: Secret = serde_json::from_value(
        json!({"metadata": {"name": "s"}, "data": {"a": "YQ=="}, "stringData": {"b": "bee"}}),
    )
    .unwrap();
    let created = secrets.create(&PostParams::default(), &s).await.unwrap();
    let data = created.data.clone().unwrap();
    assert_eq!(
        (data["a"].0.as_slice(), data["b"].0.as_slice()),
        (&b"a"[..], &b"bee"[..])
    );
    assert_eq!(created.string_data, None);
    assert_eq!(
        created.type_.as_deref(),
        Some("Opaque"),
        "the type defaults to Opaque"
    );
    let patched = secrets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"a": "new"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["a"].0, b"new");
    assert_eq!(secrets.get("s").await.unwrap().string_data, None);
}

#[tokio::test]
async fn generate_name_gets_a_random_suffix() {
    let (_server, client) = setup().await;
    let mut w = widget("", 1);
    w.metadata.name = None;
    w.metadata.generate_name = Some("gen-".into());
    let a = widgets(&client)
        .create(&PostParams::default(), &w)
        .await
        .unwrap();
    let b = widgets(&client)
        .create(&PostParams::default(), &w)
        .await
        .unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("gen-") && a.len() == 9, "{a}");
    assert_ne!(a, b);
    w.metadata.generate_name = None;
    let err = status_of(
        widgets(&client)
            .create(&PostParams::default(), &w)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Widget.example.dev \"\" is invalid: metadata.name: Required value: name or generateName is required"
    );
}

#[tokio::test]
async fn content_goes_only_into_a_namespace_that_exists_and_is_not_terminating() {
    let (_server, client) = setup().await;
    let elsewhere: Api<Widget> = Api::namespaced(client.clone(), "nope");
    let err = status_of(
        elsewhere
            .create(&PostParams::default(), &widget("a", 1))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"nope\" not found")
    );

    let mut held = widget("held", 1);
    held.metadata.finalizers = Some(vec!["example.dev/hold".into()]);
    widgets(&client)
        .create(&PostParams::default(), &held)
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let deleting = namespaces
        .delete("ns", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(
        deleting.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    let err = status_of(
        widgets(&client)
            .create(&PostParams::default(), &widget("b", 1))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        "widgets.example.dev \"b\" is forbidden: unable to create new content in namespace ns because it is being terminated"
    );
    eventually("the held widget to be marked deleted", || async {
        widgets(&client)
            .get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    })
    .await;
    assert!(
        namespaces.get_opt("ns").await.unwrap().is_some(),
        "the namespace waits for its content"
    );
    widgets(&client)
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    eventually("the namespace to go", || async {
        namespaces.get_opt("ns").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn a_new_namespace_is_active_and_labelled_with_its_name() {
    let (_server, client) = setup().await;
    let ns = Api::<Namespace>::all(client.clone())
        .get("ns")
        .await
        .unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    assert_eq!(
        ns.spec.unwrap().finalizers,
        Some(vec!["kubernetes".to_owned()])
    );
    assert_eq!(
        ns.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "ns"
    );
    let names: Vec<String> = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(
        names,
        [
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "ns"
        ]
    );
}

#[tokio::test]
async fn cluster_scoped_resources_live_outside_namespaces() {
    let (_server, client) = setup().await;
    let gadgets: Api<Gadget> = Api::all(client.clone());
    let g = gadgets
        .create(
            &PostParams::default(),
            &Gadget::new("g", GadgetSpec { count: 1 }),
        )
        .await
        .unwrap();
    assert_eq!(g.metadata.namespace, None);
    let (code, _, _) = raw(
        &client,
        "GET",
        "/apis/example.dev/v1/namespaces/ns/gadgets/g",
        "application/json",
        json!(null),
    )
    .await;
    assert_eq!(code, 404, "a cluster-scoped kind has no namespaced path");
    assert_eq!(
        gadgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn deleting_returns_the_custom_resource_but_a_status_for_a_secret() {
    let (_server, client) = setup().await;
    widgets(&client)
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let gone = widgets(&client)
        .delete("a", &DeleteParams::default())
        .await
        .unwrap();
    let object = gone
        .left()
        .expect("custom resources answer with the deleted object");
    assert_eq!(object.metadata.name.as_deref(), Some("a"));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "ns");
    let s = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap(),
        )
        .await
        .unwrap();
    let status = secrets
        .delete("s", &DeleteParams::default())
        .await
        .unwrap()
        .right()
        .expect("a Status");
    let details = status.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str(), details.uid),
        ("s", "secrets", s.metadata.uid.unwrap())
    );
    assert_eq!(
        status_of(
            secrets
                .delete("s", &DeleteParams::default())
                .await
                .unwrap_err()
        )
        .code,
        404
    );
}

#[tokio::test]
async fn delete_preconditions_are_checked() {
    let (_server, client) = setup().await;
    let created = widgets(&client)
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let stale = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let err = status_of(widgets(&client).delete("a", &stale).await.unwrap_err());
    assert_eq!(err.code, 409);
    assert_eq!(
        err.message,
        format!(
            "Operation cannot be fulfilled on widgets.example.dev \"a\": Precondition failed: UID in precondition: not-the-uid, UID in object meta: {}",
            created.metadata.uid.unwrap()
        )
    );
}

#[tokio::test]
async fn dry_run_validates_but_stores_nothing() {
    let (server, client) = setup().await;
    let before = server.resource_version();
    let created = widgets(&client)
        .create(
            &PostParams {
                dry_run: true,
                field_manager: None,
            },
            &widget("a", 1),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("a"));
    assert_eq!(server.resource_version(), before);
    assert!(widgets(&client).get_opt("a").await.unwrap().is_none());
}

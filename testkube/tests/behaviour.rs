//! Each behaviour testkube promises, observed through an unmodified `kube::Client`.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use testkube::TestApiServer;

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.dev"},
        "spec": {
            "group": "example.dev",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer"},
                        "color": {"type": "string", "enum": ["red", "blue"]},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    }},
                    "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                }}},
            }],
        },
    }))
    .unwrap()
}

fn widgets(server: &TestApiServer) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.dev", "v1", "Widget"));
    Api::namespaced_with(server.client(), "ns", &ar)
}

fn widget(name: &str, size: i64) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": size}})).unwrap()
}

fn status_of(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other}"),
    }
}

async fn start() -> (TestApiServer, Api<DynamicObject>, Api<Secret>) {
    let server = TestApiServer::start(vec![widget_crd()]).await;
    let (w, s) = (widgets(&server), Api::namespaced(server.client(), "ns"));
    (server, w, s)
}

#[tokio::test]
async fn create_get_replace_delete_with_server_maintained_fields() {
    let (_server, _, secrets) = start().await;
    let s: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}))
            .unwrap();
    let created = secrets.create(&PostParams::default(), &s).await.unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(
        created.data.unwrap()["k"].0,
        b"v",
        "stringData is folded into data"
    );
    assert!(created.string_data.is_none());
    let mut got = secrets.get("s").await.unwrap();
    got.metadata.labels = Some([("a".to_owned(), "b".to_owned())].into());
    let replaced = secrets
        .replace("s", &PostParams::default(), &got)
        .await
        .unwrap();
    assert!(replaced.metadata.resource_version > got.metadata.resource_version);
    assert_eq!(
        status_of(
            secrets
                .create(&PostParams::default(), &s)
                .await
                .unwrap_err()
        )
        .reason,
        "AlreadyExists"
    );
    secrets.delete("s", &DeleteParams::default()).await.unwrap();
    let missing = status_of(secrets.get("s").await.unwrap_err());
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "secrets \"s\" not found");
}

#[tokio::test]
async fn one_resource_version_counter_and_generation_only_for_spec() {
    let (_server, widgets, secrets) = start().await;
    let a = widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let s = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap(),
        )
        .await
        .unwrap();
    let rv = |v: &Option<String>| v.as_deref().unwrap().parse::<u64>().unwrap();
    assert_eq!(
        rv(&s.metadata.resource_version),
        rv(&a.metadata.resource_version) + 1,
        "one counter across kinds"
    );
    assert_eq!(a.metadata.generation, Some(1));
    let labelled = widgets
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
    let status = widgets
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
    let spec = widgets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));
}

#[tokio::test]
async fn a_stale_resource_version_is_a_conflict() {
    let (_server, widgets, _) = start().await;
    let old = widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    widgets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    let err = status_of(
        widgets
            .replace("a", &PostParams::default(), &old)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("the object has been modified"),
        "{}",
        err.message
    );
    let stale = json!({"metadata": {"resourceVersion": old.metadata.resource_version}, "spec": {"size": 3}});
    assert_eq!(
        status_of(
            widgets
                .patch("a", &PatchParams::default(), &Patch::Merge(stale))
                .await
                .unwrap_err()
        )
        .code,
        409
    );
}

#[tokio::test]
async fn the_status_subresource_and_the_main_resource_write_only_their_part() {
    let (_server, widgets, _) = start().await;
    widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    widgets
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 9}, "status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    let a = widgets.get("a").await.unwrap();
    assert_eq!(
        (
            a.data["spec"]["size"].clone(),
            a.data["status"]["phase"].clone()
        ),
        (json!(1), json!("Ready"))
    );
    widgets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}, "status": {"phase": "Lost"}})),
        )
        .await
        .unwrap();
    let a = widgets.get("a").await.unwrap();
    assert_eq!(
        (
            a.data["spec"]["size"].clone(),
            a.data["status"]["phase"].clone()
        ),
        (json!(5), json!("Ready"))
    );
}

#[tokio::test]
async fn selectors_and_pagination() {
    let (_server, widgets, _) = start().await;
    for (name, tier) in [("a", "x"), ("b", "y"), ("c", "x")] {
        let mut w = widget(name, 1);
        w.metadata.labels = Some([("tier".to_owned(), tier.to_owned())].into());
        widgets.create(&PostParams::default(), &w).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<DynamicObject>| {
        l.items
            .into_iter()
            .map(|o| o.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            widgets
                .list(&ListParams::default().labels("tier=x"))
                .await
                .unwrap()
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            widgets
                .list(&ListParams::default().labels("tier notin (x)"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            widgets
                .list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    let first = widgets.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.clone().expect("a continue token");
    assert_eq!(names(first), ["a", "b"]);
    assert_eq!(
        names(
            widgets
                .list(&ListParams::default().limit(2).continue_token(&token))
                .await
                .unwrap()
        ),
        ["c"]
    );
    let all: Api<DynamicObject> = Api::all_with(
        widgets.clone().into_client(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk("example.dev", "v1", "Widget")),
    );
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        3,
        "across namespaces"
    );
}

#[tokio::test]
async fn watches_deliver_changes_in_order_with_bookmarks() {
    let (_server, widgets, _) = start().await;
    let list = widgets.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut stream = widgets
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            }
            .timeout(5),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    widgets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    widgets.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(match event {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(e) => panic!("{e:?}"),
        });
    }
    assert_eq!(seen, ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]);
}

#[tokio::test]
async fn a_watch_from_beyond_the_history_is_gone() {
    let server = TestApiServer::start_with_history(vec![widget_crd()], 2).await;
    let widgets = widgets(&server);
    for i in 0..5 {
        widgets
            .create(&PostParams::default(), &widget(&format!("w{i}"), 1))
            .await
            .unwrap();
    }
    let mut stream = widgets
        .watch(&WatchParams::default(), "2")
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn json_patch_test_operations_and_merge_patches() {
    let (_server, widgets, _) = start().await;
    widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let failing: json_patch::Patch = serde_json::from_value(json!([{"op": "test", "path": "/spec/size", "value": 7}, {"op": "replace", "path": "/spec/size", "value": 8}])).unwrap();
    let err = status_of(
        widgets
            .patch("a", &PatchParams::default(), &Patch::Json::<()>(failing))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    let passing: json_patch::Patch = serde_json::from_value(json!([{"op": "test", "path": "/metadata/finalizers", "value": null}, {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]}])).unwrap();
    let a = widgets
        .patch("a", &PatchParams::default(), &Patch::Json::<()>(passing))
        .await
        .unwrap();
    assert_eq!(a.metadata.finalizers, Some(vec!["x/y".to_owned()]));
}

#[tokio::test]
async fn server_side_apply_creates_merges_removes_and_reports_conflicts() {
    let (_server, widgets, _) = start().await;
    let body = |v: Value| {
        Patch::Apply(
            json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "a"}, "spec": v}),
        )
    };
    let a = widgets
        .patch(
            "a",
            &PatchParams::apply("alice"),
            &body(json!({"size": 1, "color": "red"})),
        )
        .await
        .unwrap();
    assert_eq!(a.data["spec"]["color"], "red", "apply creates when absent");
    let managers: Vec<String> = a
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["alice"]);
    let err = status_of(
        widgets
            .patch(
                "a",
                &PatchParams::apply("bob"),
                &body(json!({"size": 1, "color": "blue"})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message
            .contains(r#"conflict with "alice": .spec.color"#),
        "{}",
        err.message
    );
    let forced = widgets
        .patch(
            "a",
            &PatchParams::apply("bob").force(),
            &body(json!({"size": 1, "color": "blue"})),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["color"], "blue");
    let dropped = widgets
        .patch("a", &PatchParams::apply("bob"), &body(json!({"size": 1})))
        .await
        .unwrap();
    assert_eq!(
        dropped.data["spec"]["color"],
        Value::Null,
        "a field the manager stops applying goes"
    );
    assert_eq!(
        dropped.data["spec"]["size"], 1,
        "a field another manager shares stays"
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_the_last_one_goes() {
    let (_server, widgets, _) = start().await;
    let mut w = widget("a", 1);
    w.metadata.finalizers = Some(vec!["x/y".into()]);
    widgets.create(&PostParams::default(), &w).await.unwrap();
    widgets.delete("a", &DeleteParams::default()).await.unwrap();
    let held = widgets.get("a").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    let more = widgets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["x/y", "x/z"]}})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        status_of(more).code,
        422,
        "no new finalizers while deleting"
    );
    widgets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert_eq!(status_of(widgets.get("a").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn deleting_an_owner_deletes_its_dependents() {
    let (_server, widgets, secrets) = start().await;
    let owner = widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let dependent: Secret = serde_json::from_value(json!({"metadata": {"name": "s", "ownerReferences": [{
        "apiVersion": "example.dev/v1", "kind": "Widget", "name": "a", "uid": owner.metadata.uid, "controller": true
    }]}})).unwrap();
    secrets
        .create(&PostParams::default(), &dependent)
        .await
        .unwrap();
    widgets.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(status_of(secrets.get("s").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn custom_resources_are_validated_and_pruned() {
    let (_server, widgets, _) = start().await;
    let bad: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "b"}, "spec": {"color": "green", "extra": {"free": 1}}})).unwrap();
    let err = status_of(
        widgets
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message.contains("spec.size: Required value"),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains("spec.color: Unsupported value: \"green\""),
        "{}",
        err.message
    );
    let typo: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "c"}, "spec": {"size": 1, "sise": 2, "extra": {"free": 1}}})).unwrap();
    let c = widgets.create(&PostParams::default(), &typo).await.unwrap();
    assert_eq!(
        c.data["spec"],
        json!({"size": 1, "extra": {"free": 1}}),
        "unknown fields pruned, preserved ones kept"
    );
    let wrong_type = json!({"spec": {"size": "big"}});
    let err = status_of(
        widgets
            .patch("c", &PatchParams::default(), &Patch::Merge(wrong_type))
            .await
            .unwrap_err(),
    );
    assert!(err.message.contains(r#"spec.size: Invalid value: "string": spec.size in body must be of type integer: "string""#), "{}", err.message);
}

#[tokio::test]
async fn requests_are_counted_by_verb_and_resource() {
    let (server, widgets, _) = start().await;
    widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    widgets.get("a").await.unwrap();
    widgets
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "x"}})),
        )
        .await
        .unwrap();
    let counts = server.requests();
    assert_eq!(counts.count("create", "widgets"), 1);
    assert_eq!(counts.count("get", "widgets"), 1);
    assert_eq!(counts.count("patch", "widgets/status"), 1);
    assert_eq!(counts.writes(), 2);
    let before = server.requests();
    widgets.get("a").await.unwrap();
    assert!(server.requests().writes_since(&before).is_empty());
    server.reset_requests();
    assert_eq!(server.requests().writes(), 0);
}

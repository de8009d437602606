//! Server-side apply: create if absent, merge, removal of what a manager stops applying,
//! conflicts between managers with the real server's message and causes, `force`, keyed
//! lists, and `metadata.managedFields` in the FieldsV1 notation.

mod common;

use common::*;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn config(spec: Value) -> Patch<Value> {
    Patch::Apply(
        json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "a"}, "spec": spec}),
    )
}

fn managers(w: &Widget) -> Vec<(String, String)> {
    w.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| (m.manager.clone().unwrap(), m.operation.clone().unwrap()))
        .collect()
}

#[tokio::test]
async fn apply_creates_then_merges_what_each_manager_sets() {
    let (_server, client) = setup().await;
    let (code, _, body) = raw(
        &client,
        "PATCH",
        "/apis/example.dev/v1/namespaces/ns/widgets/a?fieldManager=alice",
        "application/apply-patch+yaml",
        json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "a", "labels": {"team": "x"}}, "spec": {"size": 1}}),
    )
    .await;
    assert_eq!(code, 201, "apply created it");
    assert_eq!(
        body["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:team": {}}}, "f:spec": {"f:size": {}}})
    );
    assert_eq!(body["metadata"]["managedFields"][0]["operation"], "Apply");
    let api = widgets(&client);
    let w = api
        .patch(
            "a",
            &PatchParams::apply("bob"),
            &config(json!({"size": 1, "color": "red"})),
        )
        .await
        .unwrap();
    assert_eq!((w.spec.size, w.spec.color.as_deref()), (1, Some("red")));
    assert_eq!(
        w.metadata.labels.as_ref().unwrap()["team"],
        "x",
        "alice's label stays"
    );
    assert_eq!(
        managers(&w),
        [
            ("alice".to_owned(), "Apply".to_owned()),
            ("bob".to_owned(), "Apply".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_yaml_body_applies_too() {
    let (_server, client) = setup().await;
    let yaml = "apiVersion: example.dev/v1\nkind: Widget\nmetadata:\n  name: y\nspec:\n  size: 4\n";
    let request =
        http::Request::patch("/apis/example.dev/v1/namespaces/ns/widgets/y?fieldManager=kubectl")
            .header("content-type", "application/apply-patch+yaml")
            .body(kube::client::Body::from(yaml.as_bytes().to_vec()))
            .unwrap();
    assert_eq!(client.send(request).await.unwrap().status(), 201);
    assert_eq!(widgets(&client).get("y").await.unwrap().spec.size, 4);
}

#[tokio::test]
async fn a_conflict_names_the_other_manager_and_the_field() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    api.patch(
        "a",
        &PatchParams::apply("alice"),
        &config(json!({"size": 1, "color": "red"})),
    )
    .await
    .unwrap();
    let err = status_of(
        api.patch(
            "a",
            &PatchParams::apply("bob"),
            &config(json!({"size": 1, "color": "blue"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.color"
    );
    let cause = &err.details.unwrap().causes[0];
    assert_eq!(
        (
            cause.reason.as_str(),
            cause.message.as_str(),
            cause.field.as_str()
        ),
        (
            "FieldManagerConflict",
            "conflict with \"alice\"",
            ".spec.color"
        )
    );
    let same = api
        .patch("a", &PatchParams::apply("bob"), &config(json!({"size": 1})))
        .await;
    assert!(same.is_ok(), "the same value is shared, not a conflict");
}

#[tokio::test]
async fn a_conflict_with_an_update_names_its_api_version_and_several_are_listed() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    let mut w = widget("a", 1);
    w.spec.color = Some("red".into());
    api.create(
        &PostParams {
            field_manager: Some("editor".into()),
            ..PostParams::default()
        },
        &w,
    )
    .await
    .unwrap();
    let err = status_of(
        api.patch(
            "a",
            &PatchParams::apply("ci"),
            &config(json!({"size": 2, "color": "blue"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Apply failed with 2 conflicts: conflicts with \"editor\" using example.dev/v1:\n- .spec.color\n- .spec.size"
    );
}

#[tokio::test]
async fn force_takes_ownership_and_an_omitted_field_goes_unless_shared() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    api.patch(
        "a",
        &PatchParams::apply("alice"),
        &config(json!({"size": 1, "color": "red", "mode": "m"})),
    )
    .await
    .unwrap();
    let forced = api
        .patch(
            "a",
            &PatchParams::apply("bob").force(),
            &config(json!({"size": 1, "color": "blue"})),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.color.as_deref(), Some("blue"));
    let alice = forced
        .metadata
        .managed_fields
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.manager.as_deref() == Some("alice"))
        .unwrap();
    assert_eq!(
        alice.fields_v1.as_ref().unwrap().0,
        json!({"f:spec": {"f:mode": {}, "f:size": {}}}),
        "alice lost the color"
    );
    let dropped = api
        .patch("a", &PatchParams::apply("bob"), &config(json!({"size": 1})))
        .await
        .unwrap();
    assert_eq!(
        dropped.spec.color, None,
        "a field its only manager stops applying goes"
    );
    let kept = api
        .patch("a", &PatchParams::apply("bob"), &config(json!({})))
        .await
        .unwrap();
    assert_eq!(kept.spec.size, 1, "alice still applies the size");
}

#[tokio::test]
async fn conditions_keyed_by_type_are_merged_item_by_item() {
    let (_server, client) = setup().await;
    widgets(&client)
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"});
    let status = |kind: &str| {
        Patch::Apply(
            json!({"apiVersion": "example.dev/v1", "kind": "Widget", "status": {"conditions": [condition(kind)]}}),
        )
    };
    widgets(&client)
        .patch_status("a", &PatchParams::apply("one"), &status("Ready"))
        .await
        .unwrap();
    let w = widgets(&client)
        .patch_status("a", &PatchParams::apply("two"), &status("Tested"))
        .await
        .unwrap();
    let types: Vec<String> = w
        .status
        .unwrap()
        .conditions
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(types, ["Ready", "Tested"]);
    let one = w
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("one"))
        .unwrap();
    assert_eq!(one.subresource.as_deref(), Some("status"));
    let owned = &one.fields_v1.unwrap().0["f:status"]["f:conditions"];
    assert_eq!(owned["k:{\"type\":\"Ready\"}"]["."], json!({}));
    assert_eq!(owned["k:{\"type\":\"Ready\"}"]["f:status"], json!({}));
}

#[tokio::test]
async fn apply_needs_a_field_manager() {
    let (_server, client) = setup().await;
    let (code, _, body) = raw(
        &client,
        "PATCH",
        "/apis/example.dev/v1/namespaces/ns/widgets/a",
        "application/apply-patch+yaml",
        json!({"spec": {"size": 1}}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
}

#[tokio::test]
async fn updates_move_ownership_to_the_updater() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    api.patch(
        "a",
        &PatchParams::apply("alice"),
        &config(json!({"size": 1, "color": "red"})),
    )
    .await
    .unwrap();
    let w = api
        .patch(
            "a",
            &PatchParams {
                field_manager: Some("hand".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"spec": {"color": "blue"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        managers(&w),
        [
            ("alice".to_owned(), "Apply".to_owned()),
            ("hand".to_owned(), "Update".to_owned())
        ]
    );
    let err = status_of(
        api.patch(
            "a",
            &PatchParams::apply("alice"),
            &config(json!({"size": 1, "color": "red"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"hand\" using example.dev/v1: .spec.color"
    );
}

#[tokio::test]
async fn a_sub_object_whose_last_applied_field_goes_is_removed_with_it() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    api.patch(
        "a",
        &PatchParams::apply("alice"),
        &config(json!({"size": 1, "partOf": {"name": "x"}})),
    )
    .await
    .unwrap();
    let w = api
        .patch(
            "a",
            &PatchParams::apply("alice"),
            &config(json!({"size": 1})),
        )
        .await
        .unwrap();
    assert_eq!(w.spec.part_of, None, "not left behind as an empty object");
    let raw = api.get("a").await.unwrap();
    assert_eq!(
        serde_json::to_value(&raw.spec).unwrap(),
        json!({"size": 1, "mode": "auto"})
    );
}

//! JSON merge patch, JSON patch (with `test`, as kube-runtime's finalizer helper sends it)
//! and strategic merge patch, with the real server's answers when they fail.

mod common;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn ops(v: serde_json::Value) -> Patch<()> {
    Patch::Json(serde_json::from_value(v).unwrap())
}

#[tokio::test]
async fn a_merge_patch_merges_objects_and_null_removes() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    let mut w = widget("a", 1);
    w.spec.color = Some("red".into());
    w.spec.extra = Some(json!({"keep": 1, "drop": 2}));
    api.create(&PostParams::default(), &w).await.unwrap();
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": null, "extra": {"drop": null, "add": 3}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.color, None);
    assert_eq!(patched.spec.extra, Some(json!({"keep": 1, "add": 3})));
    assert_eq!(patched.spec.size, 1);
}

#[tokio::test]
async fn a_json_patch_test_guards_the_finalizer_edits_kube_runtime_makes() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let add_first = ops(
        json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.dev/a"]}]),
    );
    let w = api
        .patch("a", &PatchParams::default(), &add_first)
        .await
        .unwrap();
    assert_eq!(
        w.metadata.finalizers,
        Some(vec!["example.dev/a".to_owned()])
    );
    let err = status_of(
        api.patch("a", &PatchParams::default(), &add_first)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.reason.as_str()),
        (422, "Invalid"),
        "the list is no longer null"
    );
    assert_eq!(
        err.message,
        "the server rejected our request due to an error in our request"
    );
    let cause = &err.details.unwrap().causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.message.as_str()),
        (
            "UnexpectedServerResponse",
            "testing value /metadata/finalizers failed: test failed"
        )
    );
    let add_more = ops(
        json!([{"op": "test", "path": "/metadata/finalizers", "value": ["example.dev/a"]},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "example.dev/b"}]),
    );
    api.patch("a", &PatchParams::default(), &add_more)
        .await
        .unwrap();
    let remove_wrong = ops(
        json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "example.dev/b"},
        {"op": "remove", "path": "/metadata/finalizers/0"}]),
    );
    assert_eq!(
        status_of(
            api.patch("a", &PatchParams::default(), &remove_wrong)
                .await
                .unwrap_err()
        )
        .code,
        422
    );
    let remove = ops(
        json!([{"op": "test", "path": "/metadata/finalizers/1", "value": "example.dev/b"},
        {"op": "remove", "path": "/metadata/finalizers/1"}]),
    );
    let w = api
        .patch("a", &PatchParams::default(), &remove)
        .await
        .unwrap();
    assert_eq!(
        w.metadata.finalizers,
        Some(vec!["example.dev/a".to_owned()])
    );
}

#[tokio::test]
async fn strategic_merge_works_for_built_in_kinds_and_is_refused_for_custom_resources() {
    let (_server, client) = setup().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "ns");
    let s: Secret = serde_json::from_value(
        json!({"metadata": {"name": "s", "finalizers": ["example.dev/a"]}, "data": {"a": "YQ=="}}),
    )
    .unwrap();
    secrets.create(&PostParams::default(), &s).await.unwrap();
    let patched = secrets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"metadata": {"finalizers": ["example.dev/b"]}, "stringData": {"b": "b"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.metadata.finalizers,
        Some(vec!["example.dev/a".to_owned(), "example.dev/b".to_owned()]),
        "finalizers merge"
    );
    assert_eq!(patched.data.unwrap().len(), 2);
    widgets(&client)
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let err = status_of(
        widgets(&client)
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"size": 2}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.reason.as_str()),
        (415, "UnsupportedMediaType")
    );
    assert_eq!(
        err.message,
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    );
}

#[tokio::test]
async fn a_patch_that_names_a_stale_resource_version_conflicts() {
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
    let stale = json!({"metadata": {"resourceVersion": old.metadata.resource_version}, "spec": {"size": 3}});
    let err = status_of(
        api.patch("a", &PatchParams::default(), &Patch::Merge(stale))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    let missing = status_of(
        api.patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(missing.code, 404);
}

#[tokio::test]
async fn force_is_only_for_apply() {
    let (_server, client) = setup().await;
    widgets(&client)
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let (code, _, body) = raw(
        &client,
        "PATCH",
        "/apis/example.dev/v1/namespaces/ns/widgets/a?force=true",
        "application/merge-patch+json",
        json!({}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
}

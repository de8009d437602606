//! Validation as a cluster does it: the CRD schema (422 with the field path and the real
//! wording), pruning, defaults, CEL rules, ObjectMeta, Secrets and Events.

mod common;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn dynamic(client: &kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.dev", "v1", "Widget"));
    Api::namespaced_with(client.clone(), "ns", &ar)
}

async fn create_raw(client: &kube::Client, body: Value) -> kube::core::Status {
    let object: DynamicObject = serde_json::from_value(body).unwrap();
    status_of(
        dynamic(client)
            .create(&PostParams::default(), &object)
            .await
            .unwrap_err(),
    )
}

#[tokio::test]
async fn a_missing_required_field_is_422_with_its_path() {
    let (_server, client) = setup().await;
    let err = create_raw(&client, json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "b"}, "spec": {}})).await;
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        "Widget.example.dev \"b\" is invalid: spec.size: Required value"
    );
    let details = err.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("b", "example.dev", "Widget")
    );
    let cause = &details.causes[0];
    assert_eq!(
        (
            cause.reason.as_str(),
            cause.message.as_str(),
            cause.field.as_str()
        ),
        ("FieldValueRequired", "Required value", "spec.size")
    );
}

#[tokio::test]
async fn wrong_types_enums_patterns_lengths_and_formats_are_reported_together() {
    let (_server, client) = setup().await;
    let err = create_raw(
        &client,
        json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "b"},
            "spec": {"size": "big", "color": "green", "partOf": {"name": "Way-Too-Long-Name"}, "since": "yesterday"}}),
    )
    .await;
    assert_eq!(
        err.message,
        "Widget.example.dev \"b\" is invalid: [spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\", \
spec.partOf.name: Too long: may not be more than 10 bytes, \
spec.partOf.name: Invalid value: \"Way-Too-Long-Name\": spec.partOf.name in body should match '^[a-z]+$', \
spec.since: Invalid value: \"yesterday\": spec.since in body must be of type date-time: \"yesterday\", \
spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"]"
    );
    let reasons: Vec<String> = err
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            "FieldValueNotSupported",
            "FieldValueTooLong",
            "FieldValueInvalid",
            "FieldValueTypeInvalid",
            "FieldValueTypeInvalid"
        ]
    );
}

#[tokio::test]
async fn unknown_fields_are_pruned_with_a_warning_or_refused_when_strict() {
    let (_server, client) = setup().await;
    let body = json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "c"},
        "spec": {"size": 1, "sise": 2, "extra": {"free": {"form": true}}}});
    let (code, headers, created) = raw(
        &client,
        "POST",
        "/apis/example.dev/v1/namespaces/ns/widgets",
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        created["spec"],
        json!({"size": 1, "mode": "auto", "extra": {"free": {"form": true}}}),
        "pruned, defaulted, preserved"
    );
    assert_eq!(
        headers["warning"],
        "299 - \"unknown field \\\"spec.sise\\\"\""
    );
    let mut strict = body;
    strict["metadata"]["name"] = json!("d");
    let (code, _, err) = raw(
        &client,
        "POST",
        "/apis/example.dev/v1/namespaces/ns/widgets?fieldValidation=Strict",
        "application/json",
        strict,
    )
    .await;
    assert_eq!(
        (code, err["message"].as_str()),
        (
            400,
            Some("strict decoding error: unknown field \"spec.sise\"")
        )
    );
}

#[tokio::test]
async fn a_null_is_kept_where_nullable_and_dropped_where_not() {
    let (_server, client) = setup().await;
    let object: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "n"},
        "spec": {"size": 1, "color": null}}),
    )
    .unwrap();
    let created = dynamic(&client)
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    assert_eq!(
        created.data["spec"],
        json!({"size": 1, "color": null, "mode": "auto"}),
        "color is nullable; mode defaulted"
    );
    let err = create_raw(&client, json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "m"}, "spec": {"size": null}})).await;
    assert_eq!(
        err.message, "Widget.example.dev \"m\" is invalid: spec.size: Required value",
        "a null size is dropped, then missed"
    );
}

#[tokio::test]
async fn cel_rules_are_enforced_and_ratcheted() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    let mut w = widget("a", 1);
    w.spec.part_of = Some(PartRef {
        name: "first".into(),
    });
    api.create(&PostParams::default(), &w).await.unwrap();
    let err = status_of(
        api.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partOf": {"name": "second"}}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Widget.example.dev \"a\" is invalid: spec.partOf: Invalid value: \"object\": partOf is immutable"
    );
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 2}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn object_metadata_is_validated_like_a_clusters() {
    let (_server, client) = setup().await;
    let mut w = widget("Bad_Name", 1);
    let err = status_of(
        widgets(&client)
            .create(&PostParams::default(), &w)
            .await
            .unwrap_err(),
    );
    assert!(err.message.starts_with("Widget.example.dev \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", err.message);
    w.metadata.name = Some("ok".into());
    let long = "x".repeat(64);
    w.metadata.labels = Some([("plugboard.dev/connection".to_owned(), long.clone())].into());
    let err = status_of(
        widgets(&client)
            .create(&PostParams::default(), &w)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        format!(
            "Widget.example.dev \"ok\" is invalid: metadata.labels: Invalid value: \"{long}\": must be no more than 63 characters"
        )
    );
}

#[tokio::test]
async fn secrets_and_events_follow_their_own_rules() {
    let (_server, client) = setup().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "ns");
    let bad: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"bad key": "v"}}))
            .unwrap();
    let err = status_of(
        secrets
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert!(
        err.message.starts_with(
            "Secret \"s\" is invalid: data[bad key]: Invalid value: \"bad key\": a valid config key"
        ),
        "{}",
        err.message
    );
    let tls: Secret = serde_json::from_value(json!({"metadata": {"name": "t"}, "type": "kubernetes.io/tls", "stringData": {"tls.crt": "c"}})).unwrap();
    let err = status_of(
        secrets
            .create(&PostParams::default(), &tls)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Secret \"t\" is invalid: data[tls.key]: Required value"
    );

    let events: Api<Event> = Api::namespaced(client.clone(), "ns");
    let event = json!({"metadata": {"name": "e"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "example.dev/c",
        "reportingInstance": "c-1", "action": "Reconcile", "reason": "Done", "type": "Normal", "note": "x".repeat(1025),
        "regarding": {"kind": "Widget", "namespace": "ns", "name": "a"}});
    let err = status_of(
        events
            .create(
                &PostParams::default(),
                &serde_json::from_value(event.clone()).unwrap(),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Event.events.k8s.io \"e\" is invalid: message: Invalid value: \"\": can have at most 1024 characters"
    );
    let mut fine = event;
    fine["note"] = json!("ok");
    events
        .create(
            &PostParams::default(),
            &serde_json::from_value(fine).unwrap(),
        )
        .await
        .unwrap();
    let err = status_of(
        events
            .patch(
                "e",
                &PatchParams::default(),
                &Patch::Merge(json!({"note": "changed"})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err.message,
        "Event.events.k8s.io \"e\" is invalid: message: Invalid value: \"changed\": field is immutable"
    );
}

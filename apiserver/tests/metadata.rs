//! Metadata-only reads (`PartialObjectMetadata`): what a controller that follows Secrets
//! without receiving their data gets from GET, LIST and WATCH.

mod common;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

const AS_METADATA: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const AS_METADATA_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

async fn secret(api: &Api<Secret>, name: &str) {
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "billing"}},
        "stringData": {"password": "hunter2"},
    }))
    .unwrap();
    api.create(&PostParams::default(), &s).await.unwrap();
}

/// A GET with an `Accept` header, as `raw` cannot send one.
async fn get_as(client: &kube::Client, path: &str, accept: &str) -> (u16, Value) {
    let request = http::Request::builder()
        .uri(path)
        .header("accept", accept)
        .body(kube::client::Body::empty())
        .unwrap();
    let response = client.send(request).await.unwrap();
    let code = response.status().as_u16();
    let bytes = response.into_body().collect_bytes().await.unwrap();
    (code, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn metadata_reads_carry_the_metadata_and_no_data() {
    let (_server, client) = setup().await;
    let api: Api<Secret> = Api::namespaced(client.clone(), "ns");
    secret(&api, "a").await;
    secret(&api, "b").await;

    let (code, one) = get_as(&client, "/api/v1/namespaces/ns/secrets/a", AS_METADATA).await;
    assert_eq!(code, 200);
    assert_eq!(one["kind"], "PartialObjectMetadata");
    assert_eq!(one["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(one["metadata"]["labels"]["app"], "billing");
    assert!(one.get("data").is_none(), "{one}");

    let (code, list) = get_as(&client, "/api/v1/namespaces/ns/secrets", AS_METADATA_LIST).await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item["kind"], "PartialObjectMetadata");
        assert!(item.get("data").is_none(), "{item}");
    }

    // kube's typed calls, with pagination.
    let page = api
        .list_metadata(&ListParams::default().limit(1))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let token = page.metadata.continue_.clone().expect("a second page");
    let rest = api
        .list_metadata(&ListParams::default().limit(1).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(rest.items[0].metadata.name.as_deref(), Some("b"));
    let meta = api.get_metadata("a").await.unwrap();
    assert_eq!(meta.metadata.name.as_deref(), Some("a"));

    // Asked for plain JSON, the whole object.
    let (code, whole) = get_as(
        &client,
        "/api/v1/namespaces/ns/secrets/a",
        "application/json",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(whole["kind"], "Secret");
    assert!(whole["data"]["password"].is_string());
}

#[tokio::test]
async fn a_metadata_watcher_follows_changes_without_data() {
    let (_server, client) = setup().await;
    let api: Api<Secret> = Api::namespaced(client.clone(), "ns");
    secret(&api, "a").await;
    // kube asks for metadata only when the Api is of PartialObjectMeta.
    let metadata: Api<PartialObjectMeta<Secret>> = Api::namespaced(client.clone(), "ns");
    let mut changes = watcher(metadata, watcher::Config::default())
        .touched_objects()
        .boxed();
    let first = within("the initial list", changes.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("a"));
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "crm"}}})),
    )
    .await
    .unwrap();
    let changed = within("the change", changes.next()).await.unwrap().unwrap();
    assert_eq!(changed.metadata.labels.unwrap()["app"], "crm");

    // What the server sent: the events of a watch that ends after a second.
    let request = http::Request::builder()
        .uri("/api/v1/namespaces/ns/secrets?watch=true&timeoutSeconds=1")
        .header("accept", AS_METADATA)
        .body(kube::client::Body::empty())
        .unwrap();
    let response = client.send(request).await.unwrap();
    let bytes = response.into_body().collect_bytes().await.unwrap();
    let events: Vec<Value> = bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["kind"], "PartialObjectMetadata");
    assert!(events[0]["object"].get("data").is_none());
}

#[tokio::test]
async fn an_accept_header_nothing_can_serve_is_406() {
    let (_server, client) = setup().await;
    let api: Api<Secret> = Api::namespaced(client.clone(), "ns");
    secret(&api, "a").await;
    let table = "application/json;as=Table;g=meta.k8s.io;v=v1";
    let (code, status) = get_as(&client, "/api/v1/namespaces/ns/secrets/a", table).await;
    assert_eq!(code, 406);
    assert_eq!(status["reason"], "NotAcceptable");
    // A later range it can serve is taken instead.
    let either = format!("{table}, application/json");
    let (code, object) = get_as(&client, "/api/v1/namespaces/ns/secrets/a", &either).await;
    assert_eq!(code, 200);
    assert_eq!(object["kind"], "Secret");
}

//! The request counter: by verb and resource (with `/status`), writes, writes since a
//! snapshot, and reset.

mod common;

use common::*;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use serde_json::json;

#[tokio::test]
async fn requests_are_counted_by_verb_and_resource() {
    let (server, client) = setup().await;
    server.reset_requests();
    let api = widgets(&client);
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    api.get("a").await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    let _ = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap();
    let current = api.get("a").await.unwrap();
    api.replace("a", &PostParams::default(), &current)
        .await
        .unwrap();
    api.patch_status(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "x"}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let counts = server.requests();
    for (verb, resource, n) in [
        ("create", "widgets", 1),
        ("get", "widgets", 2),
        ("list", "widgets", 1),
        ("watch", "widgets", 1),
        ("update", "widgets", 1),
        ("patch", "widgets/status", 1),
        ("patch", "widgets", 0),
        ("delete", "widgets", 1),
    ] {
        assert_eq!(counts.count(verb, resource), n, "{verb} {resource}");
    }
    assert_eq!(
        counts.writes(),
        4,
        "create, update, patch and delete; a no-op update still counts as a request"
    );
}

#[tokio::test]
async fn writes_since_a_snapshot_name_what_was_written() {
    let (server, client) = setup().await;
    let before = server.requests();
    widgets(&client).get_opt("a").await.unwrap();
    assert!(
        server.requests().writes_since(&before).is_empty(),
        "reads are not writes"
    );
    widgets(&client)
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    assert_eq!(
        server.requests().writes_since(&before),
        [("create".to_owned(), "widgets".to_owned(), 1)]
    );
    server.reset_requests();
    assert_eq!(server.requests().writes(), 0);
    assert!(server.requests().all().is_empty());
}

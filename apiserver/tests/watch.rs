//! Watches: event framing and order, bookmarks, 410 Expired past the history kept,
//! timeouts, selectors, scope, and kube-runtime's watcher riding over all of it.

mod common;

use std::time::Duration;

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use serde_json::json;

fn kind(event: &WatchEvent<Widget>) -> &'static str {
    match event {
        WatchEvent::Added(_) => "ADDED",
        WatchEvent::Modified(_) => "MODIFIED",
        WatchEvent::Deleted(_) => "DELETED",
        WatchEvent::Bookmark(_) => "BOOKMARK",
        WatchEvent::Error(_) => "ERROR",
    }
}

async fn next(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<Widget>>> + Unpin),
) -> WatchEvent<Widget> {
    within("a watch event", stream.try_next())
        .await
        .unwrap()
        .expect("the watch is still open")
}

#[tokio::test]
async fn changes_arrive_in_order_then_bookmarks_while_idle() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let params = WatchParams {
        bookmarks: true,
        ..WatchParams::default()
    }
    .timeout(10);
    let mut stream = api.watch(&params, &rv).await.unwrap().boxed();
    api.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let modified = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let event = next(&mut stream).await;
        if let WatchEvent::Modified(w) = &event {
            assert_eq!(
                w.metadata.resource_version,
                modified.metadata.resource_version
            );
        }
        if let WatchEvent::Deleted(w) = &event {
            assert!(
                rv_of(w) > rv_of(&modified),
                "a DELETED event carries the deletion's revision"
            );
        }
        seen.push(kind(&event));
    }
    assert_eq!(seen, ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]);
}

fn rv_of(w: &Widget) -> u64 {
    rv(&w.metadata)
}

#[tokio::test]
async fn a_watch_from_before_the_history_kept_gets_410_expired() {
    let server = ApiServer::builder()
        .crds([widget_crd()])
        .watch_history(2)
        .start()
        .await;
    let client = server.client();
    create_namespace(&client, "ns").await;
    let start = server.resource_version();
    for i in 0..5 {
        widgets(&client)
            .create(&PostParams::default(), &widget(&format!("w{i}"), 1))
            .await
            .unwrap();
    }
    let mut stream = widgets(&client)
        .watch(&WatchParams::default(), &start.to_string())
        .await
        .unwrap()
        .boxed();
    match next(&mut stream).await {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(e.is_failure());
            assert_eq!(
                e.message,
                format!(
                    "too old resource version: {start} ({})",
                    server.resource_version() - 2
                )
            );
        }
        other => panic!("expected 410, got {}", kind(&other)),
    }
    let recent = (server.resource_version() - 1).to_string();
    let mut stream = widgets(&client)
        .watch(&WatchParams::default(), &recent)
        .await
        .unwrap()
        .boxed();
    widgets(&client)
        .create(&PostParams::default(), &widget("late", 1))
        .await
        .unwrap();
    assert_eq!(
        kind(&next(&mut stream).await),
        "ADDED",
        "a watch within the history resumes"
    );
}

#[tokio::test]
async fn kube_runtime_watcher_relists_when_its_watch_expires() {
    let server = ApiServer::builder()
        .crds([widget_crd()])
        .watch_history(3)
        .start()
        .await;
    let client = server.client();
    create_namespace(&client, "ns").await;
    let config = watcher::Config::default().timeout(1).disable_bookmarks();
    let mut events = watcher(widgets(&client), config).boxed();
    let mut inits = 0;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "ns");
    let noise = tokio::spawn(async move {
        for i in 0.. {
            let s: Secret =
                serde_json::from_value(json!({"metadata": {"name": format!("s{i}")}})).unwrap();
            if secrets.create(&PostParams::default(), &s).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut expired = 0;
    within("the watcher to relist after 410", async {
        while inits < 2 {
            match events.next().await.expect("the watcher runs on") {
                Ok(watcher::Event::InitDone) => inits += 1,
                // kube-runtime reports the 410 it got, then lists again.
                Err(watcher::Error::WatchError(e)) if e.code == 410 => expired += 1,
                Err(e) => panic!("{e}"),
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(expired >= 1, "the watch expired");
    widgets(&client)
        .create(&PostParams::default(), &widget("after", 1))
        .await
        .unwrap();
    within("the watcher to see a new object", async {
        loop {
            match events.next().await.expect("the watcher runs on") {
                Ok(watcher::Event::Apply(w) | watcher::Event::InitApply(w))
                    if w.metadata.name.as_deref() == Some("after") =>
                {
                    break;
                }
                _ => {}
            }
        }
    })
    .await;
    noise.abort();
    assert!(
        server.requests().count("list", "widgets") >= 2,
        "the watcher listed again"
    );
}

#[tokio::test]
async fn timeout_seconds_ends_the_watch() {
    let (_server, client) = setup().await;
    let mut stream = widgets(&client)
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    within("the watch to end", async {
        while stream.try_next().await.unwrap().is_some() {}
    })
    .await;
}

#[tokio::test]
async fn an_object_that_stops_matching_the_selector_is_deleted_for_the_watch() {
    let (_server, client) = setup().await;
    let api = widgets(&client);
    let mut w = widget("a", 1);
    w.metadata.labels = Some([("tier".to_owned(), "gold".to_owned())].into());
    api.create(&PostParams::default(), &w).await.unwrap();
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("tier=gold"), &rv)
        .await
        .unwrap()
        .boxed();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "tin"}}})),
    )
    .await
    .unwrap();
    let gone = next(&mut stream).await;
    assert_eq!(kind(&gone), "DELETED");
    if let WatchEvent::Deleted(w) = gone {
        assert_eq!(
            w.metadata.labels.unwrap()["tier"],
            "gold",
            "the last state that matched"
        );
    }
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "gold"}}})),
    )
    .await
    .unwrap();
    assert_eq!(kind(&next(&mut stream).await), "ADDED");
}

#[tokio::test]
async fn a_watch_sees_one_namespace_or_all_of_them() {
    let (_server, client) = setup().await;
    create_namespace(&client, "other").await;
    let all: Api<Widget> = Api::all(client.clone());
    let mut everywhere = all
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let mut here = widgets(&client)
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    Api::<Widget>::namespaced(client.clone(), "other")
        .create(&PostParams::default(), &widget("x", 1))
        .await
        .unwrap();
    widgets(&client)
        .create(&PostParams::default(), &widget("y", 1))
        .await
        .unwrap();
    let names = |e: WatchEvent<Widget>| match e {
        WatchEvent::Added(w) => w.metadata.name.unwrap(),
        other => panic!("{}", kind(&other)),
    };
    assert_eq!(names(next(&mut everywhere).await), "x");
    assert_eq!(names(next(&mut everywhere).await), "y");
    assert_eq!(names(next(&mut here).await), "y");
}

#[tokio::test]
async fn a_watch_without_a_version_starts_with_the_current_state() {
    let (_server, client) = setup().await;
    widgets(&client)
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let mut stream = widgets(&client)
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(kind(&next(&mut stream).await), "ADDED");
}

#[tokio::test]
async fn streaming_lists_end_their_initial_events_with_an_annotated_bookmark() {
    let (_server, client) = setup().await;
    widgets(&client)
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let config = watcher::Config::default().streaming_lists();
    let mut events = watcher(widgets(&client), config).boxed();
    let mut applied = Vec::new();
    within("the initial events to end", async {
        loop {
            match events.try_next().await.unwrap().unwrap() {
                watcher::Event::InitApply(w) => applied.push(w.metadata.name.unwrap()),
                watcher::Event::InitDone => break,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(applied, ["a"]);
    let (code, _, body) = raw(
        &client,
        "GET",
        "/apis/example.dev/v1/namespaces/ns/widgets?watch=true&sendInitialEvents=true",
        "application/json",
        json!(null),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "resourceVersionMatch"
    );
}

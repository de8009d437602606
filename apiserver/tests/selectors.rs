//! Label and field selectors, and `limit`/`continue` pagination, in one namespace and
//! across all.

mod common;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, ObjectList, PostParams};
use serde_json::json;

fn names<K: kube::Resource + Clone>(list: ObjectList<K>) -> Vec<String> {
    list.items
        .iter()
        .map(|o| o.meta().name.clone().unwrap())
        .collect()
}

async fn labelled(client: &kube::Client) {
    for (name, tier, color) in [
        ("a", Some("x"), "red"),
        ("b", Some("y"), "blue"),
        ("c", Some("x"), "blue"),
        ("d", None, "red"),
    ] {
        let mut w = widget(name, 1);
        w.spec.color = Some(color.into());
        w.metadata.labels = tier.map(|t| [("tier".to_owned(), t.to_owned())].into());
        widgets(client)
            .create(&PostParams::default(), &w)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn label_selectors_support_every_operator() {
    let (_server, client) = setup().await;
    labelled(&client).await;
    let api = widgets(&client);
    for (selector, want) in [
        ("tier=x", &["a", "c"][..]),
        ("tier==x", &["a", "c"]),
        ("tier!=x", &["b", "d"]),
        ("tier in (x, y)", &["a", "b", "c"]),
        ("tier notin (x)", &["b", "d"]),
        ("tier", &["a", "b", "c"]),
        ("!tier", &["d"]),
        ("tier=x,tier!=y", &["a", "c"]),
    ] {
        assert_eq!(
            names(
                api.list(&ListParams::default().labels(selector))
                    .await
                    .unwrap()
            ),
            want,
            "{selector}"
        );
    }
    let err = status_of(
        api.list(&ListParams::default().labels("tier in (x"))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn field_selectors_support_name_namespace_and_selectable_fields() {
    let (_server, client) = setup().await;
    labelled(&client).await;
    let api = widgets(&client);
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name!=b,metadata.namespace=ns"))
                .await
                .unwrap()
        ),
        ["a", "c", "d"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("spec.color=blue"))
                .await
                .unwrap()
        ),
        ["b", "c"],
        "the CRD's selectableFields"
    );
    let err = status_of(
        api.list(&ListParams::default().fields("spec.size=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (400, "field label not supported: spec.size")
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "ns");
    let s: Secret =
        serde_json::from_value(json!({"metadata": {"name": "tls"}, "type": "example.dev/custom"}))
            .unwrap();
    secrets.create(&PostParams::default(), &s).await.unwrap();
    assert_eq!(
        names(
            secrets
                .list(&ListParams::default().fields("type=example.dev/custom"))
                .await
                .unwrap()
        ),
        ["tls"]
    );
}

#[tokio::test]
async fn lists_are_paginated_with_limit_and_continue() {
    let (_server, client) = setup().await;
    for i in 0..5 {
        widgets(&client)
            .create(&PostParams::default(), &widget(&format!("w{i}"), 1))
            .await
            .unwrap();
    }
    let api = widgets(&client);
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.clone().expect("a continue token");
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let snapshot = first.metadata.resource_version.clone();
    assert_eq!(names(first), ["w0", "w1"]);
    widgets(&client)
        .create(&PostParams::default(), &widget("a-late", 1))
        .await
        .unwrap();
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(
        second.metadata.resource_version, snapshot,
        "a continued list keeps the first page's revision"
    );
    let token = second.metadata.continue_.clone().expect("another page");
    assert_eq!(names(second), ["w2", "w3"]);
    let last = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(last.metadata.continue_, None);
    assert_eq!(names(last), ["w4"]);
    let err = status_of(
        api.list(&ListParams::default().continue_token("garbage"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 400);
}

#[tokio::test]
async fn a_list_across_namespaces_is_ordered_by_namespace_then_name() {
    let (_server, client) = setup().await;
    create_namespace(&client, "alpha").await;
    Api::<Widget>::namespaced(client.clone(), "alpha")
        .create(&PostParams::default(), &widget("z", 1))
        .await
        .unwrap();
    widgets(&client)
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let all: Api<Widget> = Api::all(client.clone());
    let listed: Vec<(String, String)> = all
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|w| (w.metadata.namespace.unwrap(), w.metadata.name.unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("alpha".to_owned(), "z".to_owned()),
            ("ns".to_owned(), "a".to_owned())
        ]
    );
    let page = all.list(&ListParams::default().limit(1)).await.unwrap();
    let rest = all
        .list(
            &ListParams::default()
                .limit(1)
                .continue_token(&page.metadata.continue_.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(names(rest), ["a"]);
}

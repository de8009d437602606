//! What the API server does with plugboard's own kinds, checked the same way against the
//! test server and, with PLUGBOARD_TEST_KUBECONFIG, a real cluster: schema validation with
//! field paths, the CEL immutability rules, the status subresource, and garbage collection
//! of a credentials Secret owned by its Connection.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use plugboard::api::Connection;

fn connection(name: &str) -> Connection {
    serde_json::from_value(json!({
        "apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": name},
        "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"}},
    }))
    .unwrap()
}

fn api_error(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other}"),
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_connection_without_a_tenant_is_rejected_with_the_field_path() {
    let cluster = support::TestCluster::start().await;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "plugboard.dev",
        "v1alpha1",
        "Connection",
    ));
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(), cluster.namespace(), &ar);
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": "bad"},
        "spec": {"connectorRef": {"name": "hubspot"}, "input": "not an object"},
    }))
    .unwrap();
    let err = api_error(api.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    let fields: Vec<String> = err
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert!(fields.contains(&"spec.tenantRef".to_owned()), "{fields:?}");
    assert!(fields.contains(&"spec.input".to_owned()), "{fields:?}");
    assert!(
        err.message.contains("spec.tenantRef: Required value"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(r#"spec.input: Invalid value: "string": spec.input in body must be of type object: "string""#),
        "{}",
        err.message
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn the_tenant_and_connector_of_a_connection_cannot_change() {
    let cluster = support::TestCluster::start().await;
    let api: Api<Connection> = Api::namespaced(cluster.client(), cluster.namespace());
    api.create(&PostParams::default(), &connection("c"))
        .await
        .unwrap();
    let err = api_error(
        api.patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"tenantRef": {"name": "globex"}}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    // The field and the rule's message, which every release says; how it quotes the value
    // between them has changed (1.36 no longer prints the type, `"object"`).
    let message = &err.message;
    assert!(
        message.contains("spec.tenantRef: Invalid value")
            && message.contains("tenantRef is immutable: create a new Connection instead"),
        "{message}"
    );
    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"disconnected": true}})),
    )
    .await
    .expect("other fields still change");
    cluster.cleanup().await;
}

#[tokio::test]
async fn status_is_written_only_through_the_status_subresource() {
    let cluster = support::TestCluster::start().await;
    let api: Api<Connection> = Api::namespaced(cluster.client(), cluster.namespace());
    let created = api
        .create(&PostParams::default(), &connection("c"))
        .await
        .unwrap();
    let ignored = api
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"state": "Connected"}})),
        )
        .await
        .unwrap();
    assert_eq!(ignored.status.and_then(|s| s.state), None);
    let status = json!({"status": {"state": "Pending", "observedGeneration": 1}});
    let written = api
        .patch_status("c", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
    assert_eq!(written.status.unwrap().observed_generation, Some(1));
    assert_eq!(
        written.metadata.generation, created.metadata.generation,
        "status writes keep the generation"
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_credentials_secret_goes_with_its_connection() {
    let cluster = support::TestCluster::start().await;
    let connections: Api<Connection> = Api::namespaced(cluster.client(), cluster.namespace());
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), cluster.namespace());
    let conn = connections
        .create(&PostParams::default(), &connection("c"))
        .await
        .unwrap();
    let owner = conn
        .controller_owner_ref(&())
        .expect("a stored Connection has a uid");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "c-credentials", "ownerReferences": [owner],
            "labels": {"app.kubernetes.io/managed-by": "plugboard", "plugboard.dev/connection": "c"}},
        "stringData": {"access_token": "t"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    connections
        .delete("c", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the garbage collector to delete the Secret", || async {
        secrets.get_opt("c-credentials").await.unwrap().is_none()
    })
    .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn server_side_apply_of_a_connection_reports_conflicts_between_managers() {
    let cluster = support::TestCluster::start().await;
    let api: Api<Connection> = Api::namespaced(cluster.client(), cluster.namespace());
    let config = |mode: bool| -> Value {
        json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": "c"},
            "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"}, "disconnected": mode}})
    };
    api.patch(
        "c",
        &PatchParams::apply("gitops"),
        &Patch::Apply(config(false)),
    )
    .await
    .unwrap();
    let err = api_error(
        api.patch(
            "c",
            &PatchParams::apply("operator-console"),
            &Patch::Apply(config(true)),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"gitops\": .spec.disconnected"
    );
    let forced = api
        .patch(
            "c",
            &PatchParams::apply("operator-console").force(),
            &Patch::Apply(config(true)),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.disconnected, Some(true));
    assert!(
        forced
            .managed_fields()
            .iter()
            .any(|m| m.manager.as_deref() == Some("operator-console"))
    );
    let _ = Connection::kind(&());
    cluster.cleanup().await;
}

/// A Connection's credentials Secret is `<name>-credentials`, and a Secret's name has at most
/// 253 characters: a longer Connection name is refused when applied, naming the fix, rather
/// than accepted and never connected.
#[tokio::test]
async fn a_connection_name_too_long_for_its_credentials_secret_is_refused_at_apply() {
    let cluster = support::TestCluster::start().await;
    let api: Api<Connection> = Api::namespaced(cluster.client(), cluster.namespace());
    let longest = "c".repeat(241);
    api.create(&PostParams::default(), &connection(&longest))
        .await
        .expect("241 characters leave room for -credentials");
    let err = api
        .create(&PostParams::default(), &connection(&"c".repeat(242)))
        .await
        .expect_err("242 characters do not");
    let status = api_error(err);
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status.message.contains("at most 241 characters")
            && status.message.contains("spec.credentials.secretName"),
        "{}",
        status.message
    );
    let mut named = connection(&"d".repeat(242));
    named.spec.credentials =
        serde_json::from_value(json!({"secretName": "short-credentials"})).unwrap();
    api.create(&PostParams::default(), &named)
        .await
        .expect("a Secret name of its own makes a long name fine");
    cluster.cleanup().await;
}

//! Tenants: their fields (inline and from Secrets) checked against the operator's
//! tenant-fields schema, reported in status.

mod harness;
mod support;

use std::sync::Arc;

use serde_json::json;

use harness::*;

#[tokio::test]
async fn fields_are_checked_against_the_tenant_fields_schema() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let mut settings = Operator::settings(ns, true);
    settings.tenant_fields_schema = Some(Arc::new(json!({
        "type": "object",
        "required": ["plan", "apiToken"],
        "properties": {"plan": {"enum": ["free", "enterprise"]}, "apiToken": {"type": "string", "minLength": 10}},
    })));
    let _operator = Operator::with_settings(client.clone(), settings);
    let (_, tenants, _, secrets) = apis(&client, ns);
    create(&secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "acme-token"}, "stringData": {"token": "tok-0123456789"}})).await;
    let with_token = |name: &str, plan: &str, secret: &str| {
        json!({
            "apiVersion": "plugboard.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
            "spec": {"fields": {"plan": plan}, "fieldsFrom": [{"field": "apiToken", "secretKeyRef": {"name": secret, "key": "token"}}]},
        })
    };
    create(&tenants, with_token("acme", "enterprise", "acme-token")).await;
    create(&tenants, with_token("globex", "gold", "acme-token")).await;
    create(&tenants, with_token("initech", "free", "missing")).await;

    let acme = wait_for(&tenants, "acme", "Ready", |t| {
        tenant_ready(t).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert_eq!(tenant_ready(&acme).unwrap().1, "Valid");
    let globex = wait_for(&tenants, "globex", "InvalidFields", |t| {
        tenant_ready(t).is_some_and(|r| r.1 == "InvalidFields")
    })
    .await;
    let message = tenant_ready(&globex).unwrap().2;
    assert!(
        message.contains("/plan") && !message.contains("tok-0123456789"),
        "{message}"
    );
    let stalled = globex
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.status, "True");
    let initech = wait_for(&tenants, "initech", "SecretNotFound", |t| {
        tenant_ready(t).is_some_and(|r| r.1 == "SecretNotFound")
    })
    .await;
    assert!(
        tenant_ready(&initech)
            .unwrap()
            .2
            .contains("spec.fieldsFrom[0]")
    );
    // The Secret appearing is a watch event: the tenant is checked again at once.
    create(&secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "missing"}, "stringData": {"token": "tok-9876543210"}})).await;
    wait_for(&tenants, "initech", "Ready once its Secret exists", |t| {
        tenant_ready(t).is_some_and(|r| r.0 == "True")
    })
    .await;
    cluster.cleanup().await;
}

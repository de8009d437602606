//! A refresh token refused after the operator restarted. A run killed between the provider's
//! rotation answer and the Secret write leaves the Secret with a refresh token the provider
//! has already replaced (and, with reuse detection, revoked the grant for): nothing can bring
//! it back, so the Connection must say what happened and where the person consents again.

mod harness;
mod support;

use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use harness::*;
use plugboard::api::ConnectionState;

const CONN: &str = "acme-hubspot";

async fn provider() -> MockServer {
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&provider)
        .await;
    let refresh = |rt: &str| {
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains(format!("refresh_token={rt}")))
    };
    refresh("rt-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at-2", "refresh_token": "rt-2", "token_type": "bearer", "expires_in": 3600,
        })))
        .mount(&provider)
        .await;
    // What the provider says once it has rotated rt-2 into a token that never reached the
    // store, and revoked the grant when rt-2 came back.
    refresh("rt-2")
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "refresh token reused"}),
        ))
        .mount(&provider)
        .await;
    provider
}

#[tokio::test]
async fn a_refresh_token_refused_after_a_restart_says_a_rotation_may_have_been_lost() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace().to_owned());
    let provider = provider().await;
    let (connectors, tenants, connections, secrets) = &apis(&client, &ns);
    create(
        secrets,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "oauth-app"},
        "stringData": {"clientId": "plugboard-tests", "clientSecret": "app-secret-0123456789"}}),
    )
    .await;
    create(secrets, json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{CONN}-credentials"), "labels": {"app.kubernetes.io/managed-by": "plugboard", "plugboard.dev/connection": CONN}},
        "stringData": {"access_token": "at-1", "refresh_token": "rt-1", "token_type": "bearer", "expires_at": "2020-01-01T00:00:00Z"}})).await;
    create(connectors, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connector", "metadata": {"name": "hubspot"}, "spec": {
        "auth": {"type": "oauth2", "authorizeUri": format!("{}/authorize", provider.uri()), "tokenUri": format!("{}/token", provider.uri()),
                 "clientSecretRef": {"name": "oauth-app"}},
        "apiClient": {"baseUri": provider.uri(), "headers": {"Authorization": "Bearer {{ credentials.access_token }}"}},
        "test": {"path": "/me"},
    }})).await;
    create(tenants, tenant("acme")).await;
    let first = Operator::start(client.clone(), &ns);
    create(connections, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": CONN},
        "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"}}})).await;
    wait_for(connections, CONN, "refreshed into rt-2", |c| {
        is_ready_with(c, "True", "Connected")
            && c.status
                .as_ref()
                .is_some_and(|s| s.last_refreshed_at.is_some())
    })
    .await;

    drop(first);
    let _second = Operator::start(client.clone(), &ns);
    request_refresh(connections, CONN, "after-restart").await;
    let conn = wait_for(connections, CONN, "TokenRevoked", |c| {
        is_ready_with(c, "False", "TokenRevoked")
    })
    .await;
    let status = conn.status.as_ref().unwrap();
    assert_eq!(status.state, Some(ConnectionState::AuthorizationRequired));
    let message = &condition(&conn, "Ready").unwrap().message;
    assert!(message.contains("refresh token reused"), "{message}");
    assert!(
        message.contains("restarted") && message.contains("status.authorizationUrl"),
        "{message}"
    );
    assert!(
        status
            .authorization_url
            .as_deref()
            .is_some_and(|u| u.contains(&format!("/connect/{ns}/{CONN}/"))),
        "{:?}",
        status.authorization_url
    );
    cluster.cleanup().await;
}

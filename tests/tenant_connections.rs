//! A Tenant and its Connections, as a user sees them: the counts in the Tenant's status,
//! suspension pausing every Connection, deletion taking the Connections along after they
//! revoked their credentials at the provider, and a namespace that goes without the operator
//! when nothing in it has anything to revoke.

mod harness;
mod support;

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use harness::*;
use plugboard::api::{ConnectionCounts, ConnectionState, Tenant};

const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const OTHER_KEY: &str = "sk_test_globex_0123456789";
const REJECTED_KEY: &str = "sk_test_revoked_000000000";

/// The provider's API: the two good keys pass the test, anything else is refused; revoking
/// a key answers 204.
async fn provider() -> MockServer {
    let server = MockServer::start().await;
    for key in [KEY, OTHER_KEY] {
        Mock::given(method("GET"))
            .and(path("/v1/account"))
            .and(header("authorization", format!("Bearer {key}").as_str()))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(401).set_body_string("invalid api key"))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/keys/current"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    server
}

fn counts(t: &Tenant) -> Option<ConnectionCounts> {
    t.status.as_ref()?.connections.clone()
}

/// Creates a static Connection `name` of `tenant` whose input Secret holds `key`.
async fn static_connection(apis: &Apis, name: &str, tenant: &str, key: &str) {
    create(&apis.3, input_secret(name, key)).await;
    create(&apis.2, connection(name, tenant, "stripe")).await;
}

#[tokio::test]
async fn a_tenant_counts_its_connections_by_readiness() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let apis = apis(&client, ns);
    let (connectors, tenants, connections, secrets) = &apis;
    let _operator = Operator::start(client.clone(), ns);
    create(connectors, static_connector("stripe", &provider.uri())).await;
    // An oauth2 connector nobody has consented to yet: its Connection waits for a person.
    create(
        secrets,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "oauth-app"},
        "stringData": {"clientId": "plugboard-tests", "clientSecret": "app-secret-0123456789"}}),
    )
    .await;
    create(connectors, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connector", "metadata": {"name": "hubspot"}, "spec": {
        "auth": {"type": "oauth2", "authorizeUri": format!("{}/authorize", provider.uri()),
                 "tokenUri": format!("{}/token", provider.uri()), "clientSecretRef": {"name": "oauth-app"}}}})).await;
    create(tenants, tenant("acme")).await;
    create(tenants, tenant("globex")).await;
    static_connection(&apis, "acme-stripe", "acme", KEY).await;
    static_connection(&apis, "acme-stripe-old", "acme", REJECTED_KEY).await;
    create(connections, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": "acme-hubspot"},
        "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"}}})).await;
    static_connection(&apis, "globex-stripe", "globex", OTHER_KEY).await;

    let want = ConnectionCounts {
        total: 3,
        ready: 1,
        authorization_required: 1,
    };
    let acme = wait_for(
        tenants,
        "acme",
        "3 Connections, 1 ready, 1 waiting for consent",
        |t| counts(t) == Some(want.clone()),
    )
    .await;
    assert_eq!(tenant_ready(&acme).unwrap().0, "True");
    wait_for(tenants, "globex", "its own Connection only", |t| {
        counts(t)
            == Some(ConnectionCounts {
                total: 1,
                ready: 1,
                authorization_required: 0,
            })
    })
    .await;

    // Fixing the rejected key makes that Connection ready; the count follows.
    secrets
        .patch(
            "acme-stripe-old-input",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"api-key": KEY}})),
        )
        .await
        .unwrap();
    wait_for(tenants, "acme", "2 ready", |t| {
        counts(t).is_some_and(|c| c.total == 3 && c.ready == 2)
    })
    .await;
    connections
        .delete("acme-hubspot", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(tenants, "acme", "the deleted one no longer counted", |t| {
        counts(t)
            == Some(ConnectionCounts {
                total: 2,
                ready: 2,
                authorization_required: 0,
            })
    })
    .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_suspended_tenant_pauses_its_connections_until_resumed() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let apis = apis(&client, ns);
    let (_, tenants, connections, secrets) = &apis;
    let _operator = Operator::start(client.clone(), ns);
    connect_stripe(&apis, &provider.uri(), KEY).await;

    tenants
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspended": true}})),
        )
        .await
        .unwrap();
    let paused = wait_for(connections, "acme-stripe", "Suspended", |c| {
        c.status.as_ref().and_then(|s| s.state) == Some(ConnectionState::Suspended)
    })
    .await;
    let (status, reason) = ready(&paused).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "TenantSuspended")
    );
    let message = &condition(&paused, "Ready").unwrap().message;
    assert!(
        message.contains("\"acme\"") && message.contains("spec.suspended"),
        "{message}"
    );
    // Paused, not judged: the credentials stay, and so does what was found before.
    assert_eq!(condition(&paused, "Authorized").unwrap().status, "True");
    assert_eq!(condition(&paused, "Stalled").unwrap().status, "False");
    let stored = secrets.get("acme-stripe-credentials").await.unwrap();
    assert_eq!(secret_text(&stored, "apiKey").as_deref(), Some(KEY));

    // While suspended, nothing is tested: a changed key is not even tried.
    let tests_before = test_requests(&provider).await;
    secrets
        .patch(
            "acme-stripe-input",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"api-key": OTHER_KEY}})),
        )
        .await
        .unwrap();
    request_refresh(connections, "acme-stripe", "2026-11-23T10:00:00Z").await;
    let still = wait_for(connections, "acme-stripe", "still suspended", |c| {
        c.status.as_ref().and_then(|s| s.state) == Some(ConnectionState::Suspended)
    })
    .await;
    assert_eq!(ready(&still).unwrap().1, "TenantSuspended");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        test_requests(&provider).await,
        tests_before,
        "no test while suspended"
    );

    tenants
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspended": false}})),
        )
        .await
        .unwrap();
    wait_for(connections, "acme-stripe", "Connected again", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let stored = secrets.get("acme-stripe-credentials").await.unwrap();
    assert_eq!(
        secret_text(&stored, "apiKey").as_deref(),
        Some(OTHER_KEY),
        "the change made while suspended is applied on resumption"
    );
    cluster.cleanup().await;
}

async fn test_requests(provider: &MockServer) -> usize {
    provider
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/account")
        .count()
}

#[tokio::test]
async fn deleting_a_tenant_revokes_and_deletes_its_connections_first() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let apis = apis(&client, ns);
    let (connectors, tenants, connections, secrets) = &apis;
    let _operator = Operator::start(client.clone(), ns);
    create(connectors, static_connector("stripe", &provider.uri())).await;
    create(tenants, tenant("acme")).await;
    create(tenants, tenant("globex")).await;
    static_connection(&apis, "acme-stripe", "acme", KEY).await;
    static_connection(&apis, "acme-stripe-eu", "acme", KEY).await;
    static_connection(&apis, "globex-stripe", "globex", OTHER_KEY).await;
    for name in ["acme-stripe", "acme-stripe-eu", "globex-stripe"] {
        wait_for(connections, name, "Connected", |c| {
            is_ready_with(c, "True", "Connected")
        })
        .await;
    }
    let acme = wait_for(tenants, "acme", "counted", |t| {
        counts(t).is_some_and(|c| c.ready == 2)
    })
    .await;
    assert!(
        acme.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "plugboard.dev/connections"),
        "{:?}",
        acme.metadata.finalizers
    );

    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(connections, "acme-stripe").await;
    wait_gone(connections, "acme-stripe-eu").await;
    wait_gone(tenants, "acme").await;
    wait_gone(secrets, "acme-stripe-credentials").await;
    let revoked: Vec<_> = provider
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "DELETE" && r.url.path() == "/v1/keys/current")
        .map(|r| {
            r.headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        revoked,
        vec![format!("Bearer {KEY}"), format!("Bearer {KEY}")],
        "each of acme's Connections revoked its key, and globex's did not"
    );
    let globex = connections.get("globex-stripe").await.unwrap();
    assert!(is_ready_with(&globex, "True", "Connected"));
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_tenant_whose_connection_cannot_revoke_waits_and_says_so() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&provider)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/keys/current"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&provider)
        .await;
    let apis = apis(&client, ns);
    let (_, tenants, connections, _) = &apis;
    let _operator = Operator::start(client.clone(), ns);
    connect_stripe(&apis, &provider.uri(), KEY).await;
    wait_for(tenants, "acme", "counted", |t| {
        counts(t).is_some_and(|c| c.ready == 1)
    })
    .await;

    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    let deleting = wait_for(tenants, "acme", "Ready=False/Deleting", |t| {
        tenant_ready(t).is_some_and(|r| r.1 == "Deleting")
    })
    .await;
    let message = &deleting
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message;
    assert!(message.contains("waiting for 1 Connection"), "{message}");
    // The Connection is being deleted but held by its own finalizer while the provider
    // refuses to revoke (the harness's grace is short; it then goes and so does the Tenant).
    let held = connections.get("acme-stripe").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    wait_gone(connections, "acme-stripe").await;
    wait_gone(tenants, "acme").await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn with_nothing_to_revoke_a_namespace_goes_without_the_operator() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let apis = apis(&client, ns);
    let (connectors, tenants, connections, secrets) = &apis;
    let operator = Operator::start(client.clone(), ns);
    // A connector that sends nothing at deletion: no revocation, no disconnect request.
    let mut connector = static_connector("stripe", &provider.uri());
    connector["spec"]
        .as_object_mut()
        .unwrap()
        .remove("disconnect");
    create(connectors, connector).await;
    create(tenants, tenant("acme")).await;
    static_connection(&apis, "acme-stripe", "acme", KEY).await;
    let conn = wait_for(connections, "acme-stripe", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let acme = wait_for(tenants, "acme", "counted", |t| {
        counts(t).is_some_and(|c| c.ready == 1)
    })
    .await;
    assert_eq!(conn.finalizers(), &[] as &[String], "nothing to revoke");
    assert_eq!(
        acme.finalizers(),
        &[] as &[String],
        "no Connection to wait for"
    );
    let credentials = secrets.get("acme-stripe-credentials").await.unwrap();
    assert!(
        credentials
            .owner_references()
            .iter()
            .any(|o| o.kind == "Connection" && Some(&o.uid) == conn.uid().as_ref()),
        "the credentials go with their Connection"
    );

    // Scaled to zero, uninstalled, crash-looping: whatever the reason, nothing waits for it.
    drop(operator);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(ns, &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&namespaces, ns).await;
    cluster.cleanup().await;
}

//! Whole-loop tests of a static-credentials Connection: connect, store, test, propagate,
//! restore, disconnect and delete, as a user sees them through the API. The provider is
//! played by wiremock; the cluster comes from `support` (the test API server, or a real
//! cluster when PLUGBOARD_TEST_KUBECONFIG is set).

mod harness;
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use harness::*;

const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

async fn provider() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "acct_1"})))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_static_connection_connects_stores_its_credentials_and_passes_its_test() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let (connectors, tenants, connections, secrets) = apis(&client, ns);
    let _operator = Operator::start(client.clone(), ns);

    create(&connectors, static_connector("stripe", &provider.uri())).await;
    create(&tenants, tenant("acme")).await;
    create(&secrets, input_secret("acme-stripe", KEY)).await;
    create(&connections, connection("acme-stripe", "acme", "stripe")).await;

    let conn = wait_for(&connections, "acme-stripe", "Ready=True/Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let status = conn.status.as_ref().unwrap();
    assert_eq!(
        status.state,
        Some(plugboard::api::ConnectionState::Connected)
    );
    for type_ in ["Authorized", "Tested"] {
        assert_eq!(condition(&conn, type_).unwrap().status, "True", "{type_}");
    }
    assert_eq!(condition(&conn, "Stalled").unwrap().status, "False");
    assert_eq!(condition(&conn, "Reconciling").unwrap().status, "False");
    assert!(status.last_tested_at.is_some(), "lastTestedAt is set");
    assert_eq!(
        status
            .credentials_ref
            .as_ref()
            .and_then(|r| r.secret_name.as_deref()),
        Some("acme-stripe-credentials")
    );

    let stored = secrets.get("acme-stripe-credentials").await.unwrap();
    assert_stored_as_the_contract_says(&stored, &provider.uri());

    let calls = provider.received_requests().await.unwrap();
    assert!(
        calls.iter().any(|r| r.url.path() == "/v1/account"),
        "the test request reached the provider"
    );

    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let connected = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some("Connected")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("acme-stripe")
        });
    assert_eq!(
        connected.count(),
        1,
        "one Connected event for one transition"
    );
    assert_no_secret_in_status(&conn);
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_connection_whose_name_is_too_long_for_a_label_value_connects() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let (connectors, tenants, connections, secrets) = apis(&client, ns);
    let _operator = Operator::start(client.clone(), ns);
    // 83 characters: a valid Connection name, but a label value may have 63 at most.
    let name = format!("acme-stripe-{}", "billing-eu-west-1-".repeat(4))
        .trim_end_matches('-')
        .to_owned();
    assert!(name.len() > 63, "{}", name.len());

    create(&connectors, static_connector("stripe", &provider.uri())).await;
    create(&tenants, tenant("acme")).await;
    create(&secrets, input_secret(&name, KEY)).await;
    create(&connections, connection(&name, "acme", "stripe")).await;
    wait_for(&connections, &name, "Ready=True/Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;

    let stored = secrets.get(&format!("{name}-credentials")).await.unwrap();
    assert_eq!(secret_text(&stored, "apiKey").as_deref(), Some(KEY));
    let labels = stored.metadata.labels.unwrap_or_default();
    let label = labels
        .get("plugboard.dev/connection")
        .expect("the Secret is labelled with its Connection");
    assert!(
        label.len() <= 63 && name.starts_with(&label[..label.len() - 11]),
        "a prefix of the name and a digest: {label}"
    );
    cluster.cleanup().await;
}

/// The credentials Secret of `acme-stripe`: its key, labels, owner and `api-client.json`.
fn assert_stored_as_the_contract_says(stored: &Secret, provider_uri: &str) {
    assert_eq!(secret_text(stored, "apiKey").as_deref(), Some(KEY));
    let labels = stored.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("plugboard")
    );
    assert_eq!(
        labels.get("plugboard.dev/connection").map(String::as_str),
        Some("acme-stripe")
    );
    let owner = &stored.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Connection", "acme-stripe")
    );
    let api_client: serde_json::Value =
        serde_json::from_str(&secret_text(stored, "api-client.json").unwrap()).unwrap();
    assert_eq!(api_client["baseUri"], provider_uri);
    assert_eq!(
        api_client["headers"]["Authorization"],
        format!("Bearer {KEY}")
    );
    assert_eq!(api_client["headers"]["X-Environment"], "production");
    assert_eq!(api_client["headers"]["X-Tenant"], "acme");
}

fn assert_no_secret_in_status(conn: &plugboard::api::Connection) {
    let text = serde_json::to_string(&conn.status).unwrap();
    assert!(!text.contains(KEY), "status leaks the API key: {text}");
}

#[tokio::test]
async fn connector_parameters_override_the_connectors_defaults_key_by_key() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let (connectors, tenants, connections, secrets) = apis(&client, ns);
    let _operator = Operator::start(client.clone(), ns);

    create(&connectors, static_connector("stripe", &provider.uri())).await;
    create(&tenants, tenant("acme")).await;
    create(&secrets, input_secret("acme-sandbox", KEY)).await;
    let mut conn = connection("acme-sandbox", "acme", "stripe");
    conn["spec"]["connectorParameters"] = json!({"environment": "sandbox"});
    create(&connections, conn).await;

    wait_for(&connections, "acme-sandbox", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let stored = secrets.get("acme-sandbox-credentials").await.unwrap();
    let api_client: serde_json::Value =
        serde_json::from_str(&secret_text(&stored, "api-client.json").unwrap()).unwrap();
    assert_eq!(api_client["headers"]["X-Environment"], "sandbox");
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_connection_waits_for_what_it_refers_to_and_connects_when_it_appears() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let (connectors, tenants, connections, secrets) = apis(&client, ns);
    let _operator = Operator::start(client.clone(), ns);

    create(&connections, connection("acme-stripe", "acme", "stripe")).await;
    let c = wait_for(&connections, "acme-stripe", "ConnectorNotFound", |c| {
        is_ready_with(c, "False", "ConnectorNotFound")
    })
    .await;
    assert!(
        condition(&c, "Ready")
            .unwrap()
            .message
            .contains("\"stripe\""),
        "names the connector"
    );
    assert_eq!(
        c.status.as_ref().unwrap().state,
        Some(plugboard::api::ConnectionState::Pending)
    );

    create(&connectors, static_connector("stripe", &provider.uri())).await;
    let c = wait_for(&connections, "acme-stripe", "TenantNotFound", |c| {
        is_ready_with(c, "False", "TenantNotFound")
    })
    .await;
    assert!(condition(&c, "Ready").unwrap().message.contains("\"acme\""));

    create(&tenants, tenant("acme")).await;
    let c = wait_for(&connections, "acme-stripe", "SecretNotFound", |c| {
        is_ready_with(c, "False", "SecretNotFound")
    })
    .await;
    let message = &condition(&c, "Ready").unwrap().message;
    assert!(
        message.contains("\"acme-stripe-input\"") && message.contains("spec.inputFrom[0]"),
        "{message}"
    );

    // Each step above is driven by a watch event, not a poll: creating the Secret connects.
    create(&secrets, input_secret("acme-stripe", KEY)).await;
    wait_for(&connections, "acme-stripe", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;

    // Each Warning named the object to look at as its related object.
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let all = events.list(&Default::default()).await.unwrap().items;
    let related = |reason: &str| {
        let event = all.iter().find(|e| e.reason.as_deref() == Some(reason));
        let related = event.and_then(|e| e.related.clone())?;
        Some((related.kind?, related.name?, related.namespace))
    };
    let here = Some(ns.to_owned());
    for (reason, kind, name) in [
        ("ConnectorNotFound", "Connector", "stripe"),
        ("TenantNotFound", "Tenant", "acme"),
        ("SecretNotFound", "Secret", "acme-stripe-input"),
    ] {
        assert_eq!(
            related(reason),
            Some((kind.to_owned(), name.to_owned(), here.clone())),
            "{reason}"
        );
    }
    cluster.cleanup().await;
}

#[tokio::test]
async fn an_unchanged_connection_reconciles_without_writing() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let all = apis(&client, ns);
    let (_, _, _, secrets) = &all;
    let _operator = Operator::start(client.clone(), ns);
    connect_stripe(&all, &provider.uri(), KEY).await;
    // Let the reconciles triggered by the operator's own writes settle.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Someone's annotation on the input Secret changes nothing plugboard uses, but every
    // change of a Secret a Connection reads reconciles that Connection, which reads the
    // input Secret again.
    secrets
        .patch(
            "acme-stripe-input",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"example.com/owner": "sales"}}})),
        )
        .await
        .unwrap();
    // Counted before the mark, whose listing takes long enough for the reconcile to run.
    let reads_before = cluster.requests().map(|r| r.count("get", "secrets"));
    let mark = cluster.mark_writes().await;
    cluster.wait_until_secrets_read_again(reads_before).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster
        .assert_no_writes_since(&mark, "a reconcile that finds nothing to do")
        .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn changes_to_the_input_secret_tenant_and_connector_reach_the_credentials() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let all = apis(&client, ns);
    let (connectors, tenants, _, secrets) = &all;
    let _operator = Operator::start(client.clone(), ns);
    connect_stripe(&all, &provider.uri(), KEY).await;

    let rotated = "sk_test_rotated000000000000";
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&provider)
        .await;
    secrets
        .patch(
            "acme-stripe-input",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"api-key": rotated}})),
        )
        .await
        .unwrap();
    wait_for(
        secrets,
        "acme-stripe-credentials",
        "the rotated key is stored",
        |s| secret_text(s, "apiKey").as_deref() == Some(rotated),
    )
    .await;

    tenants
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"fields": {"plan": "pro"}}})),
        )
        .await
        .unwrap();
    let mut c = static_connector("stripe", &provider.uri());
    c["spec"]["apiClient"]["headers"]["X-Plan"] = json!("{{ tenant.fields.plan }}");
    connectors
        .patch(
            "stripe",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"apiClient": c["spec"]["apiClient"]}})),
        )
        .await
        .unwrap();
    wait_for(
        secrets,
        "acme-stripe-credentials",
        "the tenant's new field is rendered",
        |s| secret_text(s, "api-client.json").is_some_and(|j| j.contains("\"X-Plan\":\"pro\"")),
    )
    .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_credentials_secret_deleted_or_edited_by_hand_is_put_back() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let all = apis(&client, ns);
    let (_, _, _, secrets) = &all;
    let _operator = Operator::start(client.clone(), ns);
    connect_stripe(&all, &provider.uri(), KEY).await;

    secrets
        .patch(
            "acme-stripe-credentials",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"apiKey": "tampered"}})),
        )
        .await
        .unwrap();
    wait_for(
        secrets,
        "acme-stripe-credentials",
        "the edit is undone",
        |s| secret_text(s, "apiKey").as_deref() == Some(KEY),
    )
    .await;

    secrets
        .delete("acme-stripe-credentials", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        secrets,
        "acme-stripe-credentials",
        "the Secret is back",
        |s| secret_text(s, "apiKey").as_deref() == Some(KEY),
    )
    .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn disconnecting_revokes_and_deletes_the_credentials_but_keeps_the_connection() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/keys/current"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&provider)
        .await;
    let all = apis(&client, ns);
    let (_, _, connections, secrets) = &all;
    let _operator = Operator::start(client.clone(), ns);
    connect_stripe(&all, &provider.uri(), KEY).await;

    connections
        .patch(
            "acme-stripe",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"disconnected": true}})),
        )
        .await
        .unwrap();
    let c = wait_for(connections, "acme-stripe", "Disconnected", |c| {
        is_ready_with(c, "False", "Disconnected")
    })
    .await;
    assert_eq!(
        c.status.as_ref().unwrap().state,
        Some(plugboard::api::ConnectionState::Disconnected)
    );
    assert!(c.status.as_ref().unwrap().credentials_ref.is_none());
    wait_gone(secrets, "acme-stripe-credentials").await;
    provider.verify().await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn deleting_a_connection_revokes_at_the_provider_first() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/keys/current"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&provider)
        .await;
    let all = apis(&client, ns);
    let (_, _, connections, secrets) = &all;
    let _operator = Operator::start(client.clone(), ns);
    let c = connect_stripe(&all, &provider.uri(), KEY).await;
    assert!(
        c.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "plugboard.dev/credentials")
    );

    connections
        .delete("acme-stripe", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(connections, "acme-stripe").await;
    wait_gone(secrets, "acme-stripe-credentials").await;
    provider.verify().await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_connection_with_nothing_to_revoke_is_deleted_with_its_input_secret_at_once() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let (connectors, tenants, connections, secrets) = apis(&client, ns);
    let _operator = Operator::start(client.clone(), ns);
    let mut connector = static_connector("stripe", &provider.uri());
    connector["spec"]
        .as_object_mut()
        .unwrap()
        .remove("disconnect");
    create(&connectors, connector).await;
    create(&tenants, tenant("acme")).await;
    create(&secrets, input_secret("acme-stripe", KEY)).await;
    create(&connections, connection("acme-stripe", "acme", "stripe")).await;
    wait_for(&connections, "acme-stripe", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;

    // As `kubectl delete -f` or a GitOps prune does: the input Secret and the Connection go
    // together, and the Connection no longer finds what it read.
    secrets
        .delete("acme-stripe-input", &DeleteParams::default())
        .await
        .unwrap();
    connections
        .delete("acme-stripe", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&connections, "acme-stripe").await;
    wait_gone(&secrets, "acme-stripe-credentials").await;
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        !reasons.iter().any(|r| r == "DisconnectAbandoned"),
        "deletion waited for a revocation it had no reason to attempt: {reasons:?}"
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_connected_connection_is_tested_again_at_its_interval() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let (connectors, tenants, connections, secrets) = apis(&client, ns);
    let _operator = Operator::start(client.clone(), ns);
    let mut connector = static_connector("stripe", &provider.uri());
    connector["spec"]["test"]["interval"] = json!("1s");
    create(&connectors, connector).await;
    create(&tenants, tenant("acme")).await;
    create(&secrets, input_secret("acme-stripe", KEY)).await;
    create(&connections, connection("acme-stripe", "acme", "stripe")).await;
    let first = wait_for(&connections, "acme-stripe", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let first_at = first.status.unwrap().last_tested_at.unwrap();
    // Nothing changes, yet the test runs again on schedule and lastTestedAt moves on.
    wait_for(&connections, "acme-stripe", "tested again", |c| {
        c.status
            .as_ref()
            .and_then(|s| s.last_tested_at.as_ref())
            .is_some_and(|t| *t != first_at)
    })
    .await;
    let tests = provider
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/account")
        .count();
    assert!(tests >= 2, "{tests} test requests");
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_provider_that_keeps_refusing_to_revoke_holds_deletion_for_a_bounded_time() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/keys/current"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&provider)
        .await;
    let all = apis(&client, ns);
    let (_, _, connections, secrets) = &all;
    let _operator = Operator::start(client.clone(), ns);
    connect_stripe(&all, &provider.uri(), KEY).await;

    connections
        .delete("acme-stripe", &DeleteParams::default())
        .await
        .unwrap();
    let held = wait_for(
        connections,
        "acme-stripe",
        "the failing revocation is shown",
        |c| {
            is_ready_with(c, "False", "ProviderUnavailable")
                || ready(c).is_some_and(|(_, r)| r == "DisconnectFailed")
        },
    )
    .await;
    assert!(
        condition(&held, "Ready")
            .unwrap()
            .message
            .contains("deletion waits up to 2s")
    );
    wait_gone(connections, "acme-stripe").await;
    wait_gone(secrets, "acme-stripe-credentials").await;
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let abandoned = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .any(|e| e.reason.as_deref() == Some("DisconnectAbandoned"));
    assert!(abandoned, "an event says the revocation was given up");
    cluster.cleanup().await;
}

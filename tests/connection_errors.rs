//! Whole-loop tests of bad input and bad providers: each ends in the documented status, keeps
//! what it had, and never prints a secret.

mod harness;
mod support;

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use harness::*;
use plugboard::api::{Connection, ConnectionState};

const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

/// Everything a scenario needs, with the operator running.
struct Scenario {
    cluster: support::TestCluster,
    provider: MockServer,
    apis: Apis,
    _operator: Operator,
}

impl Scenario {
    async fn start(guarded: bool) -> Self {
        let cluster = support::TestCluster::start().await;
        let client = cluster.client();
        let ns = cluster.namespace().to_owned();
        let provider = MockServer::start().await;
        let operator = if guarded {
            Operator::start_guarded(client.clone(), &ns)
        } else {
            Operator::start(client.clone(), &ns)
        };
        Self {
            apis: apis(&client, &ns),
            cluster,
            provider,
            _operator: operator,
        }
    }

    /// Creates the connector (as given), a tenant, the input Secret and the Connection.
    async fn connect(
        &self,
        connector: serde_json::Value,
        api_key: &str,
        connection: serde_json::Value,
    ) {
        let (connectors, tenants, connections, secrets) = &self.apis;
        create(connectors, connector).await;
        create(tenants, tenant("acme")).await;
        create(secrets, input_secret("acme-stripe", api_key)).await;
        create(connections, connection).await;
    }

    async fn wait(&self, reason: &str, status: &str) -> Connection {
        wait_for(
            &self.apis.2,
            "acme-stripe",
            &format!("Ready={status}/{reason}"),
            |c| is_ready_with(c, status, reason),
        )
        .await
    }
}

/// Events with this reason about the test Connection; no event may carry a secret.
async fn events_with_reason(s: &Scenario, reason: &str) -> usize {
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(s.cluster.client(), s.cluster.namespace());
    let all = events.list(&Default::default()).await.unwrap().items;
    for e in &all {
        assert!(
            !serde_json::to_string(e).unwrap().contains(KEY),
            "an event leaks the key: {e:?}"
        );
    }
    all.iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .count()
}

fn message(conn: &Connection) -> String {
    condition(conn, "Ready").unwrap().message.clone()
}

fn assert_stalled(conn: &Connection) {
    assert_eq!(
        condition(conn, "Stalled").unwrap().status,
        "True",
        "{conn:#?}"
    );
    assert_eq!(condition(conn, "Reconciling").unwrap().status, "False");
    assert_eq!(
        conn.status.as_ref().unwrap().state,
        Some(ConnectionState::Error)
    );
}

#[tokio::test]
async fn input_that_breaks_the_schema_stalls_with_the_pointer_and_without_the_value() {
    let s = Scenario::start(false).await;
    let bad_key = "pk_live_wrong";
    s.connect(
        static_connector("stripe", &s.provider.uri()),
        bad_key,
        connection("acme-stripe", "acme", "stripe"),
    )
    .await;
    let conn = s.wait("InvalidInput", "False").await;
    assert_stalled(&conn);
    let text = message(&conn);
    assert!(text.contains("/apiKey"), "{text}");
    assert!(text.contains("^sk_"), "says what the schema wanted: {text}");
    assert!(
        !serde_json::to_string(&conn.status)
            .unwrap()
            .contains(bad_key),
        "the value leaked: {text}"
    );
    // The Event is recorded after the status it reports; on a real cluster it may be
    // listed a moment later, as `kubectl get events` would show it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events_with_reason(&s, "InvalidInput").await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no InvalidInput event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        events_with_reason(&s, "InvalidInput").await,
        1,
        "one, not one per reconcile"
    );
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn parameters_that_break_the_schema_stall_with_invalid_parameters() {
    let s = Scenario::start(false).await;
    let mut conn = connection("acme-stripe", "acme", "stripe");
    conn["spec"]["connectorParameters"] = json!({"environment": "staging"});
    s.connect(static_connector("stripe", &s.provider.uri()), KEY, conn)
        .await;
    let conn = s.wait("InvalidParameters", "False").await;
    assert_stalled(&conn);
    assert!(
        message(&conn).contains("/environment"),
        "{}",
        message(&conn)
    );

    // Fixing the spec is the change a stalled Connection waits for.
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&s.provider)
        .await;
    s.apis
        .2
        .patch(
            "acme-stripe",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"connectorParameters": {"environment": "sandbox"}}})),
        )
        .await
        .unwrap();
    s.wait("Connected", "True").await;
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn an_unknown_auth_option_lists_the_valid_keys() {
    let s = Scenario::start(false).await;
    let mut connector = static_connector("stripe", &s.provider.uri());
    let auth = connector["spec"]["auth"].take();
    connector["spec"].as_object_mut().unwrap().remove("auth");
    connector["spec"]["options"] = json!({"apiKey": auth, "restricted": {"type": "static", "credentials": {"apiKey": "{{ input.apiKey }}"}}});
    let mut conn = connection("acme-stripe", "acme", "stripe");
    conn["spec"]["authOptionKey"] = json!("oauth");
    s.connect(connector, KEY, conn).await;
    let conn = s.wait("InvalidInput", "False").await;
    assert!(
        message(&conn).contains("apiKey, restricted"),
        "{}",
        message(&conn)
    );
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_template_with_an_undefined_variable_names_it() {
    let s = Scenario::start(false).await;
    let mut connector = static_connector("stripe", &s.provider.uri());
    connector["spec"]["auth"]["credentials"]["apiKey"] = json!("{{ input.apiToken }}");
    s.connect(connector, KEY, connection("acme-stripe", "acme", "stripe"))
        .await;
    let conn = s.wait("InvalidTemplate", "False").await;
    assert_stalled(&conn);
    let text = message(&conn);
    assert!(
        text.contains("input.apiToken") && text.contains("auth.credentials.apiKey"),
        "{text}"
    );
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_host_outside_the_allow_list_or_on_a_private_network_is_blocked() {
    let s = Scenario::start(true).await;
    // The provider listens on 127.0.0.1, which the guard refuses unless told otherwise.
    s.connect(
        static_connector("stripe", &s.provider.uri()),
        KEY,
        connection("acme-stripe", "acme", "stripe"),
    )
    .await;
    let conn = s.wait("BlockedHost", "False").await;
    assert_stalled(&conn);
    assert!(
        message(&conn).contains("internal address"),
        "{}",
        message(&conn)
    );
    assert!(
        s.provider.received_requests().await.unwrap().is_empty(),
        "nothing reached the blocked host"
    );
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_failing_provider_backs_off_keeps_the_credentials_and_recovers() {
    let s = Scenario::start(false).await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream overloaded"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&s.provider)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&s.provider)
        .await;
    s.connect(
        static_connector("stripe", &s.provider.uri()),
        KEY,
        connection("acme-stripe", "acme", "stripe"),
    )
    .await;
    let conn = s.wait("ProviderUnavailable", "False").await;
    assert_eq!(
        condition(&conn, "Reconciling").unwrap().status,
        "True",
        "a transient fault is retried"
    );
    assert_eq!(condition(&conn, "Stalled").unwrap().status, "False");
    assert_eq!(
        condition(&conn, "Authorized").unwrap().status,
        "True",
        "credentials were stored"
    );
    let status = conn.status.as_ref().unwrap();
    assert!(
        status.retry_attempts >= Some(1) && status.next_retry_at.is_some(),
        "{status:#?}"
    );
    assert!(message(&conn).contains("503") && message(&conn).contains("upstream overloaded"));
    let kept = s.apis.3.get("acme-stripe-credentials").await.unwrap();
    assert_eq!(
        secret_text(&kept, "apiKey").as_deref(),
        Some(KEY),
        "nothing lost"
    );

    let conn = s.wait("Connected", "True").await;
    assert!(
        conn.status.as_ref().unwrap().retry_attempts.is_none(),
        "the count resets on success"
    );
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_rejected_test_is_test_failed_with_the_status_and_no_secret() {
    let s = Scenario::start(false).await;
    // A provider that echoes the key back must not get it into the status.
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_string(format!("{{\"error\": \"invalid api key {KEY}\"}}")),
        )
        .mount(&s.provider)
        .await;
    s.connect(
        static_connector("stripe", &s.provider.uri()),
        KEY,
        connection("acme-stripe", "acme", "stripe"),
    )
    .await;
    let conn = s.wait("TestFailed", "False").await;
    assert_eq!(condition(&conn, "Tested").unwrap().status, "False");
    assert_eq!(condition(&conn, "Tested").unwrap().reason, "TestFailed");
    let text = message(&conn);
    assert!(
        text.contains("HTTP 401") && text.contains("invalid api key [redacted]"),
        "{text}"
    );
    assert!(!serde_json::to_string(&conn.status).unwrap().contains(KEY));
    // Retries keep failing the same way: one event for the one transition.
    let retried = wait_for(&s.apis.2, "acme-stripe", "a retry", |c| {
        c.status.as_ref().and_then(|s| s.retry_attempts) >= Some(2)
    })
    .await;
    assert_eq!(ready(&retried).unwrap().1, "TestFailed");
    assert_eq!(events_with_reason(&s, "TestFailed").await, 1);
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_slow_provider_times_out_as_provider_unavailable() {
    let s = Scenario::start(false).await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(
            ResponseTemplate::new(200).set_delay(PROVIDER_TIMEOUT + Duration::from_secs(3)),
        )
        .mount(&s.provider)
        .await;
    s.connect(
        static_connector("stripe", &s.provider.uri()),
        KEY,
        connection("acme-stripe", "acme", "stripe"),
    )
    .await;
    let conn = s.wait("ProviderUnavailable", "False").await;
    assert!(message(&conn).contains("timed out"), "{}", message(&conn));
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_provider_answering_garbage_fails_the_test_without_crashing() {
    let s = Scenario::start(false).await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(418).set_body_bytes(vec![0xff, 0xfe, 0x00, b'<', b'h']))
        .mount(&s.provider)
        .await;
    s.connect(
        static_connector("stripe", &s.provider.uri()),
        KEY,
        connection("acme-stripe", "acme", "stripe"),
    )
    .await;
    let conn = s.wait("TestFailed", "False").await;
    assert!(message(&conn).contains("HTTP 418"), "{}", message(&conn));
    s.cluster.cleanup().await;
}

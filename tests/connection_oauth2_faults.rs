//! OAuth2 refresh against scripted token endpoints (wiremock): rotation, responses without a
//! refresh token, invalid_grant after a concurrent rotation, revocation, 429 with
//! Retry-After, 500s, a slow endpoint, malformed JSON, and an expired state at the callback.
//! Each ends in the documented status with no token lost.

mod harness;
mod support;

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use harness::*;
use plugboard::api::ConnectionState;

struct Scenario {
    cluster: support::TestCluster,
    provider: MockServer,
    apis: Apis,
    _operator: Operator,
}

const CONN: &str = "acme-hubspot";
const SECRET: &str = "acme-hubspot-credentials";

impl Scenario {
    /// An oauth2 Connection whose credentials Secret already holds `tokens` (as after an
    /// earlier authorization), with the provider's API and token endpoint on wiremock.
    async fn start(tokens: serde_json::Value) -> Self {
        Self::start_with(tokens, json!({})).await
    }

    /// As `start`, with extra fields merged into the connector's auth method.
    async fn start_with(tokens: serde_json::Value, auth_extra: serde_json::Value) -> Self {
        let cluster = support::TestCluster::start().await;
        let (client, ns) = (cluster.client(), cluster.namespace().to_owned());
        let provider = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/me"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&provider)
            .await;
        let apis = apis(&client, &ns);
        let (connectors, tenants, _, secrets) = &apis;
        create(secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "oauth-app"},
            "stringData": {"clientId": "plugboard-tests", "clientSecret": "app-secret-0123456789"}})).await;
        create(secrets, json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": SECRET, "labels": {"app.kubernetes.io/managed-by": "plugboard", "plugboard.dev/connection": CONN}},
            "stringData": tokens})).await;
        let mut connector = json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connector", "metadata": {"name": "hubspot"}, "spec": {
            "auth": {"type": "oauth2", "authorizeUri": format!("{}/authorize", provider.uri()), "tokenUri": format!("{}/token", provider.uri()),
                     "clientSecretRef": {"name": "oauth-app"}},
            "apiClient": {"baseUri": provider.uri(), "headers": {"Authorization": "Bearer {{ credentials.access_token }}"}},
            "test": {"path": "/me"},
        }});
        for (k, v) in auth_extra.as_object().unwrap() {
            connector["spec"]["auth"][k] = v.clone();
        }
        create(connectors, connector).await;
        create(tenants, tenant("acme")).await;
        let operator = Operator::start(client.clone(), &ns);
        Self {
            cluster,
            provider,
            apis,
            _operator: operator,
        }
    }

    async fn connect(&self) {
        create(&self.apis.2, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": CONN},
            "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"}}})).await;
    }

    async fn stored(&self, key: &str) -> Option<String> {
        secret_text(&self.apis.3.get(SECRET).await.unwrap(), key)
    }

    async fn wait_for_token_requests(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + CONVERGE;
        loop {
            let requests = self.provider.received_requests().await.unwrap();
            if requests.iter().filter(|r| r.url.path() == "/token").count() >= count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{count} token requests"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many token requests spent the refresh token `rt`.
    async fn asked_with(&self, rt: &str) -> usize {
        let body = format!("refresh_token={rt}");
        let requests = self.provider.received_requests().await.unwrap();
        requests
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains(&body))
            .count()
    }

    /// The reasons of the events recorded for the Connection.
    async fn event_reasons(&self) -> Vec<String> {
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.cluster.client(), self.cluster.namespace());
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(CONN))
            .filter_map(|e| e.reason)
            .collect()
    }
}

/// Whole seconds from now until the status timestamp `at`.
fn seconds_until(at: &str) -> i64 {
    let at: k8s_openapi::jiff::Timestamp = at.parse().unwrap();
    at.duration_since(k8s_openapi::jiff::Timestamp::now())
        .as_secs()
}

fn expired() -> serde_json::Value {
    json!({"access_token": "at-1", "refresh_token": "rt-1", "token_type": "bearer", "expires_at": "2020-01-01T00:00:00Z"})
}

fn token(access: &str, refresh: Option<&str>) -> ResponseTemplate {
    let mut body = json!({"access_token": access, "token_type": "bearer", "expires_in": 3600});
    if let Some(rt) = refresh {
        body["refresh_token"] = json!(rt);
    }
    ResponseTemplate::new(200).set_body_json(body)
}

fn refresh_with(rt: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains(format!("refresh_token={rt}")))
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_with_the_new_access_token() {
    let s = Scenario::start(expired()).await;
    refresh_with("rt-1")
        .respond_with(token("at-2", Some("rt-2")))
        .expect(1)
        .mount(&s.provider)
        .await;
    s.connect().await;
    let conn = wait_for(&s.apis.2, CONN, "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    assert_eq!(s.stored("access_token").await.as_deref(), Some("at-2"));
    assert_eq!(s.stored("refresh_token").await.as_deref(), Some("rt-2"));
    let status = conn.status.unwrap();
    assert!(
        status.last_refreshed_at.is_some()
            && status.next_refresh_at.is_some()
            && status.credentials_expire_at.is_some()
    );
    let (next, expires): (k8s_openapi::jiff::Timestamp, k8s_openapi::jiff::Timestamp) = (
        status.next_refresh_at.unwrap().parse().unwrap(),
        status.credentials_expire_at.unwrap().parse().unwrap(),
    );
    let early = expires.duration_since(next).as_secs();
    assert!(
        (720..=1080).contains(&early),
        "refreshes 12 to 18 minutes before a one-hour token expires: {early}s"
    );
    s.provider.verify().await;
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn extra_response_fields_are_mapped_into_the_credentials() {
    let s = Scenario::start_with(
        expired(),
        json!({"credentialsFromRefreshResponse": {"portal": "{{ response.hub_id }}"}}),
    )
    .await;
    let answer = json!({"access_token": "at-2", "refresh_token": "rt-2", "token_type": "bearer", "expires_in": 3600, "hub_id": 4242});
    refresh_with("rt-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(&s.provider)
        .await;
    s.connect().await;
    wait_for(&s.apis.2, CONN, "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    assert_eq!(s.stored("portal").await.as_deref(), Some("4242"));
    s.cluster.cleanup().await;
}

/// A 12-second token, so that the next refresh falls due within seconds.
fn short(access: &str, refresh: &str, extra: serde_json::Value) -> ResponseTemplate {
    let mut body = json!({"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": 12});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    ResponseTemplate::new(200).set_body_json(body)
}

/// rt-1 gives a 12-second token (its response with `extra`); the refresh that falls due
/// within seconds rotates rt-2 to at-3 and rt-3, once.
async fn refresh_twice(s: &Scenario, extra: serde_json::Value) {
    refresh_with("rt-1")
        .respond_with(short("at-2", "rt-2", extra))
        .mount(&s.provider)
        .await;
    refresh_with("rt-2")
        .respond_with(token("at-3", Some("rt-3")))
        .expect(1)
        .mount(&s.provider)
        .await;
}

/// Waits until the Secret holds `refresh_token`, then long enough for a loop to show, and
/// checks that the provider saw no request with it.
async fn settles_on(s: &Scenario, refresh_token: &str) {
    wait_for(&s.apis.3, SECRET, "the rotated refresh token", |secret| {
        secret_text(secret, "refresh_token").as_deref() == Some(refresh_token)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = s
        .provider
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            String::from_utf8_lossy(&r.body).contains(&format!("refresh_token={refresh_token}"))
        })
        .count();
    assert_eq!(used, 0, "the new tokens are fresh: no refresh with them");
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_even_when_its_response_cannot_be_mapped() {
    let s = Scenario::start_with(
        expired(),
        json!({"credentialsFromRefreshResponse": {"portal": "{{ response.hub_id }}"}}),
    )
    .await;
    // The scheduled refresh's response has no hub_id, so the mapping cannot render.
    refresh_twice(&s, json!({"hub_id": 4242})).await;
    s.connect().await;
    settles_on(&s, "rt-3").await;
    assert_eq!(s.stored("access_token").await.as_deref(), Some("at-3"));
    let refused = s.event_reasons().await;
    assert!(
        refused.iter().any(|r| r == "InvalidTemplate"),
        "the mapping's failure is reported: {refused:?}"
    );
    s.provider.verify().await;
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn tokens_whose_test_fails_are_kept_and_not_refreshed_again_at_once() {
    let s = Scenario::start(expired()).await;
    refresh_twice(&s, json!({})).await;
    // The provider's API is down for the new token.
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(wiremock::matchers::header("authorization", "Bearer at-3"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&s.provider)
        .await;
    s.connect().await;
    settles_on(&s, "rt-3").await;
    let conn = s.apis.2.get(CONN).await.unwrap();
    assert_eq!(ready(&conn).unwrap().1, "ProviderUnavailable");
    s.provider.verify().await;
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn rotated_tokens_the_api_server_refuses_to_store_are_stored_once_it_accepts() {
    let s = Scenario::start(expired()).await;
    // An immutable Secret refuses every write, as the API server would refuse one in a fault.
    s.apis
        .3
        .patch(
            SECRET,
            &PatchParams::default(),
            &Patch::Merge(json!({"immutable": true})),
        )
        .await
        .unwrap();
    refresh_with("rt-1")
        .respond_with(token("at-2", Some("rt-2")))
        .expect(1)
        .mount(&s.provider)
        .await;
    s.connect().await;
    s.wait_for_token_requests(1).await;
    // Status says why, in the API server's words, and never with the tokens kept.
    let conn = wait_for(&s.apis.2, CONN, "CredentialsNotStored", |c| {
        is_ready_with(c, "False", "CredentialsNotStored")
    })
    .await;
    let message = condition(&conn, "Ready").unwrap().message.clone();
    assert!(
        message.contains("refused to store the credentials") && message.contains("422"),
        "{message}"
    );
    let text = serde_json::to_string(&conn.status).unwrap();
    assert!(!text.contains("rt-2") && !text.contains("at-2"), "{text}");
    assert_eq!(condition(&conn, "Reconciling").unwrap().status, "True");
    assert!(
        s.event_reasons()
            .await
            .contains(&"TokensKeptInMemory".to_owned()),
        "a Warning says the tokens wait in memory"
    );
    assert_eq!(s.stored("refresh_token").await.as_deref(), Some("rt-1"));
    // The administrator removes the stuck Secret; the kept tokens are stored, not lost.
    s.apis.3.delete(SECRET, &Default::default()).await.unwrap();
    wait_for(&s.apis.2, CONN, "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    assert_eq!(s.stored("refresh_token").await.as_deref(), Some("rt-2"));
    assert_eq!(s.stored("access_token").await.as_deref(), Some("at-2"));
    s.provider.verify().await;
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_provider_quoting_the_refresh_token_and_client_secret_has_both_redacted() {
    let tokens = json!({"access_token": "at-quoted-0123456789", "refresh_token": "rt-quoted-0123456789", "token_type": "bearer", "expires_at": "2020-01-01T00:00:00Z"});
    let s = Scenario::start(tokens).await;
    let quoted = json!({"error": "invalid_grant",
        "error_description": "refresh token rt-quoted-0123456789 of client app-secret-0123456789 expired"});
    refresh_with("rt-quoted-0123456789")
        .respond_with(ResponseTemplate::new(400).set_body_json(quoted))
        .mount(&s.provider)
        .await;
    s.connect().await;
    let conn = wait_for(&s.apis.2, CONN, "TokenRevoked", |c| {
        is_ready_with(c, "False", "TokenRevoked")
    })
    .await;
    let text = serde_json::to_string(&conn.status).unwrap();
    assert!(text.contains("[redacted]"), "{text}");
    for secret in ["rt-quoted-0123456789", "app-secret-0123456789"] {
        assert!(!text.contains(secret), "status quotes {secret}: {text}");
    }
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn an_expired_token_without_refresh_needs_a_person_again() {
    let no_refresh = json!({"access_token": "at-1", "token_type": "bearer", "expires_at": "2020-01-01T00:00:00Z"});
    let s = Scenario::start_with(no_refresh, json!({"noRefreshToken": true})).await;
    s.connect().await;
    let conn = wait_for(&s.apis.2, CONN, "AuthorizationRequired", |c| {
        is_ready_with(c, "False", "AuthorizationRequired")
    })
    .await;
    assert_eq!(
        conn.status.as_ref().unwrap().state,
        Some(ConnectionState::AuthorizationRequired)
    );
    assert!(conn.status.as_ref().unwrap().authorization_url.is_some());
    assert!(
        s.provider
            .received_requests()
            .await
            .unwrap()
            .iter()
            .all(|r| r.url.path() != "/token"),
        "no refresh attempted"
    );
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_token_without_refresh_token_is_used_until_it_expires_then_needs_a_person() {
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    let expires = Timestamp::now()
        .checked_add(SignedDuration::from_secs(20))
        .unwrap();
    let s = Scenario::start(json!({"access_token": "at-1", "token_type": "bearer",
        "expires_at": expires.to_string()}))
    .await;
    s.connect().await;
    wait_for(&s.apis.2, CONN, "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    // Past the usual refresh margin (at least two fifths of the life left), before expiry.
    let look = expires.checked_sub(SignedDuration::from_secs(3)).unwrap();
    let wait = look.duration_since(Timestamp::now());
    assert!(wait.is_positive(), "the setup took too long to test this");
    tokio::time::sleep(wait.unsigned_abs()).await;
    let conn = s.apis.2.get(CONN).await.unwrap();
    assert_eq!(
        ready(&conn).unwrap().1,
        "Connected",
        "still valid, so still in use"
    );
    let conn = wait_for(&s.apis.2, CONN, "AuthorizationRequired", |c| {
        is_ready_with(c, "False", "AuthorizationRequired")
    })
    .await;
    let changed = condition(&conn, "Ready").unwrap().last_transition_time.0;
    // lastTransitionTime has whole seconds.
    assert!(
        changed.as_second() >= expires.as_second(),
        "not before it expired: {changed} < {expires}"
    );
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_response_without_a_refresh_token_keeps_the_old_one() {
    let s = Scenario::start(expired()).await;
    refresh_with("rt-1")
        .respond_with(token("at-2", None))
        .mount(&s.provider)
        .await;
    s.connect().await;
    wait_for(&s.apis.2, CONN, "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    assert_eq!(s.stored("access_token").await.as_deref(), Some("at-2"));
    assert_eq!(
        s.stored("refresh_token").await.as_deref(),
        Some("rt-1"),
        "nothing lost"
    );
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn invalid_grant_after_a_concurrent_rotation_uses_the_rotated_token() {
    let s = Scenario::start(expired()).await;
    // rt-1 is refused slowly; meanwhile another writer stores rt-2.
    refresh_with("rt-1")
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant"}))
                .set_delay(Duration::from_millis(800)),
        )
        .mount(&s.provider)
        .await;
    refresh_with("rt-2")
        .respond_with(token("at-3", Some("rt-3")))
        .expect(1)
        .mount(&s.provider)
        .await;
    s.connect().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.apis
        .3
        .patch(
            SECRET,
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"refresh_token": "rt-2", "access_token": "at-2"}})),
        )
        .await
        .unwrap();
    wait_for(&s.apis.2, CONN, "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    wait_for(&s.apis.3, SECRET, "the newest tokens", |sec| {
        secret_text(sec, "refresh_token").as_deref() == Some("rt-3")
    })
    .await;
    s.provider.verify().await;
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_revoked_refresh_token_stalls_and_asks_for_authorization_keeping_the_tokens() {
    let s = Scenario::start(expired()).await;
    refresh_with("rt-1")
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "Token has been revoked"}),
        ))
        .mount(&s.provider)
        .await;
    s.connect().await;
    let conn = wait_for(&s.apis.2, CONN, "TokenRevoked", |c| {
        is_ready_with(c, "False", "TokenRevoked")
    })
    .await;
    assert_eq!(condition(&conn, "Stalled").unwrap().status, "True");
    let status = conn.status.as_ref().unwrap();
    assert_eq!(status.state, Some(ConnectionState::AuthorizationRequired));
    assert!(
        status
            .authorization_url
            .as_deref()
            .is_some_and(|u| u.contains(&format!("/connect/{}/{CONN}/", s.cluster.namespace())))
    );
    assert!(
        condition(&conn, "Ready")
            .unwrap()
            .message
            .contains("Token has been revoked")
    );
    assert_eq!(
        s.stored("refresh_token").await.as_deref(),
        Some("rt-1"),
        "nothing is deleted"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(s.cluster.client(), s.cluster.namespace());
    let warned = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .any(|e| {
            e.reason.as_deref() == Some("TokenRevoked") && e.type_.as_deref() == Some("Warning")
        });
    assert!(warned, "a Warning event says the token was revoked");
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn rate_limiting_keeps_a_valid_token_in_use_and_honours_retry_after() {
    let valid = json!({"access_token": "at-1", "refresh_token": "rt-1", "token_type": "bearer", "expires_at": "2099-01-01T00:00:00Z"});
    let s = Scenario::start(valid).await;
    refresh_with("rt-1")
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .mount(&s.provider)
        .await;
    s.connect().await;
    wait_for(&s.apis.2, CONN, "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    request_refresh(&s.apis.2, CONN, "now").await;
    let conn = wait_for(&s.apis.2, CONN, "a retry is scheduled", |c| {
        c.status.as_ref().and_then(|s| s.retry_attempts) == Some(1)
    })
    .await;
    assert_eq!(
        ready(&conn).unwrap(),
        ("True".to_owned(), "Connected".to_owned()),
        "the valid token stays in use"
    );
    let wait = seconds_until(&conn.status.unwrap().next_retry_at.unwrap());
    assert!(
        wait >= 25,
        "Retry-After 30 s is honoured: next retry in {wait}s"
    );
    assert_eq!(s.stored("access_token").await.as_deref(), Some("at-1"));
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_scheduled_refresh_that_fails_waits_for_its_retry_instead_of_asking_every_second() {
    let s = Scenario::start(expired()).await;
    // The first refresh gives a 12-second token, so the next one falls due within seconds
    // while the token is still valid; that one is refused with a 503 and Retry-After.
    let mut short = json!({"access_token": "at-2", "refresh_token": "rt-2", "token_type": "bearer", "expires_in": 12});
    refresh_with("rt-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(short.take()))
        .mount(&s.provider)
        .await;
    refresh_with("rt-2")
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "30"))
        .mount(&s.provider)
        .await;
    s.connect().await;
    let conn = wait_for(&s.apis.2, CONN, "a retry is scheduled", |c| {
        c.status.as_ref().and_then(|s| s.retry_attempts) == Some(1)
    })
    .await;
    assert_eq!(
        ready(&conn).unwrap().1,
        "Connected",
        "the valid token stays in use"
    );
    // Long enough for a loop to show: the token is still valid for about two seconds.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let refused = s.asked_with("rt-2").await;
    assert_eq!(refused, 1, "asked once, then waits for the retry");
    let status = s.apis.2.get(CONN).await.unwrap().status.unwrap();
    assert_eq!(status.retry_attempts, Some(1));
    let wait = seconds_until(&status.next_retry_at.unwrap());
    assert!(
        wait >= 20,
        "Retry-After 30 s is honoured: next retry in {wait}s"
    );
    assert_eq!(s.stored("refresh_token").await.as_deref(), Some("rt-2"));
    s.cluster.cleanup().await;
}

/// A Retry-After longer than the token's life: once the token has expired, status says so
/// while the refresh still waits for the provider's time.
#[tokio::test]
async fn credentials_that_expire_while_a_refresh_waits_for_retry_after_are_reported_expired() {
    let s = Scenario::start(expired()).await;
    let mut short = json!({"access_token": "at-2", "refresh_token": "rt-2", "token_type": "bearer", "expires_in": 8});
    refresh_with("rt-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(short.take()))
        .mount(&s.provider)
        .await;
    refresh_with("rt-2")
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "60"))
        .mount(&s.provider)
        .await;
    s.connect().await;
    let waiting = wait_for(&s.apis.2, CONN, "a retry is scheduled", |c| {
        c.status.as_ref().and_then(|s| s.retry_attempts) == Some(1)
    })
    .await;
    assert_eq!(ready(&waiting).unwrap().1, "Connected");
    let retry_at = waiting.status.unwrap().next_retry_at.unwrap();
    let conn = wait_for(&s.apis.2, CONN, "CredentialsExpired", |c| {
        is_ready_with(c, "False", "CredentialsExpired")
    })
    .await;
    let status = conn.status.clone().unwrap();
    assert_eq!(
        status.next_retry_at.as_deref(),
        Some(retry_at.as_str()),
        "the retry keeps its time"
    );
    assert_eq!(status.retry_attempts, Some(1));
    assert!(
        seconds_until(&retry_at) > 30,
        "Retry-After 60 s is still honoured"
    );
    let message = condition(&conn, "Ready").unwrap().message.clone();
    assert!(message.contains("retried at"), "{message}");
    let asked = s.asked_with("rt-2").await;
    assert_eq!(asked, 1, "nothing is asked before the provider's time");
    s.cluster.cleanup().await;
}

async fn unavailable_with(answer: ResponseTemplate, expected: &str) {
    let s = Scenario::start(expired()).await;
    refresh_with("rt-1")
        .respond_with(answer)
        .mount(&s.provider)
        .await;
    s.connect().await;
    let conn = wait_for(&s.apis.2, CONN, "ProviderUnavailable", |c| {
        is_ready_with(c, "False", "ProviderUnavailable")
    })
    .await;
    assert_eq!(
        condition(&conn, "Reconciling").unwrap().status,
        "True",
        "retried, not stalled"
    );
    let text = condition(&conn, "Ready").unwrap().message.clone();
    assert!(text.contains(expected), "{text}");
    assert!(!text.contains("at-9"), "no token quoted: {text}");
    assert_eq!(
        s.stored("refresh_token").await.as_deref(),
        Some("rt-1"),
        "nothing lost"
    );
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn server_errors_are_retried_without_losing_the_refresh_token() {
    unavailable_with(
        ResponseTemplate::new(500).set_body_string("at-9 oops"),
        "HTTP 500",
    )
    .await;
}

#[tokio::test]
async fn a_slow_token_endpoint_times_out_as_unavailable() {
    unavailable_with(
        token("at-9", Some("rt-9")).set_delay(PROVIDER_TIMEOUT + Duration::from_secs(2)),
        "timed out",
    )
    .await;
}

#[tokio::test]
async fn malformed_json_is_unavailable_and_not_quoted() {
    let garbage = ResponseTemplate::new(200)
        .insert_header("content-type", "application/json")
        .set_body_string("{\"access_token\": \"at-9\",");
    unavailable_with(garbage, "not a valid token response").await;
}

#[tokio::test]
async fn a_namespaced_connector_cannot_read_an_oauth_app_from_another_namespace() {
    let s = Scenario::start_with(
        expired(),
        json!({"clientSecretRef": {"name": "oauth-app", "namespace": "kube-system"}}),
    )
    .await;
    s.connect().await;
    let conn = wait_for(&s.apis.2, CONN, "InvalidConnector", |c| {
        is_ready_with(c, "False", "InvalidConnector")
    })
    .await;
    let message = &condition(&conn, "Ready").unwrap().message;
    assert!(
        message.contains("only a ClusterConnector may name a Secret in another namespace"),
        "{message}"
    );
    assert!(
        s.provider
            .received_requests()
            .await
            .unwrap()
            .iter()
            .all(|r| r.url.path() != "/token"),
        "nothing was sent"
    );
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_token_endpoint_at_the_metadata_address_is_blocked() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let (connectors, tenants, connections, secrets) = apis(&client, ns);
    let _operator = Operator::start_guarded(client.clone(), ns);
    create(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "oauth-app"},
        "stringData": {"clientId": "plugboard-tests", "clientSecret": "app-secret-0123456789"}}),
    )
    .await;
    create(&secrets, json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": SECRET, "labels": {"app.kubernetes.io/managed-by": "plugboard", "plugboard.dev/connection": CONN}},
        "stringData": expired()})).await;
    create(&connectors, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connector", "metadata": {"name": "hubspot"}, "spec": {
        "auth": {"type": "client-credentials", "tokenUri": "http://169.254.169.254/latest/meta-data/token", "clientSecretRef": {"name": "oauth-app"}},
    }})).await;
    create(&tenants, tenant("acme")).await;
    create(&connections, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": CONN},
        "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"}}})).await;
    let conn = wait_for(&connections, CONN, "BlockedHost", |c| {
        is_ready_with(c, "False", "BlockedHost")
    })
    .await;
    let message = &condition(&conn, "Ready").unwrap().message;
    assert!(
        message.contains("auth.tokenUri") && message.contains("internal address"),
        "{message}"
    );
    cluster.cleanup().await;
}

/// Some providers (the old Azure AD v1 endpoint among them) send `expires_in` as a string:
/// the answer is read, the rotated refresh token stored, the expiry known.
#[tokio::test]
async fn a_token_response_with_expires_in_as_a_string_is_read_and_its_rotation_kept() {
    let s = Scenario::start(expired()).await;
    let body = json!({"access_token": "at-2", "refresh_token": "rt-2", "token_type": "Bearer", "expires_in": "3599", "ext_expires_in": "3599"});
    refresh_with("rt-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(&s.provider)
        .await;
    s.connect().await;
    let conn = wait_for(&s.apis.2, CONN, "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    assert_eq!(s.stored("refresh_token").await.as_deref(), Some("rt-2"));
    assert_eq!(s.stored("access_token").await.as_deref(), Some("at-2"));
    let expires = conn
        .status
        .unwrap()
        .credentials_expire_at
        .expect("an expiry");
    let left = seconds_until(&expires);
    assert!((3500..=3600).contains(&left), "expires in {left}s");
    s.provider.verify().await;
    s.cluster.cleanup().await;
}

/// A 2xx answer that is no token response but carries a refresh token: the provider has
/// rotated it, so it is stored before anything else, and the failure shown.
#[tokio::test]
async fn a_refresh_token_in_an_unreadable_answer_is_stored_and_used_next() {
    let s = Scenario::start(expired()).await;
    let broken = json!({"refresh_token": "rt-2", "token_type": "bearer", "expires_in": "never"});
    refresh_with("rt-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(broken))
        .expect(1)
        .mount(&s.provider)
        .await;
    refresh_with("rt-2")
        .respond_with(token("at-3", Some("rt-3")))
        .mount(&s.provider)
        .await;
    s.connect().await;
    // The salvaged refresh token is spent on the next refresh, not lost.
    s.wait_for_token_requests(2).await;
    let conn = wait_for(&s.apis.2, CONN, "Connected with new tokens", |c| {
        is_ready_with(c, "True", "Connected")
            && c.status
                .as_ref()
                .and_then(|s| s.credentials_expire_at.as_deref())
                > Some("2021-01-01T00:00:00Z")
    })
    .await;
    assert_eq!(s.stored("refresh_token").await.as_deref(), Some("rt-3"));
    assert_eq!(s.stored("access_token").await.as_deref(), Some("at-3"));
    let text = serde_json::to_string(&conn.status).unwrap();
    assert!(!text.contains("rt-2"), "{text}");
    s.provider.verify().await;
    s.cluster.cleanup().await;
}

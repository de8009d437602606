//! Whole-loop tests of a connector-defined refresh (`auth.refresh`): a static API key
//! exchanged for a one-hour session token, which the API client uses. The session API is
//! played by wiremock, which issues a new token per exchange and accepts only the newest.

mod harness;
mod support;

use std::sync::{Arc, Mutex};

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use harness::*;

const KEY: &str = "key_live_0123456789abcdef";

/// The session API's memory: tokens issued, the one it accepts, and what it answers.
#[derive(Default)]
struct Sessions {
    issued: Vec<String>,
    valid: Option<String>,
    malformed: bool,
}

struct Exchange(Arc<Mutex<Sessions>>);

impl Respond for Exchange {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        assert_eq!(body, json!({"scope": "read"}), "the templated JSON body");
        let mut s = self.0.lock().unwrap();
        if s.malformed {
            return ResponseTemplate::new(201).set_body_string("<html>sess-leak</html>");
        }
        let token = format!("sess-{}", s.issued.len() + 1);
        s.issued.push(token.clone());
        s.valid = Some(token.clone());
        // A string, as some providers send it.
        ResponseTemplate::new(201).set_body_json(json!({"token": token, "expires_in": "3600"}))
    }
}

struct Me(Arc<Mutex<Sessions>>);

impl Respond for Me {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let s = self.0.lock().unwrap();
        let given = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match (given, &s.valid) {
            (Some(given), Some(valid)) if given == valid => ResponseTemplate::new(200),
            _ => ResponseTemplate::new(401).set_body_string("session expired"),
        }
    }
}

async fn session_api() -> (MockServer, Arc<Mutex<Sessions>>) {
    let server = MockServer::start().await;
    let sessions = Arc::new(Mutex::new(Sessions::default()));
    Mock::given(method("POST"))
        .and(path("/v1/sessions"))
        .and(header("x-api-key", KEY))
        .respond_with(Exchange(sessions.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/me"))
        .respond_with(Me(sessions.clone()))
        .mount(&server)
        .await;
    (server, sessions)
}

fn connector(api: &str) -> Value {
    json!({
        "apiVersion": "plugboard.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "sessions"},
        "spec": {
            "auth": {
                "type": "static",
                "credentials": {"apiKey": "{{ input.apiKey }}"},
                "refresh": {
                    "uri": format!("{api}/v1/sessions"),
                    "headers": {"X-Api-Key": "{{ credentials.apiKey }}"},
                    "json": {"scope": "read"},
                    "expectStatus": [201],
                },
                "credentialsFromRefreshResponse": {
                    "sessionToken": "{{ response.token }}",
                    "expires_in": "{{ response.expires_in }}",
                },
            },
            "apiClient": {"baseUri": api, "headers": {"Authorization": "Bearer {{ credentials.sessionToken }}"}},
            "test": {"path": "/v1/me"},
        }
    })
}

struct Scene {
    cluster: support::TestCluster,
    all: Apis,
    sessions: Arc<Mutex<Sessions>>,
    _api: MockServer,
    _operator: Operator,
}

impl Scene {
    /// The connector, a Connection through it, and the wait until it is connected.
    async fn connected() -> Self {
        init_logging();
        let cluster = support::TestCluster::start().await;
        let (client, ns) = (cluster.client(), cluster.namespace());
        let (api, sessions) = session_api().await;
        let all = apis(&client, ns);
        let operator = Operator::start(client.clone(), ns);
        let (connectors, tenants, connections, secrets) = &all;
        create(connectors, connector(&api.uri())).await;
        create(tenants, tenant("acme")).await;
        create(secrets, input_secret("acme-sessions", KEY)).await;
        create(connections, connection("acme-sessions", "acme", "sessions")).await;
        wait_for(connections, "acme-sessions", "Connected", |c| {
            is_ready_with(c, "True", "Connected")
        })
        .await;
        Self {
            cluster,
            all,
            sessions,
            _api: api,
            _operator: operator,
        }
    }

    async fn stored(&self, key: &str) -> Option<String> {
        let secret = self.all.3.get("acme-sessions-credentials").await.unwrap();
        secret_text(&secret, key)
    }

    fn issued(&self) -> usize {
        self.sessions.lock().unwrap().issued.len()
    }

    async fn wait_stored(&self, key: &str, value: &str) {
        for _ in 0..300 {
            if self.stored(key).await.as_deref() == Some(value) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{key} never became {value}: {:?}", self.stored(key).await);
    }

    async fn annotate(&self, at: &str) {
        let patch =
            json!({"metadata": {"annotations": {"plugboard.dev/refresh-requested-at": at}}});
        self.all
            .2
            .patch(
                "acme-sessions",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_api_key_is_exchanged_for_a_session_token_which_is_refreshed_and_rotated() {
    let s = Scene::connected().await;
    assert_eq!(s.issued(), 1, "one exchange to connect");
    assert_eq!(s.stored("sessionToken").await.as_deref(), Some("sess-1"));
    assert_eq!(s.stored("apiKey").await.as_deref(), Some(KEY));
    assert!(
        s.stored("expires_in").await.is_none(),
        "the expiry is stored as expires_at"
    );
    let conn = s.all.2.get("acme-sessions").await.unwrap();
    let status = conn.status.unwrap();
    let expires: k8s_openapi::jiff::Timestamp = status
        .credentials_expire_at
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    let left = expires.duration_since(k8s_openapi::jiff::Timestamp::now());
    assert!(left.as_secs() > 3500 && left.as_secs() <= 3600, "{left:?}");
    assert!(status.next_refresh_at.is_some(), "{status:#?}");

    s.annotate("2026-12-03T12:00:00Z").await;
    s.wait_stored("sessionToken", "sess-2").await;
    let conn = wait_for(&s.all.2, "acme-sessions", "the request answered", |c| {
        c.status
            .as_ref()
            .and_then(|s| s.refresh_requested_at.as_deref())
            == Some("2026-12-03T12:00:00Z")
            && is_ready_with(c, "True", "Connected")
    })
    .await;
    assert!(conn.status.unwrap().last_refreshed_at.is_some());
    assert_eq!(s.issued(), 2, "one provider request per refresh");
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_session_the_test_refuses_is_exchanged_again_at_once() {
    let s = Scene::connected().await;
    // The provider ends the session early.
    s.sessions.lock().unwrap().valid = None;
    let patch = json!({"spec": {"connectorParameters": {"region": "eu"}}});
    s.all
        .2
        .patch(
            "acme-sessions",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    s.wait_stored("sessionToken", "sess-2").await;
    wait_for(&s.all.2, "acme-sessions", "Connected again", |c| {
        is_ready_with(c, "True", "Connected")
            && c.status.as_ref().and_then(|s| s.observed_generation) == c.metadata.generation
    })
    .await;
    assert_eq!(s.issued(), 2, "one exchange after the refusal");
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_malformed_answer_keeps_the_stored_session_and_says_why() {
    let s = Scene::connected().await;
    s.sessions.lock().unwrap().malformed = true;
    s.annotate("2026-12-03T13:00:00Z").await;
    let conn = wait_for(&s.all.2, "acme-sessions", "a retry", |c| {
        c.status.as_ref().is_some_and(|s| s.next_retry_at.is_some())
    })
    .await;
    let text = serde_json::to_string(&conn.status).unwrap();
    // The refresh is retried at its backoff while the session still works; its message
    // (unit-tested in src/auth/refresh.rs) goes to the log, and never the answer itself.
    assert!(
        !text.contains("sess-leak"),
        "the answer is never quoted: {text}"
    );
    assert_eq!(
        s.stored("sessionToken").await.as_deref(),
        Some("sess-1"),
        "nothing lost"
    );
    assert!(
        is_ready_with(&conn, "True", "Connected"),
        "the session still works"
    );
    s.cluster.cleanup().await;
}

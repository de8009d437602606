//! Whole-loop tests of OAuth 1.0a Connections against a real OAuth 1.0a provider (Python's
//! oauthlib endpoints, `tests/peers/oauth1_provider.py`), driven through the three-legged
//! flow by an HTTP client that follows redirects by hand (no browser). The provider verifies
//! every signature plugboard makes: of the token requests, of the connector's test request
//! and of its disconnect request.

mod harness;
mod support;

use kube::api::DeleteParams;
use serde_json::{Value, json};

use harness::oauth1_provider::{self as peer, OAuth1Provider};
use harness::*;
use plugboard::api::ConnectionState;

/// The connector `name` against `provider`, signing with `method` as `consumer`.
fn connector(name: &str, provider: &str, method: &str, app: &str) -> Value {
    json!({
        "apiVersion": "plugboard.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {
            "displayName": "Trello-style",
            "auth": {
                "type": "oauth1",
                "requestTokenUri": format!("{provider}/request_token"),
                "authorizeUri": format!("{provider}/authorize"),
                "accessTokenUri": format!("{provider}/access_token"),
                "signatureMethod": method,
                "clientSecretRef": {"name": app},
                "credentialsFromTokenResponse": {"account": "{{ response.screen_name }}"},
            },
            "apiClient": {"baseUri": format!("{provider}/api")},
            "test": {"path": "/me"},
            "disconnect": {"method": "POST", "path": "/disconnect"},
        }
    })
}

fn app(name: &str, key: &str, secret: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {"clientId": key, "clientSecret": secret},
    })
}

fn connection(name: &str, connector: &str) -> Value {
    json!({
        "apiVersion": "plugboard.dev/v1alpha1",
        "kind": "Connection",
        "metadata": {"name": name},
        "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": connector}},
    })
}

/// A cluster, the provider, an operator with its web endpoints, the two OAuth apps (shared
/// secret and RSA key) and the tenant `acme`.
struct Scene {
    cluster: support::TestCluster,
    provider: OAuth1Provider,
    all: Apis,
    _operator: Operator,
    base: String,
}

impl Scene {
    async fn start() -> Self {
        init_logging();
        let cluster = support::TestCluster::start().await;
        let (client, ns) = (cluster.client(), cluster.namespace());
        let provider = OAuth1Provider::start().await;
        let all = apis(&client, ns);
        let (operator, base) = Operator::start_with_web(client.clone(), ns, vec![]).await;
        let (_, tenants, _, secrets) = &all;
        create(
            secrets,
            app("trello-app", peer::CONSUMER_KEY, peer::CONSUMER_SECRET),
        )
        .await;
        let pem = peer::rsa_private_key();
        create(secrets, app("trello-rsa-app", peer::RSA_CONSUMER_KEY, &pem)).await;
        create(tenants, tenant("acme")).await;
        Self {
            cluster,
            provider,
            all,
            _operator: operator,
            base,
        }
    }

    /// Applies a connector signing with `method` and a Connection through it; returns the
    /// Connection's consent link.
    async fn connection(&self, name: &str, method: &str) -> String {
        let (connectors, _, connections, _) = &self.all;
        let app = if method == "RSA-SHA1" {
            "trello-rsa-app"
        } else {
            "trello-app"
        };
        let connector_name = format!("{name}-connector");
        create(
            connectors,
            connector(&connector_name, &self.provider.url, method, app),
        )
        .await;
        create(connections, connection(name, &connector_name)).await;
        let conn = wait_for(connections, name, "AuthorizationRequired", |c| {
            is_ready_with(c, "False", "AuthorizationRequired")
        })
        .await;
        let status = conn.status.unwrap();
        assert_eq!(status.state, Some(ConnectionState::AuthorizationRequired));
        status.authorization_url.expect("a consent link")
    }
}

impl Scene {
    /// A Connection through an HMAC-SHA1 connector, consented and connected: the browser
    /// that went through the flow, and the credentials Secret.
    async fn consented(&self, name: &str) -> (reqwest::Client, k8s_openapi::api::core::v1::Secret) {
        let link = self.connection(name, "HMAC-SHA1").await;
        let browser = browser();
        let callback = approved_callback(&browser, &link, &self.provider.url).await;
        let done = browser.get(&callback).send().await.unwrap();
        assert_eq!(done.status(), 200, "{:?}", done.text().await);
        connected(&self.all, name).await;
        let stored = self
            .all
            .3
            .get(&format!("{name}-credentials"))
            .await
            .unwrap();
        (browser, stored)
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Opens the consent link and lets the provider approve: returns the callback address the
/// provider sends the browser to, not yet followed.
async fn approved_callback(browser: &reqwest::Client, link: &str, provider: &str) -> String {
    let start = browser.get(link).send().await.unwrap();
    assert_eq!(start.status(), 303, "{:?}", start.text().await);
    let authorize = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{provider}/authorize?oauth_token=")),
        "{authorize}"
    );
    let back = browser.get(&authorize).send().await.unwrap();
    assert_eq!(back.status(), 302, "{:?}", back.text().await);
    back.headers()["location"].to_str().unwrap().to_owned()
}

async fn connected(all: &Apis, name: &str) -> plugboard::api::Connection {
    wait_for(&all.2, name, "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await
}

#[tokio::test]
async fn consent_stores_token_credentials_and_the_signed_test_passes() {
    let s = Scene::start().await;
    let (base, ns) = (&s.base, s.cluster.namespace());
    let (_, _, _, secrets) = &s.all;
    let link = s.connection("acme-trello", "HMAC-SHA1").await;
    assert!(
        link.starts_with(&format!("{base}/connect/{ns}/acme-trello/")),
        "{link}"
    );

    let browser = browser();
    let callback = approved_callback(&browser, &link, &s.provider.url).await;
    assert!(
        callback.starts_with(&format!("{base}/oauth/callback?state=")),
        "{callback}"
    );
    assert!(callback.contains("oauth_verifier="), "{callback}");
    // Until the person comes back, the temporary secret waits beside the Connection.
    let pending = secrets.get("acme-trello-oauth1-pending").await.unwrap();
    let owner = &pending.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Connection", "acme-trello")
    );

    let done = browser.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 200, "{:?}", done.text().await);
    assert!(done.text().await.unwrap().contains("is authorized"));

    let conn = connected(&s.all, "acme-trello").await;
    let status = conn.status.unwrap();
    assert!(status.authorization_url.is_none());
    assert!(
        status.credentials_expire_at.is_none(),
        "token credentials do not expire"
    );
    let stored = secrets.get("acme-trello-credentials").await.unwrap();
    for key in [
        "oauth_token",
        "oauth_token_secret",
        "user_id",
        "screen_name",
    ] {
        assert!(secret_text(&stored, key).is_some(), "the Secret has {key}");
    }
    assert_eq!(
        secret_text(&stored, "account"),
        secret_text(&stored, "screen_name"),
        "credentialsFromTokenResponse maps the answer"
    );
    assert!(secret_text(&stored, "oauth_callback_confirmed").is_none());
    let client: Value =
        serde_json::from_str(&secret_text(&stored, "api-client.json").unwrap()).unwrap();
    assert_eq!(
        client["signing"],
        json!({"type": "oauth1", "signatureMethod": "HMAC-SHA1"})
    );
    let token_secret = secret_text(&stored, "oauth_token_secret").unwrap();
    let text = serde_json::to_string(&status).unwrap();
    assert!(!text.contains(&token_secret), "no secret in status");

    // The provider verified the signed test request.
    let state = s.provider.state().await;
    let tests: Vec<&Value> = state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/api/me")
        .collect();
    assert!(
        !tests.is_empty() && tests.iter().all(|r| r["ok"] == true),
        "{state:#}"
    );
    assert!(wait_no_secret(secrets, "acme-trello-oauth1-pending").await);

    // The same state cannot be used twice.
    let replay = browser.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.unwrap().contains("already used"));
    s.cluster.cleanup().await;
}

async fn wait_no_secret(
    secrets: &kube::Api<k8s_openapi::api::core::v1::Secret>,
    name: &str,
) -> bool {
    for _ in 0..100 {
        if secrets.get_opt(name).await.unwrap().is_none() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn rsa_sha1_and_hmac_sha256_sign_what_the_provider_verifies() {
    let s = Scene::start().await;
    let browser = browser();
    for (name, method) in [("acme-rsa", "RSA-SHA1"), ("acme-sha256", "HMAC-SHA256")] {
        let link = s.connection(name, method).await;
        let callback = approved_callback(&browser, &link, &s.provider.url).await;
        let done = browser.get(&callback).send().await.unwrap();
        assert_eq!(done.status(), 200, "{method}: {:?}", done.text().await);
        connected(&s.all, name).await;
    }
    let state = s.provider.state().await;
    for method in ["RSA-SHA1", "HMAC-SHA256"] {
        let verified =
            state["requests"].as_array().unwrap().iter().any(|r| {
                r["path"] == "/api/me" && r["signature_method"] == method && r["ok"] == true
            });
        assert!(verified, "{method}: {state:#}");
    }
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_callback_with_another_token_is_refused_and_stores_nothing() {
    let s = Scene::start().await;
    let (_, _, connections, secrets) = &s.all;
    let link = s.connection("acme-trello", "HMAC-SHA1").await;
    let browser = browser();
    let callback = approved_callback(&browser, &link, &s.provider.url).await;
    let mut forged = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| match k.as_ref() {
            "oauth_token" => (k.into_owned(), "someone-elses-token".to_owned()),
            _ => (k.into_owned(), v.into_owned()),
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let refused = browser.get(forged.as_str()).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("did not obtain"));
    assert!(
        secrets
            .get_opt("acme-trello-credentials")
            .await
            .unwrap()
            .is_none()
    );
    let conn = connections.get("acme-trello").await.unwrap();
    assert!(is_ready_with(&conn, "False", "AuthorizationRequired"));

    // The real callback still completes: the refusal spent nothing.
    let done = browser.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 200, "{:?}", done.text().await);
    connected(&s.all, "acme-trello").await;
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_refused_consumer_is_shown_in_the_providers_words() {
    let s = Scene::start().await;
    let link = s.connection("acme-trello", "HMAC-SHA1").await;
    s.provider
        .control(json!({"request_token_problem": "consumer_key_refused"}))
        .await;
    let page = browser().get(&link).send().await.unwrap();
    assert_eq!(page.status(), 400);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("oauth_problem=consumer_key_refused"),
        "{text}"
    );
    assert!(!text.contains(peer::CONSUMER_SECRET), "{text}");
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_provider_whose_clock_differs_is_signed_for_with_its_own_time() {
    let s = Scene::start().await;
    let link = s.connection("acme-trello", "HMAC-SHA1").await;
    // An hour ahead: every timestamp plugboard signs is refused until it learns the clock.
    s.provider.control(json!({"skew_seconds": 3600})).await;
    let browser = browser();
    let callback = approved_callback(&browser, &link, &s.provider.url).await;
    let done = browser.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 200, "{:?}", done.text().await);
    connected(&s.all, "acme-trello").await;
    let state = s.provider.state().await;
    let refused = state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["problem"] == "timestamp_refused")
        .count();
    // Refused once, at the first request to that host; the retry and everything after it
    // carried the provider's time.
    assert_eq!(refused, 1, "{state:#}");
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn deleting_a_connection_sends_the_signed_disconnect_request() {
    let s = Scene::start().await;
    let connections = &s.all.2;
    let (_, stored) = s.consented("acme-trello").await;
    let token = secret_text(&stored, "oauth_token").unwrap();

    connections
        .delete("acme-trello", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(connections, "acme-trello").await;
    let state = s.provider.state().await;
    let revoked: Vec<&str> = state["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(revoked, [token.as_str()], "{state:#}");
    s.cluster.cleanup().await;
}

/// Signs a request as plugboard does, with the stored token credentials.
fn header(
    stored: &k8s_openapi::api::core::v1::Secret,
    method: &str,
    url: &url::Url,
    nonce: &str,
) -> String {
    use plugboard::api::SignatureMethod::HmacSha1;
    use plugboard::auth::oauth1::client::{Consumer, Signer, Token};
    let app = plugboard::auth::oauth2::App {
        client_id: peer::CONSUMER_KEY.to_owned(),
        client_secret: peer::CONSUMER_SECRET.to_owned().into(),
    };
    let consumer = Consumer::of(&app, HmacSha1).unwrap();
    let token = Token {
        token: secret_text(stored, "oauth_token").unwrap(),
        secret: secret_text(stored, "oauth_token_secret").unwrap().into(),
    };
    let signer = Signer {
        consumer: &consumer,
        method: HmacSha1,
        token: Some(&token),
        extra: vec![],
    };
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    signer.header_at(method, url, &[], now, nonce).unwrap()
}

#[tokio::test]
async fn the_provider_refuses_a_tampered_signature_and_a_replayed_nonce() {
    let s = Scene::start().await;
    let connections = &s.all.2;
    let (browser, stored) = s.consented("acme-trello").await;
    let me = url::Url::parse(&format!("{}/api/me", s.provider.url)).unwrap();
    let send = async |header: &str| {
        let answer = browser
            .get(me.clone())
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    };
    let signed = header(&stored, "GET", &me, "fresh-nonce-0001");
    assert_eq!(
        send(&signed).await.0,
        200,
        "a signature plugboard makes passes"
    );
    let replayed = (401, "oauth_problem=nonce_used".to_owned());
    assert_eq!(send(&signed).await, replayed, "the same nonce twice");
    let other = header(&stored, "GET", &me, "fresh-nonce-0002");
    let tampered = other.replace("oauth_signature=\"", "oauth_signature=\"AAAA");
    let invalid = (401, "oauth_problem=signature_invalid".to_owned());
    assert_eq!(send(&tampered).await, invalid);

    // Revoked at the provider: the next test says a person must authorize again, and the
    // consent link is back in status.
    let disconnect = url::Url::parse(&format!("{}/api/disconnect", s.provider.url)).unwrap();
    let signed = header(&stored, "POST", &disconnect, "fresh-nonce-0003");
    let answer = browser
        .post(disconnect)
        .header("Authorization", signed)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // A changed spec is tested again.
    let patch = json!({"spec": {"connectorParameters": {"board": "roadmap"}}});
    let params = kube::api::PatchParams::default();
    connections
        .patch("acme-trello", &params, &kube::api::Patch::Merge(&patch))
        .await
        .unwrap();
    let conn = wait_for(connections, "acme-trello", "TokenRevoked", |c| {
        is_ready_with(c, "False", "TokenRevoked")
    })
    .await;
    let status = conn.status.unwrap();
    assert!(status.authorization_url.is_some(), "{status:#?}");
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready.message.contains("oauth_problem=token_revoked"),
        "{}",
        ready.message
    );
    s.cluster.cleanup().await;
}

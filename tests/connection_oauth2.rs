//! Whole-loop tests of OAuth 2.0 Connections against `oauth2-mock-server`, a real OAuth 2
//! server: the authorization-code flow with PKCE driven by an HTTP client that follows
//! redirects (no browser), client credentials, refresh on request, and revocation.

mod harness;
mod support;

use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use wiremock::matchers::{header_regex, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use harness::oauth_server::OAuthServer;
use harness::*;
use plugboard::api::ConnectionState;

fn oauth_connector(name: &str, oauth: &str, api: &str, type_: &str) -> serde_json::Value {
    let mut auth = json!({
        "type": type_,
        "tokenUri": format!("{oauth}/token"),
        "revokeUri": format!("{oauth}/revoke"),
        "scopes": ["contacts"],
        "clientSecretRef": {"name": "oauth-app"},
    });
    if type_ == "oauth2" {
        auth["authorizeUri"] = json!(format!("{oauth}/authorize"));
    }
    json!({
        "apiVersion": "plugboard.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {
            "auth": auth,
            "customCredentialsSchema": {"type": "object", "required": ["clientId", "clientSecret"]},
            "apiClient": {"baseUri": api, "headers": {"Authorization": "Bearer {{ credentials.access_token }}"}},
            "test": {"path": "/me"},
        }
    })
}

fn oauth_app() -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "oauth-app"},
        "stringData": {"clientId": "plugboard-tests", "clientSecret": "app-secret-0123456789"},
    })
}

fn hubspot_connection(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "plugboard.dev/v1alpha1",
        "kind": "Connection",
        "metadata": {"name": name},
        "spec": {
            "tenantRef": {"name": "acme"},
            "connectorRef": {"name": "hubspot"},
            "connectorParameters": {"scopes": ["contacts", "deals", "companies"]},
        }
    })
}

/// Creates the OAuth app Secret, the connector, the tenant `acme` and a Connection named
/// `connection` through that connector.
async fn apply_all(apis: &Apis, connector: serde_json::Value, connection: &str) {
    let (connectors, tenants, connections, secrets) = apis;
    let name = connector["metadata"]["name"].as_str().unwrap().to_owned();
    create(secrets, oauth_app()).await;
    create(connectors, connector).await;
    create(tenants, tenant("acme")).await;
    let mut conn = hubspot_connection(connection);
    conn["spec"]["connectorRef"]["name"] = json!(name);
    create(connections, conn).await;
}

async fn api_server() -> MockServer {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header_regex("authorization", "^Bearer .{20,}"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&api)
        .await;
    api
}

/// A cluster, a real OAuth server, the provider's API, and an operator with its web
/// endpoints (redirects allowed to `allow`), with the hubspot connector and the Connection
/// `connection` applied.
struct Scene {
    cluster: support::TestCluster,
    oauth: OAuthServer,
    all: Apis,
    operator: Operator,
    base: String,
    _api: MockServer,
}

impl Scene {
    async fn start(allow: &[&str], connection: &str) -> Self {
        let cluster = support::TestCluster::start().await;
        let (client, ns) = (cluster.client(), cluster.namespace());
        let (oauth, api) = (OAuthServer::start().await, api_server().await);
        let all = apis(&client, ns);
        let allow = allow.iter().map(|a| (*a).to_owned()).collect();
        let (operator, base) = Operator::start_with_web(client.clone(), ns, allow).await;
        let connector = oauth_connector("hubspot", &oauth.url, &api.uri(), "oauth2");
        apply_all(&all, connector, connection).await;
        Self {
            cluster,
            oauth,
            all,
            operator,
            base,
            _api: api,
        }
    }
}

/// Where the first test's consent may send the person on to.
const APP: &str = "https://app.example.com/integrations";

#[tokio::test]
async fn the_authorization_code_flow_connects_a_person_and_stores_the_tokens() {
    let s = Scene::start(&[APP], "acme-hubspot").await;
    let (oauth, base, ns) = (&s.oauth, &s.base, s.cluster.namespace());
    let (_, _, connections, secrets) = &s.all;

    let conn = wait_for(connections, "acme-hubspot", "AuthorizationRequired", |c| {
        is_ready_with(c, "False", "AuthorizationRequired")
    })
    .await;
    let status = conn.status.as_ref().unwrap();
    assert_eq!(status.state, Some(ConnectionState::AuthorizationRequired));
    let link = status
        .authorization_url
        .clone()
        .expect("a link for the person");
    let signature = link
        .strip_prefix(&format!("{base}/connect/{ns}/acme-hubspot/"))
        .unwrap_or_else(|| panic!("{link}"));
    assert!(
        signature.len() >= 43 && !signature.contains('/'),
        "a signed link: {link}"
    );

    // The provider's consent: follow the operator's redirect by hand to read the query.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = follow_to_consent(&browser, &link, &oauth.url, base).await;

    // The provider approves and sends the person back; the callback redirects to the app.
    let back = browser.get(consent.as_str()).send().await.unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&format!("{base}/oauth/callback?")),
        "{callback}"
    );
    let done = browser.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 303, "{:?}", done.text().await);
    let landing = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        landing.starts_with("https://app.example.com/integrations/done?"),
        "{landing}"
    );
    assert!(landing.contains("status=connected"), "{landing}");

    let conn = wait_for(connections, "acme-hubspot", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let status = conn.status.as_ref().unwrap();
    assert!(status.authorization_url.is_none());
    assert!(
        status.credentials_expire_at.is_some() && status.next_refresh_at.is_some(),
        "{status:#?}"
    );
    let stored = secrets.get("acme-hubspot-credentials").await.unwrap();
    for key in [
        "access_token",
        "refresh_token",
        "token_type",
        "expires_at",
        "scope",
        "api-client.json",
    ] {
        assert!(secret_text(&stored, key).is_some(), "the Secret has {key}");
    }

    // The same state cannot be used twice.
    let replay = browser.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.unwrap().contains("already used"));
    let text = serde_json::to_string(&conn.status).unwrap();
    assert!(
        !text.contains(&secret_text(&stored, "access_token").unwrap()),
        "no token in status"
    );
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn a_connection_whose_name_is_too_long_for_a_label_value_completes_the_flow() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let (oauth, api) = (OAuthServer::start().await, api_server().await);
    let all = apis(&client, ns);
    let (_, _, connections, secrets) = &all;
    let allow = vec!["https://app.example.com/integrations".to_owned()];
    let (_operator, base) = Operator::start_with_web(client.clone(), ns, allow).await;
    // Over the 63 characters of a label value: the callback's write of the tokens labels the
    // credentials Secret with its Connection too.
    let name = format!("acme-hubspot-{}", "sales-pipeline-emea".repeat(3));
    let connector = oauth_connector("hubspot", &oauth.url, &api.uri(), "oauth2");
    apply_all(&all, connector, &name).await;
    let conn = wait_for(connections, &name, "AuthorizationRequired", |c| {
        is_ready_with(c, "False", "AuthorizationRequired")
    })
    .await;
    let link = conn.status.unwrap().authorization_url.unwrap();

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = follow_to_consent(&browser, &link, &oauth.url, &base).await;
    let back = browser.get(consent.as_str()).send().await.unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    let done = browser.get(&callback).send().await.unwrap();
    let landing = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(landing.contains("status=connected"), "{landing}");
    wait_for(connections, &name, "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let stored = secrets.get(&format!("{name}-credentials")).await.unwrap();
    assert!(secret_text(&stored, "refresh_token").is_some());
    let label = &stored.metadata.labels.unwrap()["plugboard.dev/connection"];
    assert!(
        label.len() <= 63 && name.starts_with(&label[..label.len() - 11]),
        "{label}"
    );
    cluster.cleanup().await;
}

/// Opens the Connection's link as a person's browser does and checks where the operator sends
/// it: the provider's consent page, asking for the connector's scopes with PKCE.
async fn follow_to_consent(
    browser: &reqwest::Client,
    link: &str,
    oauth_url: &str,
    base: &str,
) -> url::Url {
    let start = browser
        .get(format!(
            "{link}?redirectUri=https://app.example.com/integrations/done"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 303, "redirects to the provider");
    let consent = url::Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    let query: std::collections::HashMap<_, _> = consent.query_pairs().into_owned().collect();
    assert!(
        consent
            .as_str()
            .starts_with(&format!("{}/authorize", oauth_url))
    );
    assert_eq!(
        query["scope"], "contacts deals companies",
        "connectorParameters override the scopes"
    );
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], format!("{base}/oauth/callback"));
    assert_eq!(query["client_id"], "plugboard-tests");
    consent
}

#[tokio::test]
async fn a_bad_or_foreign_state_and_an_unlisted_redirect_are_refused_with_a_page() {
    let s = Scene::start(&[], "acme-hubspot").await;
    let (operator, base, ns) = (&s.operator, &s.base, s.cluster.namespace());
    let (_, _, connections, _) = &s.all;
    let link = link_of(connections, "acme-hubspot").await;

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let forged = browser
        .get(format!(
            "{base}/oauth/callback?code=x&state=eyJucyI6ImFjbWUifQ.AAAA"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .contains("not issued by this operator")
    );
    let garbage = browser
        .get(format!("{base}/oauth/callback?code=x&state=<script>"))
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    assert!(!garbage.text().await.unwrap().contains("<script>"));
    // A state this operator signed, for this very Connection, but a minute past expiry.
    let conn = connections.get("acme-hubspot").await.unwrap();
    let key = plugboard::auth::state::StateKey::new(operator.state_key.unwrap().to_vec()).unwrap();
    let stale = key.sign(&plugboard::auth::state::Claims {
        ns: ns.to_owned(),
        name: "acme-hubspot".into(),
        uid: conn.metadata.uid.clone().unwrap(),
        exp: k8s_openapi::jiff::Timestamp::now().as_second() - 60,
        nonce: plugboard::auth::state::nonce(),
        redirect: None,
        session: None,
    });
    let expired = browser
        .get(format!("{base}/oauth/callback?code=x&state={stale}"))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 400);
    assert!(expired.text().await.unwrap().contains("expired"));
    let unlisted = browser
        .get(format!("{link}?redirectUri=https://evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(unlisted.status(), 400);
    assert!(unlisted.text().await.unwrap().contains("allowlist"));
    s.cluster.cleanup().await;
}

/// Waits until the Connection asks for authorization and returns the link its status shows.
async fn link_of(connections: &kube::Api<plugboard::api::Connection>, name: &str) -> String {
    let conn = wait_for(connections, name, "AuthorizationRequired", |c| {
        is_ready_with(c, "False", "AuthorizationRequired")
    })
    .await;
    conn.status
        .and_then(|s| s.authorization_url)
        .expect("a link for the person")
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_guessed_forged_or_borrowed_consent_link_is_refused_with_a_page() {
    let s = Scene::start(&[], "acme-hubspot").await;
    let (base, ns) = (&s.base, s.cluster.namespace());
    let (_, _, connections, _) = &s.all;
    create(connections, hubspot_connection("globex-hubspot")).await;
    let mine = link_of(connections, "acme-hubspot").await;
    let theirs = link_of(connections, "globex-hubspot").await;
    let browser = browser();
    // What a refused link shows: a page that says where the valid link is, and no redirect.
    let refused = async |what: &str, link: String, quoting: &[&str]| {
        let answer = browser.get(&link).send().await.unwrap();
        assert_eq!(answer.status(), 403, "{what}: {link}");
        assert!(answer.headers().get("location").is_none(), "{what}");
        let page = answer.text().await.unwrap();
        assert!(
            page.contains("not valid") && page.contains("status.authorizationUrl"),
            "{what}: {page}"
        );
        for secret in quoting {
            assert!(!page.contains(secret), "{what}: {page}");
        }
    };
    // The name is all one needs to guess: `<tenant>-<connector>`.
    let guessed = format!("{base}/connect/{ns}/globex-hubspot");
    refused("guessed", guessed, &[]).await;

    let signature_of = |link: &str| link.rsplit('/').next().unwrap().to_owned();
    let (my_signature, their_signature) = (signature_of(&mine), signature_of(&theirs));
    assert_ne!(my_signature, their_signature);
    let quoting = [my_signature.as_str(), their_signature.as_str()];
    let forged = format!("{base}/connect/{ns}/globex-hubspot/{}", "A".repeat(43));
    refused("forged", forged, &quoting).await;
    let borrowed = format!("{base}/connect/{ns}/globex-hubspot/{my_signature}");
    refused("borrowed from another Connection", borrowed, &quoting).await;
    let nobody = format!("{base}/connect/{ns}/nobody-hubspot/{my_signature}");
    refused("for no Connection", nobody, &quoting).await;

    // The link in the Connection's own status starts its consent.
    let start = browser.get(&theirs).send().await.unwrap();
    assert_eq!(start.status(), 303);
    let location = start.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{}/authorize?", s.oauth.url)),
        "{location}"
    );
    s.cluster.cleanup().await;
}

/// Opens a consent link, lets the provider approve, and returns the callback address the
/// provider sends the browser to (not yet followed).
async fn approved_callback(browser: &reqwest::Client, link: &str) -> String {
    let start = browser.get(link).send().await.unwrap();
    assert_eq!(start.status(), 303, "{:?}", start.text().await);
    let consent = start.headers()["location"].to_str().unwrap().to_owned();
    let back = browser.get(&consent).send().await.unwrap();
    back.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_completed_flow_cannot_be_replayed_after_a_later_flow_completed() {
    let s = Scene::start(&[], "acme-hubspot").await;
    let (_, _, connections, secrets) = &s.all;
    let link = link_of(connections, "acme-hubspot").await;
    let browser = browser();
    // Two flows started from the same link, say in two tabs; both are approved.
    let first = approved_callback(&browser, &link).await;
    let second = approved_callback(&browser, &link).await;
    for callback in [&first, &second] {
        let done = browser.get(callback).send().await.unwrap();
        assert_eq!(done.status(), 200, "{:?}", done.text().await);
        // The controller tests and rewrites the stored tokens' Secret next; a callback
        // racing that write is refused as a conflict, which is not what this test is about.
        wait_for(connections, "acme-hubspot", "Connected", |c| {
            is_ready_with(c, "True", "Connected")
        })
        .await;
    }
    let stored = || async {
        let secret = secrets.get("acme-hubspot-credentials").await.unwrap();
        secret_text(&secret, "access_token").unwrap()
    };
    let tokens = stored().await;

    for (what, callback) in [("the first", &first), ("the second", &second)] {
        let replay = browser.get(callback).send().await.unwrap();
        let status = replay.status();
        let page = replay.text().await.unwrap();
        assert_eq!(status, 400, "{what} flow replayed: {page}");
        assert!(page.contains("already used"), "{what}: {page}");
    }
    assert_eq!(stored().await, tokens, "the stored tokens are untouched");
    s.cluster.cleanup().await;
}

#[tokio::test]
async fn client_credentials_connect_without_a_person_and_refresh_on_request() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let (oauth, api) = (OAuthServer::start().await, api_server().await);
    let all = apis(&client, ns);
    let (_, _, connections, secrets) = &all;
    let _operator = Operator::start(client.clone(), ns);
    apply_all(
        &all,
        oauth_connector("paypal", &oauth.url, &api.uri(), "client-credentials"),
        "acme-paypal",
    )
    .await;

    let conn = wait_for(connections, "acme-paypal", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let first = conn
        .status
        .as_ref()
        .unwrap()
        .last_refreshed_at
        .clone()
        .expect("lastRefreshedAt");
    let token = secret_text(
        &secrets.get("acme-paypal-credentials").await.unwrap(),
        "access_token",
    )
    .unwrap();

    // The mock server's tokens are JWTs with second-precision times: let a second pass so a
    // new token differs from the old one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    request_refresh(connections, "acme-paypal", "2026-11-23T10:00:00Z").await;
    let conn = wait_for(connections, "acme-paypal", "the refresh is echoed", |c| {
        refresh_echoed(c, "2026-11-23T10:00:00Z")
    })
    .await;
    assert_ne!(
        conn.status.as_ref().unwrap().last_refreshed_at.as_ref(),
        Some(&first)
    );
    let refreshed = secret_text(
        &secrets.get("acme-paypal-credentials").await.unwrap(),
        "access_token",
    )
    .unwrap();
    assert_ne!(refreshed, token, "a new token was stored");
    cluster.cleanup().await;
}

#[tokio::test]
async fn deleting_an_oauth_connection_revokes_its_tokens() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let api = api_server().await;
    // wiremock plays the token and revocation endpoints here, to count the revocations.
    let provider = MockServer::start().await;
    Mock::given(method("POST")).and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "at-0123456789abcdefghij", "token_type": "bearer", "expires_in": 3600})))
        .mount(&provider).await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&provider)
        .await;
    let all = apis(&client, ns);
    let (_, _, connections, _) = &all;
    let _operator = Operator::start(client.clone(), ns);
    apply_all(
        &all,
        oauth_connector("paypal", &provider.uri(), &api.uri(), "client-credentials"),
        "acme-paypal",
    )
    .await;
    wait_for(connections, "acme-paypal", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;

    connections
        .delete("acme-paypal", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(connections, "acme-paypal").await;
    provider.verify().await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_flow_started_before_an_operator_restart_completes_after_it() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let (oauth, api) = (OAuthServer::start().await, api_server().await);
    let all = apis(&client, ns);
    let (_, _, connections, _) = &all;
    let key: [u8; 32] = rand::random();
    let (first, base) =
        Operator::start_with_web_at(client.clone(), ns, vec![], "127.0.0.1:0", key).await;
    apply_all(
        &all,
        oauth_connector("hubspot", &oauth.url, &api.uri(), "oauth2"),
        "acme-hubspot",
    )
    .await;
    let link = link_of(connections, "acme-hubspot").await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = browser.get(&link).send().await.unwrap();
    let consent = consent.headers()["location"].to_str().unwrap().to_owned();
    let back = browser.get(&consent).send().await.unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_owned();

    // The operator restarts between consent and callback: nothing of the flow was in memory.
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let address = base.trim_start_matches("http://").to_owned();
    let (_second, _) = Operator::start_with_web_at(client.clone(), ns, vec![], &address, key).await;
    let done = browser.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 200, "{:?}", done.text().await);
    wait_for(connections, "acme-hubspot", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_changed_oauth_app_secret_is_used_for_the_next_token_request() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let api = api_server().await;
    let provider = MockServer::start().await;
    let answer = json!({"access_token": "at-0123456789abcdefghij", "token_type": "bearer", "expires_in": 3600});
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(wiremock::matchers::body_string_contains(
            "client_secret=app-secret-0123456789",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer.clone()))
        .expect(1)
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(wiremock::matchers::body_string_contains(
            "client_secret=rotated-secret-987654321",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(&provider)
        .await;
    let (connectors, tenants, connections, secrets) = apis(&client, ns);
    let _operator = Operator::start(client.clone(), ns);
    create(&secrets, oauth_app()).await;
    let mut connector =
        oauth_connector("paypal", &provider.uri(), &api.uri(), "client-credentials");
    connector["spec"]["auth"]["clientAuth"] = json!("body");
    create(&connectors, connector).await;
    create(&tenants, tenant("acme")).await;
    let mut conn = hubspot_connection("acme-paypal");
    conn["spec"]["connectorRef"]["name"] = json!("paypal");
    create(&connections, conn).await;
    wait_for(&connections, "acme-paypal", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;

    secrets
        .patch(
            "oauth-app",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"clientSecret": "rotated-secret-987654321"}})),
        )
        .await
        .unwrap();
    request_refresh(&connections, "acme-paypal", "after-rotation").await;
    wait_for(
        &connections,
        "acme-paypal",
        "refreshed with the new secret",
        |c| refresh_echoed(c, "after-rotation") && is_ready_with(c, "True", "Connected"),
    )
    .await;
    provider.verify().await;
    cluster.cleanup().await;
}

/// Consent goes through the reconcile's own gather: what it finds wrong with the Connection
/// is the person's to fix (here a Tenant that does not exist yet), a 4xx page saying so, not
/// a 502 as if the provider had failed.
#[tokio::test]
async fn a_consent_link_for_a_connection_without_its_tenant_answers_4xx_naming_the_tenant() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let (oauth, api) = (OAuthServer::start().await, api_server().await);
    let (connectors, _, connections, secrets) = &apis(&client, ns);
    let key: [u8; 32] = rand::random();
    let (_operator, base) =
        Operator::start_with_web_at(client.clone(), ns, Vec::new(), "127.0.0.1:0", key).await;
    create(secrets, oauth_app()).await;
    create(
        connectors,
        oauth_connector("hubspot", &oauth.url, &api.uri(), "oauth2"),
    )
    .await;
    let mut conn = hubspot_connection("globex-hubspot");
    conn["spec"]["tenantRef"]["name"] = json!("globex");
    create(connections, conn).await;
    let conn = wait_for(connections, "globex-hubspot", "TenantNotFound", |c| {
        is_ready_with(c, "False", "TenantNotFound")
    })
    .await;
    // The link status would show once the Tenant exists, signed as the operator signs it.
    let key = plugboard::auth::state::StateKey::new(key.to_vec()).unwrap();
    let link = plugboard::auth::link::connect_link(Some(&base), Some(&key), &conn).unwrap();

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = browser.get(&link).send().await.unwrap();
    let status = answer.status().as_u16();
    let page = answer.text().await.unwrap();
    assert!((400..500).contains(&status), "{status}: {page}");
    assert!(
        page.contains("Tenant &quot;globex&quot; not found"),
        "{page}"
    );
    cluster.cleanup().await;
}

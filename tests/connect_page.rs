//! The hosted connect page as a person uses it, in a real browser (Debian's chromium, headless,
//! driven by playwright-core from `tests/browser/drive.mjs`): a form filled in and corrected,
//! an auth option chosen, an OAuth 2 consent at `oauth2-mock-server`, the popup that answers
//! `plugboard.connect()`'s promise in the app's page, an expired session, a forged CSRF token,
//! and a reconnect. `POST /connect/sessions`' refusals are checked over plain HTTP.
//!
//! Screenshots of the form, an error and the result go to `target/browser-artifacts/`.

mod harness;
mod support;

use std::path::PathBuf;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use harness::oauth_server::OAuthServer;
use harness::*;
use kube::ResourceExt;
use plugboard::auth::access_token::Workspace;

const WORKSPACE_KEY: &str = "ws-connect-page";
const WORKSPACE_SECRET: &[u8] = b"workspace-secret-for-the-page-0123456789";
const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const NEW_KEY: &str = "sk_test_rotated_9f8e7d6c5b4a";
/// Well-formed, but the provider refuses it.
const REFUSED_KEY: &str = "sk_test_revoked_000000000000";
/// Not what the connector's inputSchema allows (`^sk_`).
const MALFORMED_KEY: &str = "pk_live_MistypedKey12345";

fn token(claims: Value) -> String {
    let mut claims = claims;
    claims["iss"] = json!(WORKSPACE_KEY);
    claims["exp"] = json!(k8s_openapi::jiff::Timestamp::now().as_second() + 600);
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(WORKSPACE_SECRET),
    )
    .unwrap()
}

struct Scene {
    cluster: support::TestCluster,
    apis: Apis,
    base: String,
    /// The SaaS product's frontend: its page loads `/connect.js`, and its `/done` is where
    /// sessions send people back.
    app: MockServer,
    http: reqwest::Client,
    _operator: Operator,
}

impl Scene {
    async fn start() -> Self {
        let cluster = support::TestCluster::start().await;
        let (client, ns) = (cluster.client(), cluster.namespace().to_owned());
        let provider = provider().await;
        let apis = apis(&client, &ns);
        let mut stripe = static_connector("stripe", &provider.uri());
        stripe["spec"]["inputSchema"]["properties"]["apiKey"]["format"] = json!("password");
        stripe["spec"]["inputSchema"]["properties"]["apiKey"]["title"] = json!("Secret key");
        stripe["spec"]["inputSchema"]["properties"]["apiKey"]["description"] =
            json!("In the Stripe dashboard: Developers → API keys");
        stripe["spec"]["logoUri"] = json!(LOGO);
        create(&apis.0, stripe).await;
        create(&apis.0, multi_auth_connector(&provider.uri())).await;
        let app = MockServer::start().await;
        let workspace =
            Workspace::new(ns.clone(), WORKSPACE_KEY.into(), WORKSPACE_SECRET.to_vec()).unwrap();
        let (operator, base) =
            Operator::start_with_connect_endpoint(client, &ns, vec![app.uri()], workspace).await;
        serve_app(&app, &base).await;
        // The provider's mock lives as long as the scene: its requests are answered in the
        // background.
        std::mem::forget(provider);
        Self {
            cluster,
            apis,
            base,
            app,
            http: reqwest::Client::new(),
            _operator: operator,
        }
    }

    /// A connect session, as the SaaS backend asks for one.
    async fn session(&self, tenant: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/connect/sessions", self.base))
            .bearer_auth(token(json!({"id": tenant, "name": "Globex Corp"})))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn session_url(&self, body: Value) -> (String, String) {
        let (status, answer) = self.session("globex", body).await;
        assert_eq!(status, 201, "{answer}");
        let url = answer["url"].as_str().unwrap().to_owned();
        (url, answer["token"].as_str().unwrap().to_owned())
    }

    async fn ready(&self, name: &str) -> plugboard::api::Connection {
        wait_for(&self.apis.2, name, "Connected", |c| {
            is_ready_with(c, "True", "Connected")
        })
        .await
    }
}

/// A tiny logo, as a data URL: the page's CSP allows images from the operator and data URLs.
const LOGO: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 48 48'%3E%3Crect width='48' height='48' rx='10' fill='%23635bff'/%3E%3C/svg%3E";

/// The provider: accepts KEY and NEW_KEY as bearer keys, and `admin`/`hunter2-password` as
/// basic credentials; refuses anything else.
async fn provider() -> MockServer {
    let provider = MockServer::start().await;
    for key in [KEY, NEW_KEY] {
        Mock::given(method("GET"))
            .and(path("/v1/account"))
            .and(header("authorization", format!("Bearer {key}").as_str()))
            .respond_with(ResponseTemplate::new(200))
            .mount(&provider)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .and(header("x-user", "admin"))
        .and(header("x-password", "hunter2-password"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&provider)
        .await;
    provider
}

/// A connector with two auth options, each with its own input schema.
fn multi_auth_connector(base_uri: &str) -> Value {
    json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connector", "metadata": {"name": "acme-crm"},
    "spec": {
      "displayName": "Acme CRM",
      "options": {
        "apikey": {"type": "static", "title": "API key",
          "credentials": {"apiKey": "{{ input.apiKey }}"},
          "inputSchema": {"type": "object", "required": ["apiKey"],
            "properties": {"apiKey": {"type": "string", "writeOnly": true}}}},
        "basic": {"type": "static", "title": "Username and password",
          "credentials": {"user": "{{ input.username }}", "password": "{{ input.password }}"},
          "inputSchema": {"type": "object", "required": ["username", "password"],
            "properties": {"username": {"type": "string", "title": "Username"},
                           "password": {"type": "string", "format": "password", "title": "Password"},
                           "region": {"enum": ["eu", "us"], "default": "eu", "title": "Region"}}}}
      },
      "apiClient": {"baseUri": base_uri, "headers": {
          "Authorization": "Bearer {{ credentials.apiKey | default('') }}",
          "X-User": "{{ credentials.user | default('') }}",
          "X-Password": "{{ credentials.password | default('') }}"}},
      "test": {"path": "/v1/account", "expectStatus": [200]}
    }})
}

/// The app's page: it loads the operator's `/connect.js` and, on a click, connects with the
/// session token in its address, leaving the promise's outcome in `window.connectResult`.
async fn serve_app(app: &MockServer, operator: &str) {
    let page = format!(
        r#"<!doctype html><html><head><title>App</title><script src="{operator}/connect.js"></script></head>
<body><button id="connect">Connect an account</button><script>
document.getElementById("connect").addEventListener("click", function () {{
  var token = new URLSearchParams(location.search).get("session");
  plugboard.connect({{sessionToken: token, fallback: "none"}})
    .then(function (r) {{ window.connectResult = {{ok: true, status: r.status, connection: r.connection}}; }})
    .catch(function (e) {{ window.connectResult = {{ok: false, name: e.name, code: e.code}}; }});
}});
</script></body></html>"#
    );
    Mock::given(method("GET"))
        .and(path("/app"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(page, "text/html"))
        .mount(app)
        .await;
    Mock::given(method("GET"))
        .and(path("/done"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("<h1>Back in the app</h1>", "text/html"),
        )
        .mount(app)
        .await;
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `steps` in the browser and returns what the `read` and `result` steps recorded.
async fn browse(steps: Value) -> Value {
    let playwright = std::env::var("PLUGBOARD_PLAYWRIGHT").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/tools/playwright/node_modules/playwright-core"
        )
        .to_owned()
    });
    let chromium =
        std::env::var("PLUGBOARD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&playwright).exists() && std::path::Path::new(&chromium).exists(),
        "playwright-core ({playwright}) or chromium ({chromium}) is missing: run scripts/test, which installs both"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/drive.mjs");
    let input = json!({"steps": steps, "artifacts": artifacts()});
    let output = tokio::process::Command::new("node")
        .arg(script)
        .arg(input.to_string())
        .env("PLUGBOARD_PLAYWRIGHT", &playwright)
        .env("PLUGBOARD_CHROMIUM", &chromium)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let answer: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "the browser driver printed no result: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert_eq!(answer["ok"], true, "the browser steps failed: {answer}");
    answer["reads"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_fills_in_the_form_corrects_a_wrong_key_and_is_connected() {
    let scene = Scene::start().await;
    let (url, _) = scene.session_url(json!({"connector": "stripe"})).await;
    let reads = browse(json!([
        {"goto": url}, {"read": "form"}, {"screenshot": "connect-form"},
        {"fill": {"apiKey": MALFORMED_KEY}}, {"submit": true}, {"read": "malformed"},
        {"screenshot": "connect-error"},
        {"fill": {"apiKey": REFUSED_KEY}}, {"submit": true}, {"read": "refused"},
        {"fill": {"apiKey": KEY}}, {"submit": true}, {"read": "connected"},
        {"screenshot": "connect-connected"},
        {"goto": url}, {"read": "again"},
    ]))
    .await;
    let form = &reads["form"];
    assert_eq!(form["heading"], "Connect Stripe");
    assert_eq!(form["fields"]["apiKey"]["type"], "password");
    assert!(
        form["text"].as_str().unwrap().contains("Secret key"),
        "{form}"
    );

    // The schema's complaint, next to the field; the typed key is neither echoed nor kept.
    let malformed = &reads["malformed"];
    assert_eq!(malformed["status"], 422);
    let said = malformed["errors"]["apiKey"].to_string();
    assert!(said.contains("^sk_"), "{malformed}");
    assert!(
        !malformed.to_string().contains(MALFORMED_KEY),
        "{malformed}"
    );
    assert_eq!(malformed["fields"]["apiKey"]["value"], "");

    // The provider's refusal, with the test's reason, and the form to try again.
    let refused = &reads["refused"];
    assert_eq!(refused["status"], 422);
    let general = refused["general"].to_string();
    assert!(
        general.contains("Not connected") && general.contains("401"),
        "{refused}"
    );
    assert!(!refused.to_string().contains(REFUSED_KEY), "{refused}");

    assert_eq!(
        reads["connected"]["heading"], "Connected",
        "{}",
        reads["connected"]
    );
    let conn = scene.ready("globex-stripe").await;
    assert!(!serde_json::to_string(&conn.spec).unwrap().contains(KEY));
    let input = scene.apis.3.get("globex-stripe-input").await.unwrap();
    assert_eq!(secret_text(&input, "apiKey").as_deref(), Some(KEY));

    // A session that connected is spent.
    let again = &reads["again"];
    assert_eq!(again["status"], 410, "{again}");
    assert!(
        again["text"].as_str().unwrap().contains("already used"),
        "{again}"
    );
    scene.cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_auth_connector_asks_which_way_and_shows_that_options_form() {
    let scene = Scene::start().await;
    let done = format!("{}/done", scene.app.uri());
    let (url, _) = scene
        .session_url(json!({"connector": "acme-crm", "redirectUri": done}))
        .await;
    let reads = browse(json!([
        {"goto": url}, {"read": "choose"},
        {"click": "Username and password"}, {"read": "form"},
        {"fill": {"username": "admin", "password": "hunter2-password"}},
        {"select": {"region": "us"}},
        {"submit": true}, {"read": "back"},
    ]))
    .await;
    let choose = reads["choose"]["text"].as_str().unwrap();
    assert!(
        choose.contains("API key") && choose.contains("Username and password"),
        "{choose}"
    );
    let fields = reads["form"]["fields"].as_object().unwrap();
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        ["password", "region", "username"],
        "the basic option's own schema"
    );
    assert_eq!(fields["region"]["value"], "eu", "the schema's default");

    let ns = scene.cluster.namespace();
    let back = reads["back"]["url"].as_str().unwrap();
    assert_eq!(
        back,
        format!("{done}?connection={ns}%2Fglobex-acme-crm&status=connected")
    );
    let conn = scene.ready("globex-acme-crm").await;
    assert_eq!(conn.spec.auth_option_key.as_deref(), Some("basic"));
    let input = scene.apis.3.get("globex-acme-crm-input").await.unwrap();
    assert_eq!(secret_text(&input, "region").as_deref(), Some("us"));
    assert_eq!(
        secret_text(&input, "password").as_deref(),
        Some("hunter2-password")
    );
    scene.cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oauth2_connector_goes_through_the_providers_consent_and_back() {
    let scene = Scene::start().await;
    let oauth = OAuthServer::start().await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&api)
        .await;
    create(
        &scene.apis.3,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "oauth-app"},
        "stringData": {"clientId": "plugboard-tests", "clientSecret": "app-secret-0123456789"}}),
    )
    .await;
    create(&scene.apis.0, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connector", "metadata": {"name": "hubspot"}, "spec": {
        "displayName": "HubSpot",
        "auth": {"type": "oauth2", "authorizeUri": format!("{}/authorize", oauth.url), "tokenUri": format!("{}/token", oauth.url),
                 "scopes": ["contacts"], "clientSecretRef": {"name": "oauth-app"}},
        "apiClient": {"baseUri": api.uri(), "headers": {"Authorization": "Bearer {{ credentials.access_token }}"}},
        "test": {"path": "/me"}}})).await;
    let done = format!("{}/done", scene.app.uri());
    let (url, _) = scene
        .session_url(json!({"connector": "hubspot", "redirectUri": done}))
        .await;
    let reads = browse(json!([
        {"goto": url}, {"read": "form"},
        {"click": "Continue to HubSpot"}, {"read": "back"},
    ]))
    .await;
    assert!(
        reads["form"]["fields"].as_object().unwrap().is_empty(),
        "nothing to type"
    );
    let ns = scene.cluster.namespace();
    assert_eq!(
        reads["back"]["url"],
        format!("{done}?connection={ns}%2Fglobex-hubspot&status=connected")
    );
    let conn = scene.ready("globex-hubspot").await;
    assert!(
        conn.annotations()
            .contains_key("plugboard.dev/connect-session")
    );
    scene.cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_popup_answers_the_apps_promise_and_a_closed_window_or_expired_session_rejects_it() {
    let scene = Scene::start().await;
    let done = format!("{}/done", scene.app.uri());
    let (_, session) = scene
        .session_url(json!({"connector": "stripe", "redirectUri": done}))
        .await;
    let (_, expired) = scene
        .session_url(json!({"connector": "stripe", "expiresIn": 1}))
        .await;
    let (_, closed) = scene
        .session_url(json!({"connector": "stripe", "redirectUri": done}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let app = format!("{}/app", scene.app.uri());
    let reads = browse(json!([
        {"app": {"url": format!("{app}?session={session}"), "click": "Connect an account"}},
        {"read": "popup"},
        {"fill": {"apiKey": KEY}}, {"submit": true},
        {"result": "resolved"},
        {"goto": format!("{app}?session={expired}")}, {"promise": "expired"},
        {"app": {"url": format!("{app}?session={closed}"), "click": "Connect an account"}},
        {"close": true}, {"result": "closed"},
    ]))
    .await;
    assert_eq!(reads["popup"]["heading"], "Connect Stripe");
    let ns = scene.cluster.namespace();
    let resolved = &reads["resolved"];
    assert_eq!(resolved["ok"], true, "{resolved}");
    assert_eq!(resolved["status"], "connected");
    assert_eq!(resolved["connection"], format!("{ns}/globex-stripe"));
    assert_eq!(resolved["popupClosed"], true, "{resolved}");
    let expired = &reads["expired"];
    assert_eq!(
        (&expired["ok"], &expired["code"]),
        (&json!(false), &json!("session_expired")),
        "{expired}"
    );
    let closed = &reads["closed"];
    assert_eq!(
        (&closed["ok"], &closed["code"]),
        (&json!(false), &json!("window_closed")),
        "{closed}"
    );
    scene.ready("globex-stripe").await;
    scene.cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_and_a_forged_form_are_refused_with_a_page() {
    let scene = Scene::start().await;
    let (expired, _) = scene
        .session_url(json!({"connector": "stripe", "expiresIn": 1}))
        .await;
    let (url, _) = scene.session_url(json!({"connector": "stripe"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let reads = browse(json!([
        {"goto": expired}, {"read": "expired"},
        {"goto": url}, {"set": {"selector": "[name=csrf]", "value": "forged-token"}},
        {"fill": {"apiKey": KEY}}, {"submit": true}, {"read": "forged"},
        {"goto": url}, {"read": "intact"},
    ]))
    .await;
    let expired = &reads["expired"];
    assert_eq!(expired["status"], 410);
    assert!(
        expired["text"].as_str().unwrap().contains("has expired"),
        "{expired}"
    );
    let forged = &reads["forged"];
    assert_eq!(forged["status"], 403);
    assert!(
        forged["text"]
            .as_str()
            .unwrap()
            .contains("not sent from the page"),
        "{forged}"
    );
    assert_eq!(reads["intact"]["status"], 200, "the session is still good");
    assert!(
        scene
            .apis
            .2
            .get_opt("globex-stripe")
            .await
            .unwrap()
            .is_none(),
        "a refused form writes nothing"
    );
    // A post from elsewhere, without the browser's cookie, is refused too.
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let posted = scene
        .http
        .post(&url)
        .form(&[("csrf", csrf), ("input.apiKey", KEY)])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 403);
    scene.cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_session_keeps_the_connections_name_and_takes_the_new_key() {
    let scene = Scene::start().await;
    let (url, _) = scene.session_url(json!({"connector": "stripe"})).await;
    browse(json!([{"goto": url}, {"fill": {"apiKey": KEY}}, {"submit": true}])).await;
    let first = scene.ready("globex-stripe").await;
    let (again, _) = scene
        .session_url(json!({"connection": "globex-stripe"}))
        .await;
    let reads = browse(json!([
        {"goto": again}, {"read": "form"},
        {"fill": {"apiKey": NEW_KEY}}, {"submit": true}, {"read": "done"},
    ]))
    .await;
    let text = reads["form"]["text"].as_str().unwrap();
    assert!(text.contains("Reconnecting globex-stripe"), "{text}");
    assert_eq!(reads["done"]["heading"], "Connected", "{}", reads["done"]);
    let conn = scene.ready("globex-stripe").await;
    assert_eq!(conn.metadata.uid, first.metadata.uid, "the same Connection");
    let input = scene.apis.3.get("globex-stripe-input").await.unwrap();
    assert_eq!(secret_text(&input, "apiKey").as_deref(), Some(NEW_KEY));
    // Another tenant cannot reconnect it, and is not told it exists.
    let (status, answer) = scene
        .session("initech", json!({"connection": "globex-stripe"}))
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("unknown_connection"))
    );
    scene.cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_request_is_refused_with_a_field_and_a_fix() {
    let scene = Scene::start().await;
    let elsewhere = "https://evil.example.com/done";
    for (body, status, code, says) in [
        (
            json!({"connector": "nope"}),
            404,
            "unknown_connector",
            "no Connector",
        ),
        (
            json!({"connector": "stripe", "redirectUri": elsewhere}),
            400,
            "invalid_request",
            "allowlist",
        ),
        (
            json!({"connector": "stripe", "connectorParameters": {"environment": "moon"}}),
            422,
            "invalid_session",
            "parametersSchema",
        ),
        (
            json!({"connector": "acme-crm", "authOptionKey": "oauth"}),
            422,
            "invalid_session",
            "valid keys: apikey, basic",
        ),
        (
            json!({"connector": "stripe", "connection": "x"}),
            400,
            "invalid_request",
            "not both",
        ),
        (
            json!({"connector": "stripe", "expiresIn": 0}),
            400,
            "invalid_request",
            "expiresIn",
        ),
        (
            json!({"connector": "stripe", "input": {"apiKey": KEY}}),
            400,
            "invalid_request",
            "unknown field \"input\"",
        ),
    ] {
        let (got, answer) = scene.session("globex", body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"], code, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
        assert!(!message.contains(KEY), "{message}");
    }
    let unsigned = scene
        .http
        .post(format!("{}/connect/sessions", scene.base))
        .json(&json!({"connector": "stripe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    scene.cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_lasts_30_minutes_and_its_page_is_locked_down() {
    let scene = Scene::start().await;
    let (status, answer) = scene
        .session("globex", json!({"connector": "stripe"}))
        .await;
    assert_eq!(status, 201);
    let expires: k8s_openapi::jiff::Timestamp =
        answer["expiresAt"].as_str().unwrap().parse().unwrap();
    let left = expires.as_second() - k8s_openapi::jiff::Timestamp::now().as_second();
    assert!(
        (1790..=1800).contains(&left),
        "30 minutes by default: {left}"
    );
    let page = reqwest::get(answer["url"].as_str().unwrap()).await.unwrap();
    let headers = page.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["set-cookie"].to_str().unwrap().contains("HttpOnly"));
    let script = reqwest::get(format!("{}/connect.js", scene.base))
        .await
        .unwrap();
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.text().await.unwrap().contains("plugboard.connect"));
    scene.cluster.cleanup().await;
}

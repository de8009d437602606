//! `POST /connect`, the backend connection method, as a SaaS backend and a person's browser
//! use it: tenants created on first sight of a token and updated by later ones, Connections
//! reused or added, the redirect allowlist, refused tokens and payloads, and the OAuth 2
//! consent against `oauth2-mock-server`.

mod harness;
mod support;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{header, header_regex, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use harness::oauth_server::OAuthServer;
use harness::*;
use plugboard::api::Tenant;
use plugboard::auth::access_token::Workspace;

const WORKSPACE_KEY: &str = "ws-plugboard-tests";
const WORKSPACE_SECRET: &[u8] = b"workspace-secret-for-tests-0123456789";
const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
/// An API key sent where the payload wants something else.
const MISPLACED: &str = "sk_live_51MisplacedKey0123456789";
const ALLOWED: &str = "https://app.example.com/integrations";

fn now() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

/// A tenant access token as the SaaS backend signs it.
fn token(claims: Value) -> String {
    let mut claims = claims;
    claims["iss"] = json!(WORKSPACE_KEY);
    if claims.get("exp").is_none() {
        claims["exp"] = json!(now() + 600);
    }
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
    provider: MockServer,
    http: reqwest::Client,
    _operator: Operator,
}

impl Scene {
    async fn start() -> Self {
        let cluster = support::TestCluster::start().await;
        let (client, ns) = (cluster.client(), cluster.namespace().to_owned());
        let provider = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/account"))
            .and(header("authorization", format!("Bearer {KEY}").as_str()))
            .respond_with(ResponseTemplate::new(200))
            .mount(&provider)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/account"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&provider)
            .await;
        let apis = apis(&client, &ns);
        create(&apis.0, static_connector("stripe", &provider.uri())).await;
        let workspace =
            Workspace::new(ns.clone(), WORKSPACE_KEY.into(), WORKSPACE_SECRET.to_vec()).unwrap();
        let (operator, base) =
            Operator::start_with_connect_endpoint(client, &ns, vec![ALLOWED.into()], workspace)
                .await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            cluster,
            apis,
            base,
            provider,
            http,
            _operator: operator,
        }
    }

    /// Posts a JSON payload with a bearer token.
    async fn post_json(&self, token: &str, payload: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/connect", self.base))
            .bearer_auth(token)
            .json(&payload)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts the seed's HTML form: `payload` as JSON text, and the token as a form field.
    async fn post_form(&self, token: &str, payload: &Value) -> reqwest::Response {
        let form = [
            ("payload", payload.to_string()),
            ("token", token.to_owned()),
        ];
        self.http
            .post(format!("{}/connect", self.base))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    async fn tenants(&self) -> Vec<Tenant> {
        self.apis.1.list(&Default::default()).await.unwrap().items
    }

    async fn connection_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .apis
            .2
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        names.sort();
        names
    }
}

fn stripe(redirect: Option<&str>) -> Value {
    let mut payload = json!({"integrationId": "stripe", "input": {"apiKey": KEY}});
    if let Some(r) = redirect {
        payload["redirectUri"] = json!(r);
    }
    payload
}

#[tokio::test]
async fn a_form_post_creates_the_tenant_and_connection_and_redirects_back_connected() {
    let scene = Scene::start().await;
    let jwt = token(json!({"id": "globex", "name": "Globex Corp", "fields": {"plan": "pro"}}));
    let response = scene
        .post_form(&jwt, &stripe(Some(&format!("{ALLOWED}/done"))))
        .await;
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let ns = scene.cluster.namespace();
    assert_eq!(
        location,
        format!("{ALLOWED}/done?connection={ns}%2Fglobex-stripe&status=connected")
    );

    let tenant = scene.apis.1.get("globex").await.unwrap();
    assert_eq!(tenant.spec.tenant_id.as_deref(), Some("globex"));
    assert_eq!(tenant.spec.display_name.as_deref(), Some("Globex Corp"));
    assert_eq!(tenant.spec.fields.unwrap().0["plan"], "pro");
    let conn = scene.apis.2.get("globex-stripe").await.unwrap();
    assert!(is_ready_with(&conn, "True", "Connected"));
    // The API key went into a Secret the Connection reads, not into its spec.
    let spec = serde_json::to_string(&conn.spec).unwrap();
    assert!(!spec.contains(KEY), "{spec}");
    let input = scene.apis.3.get("globex-stripe-input").await.unwrap();
    assert_eq!(secret_text(&input, "apiKey").as_deref(), Some(KEY));
    assert_eq!(
        input.metadata.owner_references.unwrap()[0].name,
        "globex-stripe",
        "the input Secret goes with its Connection"
    );
    // Written by server-side apply under the endpoint's own manager, for GitOps to adopt.
    let managers: Vec<String> = conn
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.operation.as_deref() == Some("Apply"))
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"plugboard-connect".to_owned()),
        "{managers:?}"
    );
    let tested = scene
        .provider
        .received_requests()
        .await
        .unwrap()
        .iter()
        .any(|r| r.headers.get("x-tenant").is_some_and(|v| v == "globex"));
    assert!(tested, "the test request ran for the tenant");
    scene.cluster.cleanup().await;
}

#[tokio::test]
async fn a_later_token_updates_the_fields_and_the_connection_is_reused_unless_told_otherwise() {
    let scene = Scene::start().await;
    let first = token(json!({"id": "Jane@Example.com", "fields": {"plan": "free"}}));
    let (status, body) = scene.post_json(&first, stripe(None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "Connected", "{body}");
    assert_eq!(body["ready"], true);
    let tenant_name = body["tenant"].as_str().unwrap().to_owned();
    assert!(
        tenant_name.starts_with("tenant-"),
        "an id that is no object name is digested: {tenant_name}"
    );

    let later =
        token(json!({"id": "Jane@Example.com", "name": "Jane", "fields": {"plan": "enterprise"}}));
    let (status, body) = scene.post_json(&later, stripe(None)).await;
    assert_eq!(status, 200, "{body}");
    let tenants = scene.tenants().await;
    assert_eq!(tenants.len(), 1, "the same tenant, found by its id");
    let tenant = &tenants[0];
    assert_eq!(tenant.spec.tenant_id.as_deref(), Some("Jane@Example.com"));
    assert_eq!(tenant.spec.fields.as_ref().unwrap().0["plan"], "enterprise");
    assert_eq!(tenant.spec.display_name.as_deref(), Some("Jane"));
    let reused = format!("{tenant_name}-stripe");
    assert_eq!(
        scene.connection_names().await,
        vec![reused.clone()],
        "reused"
    );

    let mut another = stripe(None);
    another["allowMultipleConnections"] = json!(true);
    let (status, body) = scene.post_json(&later, another).await;
    assert_eq!(status, 200, "{body}");
    let names = scene.connection_names().await;
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.contains(&reused) && body["connection"] != json!(reused),
        "{names:?} {body}"
    );

    // A token without fields leaves them as they are.
    let bare = token(json!({"id": "Jane@Example.com"}));
    scene.post_json(&bare, stripe(None)).await;
    let tenant = scene.apis.1.get(&tenant_name).await.unwrap();
    assert_eq!(tenant.spec.fields.unwrap().0["plan"], "enterprise");
    scene.cluster.cleanup().await;
}

/// A refused request: what it tries, the tenant token and payload it posts, and the HTTP
/// status, error code and words the refusal must show.
type Refusal = (&'static str, String, Value, u16, &'static str, &'static str);

/// Requests /connect must refuse, each for one reason; `good` is a valid tenant token.
fn refusals(good: &str) -> Vec<Refusal> {
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"iss": WORKSPACE_KEY, "id": "globex", "exp": now() + 600}),
        &EncodingKey::from_secret(b"not-the-workspace-secret-0123456789"),
    )
    .unwrap();
    let expired = token(json!({"id": "globex", "exp": now() - 3600}));
    vec![
        (
            "forged",
            forged,
            stripe(None),
            401,
            "invalid_token",
            "signature",
        ),
        (
            "expired",
            expired,
            stripe(None),
            401,
            "invalid_token",
            "expired",
        ),
        (
            "unknown connector",
            good.to_owned(),
            json!({"connector": "salesforce"}),
            404,
            "unknown_connector",
            "\"salesforce\"",
        ),
        (
            "schema",
            good.to_owned(),
            json!({"connector": "stripe", "input": {"apiKey": "pk_live_short"}}),
            422,
            "invalid_input",
            "/apiKey",
        ),
        (
            "parameters",
            good.to_owned(),
            json!({"connector": "stripe", "input": {"apiKey": KEY}, "connectorParameters": {"environment": "staging"}}),
            422,
            "invalid_parameters",
            "/environment",
        ),
        (
            "a key where the input object goes",
            good.to_owned(),
            json!({"connector": "stripe", "input": MISPLACED}),
            400,
            "invalid_request",
            "input must be an object",
        ),
        (
            "unknown field",
            good.to_owned(),
            json!({"connector": "stripe", "inputs": {}}),
            400,
            "invalid_request",
            "inputs",
        ),
        (
            "redirect",
            good.to_owned(),
            stripe(Some("https://evil.example.net/steal")),
            400,
            "invalid_request",
            "allowlist",
        ),
    ]
}

#[tokio::test]
async fn bad_tokens_payloads_and_redirects_get_a_4xx_naming_the_problem() {
    let scene = Scene::start().await;
    let good = token(json!({"id": "globex"}));
    for (what, jwt, payload, status, code, names) in refusals(&good) {
        let (got, body) = scene.post_json(&jwt, payload).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(names), "{what}: {message}");
        assert!(
            !message.contains("pk_live_short")
                && !message.contains(MISPLACED)
                && !message.contains(&jwt),
            "{what}: {message}"
        );
    }
    let missing = scene
        .http
        .post(format!("{}/connect", scene.base))
        .json(&stripe(None))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    // A form post's refusal is JSON too, and reflects nothing into HTML.
    let html = scene
        .post_form(&good, &json!({"connector": "<script>alert(1)</script>"}))
        .await;
    assert_eq!(html.status(), 400);
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(
        scene.tenants().await.is_empty(),
        "nothing created for refused requests"
    );
    assert!(scene.connection_names().await.is_empty());
    scene.cluster.cleanup().await;
}

/// The Connection's tenant and connector, as its spec references them.
async fn owner_of(scene: &Scene, connection: &str) -> (String, String) {
    let conn = scene.apis.2.get(connection).await.unwrap();
    (conn.spec.tenant_ref.name, conn.spec.connector_ref.name)
}

#[tokio::test]
async fn tenants_and_connectors_whose_names_run_together_keep_their_own_connections() {
    let scene = Scene::start().await;
    for name in ["stripe-eu", "eu"] {
        create(&scene.apis.0, static_connector(name, &scene.provider.uri())).await;
    }
    let acme = token(json!({"id": "acme"}));
    let (status, body) = scene
        .post_json(
            &acme,
            json!({"connector": "stripe-eu", "input": {"apiKey": KEY}}),
        )
        .await;
    assert_eq!(
        (status, &body["state"]),
        (200, &json!("Connected")),
        "{body}"
    );
    assert_eq!(body["connection"], "acme-stripe-eu");

    // Tenant `acme-stripe` with connector `eu` would also be `acme-stripe-eu`.
    let other = token(json!({"id": "acme-stripe"}));
    let (status, body) = scene
        .post_json(&other, json!({"connector": "eu", "input": {"apiKey": KEY}}))
        .await;
    assert_eq!(
        (status, &body["state"]),
        (200, &json!("Connected")),
        "{body}"
    );
    let theirs = body["connection"].as_str().unwrap().to_owned();
    assert_ne!(theirs, "acme-stripe-eu", "{body}");
    assert_eq!(
        owner_of(&scene, "acme-stripe-eu").await,
        ("acme".to_owned(), "stripe-eu".to_owned()),
        "acme's Connection is untouched"
    );
    assert_eq!(
        owner_of(&scene, &theirs).await,
        ("acme-stripe".to_owned(), "eu".to_owned())
    );

    // Each finds its own again.
    let (_, body) = scene
        .post_json(&other, json!({"connector": "eu", "input": {"apiKey": KEY}}))
        .await;
    assert_eq!(body["connection"], json!(theirs), "{body}");
    let (_, body) = scene
        .post_json(
            &acme,
            json!({"connector": "stripe-eu", "input": {"apiKey": KEY}}),
        )
        .await;
    assert_eq!(body["connection"], "acme-stripe-eu", "{body}");
    assert_eq!(scene.connection_names().await.len(), 2);
    scene.cluster.cleanup().await;
}

#[tokio::test]
async fn a_tenant_id_shaped_like_a_digested_name_gets_a_tenant_of_its_own() {
    let scene = Scene::start().await;
    let jane = token(json!({"id": "Jane@Example.com", "fields": {"plan": "pro"}}));
    let (status, body) = scene.post_json(&jane, stripe(None)).await;
    assert_eq!(status, 200, "{body}");
    let janes = body["tenant"].as_str().unwrap().to_owned();
    assert!(janes.starts_with("tenant-"), "{janes}");

    // An id that is literally the name Jane's id was digested to.
    let lookalike = token(json!({"id": janes, "fields": {"plan": "free"}}));
    let (status, body) = scene.post_json(&lookalike, stripe(None)).await;
    assert_eq!(status, 200, "{body}");
    let theirs = body["tenant"].as_str().unwrap().to_owned();
    assert_ne!(theirs, janes, "{body}");

    let jane_tenant = scene.apis.1.get(&janes).await.unwrap();
    assert_eq!(
        jane_tenant.spec.tenant_id.as_deref(),
        Some("Jane@Example.com"),
        "Jane's Tenant keeps her id"
    );
    assert_eq!(jane_tenant.spec.fields.unwrap().0["plan"], "pro");
    let their_tenant = scene.apis.1.get(&theirs).await.unwrap();
    assert_eq!(their_tenant.spec.tenant_id.as_deref(), Some(janes.as_str()));
    assert_eq!(
        owner_of(&scene, &format!("{janes}-stripe")).await.0,
        janes,
        "Jane's Connection stays hers"
    );
    assert_eq!(scene.tenants().await.len(), 2);

    // The look-alike finds its own Tenant again.
    let (_, body) = scene.post_json(&lookalike, stripe(None)).await;
    assert_eq!(body["tenant"], json!(theirs), "{body}");
    scene.cluster.cleanup().await;
}

#[tokio::test]
async fn an_oauth2_connector_sends_the_person_to_consent_and_then_back_to_the_app() {
    let scene = Scene::start().await;
    let oauth = OAuthServer::start().await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header_regex("authorization", "^Bearer .{20,}"))
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
        "auth": {"type": "oauth2", "authorizeUri": format!("{}/authorize", oauth.url), "tokenUri": format!("{}/token", oauth.url),
                 "scopes": ["contacts"], "clientSecretRef": {"name": "oauth-app"}},
        "apiClient": {"baseUri": api.uri(), "headers": {"Authorization": "Bearer {{ credentials.access_token }}"}},
        "test": {"path": "/me"}}})).await;

    let jwt = token(json!({"id": "initech", "name": "Initech"}));
    let payload = json!({"integrationId": "hubspot", "connectorParameters": {"scopes": ["contacts", "deals"]},
        "redirectUri": format!("{ALLOWED}/done")});
    let response = scene.post_form(&jwt, &payload).await;
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let consent = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        consent
            .as_str()
            .starts_with(&format!("{}/authorize", oauth.url)),
        "{consent}"
    );
    let query: std::collections::HashMap<_, _> = consent.query_pairs().into_owned().collect();
    assert_eq!(
        query["scope"], "contacts deals",
        "the payload's connectorParameters"
    );

    // The provider approves; the callback stores the tokens and sends the person back.
    let back = scene.http.get(consent.as_str()).send().await.unwrap();
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    let done = scene.http.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 303);
    let landing = done.headers()["location"].to_str().unwrap();
    assert!(
        landing.starts_with(&format!("{ALLOWED}/done?")) && landing.contains("status=connected"),
        "{landing}"
    );
    wait_for(&scene.apis.2, "initech-hubspot", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    assert_eq!(
        scene
            .apis
            .1
            .get("initech")
            .await
            .unwrap()
            .spec
            .display_name
            .as_deref(),
        Some("Initech")
    );

    // As JSON, the backend gets the consent address to send the person to.
    let (status, body) = scene
        .post_json(
            &jwt,
            json!({"connector": "hubspot", "allowMultipleConnections": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "AuthorizationRequired");
    assert!(
        body["location"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/authorize", oauth.url))
    );
    scene.cluster.cleanup().await;
}

/// Whether `conn` is owned by the Tenant `tenant` (so that it goes with it).
async fn owned_by_tenant(scene: &Scene, connection: &str, tenant: &str) -> bool {
    let conn = scene.apis.2.get(connection).await.unwrap();
    let tenant = scene.apis.1.get(tenant).await.unwrap();
    conn.metadata.owner_references.iter().flatten().any(|o| {
        o.kind == "Tenant" && Some(&o.uid) == tenant.metadata.uid.as_ref() && o.controller.is_none()
    })
}

#[tokio::test]
async fn first_requests_racing_for_one_name_each_get_their_own_connection() {
    let scene = Scene::start().await;
    for name in ["stripe-eu", "eu"] {
        create(&scene.apis.0, static_connector(name, &scene.provider.uri())).await;
    }
    let body = |connector: &str| json!({"connector": connector, "input": {"apiKey": KEY}});
    // One new tenant's two first requests: one Connection, and both are told its name.
    let initech = token(json!({"id": "initech"}));
    let (first, second) = tokio::join!(
        scene.post_json(&initech, body("stripe")),
        scene.post_json(&initech, body("stripe")),
    );
    assert_eq!((first.0, second.0), (200, 200), "{first:?} {second:?}");
    assert_eq!(first.1["connection"], "initech-stripe", "{first:?}");
    assert_eq!(second.1["connection"], "initech-stripe", "{second:?}");
    assert!(owned_by_tenant(&scene, "initech-stripe", "initech").await);

    // Two tenants whose first requests want the same name (`acme` + `stripe-eu`, and
    // `acme-stripe` + `eu`): each gets a Connection of its own, neither a 422.
    let (acme, other) = (
        token(json!({"id": "acme"})),
        token(json!({"id": "acme-stripe"})),
    );
    let (mine, theirs) = tokio::join!(
        scene.post_json(&acme, body("stripe-eu")),
        scene.post_json(&other, body("eu")),
    );
    assert_eq!((mine.0, theirs.0), (200, 200), "{mine:?} {theirs:?}");
    let (mine, theirs) = (
        mine.1["connection"].as_str().unwrap().to_owned(),
        theirs.1["connection"].as_str().unwrap().to_owned(),
    );
    assert_ne!(mine, theirs);
    assert_eq!(
        owner_of(&scene, &mine).await,
        ("acme".to_owned(), "stripe-eu".to_owned())
    );
    assert_eq!(
        owner_of(&scene, &theirs).await,
        ("acme-stripe".to_owned(), "eu".to_owned())
    );
    assert!(owned_by_tenant(&scene, &mine, "acme").await);
    assert!(owned_by_tenant(&scene, &theirs, "acme-stripe").await);
    scene.cluster.cleanup().await;
}

//! Credentials in OpenBao (KV version 2), against OpenBao's real server: stored at the
//! Connection's path under the operator's prefix, written only when something changed,
//! restored when changed or deleted behind the operator's back, revoked and deleted with the
//! Connection (or kept with `deletionPolicy: Retain`), and every store fault in status.

mod harness;
mod support;

use kube::api::DeleteParams;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use harness::oauth_server::OAuthServer;
use harness::openbao::OpenBao;
use harness::*;
use plugboard::api::CredentialsStoreKind;

const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const CONN: &str = "acme-stripe";

struct Scene {
    cluster: support::TestCluster,
    bao: OpenBao,
    provider: MockServer,
    apis: Apis,
    operator: Option<Operator>,
}

impl Scene {
    async fn start() -> Self {
        let cluster = support::TestCluster::start().await;
        let bao = OpenBao::start().await;
        let provider = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/account"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&provider)
            .await;
        Mock::given(method("DELETE"))
            .and(path("/v1/keys/current"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&provider)
            .await;
        let apis = apis(&cluster.client(), cluster.namespace());
        create(&apis.0, static_connector("stripe", &provider.uri())).await;
        create(&apis.1, tenant("acme")).await;
        create(&apis.3, input_secret(CONN, KEY)).await;
        let mut scene = Self {
            cluster,
            bao,
            provider,
            apis,
            operator: None,
        };
        scene.restart(&scene.bao.root_token()).await;
        scene
    }

    /// (Re)starts the operator, logged in to OpenBao with `token`.
    async fn restart(&mut self, token: &str) {
        self.restart_with(self.bao.store(token));
    }

    /// (Re)starts the operator with the store `vault`.
    fn restart_with(&mut self, vault: std::sync::Arc<plugboard::store::vault::VaultStore>) {
        self.operator = None;
        let mut settings = Operator::settings(self.cluster.namespace(), true);
        settings.vault = Some(vault);
        self.operator = Some(Operator::with_settings(self.cluster.client(), settings));
    }

    /// The Connection, storing in vault at `path` (none: the default) with `extra` fields.
    async fn connect(&self, path: Option<&str>, extra: Value) {
        let mut conn = connection(CONN, "acme", "stripe");
        conn["spec"]["credentials"] = json!({"store": "vault"});
        if let Some(path) = path {
            conn["spec"]["credentials"]["path"] = json!(path);
        }
        for (k, v) in extra.as_object().unwrap() {
            conn["spec"]["credentials"][k] = v.clone();
        }
        create(&self.apis.2, conn).await;
    }

    /// Where the default path puts this test's Connection.
    fn path(&self) -> String {
        format!("plugboard/{}/{CONN}", self.cluster.namespace())
    }

    async fn revocations(&self) -> usize {
        let requests = self.provider.received_requests().await.unwrap();
        requests
            .iter()
            .filter(|r| r.method.as_str() == "DELETE")
            .count()
    }
}

async fn connected(scene: &Scene) -> plugboard::api::Connection {
    wait_for(&scene.apis.2, CONN, "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await
}

/// Waits (bounded) until OpenBao holds `apiKey` = `key` at `path`.
async fn stored_key(bao: &OpenBao, path: &str, key: &str) -> u64 {
    for _ in 0..200 {
        if let Some((data, version)) = bao.read(path).await
            && data["apiKey"] == key
        {
            return version;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "OpenBao never held the key at {path}: {:?}",
        bao.read(path).await
    );
}

#[tokio::test]
async fn credentials_go_to_openbao_once_and_come_back_when_changed_or_deleted() {
    let mut scene = Scene::start().await;
    scene.connect(None, json!({})).await;
    let conn = connected(&scene).await;
    let path = scene.path();
    let (data, version) = scene.bao.read(&path).await.expect("stored");
    assert_eq!((data["apiKey"].as_str(), version), (Some(KEY), 1));
    assert!(
        data["api-client.json"]
            .as_str()
            .is_some_and(|c| c.contains("baseUri"))
    );
    let reference = conn.status.unwrap().credentials_ref.unwrap();
    assert_eq!(reference.store, CredentialsStoreKind::Vault);
    assert_eq!(reference.mount.as_deref(), Some("secret"));
    assert_eq!(reference.path.as_deref(), Some(path.as_str()));
    assert_eq!(reference.version, Some(1));
    assert!(
        conn.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "plugboard.dev/credentials"),
        "only the operator can empty the store"
    );

    // A restart reconciles everything again: nothing changed, nothing is written.
    scene.restart(&scene.bao.root_token()).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(scene.bao.current_version(&path).await, 1, "no write");

    // Changed behind the operator's back, then deleted with all its versions: put back by
    // the next reconcile each time.
    scene.bao.write(&path, json!({"apiKey": "tampered"})).await;
    scene.restart(&scene.bao.root_token()).await;
    assert_eq!(stored_key(&scene.bao, &path, KEY).await, 3);
    scene.bao.destroy(&path).await;
    scene.restart(&scene.bao.root_token()).await;
    stored_key(&scene.bao, &path, KEY).await;

    // Deleted: revoked at the provider, then gone from the store with its metadata.
    scene
        .apis
        .2
        .delete(CONN, &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&scene.apis.2, CONN).await;
    assert_eq!(scene.revocations().await, 1);
    assert_eq!(
        scene.bao.current_version(&path).await,
        0,
        "all versions deleted"
    );
    scene.cluster.cleanup().await;
}

#[tokio::test]
async fn retained_credentials_outlive_their_connection_unrevoked() {
    let scene = Scene::start().await;
    let template = "tenants/{{ tenant.name }}/{{ connection.name }}";
    scene
        .connect(Some(template), json!({"deletionPolicy": "Retain"}))
        .await;
    connected(&scene).await;
    let path = format!("plugboard/tenants/acme/{CONN}");
    stored_key(&scene.bao, &path, KEY).await;
    scene
        .apis
        .2
        .delete(CONN, &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&scene.apis.2, CONN).await;
    assert_eq!(scene.revocations().await, 0);
    assert!(scene.bao.read(&path).await.is_some(), "kept");
    scene.cluster.cleanup().await;
}

#[tokio::test]
async fn a_path_that_would_leave_the_prefix_is_refused_naming_the_field() {
    let scene = Scene::start().await;
    scene
        .connect(Some("../{{ connection.name }}"), json!({}))
        .await;
    let conn = wait_for(&scene.apis.2, CONN, "InvalidInput", |c| {
        is_ready_with(c, "False", "InvalidInput")
    })
    .await;
    let message = &condition(&conn, "Ready").unwrap().message;
    assert!(
        message.contains("spec.credentials.path") && message.contains(".."),
        "{message}"
    );
    assert_eq!(condition(&conn, "Stalled").unwrap().status, "True");
    assert_eq!(scene.bao.current_version(CONN).await, 0);
    scene.cluster.cleanup().await;
}

#[tokio::test]
async fn a_forbidden_path_stalls_naming_the_policy_and_a_sealed_store_is_waited_out() {
    let mut scene = Scene::start().await;
    let elsewhere = scene
        .bao
        .token_with_policy(
            "elsewhere",
            r#"path "secret/data/other/*" { capabilities = ["create", "read", "update"] }"#,
        )
        .await;
    scene.restart(&elsewhere).await;
    scene.connect(None, json!({})).await;
    let conn = wait_for(&scene.apis.2, CONN, "StoreForbidden", |c| {
        is_ready_with(c, "False", "StoreForbidden")
    })
    .await;
    let message = &condition(&conn, "Ready").unwrap().message;
    assert!(
        message.contains(&format!("secret/data/{}", scene.path())),
        "{message}"
    );
    assert!(message.contains("policy"), "{message}");
    assert_eq!(condition(&conn, "Stalled").unwrap().status, "True");
    assert!(
        !message.contains(KEY) && !message.contains(&elsewhere),
        "{message}"
    );

    scene.bao.seal().await;
    scene.restart(&scene.bao.root_token()).await;
    let conn = wait_for(&scene.apis.2, CONN, "StoreUnavailable", |c| {
        is_ready_with(c, "False", "StoreUnavailable")
    })
    .await;
    assert!(
        conn.status.as_ref().unwrap().next_retry_at.is_some(),
        "retried"
    );
    scene.bao.unseal().await;
    connected(&scene).await;
    stored_key(&scene.bao, &scene.path(), KEY).await;
    scene.cluster.cleanup().await;
}

#[tokio::test]
async fn a_rotation_that_meets_a_newer_version_is_written_over_it_and_nothing_is_lost() {
    let scene = Scene::start().await;
    let (provider, bao) = (&scene.provider, &scene.bao);
    create(
        &scene.apis.3,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "oauth-app"},
        "stringData": {"clientId": "plugboard-tests", "clientSecret": "app-secret-0123456789"}}),
    )
    .await;
    create(&scene.apis.0, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connector", "metadata": {"name": "hubspot"}, "spec": {
        "auth": {"type": "oauth2", "authorizeUri": format!("{}/authorize", provider.uri()), "tokenUri": format!("{}/token", provider.uri()),
                 "clientSecretRef": {"name": "oauth-app"}},
        "apiClient": {"baseUri": provider.uri(), "headers": {"Authorization": "Bearer {{ credentials.access_token }}"}},
        "test": {"path": "/v1/account"},
    }})).await;
    // The rotation answer takes a while: long enough for another writer to get in first.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "at-2", "refresh_token": "rt-2", "token_type": "bearer", "expires_in": 3600}))
                .set_delay(std::time::Duration::from_millis(1500)),
        )
        .mount(provider)
        .await;
    let path = format!("plugboard/{}/acme-hubspot", scene.cluster.namespace());
    let expired = json!({"access_token": "at-1", "refresh_token": "rt-1", "token_type": "bearer", "expires_at": "2020-01-01T00:00:00Z"});
    bao.write(&path, expired.clone()).await;
    create(&scene.apis.2, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": "acme-hubspot"},
        "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"}, "credentials": {"store": "vault"}}})).await;
    // Once the refresh is under way, someone else writes a newer version.
    for _ in 0..200 {
        let requests = provider.received_requests().await.unwrap();
        if requests.iter().any(|r| r.url.path() == "/token") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut bumped = expired;
    bumped["note"] = json!("written meanwhile");
    bao.write(&path, bumped).await;

    let conn = wait_for(&scene.apis.2, "acme-hubspot", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let (data, version) = bao.read(&path).await.unwrap();
    assert_eq!(data["refresh_token"], "rt-2", "the rotated token is stored");
    assert_eq!(data["access_token"], "at-2");
    assert_eq!(version, 3, "over the version written meanwhile");
    let reference = conn.status.unwrap().credentials_ref.unwrap();
    assert_eq!(reference.version, Some(3));
    let token_requests = provider.received_requests().await.unwrap();
    assert_eq!(
        token_requests
            .iter()
            .filter(|r| r.url.path() == "/token")
            .count(),
        1
    );
    scene.cluster.cleanup().await;
}

#[tokio::test]
async fn a_mount_the_server_lacks_is_reported_as_misconfigured_with_the_fix() {
    let mut scene = Scene::start().await;
    let store = scene.bao.store_at("kv-missing", &scene.bao.root_token());
    scene.restart_with(store);
    scene.connect(None, json!({})).await;
    let conn = wait_for(&scene.apis.2, CONN, "StoreMisconfigured", |c| {
        is_ready_with(c, "False", "StoreMisconfigured")
    })
    .await;
    let message = &condition(&conn, "Ready").unwrap().message;
    assert!(
        message.contains("kv-missing/") && message.contains("--vault-mount"),
        "{message}"
    );
    scene.cluster.cleanup().await;
}

#[tokio::test]
async fn a_person_s_consent_stores_the_tokens_in_openbao_and_spends_the_state() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace().to_owned());
    let (bao, oauth) = (OpenBao::start().await, OAuthServer::start().await);
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&api)
        .await;
    let (connectors, tenants, connections, secrets) = &apis(&client, &ns);
    let (_operator, base) =
        Operator::start_with_web_and_vault(client.clone(), &ns, bao.store(&bao.root_token())).await;
    create(
        secrets,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "oauth-app"},
        "stringData": {"clientId": "plugboard-tests", "clientSecret": "app-secret-0123456789"}}),
    )
    .await;
    create(connectors, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connector", "metadata": {"name": "hubspot"}, "spec": {
        "auth": {"type": "oauth2", "authorizeUri": format!("{}/authorize", oauth.url), "tokenUri": format!("{}/token", oauth.url),
                 "scopes": ["contacts"], "clientSecretRef": {"name": "oauth-app"}},
        "apiClient": {"baseUri": api.uri(), "headers": {"Authorization": "Bearer {{ credentials.access_token }}"}},
        "test": {"path": "/me"},
    }})).await;
    create(tenants, tenant("acme")).await;
    create(connections, json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": "acme-hubspot"},
        "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"}, "credentials": {"store": "vault"}}})).await;
    let conn = wait_for(connections, "acme-hubspot", "AuthorizationRequired", |c| {
        is_ready_with(c, "False", "AuthorizationRequired")
    })
    .await;
    let link = conn
        .status
        .unwrap()
        .authorization_url
        .expect("a consent link");
    assert!(link.starts_with(&base), "{link}");

    // The person follows the link; the provider approves at once and sends them back.
    let page = consent(&link, &base).await;
    assert!(page.contains("Connected"), "{page}");
    let conn = wait_for(connections, "acme-hubspot", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let path = format!("plugboard/{ns}/acme-hubspot");
    let (data, _) = bao.read(&path).await.expect("stored in OpenBao");
    for key in [
        "access_token",
        "refresh_token",
        "expires_at",
        "api-client.json",
    ] {
        assert!(
            data[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key} in {data}"
        );
    }
    let spent = bao.custom_metadata(&path).await;
    assert!(
        spent["plugboard.dev/authorized-state"]
            .as_str()
            .is_some_and(|s| s.contains('@')),
        "the spent state is recorded: {spent}"
    );
    assert!(
        secrets
            .get_opt("acme-hubspot-credentials")
            .await
            .unwrap()
            .is_none(),
        "no Secret"
    );
    let reference = conn.status.unwrap().credentials_ref.unwrap();
    assert_eq!(reference.store, CredentialsStoreKind::Vault);
    cluster.cleanup().await;
}

/// Follows a consent link through the provider (which approves at once) to the operator's
/// callback; returns the page the callback shows.
async fn consent(link: &str, base: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut next = link.to_owned();
    for _ in 0..3 {
        let answer = browser.get(&next).send().await.unwrap();
        let Some(to) = answer.headers().get("location") else {
            break;
        };
        next = to.to_str().unwrap().to_owned();
        if next.starts_with(&format!("{base}/oauth/callback")) {
            let done = browser.get(&next).send().await.unwrap();
            return done.text().await.unwrap_or_default();
        }
    }
    panic!("the consent never reached the callback; last at {next}")
}

//! The operator side of whole-loop tests: run plugboard's controllers in-process against a
//! cluster from `support`, build the objects a user would apply, and wait for what a user
//! would see. Nothing here knows whether the cluster is the test server or a real one.
#![allow(dead_code)] // each test crate uses its own subset

pub mod oauth1_provider;
pub mod oauth_server;
pub mod openbao;

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::oneshot;

use plugboard::api::{Condition, Connection, Connector, Tenant};

/// How long a test waits for the operator to converge. Generous: a loaded CI machine with
/// two cores is slow, and a passing test returns as soon as the state is reached.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// Logs to the test's output when `RUST_LOG` is set (`RUST_LOG=plugboard=debug`).
pub fn init_logging() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// The provider timeout in tests.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a failing revocation may hold a deleted Connection in tests.
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// plugboard's controllers, running in this process until dropped.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// The OAuth state key of an operator started with its web endpoints, so a test can
    /// forge exactly what it wants to (an expired state, say).
    pub state_key: Option<[u8; 32]>,
}

impl Operator {
    /// Starts the controllers for one namespace, with private networks allowed so that the
    /// provider played by wiremock on 127.0.0.1 can be reached.
    pub fn start(client: Client, namespace: &str) -> Self {
        Self::with(client, namespace, true)
    }

    /// Starts the controllers with the SSRF guard on, as in production.
    pub fn start_guarded(client: Client, namespace: &str) -> Self {
        Self::with(client, namespace, false)
    }

    fn with(client: Client, namespace: &str, allow_private_networks: bool) -> Self {
        Self::with_settings(client, Self::settings(namespace, allow_private_networks))
    }

    /// The settings tests run the operator with.
    pub fn settings(
        namespace: &str,
        allow_private_networks: bool,
    ) -> plugboard::controller::Settings {
        plugboard::controller::Settings {
            namespace: Some(namespace.to_owned()),
            allow_private_networks,
            // Short, so that a test of a slow provider takes seconds, not the default's 15.
            provider_timeout: Some(PROVIDER_TIMEOUT),
            disconnect_grace: Some(DISCONNECT_GRACE),
            public_url: Some("http://plugboard.test".to_owned()),
            // As in production, where a public URL always comes with a state key: without
            // one the operator could sign no consent link, and status would show none.
            state_key: Some(std::sync::Arc::new(
                plugboard::auth::state::StateKey::new(rand::random::<[u8; 32]>().to_vec()).unwrap(),
            )),
            redirect_allowlist: Vec::new(),
            ..Default::default()
        }
    }

    /// Starts the controllers with the given settings.
    pub fn with_settings(client: Client, settings: plugboard::controller::Settings) -> Self {
        init_logging();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(plugboard::controller::run(client, settings, async {
            let _ = stopped.await;
        }));
        Self {
            stop: Some(stop),
            task,
            state_key: None,
        }
    }
}

impl Operator {
    /// Starts the controllers and the operator's web endpoints on 127.0.0.1, with a public
    /// URL pointing there and a fresh state key. Returns the operator and its base URL.
    pub async fn start_with_web(
        client: Client,
        namespace: &str,
        redirect_allowlist: Vec<String>,
    ) -> (Self, String) {
        Self::start_with_web_at(
            client,
            namespace,
            redirect_allowlist,
            "127.0.0.1:0",
            rand::random(),
        )
        .await
    }

    /// As `start_with_web`, on a given address and with a given state key: a restarted
    /// operator keeps both.
    pub async fn start_with_web_at(
        client: Client,
        namespace: &str,
        redirect_allowlist: Vec<String>,
        address: &str,
        key: [u8; 32],
    ) -> (Self, String) {
        Self::start_web(
            client,
            namespace,
            redirect_allowlist,
            address,
            key,
            None,
            None,
        )
        .await
    }

    /// As `start_with_web`, keeping credentials in `vault` unless a Connection says otherwise.
    pub async fn start_with_web_and_vault(
        client: Client,
        namespace: &str,
        vault: std::sync::Arc<plugboard::store::vault::VaultStore>,
    ) -> (Self, String) {
        let key = rand::random();
        let address = "127.0.0.1:0";
        Self::start_web(
            client,
            namespace,
            Vec::new(),
            address,
            key,
            None,
            Some(vault),
        )
        .await
    }

    /// As `start_with_web`, with `POST /connect` on for the given workspace.
    pub async fn start_with_connect_endpoint(
        client: Client,
        namespace: &str,
        redirect_allowlist: Vec<String>,
        workspace: plugboard::auth::access_token::Workspace,
    ) -> (Self, String) {
        let workspace = Some(std::sync::Arc::new(workspace));
        let key = rand::random();
        Self::start_web(
            client,
            namespace,
            redirect_allowlist,
            "127.0.0.1:0",
            key,
            workspace,
            None,
        )
        .await
    }

    async fn start_web(
        client: Client,
        namespace: &str,
        redirect_allowlist: Vec<String>,
        address: &str,
        key: [u8; 32],
        workspace: Option<std::sync::Arc<plugboard::auth::access_token::Workspace>>,
        vault: Option<std::sync::Arc<plugboard::store::vault::VaultStore>>,
    ) -> (Self, String) {
        let listener = tokio::net::TcpListener::bind(address).await.expect("binds");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let settings = plugboard::controller::Settings {
            namespace: Some(namespace.to_owned()),
            allow_private_networks: true,
            provider_timeout: Some(PROVIDER_TIMEOUT),
            disconnect_grace: Some(DISCONNECT_GRACE),
            public_url: Some(base.clone()),
            state_key: Some(std::sync::Arc::new(
                plugboard::auth::state::StateKey::new(key.to_vec()).unwrap(),
            )),
            redirect_allowlist,
            workspace,
            vault,
            ..Default::default()
        };
        let (ctx, watches) = plugboard::controller::prepare(client, settings);
        let router = plugboard::web::connect::router(ctx.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, router);
            tokio::select! {
                _ = server => {},
                _ = plugboard::controller::run_prepared(ctx, watches, async { let _ = stopped.await; }) => {},
            }
        });
        (
            Self {
                stop: Some(stop),
                task,
                state_key: Some(key),
            },
            base,
        )
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// Polls `name` until `done` holds, and fails the test with the last state seen otherwise.
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, done: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let deadline = tokio::time::Instant::now() + CONVERGE;
    let mut last = None;
    loop {
        if let Ok(Some(object)) = api.get_opt(name).await {
            if done(&object) {
                return object;
            }
            last = Some(object);
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{name}: timed out waiting until {what}; last seen: {last:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `name` is gone.
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let deadline = tokio::time::Instant::now() + CONVERGE;
    while api.get_opt(name).await.expect("get works").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn condition<'a>(conn: &'a Connection, type_: &str) -> Option<&'a Condition> {
    conn.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// The Ready condition's status and reason, e.g. `("True", "Connected")`.
pub fn ready(conn: &Connection) -> Option<(String, String)> {
    condition(conn, "Ready").map(|c| (c.status.to_string(), c.reason.to_string()))
}

/// A Tenant's Ready condition: status, reason and message.
pub fn tenant_ready(t: &Tenant) -> Option<(String, String, String)> {
    let c = t
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((
        c.status.to_string(),
        c.reason.to_string(),
        c.message.clone(),
    ))
}

pub fn is_ready_with(conn: &Connection, status: &str, reason: &str) -> bool {
    ready(conn).is_some_and(|(s, r)| s == status && r == reason)
        && conn.status.as_ref().and_then(|s| s.observed_generation) == conn.metadata.generation
}

/// Asks for a refresh as a user does: the `plugboard.dev/refresh-requested-at` annotation,
/// whose value `at` the status echoes once the refresh is done.
pub async fn request_refresh(connections: &Api<Connection>, name: &str, at: &str) {
    let annotation =
        json!({"metadata": {"annotations": {"plugboard.dev/refresh-requested-at": at}}});
    connections
        .patch(name, &PatchParams::default(), &Patch::Merge(annotation))
        .await
        .expect("the annotation is patched");
}

/// Whether the status echoes the refresh requested `at`.
pub fn refresh_echoed(conn: &Connection, at: &str) -> bool {
    conn.status
        .as_ref()
        .and_then(|s| s.refresh_requested_at.as_deref())
        == Some(at)
}

pub async fn create<K>(api: &Api<K>, object: serde_json::Value) -> K
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + Debug,
{
    let object: K = serde_json::from_value(object).expect("test object matches the API types");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create succeeds")
}

/// A Stripe-style static API-key connector whose API the given base URI serves.
pub fn static_connector(name: &str, base_uri: &str) -> serde_json::Value {
    json!({
        "apiVersion": "plugboard.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {
            "displayName": "Stripe",
            "auth": {"type": "static", "credentials": {"apiKey": "{{ input.apiKey }}"}},
            "inputSchema": {
                "type": "object",
                "required": ["apiKey"],
                "properties": {"apiKey": {"type": "string", "minLength": 12, "pattern": "^sk_"}},
            },
            "parametersSchema": {
                "type": "object",
                "properties": {"environment": {"enum": ["production", "sandbox"]}},
            },
            "parameters": {"environment": "production"},
            "apiClient": {
                "baseUri": base_uri,
                "headers": {
                    "Authorization": "Bearer {{ credentials.apiKey }}",
                    "X-Environment": "{{ parameters.environment }}",
                    "X-Tenant": "{{ tenant.id }}",
                },
            },
            "test": {"path": "/v1/account", "expectStatus": [200]},
            "disconnect": {"method": "DELETE", "path": "/v1/keys/current"},
        }
    })
}

pub fn tenant(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "plugboard.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"displayName": "Acme Inc.", "fields": {"plan": "enterprise"}},
    })
}

/// A Connection whose API key comes from the Secret `<name>-input`.
pub fn connection(name: &str, tenant: &str, connector: &str) -> serde_json::Value {
    json!({
        "apiVersion": "plugboard.dev/v1alpha1",
        "kind": "Connection",
        "metadata": {"name": name},
        "spec": {
            "tenantRef": {"name": tenant},
            "connectorRef": {"name": connector},
            "inputFrom": [{"field": "apiKey", "secretKeyRef": {"name": format!("{name}-input"), "key": "api-key"}}],
        }
    })
}

pub fn input_secret(connection: &str, api_key: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": format!("{connection}-input")},
        "stringData": {"api-key": api_key},
    })
}

/// Creates the static `stripe` connector, the tenant `acme`, the input Secret and the
/// Connection `acme-stripe`, and waits until it is connected.
pub async fn connect_stripe(apis: &Apis, provider_uri: &str, api_key: &str) -> Connection {
    let (connectors, tenants, connections, secrets) = apis;
    create(connectors, static_connector("stripe", provider_uri)).await;
    create(tenants, tenant("acme")).await;
    create(secrets, input_secret("acme-stripe", api_key)).await;
    create(connections, connection("acme-stripe", "acme", "stripe")).await;
    wait_for(connections, "acme-stripe", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await
}

/// A Secret's value as text.
pub fn secret_text(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

pub type Apis = (Api<Connector>, Api<Tenant>, Api<Connection>, Api<Secret>);

pub fn apis(client: &Client, namespace: &str) -> Apis {
    (
        Api::namespaced(client.clone(), namespace),
        Api::namespaced(client.clone(), namespace),
        Api::namespaced(client.clone(), namespace),
        Api::namespaced(client.clone(), namespace),
    )
}

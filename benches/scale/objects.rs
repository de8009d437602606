//! The objects the scale benchmark creates: connectors (static and client-credentials,
//! alternating), tenants, Connections spread over both, and unrelated Secrets.

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use plugboard::api::{Connection, Connector, Tenant};

use crate::harness;

/// Requests the benchmark has in flight while it creates objects: enough to create faster
/// than the operator connects, few enough not to starve the API server it shares cores with.
const CREATE_CONCURRENCY: usize = 16;

/// The label that tells the benchmark's own objects apart.
pub const AUTH_LABEL: &str = "bench.plugboard.dev/auth";

/// Whether connector `i` uses client credentials (odd) or a static API key (even).
pub fn is_client_credentials(connector: usize) -> bool {
    connector % 2 == 1
}

pub fn connector_name(i: usize) -> String {
    format!("api-{i}")
}

/// A client-credentials connector whose token and test endpoints `base` serves.
fn client_credentials_connector(name: &str, base: &str) -> Value {
    json!({
        "apiVersion": "plugboard.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {
            "displayName": "Client credentials API",
            "auth": {
                "type": "client-credentials",
                "tokenUri": format!("{base}/oauth/token"),
                "clientSecretRef": {"name": format!("{name}-app")},
            },
            "apiClient": {
                "baseUri": base,
                "headers": {"Authorization": "Bearer {{ credentials.access_token }}"},
            },
            "test": {"path": "/v1/account", "expectStatus": [200]},
        }
    })
}

fn app_secret(connector: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": format!("{connector}-app")},
        "stringData": {"clientId": "bench-client", "clientSecret": "bench-client-secret"},
    })
}

/// A Secret plugboard has nothing to do with, shaped like one applied with kubectl (whose
/// last-applied annotation repeats the data, so its metadata is not small either).
fn unrelated_secret(i: usize) -> Value {
    let filler = "x".repeat(512);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": format!("unrelated-{i}"),
            "labels": {"app": "something-else"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": filler},
        },
        "stringData": {"password": format!("{filler}{i}")},
    })
}

/// Creates every object of `objects` through `api`, a few at a time.
async fn create_all<K>(api: &Api<K>, objects: impl Iterator<Item = Value>)
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    stream::iter(objects)
        .for_each_concurrent(CREATE_CONCURRENCY, |object| async move {
            harness::create(api, object).await;
        })
        .await;
}

/// The connectors (one per provider host) and `tenants` tenants.
pub async fn catalogue(client: &Client, ns: &str, bases: &[String], tenants: usize) {
    let connectors: Api<Connector> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for (i, base) in bases.iter().enumerate() {
        let name = connector_name(i);
        if is_client_credentials(i) {
            harness::create(&secrets, app_secret(&name)).await;
            harness::create(&connectors, client_credentials_connector(&name, base)).await;
        } else {
            harness::create(&connectors, harness::static_connector(&name, base)).await;
        }
    }
    let api: Api<Tenant> = Api::namespaced(client.clone(), ns);
    create_all(
        &api,
        (0..tenants).map(|t| harness::tenant(&format!("t-{t}"))),
    )
    .await;
}

/// Connection `i`: tenant `i % tenants`, connector `i % connectors`. A static one reads its
/// API key from a Secret of its own, as the examples do.
pub async fn connections(client: &Client, ns: &str, n: usize, tenants: usize, connectors: usize) {
    let conns: Api<Connection> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let work = (0..n).map(|i| {
        let (conns, secrets) = (&conns, &secrets);
        async move {
            let name = format!("c-{i}");
            let connector = connector_name(i % connectors);
            let tenant = format!("t-{}", i % tenants.max(1));
            let mut object = harness::connection(&name, &tenant, &connector);
            let kind = if is_client_credentials(i % connectors) {
                object["spec"].as_object_mut().unwrap().remove("inputFrom");
                "client-credentials"
            } else {
                let key = format!("sk_test_{i:016}");
                harness::create(secrets, harness::input_secret(&name, &key)).await;
                "static"
            };
            object["metadata"]["labels"] = json!({AUTH_LABEL: kind});
            harness::create(conns, object).await;
        }
    });
    stream::iter(work)
        .for_each_concurrent(CREATE_CONCURRENCY, |f| f)
        .await;
}

pub async fn unrelated_secrets(client: &Client, ns: &str, n: usize) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    create_all(&secrets, (0..n).map(unrelated_secret)).await;
}

/// The client-credentials Connections, as they are now.
pub async fn client_credentials(client: &Client, ns: &str) -> Vec<Connection> {
    let api: Api<Connection> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().labels(&format!("{AUTH_LABEL}=client-credentials"));
    api.list(&params).await.expect("lists Connections").items
}

/// How many Connections are Ready=True.
pub async fn ready_count(client: &Client, ns: &str) -> usize {
    let api: Api<Connection> = Api::namespaced(client.clone(), ns);
    let all = api.list(&ListParams::default()).await.expect("lists");
    all.items
        .iter()
        .filter(|c| harness::ready(c).is_some_and(|(status, _)| status == "True"))
        .count()
}

/// Asks for one refresh of every client-credentials Connection now.
pub async fn request_refresh(client: &Client, ns: &str, names: &[String], value: &str) {
    let api: Api<Connection> = Api::namespaced(client.clone(), ns);
    let patch = json!({"metadata": {"annotations": {"plugboard.dev/refresh-requested-at": value}}});
    stream::iter(names)
        .for_each_concurrent(CREATE_CONCURRENCY, |name| {
            let (api, patch) = (&api, &patch);
            async move {
                api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .expect("annotates the Connection");
            }
        })
        .await;
}

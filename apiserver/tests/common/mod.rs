//! What every plugboard-apiserver test starts from: two test CRDs (a namespaced Widget with a status
//! subresource, keyed conditions, a CEL rule, formats and defaults; a cluster-scoped Gadget
//! without one), a server, a namespace, and small helpers to read failures and wait.
#![allow(dead_code)] // each test file uses its own subset

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, PostParams};
use kube::{Client, CustomResource, CustomResourceExt};
pub use plugboard_apiserver::ApiServer;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "example.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd"
)]
#[serde(rename_all = "camelCase")]
pub struct WidgetSpec {
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_of: Option<PartRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PartRef {
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "example.dev",
    version = "v1",
    kind = "Gadget",
    status = "GadgetStatus"
)]
pub struct GadgetSpec {
    pub count: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct GadgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The Widget CRD, with what the derive cannot say: an enum, a pattern, a length limit, a
/// format, a default, keyed conditions, an open-ended field, a CEL rule and a selectable
/// field.
pub fn widget_crd() -> CustomResourceDefinition {
    let mut crd = serde_json::to_value(Widget::crd()).unwrap();
    let version = &mut crd["spec"]["versions"][0];
    version["selectableFields"] = json!([{"jsonPath": ".spec.color"}]);
    let spec = &mut version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    spec["color"]["enum"] = json!(["red", "blue"]);
    spec["mode"]["default"] = json!("auto");
    spec["since"]["format"] = json!("date-time");
    spec["partOf"]["x-kubernetes-validations"] =
        json!([{"rule": "self == oldSelf", "message": "partOf is immutable"}]);
    spec["partOf"]["properties"]["name"]["maxLength"] = json!(10);
    spec["partOf"]["properties"]["name"]["pattern"] = json!("^[a-z]+$");
    spec["extra"] =
        json!({"type": "object", "nullable": true, "x-kubernetes-preserve-unknown-fields": true});
    let conditions = &mut version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        ["conditions"];
    conditions["x-kubernetes-list-type"] = json!("map");
    conditions["x-kubernetes-list-map-keys"] = json!(["type"]);
    serde_json::from_value(crd).unwrap()
}

/// The Gadget CRD: cluster-scoped, and without a status subresource.
pub fn gadget_crd() -> CustomResourceDefinition {
    let mut crd = serde_json::to_value(Gadget::crd()).unwrap();
    crd["spec"]["versions"][0]
        .as_object_mut()
        .unwrap()
        .remove("subresources");
    serde_json::from_value(crd).unwrap()
}

pub async fn server() -> ApiServer {
    ApiServer::start(vec![widget_crd(), gadget_crd()]).await
}

/// A server, a client, and a fresh namespace `ns`.
pub async fn setup() -> (ApiServer, Client) {
    let server = server().await;
    let client = server.client();
    create_namespace(&client, "ns").await;
    (server, client)
}

pub async fn create_namespace(client: &Client, name: &str) -> Namespace {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap()
}

pub fn widget(name: &str, size: i64) -> Widget {
    let mut w = Widget::new(
        name,
        WidgetSpec {
            size,
            ..WidgetSpec::default()
        },
    );
    w.metadata.namespace = None;
    w
}

pub fn widgets(client: &Client) -> Api<Widget> {
    Api::namespaced(client.clone(), "ns")
}

/// The `metav1.Status` of a failed request.
pub fn status_of(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other}"),
    }
}

/// Awaits `f`, failing the test (rather than hanging) after ten seconds.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Polls until `check` holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A raw request, for what `kube::Api` hides (status codes, headers, exact bodies).
pub async fn raw(
    client: &Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Value,
) -> (u16, http::HeaderMap, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        }))
        .unwrap();
    let response = client.send(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect_bytes().await.unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (parts.status.as_u16(), parts.headers, value)
}

pub fn rv(object: &kube::api::ObjectMeta) -> u64 {
    object.resource_version.as_deref().unwrap().parse().unwrap()
}

//! `Connector`: how to talk to one external app.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;
use super::auth::AuthMethod;
use super::common::{ConnectionCounts, FreeForm};

/// How to talk to one external app: how to authenticate, what a Connection's input and
/// parameters look like, how to call the app's API, how to test a connection and how to
/// disconnect one. Namespaced: Connections in the same namespace may use it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "plugboard.dev",
    version = "v1alpha1",
    kind = "Connector",
    namespaced,
    status = "ConnectorStatus",
    shortname = "ctor",
    category = "plugboard",
    doc = "How to talk to one external app (HubSpot, GitHub, Stripe, ...): auth method, schemas, API client, test and disconnect. Connections in the same namespace use it.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "Auth", type_ = "string", json_path = ".spec.auth.type"),
    printcolumn(
        name = "Display Name",
        type_ = "string",
        json_path = ".spec.displayName"
    ),
    printcolumn(
        name = "Connections",
        type_ = "integer",
        json_path = ".status.connections.total"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.auth) != has(self.options)").message("set exactly one of spec.auth (one auth method) or spec.options (several, keyed)"))]
pub struct ConnectorSpec {
    /// Name of the external app as people know it (for example `HubSpot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// URL of the app's logo, for catalogues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Catalogue categories (for example `CRM`, `Payments`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Identifier of the external app in your own catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_app_id: Option<String>,

    /// The one auth method of a single-auth connector. Exactly one of `auth` and `options`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthMethod>,
    /// Several auth methods, keyed (for example `apiKey` and `oauth`); a Connection picks one
    /// with `authOptionKey`. Exactly one of `auth` and `options`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, AuthMethod>>,

    /// JSON Schema (draft 2020-12) of the input a person gives when connecting (an API key,
    /// a subdomain). A Connection's `input` merged with `inputFrom` must satisfy it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<FreeForm>,
    /// JSON Schema (draft 2020-12) of the connector parameters: `parameters` merged with a
    /// Connection's `connectorParameters` must satisfy it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_schema: Option<FreeForm>,
    /// JSON Schema (draft 2020-12) of the OAuth app credentials in `clientSecretRef`
    /// (bring your own OAuth app: `clientId`, `clientSecret`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_credentials_schema: Option<FreeForm>,
    /// Default connector parameters. A Connection's `connectorParameters` override them key
    /// by key at the top level (for example `scopes` or `environment: sandbox`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<FreeForm>,

    /// How workloads call the app's API with a Connection's credentials. Rendered into the
    /// credentials Secret as `api-client.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_client: Option<ApiClient>,
    /// A lightweight authenticated request that proves a Connection works (a `/me` call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<ConnectionTest>,
    /// How to revoke access at the provider when a Connection is disconnected or deleted,
    /// besides the oauth2 `revokeUri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect: Option<Disconnect>,
}

/// The HTTP client a workload uses to call the app's API. Every string is a template over
/// `input`, `parameters`, `tenant`, `credentials` and `connection`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiClient {
    /// Base URI of the API (for example `https://api.hubapi.com` or
    /// `https://{{ input.subdomain }}.example.com/api`).
    pub base_uri: String,
    /// Headers sent with every request (for example
    /// `Authorization: "Bearer {{ credentials.access_token }}"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Query parameters added to every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Hosts a rendered URL may reach, as glob patterns (`*.hubapi.com`). The host of
    /// `baseUri` as written is always allowed; anything else is refused (reason `BlockedHost`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
}

/// An HTTP request relative to `apiClient.baseUri`, sent with the API client's headers and
/// query. Strings are templates, like the API client's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequest {
    /// HTTP method; `GET` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path appended to `apiClient.baseUri` (for example `/account/me`).
    pub path: String,
    /// Headers added to the API client's headers for this request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body (a template; send JSON by also setting a `Content-Type` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// HTTP status codes that count as success; any 2xx when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(range(min = 100, max = 599)))]
    pub expect_status: Vec<u16>,
}

/// How plugboard checks that a Connection works.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionTest {
    /// The request to send.
    #[serde(flatten)]
    pub request: HttpRequest,
    /// How often to test a connected Connection again (a duration such as `30m`); only after
    /// a change when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<kube::core::Duration>,
}

/// A request that revokes access at the provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disconnect {
    /// The request to send, with the Connection's credentials still in the context.
    #[serde(flatten)]
    pub request: HttpRequest,
}

/// What plugboard found when it checked the connector.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` is `True` when the spec is usable (schemas compile, templates parse).
    /// `Reconciling` and `Stalled` follow kstatus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The Connections that use this connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionCounts>,
}

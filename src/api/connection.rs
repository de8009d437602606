//! `Connection`: one tenant's connection to one connector.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;
use super::common::{FreeForm, ValueFromSecret};

/// One tenant's connection to one external app: the person's input, developer-chosen
/// connector parameters, and where the credentials are kept.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "plugboard.dev",
    version = "v1alpha1",
    kind = "Connection",
    namespaced,
    status = "ConnectionStatus",
    shortname = "conn",
    category = "plugboard",
    doc = "One tenant's connection to one external app: input, connector parameters, and the credentials plugboard obtains, refreshes, tests and stores.",
    validation = Rule::new("size(self.metadata.name) <= 241 || (has(self.spec.credentials) && has(self.spec.credentials.secretName))").message("metadata.name: at most 241 characters, so that the credentials Secret <name>-credentials has a valid name; use a shorter name or set spec.credentials.secretName"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenantRef.name"),
    printcolumn(
        name = "Connector",
        type_ = "string",
        json_path = ".spec.connectorRef.name"
    ),
    printcolumn(
        name = "Expires",
        type_ = "string",
        json_path = ".status.credentialsExpireAt"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSpec {
    /// The Tenant (in this namespace) this connection belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("tenantRef is immutable: create a new Connection instead"))]
    pub tenant_ref: TenantReference,
    /// The Connector or ClusterConnector to connect through. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("connectorRef is immutable: create a new Connection instead"))]
    pub connector_ref: ConnectorReference,
    /// For a connector with several auth `options`: the key of the one to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_option_key: Option<String>,
    /// The person's non-sensitive input (for example `subdomain`), validated against the
    /// connector's `inputSchema` together with `inputFrom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<FreeForm>,
    /// Sensitive input read from Secrets (an API key never sits in git). Overrides inline
    /// `input` of the same key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_from: Vec<ValueFromSecret>,
    /// Developer-provided overrides of the connector's `parameters`, key by key at the top
    /// level (for example `scopes: [contacts, deals]` or `environment: sandbox`). Validated
    /// against the connector's `parametersSchema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_parameters: Option<FreeForm>,
    /// Where the credentials are kept; a Secret named `<connection>-credentials` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsStore>,
    /// Revoke and delete the credentials but keep this object. Set back to false to connect
    /// again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnected: Option<bool>,
}

/// A reference to a Tenant in the Connection's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantReference {
    /// Name of the Tenant.
    pub name: String,
}

// The two kinds a Connection may connect through.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConnectorKind {
    /// A namespaced Connector in the Connection's namespace.
    #[default]
    Connector,
    /// A cluster-wide ClusterConnector.
    ClusterConnector,
}

impl ConnectorKind {
    /// The kind's name, as `kind` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connector => "Connector",
            Self::ClusterConnector => "ClusterConnector",
        }
    }
}

/// A reference to a Connector or ClusterConnector.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorReference {
    /// `Connector` (in this namespace; the default) or `ClusterConnector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ConnectorKind>,
    /// Name of the connector.
    pub name: String,
}

// Where credentials are stored.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CredentialsStoreKind {
    /// A Kubernetes Secret in the Connection's namespace, owned by the Connection.
    #[default]
    Kubernetes,
    /// OpenBao or Vault KV version 2, at `path`.
    Vault,
}

/// Where a Connection's credentials are stored.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.deletionPolicy) || self.deletionPolicy != 'Retain' || !has(self.store) || self.store == 'vault'").message("deletionPolicy: Retain needs store: vault; a credentials Secret is owned by its Connection and always goes with it"))]
pub struct CredentialsStore {
    /// `kubernetes` (the default) or `vault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<CredentialsStoreKind>,
    /// store kubernetes: name of the Secret; `<connection>-credentials` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// store vault: the KV v2 path inside the operator's mount and under its path prefix
    /// (`--vault-mount`, `--vault-path-prefix`). A template over `connection.name`,
    /// `connection.namespace` and `tenant.name`, for example
    /// `{{ connection.namespace }}/{{ connection.name }}` (the default). It must stay a
    /// relative path of names: `..`, `.`, a leading `/` and empty segments are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What happens to the stored credentials when the Connection is deleted or
    /// disconnected: `Delete` (the default) deletes them after revoking them at the provider;
    /// `Retain` revokes nothing and keeps them (store vault only: a credentials Secret is
    /// owned by its Connection and always goes with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

// What deleting a Connection does to its stored credentials.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Revoke at the provider, then delete them from the store.
    #[default]
    Delete,
    /// Keep them in the store, unrevoked.
    Retain,
}

// The life cycle of a Connection, as one word.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConnectionState {
    /// Not reconciled yet, or waiting for a referenced object.
    #[default]
    Pending,
    /// A person must authorize access at the provider: follow `status.authorizationUrl`.
    AuthorizationRequired,
    /// Credentials are stored and the last test passed.
    Connected,
    /// Something is wrong; the `Ready` condition says what.
    Error,
    /// Disconnected on request (`spec.disconnected`); no credentials are kept.
    Disconnected,
    /// Its Tenant is suspended (`spec.suspended`): credentials are kept but neither
    /// refreshed nor tested until the Tenant is resumed.
    Suspended,
}

/// Where plugboard stored the credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsReference {
    /// `kubernetes` or `vault`.
    pub store: CredentialsStoreKind,
    /// store kubernetes: the Secret's name, in the Connection's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// store vault: the KV v2 mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// store vault: the KV v2 path inside the mount (read it at `<mount>/data/<path>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// store vault: the KV version holding the current credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// What plugboard found when it reconciled the Connection.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` summarises; `Authorized` (credentials obtained) and `Tested` (the connector's
    /// test passed) say which step failed; `Reconciling` and `Stalled` follow kstatus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Pending, AuthorizationRequired, Connected, Error, Disconnected or Suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ConnectionState>,
    /// When a person must consent at the provider: the link that starts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    /// Where the credentials are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<CredentialsReference>,
    /// When the current access credentials expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_expire_at: Option<String>,
    /// When plugboard will next refresh the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_refresh_at: Option<String>,
    /// When the credentials were last refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refreshed_at: Option<String>,
    /// When the connector's test last passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tested_at: Option<String>,
    /// Consecutive failed attempts since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_attempts: Option<u32>,
    /// When plugboard will try again after a transient failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<String>,
    /// The value of the `plugboard.dev/refresh-requested-at` annotation last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_requested_at: Option<String>,
    /// The value of the `plugboard.dev/input-updated-at` annotation this status was worked
    /// out with. The connect endpoints set the annotation when they write a new input Secret,
    /// which changes no generation, so that they can tell a verdict on the new input from one
    /// on the old; anyone who rotates an input Secret may set it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_input_at: Option<String>,
}

impl Connection {
    /// The kind of the referenced connector, with the documented default.
    pub fn connector_kind(&self) -> ConnectorKind {
        self.spec.connector_ref.kind.unwrap_or_default()
    }
}

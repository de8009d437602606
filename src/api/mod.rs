//! The plugboard API (`plugboard.dev/v1alpha1`): one file per kind, plus the pieces they
//! share. These types are the user-facing contract: every doc comment on a field becomes the
//! description `kubectl explain` prints, so they are written for the person writing YAML.

// Several `printcolumn(type_ = "string", ...)` entries in one `#[kube]` attribute are how
// kube-derive declares columns, not a mistake.
#![allow(clippy::duplicated_attributes)]

mod auth;
mod cluster_connector;
mod common;
mod condition;
mod connection;
mod connector;
mod tenant;

pub use auth::{
    AuthMethod, AuthType, ClientAuth, CredentialsRefresh, SignatureMethod, SigningAlgorithm,
};
pub use cluster_connector::{ClusterConnector, ClusterConnectorSpec};
pub use common::{
    ConnectionCounts, FreeForm, SecretKeyReference, SecretKeySelector, SecretReference,
    ValueFromSecret,
};
pub use condition::{Condition, Word};
pub use connection::{
    Connection, ConnectionSpec, ConnectionState, ConnectionStatus, ConnectorKind,
    ConnectorReference, CredentialsReference, CredentialsStore, CredentialsStoreKind,
    DeletionPolicy, TenantReference,
};
pub use connector::{
    ApiClient, ConnectionTest, Connector, ConnectorSpec, ConnectorStatus, Disconnect, HttpRequest,
};
pub use tenant::{Tenant, TenantSpec, TenantStatus};

/// The API group of every plugboard kind.
pub const GROUP: &str = "plugboard.dev";
/// The one served and stored version; `v1alpha1` because the contract may still change.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get plugboard` lists every kind in this category.
pub const CATEGORY: &str = "plugboard";

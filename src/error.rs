//! Why a reconcile did not reach its goal.
//!
//! Every error has a stable `reason()` (a CamelCase word used as the condition reason, the
//! event reason and a metric label, so it never carries an object name or free text) and
//! knows whether it is transient (back off and retry) or permanent (wait for a change to the
//! spec or to a referenced object, which a watch delivers).

use crate::provider::hosts::BlockedHost;
use crate::templates::TemplateError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} {name:?} not found")]
    ConnectorNotFound { kind: &'static str, name: String },

    #[error("Tenant {name:?} not found in this namespace")]
    TenantNotFound { name: String },

    /// A Secret that is not there; `namespace` when it is not the Connection's own.
    #[error("Secret {name:?} not found (named by {field})")]
    SecretNotFound {
        namespace: Option<String>,
        name: String,
        field: String,
    },

    #[error("Secret {name:?} has no key {key:?} (named by {field})")]
    SecretKeyNotFound {
        namespace: Option<String>,
        name: String,
        key: String,
        field: String,
    },

    #[error("{0}")]
    InvalidInput(String),

    #[error("{0}")]
    InvalidParameters(String),

    #[error("{0}")]
    InvalidFields(String),

    #[error("{0}")]
    InvalidConnector(String),

    #[error("{field}: {source}")]
    InvalidTemplate {
        field: String,
        source: TemplateError,
    },

    #[error("{field}: {source}")]
    BlockedHost { field: String, source: BlockedHost },

    #[error("{0}")]
    AuthorizationRequired(String),

    #[error("{0}")]
    TokenRevoked(String),

    /// The credential store outside the cluster cannot be reached, is sealed, or is not
    /// ready. Credentials that still work stay in use.
    #[error("{0}")]
    StoreUnavailable(String),

    /// The credential store refused the operator's token for this path.
    #[error("{0}")]
    StoreForbidden(String),

    /// The operator's store settings do not match the store (no such mount, no auth
    /// method, no store configured).
    #[error("{0}")]
    StoreMisconfigured(String),

    /// The provider refused the stored refresh token. Reported as `TokenRevoked`; told apart
    /// because a refresh token can also be refused when a rotated one was lost.
    #[error("{0}")]
    RefreshTokenRefused(String),

    #[error("{message}")]
    ProviderUnavailable {
        message: String,
        /// The provider's Retry-After, which the next attempt honours.
        retry_after: Option<std::time::Duration>,
    },

    /// The credentials expired while a failed refresh waits for its retry (the provider's
    /// Retry-After, or the backoff), which stays as it was.
    #[error("{message}")]
    CredentialsExpired {
        message: String,
        retry_at: k8s_openapi::jiff::Timestamp,
    },

    /// The API server refused to store the credentials; the message is its own, scrubbed.
    #[error("{0}")]
    CredentialsNotStored(String),

    #[error("{0}")]
    TestFailed(String),

    /// The test request was answered 401: the credentials themselves were refused. Its reason
    /// is `TestFailed`'s; a method that can exchange them again does so once at once.
    #[error("{0}")]
    TestRefused(String),

    /// The provider refused the credentials a connector-defined `refresh` exchanges (an API
    /// key no longer valid): a person must correct the input.
    #[error("{0}")]
    CredentialsRefused(String),

    #[error("{0}")]
    DisconnectFailed(String),

    /// A deleted Connection waits for its revocation, which failed and is tried again after
    /// `retry_in` (within the disconnect grace).
    #[error("{source}")]
    RevocationPending {
        source: Box<Error>,
        retry_in: std::time::Duration,
    },

    /// A deleted Tenant still has Connections revoking their credentials.
    #[error("{0} Connection(s) of the Tenant are still being deleted")]
    ConnectionsRemaining(usize),

    #[error("Kubernetes API request failed: {0}")]
    Kube(#[source] kube::Error),
}

/// Where a problem lies: the object a person must look at to fix it. For a Connection's
/// reconcile, its connector and Tenant are the ones its spec names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtFault {
    /// The Connection's own spec (its input, parameters, auth option, store).
    Connection,
    /// Its connector: the spec is wrong, or it is not there.
    Connector,
    /// Its Tenant.
    Tenant,
    /// A Secret, in the Connection's namespace unless `namespace` says otherwise.
    Secret {
        namespace: Option<String>,
        name: String,
    },
    /// The provider, or the way to it.
    Provider,
    /// The Kubernetes API server.
    Kubernetes,
    /// The credential store outside the cluster, or the operator's settings for it.
    Store,
}

impl Error {
    /// Which object the error is about.
    pub fn at_fault(&self) -> AtFault {
        match self {
            Self::ConnectorNotFound { .. }
            | Self::InvalidConnector(_)
            | Self::InvalidTemplate { .. }
            | Self::BlockedHost { .. } => AtFault::Connector,
            Self::TenantNotFound { .. }
            | Self::InvalidFields(_)
            | Self::ConnectionsRemaining(_) => AtFault::Tenant,
            Self::SecretNotFound {
                namespace, name, ..
            }
            | Self::SecretKeyNotFound {
                namespace, name, ..
            } => AtFault::Secret {
                namespace: namespace.clone(),
                name: name.clone(),
            },
            Self::InvalidInput(_) | Self::InvalidParameters(_) | Self::CredentialsRefused(_) => {
                AtFault::Connection
            }
            Self::AuthorizationRequired(_)
            | Self::TokenRevoked(_)
            | Self::RefreshTokenRefused(_)
            | Self::ProviderUnavailable { .. }
            | Self::CredentialsExpired { .. }
            | Self::TestFailed(_)
            | Self::TestRefused(_)
            | Self::DisconnectFailed(_) => AtFault::Provider,
            Self::RevocationPending { source, .. } => source.at_fault(),
            Self::Kube(_) | Self::CredentialsNotStored(_) => AtFault::Kubernetes,
            Self::StoreUnavailable(_) | Self::StoreForbidden(_) | Self::StoreMisconfigured(_) => {
                AtFault::Store
            }
        }
    }

    /// The stable reason word for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ConnectorNotFound { .. } => "ConnectorNotFound",
            Self::TenantNotFound { .. } => "TenantNotFound",
            Self::SecretNotFound { .. } | Self::SecretKeyNotFound { .. } => "SecretNotFound",
            Self::InvalidInput(_) => "InvalidInput",
            Self::InvalidParameters(_) => "InvalidParameters",
            Self::InvalidFields(_) => "InvalidFields",
            Self::InvalidConnector(_) => "InvalidConnector",
            Self::InvalidTemplate { .. } => "InvalidTemplate",
            Self::BlockedHost { .. } => "BlockedHost",
            Self::AuthorizationRequired(_) => "AuthorizationRequired",
            Self::TokenRevoked(_) | Self::RefreshTokenRefused(_) => "TokenRevoked",
            Self::ProviderUnavailable { .. } => "ProviderUnavailable",
            Self::CredentialsExpired { .. } => "CredentialsExpired",
            Self::CredentialsNotStored(_) => "CredentialsNotStored",
            Self::StoreUnavailable(_) => "StoreUnavailable",
            Self::StoreForbidden(_) => "StoreForbidden",
            Self::StoreMisconfigured(_) => "StoreMisconfigured",
            Self::TestFailed(_) | Self::TestRefused(_) => "TestFailed",
            Self::CredentialsRefused(_) => "CredentialsRefused",
            Self::DisconnectFailed(_) => "DisconnectFailed",
            Self::ConnectionsRemaining(_) => "ConnectionsRemaining",
            // The failure's own word: it is what the user must look at.
            Self::RevocationPending { source, .. } => source.reason(),
            Self::Kube(_) => "KubernetesApiError",
        }
    }

    /// Transient errors are retried with backoff; permanent ones wait for a change. A
    /// missing referenced object is permanent: its appearance is a watch event that
    /// reconciles again at once, so polling for it would only add load.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::ProviderUnavailable { .. }
                | Self::CredentialsExpired { .. }
                | Self::CredentialsNotStored(_)
                // A policy or mount fixed in the store makes no Kubernetes event: these are
                // retried at the backoff, while Stalled says a person must act.
                | Self::StoreUnavailable(_)
                | Self::StoreForbidden(_)
                | Self::StoreMisconfigured(_)
                | Self::TestFailed(_)
                | Self::TestRefused(_)
                | Self::DisconnectFailed(_)
                | Self::ConnectionsRemaining(_)
                | Self::RevocationPending { .. }
                | Self::Kube(_)
        )
    }

    /// Whether the error is in the spec itself (kstatus `Stalled`): nothing but an edit fixes
    /// it. A missing object may still appear, so it is not stalled.
    pub fn is_stalled(&self) -> bool {
        matches!(
            self,
            Self::InvalidInput(_)
                | Self::InvalidParameters(_)
                | Self::InvalidFields(_)
                | Self::InvalidConnector(_)
                | Self::InvalidTemplate { .. }
                | Self::BlockedHost { .. }
                | Self::TokenRevoked(_)
                | Self::RefreshTokenRefused(_)
                | Self::CredentialsRefused(_)
                | Self::StoreForbidden(_)
                | Self::StoreMisconfigured(_)
        )
    }

    /// A transient error from a provider that is down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::ProviderUnavailable {
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<kube::Error> for Error {
    fn from(err: kube::Error) -> Self {
        Self::Kube(err)
    }
}

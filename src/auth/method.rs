//! The auth-method plug-in: what every `type` of a connector's auth method does, behind one
//! trait, so that the reconcile never asks which type it has.
//!
//! A method says which connector Secrets it needs (the reconcile reads them), what the
//! stored credentials are worth ([`Method::inspect`], pure), how to obtain new ones
//! ([`Method::obtain`], the only place it calls a provider) and how to revoke them. When to
//! obtain is not its business: the reconcile's plan decides that, the same way for every
//! method, from what `inspect` says.

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use secrecy::SecretSlice;
use serde_json::{Map, Value};

use super::oauth2::App;
use crate::api::{AuthMethod, ConnectorSpec};
use crate::error::Error;
use crate::provider::Tools;
use crate::provider::api_client::Signing;
use crate::provider::signed::RequestSigner;
use crate::store::Credentials;

/// What a method works from: the connector and Connection as dereferenced and validated,
/// and the credentials stored now.
pub struct Inputs<'a> {
    /// `Connector/name` or `ClusterConnector/name`, for messages.
    pub label: &'a str,
    pub connector: &'a ConnectorSpec,
    pub auth: &'a AuthMethod,
    /// The connector's parameters merged with the Connection's `connectorParameters`.
    pub parameters: &'a Map<String, Value>,
    /// The template context without credentials: `input`, `parameters`, `tenant`,
    /// `connection`.
    pub context: &'a Value,
    pub tenant: TenantView<'a>,
    pub secrets: &'a ConnectorSecrets,
    pub stored: &'a Credentials,
    pub templates: &'a crate::templates::Templates,
}

/// The tenant as a method sees it.
#[derive(Clone, Copy)]
pub struct TenantView<'a> {
    pub id: &'a str,
    pub display_name: Option<&'a str>,
    /// `fields` merged with `fieldsFrom`.
    pub fields: &'a Map<String, Value>,
}

/// The connector Secrets a method reads, checked.
#[derive(Default)]
pub struct ConnectorSecrets {
    /// The OAuth app from `clientSecretRef`.
    pub app: Option<App>,
    /// The key from `signingKeyRef`.
    pub signing_key: Option<SigningKey>,
}

/// A key that signs what a method mints.
pub struct SigningKey {
    pub bytes: SecretSlice<u8>,
    /// The field that names it, for messages.
    pub field: String,
}

/// Which connector Secrets a method reads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub app: bool,
    pub signing_key: bool,
}

/// What the stored credentials are worth, as a method judges them.
#[derive(Debug, Clone)]
pub struct Held {
    /// The credentials to keep using while they are good (for some methods the stored ones
    /// normalised: what a fresh copy would hold).
    pub keep: Credentials,
    /// Whether there is a credential to call the provider with at all.
    pub usable: bool,
    /// Whether they can be renewed without a person (a refresh token, or a grant that needs
    /// none).
    pub renewable: bool,
    pub expires_at: Option<Timestamp>,
    /// Whether they still say what they should (a minted token's claims and key).
    pub current: bool,
    /// Whether, without usable credentials, a person must consent (rather than the method
    /// obtaining them by itself).
    pub needs_consent: bool,
}

/// New credentials from [`Method::obtain`].
#[derive(Debug, Default)]
pub struct Fresh {
    pub credentials: Credentials,
    pub expires_at: Option<Timestamp>,
    /// Issued by a provider or minted now: the only copy, to be stored before anything uses
    /// them. False for credentials rendered from the input, which can be rendered again.
    pub issued: bool,
    /// The credentials arrived but cannot be used as the connector says (a response mapping
    /// failed to render). They are stored all the same, for the refresh token in them, and
    /// this is the error the Connection shows.
    pub unusable: Option<Error>,
}

/// Reads the stored credentials again, for a method that must see a concurrent writer's
/// rotation before it gives up on a refresh token.
pub trait Reread: Sync {
    fn stored(&self) -> BoxFuture<'_, Result<Credentials, Error>>;
}

/// One `type` of auth method.
pub trait Method: Send + Sync {
    /// The connector Secrets it reads.
    fn needs(&self) -> Needs {
        Needs::default()
    }

    /// Checks what the method needs of the connector that no schema holds (endpoints the host
    /// guard admits, required fields); pure.
    fn check(&self, _inputs: &Inputs<'_>, _allow_private_networks: bool) -> Result<(), Error> {
        Ok(())
    }

    /// What the stored credentials are worth; `None` for a method that keeps nothing between
    /// reconciles (its credentials are rendered from the input every time). Pure.
    fn inspect(&self, inputs: &Inputs<'_>) -> Result<Option<Held>, Error>;

    /// Obtains new credentials: from the provider, minted, or rendered.
    fn obtain<'a>(
        &'a self,
        inputs: &'a Inputs<'a>,
        tools: Tools<'a>,
        reread: &'a dyn Reread,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Fresh, Error>>;

    /// Whether deleting a Connection sends the provider anything for this method, beside the
    /// connector's own `disconnect` request. Decided from the auth method alone, because the
    /// Secrets a full dereference reads are often deleted with the Connection.
    fn revokes(&self, _auth: &AuthMethod) -> bool {
        false
    }

    /// How requests must be signed with these credentials, as `api-client.json` tells
    /// workloads; `None` when the API client's templated headers carry them.
    fn signing(&self, _auth: &AuthMethod) -> Option<Signing> {
        None
    }

    /// The signer of the connector's own requests (test, disconnect) with the stored
    /// credentials, for a method that signs each request; `None` when there is nothing to
    /// sign with yet.
    fn signer<'a>(
        &self,
        _inputs: &Inputs<'a>,
    ) -> Result<Option<Box<dyn RequestSigner + 'a>>, Error> {
        Ok(None)
    }

    /// Whether a test request that refused the credentials (401) is answered by obtaining
    /// them again at once: a session a connector's `refresh` exchanged may end early.
    fn renews_on_refusal(&self) -> bool {
        false
    }

    /// Revokes `inputs.stored` at the provider.
    fn revoke<'a>(
        &'a self,
        _inputs: &'a Inputs<'a>,
        _tools: Tools<'a>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        async { Ok(()) }.boxed()
    }
}

//! The `oauth1` auth method (OAuth 1.0a, RFC 5849, three-legged): token credentials a
//! person's consent obtained (the flow is `web::consent_oauth1`), which do not expire, and
//! every request to the provider signed with them.
//!
//! Nothing renews them without a person, unless the connector defines a `refresh` request;
//! revoking them is the connector's `disconnect` request, as OAuth 1.0a has no standard
//! revocation.

pub mod client;
pub mod signature;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::method::{Fresh, Held, Inputs, Method, Needs, Reread};
use super::oauth2_app::app_of;
use crate::api::{AuthMethod, SignatureMethod};
use crate::error::Error;
use crate::provider::Tools;
use crate::provider::api_client::Signing;
use crate::provider::signed::RequestSigner;
use crate::store::Credentials;
use client::{Consumer, Signer, Token};

pub struct OAuth1;

/// The signature method of `auth`: HMAC-SHA1 when unset, as most providers require it.
pub fn signature_method(auth: &AuthMethod) -> SignatureMethod {
    auth.signature_method.unwrap_or(SignatureMethod::HmacSha1)
}

/// The three endpoints, by field name.
fn endpoints(auth: &AuthMethod) -> [(&'static str, Option<&str>); 3] {
    [
        ("requestTokenUri", auth.request_token_uri.as_deref()),
        ("authorizeUri", auth.authorize_uri.as_deref()),
        ("accessTokenUri", auth.access_token_uri.as_deref()),
    ]
}

/// The consumer of the connector's app, or why its secret cannot sign.
pub fn consumer(inputs: &Inputs<'_>) -> Result<Consumer, Error> {
    let app = app_of(inputs)?;
    Consumer::of(app, signature_method(inputs.auth)).map_err(|what| {
        Error::InvalidConnector(format!(
            "{} auth.clientSecretRef: the clientSecret {what}, as signatureMethod RSA-SHA1 needs",
            inputs.label
        ))
    })
}

/// The token credentials stored for the Connection.
fn token(stored: &Credentials) -> Option<Token> {
    Some(Token {
        token: stored.get("oauth_token")?.expose_secret().to_owned(),
        secret: stored
            .get("oauth_token_secret")
            .cloned()
            .unwrap_or_else(|| SecretString::from(String::new())),
    })
}

/// Checks what no schema holds: every endpoint passes the host guard, and PLAINTEXT, which
/// sends the secrets as the signature, goes only over TLS.
fn check(inputs: &Inputs<'_>, allow_private: bool) -> Result<(), Error> {
    let auth = inputs.auth;
    let label = inputs.label;
    for (field, uri) in endpoints(auth) {
        let Some(uri) = uri else {
            return Err(Error::InvalidConnector(format!(
                "{label} auth.{field} is required for type oauth1"
            )));
        };
        crate::provider::hosts::check_endpoint(uri, allow_private).map_err(|source| {
            Error::BlockedHost {
                field: format!("{label} auth.{field}"),
                source,
            }
        })?;
    }
    if signature_method(auth) == SignatureMethod::Plaintext {
        let api = inputs
            .connector
            .api_client
            .as_ref()
            .map(|c| c.base_uri.as_str());
        let plain = endpoints(auth)
            .into_iter()
            .chain([("apiClient.baseUri", api)])
            .find(|(_, uri)| uri.is_some_and(|u| !u.starts_with("https://")));
        if let Some((field, _)) = plain {
            return Err(Error::InvalidConnector(format!(
                "{label} auth.signatureMethod PLAINTEXT sends the secrets in the clear, so every URI must be https; {field} is not: use https or another signature method"
            )));
        }
    }
    consumer(inputs).map(drop)
}

impl Method for OAuth1 {
    fn needs(&self) -> Needs {
        super::oauth2_app::NEEDS
    }

    fn check(&self, inputs: &Inputs<'_>, allow_private: bool) -> Result<(), Error> {
        check(inputs, allow_private)
    }

    fn inspect(&self, inputs: &Inputs<'_>) -> Result<Option<Held>, Error> {
        let stored = inputs.stored;
        Ok(Some(Held {
            keep: stored.clone(),
            usable: stored.contains_key("oauth_token"),
            // Token credentials do not expire; a person renews them.
            renewable: false,
            expires_at: None,
            current: true,
            needs_consent: true,
        }))
    }

    fn obtain<'a>(
        &'a self,
        inputs: &'a Inputs<'a>,
        _tools: Tools<'a>,
        _reread: &'a dyn Reread,
        _now: Timestamp,
    ) -> BoxFuture<'a, Result<Fresh, Error>> {
        let without = if inputs.stored.contains_key("oauth_token") {
            "OAuth 1.0a token credentials cannot be renewed without a person: authorize again at status.authorizationUrl"
        } else {
            "no credentials yet: a person must authorize access at the provider"
        };
        async move { Err(Error::AuthorizationRequired(without.to_owned())) }.boxed()
    }

    fn signing(&self, auth: &AuthMethod) -> Option<Signing> {
        Some(Signing::OAuth1 {
            signature_method: signature::method_name(signature_method(auth)),
        })
    }

    fn signer<'a>(
        &self,
        inputs: &Inputs<'a>,
    ) -> Result<Option<Box<dyn RequestSigner + 'a>>, Error> {
        let Some(token) = token(inputs.stored) else {
            return Ok(None);
        };
        Ok(Some(Box::new(Signs {
            consumer: consumer(inputs)?,
            method: signature_method(inputs.auth),
            token,
        })))
    }
}

/// A signer that owns what it signs with, for the connector's test and disconnect requests.
struct Signs {
    consumer: Consumer,
    method: SignatureMethod,
    token: Token,
}

impl Signs {
    fn signer(&self) -> Signer<'_> {
        Signer {
            consumer: &self.consumer,
            method: self.method,
            token: Some(&self.token),
            extra: Vec::new(),
        }
    }
}

impl RequestSigner for Signs {
    fn authorization(
        &self,
        method: &str,
        url: &Url,
        form: &[(String, String)],
    ) -> Result<String, Error> {
        self.signer().authorization(method, url, form)
    }

    fn learn(&self, url: &Url, status: u16, body: &str) -> bool {
        self.signer().learn(url, status, body)
    }
}

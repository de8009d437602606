//! What the two OAuth 2.0 methods (`oauth2` and `client-credentials`) and the consent flow
//! share: the OAuth app a connector names, the endpoints and what is asked of them, and how a
//! token response becomes stored credentials.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::method::{Held, Inputs, Needs};
use super::oauth2::{App, Ask, Endpoints, TokenError, Tokens};
use crate::api::{AuthMethod, AuthType};
use crate::error::Error;
use crate::provider::Tools;
use crate::redact;
use crate::store::Credentials;

/// The OAuth app in the values of the `clientSecretRef` Secret `(namespace, name)` (named
/// by `field`; the namespace when it is not the Connection's).
pub fn app(
    (namespace, name): (Option<&str>, &str),
    field: &str,
    values: &Map<String, Value>,
) -> Result<App, Error> {
    let text = |key: &str| values.get(key).and_then(Value::as_str).map(str::to_owned);
    let missing = |key: &str| Error::SecretKeyNotFound {
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
        key: key.to_owned(),
        field: field.to_owned(),
    };
    Ok(App {
        client_id: text("clientId").ok_or_else(|| missing("clientId"))?,
        client_secret: SecretString::from(
            text("clientSecret").ok_or_else(|| missing("clientSecret"))?,
        ),
    })
}

/// The app `inputs` carries, which gather read and validate checked.
pub fn app_of<'a>(inputs: &'a Inputs<'_>) -> Result<&'a App, Error> {
    inputs.secrets.app.as_ref().ok_or_else(|| {
        Error::InvalidConnector(format!("{} auth needs clientSecretRef", inputs.label))
    })
}

/// Scopes and extra parameters: `connectorParameters.scopes` (merged into `parameters`)
/// overrides the auth method's default scopes, as the integration-engine model has it.
pub fn ask(
    auth: &AuthMethod,
    parameters: &Map<String, Value>,
    extra: Option<&BTreeMap<String, String>>,
) -> Ask {
    let scopes = match parameters.get("scopes") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(joined)) => joined.split_whitespace().map(str::to_owned).collect(),
        _ => auth.scopes.clone().unwrap_or_default(),
    };
    let mut extra: Vec<(String, String)> = extra
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if auth.type_ == AuthType::ClientCredentials
        && let Some(audience) = &auth.audience
    {
        extra.push(("audience".to_owned(), audience.clone()));
    }
    Ask {
        scopes,
        separator: auth
            .scope_separator
            .clone()
            .unwrap_or_else(|| " ".to_owned()),
        extra,
    }
}

/// Checks every OAuth endpoint of the auth method against the host guard.
pub fn guard_endpoints(label: &str, auth: &AuthMethod, allow_private: bool) -> Result<(), Error> {
    for (field, uri) in [
        ("authorizeUri", &auth.authorize_uri),
        ("tokenUri", &auth.token_uri),
        ("revokeUri", &auth.revoke_uri),
    ] {
        if let Some(uri) = uri {
            crate::provider::hosts::check_endpoint(uri, allow_private).map_err(|source| {
                Error::BlockedHost {
                    field: format!("{label} auth.{field}"),
                    source,
                }
            })?;
        }
    }
    Ok(())
}

pub fn endpoints(auth: &AuthMethod) -> Endpoints<'_> {
    Endpoints {
        authorize_uri: auth.authorize_uri.as_deref(),
        token_uri: auth.token_uri.as_deref(),
        revoke_uri: auth.revoke_uri.as_deref(),
        client_auth: auth.client_auth,
    }
}

/// What stored OAuth tokens are worth: usable with an access token, until `expires_at`;
/// `renewable` and `needs_consent` are the grant's.
pub fn held(stored: &Credentials, renewable: bool, needs_consent: bool) -> Held {
    Held {
        keep: stored.clone(),
        usable: stored.contains_key("access_token"),
        renewable,
        expires_at: expires_at(stored),
        current: true,
        needs_consent,
    }
}

/// When stored tokens expire, as their `expires_at` says.
pub fn expires_at(tokens: &Credentials) -> Option<k8s_openapi::jiff::Timestamp> {
    tokens
        .get("expires_at")
        .and_then(|t| t.expose_secret().parse().ok())
}

/// The stored credentials updated with a token response: a response without a refresh token
/// keeps the old one; mapping templates add their keys.
pub fn merge_tokens(
    stored: Credentials,
    new: &Tokens,
    mapping: Option<&BTreeMap<String, String>>,
    tools: Tools<'_>,
    label: &str,
) -> Result<Credentials, Error> {
    let mut credentials = with_tokens(stored, new);
    map_response(&mut credentials, new, mapping, tools, label)?;
    Ok(credentials)
}

/// The stored credentials with the standard fields of a token response; a response without
/// a refresh token keeps the old one.
pub fn with_tokens(mut stored: Credentials, new: &Tokens) -> Credentials {
    stored.insert("access_token".into(), new.access_token.clone());
    if let Some(rt) = &new.refresh_token {
        stored.insert("refresh_token".into(), rt.clone());
    }
    stored.insert(
        "token_type".into(),
        SecretString::from(new.token_type.clone()),
    );
    match new.expires_at {
        Some(at) => stored.insert("expires_at".into(), SecretString::from(at.to_string())),
        None => stored.remove("expires_at"),
    };
    if let Some(scope) = &new.scope {
        stored.insert("scope".into(), SecretString::from(scope.clone()));
    }
    stored
}

/// Adds the keys the connector's mapping templates render from the token response.
pub fn map_response(
    credentials: &mut Credentials,
    new: &Tokens,
    mapping: Option<&BTreeMap<String, String>>,
    tools: Tools<'_>,
    label: &str,
) -> Result<(), Error> {
    super::response_mapping::apply(
        credentials,
        &new.response.0,
        mapping,
        tools,
        &format!("{label} auth credentials mapping"),
    )
}

/// `err` with the OAuth app's client secret taken out of the provider's words, which reach
/// status and logs: a provider may quote the credentials it refused.
pub fn without_client_secret(err: TokenError, app: &App) -> TokenError {
    let secret = [app.client_secret.expose_secret().to_owned()];
    let hide = |text: String| redact::redact(&text, &secret);
    match err {
        TokenError::InvalidGrant(d) => TokenError::InvalidGrant(d.map(hide)),
        TokenError::Rejected { code, description } => TokenError::Rejected {
            code,
            description: description.map(hide),
        },
        TokenError::Unavailable {
            message,
            retry_after,
        } => TokenError::Unavailable {
            message: hide(message),
            retry_after,
        },
        TokenError::Misconfigured(m) => TokenError::Misconfigured(hide(m)),
        TokenError::Unreadable {
            message,
            refresh_token,
        } => TokenError::Unreadable {
            message: hide(message),
            refresh_token,
        },
    }
}

/// A failed token request as the reconcile's error. Unavailability stays transient: the
/// plan keeps a still-valid access token in use and retries.
pub fn token_error(err: TokenError) -> Error {
    match err {
        TokenError::Unavailable {
            message,
            retry_after,
        } => Error::ProviderUnavailable {
            message,
            retry_after,
        },
        TokenError::InvalidGrant(d) => Error::TokenRevoked(format!(
            "the provider refused the grant (invalid_grant{})",
            d.map(|d| format!(": {d}")).unwrap_or_default()
        )),
        TokenError::Rejected { code, description } => Error::InvalidConnector(format!(
            "the token endpoint refused the request ({code}{}); check the OAuth app in clientSecretRef",
            description.map(|d| format!(": {d}")).unwrap_or_default()
        )),
        TokenError::Misconfigured(message) => Error::InvalidConnector(message),
        TokenError::Unreadable { message, .. } => Error::unavailable(message),
    }
}

/// Counts one token request by its outcome.
pub fn count(tools: Tools<'_>, result: &Result<Tokens, TokenError>, took: std::time::Duration) {
    tools.metrics.provider_call("token", took);
    tools.metrics.refreshed(match result {
        Ok(_) => "success",
        Err(TokenError::Unavailable { .. } | TokenError::Unreadable { .. }) => "unavailable",
        Err(TokenError::InvalidGrant(_)) => "revoked",
        Err(_) => "rejected",
    });
}

/// What both OAuth 2.0 methods read of a connector: its OAuth app.
pub const NEEDS: Needs = Needs {
    app: true,
    signing_key: false,
};

/// Revocation for both OAuth 2.0 methods: RFC 7009, when the connector names a `revokeUri`.
pub fn revoke<'a>(inputs: &'a Inputs<'a>, tools: Tools<'a>) -> BoxFuture<'a, Result<(), Error>> {
    async move {
        if inputs.auth.revoke_uri.is_none() {
            return Ok(());
        }
        revoke_tokens(inputs, tools).await
    }
    .boxed()
}

/// RFC 7009 revocation of the stored tokens: the refresh token first (revoking it usually
/// ends the grant and its access tokens), then the access token.
async fn revoke_tokens(inputs: &Inputs<'_>, tools: Tools<'_>) -> Result<(), Error> {
    guard_endpoints(inputs.label, inputs.auth, tools.allow_private_networks)?;
    let app = app_of(inputs)?;
    let endpoints = endpoints(inputs.auth);
    for (key, refresh) in [("refresh_token", true), ("access_token", false)] {
        let Some(token) = inputs.stored.get(key) else {
            continue;
        };
        super::oauth2::revoke(tools.http, app, &endpoints, token, refresh)
            .await
            .map_err(|err| match err {
                TokenError::Unavailable { .. } => token_error(err),
                other => Error::DisconnectFailed(format!("revoking the {key} failed: {other}")),
            })?;
    }
    Ok(())
}

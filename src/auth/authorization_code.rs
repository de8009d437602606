//! The `oauth2` auth method: tokens a person's consent obtained (the consent flow in
//! `web::consent` stores the first ones), refreshed with the refresh-token grant.
//!
//! Rotation safety: the refresh token used is the one the reconcile read from the store a
//! moment before; on `invalid_grant` the store is read again, because another writer (the
//! callback, or a previous leader) may have rotated it in between; the new tokens are stored
//! before anything uses them; a response without a refresh token keeps the old one.

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};

use super::method::{Fresh, Held, Inputs, Method, Needs, Reread};
use super::oauth2::{self as flow, TokenError, Tokens};
use super::oauth2_app::{self as app, app_of};
use crate::api::AuthMethod;
use crate::error::Error;
use crate::provider::Tools;

pub struct AuthorizationCode;

impl Method for AuthorizationCode {
    fn needs(&self) -> Needs {
        app::NEEDS
    }

    fn check(&self, inputs: &Inputs<'_>, allow_private: bool) -> Result<(), Error> {
        app::guard_endpoints(inputs.label, inputs.auth, allow_private)
    }

    fn inspect(&self, inputs: &Inputs<'_>) -> Result<Option<Held>, Error> {
        let stored = inputs.stored;
        // Renewable with a refresh token; without tokens a person must consent.
        Ok(Some(app::held(
            stored,
            stored.contains_key("refresh_token"),
            true,
        )))
    }

    fn obtain<'a>(
        &'a self,
        inputs: &'a Inputs<'a>,
        tools: Tools<'a>,
        reread: &'a dyn Reread,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Fresh, Error>> {
        refresh(inputs, tools, reread, now).boxed()
    }

    fn revokes(&self, auth: &AuthMethod) -> bool {
        auth.revoke_uri.is_some()
    }

    fn revoke<'a>(
        &'a self,
        inputs: &'a Inputs<'a>,
        tools: Tools<'a>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        app::revoke(inputs, tools)
    }
}

/// The refresh-token grant, with the rotation rules.
async fn refresh(
    inputs: &Inputs<'_>,
    tools: Tools<'_>,
    reread: &dyn Reread,
    now: Timestamp,
) -> Result<Fresh, Error> {
    let app = app_of(inputs)?;
    let stored = inputs.stored;
    if !stored.contains_key("access_token") {
        return Err(Error::AuthorizationRequired(
            "no credentials yet: a person must authorize access at the provider".to_owned(),
        ));
    }
    let Some(refresh_token) = stored.get("refresh_token").cloned() else {
        let expired = app::expires_at(stored).is_some_and(|e| now >= e);
        if inputs.auth.no_refresh_token == Some(true) || expired {
            return Err(Error::AuthorizationRequired("the access token expired and there is no refresh token: a person must authorize again".to_owned()));
        }
        return Err(Error::AuthorizationRequired(
            "there is no refresh token: a person must authorize again".to_owned(),
        ));
    };
    let extra: Vec<(String, String)> = inputs
        .auth
        .extra_token_params
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let endpoints = app::endpoints(inputs.auth);
    let (endpoints, extra) = (&endpoints, &extra);
    let grant = |token: SecretString| async move {
        let started = std::time::Instant::now();
        let result = flow::refresh(tools.http, app, endpoints, &token, extra)
            .await
            .map_err(|err| app::without_client_secret(err, app));
        app::count(tools, &result, started.elapsed());
        result
    };
    let result = match grant(refresh_token.clone()).await {
        Err(TokenError::InvalidGrant(description)) => {
            // Another writer may have rotated the token between our read and our use.
            let again = reread.stored().await?;
            match again.get("refresh_token") {
                Some(rotated) if rotated.expose_secret() != refresh_token.expose_secret() => {
                    grant(rotated.clone()).await
                }
                _ => {
                    return Err(Error::RefreshTokenRefused(format!(
                        "the provider refused the refresh token (invalid_grant{}): a person must authorize again",
                        description.map(|d| format!(": {d}")).unwrap_or_default()
                    )));
                }
            }
        }
        other => other,
    };
    let tokens = match result {
        // The answer cannot be read, but the refresh token in it is the only copy of the
        // rotated one: it is stored with the access token in use, and the error shown.
        Err(TokenError::Unreadable {
            message,
            refresh_token: Some(rotated),
        }) => return Ok(salvaged(inputs, rotated, message)),
        other => other.map_err(app::token_error)?,
    };
    Ok(fresh(inputs, tools, &tokens))
}

/// The stored credentials with a refresh token salvaged from an unreadable answer.
fn salvaged(inputs: &Inputs<'_>, refresh_token: SecretString, message: String) -> Fresh {
    let mut credentials = inputs.stored.clone();
    credentials.insert("refresh_token".to_owned(), refresh_token);
    Fresh {
        expires_at: app::expires_at(&credentials),
        credentials,
        issued: true,
        unusable: Some(Error::unavailable(message)),
    }
}

/// The stored credentials updated with `tokens`, mapped as the connector says.
fn fresh(inputs: &Inputs<'_>, tools: Tools<'_>, tokens: &Tokens) -> Fresh {
    let mapping = inputs
        .auth
        .credentials_from_refresh_response
        .as_ref()
        .or(inputs.auth.credentials_from_token_response.as_ref());
    let mut credentials = app::with_tokens(inputs.stored.clone(), tokens);
    let unusable = app::map_response(&mut credentials, tokens, mapping, tools, inputs.label).err();
    Fresh {
        credentials,
        expires_at: tokens.expires_at,
        issued: true,
        unusable,
    }
}

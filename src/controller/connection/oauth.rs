//! Step 3 for `oauth2` and `client-credentials`: use the stored tokens while they are fresh,
//! refresh them ahead of expiry, and decide when a person must authorize again.
//!
//! Rotation safety: the refresh token comes from the credentials Secret as the reconcile read
//! it from the API a moment before (`store::read`; there is no cached copy to be stale); on
//! `invalid_grant` the store is read again, because another writer (the callback, or a
//! previous leader) may have rotated it in between; new tokens are persisted before anything uses them
//! (see `store::apply` with a precondition); a response without a refresh token keeps the old
//! one.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::credentials::Credentials;
use super::dereference::Resolved;
use super::store;
use crate::api::{AuthType, Connection};
use crate::auth::oauth2::{self as flow, App, Ask, Endpoints, TokenError, Tokens};
use crate::controller::Context;
use crate::error::Error;
use crate::{schemas, templates};

/// The annotation that asks for one refresh now; its value is echoed in status.
pub const REFRESH_REQUESTED_AT: &str = "plugboard.dev/refresh-requested-at";

/// Refresh no later than this before expiry, whatever the lifetime: leaves room for a few
/// retries against a struggling token endpoint before the access token lapses.
const MIN_MARGIN: Duration = Duration::from_secs(300);
/// And no later than this share of the lifetime before expiry, for long-lived tokens.
const MARGIN_SHARE: f64 = 0.2;
/// But the margin never takes more than this share of the lifetime: short tokens (Keycloak
/// issues 5-minute ones by default) are used for at least half their life, not refreshed
/// as soon as they arrive.
const MAX_MARGIN_SHARE: f64 = 0.4;
/// Never refresh sooner than this after tokens were issued: a token endpoint that hands out
/// tokens with no lifetime left (`expires_in: 0`) is asked every five seconds, not in a loop,
/// while a ten-second token is still replaced before it expires.
const MIN_REFRESH_GAP: SignedDuration = SignedDuration::from_secs(5);
/// Up to this share of the lifetime is added at random, so tokens issued together spread
/// their refreshes instead of arriving at the token endpoint in one burst.
const JITTER_SHARE: f64 = 0.1;

/// What obtaining credentials produced, beyond the credentials themselves.
#[derive(Debug, Default)]
pub struct Obtained {
    pub credentials: Credentials,
    /// The stored Secret's resourceVersion when new tokens must be persisted over it.
    pub precondition: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub next_refresh_at: Option<Timestamp>,
    pub refreshed_at: Option<Timestamp>,
    /// The refresh failed transiently while the access token is still valid: try again then.
    pub retry_in: Option<Duration>,
    /// The annotation value acted on in this reconcile.
    pub refresh_requested_at: Option<String>,
    /// New tokens arrived but cannot be used as the connector says (a response mapping failed
    /// to render). They are stored all the same, for the refresh token in them, and this is
    /// the error the Connection shows.
    pub unusable: Option<Error>,
}

/// The stored tokens, if any, read from the credentials Secret.
fn stored(secret: Option<&Secret>) -> BTreeMap<String, SecretString> {
    secret
        .and_then(|s| s.data.as_ref())
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != store::API_CLIENT_KEY)
        .map(|(k, v)| {
            (
                k.clone(),
                SecretString::from(String::from_utf8_lossy(&v.0).into_owned()),
            )
        })
        .collect()
}

/// The OAuth app from the connector's `clientSecretRef`, checked against
/// `customCredentialsSchema`.
pub async fn app(conn: &Connection, resolved: &Resolved, ctx: &Context) -> Result<App, Error> {
    let label = &resolved.connector_label;
    let reference =
        resolved.auth.client_secret_ref.as_ref().ok_or_else(|| {
            Error::InvalidConnector(format!("{label} auth needs clientSecretRef"))
        })?;
    let field = format!("{label} auth.clientSecretRef");
    let secret = super::dereference::connector_secret(
        conn,
        resolved,
        &reference.name,
        reference.namespace.as_deref(),
        &field,
        ctx,
    )
    .await?;
    let values: Map<String, Value> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                Value::String(String::from_utf8_lossy(&v.0).into_owned()),
            )
        })
        .collect();
    if let Some(schema) = &resolved.connector.custom_credentials_schema {
        let validator = schemas::compile(&schema.to_value()).map_err(|err| {
            Error::InvalidConnector(format!(
                "{label} spec.customCredentialsSchema does not compile: {err}"
            ))
        })?;
        let found = schemas::violations(&validator, &Value::Object(values.clone()));
        if !found.is_empty() {
            return Err(Error::InvalidConnector(format!(
                "Secret {:?} ({field}) does not match spec.customCredentialsSchema: {}",
                reference.name,
                schemas::describe(&found)
            )));
        }
    }
    let text = |key: &str| values.get(key).and_then(Value::as_str).map(str::to_owned);
    let missing = |key: &str| Error::SecretKeyNotFound {
        name: reference.name.clone(),
        key: key.to_owned(),
        field: field.clone(),
    };
    Ok(App {
        client_id: text("clientId").ok_or_else(|| missing("clientId"))?,
        client_secret: SecretString::from(
            text("clientSecret").ok_or_else(|| missing("clientSecret"))?,
        ),
    })
}

/// Scopes and extra parameters: `connectorParameters.scopes` (merged into `parameters`)
/// overrides the auth method's default scopes, as the integration-engine model has it.
pub fn ask(
    resolved: &Resolved,
    parameters: &Map<String, Value>,
    extra: Option<&BTreeMap<String, String>>,
) -> Ask {
    let scopes = match parameters.get("scopes") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(joined)) => joined.split_whitespace().map(str::to_owned).collect(),
        _ => resolved.auth.scopes.clone().unwrap_or_default(),
    };
    let mut extra: Vec<(String, String)> = extra
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if resolved.auth.type_ == AuthType::ClientCredentials
        && let Some(audience) = &resolved.auth.audience
    {
        extra.push(("audience".to_owned(), audience.clone()));
    }
    Ask {
        scopes,
        separator: resolved
            .auth
            .scope_separator
            .clone()
            .unwrap_or_else(|| " ".to_owned()),
        extra,
    }
}

/// Checks every OAuth endpoint of the auth method against the host guard.
pub fn guard_endpoints(resolved: &Resolved, ctx: &Context) -> Result<(), Error> {
    let auth = &resolved.auth;
    for (field, uri) in [
        ("authorizeUri", &auth.authorize_uri),
        ("tokenUri", &auth.token_uri),
        ("revokeUri", &auth.revoke_uri),
    ] {
        if let Some(uri) = uri {
            crate::provider::hosts::check_endpoint(uri, ctx.config.allow_private_networks)
                .map_err(|source| Error::BlockedHost {
                    field: format!("{} auth.{field}", resolved.connector_label),
                    source,
                })?;
        }
    }
    Ok(())
}

pub fn endpoints(resolved: &Resolved) -> Endpoints<'_> {
    Endpoints {
        authorize_uri: resolved.auth.authorize_uri.as_deref(),
        token_uri: resolved.auth.token_uri.as_deref(),
        revoke_uri: resolved.auth.revoke_uri.as_deref(),
        client_auth: resolved.auth.client_auth,
    }
}

fn expires_at(tokens: &BTreeMap<String, SecretString>) -> Option<Timestamp> {
    tokens
        .get("expires_at")
        .and_then(|t| t.expose_secret().parse().ok())
}

/// When to refresh tokens that expire at `expires_at` and were issued at `issued_at`.
pub fn refresh_due(issued_at: Timestamp, expires_at: Timestamp) -> Timestamp {
    let earliest = issued_at.checked_add(MIN_REFRESH_GAP).unwrap_or(issued_at);
    ahead_of(expires_at, issued_at).max(earliest)
}

/// A margin and a jitter before `expires_at`, both shares of the life left since `from`;
/// never before `from`.
fn ahead_of(expires_at: Timestamp, from: Timestamp) -> Timestamp {
    let lifetime = Duration::try_from(expires_at.duration_since(from)).unwrap_or_default();
    let margin = MIN_MARGIN
        .max(lifetime.mul_f64(MARGIN_SHARE))
        .min(lifetime.mul_f64(MAX_MARGIN_SHARE));
    let jitter = lifetime.mul_f64(JITTER_SHARE * rand::random::<f64>());
    let before = SignedDuration::try_from(margin + jitter).unwrap_or(SignedDuration::MAX);
    expires_at.checked_sub(before).unwrap_or(from).max(from)
}

/// Credentials for `oauth2` and `client-credentials`.
pub async fn obtain(
    conn: &Connection,
    resolved: &Resolved,
    parameters: &Map<String, Value>,
    current: Option<&Secret>,
    ctx: &Context,
    now: Timestamp,
) -> Result<Obtained, Error> {
    let tokens = stored(current);
    let status = conn.status.clone().unwrap_or_default();
    let requested = conn.annotations().get(REFRESH_REQUESTED_AT).cloned();
    let forced = requested.is_some() && requested != status.refresh_requested_at;
    let expires = expires_at(&tokens);
    let has_token = tokens.contains_key("access_token");
    let due = scheduled_refresh(&status, expires, now);
    let fresh = has_token && !forced && due.is_none_or(|due| now < due);
    let mut obtained = Obtained {
        expires_at: expires,
        next_refresh_at: due.filter(|_| has_token),
        refresh_requested_at: status.refresh_requested_at.clone(),
        ..Obtained::default()
    };
    if fresh {
        obtained.credentials = tokens;
        return Ok(obtained);
    }
    // Without a refresh token nothing can be renewed, but the access token still works
    // until it expires: it stays in use, and the next look is at its expiry.
    let unrenewable = resolved.auth.type_ == AuthType::Oauth2
        && has_token
        && !forced
        && !tokens.contains_key("refresh_token");
    if unrenewable && let Some(expires) = expires.filter(|e| now < *e) {
        obtained.credentials = tokens;
        obtained.next_refresh_at = Some(expires);
        return Ok(obtained);
    }
    tracing::debug!(
        forced,
        has_token,
        due = ?due,
        version = conn.metadata.resource_version.as_deref(),
        "requesting tokens"
    );
    let result = request_tokens(conn, resolved, parameters, ctx, (&tokens, expires), now).await?;
    match result {
        Ok(new) => {
            // Echoed only once done: a request that failed is retried with the next attempt.
            obtained.refresh_requested_at = requested.or(obtained.refresh_requested_at);
            let response_templates = if resolved.auth.type_ == AuthType::Oauth2 {
                resolved
                    .auth
                    .credentials_from_refresh_response
                    .as_ref()
                    .or(resolved.auth.credentials_from_token_response.as_ref())
            } else {
                resolved.auth.credentials_from_token_response.as_ref()
            };
            obtained.credentials = with_tokens(tokens, &new);
            obtained.unusable = map_response(
                &mut obtained.credentials,
                &new,
                response_templates,
                ctx,
                &resolved.connector_label,
            )
            .err();
            obtained.expires_at = new.expires_at;
            obtained.next_refresh_at = new.expires_at.map(|e| refresh_due(now, e));
            obtained.refreshed_at = Some(now);
            obtained.precondition = Some(
                current
                    .and_then(|s| s.resource_version())
                    .unwrap_or_default(),
            );
            Ok(obtained)
        }
        Err(err) => {
            // The stored tokens stay in use while they are valid.
            obtained.credentials = tokens;
            unavailable_or_fail(err, obtained, expires, has_token, now)
        }
    }
}

/// When the stored tokens are due for refresh: the time status recorded, or for tokens that
/// came without one (from the callback) a margin before their expiry.
pub(super) fn scheduled_refresh(
    status: &crate::api::ConnectionStatus,
    expires: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    let recorded = status
        .next_refresh_at
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok());
    // Their issue time is unknown, so no MIN_REFRESH_GAP: tokens stored already expired are
    // refreshed at once.
    recorded.or_else(|| expires.map(|e| ahead_of(e, now)))
}

/// One token request for the auth type, timed and counted.
async fn request_tokens(
    conn: &Connection,
    resolved: &Resolved,
    parameters: &Map<String, Value>,
    ctx: &Context,
    (tokens, expires): (&Credentials, Option<Timestamp>),
    now: Timestamp,
) -> Result<Result<Tokens, TokenError>, Error> {
    guard_endpoints(resolved, ctx)?;
    let app = app(conn, resolved, ctx).await?;
    let started = std::time::Instant::now();
    let result = match resolved.auth.type_ {
        AuthType::ClientCredentials => {
            let ask = ask(
                resolved,
                parameters,
                resolved.auth.extra_token_params.as_ref(),
            );
            flow::client_credentials(&ctx.http, &app, &endpoints(resolved), &ask)
                .await
                .map_err(|err| without_client_secret(err, &app))
        }
        _ => refresh_oauth2(conn, resolved, &app, ctx, (tokens, expires), now).await?,
    };
    ctx.metrics.provider_call("token", started.elapsed());
    ctx.metrics.refreshed(match &result {
        Ok(_) => "success",
        Err(TokenError::Unavailable { .. }) => "unavailable",
        Err(TokenError::InvalidGrant(_)) => "revoked",
        Err(_) => "rejected",
    });
    Ok(result)
}

/// The refresh-token grant, with the rotation rules; `Err` for outcomes that end the attempt.
async fn refresh_oauth2(
    conn: &Connection,
    resolved: &Resolved,
    app: &App,
    ctx: &Context,
    (tokens, expires): (&Credentials, Option<Timestamp>),
    now: Timestamp,
) -> Result<Result<Tokens, TokenError>, Error> {
    if !tokens.contains_key("access_token") {
        return Err(Error::AuthorizationRequired(
            "no credentials yet: a person must authorize access at the provider".to_owned(),
        ));
    }
    let Some(refresh_token) = tokens.get("refresh_token").cloned() else {
        if resolved.auth.no_refresh_token == Some(true) || expires.is_some_and(|e| now >= e) {
            return Err(Error::AuthorizationRequired("the access token expired and there is no refresh token: a person must authorize again".to_owned()));
        }
        return Err(Error::AuthorizationRequired(
            "there is no refresh token: a person must authorize again".to_owned(),
        ));
    };
    let extra: Vec<(String, String)> = resolved
        .auth
        .extra_token_params
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let endpoints = endpoints(resolved);
    let (endpoints, extra) = (&endpoints, &extra);
    let refresh = |token| async move {
        flow::refresh(&ctx.http, app, endpoints, token, extra)
            .await
            .map_err(|err| without_client_secret(err, app))
    };
    match refresh(&refresh_token).await {
        Err(TokenError::InvalidGrant(description)) => {
            // Another writer may have rotated the token between our read and our use.
            let again = stored(store::read(conn, ctx).await?.as_ref());
            match again.get("refresh_token") {
                Some(rotated) if rotated.expose_secret() != refresh_token.expose_secret() => {
                    Ok(refresh(rotated).await)
                }
                _ => Err(Error::TokenRevoked(format!(
                    "the provider refused the refresh token (invalid_grant{}): a person must authorize again",
                    description.map(|d| format!(": {d}")).unwrap_or_default()
                ))),
            }
        }
        other => Ok(other),
    }
}

/// `err` with the OAuth app's client secret taken out of the provider's words, which reach
/// status and logs: a provider may quote the credentials it refused.
fn without_client_secret(err: TokenError, app: &App) -> TokenError {
    let secret = [app.client_secret.expose_secret().to_owned()];
    let hide = |text: String| super::redact(&text, &secret);
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
    }
}

/// A failed token request: transient failures keep a still-valid access token in use.
fn unavailable_or_fail(
    err: TokenError,
    mut obtained: Obtained,
    expires: Option<Timestamp>,
    has_token: bool,
    now: Timestamp,
) -> Result<Obtained, Error> {
    match err {
        TokenError::Unavailable {
            message,
            retry_after,
        } => {
            let still_valid = has_token && expires.is_none_or(|e| now < e);
            if !still_valid {
                return Err(Error::ProviderUnavailable {
                    message,
                    retry_after,
                });
            }
            obtained.retry_in = Some(retry_after.unwrap_or(Duration::from_secs(1)));
            Ok(obtained)
        }
        TokenError::InvalidGrant(d) => Err(Error::TokenRevoked(format!(
            "the provider refused the grant (invalid_grant{})",
            d.map(|d| format!(": {d}")).unwrap_or_default()
        ))),
        TokenError::Rejected { code, description } => Err(Error::InvalidConnector(format!(
            "the token endpoint refused the request ({code}{}); check the OAuth app in clientSecretRef",
            description.map(|d| format!(": {d}")).unwrap_or_default()
        ))),
        TokenError::Misconfigured(message) => Err(Error::InvalidConnector(message)),
    }
}

/// The stored credentials updated with a token response: a response without a refresh token
/// keeps the old one; mapping templates add their keys.
pub fn merge_tokens(
    stored: BTreeMap<String, SecretString>,
    new: &Tokens,
    templates_map: Option<&BTreeMap<String, String>>,
    ctx: &Context,
    label: &str,
) -> Result<Credentials, Error> {
    let mut credentials = with_tokens(stored, new);
    map_response(&mut credentials, new, templates_map, ctx, label)?;
    Ok(credentials)
}

/// The stored credentials with the standard fields of a token response; a response without
/// a refresh token keeps the old one.
fn with_tokens(mut stored: BTreeMap<String, SecretString>, new: &Tokens) -> Credentials {
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
fn map_response(
    credentials: &mut Credentials,
    new: &Tokens,
    templates_map: Option<&BTreeMap<String, String>>,
    ctx: &Context,
    label: &str,
) -> Result<(), Error> {
    let Some(map) = templates_map else {
        return Ok(());
    };
    let context = templates::to_value(&serde_json::json!({"response": new.response.0}));
    for (key, source) in map {
        let rendered =
            ctx.templates
                .render(source, &context)
                .map_err(|source| Error::InvalidTemplate {
                    field: format!("{label} auth credentials mapping {key}"),
                    source,
                })?;
        credentials.insert(key.clone(), SecretString::from(rendered));
    }
    Ok(())
}

/// The link a person follows to authorize: the operator's own connect endpoint.
pub fn authorization_url(conn: &Connection, ctx: &Context) -> Option<String> {
    super::authorize::connect_link(conn, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_one_hour_token_refreshes_between_twelve_and_eighteen_minutes_early() {
        let issued = at("2026-01-01T00:00:00Z");
        let expires = at("2026-01-01T01:00:00Z");
        for _ in 0..100 {
            let due = refresh_due(issued, expires);
            let early = expires.duration_since(due).as_secs();
            // 20 % of 60 min is 12 min; jitter adds up to 10 % (6 min).
            assert!((720..=1080).contains(&early), "{early}s early");
        }
    }

    #[test]
    fn a_half_hour_token_refreshes_at_least_five_minutes_early() {
        let issued = at("2026-01-01T00:00:00Z");
        let expires = at("2026-01-01T00:30:00Z");
        for _ in 0..100 {
            let due = refresh_due(issued, expires);
            assert!(expires.duration_since(due).as_secs() >= 300);
        }
    }

    #[test]
    fn a_five_minute_token_is_used_for_half_its_life_before_it_is_refreshed() {
        let issued = at("2026-01-01T00:00:00Z");
        let expires = at("2026-01-01T00:05:00Z");
        for _ in 0..100 {
            let used = refresh_due(issued, expires)
                .duration_since(issued)
                .as_secs();
            // The margin is capped at 40 % (120 s) and the jitter adds up to 10 % (30 s).
            assert!((150..=180).contains(&used), "refreshed after {used}s");
        }
    }

    #[test]
    fn a_token_without_lifetime_is_not_refreshed_in_a_loop() {
        let issued = at("2026-01-01T00:00:00Z");
        for expires in [
            issued,
            at("2025-12-31T23:59:00Z"),
            at("2026-01-01T00:00:05Z"),
        ] {
            let wait = refresh_due(issued, expires)
                .duration_since(issued)
                .as_secs();
            assert_eq!(wait, 5, "expiring at {expires}");
        }
    }

    #[test]
    fn refreshes_spread_out() {
        let issued = at("2026-01-01T00:00:00Z");
        let expires = at("2026-01-01T01:00:00Z");
        let mut dues: Vec<Timestamp> = (0..50).map(|_| refresh_due(issued, expires)).collect();
        dues.sort();
        dues.dedup();
        assert!(
            dues.len() > 40,
            "tokens issued together get different refresh times"
        );
    }
}

//! The consent flow of `oauth2` and `oauth1` Connections, as the operator's web endpoints
//! drive it: start (redirect the person to the provider) and complete (exchange the code or
//! verifier, store the tokens through the Connection's credential store, as the reconcile
//! does). The reconcile then sees the stored tokens through its watch and tests them. What
//! OAuth 1.0a does differently is in `consent_oauth1`; what both share in `consent_shared`.

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{AuthType, Connection};
use crate::auth::method::ConnectorSecrets;
use crate::auth::oauth2::{self as flow, App};
use crate::auth::oauth2_app;
use crate::auth::state::{self, Claims, STATE_LIFETIME_SECS, SessionMark};
use crate::controller::Context;
use crate::controller::connection::shared::{self as observe, Observed};
use crate::store::Credentials;

pub use super::consent_shared::{CONSENTED_AT, FlowError, redirect_allowed};
use super::consent_shared::{connection, store_consented, unspent, verified};

/// Starts a flow from a Connection's consent link: the signature must be this Connection's.
pub async fn start_signed(
    ctx: &Context,
    namespace: &str,
    name: &str,
    signature: &str,
    redirect: Option<String>,
) -> Result<url::Url, FlowError> {
    let key = ctx
        .config
        .state_key
        .as_deref()
        .ok_or(FlowError::NotConfigured)?;
    let conn = match connection(ctx, namespace, name).await {
        Err(FlowError::NotFound(_)) => return Err(FlowError::LinkNotValid),
        other => other?,
    };
    let uid = conn.uid().unwrap_or_default();
    if !crate::auth::link::signed(key, namespace, name, &uid, signature) {
        return Err(FlowError::LinkNotValid);
    }
    consent(ctx, &conn, redirect, None).await
}

/// Starts a flow for a caller that has already shown its right to the Connection (`POST
/// /connect` with a tenant token, or a connect session): returns the provider's consent URL.
pub async fn start(
    ctx: &Context,
    namespace: &str,
    name: &str,
    redirect: Option<String>,
    session: Option<SessionMark>,
) -> Result<url::Url, FlowError> {
    let conn = connection(ctx, namespace, name).await?;
    consent(ctx, &conn, redirect, session).await
}

/// The provider's consent URL for `conn`, with a fresh signed state.
async fn consent(
    ctx: &Context,
    conn: &Connection,
    redirect: Option<String>,
    session: Option<SessionMark>,
) -> Result<url::Url, FlowError> {
    if let Some(r) = &redirect
        && !redirect_allowed(r, &ctx.config.redirect_allowlist)
    {
        return Err(FlowError::RedirectNotAllowed);
    }
    let (Some(key), Some(public)) = (&ctx.config.state_key, &ctx.config.public_url) else {
        return Err(FlowError::NotConfigured);
    };
    let (namespace, name) = (conn.namespace().unwrap_or_default(), conn.name_any());
    let obs = observe::gather(conn, ctx).await?;
    let claims = Claims {
        ns: namespace.clone(),
        name: name.clone(),
        uid: conn.uid().unwrap_or_default(),
        exp: Timestamp::now().as_second() + STATE_LIFETIME_SECS,
        nonce: state::nonce(),
        redirect,
        session,
    };
    if obs.resolved.auth.type_ == AuthType::Oauth1 {
        return super::consent_oauth1::start(ctx, &obs, &key.sign(&claims), &claims, public).await;
    }
    let app = &oauth_app(&obs, ctx, &namespace, &name)?;
    let auth = &obs.resolved.auth;
    let ask = oauth2_app::ask(auth, &obs.parameters, auth.extra_authorize_params.as_ref());
    let verifier = key.pkce_verifier(&claims.nonce);
    let callback = format!("{public}/oauth/callback");
    flow::authorize_url(
        app,
        &oauth2_app::endpoints(auth),
        &callback,
        &ask,
        key.sign(&claims),
        verifier,
    )
    .map_err(|err| FlowError::Failed(err.to_string()))
}

/// Completes a flow: verifies the state, exchanges the code, stores the tokens. Returns the
/// verified claims (for the redirect).
pub async fn complete(ctx: &Context, state_param: &str, code: &str) -> Result<Claims, FlowError> {
    let Some(public) = &ctx.config.public_url else {
        return Err(FlowError::NotConfigured);
    };
    let (claims, conn) = verified(ctx, state_param).await?;
    let obs = observe::gather(&conn, ctx).await?;
    let spent = unspent(&obs, &claims)?;
    let key = ctx
        .config
        .state_key
        .as_ref()
        .ok_or(FlowError::NotConfigured)?;
    let app = &oauth_app(&obs, ctx, &claims.ns, &claims.name)?;
    let auth = &obs.resolved.auth;
    let callback = format!("{public}/oauth/callback");
    let tokens = flow::exchange_code(
        &ctx.http,
        app,
        &oauth2_app::endpoints(auth),
        &callback,
        code,
        key.pkce_verifier(&claims.nonce),
    )
    .await
    .map_err(|err| FlowError::Failed(format!("exchanging the authorization code failed: {err}")))?;
    let stored = oauth2_app::merge_tokens(
        Credentials::new(),
        &tokens,
        auth.credentials_from_token_response.as_ref(),
        ctx.tools(),
        &obs.resolved.connector_label,
    )?;
    store_consented(ctx, &obs, &claims, spent, &stored).await?;
    Ok(claims)
}

/// The OAuth app of an `oauth2` Connection, its endpoints checked against the host guard.
fn oauth_app(
    obs: &Observed<'_>,
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<App, FlowError> {
    if obs.resolved.auth.type_ != AuthType::Oauth2 {
        return Err(FlowError::NotOauth(format!("{namespace}/{name}")));
    }
    let label = &obs.resolved.connector_label;
    oauth2_app::guard_endpoints(label, &obs.resolved.auth, ctx.config.allow_private_networks)?;
    let ConnectorSecrets { app, .. } = observe::connector_secrets(obs)?;
    app.ok_or_else(|| FlowError::Failed(format!("{label} auth needs clientSecretRef")))
}

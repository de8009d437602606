//! The consent flow of `oauth2` Connections, as the operator's web endpoints drive it: start
//! (redirect the person to the provider) and complete (exchange the code, store the tokens).
//! The reconcile then sees the stored tokens through its Secret watch and tests them.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use secrecy::ExposeSecret;

use super::{dereference, oauth, store, validate};
use crate::api::{AuthType, Connection};
use crate::auth::oauth2 as flow;
use crate::auth::state::{self, Claims, STATE_LIFETIME_SECS, StateError};
use crate::controller::{Context, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::error::Error;

/// The field manager of what the callback writes: distinct from the controller's, so the
/// controller's own applies never remove the consumed-state annotation.
const CONNECT_MANAGER: &str = "plugboard-connect";
/// Records the last completed flow on the credentials Secret, so its state is refused if it
/// comes back.
pub const CONSUMED_STATE: &str = "plugboard.dev/authorized-state";

/// Why a flow could not start or finish. The message is shown to the person in the browser,
/// so it says what to do and never carries a token or a code.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("Connection {0} was not found")]
    NotFound(String),
    #[error("Connection {0} does not use OAuth 2.0 authorization")]
    NotOauth(String),
    #[error("the redirect address is not in the operator's allowlist")]
    RedirectNotAllowed,
    #[error("the operator has no state signing key or public URL configured")]
    NotConfigured,
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "this authorization link was already used; start again from the Connection's authorizationUrl"
    )]
    Replayed,
    #[error("the Connection was replaced since this link was issued; start again")]
    Replaced,
    #[error("the provider did not grant access: {0}")]
    Denied(String),
    #[error("{0}")]
    Failed(String),
}

impl From<Error> for FlowError {
    fn from(err: Error) -> Self {
        Self::Failed(err.to_string())
    }
}

impl FlowError {
    /// Client mistakes (4xx) versus the operator's or provider's trouble (5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::NotConfigured | Self::Failed(_))
    }
}

/// Whether `redirect` is allowed: it must start with one of the allowlist's entries, compared
/// as URLs so that `https://app.example.com` does not admit `https://app.example.com.evil.io`.
pub fn redirect_allowed(redirect: &str, allowlist: &[String]) -> bool {
    let Ok(target) = url::Url::parse(redirect) else {
        return false;
    };
    allowlist
        .iter()
        .filter_map(|a| url::Url::parse(a).ok())
        .any(|allowed| {
            target.scheme() == allowed.scheme()
                && target.host_str() == allowed.host_str()
                && target.port_or_known_default() == allowed.port_or_known_default()
                && target.path().starts_with(allowed.path())
        })
}

async fn connection(ctx: &Context, namespace: &str, name: &str) -> Result<Connection, FlowError> {
    let api: Api<Connection> = Api::namespaced(ctx.client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| FlowError::NotFound(format!("{namespace}/{name}")))
}

/// Starts a flow: returns the provider's consent URL.
pub async fn start(
    ctx: &Context,
    namespace: &str,
    name: &str,
    redirect: Option<String>,
) -> Result<url::Url, FlowError> {
    if let Some(r) = &redirect
        && !redirect_allowed(r, &ctx.config.redirect_allowlist)
    {
        return Err(FlowError::RedirectNotAllowed);
    }
    let (Some(key), Some(public)) = (&ctx.config.state_key, &ctx.config.public_url) else {
        return Err(FlowError::NotConfigured);
    };
    let conn = connection(ctx, namespace, name).await?;
    let resolved = dereference::resolve(&conn, ctx).await?;
    if resolved.auth.type_ != AuthType::Oauth2 {
        return Err(FlowError::NotOauth(format!("{namespace}/{name}")));
    }
    oauth::guard_endpoints(&resolved, ctx)?;
    let app = oauth::app(&conn, &resolved, ctx).await?;
    let parameters = validate::merged_parameters(&resolved, &conn);
    let ask = oauth::ask(
        &resolved,
        &parameters,
        resolved.auth.extra_authorize_params.as_ref(),
    );
    let claims = Claims {
        ns: namespace.to_owned(),
        name: name.to_owned(),
        uid: conn.uid().unwrap_or_default(),
        exp: Timestamp::now().as_second() + STATE_LIFETIME_SECS,
        nonce: state::nonce(),
        redirect,
    };
    let verifier = key.pkce_verifier(&claims.nonce);
    let callback = format!("{public}/oauth/callback");
    flow::authorize_url(
        &app,
        &oauth::endpoints(&resolved),
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
    let (Some(key), Some(public)) = (&ctx.config.state_key, &ctx.config.public_url) else {
        return Err(FlowError::NotConfigured);
    };
    let claims = key.verify(state_param, Timestamp::now().as_second())?;
    let conn = connection(ctx, &claims.ns, &claims.name).await?;
    if conn.uid().as_deref() != Some(claims.uid.as_str()) {
        return Err(FlowError::Replaced);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &claims.ns);
    let current = secrets
        .get_opt(&store::secret_name(&conn))
        .await
        .map_err(Error::from)?;
    let marker = state::consumed_marker(&claims.nonce);
    if current
        .as_ref()
        .is_some_and(|s| s.annotations().get(CONSUMED_STATE) == Some(&marker))
    {
        return Err(FlowError::Replayed);
    }
    let resolved = dereference::resolve(&conn, ctx).await?;
    oauth::guard_endpoints(&resolved, ctx)?;
    let app = oauth::app(&conn, &resolved, ctx).await?;
    let callback = format!("{public}/oauth/callback");
    let tokens = flow::exchange_code(
        &ctx.http,
        &app,
        &oauth::endpoints(&resolved),
        &callback,
        code,
        key.pkce_verifier(&claims.nonce),
    )
    .await
    .map_err(|err| FlowError::Failed(format!("exchanging the authorization code failed: {err}")))?;
    let stored = oauth::merge_tokens(
        BTreeMap::new(),
        &tokens,
        resolved.auth.credentials_from_token_response.as_ref(),
        ctx,
        &resolved.connector_label,
    )?;
    persist(
        &conn,
        &stored,
        &marker,
        current.and_then(|s| s.resource_version()),
        ctx,
    )
    .await?;
    Ok(claims)
}

/// Writes the tokens and the consumed-state marker, optimistically against `version`.
async fn persist(
    conn: &Connection,
    tokens: &super::credentials::Credentials,
    marker: &str,
    version: Option<String>,
    ctx: &Context,
) -> Result<(), Error> {
    let data: BTreeMap<String, ByteString> = tokens
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.expose_secret().as_bytes().to_vec())))
        .collect();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(store::secret_name(conn)),
            namespace: conn.namespace(),
            resource_version: version,
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
                (
                    store::CONNECTION_LABEL.to_owned(),
                    store::connection_label(&conn.name_any()),
                ),
            ])),
            annotations: Some(BTreeMap::from([(
                CONSUMED_STATE.to_owned(),
                marker.to_owned(),
            )])),
            owner_references: conn.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    };
    let mut body = serde_json::to_value(&secret).expect("a Secret serializes");
    body["apiVersion"] = "v1".into();
    body["kind"] = "Secret".into();
    let api: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &conn.namespace().unwrap_or_default());
    // A conflict means the same flow completed twice at once, or the Secret was edited: the
    // person starts again rather than have two writers race.
    api.patch(
        &store::secret_name(conn),
        &PatchParams::apply(CONNECT_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redirect_allowed;

    #[test]
    fn redirects_must_match_an_allowlisted_prefix_as_a_url() {
        let allow = vec!["https://app.example.com/integrations".to_owned()];
        assert!(redirect_allowed(
            "https://app.example.com/integrations/done?x=1",
            &allow
        ));
        assert!(!redirect_allowed(
            "https://app.example.com.evil.io/integrations",
            &allow
        ));
        assert!(!redirect_allowed(
            "http://app.example.com/integrations",
            &allow
        ));
        assert!(!redirect_allowed("https://app.example.com/other", &allow));
        assert!(!redirect_allowed("javascript:alert(1)", &allow));
        assert!(!redirect_allowed(
            "https://app.example.com/integrations",
            &[]
        ));
    }
}

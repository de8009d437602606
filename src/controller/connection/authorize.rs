//! The consent flow of `oauth2` Connections, as the operator's web endpoints drive it: start
//! (redirect the person to the provider) and complete (exchange the code, store the tokens).
//! The reconcile then sees the stored tokens through its Secret watch and tests them.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use secrecy::ExposeSecret;
use sha2::Sha256;

use super::{dereference, oauth, store, validate};
use crate::api::{AuthType, Connection};
use crate::auth::oauth2 as flow;
use crate::auth::state::{self, Claims, STATE_LIFETIME_SECS, StateError, StateKey};
use crate::controller::{Context, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::error::Error;

/// The field manager of what the callback writes: distinct from the controller's, so the
/// controller's own applies never remove the consumed-state annotation.
const CONNECT_MANAGER: &str = "plugboard-connect";
/// Records the flows completed on the credentials Secret whose states have not expired yet,
/// as `<marker>@<expiry>` separated by spaces, so that each state is refused if it comes
/// back. Every one of them, not only the last: two flows started from the same link (two
/// tabs) would otherwise let the first be replayed once the second completed.
pub const CONSUMED_STATE: &str = "plugboard.dev/authorized-state";

/// Why a flow could not start or finish. The message is shown to the person in the browser,
/// so it says what to do and never carries a token or a code.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("Connection {0} was not found")]
    NotFound(String),
    /// The link is unsigned, signed for another Connection (or a deleted namesake), or names
    /// no Connection: one answer for all, so the refusal tells nothing about what exists.
    #[error(
        "this authorization link is not valid; open the link in the Connection's status.authorizationUrl"
    )]
    LinkNotValid,
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
                && path_within(target.path(), allowed.path())
        })
}

/// Whether `path` is `prefix` or lies below it: the prefix must end at a segment boundary,
/// else `/integrations` would admit `/integrations-evil`, a page the app may not control.
fn path_within(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

async fn connection(ctx: &Context, namespace: &str, name: &str) -> Result<Connection, FlowError> {
    let api: Api<Connection> = Api::namespaced(ctx.client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| FlowError::NotFound(format!("{namespace}/{name}")))
}

/// The link a person follows to authorize `conn`: `<public-url>/connect/<ns>/<name>/<sig>`.
/// The signature makes it a capability: only who can read the Connection's status (or is
/// sent there by `POST /connect`) can start a consent that binds an account to it. It holds
/// no expiry, so the status it sits in is not rewritten on every reconcile; it changes when
/// the Connection is re-created (new uid) or the state key is replaced.
pub fn connect_link(conn: &Connection, ctx: &Context) -> Option<String> {
    let base = ctx.config.public_url.as_deref()?.trim_end_matches('/');
    // Without a key no link could be verified: better no link than one that always fails.
    let key = ctx.config.state_key.as_deref()?;
    let (namespace, name, uid) = (conn.namespace()?, conn.name_any(), conn.uid()?);
    let signature = link_signature(key, &namespace, &name, &uid);
    Some(format!("{base}/connect/{namespace}/{name}/{signature}"))
}

fn link_signature(key: &StateKey, namespace: &str, name: &str, uid: &str) -> String {
    URL_SAFE_NO_PAD.encode(link_mac(key, namespace, name, uid).finalize().into_bytes())
}

fn link_mac(key: &StateKey, namespace: &str, name: &str, uid: &str) -> Hmac<Sha256> {
    key.link_mac(&[namespace, name, uid])
}

/// Whether `signature` is the link signature of this Connection; compared in constant time.
fn link_signed(key: &StateKey, namespace: &str, name: &str, uid: &str, signature: &str) -> bool {
    URL_SAFE_NO_PAD.decode(signature).is_ok_and(|given| {
        link_mac(key, namespace, name, uid)
            .verify_slice(&given)
            .is_ok()
    })
}

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
    if !link_signed(key, namespace, name, &uid, signature) {
        return Err(FlowError::LinkNotValid);
    }
    consent(ctx, &conn, redirect).await
}

/// Starts a flow for a caller that has already shown its right to the Connection (`POST
/// /connect`, with a tenant token): returns the provider's consent URL.
pub async fn start(
    ctx: &Context,
    namespace: &str,
    name: &str,
    redirect: Option<String>,
) -> Result<url::Url, FlowError> {
    let conn = connection(ctx, namespace, name).await?;
    consent(ctx, &conn, redirect).await
}

/// The provider's consent URL for `conn`, with a fresh signed state.
async fn consent(
    ctx: &Context,
    conn: &Connection,
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
    let (namespace, name) = (conn.namespace().unwrap_or_default(), conn.name_any());
    let resolved = dereference::resolve(conn, ctx).await?;
    if resolved.auth.type_ != AuthType::Oauth2 {
        return Err(FlowError::NotOauth(format!("{namespace}/{name}")));
    }
    oauth::guard_endpoints(&resolved, ctx)?;
    let app = oauth::app(conn, &resolved, ctx).await?;
    let parameters = validate::merged_parameters(&resolved, conn);
    let ask = oauth::ask(
        &resolved,
        &parameters,
        resolved.auth.extra_authorize_params.as_ref(),
    );
    let claims = Claims {
        ns: namespace,
        name,
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
    let now = Timestamp::now().as_second();
    let claims = key.verify(state_param, now)?;
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
    let mut spent = spent_states(
        current
            .as_ref()
            .and_then(|s| s.annotations().get(CONSUMED_STATE)),
        now,
    );
    if spent.iter().any(|(m, _)| *m == marker) {
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
    spent.push((marker, claims.exp));
    let spent: Vec<String> = spent.iter().map(|(m, exp)| format!("{m}@{exp}")).collect();
    persist(
        &conn,
        &stored,
        &spent.join(" "),
        current.and_then(|s| s.resource_version()),
        ctx,
    )
    .await?;
    Ok(claims)
}

/// The consumed states recorded in `annotation` that could still verify at `now`; those
/// past their expiry are dropped, as the signature check refuses them anyway. An entry
/// without an expiry (written by an earlier release, one marker alone) is kept for one
/// more state lifetime.
fn spent_states(annotation: Option<&String>, now: i64) -> Vec<(String, i64)> {
    annotation
        .into_iter()
        .flat_map(|a| a.split_whitespace())
        .map(|entry| match entry.split_once('@') {
            Some((marker, exp)) => (marker.to_owned(), exp.parse().unwrap_or(0)),
            None => (entry.to_owned(), now + STATE_LIFETIME_SECS),
        })
        .filter(|(_, exp)| *exp > now)
        .collect()
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
    use super::{StateKey, link_signature, link_signed, redirect_allowed, spent_states};

    #[test]
    fn consumed_states_are_kept_until_they_expire() {
        let recorded = "aaa@1000 bbb@2000 ccc@x legacy".to_owned();
        let spent = spent_states(Some(&recorded), 1500);
        let markers: Vec<&str> = spent.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(markers, ["bbb", "legacy"]);
        assert_eq!(spent[1].1, 1500 + super::STATE_LIFETIME_SECS);
        assert!(spent_states(None, 0).is_empty());
    }

    #[test]
    fn a_link_signature_is_stable_and_fits_only_its_connection() {
        let key = StateKey::new(vec![7; 32]).unwrap();
        let sig = link_signature(&key, "acme", "acme-hubspot", "uid-1");
        assert_eq!(sig, link_signature(&key, "acme", "acme-hubspot", "uid-1"));
        assert_eq!(sig.len(), 43, "URL-safe, no padding: {sig}");
        assert!(link_signed(&key, "acme", "acme-hubspot", "uid-1", &sig));
        for (ns, name, uid) in [
            ("acme", "globex-hubspot", "uid-1"),
            ("globex", "acme-hubspot", "uid-1"),
            ("acme", "acme-hubspot", "uid-2"),
            // The length prefixes keep parts from sliding into each other.
            ("acm", "eacme-hubspot", "uid-1"),
        ] {
            assert!(!link_signed(&key, ns, name, uid, &sig), "{ns}/{name} {uid}");
        }
        let other = StateKey::new(vec![8; 32]).unwrap();
        assert!(!link_signed(&other, "acme", "acme-hubspot", "uid-1", &sig));
        for bad in ["", "<script>", &sig[..42], &format!("{sig}A")] {
            assert!(
                !link_signed(&key, "acme", "acme-hubspot", "uid-1", bad),
                "{bad}"
            );
        }
        // Neither a state signature nor a PKCE verifier of the same key.
        assert_ne!(sig, key.pkce_verifier("acme"));
    }

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

    #[test]
    fn an_allowlisted_path_admits_itself_and_what_lies_below_it_only() {
        let allow = vec!["https://app.example.com/integrations".to_owned()];
        for admitted in [
            "https://app.example.com/integrations",
            "https://app.example.com/integrations/",
            "https://app.example.com/integrations?x=1",
            "https://app.example.com/integrations/done",
        ] {
            assert!(redirect_allowed(admitted, &allow), "{admitted}");
        }
        for refused in [
            "https://app.example.com/integrations-evil",
            "https://app.example.com/integrationsevil/done",
            "https://app.example.com/integrations.evil",
            "https://app.example.com/integrations/../evil",
        ] {
            assert!(!redirect_allowed(refused, &allow), "{refused}");
        }
        let with_slash = vec!["https://app.example.com/integrations/".to_owned()];
        assert!(redirect_allowed(
            "https://app.example.com/integrations/done",
            &with_slash
        ));
        assert!(!redirect_allowed(
            "https://app.example.com/integrations",
            &with_slash
        ));
        let host = vec!["https://app.example.com".to_owned()];
        assert!(redirect_allowed("https://app.example.com/anything", &host));
    }
}

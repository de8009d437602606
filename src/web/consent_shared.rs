//! What both consent flows (`consent` for oauth2, `consent_oauth1`) share: the errors a
//! person sees, the redirect allowlist, the signed state verified and recorded as spent, and
//! the store write of what a consent obtained.
//!
//! Each completed flow is recorded with the stored tokens until its state expires, so that
//! every state is refused if it comes back: every one of them, not only the last, since two
//! flows started from the same link (two tabs) would otherwise let the first be replayed
//! once the second completed.

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;

use crate::api::Connection;
use crate::auth::state::{self, Claims, STATE_LIFETIME_SECS, StateError};
use crate::controller::Context;
use crate::controller::connection::shared::Observed;
use crate::error::Error;
use crate::store::{Credentials, Want, Writer};

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
    #[error("Connection {0} does not use OAuth authorization (auth type oauth2 or oauth1)")]
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
    /// An OAuth 1.0a callback whose `oauth_token` is not the one its flow obtained.
    #[error(
        "the provider sent back a token this authorization did not obtain; start again from the Connection's authorizationUrl"
    )]
    TokenMismatch,
    #[error("the Connection was replaced since this link was issued; start again")]
    Replaced,
    #[error("the provider did not grant access: {0}")]
    Denied(String),
    /// What the reconcile would report for the Connection (a missing Tenant or Secret, an
    /// invalid connector, a provider or API server away), with its reason.
    #[error("{0}")]
    Connection(Error),
    #[error("{0}")]
    Failed(String),
}

impl From<Error> for FlowError {
    fn from(err: Error) -> Self {
        Self::Connection(err)
    }
}

impl FlowError {
    /// Client mistakes and what someone must fix (4xx) versus the operator's, the API
    /// server's or the provider's trouble, which may pass (5xx).
    pub fn is_client_error(&self) -> bool {
        match self {
            Self::NotConfigured | Self::Failed(_) => false,
            Self::Connection(err) => !err.is_transient(),
            _ => true,
        }
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

pub async fn connection(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Connection, FlowError> {
    let api: Api<Connection> = Api::namespaced(ctx.client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| FlowError::NotFound(format!("{namespace}/{name}")))
}

/// The claims of a state this operator signed, unexpired, and the Connection they name, the
/// same one (not a namesake created since).
pub async fn verified(ctx: &Context, state_param: &str) -> Result<(Claims, Connection), FlowError> {
    let key = ctx
        .config
        .state_key
        .as_ref()
        .ok_or(FlowError::NotConfigured)?;
    let claims = key.verify(state_param, Timestamp::now().as_second())?;
    let conn = connection(ctx, &claims.ns, &claims.name).await?;
    if conn.uid().as_deref() != Some(claims.uid.as_str()) {
        return Err(FlowError::Replaced);
    }
    Ok((claims, conn))
}

/// The states already spent on this Connection, refusing `claims` if it is one of them.
pub fn unspent(obs: &Observed<'_>, claims: &Claims) -> Result<Vec<(String, i64)>, FlowError> {
    let now = Timestamp::now().as_second();
    let marker = state::consumed_marker(&claims.nonce);
    let current = obs.stored.as_ref();
    let spent = spent_states(current.and_then(|s| s.consumed_states.as_ref()), now);
    if spent.iter().any(|(m, _)| *m == marker) {
        return Err(FlowError::Replayed);
    }
    Ok(spent)
}

/// Stores what a consent obtained, over the version the flow read, with the state recorded
/// as spent; wakes the reconcile when the store is one no watch sees.
pub async fn store_consented(
    ctx: &Context,
    obs: &Observed<'_>,
    claims: &Claims,
    mut spent: Vec<(String, i64)>,
    stored: &Credentials,
) -> Result<(), FlowError> {
    spent.push((state::consumed_marker(&claims.nonce), claims.exp));
    let spent: Vec<String> = spent.iter().map(|(m, exp)| format!("{m}@{exp}")).collect();
    let want = Want::new(stored, None);
    let writer = Writer::Consent {
        consumed_states: &spent.join(" "),
    };
    let over = obs.stored.as_ref().map(|s| s.version.as_str());
    obs.store.write(obs.conn, &want, writer, over).await?;
    if !obs.store.in_cluster() {
        wake(ctx, obs.conn).await?;
    }
    Ok(())
}

/// The annotation the consent callback sets when it stored tokens where Kubernetes cannot
/// see them: its change wakes the Connection's reconcile on whichever replica leads, as a
/// credentials Secret's watch event does for the Secret store.
pub const CONSENTED_AT: &str = "plugboard.dev/consented-at";

async fn wake(ctx: &Context, conn: &Connection) -> Result<(), Error> {
    let api: Api<Connection> =
        Api::namespaced(ctx.client.clone(), &conn.namespace().unwrap_or_default());
    let patch = serde_json::json!({"metadata": {"annotations": {
        CONSENTED_AT: Timestamp::now().to_string(),
    }}});
    let params = kube::api::PatchParams {
        field_manager: Some(crate::meta::CONNECT_MANAGER.to_owned()),
        ..kube::api::PatchParams::default()
    };
    api.patch(&conn.name_any(), &params, &kube::api::Patch::Merge(&patch))
        .await?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::{redirect_allowed, spent_states};

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

//! The OAuth 1.0a consent flow (RFC 5849 section 2): temporary credentials, the person's
//! authorization at the provider, and the verifier exchanged for token credentials.
//!
//! The callback is tied to its Connection by the same signed, single-use state as oauth2's,
//! carried in the callback URL's query. The temporary token's secret, which signs the
//! exchange, is kept in a Secret beside the Connection (`<connection>-oauth1-pending`)
//! until the person comes back: never in a URL or a log, and on whichever replica or after
//! whichever restart the callback lands. The Connection owns that Secret, so it goes with
//! it; an entry goes when its flow completes.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::consent_shared::{self as consent, FlowError};
use crate::api::{AuthType, Connection};
use crate::auth::method::Inputs;
use crate::auth::oauth1::{self, client};
use crate::auth::state::{self, Claims};
use crate::controller::Context;
use crate::controller::connection::shared::{self as observe, Observed};
use crate::error::Error;
use crate::store::Credentials;

/// Sends the person to the provider: obtains temporary credentials with a callback that
/// carries `signed_state`, keeps their secret, and returns the authorization URL.
pub async fn start(
    ctx: &Context,
    obs: &Observed<'_>,
    signed_state: &str,
    claims: &Claims,
    public: &str,
) -> Result<Url, FlowError> {
    let secrets = observe::connector_secrets(obs)?;
    let inputs = obs.inputs(&secrets);
    obs.method
        .check(&inputs, ctx.config.allow_private_networks)?;
    let consumer = oauth1::consumer(&inputs)?;
    let auth = inputs.auth;
    let mut callback = Url::parse(&format!("{public}/oauth/callback"))
        .map_err(|err| FlowError::Failed(format!("the operator's public URL: {err}")))?;
    callback
        .query_pairs_mut()
        .append_pair("state", signed_state);
    let temporary = client::temporary_credentials(
        &ctx.http,
        &consumer,
        oauth1::signature_method(auth),
        auth.request_token_uri.as_deref().unwrap_or_default(),
        callback.as_str(),
    )
    .await
    .map_err(|err| provider_failed(&inputs, &err))?;
    keep(ctx, obs.conn, claims, &temporary).await?;
    let authorize = auth.authorize_uri.as_deref().unwrap_or_default();
    let mut url = Url::parse(authorize).map_err(|err| {
        FlowError::Connection(Error::InvalidConnector(format!(
            "{} auth.authorizeUri is not a URL: {err}",
            inputs.label
        )))
    })?;
    url.query_pairs_mut()
        .append_pair("oauth_token", &temporary.token);
    Ok(url)
}

/// Completes a flow: the state must verify and be unspent, and `oauth_token` must be the
/// temporary token this flow obtained; then the verifier is exchanged and the token
/// credentials stored. Nothing is stored on any refusal.
pub async fn complete(
    ctx: &Context,
    state_param: &str,
    oauth_token: &str,
    verifier: &str,
) -> Result<Claims, FlowError> {
    let (claims, conn) = consent::verified(ctx, state_param).await?;
    let obs = observe::gather(&conn, ctx).await?;
    if obs.resolved.auth.type_ != AuthType::Oauth1 {
        return Err(FlowError::NotOauth(format!(
            "{}/{}",
            claims.ns, claims.name
        )));
    }
    let spent = consent::unspent(&obs, &claims)?;
    let temporary = pending(ctx, &conn, &claims)
        .await?
        .ok_or(FlowError::Replayed)?;
    if temporary.token != oauth_token {
        return Err(FlowError::TokenMismatch);
    }
    let secrets = observe::connector_secrets(&obs)?;
    let inputs = obs.inputs(&secrets);
    obs.method
        .check(&inputs, ctx.config.allow_private_networks)?;
    let consumer = oauth1::consumer(&inputs)?;
    let auth = inputs.auth;
    let (_, fields) = client::token_credentials(
        &ctx.http,
        &consumer,
        oauth1::signature_method(auth),
        auth.access_token_uri.as_deref().unwrap_or_default(),
        &temporary,
        verifier,
    )
    .await
    .map_err(|err| provider_failed(&inputs, &err))?;
    let stored = credentials(&inputs, fields, ctx)?;
    consent::store_consented(ctx, &obs, &claims, spent, &stored).await?;
    if let Err(err) = forget(ctx, &conn, &claims).await {
        // The entry expires with its state, and the state is spent: nothing can use it.
        tracing::info!(error = %err, "the completed OAuth 1.0a flow's pending entry stays until the Connection goes");
    }
    Ok(claims)
}

/// The stored credentials: every field of the token credentials answer (`oauth_token`,
/// `oauth_token_secret`, `user_id`, ...), and what `credentialsFromTokenResponse` maps
/// from them.
fn credentials(
    inputs: &Inputs<'_>,
    fields: BTreeMap<String, SecretString>,
    ctx: &Context,
) -> Result<Credentials, Error> {
    let response: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.expose_secret().to_owned())))
        .collect();
    let mut stored: Credentials = fields
        .into_iter()
        .filter(|(k, _)| k != "oauth_callback_confirmed")
        .collect();
    crate::auth::response_mapping::apply(
        &mut stored,
        &response,
        inputs.auth.credentials_from_token_response.as_ref(),
        ctx.tools(),
        &format!("{} auth.credentialsFromTokenResponse", inputs.label),
    )?;
    Ok(stored)
}

/// A provider's refusal, with the consumer secret taken out of its words: the page shows
/// them to the person.
fn provider_failed(inputs: &Inputs<'_>, err: &Error) -> FlowError {
    let secret = inputs
        .secrets
        .app
        .as_ref()
        .map(|a| a.client_secret.expose_secret().to_owned());
    let text = crate::redact::redact(&err.to_string(), &secret.into_iter().collect::<Vec<_>>());
    if err.is_transient() {
        FlowError::Failed(text)
    } else {
        FlowError::Connection(Error::AuthorizationRequired(text))
    }
}

/// One pending flow's temporary credentials, as the pending Secret holds them.
#[derive(Serialize, Deserialize)]
struct Entry {
    token: String,
    secret: String,
    /// When the flow's state expires; the entry is worthless after.
    exp: i64,
}

/// The name of the Connection's pending Secret; a digest when the name would be too long.
fn pending_name(conn: &Connection) -> String {
    const SUFFIX: &str = "-oauth1-pending";
    // The longest name the API server takes for a Secret (a DNS subdomain).
    const NAME_MAX: usize = 253;
    let name = conn.name_any();
    if name.len() + SUFFIX.len() <= NAME_MAX {
        return format!("{name}{SUFFIX}");
    }
    use sha2::Digest as _;
    let digest: String = sha2::Sha256::digest(name.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("plugboard-oauth1-{digest}")
}

fn secrets(ctx: &Context, conn: &Connection) -> Api<Secret> {
    Api::namespaced(ctx.client.clone(), &conn.namespace().unwrap_or_default())
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(crate::meta::CONNECT_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// Adds the flow's entry to the pending Secret, creating it the first time. A merge patch of
/// one key: two flows started at once (two tabs) keep both entries.
async fn keep(
    ctx: &Context,
    conn: &Connection,
    claims: &Claims,
    temporary: &client::Token,
) -> Result<(), Error> {
    let entry = Entry {
        token: temporary.token.clone(),
        secret: temporary.secret.expose_secret().to_owned(),
        exp: claims.exp,
    };
    let value = serde_json::to_vec(&entry).expect("an entry serializes");
    let key = state::consumed_marker(&claims.nonce);
    let api = secrets(ctx, conn);
    let name = pending_name(conn);
    let patch = serde_json::json!({"data": {key.clone(): ByteString(value.clone())}});
    match api.patch(&name, &params(), &Patch::Merge(&patch)).await {
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        other => return other.map(drop).map_err(Error::from),
    }
    // Owned, not controlled: the Connection's watch of its credentials Secret need not wake
    // for this one, and the garbage collector still deletes it with the Connection.
    let owner = conn.controller_owner_ref(&()).map(|mut o| {
        o.controller = None;
        o
    });
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(BTreeMap::from([(
                crate::meta::MANAGED_BY_LABEL.to_owned(),
                crate::meta::MANAGED_BY_VALUE.to_owned(),
            )])),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(key, ByteString(value))])),
        ..Secret::default()
    };
    match api.create(&Default::default(), &secret).await {
        // Another flow created it in between: add to it.
        Err(kube::Error::Api(e)) if e.code == 409 => api
            .patch(&secret.name_any(), &params(), &Patch::Merge(&patch))
            .await
            .map(drop)
            .map_err(Error::from),
        other => other.map(drop).map_err(Error::from),
    }
}

/// The temporary credentials of the flow `claims` started, unless they expired or were used.
async fn pending(
    ctx: &Context,
    conn: &Connection,
    claims: &Claims,
) -> Result<Option<client::Token>, Error> {
    let Some(secret) = secrets(ctx, conn).get_opt(&pending_name(conn)).await? else {
        return Ok(None);
    };
    let key = state::consumed_marker(&claims.nonce);
    let entry = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&key))
        .and_then(|v| serde_json::from_slice::<Entry>(&v.0).ok())
        .filter(|e| e.exp > Timestamp::now().as_second());
    Ok(entry.map(|e| client::Token {
        token: e.token,
        secret: SecretString::from(e.secret),
    }))
}

/// Removes the completed flow's entry and every expired one; the Secret goes when it is
/// empty, unless another flow added an entry since it was read.
async fn forget(ctx: &Context, conn: &Connection, claims: &Claims) -> Result<(), Error> {
    let api = secrets(ctx, conn);
    let name = pending_name(conn);
    let Some(secret) = api.get_opt(&name).await? else {
        return Ok(());
    };
    let now = Timestamp::now().as_second();
    let done = state::consumed_marker(&claims.nonce);
    let data = secret.data.clone().unwrap_or_default();
    let (gone, left): (Vec<_>, Vec<_>) = data.iter().partition(|(k, v)| {
        **k == done || serde_json::from_slice::<Entry>(&v.0).map_or(true, |e| e.exp <= now)
    });
    if left.is_empty() {
        let precondition = kube::api::Preconditions {
            resource_version: secret.resource_version(),
            uid: secret.uid(),
        };
        let delete = kube::api::DeleteParams {
            preconditions: Some(precondition),
            ..Default::default()
        };
        return match api.delete(&name, &delete).await {
            // Changed since the read: another flow's entry is in it; leave it be.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(()),
            other => other.map(drop).map_err(Error::from),
        };
    }
    let nulls: Map<String, Value> = gone
        .into_iter()
        .map(|(k, _)| (k.clone(), Value::Null))
        .collect();
    let patch = serde_json::json!({"data": nulls});
    api.patch(&name, &params(), &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(Error::from)
}

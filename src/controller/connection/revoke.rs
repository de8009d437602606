//! Revoking a Connection's credentials at the provider and deleting them from the store:
//! when it is deleted (behind its finalizer, bounded by the disconnect grace) and when its
//! spec says `disconnected: true`.

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use kube::runtime::controller::Action;
use secrecy::ExposeSecret;

use super::execute::{event, write_status};
use super::gather::{self, Observed};
use super::schedule;
use super::{dereference, status, validate};
use crate::api::{Connection, DeletionPolicy};
use crate::controller::Context;
use crate::error::Error;
use crate::provider::api_client;
use crate::provider::request::{self, Purpose};
use crate::redact::redact;
use crate::store::Credentials;

/// How long a failing provider may hold a deleted Connection: long enough to ride out an
/// outage, short enough that a dead provider cannot block deletion (and a namespace's) forever.
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(600);

/// Whether the Connection's credentials outlive it (`deletionPolicy: Retain`): nothing is
/// revoked and nothing deleted, on deletion and on `disconnected: true` alike.
fn retained(conn: &Connection) -> bool {
    conn.spec
        .credentials
        .as_ref()
        .and_then(|c| c.deletion_policy)
        == Some(DeletionPolicy::Retain)
}

/// `spec.disconnected: true`: revoke, delete the credentials, keep the object.
pub async fn on_request(conn: &Connection, ctx: &Context, now: Timestamp) -> Result<Action, Error> {
    if retained(conn) {
        write_status(conn, status::disconnected(conn, now), None, ctx).await?;
        return Ok(Action::await_change());
    }
    let store = ctx.stores.of(conn);
    let current = match store {
        Ok(store) => store.read(conn).await?,
        Err(_) => None,
    };
    let stored = current.as_ref().map(crate::store::Stored::credentials);
    if let Err(err) = revoke(conn, stored.as_ref(), ctx).await {
        let message = redact(&err.to_string(), &values(stored.as_ref()));
        let (next, delay) =
            status::revocation_failed(conn, &err, &message, now, &mut schedule::random);
        write_status(conn, next, None, ctx).await?;
        return Ok(Action::requeue(delay));
    }
    if let (Ok(store), Some(_)) = (store, &current) {
        store.delete(conn).await?;
    }
    write_status(conn, status::disconnected(conn, now), None, ctx).await?;
    Ok(Action::await_change())
}

/// Whether deleting `conn` has work for the operator, so that it must carry the finalizer:
/// its connector sends something at deletion, or its credentials are in a store the garbage
/// collector does not empty. `None` when that cannot be told now (no connector yet, no auth
/// option to choose): the finalizer stays as it is, since credentials obtained before may
/// still need revoking once the connector is back.
pub async fn needs_finalizer(conn: &Connection, ctx: &Context) -> Result<Option<bool>, Error> {
    if retained(conn) {
        return Ok(Some(false));
    }
    if ctx.stores.of(conn).is_ok_and(|s| !s.in_cluster()) {
        return Ok(Some(true));
    }
    match dereference::sends_at_deletion(conn, ctx).await {
        Ok(sends) => Ok(Some(sends)),
        Err(err @ Error::Kube(_)) => Err(err),
        Err(_) => Ok(None),
    }
}

/// The Connection is being deleted: revoke at the provider, then let it go. A provider that
/// keeps failing holds deletion for the disconnect grace at most.
pub async fn on_deletion(conn: &Connection, ctx: &Context) -> Result<Action, Error> {
    if retained(conn) {
        return Ok(Action::await_change());
    }
    // A store this build lacks never held anything.
    let Ok(store) = ctx.stores.of(conn) else {
        return Ok(Action::await_change());
    };
    let current = store.read(conn).await?;
    // Tokens that never reached the store are the newest: they are the ones to revoke.
    let kept = ctx.unsaved.take(conn).map(|kept| kept.credentials);
    let stored = kept.or_else(|| current.as_ref().map(crate::store::Stored::credentials));
    if let Err(err) = revoke(conn, stored.as_ref(), ctx).await {
        // A Kubernetes error too (a Secret the revocation needs cannot be read): the grace
        // bounds how long anything can hold a deletion.
        held_or_abandoned(conn, ctx, err, stored.as_ref()).await?;
    }
    if current.is_some() {
        store.delete(conn).await?;
    }
    Ok(Action::await_change())
}

/// A revocation before deletion failed: within the grace, status says so and the error
/// keeps the finalizer (retried at the backoff); past it, deletion goes on without it.
async fn held_or_abandoned(
    conn: &Connection,
    ctx: &Context,
    err: Error,
    stored: Option<&Credentials>,
) -> Result<(), Error> {
    let now = Timestamp::now();
    let deleted_at = conn.meta().deletion_timestamp.as_ref().map_or(now, |t| t.0);
    let grace = ctx.config.disconnect_grace.unwrap_or(DISCONNECT_GRACE);
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
    if now.duration_since(deleted_at) < grace {
        let message = redact(
            &format!(
                "revoking before deletion: {err}; deletion waits up to {}s",
                grace.as_secs()
            ),
            &values(stored),
        );
        let (next, delay) =
            status::revocation_failed(conn, &err, &message, now, &mut schedule::random);
        write_status(conn, next, None, ctx).await?;
        // An error, so that the finalizer stays; its retry time is the backoff.
        return Err(Error::RevocationPending {
            source: Box::new(err),
            retry_in: delay,
        });
    }
    tracing::warn!(
        reason = err.reason(),
        "giving up revoking at the provider; deleting anyway"
    );
    let note = format!(
        "could not revoke at the provider within {}s of deletion ({}); deleted the credentials without revoking",
        grace.as_secs(),
        err.reason()
    );
    event(conn, ctx, true, "DisconnectAbandoned", note).await;
    Ok(())
}

/// Sends what the connector sends at deletion (a token revocation, its `disconnect`
/// request) with the stored credentials, if there are any.
async fn revoke(
    conn: &Connection,
    stored: Option<&Credentials>,
    ctx: &Context,
) -> Result<(), Error> {
    let Some(stored) = stored else {
        return Ok(());
    };
    // Asked first, from the connector alone: the Secrets a full gather reads (input, Tenant
    // fields) are often deleted together with the Connection, and must not hold it when
    // there is nothing to send anyway.
    match dereference::sends_at_deletion(conn, ctx).await {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        Err(err @ Error::Kube(_)) => return Err(err),
        // No connector, or no auth method to choose: nothing to send.
        Err(_) => return Ok(()),
    }
    let obs = match gather::gather_for(conn, ctx, gather::Purpose::Revocation).await {
        Ok(obs) => obs,
        // Without its connector there is no disconnect request to send.
        Err(Error::ConnectorNotFound { .. } | Error::TenantNotFound { .. }) => return Ok(()),
        Err(err) => return Err(err),
    };
    send(&obs, stored, ctx).await
}

async fn send(obs: &Observed<'_>, stored: &Credentials, ctx: &Context) -> Result<(), Error> {
    let auth = &obs.resolved.auth;
    let signs = obs.method.signing(auth).is_some();
    let secrets = if obs.method.revokes(auth) || signs {
        validate::connector_secrets(obs)?
    } else {
        Default::default()
    };
    let mut inputs = obs.inputs(&secrets);
    inputs.stored = stored;
    if obs.method.revokes(auth) {
        obs.method.revoke(&inputs, ctx.tools()).await?;
    }
    let connector = &obs.resolved.connector;
    let (Some(request), Some(client)) = (&connector.disconnect, &connector.api_client) else {
        return Ok(());
    };
    let context = gather::with_credentials(obs.context.clone(), stored);
    let label = &obs.resolved.connector_label;
    let (client, allowed) = api_client::render(label, client, &context, ctx.tools())?;
    let signer = if signs {
        obs.method.signer(&inputs)?
    } else {
        None
    };
    let via = request::Via {
        client: &client,
        allowed: &allowed,
        signer: signer.as_deref(),
    };
    request::send(
        Purpose::Disconnect,
        &request.request,
        via,
        &context,
        ctx.tools(),
    )
    .await
}

/// The stored credential values, to scrub from messages about a revocation: the provider's
/// answer may echo a credential back.
fn values(stored: Option<&Credentials>) -> Vec<String> {
    stored
        .into_iter()
        .flatten()
        .map(|(_, v)| v.expose_secret().to_owned())
        .collect()
}

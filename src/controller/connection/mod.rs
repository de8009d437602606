//! The Connection controller: dereference → validate → credentials → store → test → status.
//!
//! Each step is a submodule. A reconcile that finds everything as it should be makes no API
//! write: the credentials Secret, read once per reconcile, is compared with what it should
//! be, and the status with the object's own.

pub mod authorize;
mod credentials;
pub(crate) mod dereference;
mod oauth;
mod status;
mod store;
mod tenant_token;
mod test;
mod unsaved;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

pub use self::unsaved::Unsaved;

use self::credentials::RenderedApiClient;
use self::dereference::Resolved;
use self::oauth::Obtained;
use self::status::Stage;
use self::test::Purpose;
use crate::api::{AuthType, Connection};
use crate::controller::{Context, own_writes};
use crate::error::Error;
use crate::provider::hosts::AllowedHosts;

/// The finalizer that holds a Connection until its credentials are revoked and deleted.
pub const FINALIZER: &str = "plugboard.dev/credentials";

/// First retry after a transient failure: soon enough that a blip heals unnoticed.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest wait between retries: a provider down for hours is retried every five minutes,
/// which costs it nothing and reconnects promptly when it is back.
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How long a failing provider may hold a deleted Connection: long enough to ride out an
/// outage, short enough that a dead provider cannot block deletion (and a namespace's) forever.
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(600);

/// The reconcile entry point kube-runtime calls.
pub async fn reconcile(conn: Arc<Connection>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(conn, &ctx).await;
    tracing::debug!(ok = result.is_ok(), "reconcile finished");
    ctx.metrics.reconcile_took("Connection", started.elapsed());
    if let Err(err) = &result {
        ctx.metrics.reconciled("Connection", err.reason());
    }
    result
}

async fn reconcile_inner(conn: Arc<Connection>, ctx: &Context) -> Result<Action, Error> {
    tracing::debug!("reconcile started");
    if !ctx.caches_ready().await {
        return Ok(Action::requeue(BACKOFF_MIN));
    }
    if ctx.own_writes.behind(conn.as_ref()) {
        tracing::debug!("the cache does not show this reconcile's last writes yet; waiting");
        return Ok(Action::requeue(own_writes::CATCH_UP));
    }
    let namespace = conn.namespace().unwrap_or_default();
    let api: Api<Connection> = Api::namespaced(ctx.client.clone(), &namespace);
    let finalizing = own_writes::FinalizerWrite::of(conn.as_ref(), FINALIZER);
    let result = finalizer(&api, FINALIZER, conn, |event| async {
        match event {
            Finalizer::Apply(conn) => apply(&conn, ctx).await,
            Finalizer::Cleanup(conn) => cleanup(&conn, ctx).await,
        }
    })
    .await
    .map_err(crate::controller::finalizer_error);
    if result.is_ok() {
        finalizing.succeeded(&ctx.own_writes);
    }
    result
}

/// Kubernetes API failures reach here (pipeline errors become status), retried soon, and a
/// deleted Connection's failed revocation, retried with the backoff its status shows.
pub fn error_policy(_conn: Arc<Connection>, err: &Error, _ctx: Arc<Context>) -> Action {
    if let Error::RevocationPending { retry_in, .. } = err {
        return Action::requeue(*retry_in);
    }
    tracing::warn!(reason = err.reason(), error = %err, "reconcile failed");
    Action::requeue(jittered(BACKOFF_MIN * 5))
}

/// What a successful pipeline run produced.
struct Connected {
    tested_at: Option<Time>,
    has_test: bool,
    test_interval: Option<Duration>,
    tokens: Obtained,
}

async fn apply(conn: &Connection, ctx: &Context) -> Result<Action, Error> {
    let now = Time(Timestamp::now());
    if conn.spec.disconnected == Some(true) {
        return disconnect_on_request(conn, ctx, &now).await;
    }
    if let Some(tenant) = suspended_tenant(conn, ctx) {
        return pause(conn, ctx, &now, &tenant).await;
    }
    let mut left = Leftovers::default();
    let outcome = match store::reference(conn) {
        Ok(_) => pipeline(conn, ctx, &now, &mut left).await,
        Err(err) => Err((err, Stage::Credentials)),
    };
    match outcome {
        Ok(done) => succeeded(conn, ctx, &now, done).await,
        Err((err @ Error::Kube(_), _)) => Err(err),
        Err((err, stage)) => failed(conn, ctx, &now, &err, stage, &left).await,
    }
}

/// What a pipeline run that failed leaves for its status.
#[derive(Default)]
struct Leftovers {
    /// Secret values it handled, which any message is scrubbed of before status or logs.
    secrets: Vec<String>,
    /// New tokens it stored before a later step failed. Status records their schedule, or
    /// the reconcile their own write wakes would find the old, passed refresh time and
    /// refresh them again, and again.
    stored: Option<Obtained>,
}

/// The name of the Connection's Tenant if that Tenant is suspended.
fn suspended_tenant(conn: &Connection, ctx: &Context) -> Option<String> {
    let name = &conn.spec.tenant_ref.name;
    let key = ObjectRef::new(name).within(&conn.namespace().unwrap_or_default());
    let tenant = ctx.tenants.get(&key)?;
    (tenant.spec.suspended == Some(true)).then(|| name.clone())
}

/// Holds a Connection of a suspended Tenant: nothing is refreshed, tested or scheduled; the
/// Tenant's resumption (a Tenant change) wakes it.
async fn pause(
    conn: &Connection,
    ctx: &Context,
    now: &Time,
    tenant: &str,
) -> Result<Action, Error> {
    ctx.metrics
        .reconciled("Connection", status::TENANT_SUSPENDED);
    let (state, desired) = status::suspended(conn, tenant);
    let next = status::next(conn, state, &desired, now, |s| {
        s.next_refresh_at = None;
        s.retry_attempts = None;
        s.next_retry_at = None;
    });
    status::write(conn, next, ctx).await?;
    Ok(Action::await_change())
}

async fn succeeded(
    conn: &Connection,
    ctx: &Context,
    now: &Time,
    done: Connected,
) -> Result<Action, Error> {
    ctx.metrics.reconciled("Connection", "success");
    let (state, desired) = status::connected(done.has_test);
    let tokens = &done.tokens;
    let attempts = conn
        .status
        .as_ref()
        .and_then(|s| s.retry_attempts)
        .unwrap_or(0);
    let next = status::next(conn, state, &desired, now, |s| {
        s.credentials_ref = store::reference(conn).ok();
        if let Some(tested) = &done.tested_at {
            s.last_tested_at = Some(tested.0.to_string());
        }
        s.credentials_expire_at = tokens.expires_at.map(|t| t.to_string());
        s.next_refresh_at = tokens.next_refresh_at.map(|t| t.to_string());
        if let Some(at) = tokens.refreshed_at {
            s.last_refreshed_at = Some(at.to_string());
        }
        s.refresh_requested_at = tokens.refresh_requested_at.clone();
        // A refresh that failed transiently while the token is still good is retried.
        s.retry_attempts = tokens.retry_in.map(|_| attempts + 1);
        s.next_retry_at = tokens.retry_in.map(|d| plus(now, backoff(attempts).max(d)));
        s.authorization_url = None;
    });
    status::write(conn, next, ctx).await?;
    let mut wake: Vec<Duration> = Vec::new();
    if let Some(interval) = done.test_interval {
        wake.push(until_next_test(conn, done.tested_at.as_ref(), interval));
    }
    match (tokens.retry_in, tokens.next_refresh_at) {
        // A failed refresh is due already: the retry, with its backoff and the provider's
        // Retry-After, is when to try again, not the refresh time that has passed.
        (Some(retry), _) => wake.push(backoff(attempts).max(retry)),
        (None, Some(due)) => {
            let left = due.duration_since(now.0);
            wake.push(
                Duration::try_from(left)
                    .unwrap_or_default()
                    .max(BACKOFF_MIN),
            );
        }
        (None, None) => {}
    }
    Ok(wake
        .into_iter()
        .min()
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

async fn failed(
    conn: &Connection,
    ctx: &Context,
    now: &Time,
    err: &Error,
    stage: Stage,
    left: &Leftovers,
) -> Result<Action, Error> {
    ctx.metrics.reconciled("Connection", err.reason());
    let message = redact(&err.to_string(), &left.secrets);
    tracing::info!(reason = err.reason(), message = %message, "connection not ready");
    let (state, desired) = status::failed(err, stage, &message);
    let attempts = conn
        .status
        .as_ref()
        .and_then(|s| s.retry_attempts)
        .unwrap_or(0);
    let retry_after = match err {
        Error::ProviderUnavailable { retry_after, .. } => *retry_after,
        _ => None,
    };
    let retry = err
        .is_transient()
        .then(|| backoff(attempts).max(retry_after.unwrap_or_default()));
    let authorization_url = matches!(
        err,
        Error::AuthorizationRequired(_) | Error::TokenRevoked(_)
    )
    .then(|| oauth::authorization_url(conn, ctx))
    .flatten();
    let next = status::next(conn, state, &desired, now, |s| {
        s.retry_attempts = retry.map(|_| attempts + 1);
        s.next_retry_at = retry.map(|d| plus(now, d));
        s.authorization_url = authorization_url;
        if let Some(tokens) = &left.stored {
            s.credentials_expire_at = tokens.expires_at.map(|t| t.to_string());
            s.next_refresh_at = tokens.next_refresh_at.map(|t| t.to_string());
            s.last_refreshed_at = tokens.refreshed_at.map(|t| t.to_string());
        }
    });
    status::write(conn, next, ctx).await?;
    Ok(retry
        .map(Action::requeue)
        .unwrap_or_else(Action::await_change))
}

/// The pipeline proper. What a failure's status needs of it is left in `left`.
async fn pipeline(
    conn: &Connection,
    ctx: &Context,
    now: &Time,
    left: &mut Leftovers,
) -> Result<Connected, (Error, Stage)> {
    let secrets = &mut left.secrets;
    let at = |stage| move |err| (err, stage);
    let resolved = dereference::resolve(conn, ctx)
        .await
        .map_err(at(Stage::Credentials))?;
    secrets.extend(
        resolved
            .input
            .expose()
            .values()
            .filter_map(|v| v.as_str().map(str::to_owned)),
    );
    let parameters = validate::merged_parameters(&resolved, conn);
    validate::check(&resolved, &parameters).map_err(at(Stage::Credentials))?;
    let context = credentials::context(conn, &resolved, &parameters);
    let current = store::read(conn, ctx)
        .await
        .map_err(at(Stage::Credentials))?;
    let current = current.as_ref();
    // A provider's error description may quote the stored tokens back.
    secrets.extend(values(current.map(store::stored).as_ref()));
    let mut tokens = obtain(conn, &resolved, &parameters, &context, current, ctx, now)
        .await
        .map_err(at(Stage::Credentials))?;
    let creds = &tokens.credentials;
    secrets.extend(creds.values().map(|v| v.expose_secret().to_owned()));
    let context = credentials::with_credentials(context, creds);
    // New tokens are persisted here, before the test or anything else uses them.
    let (wrote, client) =
        match store_credentials(conn, &resolved, &mut tokens, &context, current, ctx).await {
            Ok(stored) => stored,
            Err(err) => {
                // Still here (not kept in memory for a retry) means they were stored.
                if tokens.refreshed_at.is_some() {
                    left.stored = Some(tokens);
                }
                return Err((err, Stage::Credentials));
            }
        };
    let interval = resolved
        .connector
        .test
        .as_ref()
        .and_then(|t| t.interval)
        .map(Duration::from);
    let mut connected = Connected {
        tested_at: None,
        has_test: resolved.connector.test.is_some(),
        test_interval: interval,
        tokens,
    };
    let Some(test_spec) = &resolved.connector.test else {
        return Ok(connected);
    };
    if !wrote && !test_due(conn, interval, now) {
        return Ok(connected);
    }
    let client = client.as_ref().ok_or_else(|| {
        Error::InvalidConnector(format!(
            "{} defines a test but no apiClient to send it with",
            resolved.connector_label
        ))
    });
    let tested = match client {
        Ok((client, allowed)) => {
            let request = &test_spec.request;
            test::send(Purpose::Test, request, client, allowed, &context, ctx).await
        }
        Err(err) => Err(err),
    };
    if let Err(err) = tested {
        // The new tokens are stored: their schedule goes to status with the failure.
        if connected.tokens.refreshed_at.is_some() {
            left.stored = Some(connected.tokens);
        }
        return Err((err, Stage::Test));
    }
    connected.tested_at = Some(now.clone());
    Ok(connected)
}

/// Renders the API client over the credentials and stores both; returns whether it wrote,
/// and the client. New tokens from the provider reach the store even when rendering fails,
/// and stay in memory ([`Unsaved`]) when the write fails: the provider may already have
/// invalidated the refresh token they replace.
async fn store_credentials(
    conn: &Connection,
    resolved: &Resolved,
    tokens: &mut Obtained,
    context: &Value,
    current: Option<&Secret>,
    ctx: &Context,
) -> Result<(bool, Option<(RenderedApiClient, AllowedHosts)>), Error> {
    let new = tokens.refreshed_at.is_some();
    let rendered = match (tokens.unusable.take(), &resolved.connector.api_client) {
        (Some(err), _) => Err(err),
        (None, Some(api_client)) => {
            credentials::render_api_client(resolved, api_client, context, ctx).map(Some)
        }
        (None, None) => Ok(None),
    };
    let creds = &tokens.credentials;
    let want = match &rendered {
        Ok(client) => store::desired(conn, creds, client.as_ref().map(|(c, _)| c)),
        // The tokens go in beside the API client stored before, which is still the last good one.
        Err(_) if new => store::keeping_api_client(store::desired(conn, creds, None), current),
        Err(_) => return rendered.map(|client| (false, client)),
    };
    match store::apply(conn, want, current, tokens.precondition.clone(), ctx).await {
        Ok(wrote) => rendered.map(|client| (wrote, client)),
        Err(err) => {
            if new {
                ctx.unsaved.keep(conn, std::mem::take(tokens));
            }
            Err(err)
        }
    }
}

/// Obtains the credentials the way the connector's auth type does it: tokens from a provider
/// or minted here (kept while still good), or static credentials rendered from the input.
async fn obtain(
    conn: &Connection,
    resolved: &Resolved,
    parameters: &Map<String, Value>,
    context: &Value,
    current: Option<&Secret>,
    ctx: &Context,
    now: &Time,
) -> Result<Obtained, Error> {
    let kept = ctx.unsaved.take(conn);
    let has_tokens = matches!(
        resolved.auth.type_,
        AuthType::Oauth2 | AuthType::ClientCredentials | AuthType::TenantToken
    );
    if let Some(mut kept) = kept
        && has_tokens
    {
        // Newer than the stored ones: store these rather than spend the refresh token again.
        kept.precondition = Some(
            current
                .and_then(|s| s.resource_version())
                .unwrap_or_default(),
        );
        return Ok(kept);
    }
    match resolved.auth.type_ {
        AuthType::Oauth2 | AuthType::ClientCredentials => {
            oauth::obtain(conn, resolved, parameters, current, ctx, now.0).await
        }
        AuthType::TenantToken => tenant_token::obtain(conn, resolved, current, ctx, now.0).await,
        _ => credentials::obtain(resolved, context, ctx).map(|credentials| Obtained {
            credentials,
            ..Obtained::default()
        }),
    }
}

/// Whether the test must run although the credentials did not change: the spec changed, the
/// last test did not pass, or the re-test interval has passed.
fn test_due(conn: &Connection, interval: Option<Duration>, now: &Time) -> bool {
    let Some(status) = &conn.status else {
        return true;
    };
    if status.observed_generation != conn.meta().generation
        || crate::controller::conditions::is_true(
            &status.conditions,
            crate::controller::conditions::TESTED,
        ) != Some(true)
        || status
            .conditions
            .iter()
            .any(|c| c.type_ == "Tested" && c.reason != "TestPassed")
    {
        return true;
    }
    let Some(interval) = interval else {
        return false;
    };
    let last: Option<Timestamp> = status
        .last_tested_at
        .as_deref()
        .and_then(|t| t.parse().ok());
    last.is_none_or(|last| {
        now.0.duration_since(last)
            >= SignedDuration::try_from(interval).unwrap_or(SignedDuration::MAX)
    })
}

fn until_next_test(conn: &Connection, tested_at: Option<&Time>, interval: Duration) -> Duration {
    let last: Option<Timestamp> = tested_at.map(|t| t.0).or_else(|| {
        conn.status
            .as_ref()
            .and_then(|s| s.last_tested_at.as_deref())
            .and_then(|t| t.parse().ok())
    });
    let elapsed = last
        .map(|l| Timestamp::now().duration_since(l))
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or_default();
    interval.saturating_sub(elapsed).max(BACKOFF_MIN)
}

/// `spec.disconnected: true`: revoke, delete the credentials, keep the object.
async fn disconnect_on_request(
    conn: &Connection,
    ctx: &Context,
    now: &Time,
) -> Result<Action, Error> {
    let current = store::read(conn, ctx).await?;
    let stored = current.as_ref().map(store::stored);
    if let Err(err) = revoke(conn, stored.as_ref(), ctx).await {
        let message = redact(&err.to_string(), &values(stored.as_ref()));
        let (state, desired) = status::failed(&err, Stage::Test, &message);
        let attempts = conn
            .status
            .as_ref()
            .and_then(|s| s.retry_attempts)
            .unwrap_or(0);
        let delay = backoff(attempts);
        let next = status::next(conn, state, &desired, now, |s| {
            s.retry_attempts = Some(attempts + 1);
            s.next_retry_at = Some(plus(now, delay));
        });
        status::write(conn, next, ctx).await?;
        return Ok(Action::requeue(delay));
    }
    store::delete(conn, current.as_ref(), ctx).await?;
    let (state, desired) = status::disconnected();
    let next = status::next(conn, state, &desired, now, |s| {
        s.credentials_ref = None;
        s.credentials_expire_at = None;
        s.next_refresh_at = None;
        s.retry_attempts = None;
        s.next_retry_at = None;
        s.authorization_url = None;
    });
    status::write(conn, next, ctx).await?;
    Ok(Action::await_change())
}

/// The Connection is being deleted: revoke at the provider, then let it go. A provider that
/// keeps failing holds deletion for `DISCONNECT_GRACE` at most.
async fn cleanup(conn: &Connection, ctx: &Context) -> Result<Action, Error> {
    let current = store::read(conn, ctx).await?;
    // Tokens that never reached the store are the newest: they are the ones to revoke.
    let kept = ctx.unsaved.take(conn).map(|kept| kept.credentials);
    let stored = kept.or_else(|| current.as_ref().map(store::stored));
    match revoke(conn, stored.as_ref(), ctx).await {
        Ok(()) => {}
        // A Kubernetes error too (a Secret the revocation needs cannot be read): the grace
        // bounds how long anything can hold a deletion.
        Err(err) => {
            let deleted_at = conn
                .meta()
                .deletion_timestamp
                .as_ref()
                .map(|t| t.0)
                .unwrap_or_else(Timestamp::now);
            let grace = ctx.config.disconnect_grace.unwrap_or(DISCONNECT_GRACE);
            let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
            if Timestamp::now().duration_since(deleted_at) < grace {
                let attempts = conn
                    .status
                    .as_ref()
                    .and_then(|s| s.retry_attempts)
                    .unwrap_or(0);
                let now = Time(Timestamp::now());
                let message = redact(
                    &format!(
                        "revoking before deletion: {err}; deletion waits up to {}s",
                        grace.as_secs()
                    ),
                    &values(stored.as_ref()),
                );
                let (state, desired) = status::failed(&err, Stage::Test, &message);
                let delay = backoff(attempts);
                let next = status::next(conn, state, &desired, &now, |s| {
                    s.retry_attempts = Some(attempts + 1);
                    s.next_retry_at = Some(plus(&now, delay));
                });
                status::write(conn, next, ctx).await?;
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
            status::event(conn, ctx, true, "DisconnectAbandoned", note).await;
        }
    }
    store::delete(conn, current.as_ref(), ctx).await?;
    Ok(Action::await_change())
}

/// Sends the connector's disconnect request with the stored credentials, if both exist.
async fn revoke(
    conn: &Connection,
    stored: Option<&credentials::Credentials>,
    ctx: &Context,
) -> Result<(), Error> {
    let Some(stored) = stored else {
        return Ok(());
    };
    // Asked first, from the connector alone: the Secrets a full resolve reads (input,
    // Tenant fields) are often deleted together with the Connection, and must not hold it
    // when there is nothing to send anyway.
    match dereference::sends_at_deletion(conn, ctx).await {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        Err(err @ Error::Kube(_)) => return Err(err),
        // No connector, or no auth method to choose: nothing to send.
        Err(_) => return Ok(()),
    }
    let resolved = match dereference::resolve(conn, ctx).await {
        Ok(resolved) => resolved,
        // Without its connector there is no disconnect request to send.
        Err(Error::ConnectorNotFound { .. } | Error::TenantNotFound { .. }) => return Ok(()),
        Err(err) => return Err(err),
    };
    if resolved.auth.revoke_uri.is_some() {
        revoke_tokens(conn, &resolved, stored, ctx).await?;
    }
    let (Some(request), Some(api_client)) = (
        &resolved.connector.disconnect,
        &resolved.connector.api_client,
    ) else {
        return Ok(());
    };
    let parameters = validate::merged_parameters(&resolved, conn);
    let context =
        credentials::with_credentials(credentials::context(conn, &resolved, &parameters), stored);
    let (client, allowed) = credentials::render_api_client(&resolved, api_client, &context, ctx)?;
    test::send(
        Purpose::Disconnect,
        &request.request,
        &client,
        &allowed,
        &context,
        ctx,
    )
    .await
}

/// RFC 7009 revocation: the refresh token first (revoking it usually ends the grant and its
/// access tokens), then the access token.
async fn revoke_tokens(
    conn: &Connection,
    resolved: &Resolved,
    stored: &credentials::Credentials,
    ctx: &Context,
) -> Result<(), Error> {
    oauth::guard_endpoints(resolved, ctx)?;
    let app = oauth::app(conn, resolved, ctx).await?;
    let endpoints = oauth::endpoints(resolved);
    for (key, refresh) in [("refresh_token", true), ("access_token", false)] {
        let Some(token) = stored.get(key) else {
            continue;
        };
        crate::auth::oauth2::revoke(&ctx.http, &app, &endpoints, token, refresh)
            .await
            .map_err(|err| match err {
                crate::auth::oauth2::TokenError::Unavailable {
                    message,
                    retry_after,
                } => Error::ProviderUnavailable {
                    message,
                    retry_after,
                },
                other => Error::DisconnectFailed(format!("revoking the {key} failed: {other}")),
            })?;
    }
    Ok(())
}

/// Exponential backoff from `BACKOFF_MIN` to `BACKOFF_MAX`, with jitter so that Connections
/// failing together do not retry together.
fn backoff(attempts: u32) -> Duration {
    let exp = BACKOFF_MIN.saturating_mul(1u32 << attempts.min(16));
    jittered(exp.min(BACKOFF_MAX))
}

/// `base` plus up to 20 % more, chosen at random.
fn jittered(base: Duration) -> Duration {
    let extra = rand::random_range(0.0..0.2);
    base.mul_f64(1.0 + extra)
}

fn plus(now: &Time, delay: Duration) -> String {
    let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
    now.0.checked_add(delay).unwrap_or(now.0).to_string()
}

/// The stored credential values, to scrub from messages about a revocation: the provider's
/// answer may echo a credential back.
fn values(stored: Option<&credentials::Credentials>) -> Vec<String> {
    stored
        .into_iter()
        .flatten()
        .map(|(_, v)| v.expose_secret().to_owned())
        .collect()
}

/// `message` with every known secret value replaced, for values a provider or a library
/// echoed back into an error.
pub(super) fn redact(message: &str, secrets: &[String]) -> String {
    // Very short values (a region code, `true`) would blank out ordinary words.
    const MIN_SECRET_LEN: usize = 6;
    secrets
        .iter()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .fold(message.to_owned(), |text, secret| {
            text.replace(secret.as_str(), "[redacted]")
        })
}

/// The Connection that owns an object (its credentials Secret), for the controller's
/// watches: a Secret someone edited or deleted is put back by its owner's reconcile.
pub fn owner_of(
    meta: &kube::api::ObjectMeta,
) -> Option<kube::runtime::reflector::ObjectRef<Connection>> {
    let api_version = Connection::api_version(&());
    let owner = meta.owner_references.iter().flatten().find(|o| {
        o.controller == Some(true)
            && o.kind == Connection::kind(&())
            && o.api_version == api_version
    })?;
    Some(kube::runtime::reflector::ObjectRef::new(&owner.name).within(meta.namespace.as_deref()?))
}

/// The Connections a change to some object affects, for the controller's watches.
pub fn referencing(
    connections: &kube::runtime::reflector::Store<Connection>,
    matches: impl Fn(&Connection) -> bool,
) -> Vec<kube::runtime::reflector::ObjectRef<Connection>> {
    connections
        .state()
        .iter()
        .filter(|c| matches(c))
        .map(|c| kube::runtime::reflector::ObjectRef::from(c.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_from_one_second_to_five_minutes() {
        assert!(backoff(0) >= BACKOFF_MIN && backoff(0) <= BACKOFF_MIN.mul_f64(1.2));
        assert!(backoff(3) >= Duration::from_secs(8));
        assert!(backoff(30) <= BACKOFF_MAX.mul_f64(1.2));
        assert!(backoff(30) >= BACKOFF_MAX);
    }

    #[test]
    fn a_secret_triggers_the_connection_that_controls_it_only() {
        let conn = Connection::new(
            "billing",
            serde_json::from_value(serde_json::json!({
                "connectorRef": {"name": "c"}, "tenantRef": {"name": "t"}
            }))
            .expect("a spec"),
        );
        let mut conn = conn;
        conn.metadata.namespace = Some("team-a".to_owned());
        conn.metadata.uid = Some("u-1".to_owned());
        let owner = conn.controller_owner_ref(&()).expect("an owner reference");
        let mut meta = kube::api::ObjectMeta {
            namespace: Some("team-a".to_owned()),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        };
        assert_eq!(
            owner_of(&meta),
            Some(ObjectRef::new("billing").within("team-a"))
        );
        // A mere owner (garbage collection only), or another kind, is not a trigger.
        let mut not_controller = owner.clone();
        not_controller.controller = None;
        meta.owner_references = Some(vec![not_controller]);
        assert_eq!(owner_of(&meta), None);
        let mut other_kind = owner;
        other_kind.kind = "Tenant".to_owned();
        meta.owner_references = Some(vec![other_kind]);
        assert_eq!(owner_of(&meta), None);
    }

    #[test]
    fn redaction_removes_secret_values() {
        let text = redact(
            "HTTP 401: invalid key sk_test_123456 for acct",
            &["sk_test_123456".into(), "eu".into()],
        );
        assert_eq!(text, "HTTP 401: invalid key [redacted] for acct");
    }
}

//! The Connection controller: gather → plan → execute → status.
//!
//! `gather` reads every input once; `plan` decides, purely, from what was read and the time;
//! `execute` carries out the plan's effects; `status` builds what a person reads and when
//! to look again. Auth methods (`crate::auth::method`) and credential stores
//! (`crate::store`) plug in behind traits, so none of these steps asks which one it has. A
//! reconcile that finds everything as it should be makes no API write.

pub(crate) mod dereference;
mod execute;
pub(crate) mod gather;
mod outcome;
mod plan;
mod revoke;
mod schedule;
pub mod shared;
mod status;
mod unsaved;
pub(crate) mod validate;
mod watch;

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

pub use self::plan::REFRESH_REQUESTED_AT;
pub use self::revoke::DISCONNECT_GRACE;
pub use self::unsaved::Unsaved;
pub use self::watch::{owner_of, referencing};

use self::outcome::Stage;
use self::outcome::{Failure, Outcome};
use self::plan::{Mode, Plan};
use self::schedule::BACKOFF_MIN;
use crate::api::Connection;
use crate::controller::{Context, finalizers, own_writes};
use crate::error::Error;

/// The finalizer that holds a deleted Connection until its credentials are revoked at the
/// provider and deleted from a store the garbage collector does not reach; carried only while
/// there is such work (see `crate::controller::finalizers`).
pub const FINALIZER: &str = "plugboard.dev/credentials";

/// How soon a reconcile that the Kubernetes API failed is tried again: the API server is
/// the operator's own dependency, usually back within seconds, and a fixed short wait keeps
/// a blip from turning into minutes of staleness.
const API_RETRY: std::time::Duration = std::time::Duration::from_secs(5);
/// Up to this share is added at random, so Connections that failed together spread out.
const API_RETRY_JITTER: f64 = 0.2;

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
    let result = match finalized(&api, &conn, ctx).await {
        Ok(Some(action)) => Ok(action),
        Ok(None) => apply(&conn, ctx).await,
        Err(err) => Err(err),
    };
    match result {
        // The Connection went while this reconcile ran (a deletion another reconcile
        // finished, its finalizer removed): nothing is left to do, and nothing is wrong.
        Err(err) if is_gone(&err) => {
            tracing::debug!("the Connection is gone");
            Ok(Action::await_change())
        }
        other => other,
    }
}

/// The finalizer's part: a deleted Connection is revoked and let go; a live one carries the
/// finalizer exactly while its deletion would have work to do. `None`: go on to reconcile.
async fn finalized(
    api: &Api<Connection>,
    conn: &Connection,
    ctx: &Context,
) -> Result<Option<Action>, Error> {
    let holds = finalizers::holds(conn, FINALIZER);
    if conn.meta().deletion_timestamp.is_some() {
        if holds {
            // An error keeps the finalizer; its retry time is the backoff.
            revoke::on_deletion(conn, ctx).await?;
            finalizers::set(api, conn, FINALIZER, false, &ctx.own_writes).await?;
        }
        ctx.own_writes.forget(&own_writes::key::<Connection>(
            &conn.namespace().unwrap_or_default(),
            &conn.name_any(),
        ));
        return Ok(Some(Action::await_change()));
    }
    let Some(wanted) = revoke::needs_finalizer(conn, ctx).await? else {
        return Ok(None);
    };
    if finalizers::set(api, conn, FINALIZER, wanted, &ctx.own_writes).await? && wanted {
        // Nothing is obtained before the finalizer is in place: credentials issued first
        // could be left unrevoked by a deletion in between. The write's watch event brings
        // the Connection back.
        return Ok(Some(Action::await_change()));
    }
    Ok(None)
}

/// Whether `err` is the API server saying the Connection is not there any more.
fn is_gone(err: &Error) -> bool {
    matches!(err, Error::Kube(kube::Error::Api(status)) if status.code == 404)
}

/// Kubernetes API failures reach here (pipeline errors become status), retried soon, and a
/// deleted Connection's failed revocation, retried with the backoff its status shows.
pub fn error_policy(_conn: Arc<Connection>, err: &Error, _ctx: Arc<Context>) -> Action {
    if let Error::RevocationPending { retry_in, .. } = err {
        return Action::requeue(*retry_in);
    }
    tracing::warn!(reason = err.reason(), error = %err, "reconcile failed");
    Action::requeue(API_RETRY.mul_f64(1.0 + API_RETRY_JITTER * schedule::random()))
}

async fn apply(conn: &Connection, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    match plan::mode(conn, tenant_suspended(conn, ctx)) {
        Mode::Disconnect => revoke::on_request(conn, ctx, now).await,
        Mode::Pause { tenant } => {
            ctx.metrics
                .reconciled("Connection", status::TENANT_SUSPENDED);
            execute::write_status(conn, status::paused(conn, &tenant, now), None, ctx).await?;
            Ok(Action::await_change())
        }
        Mode::Reconcile => connect(conn, ctx, now).await,
    }
}

/// Gather, plan, execute, and report.
async fn connect(conn: &Connection, ctx: &Context, now: Timestamp) -> Result<Action, Error> {
    let dice = &mut schedule::random;
    let obs = match gather::gather(conn, ctx).await {
        Ok(obs) => obs,
        Err(err @ Error::Kube(_)) => return Err(err),
        Err(error) => {
            let failure = Failure::before(error, Stage::Credentials);
            return report(conn, ctx, now, failure, &[]).await;
        }
    };
    let plan = match plan::plan(&obs, now, dice, ctx.config.allow_private_networks) {
        Plan::Connect(plan) => plan,
        Plan::Fail { error, stage } => {
            let failure = Failure::before(error, stage);
            return report(conn, ctx, now, failure, &obs.secret_values()).await;
        }
    };
    let Outcome { result, secrets } = execute::connect(&obs, &plan, ctx, now, dice).await;
    let done = match result {
        Ok(done) => done,
        Err(Failure {
            error: err @ Error::Kube(_),
            ..
        }) => return Err(err),
        Err(failure) => return report(conn, ctx, now, failure, &secrets).await,
    };
    ctx.metrics.reconciled("Connection", "success");
    let connected = status::Connected {
        done: &done,
        reference: obs.store.reference(conn, done.version.as_deref()),
        has_test: plan.test != plan::Test::None,
        test_interval: plan.test_interval,
    };
    let (next, action) = status::connected(conn, &connected, now, dice);
    execute::write_status(conn, next, None, ctx).await?;
    Ok(action)
}

/// Reports a failure in status, its message scrubbed of every secret value handled.
async fn report(
    conn: &Connection,
    ctx: &Context,
    now: Timestamp,
    failure: Failure,
    secrets: &[String],
) -> Result<Action, Error> {
    let error = &failure.error;
    ctx.metrics.reconciled("Connection", error.reason());
    let mut message = crate::redact::redact(&error.to_string(), secrets);
    if let Some(hint) = status::refused_after_restart(error, conn, ctx.started) {
        message.push_str(&hint);
    }
    tracing::info!(reason = error.reason(), message = %message, "connection not ready");
    let link = crate::auth::link::connect_link(
        ctx.config.public_url.as_deref(),
        ctx.config.state_key.as_deref(),
        conn,
    );
    let failed = status::Failed {
        error,
        stage: failure.stage,
        message: &message,
        stored: failure.stored.as_ref(),
        authorization_url: link,
    };
    let (next, action) = status::failed(conn, failed, now, &mut schedule::random);
    let related = status::related(conn, &error.at_fault());
    execute::write_status(conn, next, related, ctx).await?;
    Ok(action)
}

/// Whether the Connection's Tenant, as cached, is suspended.
fn tenant_suspended(conn: &Connection, ctx: &Context) -> bool {
    let name = &conn.spec.tenant_ref.name;
    let key = ObjectRef::new(name).within(&conn.namespace().unwrap_or_default());
    ctx.tenants
        .get(&key)
        .is_some_and(|tenant| tenant.spec.suspended == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> Error {
        Error::Kube(kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: "connections.plugboard.dev \"acme\" not found".to_owned(),
            ..kube::core::Status::default()
        })))
    }

    #[test]
    fn only_a_404_means_the_connection_is_gone() {
        assert!(is_gone(&api(404)));
        for code in [409, 422, 500] {
            assert!(!is_gone(&api(code)), "{code}");
        }
        assert!(!is_gone(&Error::unavailable("HTTP 404 from the provider")));
    }
}

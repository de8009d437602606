//! Step 6: the status a person reads, written only when it changed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use crate::api::{Connection, ConnectionState, ConnectionStatus};
use crate::controller::Context;
use crate::controller::conditions::{
    self, AUTHORIZED, Desired, READY, RECONCILING, STALLED, TESTED,
};
use crate::error::Error;

/// How far the pipeline got, which decides `Authorized` and `Tested`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Failed before credentials were stored.
    Credentials,
    /// Credentials stored; the test failed or could not run.
    Test,
}

/// The conditions and state for a connected Connection.
pub fn connected(tested: bool) -> (ConnectionState, Vec<Desired>) {
    let tested = if tested {
        Desired::new(
            TESTED,
            true,
            "TestPassed",
            "the connector's test request succeeded",
        )
    } else {
        Desired::new(
            TESTED,
            true,
            "NoTest",
            "the connector defines no test request",
        )
    };
    (
        ConnectionState::Connected,
        vec![
            Desired::new(READY, true, "Connected", "credentials are stored and work"),
            Desired::new(
                AUTHORIZED,
                true,
                "CredentialsStored",
                "credentials are stored",
            ),
            tested,
            Desired::new(RECONCILING, false, "Connected", ""),
            Desired::new(STALLED, false, "Connected", ""),
        ],
    )
}

/// The conditions and state for a failed reconcile.
pub fn failed(err: &Error, stage: Stage, message: &str) -> (ConnectionState, Vec<Desired>) {
    let reason = err.reason();
    let waiting = matches!(
        err,
        Error::ConnectorNotFound { .. }
            | Error::TenantNotFound { .. }
            | Error::SecretNotFound { .. }
            | Error::SecretKeyNotFound { .. }
    );
    let state = if waiting {
        ConnectionState::Pending
    } else if matches!(
        err,
        Error::AuthorizationRequired(_) | Error::TokenRevoked(_)
    ) {
        ConnectionState::AuthorizationRequired
    } else {
        ConnectionState::Error
    };
    let (authorized, tested) = match stage {
        Stage::Credentials => (
            Desired::new(AUTHORIZED, false, reason, message),
            Desired::new(TESTED, false, "NotAuthorized", "no credentials to test"),
        ),
        Stage::Test => (
            Desired::new(
                AUTHORIZED,
                true,
                "CredentialsStored",
                "credentials are stored",
            ),
            Desired::new(TESTED, false, reason, message),
        ),
    };
    let stalled = err.is_stalled();
    (
        state,
        vec![
            Desired::new(READY, false, reason, message),
            authorized,
            tested,
            Desired::new(
                RECONCILING,
                !stalled,
                reason,
                if stalled { "" } else { message },
            ),
            Desired::new(STALLED, stalled, reason, if stalled { message } else { "" }),
        ],
    )
}

/// The conditions for a Connection disconnected on request.
pub fn disconnected() -> (ConnectionState, Vec<Desired>) {
    let msg = "disconnected on request (spec.disconnected); credentials were revoked and deleted";
    (
        ConnectionState::Disconnected,
        vec![
            Desired::new(READY, false, "Disconnected", msg),
            Desired::new(AUTHORIZED, false, "Disconnected", msg),
            Desired::new(TESTED, false, "Disconnected", msg),
            Desired::new(RECONCILING, false, "Disconnected", ""),
            Desired::new(STALLED, false, "Disconnected", ""),
        ],
    )
}

/// The conditions for a Connection whose Tenant is suspended. Whether it is authorized and
/// tested stays as last found: suspension pauses the Connection, it does not judge it.
pub fn suspended(conn: &Connection, tenant: &str) -> (ConnectionState, Vec<Desired>) {
    let msg = format!(
        "tenant {tenant:?} is suspended (spec.suspended); credentials are kept but not refreshed or tested until it is resumed"
    );
    let existing = conn
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let kept = |type_: &'static str| {
        existing
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| Desired::new(type_, c.status == "True", &c.reason, c.message.clone()))
            .unwrap_or_else(|| Desired::new(type_, false, TENANT_SUSPENDED, msg.clone()))
    };
    (
        ConnectionState::Suspended,
        vec![
            Desired::new(READY, false, TENANT_SUSPENDED, msg.clone()),
            kept(AUTHORIZED),
            kept(TESTED),
            Desired::new(RECONCILING, false, TENANT_SUSPENDED, ""),
            Desired::new(STALLED, false, TENANT_SUSPENDED, ""),
        ],
    )
}

/// The Ready reason of a Connection paused with its Tenant.
pub const TENANT_SUSPENDED: &str = "TenantSuspended";

/// Builds the next status from the current one: the given state and conditions, with
/// `fill` setting the step-specific fields.
pub fn next(
    conn: &Connection,
    state: ConnectionState,
    desired: &[Desired],
    now: &Time,
    fill: impl FnOnce(&mut ConnectionStatus),
) -> ConnectionStatus {
    let current = conn.status.clone().unwrap_or_default();
    let generation = conn.meta().generation;
    let mut status = ConnectionStatus {
        observed_generation: generation,
        conditions: conditions::merge(&current.conditions, desired, generation, now),
        state: Some(state),
        ..current
    };
    fill(&mut status);
    status
}

/// Writes `status` if it differs from the Connection's, and records an event when the Ready
/// reason changed. Returns whether it wrote.
pub async fn write(
    conn: &Connection,
    status: ConnectionStatus,
    ctx: &Context,
) -> Result<bool, Error> {
    let current = conn.status.clone().unwrap_or_default();
    if current == status {
        return Ok(false);
    }
    let api: Api<Connection> =
        Api::namespaced(ctx.client.clone(), &conn.namespace().unwrap_or_default());
    ctx.apply_status(api, conn, &status).await?;
    let before = ready_reason(&current);
    let after = ready_reason(&status);
    // A transition is a change of Ready or its reason; a reworded message is not one.
    let transitioned =
        before.as_ref().map(|(r, why, _)| (r, why)) != after.as_ref().map(|(r, why, _)| (r, why));
    if transitioned && let Some((ready, reason, message)) = after {
        let event = Event {
            // Disconnecting and suspending are what someone asked for, not faults.
            type_: if ready || reason == "Disconnected" || reason == TENANT_SUSPENDED {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason,
            note: Some(message),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        let reference = conn.object_ref(&());
        if let Err(err) = ctx.recorder().publish(&event, &reference).await {
            // An event is a courtesy; failing to record one must not fail the reconcile.
            tracing::warn!(error = %err, "could not record an event");
        }
    }
    Ok(true)
}

/// Records a one-off event that no status transition carries.
pub async fn event(conn: &Connection, ctx: &Context, warning: bool, reason: &str, note: String) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder().publish(&event, &conn.object_ref(&())).await {
        tracing::warn!(error = %err, "could not record an event");
    }
}

fn ready_reason(status: &ConnectionStatus) -> Option<(bool, String, String)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| (c.status == "True", c.reason.to_string(), c.message.clone()))
}

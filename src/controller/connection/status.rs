//! Status: the one place a Connection's status is built, from the plan and what executing
//! it produced, with the time to look again. Pure: `execute::write_status` writes it, and
//! only when it changed.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::outcome::{Done, Retry, Schedule, Stage};
use super::schedule::{self, BACKOFF_MIN, Dice};
use k8s_openapi::api::core::v1::ObjectReference;

use crate::api::{
    Connection, ConnectionState, ConnectionStatus, ConnectorKind, CredentialsReference,
};
use crate::controller::conditions::{
    self, AUTHORIZED, Desired, READY, RECONCILING, STALLED, TESTED,
};
use crate::error::{AtFault, Error};
use crate::meta::INPUT_UPDATED_AT;

/// The conditions and state for a connected Connection.
fn connected_conditions(tested: bool) -> (ConnectionState, Vec<Desired>) {
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
fn failed_conditions(err: &Error, stage: Stage, message: &str) -> (ConnectionState, Vec<Desired>) {
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
        Error::AuthorizationRequired(_) | Error::TokenRevoked(_) | Error::RefreshTokenRefused(_)
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
fn disconnected_conditions(retained: bool) -> (ConnectionState, Vec<Desired>) {
    let msg = if retained {
        "disconnected on request (spec.disconnected); the credentials are kept in the store unrevoked (deletionPolicy: Retain)"
    } else {
        "disconnected on request (spec.disconnected); credentials were revoked and deleted"
    };
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
fn suspended_conditions(conn: &Connection, tenant: &str) -> (ConnectionState, Vec<Desired>) {
    let msg = format!(
        "tenant {tenant:?} is suspended (spec.suspended); credentials are kept but not refreshed or tested until it is resumed"
    );
    let existing = conn
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let kept = |type_: conditions::ConditionType| {
        existing
            .iter()
            .find(|c| c.type_ == type_.as_str())
            .map(|c| Desired::new(type_, conditions::holds(c), &c.reason, c.message.clone()))
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

/// The next status from the current one: the given state and conditions, with `fill`
/// setting the fields of the outcome.
fn next(
    conn: &Connection,
    (state, desired): (ConnectionState, Vec<Desired>),
    now: Timestamp,
    fill: impl FnOnce(&mut ConnectionStatus),
) -> ConnectionStatus {
    let current = conn.status.clone().unwrap_or_default();
    let generation = conn.meta().generation;
    let mut status = ConnectionStatus {
        observed_generation: generation,
        conditions: conditions::merge(&current.conditions, &desired, generation, &Time(now)),
        state: Some(state),
        observed_input_at: conn.annotations().get(INPUT_UPDATED_AT).cloned(),
        ..current
    };
    fill(&mut status);
    status
}

fn attempts(conn: &Connection) -> u32 {
    conn.status
        .as_ref()
        .and_then(|s| s.retry_attempts)
        .unwrap_or(0)
}

fn text(at: Option<Timestamp>) -> Option<String> {
    at.map(|t| t.to_string())
}

/// What a connected Connection's status says, and when to look again: the next test, the
/// retry of a failed refresh, or the next refresh, whichever comes first.
pub struct Connected<'a> {
    pub done: &'a Done,
    pub reference: CredentialsReference,
    pub has_test: bool,
    pub test_interval: Option<Duration>,
}

pub fn connected(
    conn: &Connection,
    c: &Connected<'_>,
    now: Timestamp,
    dice: Dice<'_>,
) -> (ConnectionStatus, Action) {
    let done = c.done;
    let attempts = attempts(conn);
    let retry_in = match done.retry {
        Retry::After(at_least) => Some(schedule::backoff(attempts, dice).max(at_least)),
        Retry::None | Retry::Pending(_) => None,
    };
    let status = next(conn, connected_conditions(c.has_test), now, |s| {
        s.credentials_ref = Some(c.reference.clone());
        if done.tested {
            s.last_tested_at = Some(now.to_string());
        }
        s.credentials_expire_at = text(done.schedule.expires_at);
        s.next_refresh_at = text(done.schedule.next_refresh_at);
        if let Some(at) = done.schedule.refreshed_at {
            s.last_refreshed_at = Some(at.to_string());
        }
        s.refresh_requested_at = done.answered.clone();
        match (done.retry, retry_in) {
            (Retry::Pending(_), _) => {}
            (_, Some(delay)) => {
                s.retry_attempts = Some(attempts + 1);
                s.next_retry_at = Some(schedule::after(now, delay).to_string());
            }
            (_, None) => {
                s.retry_attempts = None;
                s.next_retry_at = None;
            }
        }
        s.authorization_url = None;
    });
    let mut wake: Vec<Duration> = Vec::new();
    if let Some(interval) = c.test_interval {
        let last = if done.tested {
            Some(now)
        } else {
            status
                .last_tested_at
                .as_deref()
                .and_then(|t| t.parse().ok())
        };
        let elapsed = last.map(|l| schedule::until(l, now)).unwrap_or_default();
        wake.push(interval.saturating_sub(elapsed).max(BACKOFF_MIN));
    }
    // While a refresh waits for its retry the credentials may expire first: look again
    // then, to say so.
    if done.retry != Retry::None
        && let Some(expires) = done.schedule.expires_at
    {
        wake.push(schedule::until(now, expires).max(BACKOFF_MIN));
    }
    match (done.retry, retry_in, done.schedule.next_refresh_at) {
        // A failed refresh is due already: the retry, with its backoff and the provider's
        // Retry-After, is when to try again, not the refresh time that has passed.
        (_, Some(delay), _) => wake.push(delay),
        (Retry::Pending(at), _, _) => wake.push(schedule::until(now, at).max(BACKOFF_MIN)),
        (_, None, Some(due)) => wake.push(schedule::until(now, due).max(BACKOFF_MIN)),
        (_, None, None) => {}
    }
    let action = wake
        .into_iter()
        .min()
        .map_or_else(Action::await_change, Action::requeue);
    (status, action)
}

/// What a failed reconcile's status says: the error (its message scrubbed already), the
/// retry for a transient one, the consent link when a person must act, and the schedule of
/// new tokens stored before the failure.
pub struct Failed<'a> {
    pub error: &'a Error,
    pub stage: Stage,
    pub message: &'a str,
    pub stored: Option<&'a Schedule>,
    pub authorization_url: Option<String>,
}

pub fn failed(
    conn: &Connection,
    f: Failed<'_>,
    now: Timestamp,
    dice: Dice<'_>,
) -> (ConnectionStatus, Action) {
    let attempts = attempts(conn);
    let retry_after = match f.error {
        Error::ProviderUnavailable { retry_after, .. } => *retry_after,
        _ => None,
    };
    if let Error::CredentialsExpired { retry_at, .. } = f.error {
        return expired(conn, &f, *retry_at, now);
    }
    let retry = f
        .error
        .is_transient()
        .then(|| schedule::backoff(attempts, dice).max(retry_after.unwrap_or_default()));
    let wants_person = matches!(
        f.error,
        Error::AuthorizationRequired(_) | Error::TokenRevoked(_) | Error::RefreshTokenRefused(_)
    );
    let conditions = failed_conditions(f.error, f.stage, f.message);
    let status = next(conn, conditions, now, |s| {
        s.retry_attempts = retry.map(|_| attempts + 1);
        s.next_retry_at = retry.map(|d| schedule::after(now, d).to_string());
        s.authorization_url = f.authorization_url.filter(|_| wants_person);
        if let Some(stored) = f.stored {
            s.credentials_expire_at = text(stored.expires_at);
            s.next_refresh_at = text(stored.next_refresh_at);
            s.last_refreshed_at = text(stored.refreshed_at);
        }
    });
    (
        status,
        retry.map_or_else(Action::await_change, Action::requeue),
    )
}

/// Credentials that expired while their refresh waits: the retry stays as it was, its
/// count and time, and is when to look again.
fn expired(
    conn: &Connection,
    f: &Failed<'_>,
    retry_at: Timestamp,
    now: Timestamp,
) -> (ConnectionStatus, Action) {
    let status = next(
        conn,
        failed_conditions(f.error, f.stage, f.message),
        now,
        |s| {
            s.next_retry_at = Some(retry_at.to_string());
            s.authorization_url = None;
        },
    );
    let wait = schedule::until(now, retry_at).max(BACKOFF_MIN);
    (status, Action::requeue(wait))
}

/// A Connection of a suspended Tenant: nothing is refreshed, tested or scheduled.
pub fn paused(conn: &Connection, tenant: &str, now: Timestamp) -> ConnectionStatus {
    next(conn, suspended_conditions(conn, tenant), now, |s| {
        s.next_refresh_at = None;
        s.retry_attempts = None;
        s.next_retry_at = None;
    })
}

/// A Connection disconnected on request: credentials revoked and deleted.
pub fn disconnected(conn: &Connection, now: Timestamp) -> ConnectionStatus {
    let policy = conn
        .spec
        .credentials
        .as_ref()
        .and_then(|c| c.deletion_policy);
    let retained = policy == Some(crate::api::DeletionPolicy::Retain);
    next(conn, disconnected_conditions(retained), now, |s| {
        if !retained {
            s.credentials_ref = None;
        }
        s.credentials_expire_at = None;
        s.next_refresh_at = None;
        s.retry_attempts = None;
        s.next_retry_at = None;
        s.authorization_url = None;
    })
}

/// A revocation (on request or before deletion) that failed, and how long until it is
/// tried again.
pub fn revocation_failed(
    conn: &Connection,
    err: &Error,
    message: &str,
    now: Timestamp,
    dice: Dice<'_>,
) -> (ConnectionStatus, Duration) {
    let attempts = attempts(conn);
    let delay = schedule::backoff(attempts, dice);
    let status = next(
        conn,
        failed_conditions(err, Stage::Test, message),
        now,
        |s| {
            s.retry_attempts = Some(attempts + 1);
            s.next_retry_at = Some(schedule::after(now, delay).to_string());
        },
    );
    (status, delay)
}

/// The object at fault, as an Event's related object: the connector or Tenant the
/// Connection's spec names, or a Secret. None when the fault is the Connection's own, the
/// provider's or the API server's.
pub fn related(conn: &Connection, at: &AtFault) -> Option<ObjectReference> {
    let namespace = conn.metadata.namespace.clone();
    let plugboard = |kind: &str, name: &str, namespace: Option<String>| ObjectReference {
        api_version: Some(Connection::api_version(&()).into_owned()),
        kind: Some(kind.to_owned()),
        name: Some(name.to_owned()),
        namespace,
        ..ObjectReference::default()
    };
    match at {
        AtFault::Connector => {
            let kind = conn.connector_kind();
            let scoped = (kind == ConnectorKind::Connector).then_some(namespace);
            Some(plugboard(
                kind.as_str(),
                &conn.spec.connector_ref.name,
                scoped.flatten(),
            ))
        }
        AtFault::Tenant => Some(plugboard("Tenant", &conn.spec.tenant_ref.name, namespace)),
        AtFault::Secret {
            namespace: elsewhere,
            name,
        } => Some(ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Secret".to_owned()),
            name: Some(name.clone()),
            namespace: elsewhere.clone().or(namespace),
            ..ObjectReference::default()
        }),
        AtFault::Connection | AtFault::Provider | AtFault::Kubernetes | AtFault::Store => None,
    }
}

/// The event a status change is worth: a change of Ready or its reason (a reworded message
/// is not one), about the Connection and naming `related`, the object at fault. Disconnecting
/// and suspending are what someone asked for, not faults.
pub fn transition(
    before: &ConnectionStatus,
    after: &ConnectionStatus,
    related: Option<ObjectReference>,
) -> Option<Event> {
    let ready = |s: &ConnectionStatus| {
        conditions::find(&s.conditions, READY).map(|c| {
            (
                conditions::holds(c),
                c.reason.to_string(),
                c.message.clone(),
            )
        })
    };
    let (was, now) = (ready(before), ready(after));
    if was.as_ref().map(|(r, why, _)| (r, why)) == now.as_ref().map(|(r, why, _)| (r, why)) {
        return None;
    }
    let (ready, reason, message) = now?;
    Some(Event {
        type_: if ready || reason == "Disconnected" || reason == TENANT_SUSPENDED {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason,
        note: Some(message),
        action: "Reconcile".to_owned(),
        secondary: related,
    })
}

/// What to add to a refused refresh token's message when the refresh before it was made by
/// an earlier run of the operator: a run stopped (kill -9, node loss) between the provider's
/// rotation answer and the store write leaves the store with a refresh token the provider
/// has already replaced, and a provider with reuse detection then revokes the whole grant.
/// Nothing can recover it; the person must consent again, and the message says why.
pub fn refused_after_restart(err: &Error, conn: &Connection, started: Timestamp) -> Option<String> {
    let Error::RefreshTokenRefused(_) = err else {
        return None;
    };
    let last = conn.status.as_ref()?.last_refreshed_at.as_deref()?;
    let last: Timestamp = last.parse().ok()?;
    (last < started).then(|| {
        format!(
            ". The operator restarted at {started} since the last refresh it stored ({last}); if \
             it was stopped during a refresh, the provider had rotated the refresh token and the \
             new one never reached the store. Consent again at status.authorizationUrl"
        )
    })
}

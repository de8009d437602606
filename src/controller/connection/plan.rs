//! Plan: decide, from what gather observed and the time, what this reconcile does — keep the
//! stored credentials, obtain new ones, store tokens kept in memory, or report why it
//! cannot — and whether the test is due. Pure: no I/O, the clock and the jitter passed in.
//!
//! The credentials decision is a chain of small checks applied in a fixed order, each with
//! a stable reason ([`Why`]); the first that applies decides. After the provider answered,
//! [`settle`] decides what its answer means, just as purely.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

use super::gather::Observed;
use super::outcome::Stage;
use super::schedule::{self, Dice};
use super::validate;
use crate::api::{Connection, ConnectionStatus};
use crate::auth::method::{ConnectorSecrets, Fresh, Held};
use crate::controller::conditions::{self, TESTED};
use crate::error::Error;

/// The Ready reason of credentials that expired while their refresh waits for a retry.
const CREDENTIALS_EXPIRED: &str = "CredentialsExpired";

/// The annotation that asks for one refresh now; its value is echoed in status.
pub const REFRESH_REQUESTED_AT: &str = "plugboard.dev/refresh-requested-at";

/// What the reconcile of a Connection does, decided before gather.
#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    /// `spec.disconnected: true`: revoke, delete the credentials, keep the object.
    Disconnect,
    /// The tenant is suspended: hold everything as it is.
    Pause { tenant: String },
    /// Gather, plan and execute.
    Reconcile,
}

/// `conn`'s mode, given whether its Tenant (as cached) is suspended.
pub fn mode(conn: &Connection, tenant_suspended: bool) -> Mode {
    if conn.spec.disconnected == Some(true) {
        Mode::Disconnect
    } else if tenant_suspended {
        Mode::Pause {
            tenant: conn.spec.tenant_ref.name.clone(),
        }
    } else {
        Mode::Reconcile
    }
}

/// What to do with the credentials.
#[derive(Debug)]
pub enum Step {
    /// Use the stored credentials as they are.
    Keep {
        why: Why,
        held: Held,
        /// When they fall due for refresh.
        next_refresh_at: Option<Timestamp>,
        /// A retry of a failed refresh is pending until then; status keeps its count.
        retry_at: Option<Timestamp>,
    },
    /// Obtain new ones through the auth method.
    Obtain {
        why: Why,
        /// What is stored now (none for a method that keeps nothing): kept in use if the
        /// provider is briefly unavailable.
        held: Option<Held>,
        /// The refresh time that passed, if one did.
        due: Option<Timestamp>,
        /// The refresh request annotation this answers, echoed once it succeeded.
        requested: Option<String>,
    },
    /// Store the tokens an earlier reconcile obtained but could not store.
    StoreKept,
}

/// Why the plan took its credentials step: a stable word for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The method keeps nothing; the credentials come from the input.
    FromInput,
    /// Nothing usable is stored.
    NoCredentials,
    /// What is stored no longer says what it should.
    Outdated,
    /// The refresh annotation asks for one.
    RefreshRequested,
    /// A failed refresh is retried later, and the stored ones still work.
    RetryPending,
    /// No refresh token: used until it expires.
    NotRenewable,
    /// The refresh time has come.
    RefreshDue,
    /// Nothing is due.
    Fresh,
    /// The test request refused the credentials kept (401), and the method exchanges them
    /// again rather than wait for their expiry.
    Refused,
}

impl Why {
    pub fn word(self) -> &'static str {
        match self {
            Self::FromInput => "FromInput",
            Self::NoCredentials => "NoCredentials",
            Self::Outdated => "Outdated",
            Self::RefreshRequested => "RefreshRequested",
            Self::RetryPending => "RetryPending",
            Self::NotRenewable => "NotRenewable",
            Self::RefreshDue => "RefreshDue",
            Self::Fresh => "Fresh",
            Self::Refused => "Refused",
        }
    }
}

/// Whether and why the test request runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// The connector has none.
    None,
    /// It runs whatever happens, for this reason.
    Due(&'static str),
    /// It runs if the stored credentials changed.
    IfChanged,
}

/// The plan for a Connection in [`Mode::Reconcile`].
pub enum Plan {
    /// Something observed is wrong: report it, change nothing.
    Fail {
        error: Error,
        stage: Stage,
    },
    Connect(Connect),
}

pub struct Connect {
    /// The connector Secrets as the method uses them.
    pub secrets: ConnectorSecrets,
    pub step: Step,
    pub test: Test,
    pub test_interval: Option<Duration>,
}

/// What the observed status and annotations say about refreshing.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    /// `status.nextRefreshAt`.
    pub scheduled: Option<Timestamp>,
    /// `status.credentialsExpireAt`: the expiry of the tokens `scheduled` was set for.
    pub scheduled_for: Option<Timestamp>,
    /// The refresh request annotation.
    pub requested: Option<String>,
    /// `status.refreshRequestedAt`: the request last answered.
    pub answered: Option<String>,
    /// `status.nextRetryAt`.
    pub retry_at: Option<Timestamp>,
    /// Whether the retry pending is a refresh's: status says Ready (a refresh failed while
    /// the credentials still worked) or that they expired meanwhile. A failed test's retry
    /// leaves it neither.
    pub refresh_retrying: bool,
}

impl Facts {
    pub fn of(conn: &Connection) -> Self {
        let status = conn.status.as_ref();
        let time = |t: Option<&String>| t.and_then(|t| t.parse::<Timestamp>().ok());
        Self {
            scheduled: time(status.and_then(|s| s.next_refresh_at.as_ref())),
            scheduled_for: time(status.and_then(|s| s.credentials_expire_at.as_ref())),
            requested: conn.annotations().get(REFRESH_REQUESTED_AT).cloned(),
            answered: status.and_then(|s| s.refresh_requested_at.clone()),
            retry_at: time(status.and_then(|s| s.next_retry_at.as_ref())),
            refresh_retrying: status
                .and_then(|s| conditions::find(&s.conditions, conditions::READY))
                .is_some_and(|c| conditions::holds(c) || c.reason == CREDENTIALS_EXPIRED),
        }
    }

    fn forced(&self) -> bool {
        self.requested.is_some() && self.requested != self.answered
    }
}

/// The plan for what `obs` observed at `now`.
pub fn plan(obs: &Observed<'_>, now: Timestamp, dice: Dice<'_>, allow_private: bool) -> Plan {
    let fail = |error| Plan::Fail {
        error,
        stage: Stage::Credentials,
    };
    let test_spec = obs.resolved.connector.test.as_ref();
    let test_interval = test_spec.and_then(|t| t.interval).map(Duration::from);
    let test = match test_spec {
        None => Test::None,
        Some(_) => test_due(obs.conn, test_interval, now).map_or(Test::IfChanged, Test::Due),
    };
    // Tokens waiting in memory are the only copy of a rotated refresh token: they are stored
    // before anything is judged, so that no check failing now (an app Secret, a host)
    // keeps them from the store. The reconcile their write wakes judges the rest.
    if obs.kept.is_some() {
        return Plan::Connect(Connect {
            secrets: ConnectorSecrets::default(),
            step: Step::StoreKept,
            test,
            test_interval,
        });
    }
    let secrets = match validate::all(obs, allow_private) {
        Ok(secrets) => secrets,
        Err(error) => return fail(error),
    };
    let held = match obs.method.inspect(&obs.inputs(&secrets)) {
        Ok(held) => held,
        Err(error) => return fail(error),
    };
    let facts = Facts::of(obs.conn);
    let step = match credentials(held, &facts, now, dice) {
        Ok(step) => step,
        Err(error) => return fail(error),
    };
    Plan::Connect(Connect {
        secrets,
        step,
        test,
        test_interval,
    })
}

/// The credentials step: the first check of the chain that applies.
pub fn credentials(
    held: Option<Held>,
    facts: &Facts,
    now: Timestamp,
    dice: Dice<'_>,
) -> Result<Step, Error> {
    let obtain = |why, held, due| Step::Obtain {
        why,
        held,
        due,
        requested: facts.forced().then(|| facts.requested.clone()).flatten(),
    };
    let Some(held) = held else {
        return Ok(obtain(Why::FromInput, None, None));
    };
    if !held.usable {
        if held.needs_consent {
            return Err(Error::AuthorizationRequired(
                "no credentials yet: a person must authorize access at the provider".to_owned(),
            ));
        }
        return Ok(obtain(Why::NoCredentials, Some(held), None));
    }
    if !held.current {
        return Ok(obtain(Why::Outdated, Some(held), None));
    }
    // The stored tokens' refresh time: the one status recorded for them, or a margin before
    // their expiry for tokens status has no record of: from the consent callback, or stored
    // by a reconcile that stopped (a restart) before it wrote status, whose record is the
    // old tokens'. Their issue time is unknown, so no minimum gap: tokens stored already
    // expired are refreshed at once.
    let recorded = facts
        .scheduled
        .filter(|_| facts.scheduled_for == held.expires_at);
    let due = recorded.or_else(|| held.expires_at.map(|e| schedule::ahead_of(e, now, dice)));
    if facts.forced() {
        return Ok(obtain(Why::RefreshRequested, Some(held), due));
    }
    let valid = held.expires_at.is_none_or(|e| now < e);
    // A refresh that failed while the Connection stayed connected is retried at its time
    // (its backoff, the provider's Retry-After), not at every wake-up before it.
    let retrying = facts
        .retry_at
        .filter(|at| now < *at && facts.refresh_retrying);
    match (retrying, held.expires_at) {
        (Some(retry_at), _) if valid => {
            return Ok(Step::Keep {
                why: Why::RetryPending,
                next_refresh_at: due,
                retry_at: Some(retry_at),
                held,
            });
        }
        // They expired before the retry: say so, and still wait for the retry.
        (Some(retry_at), Some(expired)) => {
            return Err(Error::CredentialsExpired {
                message: format!(
                    "the credentials expired at {expired} while the provider was unavailable; the refresh is retried at {retry_at}"
                ),
                retry_at,
            });
        }
        _ => {}
    }
    if due.is_none_or(|due| now < due) {
        return Ok(Step::Keep {
            why: Why::Fresh,
            next_refresh_at: due,
            retry_at: None,
            held,
        });
    }
    // Without a refresh token nothing can be renewed, but the access token still works
    // until it expires: it stays in use, and the next look is at its expiry.
    if !held.renewable
        && let Some(expires) = held.expires_at.filter(|e| now < *e)
    {
        return Ok(Step::Keep {
            why: Why::NotRenewable,
            next_refresh_at: Some(expires),
            retry_at: None,
            held,
        });
    }
    Ok(obtain(Why::RefreshDue, Some(held), due))
}

/// The step after a test that failed with `err`, when obtaining again at once answers it:
/// the test refused (401) credentials that were kept, not just obtained, and the method
/// renews on refusal. Once: the new credentials' own refusal is the Connection's error.
pub fn after_refused_test(step: &Step, err: &Error, renews_on_refusal: bool) -> Option<Step> {
    let Step::Keep { held, .. } = step else {
        return None;
    };
    let refused = matches!(err, Error::TestRefused(_));
    (refused && renews_on_refusal && held.renewable).then(|| Step::Obtain {
        why: Why::Refused,
        held: Some(held.clone()),
        due: None,
        requested: None,
    })
}

/// What obtaining ended in, for status.
#[derive(Debug)]
pub enum Settled {
    /// New credentials (rendered, minted or from the provider).
    New {
        fresh: Fresh,
        next_refresh_at: Option<Timestamp>,
        refreshed_at: Option<Timestamp>,
        /// The request annotation answered.
        answered: Option<String>,
    },
    /// The provider is briefly unavailable and the stored credentials still work: keep them
    /// and retry no sooner than `retry_in`.
    Retry {
        held: Held,
        next_refresh_at: Option<Timestamp>,
        retry_in: Duration,
    },
    Failed(Error),
}

/// What the method's answer to an `Obtain` step means.
pub fn settle(
    step: &Step,
    result: Result<Fresh, Error>,
    now: Timestamp,
    dice: Dice<'_>,
) -> Settled {
    let Step::Obtain {
        held,
        due,
        requested,
        ..
    } = step
    else {
        return Settled::Failed(Error::InvalidInput(
            "only an Obtain step settles".to_owned(),
        ));
    };
    match result {
        Ok(fresh) => {
            let issued = fresh.issued;
            Settled::New {
                next_refresh_at: fresh
                    .expires_at
                    .filter(|_| issued)
                    .map(|e| schedule::refresh_due(now, e, dice)),
                refreshed_at: issued.then_some(now),
                answered: requested.clone(),
                fresh,
            }
        }
        Err(Error::ProviderUnavailable {
            message,
            retry_after,
        }) => match held {
            Some(held) if held.usable && held.expires_at.is_none_or(|e| now < e) => {
                Settled::Retry {
                    held: held.clone(),
                    next_refresh_at: *due,
                    retry_in: retry_after.unwrap_or(schedule::BACKOFF_MIN),
                }
            }
            _ => Settled::Failed(Error::ProviderUnavailable {
                message,
                retry_after,
            }),
        },
        Err(err) => Settled::Failed(err),
    }
}

/// Why the test must run although the credentials did not change, if it must: the spec
/// changed, the last test did not pass, or the re-test interval has passed.
pub fn test_due(
    conn: &Connection,
    interval: Option<Duration>,
    now: Timestamp,
) -> Option<&'static str> {
    let Some(status) = &conn.status else {
        return Some("NeverTested");
    };
    if status.observed_generation != conn.meta().generation {
        return Some("SpecChanged");
    }
    let passed = conditions::find(&status.conditions, TESTED)
        .is_some_and(|c| conditions::holds(c) && c.reason == "TestPassed");
    if !passed {
        return Some("NotPassed");
    }
    let interval = interval?;
    match last_tested(status) {
        None => Some("NeverTested"),
        Some(last) => (schedule::until(last, now) >= interval).then_some("IntervalPassed"),
    }
}

/// When the last test passed, from status.
pub fn last_tested(status: &ConnectionStatus) -> Option<Timestamp> {
    status
        .last_tested_at
        .as_deref()
        .and_then(|t| t.parse().ok())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

//! The plan's decisions as a table of cases, with a fixed clock and fixed dice: no cluster,
//! no provider, no time passing.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;

use super::*;
use crate::api::{Connection, ConnectionStatus};
use crate::auth::method::{Fresh, Held};
use crate::controller::conditions::{Desired, READY, TESTED, merge};
use crate::controller::connection::outcome::{Done, Retry, Schedule};
use crate::controller::connection::status;

const NOW: &str = "2026-06-01T12:00:00Z";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn now() -> Timestamp {
    at(NOW)
}

fn later(secs: i64) -> Timestamp {
    now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(secs))
        .unwrap()
}

/// A Connection as a test wants it, built field by field.
struct ConnectionBuilder {
    conn: Connection,
}

fn connection() -> ConnectionBuilder {
    let spec = serde_json::from_value(serde_json::json!({
        "tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"}
    }))
    .expect("a Connection spec");
    let mut conn = Connection::new("acme-hubspot", spec);
    conn.metadata.namespace = Some("acme".to_owned());
    conn.metadata.uid = Some("uid-1".to_owned());
    conn.metadata.generation = Some(1);
    ConnectionBuilder { conn }
}

impl ConnectionBuilder {
    fn status(mut self, fill: impl FnOnce(&mut ConnectionStatus)) -> Self {
        let status = self.conn.status.get_or_insert_with(|| ConnectionStatus {
            observed_generation: Some(1),
            ..ConnectionStatus::default()
        });
        fill(status);
        self
    }

    /// Status records `due` as the refresh time of tokens that expire at `expires`.
    fn scheduled_for(self, due: Timestamp, expires: Timestamp) -> Self {
        self.status(|s| {
            s.next_refresh_at = Some(due.to_string());
            s.credentials_expire_at = Some(expires.to_string());
        })
    }

    /// A failed refresh while connected: Ready, and a retry at `retry_at`.
    fn retrying_until(self, retry_at: Timestamp, attempts: u32) -> Self {
        self.ready(true).status(|s| {
            s.next_retry_at = Some(retry_at.to_string());
            s.retry_attempts = Some(attempts);
        })
    }

    fn ready(self, ready: bool) -> Self {
        let reason = if ready { "Connected" } else { "TestFailed" };
        let ready = merge(
            &[],
            &[Desired::new(READY, ready, reason, "")],
            Some(1),
            &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()),
        );
        self.status(|s| {
            s.conditions.retain(|c| c.type_ != "Ready");
            s.conditions.extend(ready);
        })
    }

    fn refresh_requested(mut self, value: &str) -> Self {
        self.conn.metadata.annotations =
            Some([(REFRESH_REQUESTED_AT.to_owned(), value.to_owned())].into());
        self
    }

    fn answered(self, value: &str) -> Self {
        self.status(|s| s.refresh_requested_at = Some(value.to_owned()))
    }

    fn tested(self, reason: &str, passed: bool, last: Timestamp) -> Self {
        let conditions = merge(
            &[],
            &[Desired::new(TESTED, passed, reason, "")],
            Some(1),
            &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(last),
        );
        self.status(|s| {
            s.conditions = conditions;
            s.last_tested_at = Some(last.to_string());
        })
    }

    fn generation(mut self, generation: i64) -> Self {
        self.conn.metadata.generation = Some(generation);
        self
    }

    fn disconnected(mut self) -> Self {
        self.conn.spec.disconnected = Some(true);
        self
    }

    fn build(self) -> Connection {
        self.conn
    }
}

/// Stored OAuth tokens as a method judges them.
fn tokens(expires_in: i64) -> Held {
    Held {
        keep: Default::default(),
        usable: true,
        renewable: true,
        expires_at: Some(later(expires_in)),
        current: true,
        needs_consent: true,
    }
}

fn step(conn: &Connection, held: Option<Held>, roll: f64) -> Result<Step, crate::error::Error> {
    credentials(held, &Facts::of(conn), now(), &mut || roll)
}

fn why(step: &Result<Step, crate::error::Error>) -> &'static str {
    match step {
        Ok(Step::Keep { why, .. } | Step::Obtain { why, .. }) => why.word(),
        Ok(Step::StoreKept) => "StoreKept",
        Err(err) => err.reason(),
    }
}

type Case = (&'static str, Connection, Option<Held>, &'static str);

/// What the stored credentials alone decide.
fn cases_of_what_is_stored() -> Vec<Case> {
    let plain = connection().build();
    let not_usable = Held {
        usable: false,
        ..tokens(3600)
    };
    let machine = Held {
        needs_consent: false,
        ..not_usable.clone()
    };
    let outdated = Held {
        current: false,
        ..tokens(3600)
    };
    let expired_without_refresh_token = Held {
        renewable: false,
        expires_at: Some(later(-1)),
        ..tokens(0)
    };
    vec![
        ("static input", plain.clone(), None, "FromInput"),
        (
            "no tokens, a person must consent",
            plain.clone(),
            Some(not_usable),
            "AuthorizationRequired",
        ),
        (
            "no tokens, a grant needs no person",
            plain.clone(),
            Some(machine),
            "NoCredentials",
        ),
        (
            "a minted token of another key",
            plain.clone(),
            Some(outdated),
            "Outdated",
        ),
        ("fresh tokens", plain.clone(), Some(tokens(3600)), "Fresh"),
        (
            "no refresh token, expired",
            plain,
            Some(expired_without_refresh_token),
            "RefreshDue",
        ),
    ]
}

/// What status and the refresh annotation decide, given working tokens.
fn cases_of_what_status_says() -> Vec<Case> {
    let no_refresh_token = Held {
        renewable: false,
        ..tokens(600)
    };
    vec![
        (
            "the recorded refresh time has come",
            connection().scheduled_for(later(-1), later(3600)).build(),
            Some(tokens(3600)),
            "RefreshDue",
        ),
        (
            "a refresh request not answered yet",
            connection().refresh_requested("r1").answered("r0").build(),
            Some(tokens(3600)),
            "RefreshRequested",
        ),
        (
            "a refresh request already answered",
            connection().refresh_requested("r1").answered("r1").build(),
            Some(tokens(3600)),
            "Fresh",
        ),
        (
            "no refresh token, before its refresh time",
            connection().scheduled_for(later(60), later(600)).build(),
            Some(Held {
                renewable: false,
                ..tokens(600)
            }),
            "Fresh",
        ),
        (
            "no refresh token, not expired",
            connection().scheduled_for(later(-60), later(600)).build(),
            Some(no_refresh_token),
            "NotRenewable",
        ),
    ]
}

/// What a pending retry decides.
fn cases_of_retries() -> Vec<Case> {
    vec![
        (
            "a failed refresh retries later, the token still works",
            connection()
                .scheduled_for(later(-60), later(600))
                .retrying_until(later(30), 2)
                .build(),
            Some(tokens(600)),
            "RetryPending",
        ),
        (
            "a retry time that has passed",
            connection()
                .scheduled_for(later(-60), later(600))
                .retrying_until(later(-1), 2)
                .build(),
            Some(tokens(600)),
            "RefreshDue",
        ),
        (
            "a pending retry does not hold a forced refresh",
            connection()
                .retrying_until(later(30), 1)
                .refresh_requested("r2")
                .build(),
            Some(tokens(600)),
            "RefreshRequested",
        ),
        (
            "the token expired while its refresh waits for the retry",
            connection()
                .scheduled_for(later(-60), later(-1))
                .retrying_until(later(30), 1)
                .build(),
            Some(Held {
                expires_at: Some(later(-1)),
                ..tokens(0)
            }),
            "CredentialsExpired",
        ),
        (
            "a failed test's retry does not hold a refresh that is due",
            connection()
                .scheduled_for(later(-60), later(600))
                .retrying_until(later(30), 2)
                .ready(false)
                .build(),
            Some(tokens(600)),
            "RefreshDue",
        ),
    ]
}

#[test]
fn the_credentials_step_follows_the_chain_of_checks_in_order() {
    let cases = cases_of_what_is_stored()
        .into_iter()
        .chain(cases_of_what_status_says())
        .chain(cases_of_retries());
    for (case, conn, held, expected) in cases {
        assert_eq!(why(&step(&conn, held, 0.5)), expected, "{case}");
    }
}

#[test]
fn tokens_stored_before_a_restart_lost_their_status_write_are_not_refreshed_again() {
    // Status still records the old tokens' schedule: due a minute ago, for tokens that
    // expired then. The store holds the new ones, an hour long.
    let conn = connection().scheduled_for(later(-60), later(-30)).build();
    let Ok(Step::Keep {
        why,
        next_refresh_at,
        ..
    }) = step(&conn, Some(tokens(3600)), 0.0)
    else {
        panic!("the new tokens are kept");
    };
    assert_eq!(why, Why::Fresh);
    assert_eq!(next_refresh_at, Some(later(3600 - 720)), "their own margin");
}

#[test]
fn tokens_without_a_recorded_schedule_fall_due_a_margin_before_expiry() {
    // A one-hour token from the consent callback: 12 to 18 minutes early, by the dice.
    for (roll, early) in [(0.0, 720), (0.5, 900)] {
        let Ok(Step::Keep {
            next_refresh_at, ..
        }) = step(&connection().build(), Some(tokens(3600)), roll)
        else {
            panic!("fresh tokens are kept");
        };
        let due = next_refresh_at.expect("a refresh time");
        assert_eq!(
            later(3600).duration_since(due).as_secs(),
            early,
            "roll {roll}"
        );
    }
}

#[test]
fn a_short_token_is_used_for_at_least_half_its_life() {
    // Five minutes: the margin is capped at 40 % and the jitter adds up to 10 %.
    let Ok(Step::Keep {
        next_refresh_at, ..
    }) = step(&connection().build(), Some(tokens(300)), 0.999)
    else {
        panic!("fresh tokens are kept");
    };
    let used = next_refresh_at.unwrap().duration_since(now()).as_secs();
    assert_eq!(used, 150);
}

#[test]
fn a_token_without_refresh_token_is_used_until_it_expires() {
    let held = Held {
        renewable: false,
        ..tokens(90)
    };
    let Ok(Step::Keep {
        next_refresh_at, ..
    }) = step(
        &connection().scheduled_for(later(-30), later(90)).build(),
        Some(held),
        0.5,
    )
    else {
        panic!("kept until expiry");
    };
    assert_eq!(
        next_refresh_at,
        Some(later(90)),
        "the next look is at its expiry"
    );
}

fn obtain(requested: Option<&str>, held: Option<Held>) -> Step {
    Step::Obtain {
        why: Why::RefreshDue,
        held,
        due: Some(later(-5)),
        requested: requested.map(str::to_owned),
    }
}

fn unavailable(retry_after: Option<u64>) -> crate::error::Error {
    crate::error::Error::ProviderUnavailable {
        message: "HTTP 503".to_owned(),
        retry_after: retry_after.map(Duration::from_secs),
    }
}

#[test]
fn what_the_provider_answered_settles_into_new_tokens_a_retry_or_a_failure() {
    let issued = Fresh {
        expires_at: Some(later(3600)),
        issued: true,
        ..Fresh::default()
    };
    match settle(
        &obtain(Some("r1"), Some(tokens(60))),
        Ok(issued),
        now(),
        &mut || 0.0,
    ) {
        Settled::New {
            next_refresh_at,
            refreshed_at,
            answered,
            ..
        } => {
            assert_eq!(next_refresh_at, Some(later(3600 - 720)));
            assert_eq!(refreshed_at, Some(now()));
            assert_eq!(
                answered.as_deref(),
                Some("r1"),
                "a forced refresh is echoed once done"
            );
        }
        other => panic!("{other:?}"),
    }
    // Seconds of Retry-After (the HTTP-date form is parsed to the same Duration).
    match settle(
        &obtain(Some("r1"), Some(tokens(60))),
        Err(unavailable(Some(120))),
        now(),
        &mut || 0.0,
    ) {
        Settled::Retry { retry_in, .. } => assert_eq!(retry_in, Duration::from_secs(120)),
        other => panic!("{other:?}"),
    }
    match settle(
        &obtain(None, Some(tokens(60))),
        Err(unavailable(None)),
        now(),
        &mut || 0.0,
    ) {
        Settled::Retry { retry_in, .. } => assert_eq!(retry_in, Duration::from_secs(1)),
        other => panic!("{other:?}"),
    }
    // An expired token cannot carry on while the provider is away.
    let expired = Held {
        expires_at: Some(later(-1)),
        ..tokens(0)
    };
    assert!(matches!(
        settle(
            &obtain(None, Some(expired)),
            Err(unavailable(None)),
            now(),
            &mut || 0.0
        ),
        Settled::Failed(crate::error::Error::ProviderUnavailable { .. })
    ));
    let revoked = crate::error::Error::TokenRevoked("invalid_grant".to_owned());
    assert!(matches!(
        settle(
            &obtain(Some("r1"), Some(tokens(60))),
            Err(revoked),
            now(),
            &mut || 0.0
        ),
        Settled::Failed(crate::error::Error::TokenRevoked(_))
    ));
    // Rendered credentials are not a refresh: nothing to schedule.
    let rendered = Fresh::default();
    match settle(&obtain(None, None), Ok(rendered), now(), &mut || 0.0) {
        Settled::New {
            next_refresh_at,
            refreshed_at,
            ..
        } => assert_eq!((next_refresh_at, refreshed_at), (None, None)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_test_runs_when_the_spec_changed_it_did_not_pass_or_its_interval_passed() {
    let hour = Some(Duration::from_secs(3600));
    let cases: Vec<(&str, Connection, Option<Duration>, Option<&str>)> = vec![
        (
            "never reconciled",
            connection().build(),
            hour,
            Some("NeverTested"),
        ),
        (
            "passed a minute ago",
            connection().tested("TestPassed", true, later(-60)).build(),
            hour,
            None,
        ),
        (
            "passed two hours ago",
            connection()
                .tested("TestPassed", true, later(-7200))
                .build(),
            hour,
            Some("IntervalPassed"),
        ),
        (
            "passed, no interval",
            connection()
                .tested("TestPassed", true, later(-7200))
                .build(),
            None,
            None,
        ),
        (
            "failed",
            connection().tested("TestFailed", false, later(-60)).build(),
            hour,
            Some("NotPassed"),
        ),
        (
            "the connector had no test before",
            connection().tested("NoTest", true, later(-60)).build(),
            hour,
            Some("NotPassed"),
        ),
        (
            "the spec changed",
            connection()
                .tested("TestPassed", true, later(-60))
                .generation(2)
                .build(),
            hour,
            Some("SpecChanged"),
        ),
    ];
    for (case, conn, interval, expected) in cases {
        assert_eq!(test_due(&conn, interval, now()), expected, "{case}");
    }
}

#[test]
fn a_disconnected_spec_or_a_suspended_tenant_decide_before_anything_is_read() {
    let conn = connection().build();
    assert_eq!(mode(&conn, false), Mode::Reconcile);
    assert_eq!(
        mode(&conn, true),
        Mode::Pause {
            tenant: "acme".to_owned()
        }
    );
    let disconnected = connection().disconnected().build();
    assert_eq!(mode(&disconnected, true), Mode::Disconnect);
}

fn done(retry: Retry, next_refresh_at: Option<Timestamp>) -> Done {
    Done {
        schedule: Schedule {
            expires_at: Some(later(600)),
            next_refresh_at,
            refreshed_at: None,
        },
        answered: None,
        retry,
        tested: false,
        version: None,
    }
}

fn requeue(action: &Action) -> String {
    format!("{action:?}")
}

#[test]
fn a_failed_refresh_backs_off_and_honours_retry_after_in_status_and_requeue_alike() {
    let conn = connection().retrying_until(later(-1), 3).build();
    let reference = crate::api::CredentialsReference {
        store: crate::api::CredentialsStoreKind::Kubernetes,
        secret_name: Some("acme-hubspot-credentials".to_owned()),
        ..Default::default()
    };
    for (retry_after, expected) in [(1, 8), (120, 120)] {
        let done = done(
            Retry::After(Duration::from_secs(retry_after)),
            Some(later(-5)),
        );
        let connected = status::Connected {
            done: &done,
            reference: reference.clone(),
            has_test: false,
            test_interval: None,
        };
        let (next, action) = status::connected(&conn, &connected, now(), &mut || 0.0);
        // Four attempts in a row: 2^3 s of backoff, unless the provider asks for longer.
        assert_eq!(next.retry_attempts, Some(4));
        assert_eq!(next.next_retry_at, Some(later(expected).to_string()));
        assert_eq!(
            requeue(&action),
            requeue(&Action::requeue(Duration::from_secs(expected as u64)))
        );
    }
}

#[test]
fn a_pending_retry_keeps_its_count_and_time_and_wakes_then() {
    let conn = connection().retrying_until(later(40), 2).build();
    let done = done(Retry::Pending(later(40)), Some(later(-5)));
    let connected = status::Connected {
        done: &done,
        reference: crate::api::CredentialsReference {
            store: crate::api::CredentialsStoreKind::Kubernetes,
            ..Default::default()
        },
        has_test: false,
        test_interval: None,
    };
    let (next, action) = status::connected(&conn, &connected, now(), &mut || 0.9);
    assert_eq!(next.retry_attempts, Some(2));
    assert_eq!(next.next_retry_at, Some(later(40).to_string()));
    assert_eq!(
        requeue(&action),
        requeue(&Action::requeue(Duration::from_secs(40)))
    );
}

#[test]
fn a_refresh_token_refused_after_a_restart_says_a_rotation_may_have_been_lost() {
    let refused = crate::error::Error::RefreshTokenRefused("invalid_grant".to_owned());
    let refreshed = |at: Timestamp| {
        connection()
            .status(|s| s.last_refreshed_at = Some(at.to_string()))
            .build()
    };
    let hint = status::refused_after_restart(&refused, &refreshed(later(-600)), later(-60));
    assert!(
        hint.as_deref()
            .is_some_and(|h| h.contains("restarted") && h.contains("status.authorizationUrl")),
        "{hint:?}"
    );
    // Refreshed by this run: the grant was revoked, no restart lost anything.
    assert_eq!(
        status::refused_after_restart(&refused, &refreshed(later(-30)), later(-60)),
        None
    );
    // Never refreshed: nothing was rotated that could be lost.
    assert_eq!(
        status::refused_after_restart(&refused, &connection().build(), later(-60)),
        None
    );
    // Any other refusal (a client-credentials grant) has no refresh token to lose.
    let revoked = crate::error::Error::TokenRevoked("invalid_grant".to_owned());
    assert_eq!(
        status::refused_after_restart(&revoked, &refreshed(later(-600)), later(-60)),
        None
    );
}

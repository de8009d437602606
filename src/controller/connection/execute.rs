//! Execute: carry out a plan's effects, in the one order that loses nothing — the provider
//! request, at most one store write (new tokens before anything uses them), then the test
//! request. What happened is returned for status; status is written by [`write_status`]
//! only when it changed.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::Api;
use kube::runtime::events::{Event, EventType};
use secrecy::ExposeSecret;

use super::gather::{self, Observed, Reread};
use super::outcome::{Done, Failure, Outcome, Retry, Schedule, Stage};
use super::plan::{self, Connect, Settled, Step, Test};
use super::schedule::Dice;
use super::status;
use super::unsaved::Kept;
use crate::api::{Connection, ConnectionStatus};
use crate::auth::method::{ConnectorSecrets, Held};
use crate::controller::Context;
use crate::error::Error;
use crate::provider::api_client::{self, RenderedApiClient};
use crate::provider::hosts::AllowedHosts;
use crate::provider::request::{self, Purpose};
use crate::store::{self, Credentials, Want, Writer};

/// The credentials this run uses, and whether they are new.
struct InUse {
    credentials: Credentials,
    schedule: Schedule,
    answered: Option<String>,
    retry: Retry,
    /// New tokens: the only copy, written over the version read.
    issued: bool,
    /// They arrived but the connector cannot use them as it says.
    unusable: Option<Error>,
    /// When the provider's answer with new tokens arrived: until the store has them, they
    /// exist only in this process.
    answered_at: Option<std::time::Instant>,
}

/// Runs `plan` for `obs`: once, and once more with new credentials when the test refused
/// the kept ones and the method renews on refusal.
pub async fn connect(
    obs: &Observed<'_>,
    plan: &Connect,
    ctx: &Context,
    now: Timestamp,
    dice: Dice<'_>,
) -> Outcome {
    let mut secrets = obs.secret_values();
    let mut result = attempt(obs, plan, &plan.step, ctx, (now, dice), &mut secrets).await;
    if let Err(failure) = &result
        && let Some(step) =
            plan::after_refused_test(&plan.step, &failure.error, obs.method.renews_on_refusal())
    {
        tracing::info!(error = %failure.error, "the test refused the credentials; obtaining new ones");
        result = attempt(obs, plan, &step, ctx, (now, dice), &mut secrets).await;
    }
    Outcome { result, secrets }
}

/// One pass of the effects with `step` for the credentials.
async fn attempt(
    obs: &Observed<'_>,
    plan: &Connect,
    step: &Step,
    ctx: &Context,
    (now, dice): (Timestamp, Dice<'_>),
    secrets: &mut Vec<String>,
) -> Result<Done, Failure> {
    let fail = |error, stage, stored| Failure {
        error,
        stage,
        stored,
    };
    let mut in_use = credentials(obs, step, &plan.secrets, ctx, now, dice)
        .await
        .map_err(|err| fail(err, Stage::Credentials, None))?;
    secrets.extend(
        in_use
            .credentials
            .values()
            .map(|v| v.expose_secret().to_owned()),
    );
    let context = gather::with_credentials(obs.context.clone(), &in_use.credentials);
    let stored = in_use.issued.then(|| in_use.schedule.clone());
    let (written, client) = match store_credentials(obs, &mut in_use, &context, ctx).await {
        Ok(stored) => stored,
        Err(Fault::Stored(err)) => return Err(fail(err, Stage::Credentials, stored)),
        Err(Fault::Unstored(err)) => return Err(fail(err, Stage::Credentials, None)),
    };
    let tested = match plan.test {
        Test::None => false,
        Test::IfChanged if written.is_none() => false,
        Test::Due(_) | Test::IfChanged => {
            let credentials = &in_use.credentials;
            test(obs, plan, credentials, client.as_ref(), &context, ctx)
                .await
                .map_err(|err| fail(err, Stage::Test, stored.clone()))?;
            true
        }
    };
    Ok(Done {
        schedule: in_use.schedule,
        answered: in_use.answered,
        retry: in_use.retry,
        tested,
        version: written.or_else(|| obs.stored.as_ref().map(|s| s.version.clone())),
    })
}

/// The credentials step: keep, store what memory kept, or obtain through the method.
async fn credentials(
    obs: &Observed<'_>,
    step: &Step,
    secrets: &ConnectorSecrets,
    ctx: &Context,
    now: Timestamp,
    dice: Dice<'_>,
) -> Result<InUse, Error> {
    match step {
        Step::Keep {
            why,
            held,
            next_refresh_at,
            retry_at,
        } => {
            tracing::debug!(why = why.word(), "keeping the stored credentials");
            Ok(kept_in_use(held, *next_refresh_at, *retry_at, obs))
        }
        Step::StoreKept => {
            let kept = obs.kept.clone().unwrap_or_default();
            Ok(InUse {
                credentials: kept.credentials,
                schedule: Schedule {
                    expires_at: kept.expires_at,
                    next_refresh_at: kept.next_refresh_at,
                    refreshed_at: kept.refreshed_at,
                },
                answered: kept.refresh_requested_at,
                retry: Retry::None,
                issued: true,
                unusable: None,
                // Kept since an earlier attempt: not the window of one answer.
                answered_at: None,
            })
        }
        Step::Obtain { why, .. } => {
            tracing::debug!(why = why.word(), "obtaining credentials");
            let inputs = obs.inputs(secrets);
            let reread = Reread {
                conn: obs.conn,
                store: obs.store,
            };
            let result = obs.method.obtain(&inputs, ctx.tools(), &reread, now).await;
            let answered_at = std::time::Instant::now();
            match plan::settle(step, result, now, dice) {
                Settled::New {
                    fresh,
                    next_refresh_at,
                    refreshed_at,
                    answered,
                } => Ok(InUse {
                    credentials: fresh.credentials,
                    schedule: Schedule {
                        expires_at: fresh.expires_at,
                        next_refresh_at,
                        refreshed_at,
                    },
                    answered: answered.or_else(|| answered_before(obs.conn)),
                    retry: Retry::None,
                    issued: fresh.issued,
                    unusable: fresh.unusable,
                    answered_at: fresh.issued.then_some(answered_at),
                }),
                Settled::Retry {
                    held,
                    next_refresh_at,
                    retry_in,
                } => {
                    let mut in_use = kept_in_use(&held, next_refresh_at, None, obs);
                    in_use.retry = Retry::After(retry_in);
                    Ok(in_use)
                }
                Settled::Failed(err) => Err(err),
            }
        }
    }
}

fn kept_in_use(
    held: &Held,
    next_refresh_at: Option<Timestamp>,
    retry_at: Option<Timestamp>,
    obs: &Observed<'_>,
) -> InUse {
    InUse {
        credentials: held.keep.clone(),
        schedule: Schedule {
            expires_at: held.expires_at,
            next_refresh_at: next_refresh_at.filter(|_| held.usable),
            refreshed_at: None,
        },
        answered: answered_before(obs.conn),
        retry: retry_at.map_or(Retry::None, Retry::Pending),
        issued: false,
        unusable: None,
        answered_at: None,
    }
}

fn answered_before(conn: &Connection) -> Option<String> {
    conn.status
        .as_ref()
        .and_then(|s| s.refresh_requested_at.clone())
}

/// Why storing failed: before the write (nothing stored), or the write itself.
enum Fault {
    /// New tokens reached the store, but what the connector makes of them failed.
    Stored(Error),
    /// Nothing new reached the store.
    Unstored(Error),
}

/// Renders the API client over the credentials and stores both, unless the store already
/// holds them; returns the version it wrote, if it wrote, and the client. New tokens reach the store even
/// when rendering fails, and stay in memory when the write fails: the provider may already
/// have invalidated the refresh token they replace.
async fn store_credentials(
    obs: &Observed<'_>,
    in_use: &mut InUse,
    context: &serde_json::Value,
    ctx: &Context,
) -> Result<(Option<String>, Option<(RenderedApiClient, AllowedHosts)>), Fault> {
    let label = &obs.resolved.connector_label;
    let rendered = match (in_use.unusable.take(), &obs.resolved.connector.api_client) {
        (Some(err), _) => Err(err),
        (None, Some(client)) => api_client::render(label, client, context, ctx.tools()).map(
            |(mut rendered, allowed)| {
                rendered.signing = obs.method.signing(&obs.resolved.auth);
                Some((rendered, allowed))
            },
        ),
        (None, None) => Ok(None),
    };
    let want = match rendered {
        Ok(ref client) => Want::new(&in_use.credentials, client.as_ref().map(|(c, _)| c)),
        // The tokens go in beside the API client stored before, the last good one.
        Err(_) if in_use.issued => {
            Want::new(&in_use.credentials, None).keeping_api_client(obs.stored.as_ref())
        }
        Err(err) => return Err(Fault::Unstored(err)),
    };
    let in_use = &*in_use;
    let current = obs.stored.as_ref();
    let needed = in_use.issued || current.is_none_or(|have| !store::up_to_date(have, &want));
    let mut written = None;
    if needed {
        let over = in_use
            .issued
            .then(|| current.map_or("", |s| s.version.as_str()));
        let write = obs.store.write(obs.conn, &want, Writer::Controller, over);
        let version = match write.await {
            Ok(version) => version,
            Err(err) => return Err(unstored(obs, in_use, err, ctx).await),
        };
        written = Some(version);
        if let Some(answered_at) = in_use.answered_at {
            ctx.metrics.tokens_unsaved_for(answered_at.elapsed());
        }
    }
    if obs.kept.is_some() {
        ctx.unsaved.stored(obs.conn);
    }
    match rendered {
        Ok(client) => Ok((written, client)),
        Err(err) => Err(Fault::Stored(err)),
    }
}

/// A refused write: new tokens wait in memory for the next attempt, and an Event says that a
/// restart before then loses them.
async fn unstored(obs: &Observed<'_>, in_use: &InUse, err: Error, ctx: &Context) -> Fault {
    let err = not_stored(err);
    if in_use.issued {
        ctx.unsaved.keep(obs.conn, kept(in_use));
        let note = format!(
            "new tokens could not be stored ({}); they are kept in memory and stored by the next attempt, and a restart of the operator before then loses them",
            err.reason()
        );
        event(obs.conn, ctx, true, "TokensKeptInMemory", note).await;
    }
    Fault::Unstored(err)
}

/// A refused store write as the error status shows: the API server's own words (which name
/// the field it refused; the caller scrubs the credential values), as a transient error.
fn not_stored(err: Error) -> Error {
    match err {
        Error::Kube(kube::Error::Api(status)) => Error::CredentialsNotStored(format!(
            "the API server refused to store the credentials ({} {}): {}",
            status.code, status.reason, status.message
        )),
        Error::Kube(other) => {
            Error::CredentialsNotStored(format!("the credentials could not be stored: {other}"))
        }
        other => other,
    }
}

fn kept(in_use: &InUse) -> Kept {
    Kept {
        credentials: in_use.credentials.clone(),
        expires_at: in_use.schedule.expires_at,
        next_refresh_at: in_use.schedule.next_refresh_at,
        refreshed_at: in_use.schedule.refreshed_at,
        refresh_requested_at: in_use.answered.clone(),
    }
}

/// The connector's test request through the API client.
async fn test(
    obs: &Observed<'_>,
    plan: &Connect,
    credentials: &Credentials,
    client: Option<&(RenderedApiClient, AllowedHosts)>,
    context: &serde_json::Value,
    ctx: &Context,
) -> Result<(), Error> {
    let Some(spec) = &obs.resolved.connector.test else {
        return Ok(());
    };
    let Some((client, allowed)) = client else {
        return Err(Error::InvalidConnector(format!(
            "{} defines a test but no apiClient to send it with",
            obs.resolved.connector_label
        )));
    };
    let mut inputs = obs.inputs(&plan.secrets);
    inputs.stored = credentials;
    let signer = obs.method.signer(&inputs)?;
    let via = request::Via {
        client,
        allowed,
        signer: signer.as_deref(),
    };
    request::send(Purpose::Test, &spec.request, via, context, ctx.tools()).await
}

/// Writes `next` if it differs from the Connection's status, and records an event when the
/// Ready condition or its reason changed, naming `related`, the object at fault. Returns
/// whether it wrote.
pub async fn write_status(
    conn: &Connection,
    next: ConnectionStatus,
    related: Option<ObjectReference>,
    ctx: &Context,
) -> Result<bool, Error> {
    let current = conn.status.clone().unwrap_or_default();
    if current == next {
        return Ok(false);
    }
    let namespace = conn.metadata.namespace.as_deref().unwrap_or_default();
    let api: Api<Connection> = Api::namespaced(ctx.client.clone(), namespace);
    ctx.apply_status(api, conn, &next).await?;
    if let Some(event) = status::transition(&current, &next, related) {
        publish(conn, ctx, event).await;
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
    publish(conn, ctx, event).await;
}

async fn publish(conn: &Connection, ctx: &Context, event: Event) {
    if let Err(err) = ctx.recorder().publish(&event, &conn.object_ref(&())).await {
        // An event is a courtesy; failing to record one must not fail the reconcile.
        tracing::warn!(error = %err, "could not record an event");
    }
}

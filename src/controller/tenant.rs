//! The Tenant controller: checks a tenant's fields (inline merged with `fieldsFrom`) against
//! the operator's tenant-fields schema, counts its Connections, and reports both in the
//! Tenant's status. While one of its Connections has credentials to revoke, a finalizer
//! makes deleting the Tenant first delete its Connections and wait for their revocations.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::Value;

use super::conditions::{self, Desired, READY, RECONCILING, STALLED};
use super::connection::dereference::merge_from_secrets;
use super::{Context, connection, finalizers, own_writes};
use crate::api::{Connection, ConnectionCounts, ConnectionState, Tenant, TenantStatus};
use crate::error::Error;
use crate::schemas;

/// The finalizer that holds a deleted Tenant until its Connections are gone; carried only
/// while one of them holds its own revocation finalizer.
pub const FINALIZER: &str = "plugboard.dev/connections";
/// The Ready reason while a deleted Tenant waits for its Connections.
const DELETING: &str = "Deleting";
/// When to look again at a Tenant whose reconcile could not finish; Connection changes
/// usually wake it sooner.
const RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// What the fields check found.
async fn check(tenant: &Tenant, ctx: &Context) -> Result<(), Error> {
    let secrets: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &tenant.namespace().unwrap_or_default());
    let inline = tenant
        .spec
        .fields
        .as_ref()
        .map(|f| f.0.clone())
        .unwrap_or_default();
    let fields = merge_from_secrets(
        &secrets,
        inline,
        &tenant.spec.fields_from,
        "spec.fieldsFrom",
    )
    .await?;
    let Some(schema) = &ctx.config.tenant_fields_schema else {
        return Ok(());
    };
    let validator = schemas::compile(schema).map_err(|err| {
        Error::InvalidFields(format!(
            "the operator's tenant-fields schema does not compile: {err}"
        ))
    })?;
    let found = schemas::violations(&validator, &Value::Object(fields));
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidFields(format!(
        "fields (spec.fields with spec.fieldsFrom) do not match the operator's tenant-fields schema: {}",
        schemas::describe(&found)
    )))
}

fn desired(outcome: &Result<(), Error>) -> Vec<Desired> {
    match outcome {
        Ok(()) => vec![
            Desired::new(READY, true, "Valid", "the tenant's fields are valid"),
            Desired::new(RECONCILING, false, "Valid", ""),
            Desired::new(STALLED, false, "Valid", ""),
        ],
        Err(err) => {
            let (reason, message, stalled) = (err.reason(), err.to_string(), err.is_stalled());
            vec![
                Desired::new(READY, false, reason, message.clone()),
                Desired::new(
                    RECONCILING,
                    !stalled,
                    reason,
                    if stalled { "" } else { message.as_str() },
                ),
                Desired::new(
                    STALLED,
                    stalled,
                    reason,
                    if stalled { message.as_str() } else { "" },
                ),
            ]
        }
    }
}

/// Counts the tenant's Connections from the Connection controller's cache.
fn count(tenant: &Tenant, ctx: &Context) -> ConnectionCounts {
    let mut counts = ConnectionCounts::default();
    for conn in own_connections(tenant, ctx) {
        let status = conn.status.as_ref();
        counts.total += 1;
        if status.and_then(|s| conditions::is_true(&s.conditions, READY)) == Some(true) {
            counts.ready += 1;
        }
        if status.and_then(|s| s.state) == Some(ConnectionState::AuthorizationRequired) {
            counts.authorization_required += 1;
        }
    }
    counts
}

fn own_connections(tenant: &Tenant, ctx: &Context) -> Vec<Arc<Connection>> {
    let (ns, name) = (tenant.namespace(), tenant.name_any());
    ctx.connections
        .state()
        .into_iter()
        .filter(|c| c.namespace() == ns && c.spec.tenant_ref.name == name)
        .collect()
}

pub async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.caches_ready().await {
        return Ok(Action::requeue(RETRY));
    }
    // Every change of one of its Connections recounts the Tenant, often before the cache
    // shows the status (or finalizer) the last count wrote; counting again from there
    // would write the same status twice, or be refused changing the finalizer twice.
    if ctx.own_writes.behind(tenant.as_ref()) {
        return Ok(Action::requeue(own_writes::CATCH_UP));
    }
    let api: Api<Tenant> =
        Api::namespaced(ctx.client.clone(), &tenant.namespace().unwrap_or_default());
    let own = own_connections(&tenant, &ctx);
    if tenant.meta().deletion_timestamp.is_some() {
        if finalizers::holds(tenant.as_ref(), FINALIZER) {
            if !own.is_empty() {
                return cascade(&tenant, &own, &ctx).await;
            }
            finalizers::set(&api, tenant.as_ref(), FINALIZER, false, &ctx.own_writes).await?;
        }
        ctx.own_writes.forget(&own_writes::key::<Tenant>(
            &tenant.namespace().unwrap_or_default(),
            &tenant.name_any(),
        ));
        return Ok(Action::await_change());
    }
    let wanted = needs_finalizer(&own);
    finalizers::set(&api, tenant.as_ref(), FINALIZER, wanted, &ctx.own_writes).await?;
    apply(&tenant, &ctx).await
}

/// Whether a Tenant with these Connections must carry its finalizer: while one of them
/// holds its own (it has credentials to revoke), deleting the Tenant must wait, because the
/// revocation reads the Tenant. With none, the Tenant may go at once, with or without the
/// operator: nothing it would wait for needs it.
fn needs_finalizer(connections: &[Arc<Connection>]) -> bool {
    connections
        .iter()
        .any(|c| finalizers::holds(c.as_ref(), connection::FINALIZER))
}

/// The Tenant is being deleted while one of its Connections had credentials to revoke:
/// delete its Connections and keep the Tenant until they are gone, so that each can still
/// read the Tenant while it revokes. An error keeps the finalizer; the Connections'
/// deletions wake this again.
async fn cascade(
    tenant: &Tenant,
    left: &[Arc<Connection>],
    ctx: &Context,
) -> Result<Action, Error> {
    let namespace = tenant.namespace().unwrap_or_default();
    let api: Api<Connection> = Api::namespaced(ctx.client.clone(), &namespace);
    for conn in left
        .iter()
        .filter(|c| c.meta().deletion_timestamp.is_none())
    {
        match api.delete(&conn.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => return Err(Error::Kube(err)),
        }
    }
    let message = format!(
        "deleting: waiting for {} Connection(s) to revoke their credentials and go",
        left.len()
    );
    let desired = vec![
        Desired::new(READY, false, DELETING, message.clone()),
        Desired::new(RECONCILING, true, DELETING, message),
        Desired::new(STALLED, false, DELETING, ""),
    ];
    write_status(tenant, ctx, &desired, count(tenant, ctx)).await?;
    Err(Error::ConnectionsRemaining(left.len()))
}

async fn apply(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    let outcome = check(tenant, ctx).await;
    if let Err(Error::Kube(_)) = &outcome {
        return outcome.map(|()| Action::await_change());
    }
    ctx.metrics.reconciled(
        "Tenant",
        outcome.as_ref().err().map_or("success", Error::reason),
    );
    write_status(tenant, ctx, &desired(&outcome), count(tenant, ctx)).await?;
    Ok(Action::await_change())
}

/// Writes the status if it differs from the Tenant's.
async fn write_status(
    tenant: &Tenant,
    ctx: &Context,
    desired: &[Desired],
    counts: ConnectionCounts,
) -> Result<(), Error> {
    let current = tenant.status.clone().unwrap_or_default();
    let generation = tenant.meta().generation;
    let next = TenantStatus {
        observed_generation: generation,
        conditions: conditions::merge(
            &current.conditions,
            desired,
            generation,
            &Time(Timestamp::now()),
        ),
        connections: Some(counts),
    };
    if next != current {
        let api: Api<Tenant> =
            Api::namespaced(ctx.client.clone(), &tenant.namespace().unwrap_or_default());
        ctx.apply_status(api, tenant, &next).await?;
    }
    Ok(())
}

pub fn error_policy(_tenant: Arc<Tenant>, err: &Error, _ctx: Arc<Context>) -> Action {
    if matches!(err, Error::ConnectionsRemaining(_)) {
        // Not a fault: each Connection's deletion wakes the Tenant; this is the fallback.
        return Action::requeue(RETRY);
    }
    tracing::warn!(reason = err.reason(), error = %err, "tenant reconcile failed");
    Action::requeue(RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connection(finalizers: &[&str]) -> Arc<Connection> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection",
                "metadata": {"name": "c", "namespace": "acme", "finalizers": finalizers},
                "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "stripe"}},
            }))
            .expect("a valid Connection"),
        )
    }

    #[test]
    fn a_tenant_waits_only_for_connections_with_something_to_revoke() {
        assert!(!needs_finalizer(&[]), "no Connections");
        assert!(
            !needs_finalizer(&[connection(&[]), connection(&["example.com/theirs"])]),
            "Connections that go without the operator"
        );
        assert!(needs_finalizer(&[
            connection(&[]),
            connection(&[connection::FINALIZER])
        ]));
    }
}

//! The Tenant controller: checks a tenant's fields (inline merged with `fieldsFrom`) against
//! the operator's tenant-fields schema and reports it in the Tenant's status.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::conditions::{self, Desired, READY, RECONCILING, STALLED};
use super::connection::dereference::merge_from_secrets;
use super::{Context, FIELD_MANAGER};
use crate::api::{Tenant, TenantStatus};
use crate::error::Error;
use crate::schemas;

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

pub async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let outcome = check(&tenant, &ctx).await;
    if let Err(Error::Kube(_)) = &outcome {
        return outcome.map(|()| Action::await_change());
    }
    ctx.metrics.reconciled(
        "Tenant",
        outcome.as_ref().err().map_or("success", Error::reason),
    );
    let current = tenant.status.clone().unwrap_or_default();
    let generation = tenant.meta().generation;
    let next = TenantStatus {
        observed_generation: generation,
        conditions: conditions::merge(
            &current.conditions,
            &desired(&outcome),
            generation,
            &Time(Timestamp::now()),
        ),
        ..current.clone()
    };
    if next != current {
        let api: Api<Tenant> =
            Api::namespaced(ctx.client.clone(), &tenant.namespace().unwrap_or_default());
        let patch =
            json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Tenant", "status": next});
        api.patch_status(
            &tenant.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(patch),
        )
        .await?;
    }
    Ok(Action::await_change())
}

pub fn error_policy(_tenant: Arc<Tenant>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(reason = err.reason(), error = %err, "tenant reconcile failed");
    Action::requeue(std::time::Duration::from_secs(5))
}

//! The Connector and ClusterConnector controller: checks that a connector is usable (its
//! schemas compile, its templates parse, its host patterns are valid) so that a mistake shows
//! on the connector itself, once, rather than only on each Connection that trips over it.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::Context;
use super::conditions::{self, Desired, READY, RECONCILING, STALLED};
use crate::api::{ClusterConnector, Connector, ConnectorSpec, ConnectorStatus};
use crate::connector_check;
use crate::error::Error;
use crate::templates::Templates;

/// Every problem with a connector's spec, each as `field: what is wrong`.
pub fn problems(spec: &ConnectorSpec, templates: &Templates) -> Vec<String> {
    connector_check::problems(spec, templates)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn desired(problems: &[String]) -> Vec<Desired> {
    if problems.is_empty() {
        return vec![
            Desired::new(
                READY,
                true,
                "Valid",
                "the connector's schemas and templates are valid",
            ),
            Desired::new(RECONCILING, false, "Valid", ""),
            Desired::new(STALLED, false, "Valid", ""),
        ];
    }
    let message = problems.join("; ");
    vec![
        Desired::new(READY, false, "InvalidConnector", message.clone()),
        Desired::new(RECONCILING, false, "InvalidConnector", ""),
        Desired::new(STALLED, true, "InvalidConnector", message),
    ]
}

/// The next status of a connector of either kind, or `None` when it would not change.
fn next_status<K: Resource>(
    object: &K,
    spec: &ConnectorSpec,
    current: Option<&ConnectorStatus>,
    ctx: &Context,
) -> Option<ConnectorStatus> {
    let current = current.cloned().unwrap_or_default();
    let generation = object.meta().generation;
    let now = Time(Timestamp::now());
    let next = ConnectorStatus {
        observed_generation: generation,
        conditions: conditions::merge(
            &current.conditions,
            &desired(&problems(spec, &ctx.templates)),
            generation,
            &now,
        ),
        ..current.clone()
    };
    (next != current).then_some(next)
}

pub async fn reconcile_namespaced(
    connector: Arc<Connector>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    ctx.metrics.reconciled("Connector", "success");
    if let Some(status) = next_status(
        connector.as_ref(),
        &connector.spec,
        connector.status.as_ref(),
        &ctx,
    ) {
        let api: Api<Connector> = Api::namespaced(
            ctx.client.clone(),
            &connector.namespace().unwrap_or_default(),
        );
        ctx.apply_status(api, connector.as_ref(), &status).await?;
    }
    Ok(Action::await_change())
}

pub async fn reconcile_cluster(
    connector: Arc<ClusterConnector>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    ctx.metrics.reconciled("ClusterConnector", "success");
    if let Some(status) = next_status(
        connector.as_ref(),
        &connector.spec.0,
        connector.status.as_ref(),
        &ctx,
    ) {
        let api: Api<ClusterConnector> = Api::all(ctx.client.clone());
        ctx.apply_status(api, connector.as_ref(), &status).await?;
    }
    Ok(Action::await_change())
}

pub fn error_policy<K>(_object: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(reason = err.reason(), error = %err, "connector reconcile failed");
    Action::requeue(std::time::Duration::from_secs(5))
}

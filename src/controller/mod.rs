//! The controllers: one per kind, each a kube-runtime `Controller`.
//!
//! The Connection pipeline (dereference → validate → credentials → store → test → status)
//! lives in the submodules as it is built; until then every controller observes and logs.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::{ClusterConnector, Connection, Connector, Tenant};

/// What every reconcile can reach.
pub struct Context {
    pub client: Client,
}

/// Runs the four controllers until `shutdown` resolves.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let ctx = Arc::new(Context {
        client: client.clone(),
    });
    let scoped = |client: Client| -> (Api<Connection>, Api<Connector>, Api<Tenant>) {
        match &namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client, ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client),
            ),
        }
    };
    let (connections, connectors, tenants) = scoped(client.clone());
    let cluster_connectors: Api<ClusterConnector> = Api::all(client);
    tokio::join!(
        observe(connections, ctx.clone(), shutdown.clone()),
        observe(connectors, ctx.clone(), shutdown.clone()),
        observe(tenants, ctx.clone(), shutdown.clone()),
        observe(cluster_connectors, ctx, shutdown),
    );
}

/// A controller whose reconcile only logs what it saw.
async fn observe<K>(
    api: Api<K>,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync,
    K: 'static,
{
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(log_only::<K>, on_error::<K>, ctx)
        .for_each(|_| async {})
        .await;
}

async fn log_only<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    _ctx: Arc<Context>,
) -> Result<Action, std::convert::Infallible> {
    tracing::info!(
        kind = %K::kind(&()),
        namespace = object.namespace().as_deref().unwrap_or(""),
        name = %object.name_any(),
        generation = object.meta().generation,
        "observed"
    );
    Ok(Action::await_change())
}

fn on_error<K>(_object: Arc<K>, _error: &std::convert::Infallible, _ctx: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(60))
}

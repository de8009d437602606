//! Leader election: with several replicas, exactly one runs the controllers (one writer per
//! Secret, as rotation safety needs); every replica serves the HTTP endpoints.
//!
//! The lease is a coordination.k8s.io Lease held through kube-lease-manager. When this
//! replica gains it, the controllers start with fresh watches; when it loses it, they stop
//! before another replica can have waited out the lease.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;

use crate::controller::{self, Context, Settings, Watches};

/// How leadership is held.
#[derive(Debug, Clone)]
pub struct Election {
    /// Name of the Lease.
    pub lease: String,
    /// Namespace of the Lease: the operator's own.
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a lease lasts without renewal: how long a dead leader blocks a successor.
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub grace: Duration,
}

/// Why leadership could not be sought.
#[derive(Debug, thiserror::Error)]
#[error("leader election on Lease {namespace}/{lease}: {reason}")]
pub struct ElectionError {
    lease: String,
    namespace: String,
    reason: String,
}

/// Runs the controllers whenever this replica leads, until `shutdown` resolves. `first` is
/// the context the HTTP endpoints share; its watches serve the first term.
pub async fn run(
    client: Client,
    settings: Settings,
    election: Election,
    first: (Arc<Context>, Watches),
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) -> Result<(), ElectionError> {
    let failed = |reason: String| ElectionError {
        lease: election.lease.clone(),
        namespace: election.namespace.clone(),
        reason,
    };
    let manager = LeaseManagerBuilder::new(client.clone(), &election.lease)
        .with_namespace(&election.namespace)
        .with_identity(&election.identity)
        .with_duration(election.duration.as_secs().max(2))
        .with_grace(
            election
                .grace
                .as_secs()
                .clamp(1, election.duration.as_secs().max(2) - 1),
        )
        .build()
        .await
        .map_err(|err| failed(err.to_string()))?;
    let (mut leading, task) = manager.watch().await;
    let mut first = Some(first);
    let mut stopping = shutdown.clone().boxed().shared();
    loop {
        // Wait to lead, or to stop.
        while !*leading.borrow_and_update() {
            tokio::select! {
                changed = leading.changed() => if changed.is_err() { return Err(failed("the lease task stopped".into())) },
                () = &mut stopping => { drop(leading); let _ = task.await; return Ok(()); }
            }
        }
        tracing::info!(identity = %election.identity, "leading: starting the controllers");
        let (ctx, watches) = first
            .take()
            .unwrap_or_else(|| controller::prepare(client.clone(), settings.clone()));
        let mut lost = leading.clone();
        let term_over = {
            let stopping = stopping.clone();
            async move {
                tokio::select! {
                    _ = async { while lost.changed().await.is_ok() && *lost.borrow() {} } => {},
                    () = stopping => {},
                }
            }
        };
        controller::run_prepared(ctx, watches, term_over).await;
        if stopping.peek().is_some() {
            drop(leading);
            let _ = task.await;
            return Ok(());
        }
        tracing::warn!(identity = %election.identity, "lost the lease: controllers stopped");
    }
}

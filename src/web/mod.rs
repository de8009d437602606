//! The operator's HTTP server: health probes and the connect flow.

pub mod backend_connect;
pub mod connect;
pub mod connect_api;
pub mod connect_form;
pub mod connect_page;
pub mod connect_result;
pub mod connect_sessions;
pub mod connect_views;
pub mod consent;
pub mod consent_oauth1;
pub mod consent_shared;
pub mod page;
pub mod provision;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

/// Whether the operator is ready to serve: set once it has reached the API server and its
/// controllers are running.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The router with every endpoint of the operator.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, &'static str) {
    if readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

/// `/metrics`, from the controllers' shared metrics.
pub fn metrics_router(metrics: Arc<crate::metrics::Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(
                |State(metrics): State<Arc<crate::metrics::Metrics>>| async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                },
            ),
        )
        .with_state(metrics)
}

/// Binds the listener first, so that an address in use is reported at start, then serves
/// until `shutdown` resolves.
pub async fn serve(
    listen: SocketAddr,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<impl Future<Output = std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    Ok(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    })
}

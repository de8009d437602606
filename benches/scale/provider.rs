//! The provider the scale benchmark connects to: one small HTTP server per connector (each on
//! its own port, so each is its own host to the operator's per-host limit), answering after a
//! fixed latency. It serves a test endpoint (`GET /v1/account`, which wants a bearer token)
//! and an OAuth2 client-credentials token endpoint (`POST /oauth/token`), and counts how many
//! requests it serves at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::json;

/// Requests in flight now, and the most seen at once.
#[derive(Debug, Default)]
pub struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// What one host saw.
#[derive(Debug, Default)]
pub struct HostStats {
    pub all: Gauge,
    pub token: Gauge,
    pub token_requests: AtomicU64,
}

#[derive(Clone)]
struct Host {
    latency: Duration,
    /// `expires_in` of the tokens issued now, in seconds; the benchmark shortens it for the
    /// refresh phase.
    lifetime: Arc<AtomicU64>,
    stats: Arc<HostStats>,
    total: Arc<Gauge>,
}

/// All hosts of the provider.
pub struct Provider {
    /// Base URL of each host, one per connector.
    pub bases: Vec<String>,
    pub hosts: Vec<Arc<HostStats>>,
    /// Requests in flight across all hosts.
    pub total: Arc<Gauge>,
    lifetime: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Provider {
    /// Starts `hosts` servers answering after `latency`, issuing tokens valid `lifetime`.
    pub async fn start(hosts: usize, latency: Duration, lifetime: Duration) -> Self {
        let lifetime = Arc::new(AtomicU64::new(lifetime.as_secs()));
        let total = Arc::new(Gauge::default());
        let mut provider = Provider {
            bases: Vec::new(),
            hosts: Vec::new(),
            total: total.clone(),
            lifetime: lifetime.clone(),
            tasks: Vec::new(),
        };
        for _ in 0..hosts {
            let stats = Arc::new(HostStats::default());
            let host = Host {
                latency,
                lifetime: lifetime.clone(),
                stats: stats.clone(),
                total: total.clone(),
            };
            let router = Router::new()
                .route("/oauth/token", post(token))
                .route("/v1/account", get(account))
                .with_state(host);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binds 127.0.0.1");
            provider
                .bases
                .push(format!("http://{}", listener.local_addr().unwrap()));
            provider.hosts.push(stats);
            provider.tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
            }));
        }
        provider
    }

    /// Tokens issued from now on are valid this long.
    pub fn set_lifetime(&self, lifetime: Duration) {
        self.lifetime.store(lifetime.as_secs(), Ordering::SeqCst);
    }

    /// The most requests one token endpoint served at once.
    pub fn token_peak(&self) -> usize {
        self.hosts.iter().map(|h| h.token.peak()).max().unwrap_or(0)
    }

    /// The most requests one host served at once.
    pub fn host_peak(&self) -> usize {
        self.hosts.iter().map(|h| h.all.peak()).max().unwrap_or(0)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Counts a request for as long as the provider works on it, however it ends.
struct InFlight<'a>(Vec<&'a Gauge>);

impl<'a> InFlight<'a> {
    fn enter(gauges: Vec<&'a Gauge>) -> Self {
        gauges.iter().for_each(|g| g.enter());
        Self(gauges)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.iter().for_each(|g| g.leave());
    }
}

async fn token(State(host): State<Host>) -> (StatusCode, axum::Json<serde_json::Value>) {
    let _counted = InFlight::enter(vec![&host.total, &host.stats.all, &host.stats.token]);
    host.stats.token_requests.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(host.latency).await;
    let body = json!({
        "access_token": format!("at-{:032x}", rand::random::<u128>()),
        "token_type": "Bearer",
        "expires_in": host.lifetime.load(Ordering::SeqCst),
    });
    (StatusCode::OK, axum::Json(body))
}

async fn account(State(host): State<Host>, headers: HeaderMap) -> StatusCode {
    let _counted = InFlight::enter(vec![&host.total, &host.stats.all]);
    tokio::time::sleep(host.latency).await;
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > "Bearer ".len() && v.starts_with("Bearer "));
    if bearer {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

//! testkube: an in-process server that speaks the Kubernetes HTTP API on 127.0.0.1, faithful
//! enough for an unmodified `kube::Client`, kube-runtime's watcher, controller, finalizer
//! helper and event recorder.
//!
//! It serves the CRDs it is given plus Namespaces, Secrets, events.k8s.io Events,
//! coordination.k8s.io Leases and CRDs themselves. It keeps what the real server keeps (uid,
//! one global resourceVersion, generation, creationTimestamp, managedFields), enforces
//! optimistic concurrency, the status subresource, finalizers, owner-reference garbage
//! collection and schema validation, and counts requests so tests can assert "no writes".
//!
//! Knowingly different from a real server: CEL rules are not evaluated; lists are atomic for
//! server-side apply; there is no admission, RBAC or defaulting.
#![forbid(unsafe_code)]

mod fields;
mod http;
mod resource;
mod selectors;
mod status;
mod store;
mod validation;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::config::{Cluster, Context, Kubeconfig, NamedCluster, NamedContext};

use crate::http::Shared;
use crate::resource::ResourceType;
use crate::store::Store;

/// Watch history kept for resuming watches; older resourceVersions get 410 Gone.
pub const DEFAULT_HISTORY: usize = 10_000;

/// A snapshot of the requests served, by verb and resource.
#[derive(Debug, Clone, Default)]
pub struct RequestCounts(HashMap<(String, String), u64>);

impl RequestCounts {
    /// Requests of one verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`)
    /// on one resource (`secrets`, `connections`, `connections/status`, ...).
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        self.0
            .get(&(verb.to_owned(), resource.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// All writes: create, update, patch and delete, on every resource.
    pub fn writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|((verb, _), _)| {
                matches!(verb.as_str(), "create" | "update" | "patch" | "delete")
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// The writes since `earlier`, by (verb, resource), for a failure message.
    pub fn writes_since(&self, earlier: &RequestCounts) -> Vec<(String, String, u64)> {
        let mut out: Vec<_> = self
            .0
            .iter()
            .filter(|((verb, _), _)| {
                matches!(verb.as_str(), "create" | "update" | "patch" | "delete")
            })
            .filter_map(|((verb, res), n)| {
                let before = earlier
                    .0
                    .get(&(verb.clone(), res.clone()))
                    .copied()
                    .unwrap_or(0);
                (*n > before).then(|| (verb.clone(), res.clone(), n - before))
            })
            .collect();
        out.sort();
        out
    }
}

/// A running server; stops when dropped.
pub struct TestApiServer {
    url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl TestApiServer {
    /// Starts a server for these CRDs on an ephemeral port.
    pub async fn start(crds: Vec<CustomResourceDefinition>) -> Self {
        Self::start_with_history(crds, DEFAULT_HISTORY).await
    }

    /// Starts a server that keeps `history` watch events (a small number provokes 410).
    pub async fn start_with_history(crds: Vec<CustomResourceDefinition>, history: usize) -> Self {
        let mut types = resource::builtins();
        types.extend(crds.iter().flat_map(ResourceType::from_crd));
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(history)),
            types,
            counts: Mutex::default(),
        });
        let router = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("has an address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { url, shared, task }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig whose current context is this server.
    pub fn kubeconfig(&self) -> Kubeconfig {
        Kubeconfig {
            clusters: vec![NamedCluster {
                name: "testkube".into(),
                cluster: Some(Cluster {
                    server: Some(self.url.clone()),
                    ..Cluster::default()
                }),
                other: Default::default(),
            }],
            contexts: vec![NamedContext {
                name: "testkube".into(),
                context: Some(Context {
                    cluster: "testkube".into(),
                    user: None,
                    ..Context::default()
                }),
                other: Default::default(),
            }],
            current_context: Some("testkube".into()),
            ..Kubeconfig::default()
        }
    }

    /// Writes the kubeconfig as YAML.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        let yaml = serde_yaml::to_string(&self.kubeconfig()).map_err(std::io::Error::other)?;
        std::fs::write(path, yaml)
    }

    /// A client for this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().expect("the URL parses"));
        kube::Client::try_from(config).expect("a client for a plain HTTP URL builds")
    }

    pub fn requests(&self) -> RequestCounts {
        RequestCounts(self.shared.counts.lock().unwrap().clone())
    }

    pub fn reset_requests(&self) {
        self.shared.counts.lock().unwrap().clear();
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

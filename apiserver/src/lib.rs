//! plugboard-apiserver: an embedded server that speaks the Kubernetes HTTP API, faithful
//! enough for an unmodified `kube::Client`, `kubectl`, and kube-runtime's watcher,
//! controller, finalizer helper and event recorder. `plugboard dev` runs the operator against
//! it on a laptop, the whole-loop tests run against it, and [`dry_run::create`] lets
//! `plugboard validate` check manifests with the same rules, without a server.
//!
//! It keeps its objects in memory, or with [`Builder::data`] in one crash-safe file, so a
//! server started again on that file serves what the last one held. It listens on loopback
//! and has no authentication: it is for one person's machine and for tests, not a cluster.
//!
//! It serves the CRDs it is given (and any CRD written to it later), Namespaces, Secrets,
//! events.k8s.io Events, coordination.k8s.io Leases and CustomResourceDefinitions, and keeps
//! what the real server keeps: `uid`, one global `resourceVersion`, `generation`,
//! `creationTimestamp`, `managedFields`. It enforces optimistic concurrency, the status
//! subresource, finalizers, schema validation (structural schema, formats and bounds, CEL
//! rules via kube-cel, ratcheting on update) with pruning and defaulting, ObjectMeta and the
//! built-in kinds' validation, and runs the garbage collector, namespace and CRD
//! controllers in the background. Errors are `metav1.Status` bodies worded like the real
//! server's.
//!
//! Knowingly different from a real server:
//! - no authentication, RBAC, admission webhooks, ValidatingAdmissionPolicy or quotas;
//! - bodies are JSON or YAML only: a protobuf body (kubectl's typed commands such as
//!   `kubectl create namespace` send one) is answered 415; `kubectl apply -f` and
//!   `kubectl create -f` send JSON and work;
//! - no `/openapi/v2` or `/v3`, so kubectl's client-side validation needs
//!   `--validate=false` (the server still validates: schema, CEL, strict fields);
//! - a CEL rule kube-cel cannot evaluate is skipped (with a warning in the log), where a
//!   cluster would evaluate it; other rules are enforced as a cluster would;
//! - one stored copy serves every version of a CRD (`conversion: None`);
//! - a continued list shows objects as they are now, not as they were at the first page's
//!   revision, and a continue token never expires;
//! - idle watches get a bookmark every second by default (a cluster: about every minute);
//!   a watcher that falls thousands of events behind is disconnected, as a cluster would
//!   also do, but at a different threshold;
//! - `managedFields` sent by a client are ignored rather than taken as the new ownership;
//!   update managers are never merged into an `ancient-changes` entry;
//! - Events are never expired after their TTL; `resourceVersionMatch=Exact` lists serve the
//!   current state.
#![forbid(unsafe_code)]

mod controllers;
mod delete;
mod disk;
pub mod dry_run;
mod fieldpath;
mod http;
mod ownership;
mod patch;
mod resource;
mod selectors;
mod status;
mod store;
mod strategy;
mod validation;
mod write;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::config::{Cluster, Context, Kubeconfig, NamedCluster, NamedContext};
use serde_json::{Value, json};

use crate::http::Shared;
use crate::resource::{Registry, builtins};
use crate::store::Store;
use crate::write::{FieldValidation, Write};

/// Watch events kept for resuming watches; a watch from an older resourceVersion gets 410.
pub const DEFAULT_HISTORY: usize = 10_000;

/// Namespaces a cluster starts with.
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// A snapshot of the requests served, by verb and resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts(HashMap<(String, String), u64>);

impl RequestCounts {
    /// Requests of one verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`) on one resource (`secrets`, `connections`, `connections/status`).
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        self.0
            .get(&(verb.to_owned(), resource.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// All writes: create, update, patch, delete and deletecollection, on every resource.
    pub fn writes(&self) -> u64 {
        self.0
            .iter()
            .filter(|((verb, _), _)| WRITES.contains(&verb.as_str()))
            .map(|(_, n)| n)
            .sum()
    }

    /// The writes since `earlier`, as (verb, resource, how many), for a failure message.
    pub fn writes_since(&self, earlier: &RequestCounts) -> Vec<(String, String, u64)> {
        let mut out: Vec<_> = self
            .0
            .iter()
            .filter(|((verb, _), _)| WRITES.contains(&verb.as_str()))
            .filter_map(|((verb, res), n)| {
                let before = earlier.count(verb, res);
                (*n > before).then(|| (verb.clone(), res.clone(), n - before))
            })
            .collect();
        out.sort();
        out
    }

    /// Every (verb, resource) counted, with its count, sorted.
    pub fn all(&self) -> Vec<(String, String, u64)> {
        let mut out: Vec<_> = self
            .0
            .iter()
            .map(|((v, r), n)| (v.clone(), r.clone(), *n))
            .collect();
        out.sort();
        out
    }
}

pub use disk::DiskError;

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the data file {0}")]
    Data(#[from] DiskError),
    #[error("cannot serve {what}: {message}")]
    Seed { what: String, message: String },
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Builder {
    crds: Vec<CustomResourceDefinition>,
    history: usize,
    bookmark_interval: Duration,
    listen: SocketAddr,
    data: Option<PathBuf>,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            crds: Vec::new(),
            history: DEFAULT_HISTORY,
            bookmark_interval: Duration::from_secs(1),
            // Loopback only: the server has no authentication at all.
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: None,
        }
    }
}

impl Builder {
    /// Serves these CRDs from the start (as if applied and established).
    pub fn crds(mut self, crds: impl IntoIterator<Item = CustomResourceDefinition>) -> Self {
        self.crds.extend(crds);
        self
    }

    /// Keeps this many watch events; a watch from a resourceVersion older than the oldest
    /// kept gets 410 Expired. A small number lets a test provoke it.
    pub fn watch_history(mut self, events: usize) -> Self {
        self.history = events;
        self
    }

    /// How long a watch that asked for bookmarks waits idle before it gets one.
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every;
        self
    }

    /// Listens here (default `127.0.0.1:0`, an ephemeral port). The server has no
    /// authentication: anything that reaches the address can read every Secret.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Keeps the objects in this file (created when missing) and starts from what it holds;
    /// in memory only when unset.
    pub fn data(mut self, file: impl Into<PathBuf>) -> Self {
        self.data = Some(file.into());
        self
    }

    /// Starts the server; panics when it cannot (for tests, where that is the clearest
    /// failure). Programs use [`Builder::try_start`].
    pub async fn start(self) -> ApiServer {
        match self.try_start().await {
            Ok(server) => server,
            Err(err) => panic!("the API server did not start: {err}"),
        }
    }

    /// Starts the server: its HTTP listener and its control-plane loops (garbage collector,
    /// namespace and CRD controllers), which run until the [`ApiServer`] is dropped.
    pub async fn try_start(self) -> Result<ApiServer, StartError> {
        let registry = Registry::new(builtins());
        let mut store = match &self.data {
            Some(file) => Store::on_disk(self.history, registry, disk::Disk::open(file)?)?,
            None => Store::new(self.history, registry),
        };
        controllers::sync_crds(&mut store);
        seed(&mut store, &self.crds)?;
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            counts: Mutex::default(),
            work: tokio::sync::Notify::new(),
            bookmark_interval: self.bookmark_interval,
        });
        let router = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let listen = |source| StartError::Listen {
            addr: self.listen,
            source,
        };
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(listen)?;
        let url = format!("http://{}", listener.local_addr().map_err(listen)?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let controllers = tokio::spawn(run_controllers(shared.clone()));
        Ok(ApiServer {
            url,
            shared,
            tasks: vec![server, controllers],
        })
    }
}

/// What a fresh cluster has: the system namespaces, and the CRDs it was given. On kept data
/// they may be there already: namespaces are left as they are, and a CRD is replaced by the
/// one given (a newer plugboard brings newer CRDs), as `kubectl apply` of it would.
fn seed(store: &mut Store, crds: &[CustomResourceDefinition]) -> Result<(), StartError> {
    let seeds = SYSTEM_NAMESPACES
        .iter()
        .map(|ns| {
            (
                "namespaces",
                "kube-apiserver",
                json!({"metadata": {"name": ns}}),
            )
        })
        .chain(crds.iter().map(|crd| {
            let object = serde_json::to_value(crd).expect("a CRD serializes");
            ("customresourcedefinitions", "plugboard-apiserver", object)
        }));
    for (plural, manager, object) in seeds {
        let registry = store.registry.clone();
        let rt = registry
            .all()
            .iter()
            .find(|t| t.plural == plural)
            .expect("a built-in")
            .clone();
        let mut w = Write {
            rt: &rt,
            namespace: String::new(),
            subresource: None,
            manager: manager.to_owned(),
            dry_run: false,
            field_validation: FieldValidation::Ignore,
            warnings: Vec::new(),
        };
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let kept = store.get(&w.key(&name)).map(|s| s.object.clone());
        let written = match kept {
            None => write::create(store, &mut w, object).map(drop),
            Some(_) if plural == "namespaces" => Ok(()),
            Some(kept) => {
                let mut object = object;
                object["metadata"]["resourceVersion"] = kept["metadata"]["resourceVersion"].clone();
                write::replace(store, &mut w, &name, object).map(drop)
            }
        };
        written.map_err(|e| StartError::Seed {
            what: format!("{plural} {name}"),
            message: e.message,
        })?;
        controllers::sync_crds(store);
    }
    Ok(())
}

/// How long the control-plane loops let writes gather before the next sweep. A sweep reads
/// every object under the store's lock; run after each of a burst of writes, it held that
/// lock most of the time and requests queued behind it (the scale benchmark's creates ran at
/// half the machine's speed). A real cluster's controllers work from queues and lag too.
const SWEEP_PACE: Duration = Duration::from_millis(20);

async fn run_controllers(shared: Arc<Shared>) {
    loop {
        shared.work.notified().await;
        while controllers::sweep(&mut shared.store.lock().unwrap()) {}
        tokio::time::sleep(SWEEP_PACE).await;
    }
}

/// A running server; it stops when dropped.
pub struct ApiServer {
    url: String,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ApiServer {
    /// Starts a server for these CRDs on an ephemeral port, with the default history.
    pub async fn start(crds: Vec<CustomResourceDefinition>) -> Self {
        Self::builder().crds(crds).start().await
    }

    /// Starts a server that keeps `history` watch events (a small number provokes 410).
    pub async fn start_with_history(crds: Vec<CustomResourceDefinition>, history: usize) -> Self {
        Self::builder()
            .crds(crds)
            .watch_history(history)
            .start()
            .await
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig whose current context is this server.
    pub fn kubeconfig(&self) -> Kubeconfig {
        Kubeconfig {
            clusters: vec![NamedCluster {
                name: "plugboard-apiserver".into(),
                cluster: Some(Cluster {
                    server: Some(self.url.clone()),
                    ..Cluster::default()
                }),
                other: Default::default(),
            }],
            contexts: vec![NamedContext {
                name: "plugboard-apiserver".into(),
                context: Some(Context {
                    cluster: "plugboard-apiserver".into(),
                    namespace: Some("default".into()),
                    ..Context::default()
                }),
                other: Default::default(),
            }],
            current_context: Some("plugboard-apiserver".into()),
            ..Kubeconfig::default()
        }
    }

    /// Writes the kubeconfig as YAML, for a child process or `PLUGBOARD_TEST_KUBECONFIG`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        let yaml = serde_yaml::to_string(&self.kubeconfig()).map_err(std::io::Error::other)?;
        std::fs::write(path, yaml)
    }

    /// A client for this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().expect("the URL parses"));
        kube::Client::try_from(config).expect("a client for a plain HTTP URL builds")
    }

    /// The requests served so far.
    pub fn requests(&self) -> RequestCounts {
        RequestCounts(self.shared.counts.lock().unwrap().clone())
    }

    pub fn reset_requests(&self) {
        self.shared.counts.lock().unwrap().clear();
    }

    /// The current resourceVersion (etcd's revision).
    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().unwrap().resource_version()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

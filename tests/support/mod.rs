//! The one way whole-loop tests get a cluster: the in-process test API server (plugboard-apiserver), or
//! a real cluster when `PLUGBOARD_TEST_KUBECONFIG` names a kubeconfig. Either way each test
//! works in a fresh namespace of its own, deleted by `cleanup`.
//!
//! On a real cluster the CRDs are installed with server-side apply (field manager
//! `plugboard-tests`) and awaited until Established; the request counter is unavailable, so
//! "no write" is checked through what a real cluster exposes (resource versions), and the
//! few assertions that need exact counts are skipped with a message, not the whole test.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use plugboard_apiserver::ApiServer;
pub use plugboard_apiserver::RequestCounts;
use serde_json::json;

/// Names a kubeconfig to run against a real cluster instead of the test server.
pub const KUBECONFIG_ENV: &str = "PLUGBOARD_TEST_KUBECONFIG";

/// The field manager the tests install CRDs with.
pub const FIELD_MANAGER: &str = "plugboard-tests";

/// What [`TestCluster::mark_writes`] saw.
pub struct WriteMark {
    counts: Option<RequestCounts>,
    versions: std::collections::BTreeMap<String, String>,
}

pub struct TestCluster {
    client: Client,
    namespace: String,
    server: Option<ApiServer>,
    /// The kubeconfig of a real cluster, for the namespace guard.
    kubeconfig: Option<std::path::PathBuf>,
    cleaned: bool,
}

impl Drop for TestCluster {
    /// A test that panicked before `cleanup` still deletes its namespace from a real cluster
    /// (the test server's goes with the server). On a thread of its own with a client of its
    /// own: Drop cannot await, and the test's runtime may be unwinding.
    fn drop(&mut self) {
        let (false, Some(path)) = (self.cleaned, self.kubeconfig.clone()) else {
            return;
        };
        let namespace = self.namespace.clone();
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let kubeconfig = Kubeconfig::read_from(&path).ok()?;
                let config =
                    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                        .await
                        .ok()?;
                let client = Client::try_from(config).ok()?;
                Api::<Namespace>::all(client)
                    .delete(&namespace, &DeleteParams::default())
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(deleted, Ok(Some(_))) {
            eprintln!("could not delete the test namespace {}", self.namespace);
        }
    }
}

fn fresh_namespace() -> String {
    format!("plugboard-test-{:08x}", rand::random::<u32>())
}

impl TestCluster {
    /// The test server, or the cluster `PLUGBOARD_TEST_KUBECONFIG` names.
    pub async fn start() -> Self {
        match std::env::var_os(KUBECONFIG_ENV) {
            Some(path) => Self::real(Path::new(&path)).await,
            None => Self::in_process().await,
        }
    }

    /// The in-process test server, serving plugboard's CRDs.
    pub async fn in_process() -> Self {
        let server = ApiServer::start(plugboard::crd::all()).await;
        Self::with_namespace(server.client(), Some(server)).await
    }

    /// A cluster reached through a kubeconfig, treated as a real one: CRDs applied and
    /// awaited, no request counter.
    pub async fn real(path: &Path) -> Self {
        let kubeconfig = Kubeconfig::read_from(path)
            .expect("PLUGBOARD_TEST_KUBECONFIG names a readable kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("the kubeconfig is usable");
        let client = Client::try_from(config).expect("a client builds");
        install_crds(&client).await;
        let mut cluster = Self::with_namespace(client, None).await;
        cluster.kubeconfig = Some(path.to_owned());
        cluster
    }

    async fn with_namespace(client: Client, server: Option<ApiServer>) -> Self {
        let namespace = fresh_namespace();
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("creates the test namespace");
        Self {
            client,
            namespace,
            server,
            kubeconfig: None,
            cleaned: false,
        }
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The fresh namespace this test works in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A kubeconfig file for this cluster, for an operator run as a child process: the test
    /// server's written into `dir`, or the one `PLUGBOARD_TEST_KUBECONFIG` names.
    pub fn kubeconfig(&self, dir: &Path) -> std::path::PathBuf {
        match (&self.server, std::env::var_os(KUBECONFIG_ENV)) {
            (Some(server), _) => {
                let path = dir.join("plugboard-apiserver.kubeconfig");
                server
                    .write_kubeconfig(&path)
                    .expect("writes the kubeconfig");
                path
            }
            (None, Some(path)) => path.into(),
            (None, None) => unreachable!("a cluster without a server came from the variable"),
        }
    }

    /// Whether this is the in-process test server (which has a request counter).
    pub fn is_test_server(&self) -> bool {
        self.server.is_some()
    }

    /// The test server's request counts; `None` on a real cluster, which has no counter.
    pub fn requests(&self) -> Option<RequestCounts> {
        self.server.as_ref().map(ApiServer::requests)
    }

    /// Waits until the API server has served more Secret GETs than `reads_before`: the sign
    /// that a Connection was reconciled again (each reconcile reads Secrets: its input, its
    /// credentials).
    /// On a real cluster, which has no counter, it gives the reconcile two seconds instead.
    pub async fn wait_until_secrets_read_again(&self, reads_before: Option<u64>) {
        // As long as the harness waits for anything to converge (`harness::CONVERGE`).
        const PATIENCE: Duration = Duration::from_secs(30);
        let Some(before) = reads_before else {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return;
        };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.requests().map_or(0, |r| r.count("get", "secrets")) <= before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the Connection was not reconciled again"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many `verb` requests on `resource` were served since `before`; `None` on a real
    /// cluster, which has no counter.
    pub fn count_since(
        &self,
        before: Option<&RequestCounts>,
        verb: &str,
        resource: &str,
    ) -> Option<u64> {
        let (before, now) = (before?, self.requests()?);
        Some(now.count(verb, resource) - before.count(verb, resource))
    }

    /// What shows a write, now: the test server's request counts, and on any cluster the
    /// `resourceVersion` of every object of plugboard's kinds and every Secret in the
    /// namespace (what a real cluster exposes: a write that changes an object moves it).
    pub async fn mark_writes(&self) -> WriteMark {
        WriteMark {
            counts: self.requests(),
            versions: self.versions().await,
        }
    }

    /// Asserts that nothing was written since `mark`: no object's `resourceVersion` moved
    /// and no object came or went, and on the test server no write request was served at
    /// all (a write that changes nothing counts there too).
    pub async fn assert_no_writes_since(&self, mark: &WriteMark, what: &str) {
        let now = self.versions().await;
        let moved: Vec<&String> = now
            .iter()
            .filter(|(key, version)| mark.versions.get(*key) != Some(version))
            .map(|(key, _)| key)
            .chain(mark.versions.keys().filter(|key| !now.contains_key(*key)))
            .collect();
        assert!(moved.is_empty(), "{what} wrote {moved:?}");
        if let (Some(before), Some(counts)) = (&mark.counts, self.requests()) {
            let writes = counts.writes_since(before);
            assert!(writes.is_empty(), "{what} made API writes: {writes:?}");
        }
    }

    /// `Kind/name` → resourceVersion of every object a reconcile could write in the namespace.
    async fn versions(&self) -> std::collections::BTreeMap<String, String> {
        use kube::ResourceExt;
        let ns = self.namespace.as_str();
        let mut versions = std::collections::BTreeMap::new();
        let mut record = |kind: &str, items: Vec<(String, Option<String>)>| {
            for (name, version) in items {
                versions.insert(format!("{kind}/{name}"), version.unwrap_or_default());
            }
        };
        macro_rules! listed {
            ($kind:ty) => {
                Api::<$kind>::namespaced(self.client.clone(), ns)
                    .list(&Default::default())
                    .await
                    .expect("lists the namespace")
                    .items
                    .iter()
                    .map(|o| (o.name_any(), o.resource_version()))
                    .collect::<Vec<_>>()
            };
        }
        record("Secret", listed!(k8s_openapi::api::core::v1::Secret));
        record("Connection", listed!(plugboard::api::Connection));
        record("Tenant", listed!(plugboard::api::Tenant));
        record("Connector", listed!(plugboard::api::Connector));
        versions
    }

    /// Deletes the test namespace, and so everything in it.
    pub async fn cleanup(mut self) {
        self.cleaned = true;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        if let Err(e) = namespaces
            .delete(&self.namespace, &DeleteParams::default())
            .await
        {
            eprintln!("could not delete test namespace {}: {e}", self.namespace);
        }
    }
}

/// Applies plugboard's CRDs and waits until each is Established.
async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in plugboard::crd::all() {
        let name = crd.metadata.name.clone().expect("CRDs are named");
        crds.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("installs CRD {name}: {e}"));
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} is established within a minute"))
        .expect("waiting for the CRD works");
    }
}

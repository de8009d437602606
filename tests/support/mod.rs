//! The one way whole-loop tests get a cluster: the in-process test API server (testkube), or
//! a real cluster when `PLUGBOARD_TEST_KUBECONFIG` names a kubeconfig. Either way each test
//! works in a fresh namespace of its own, deleted by `cleanup`.
//!
//! On a real cluster the CRDs are installed with server-side apply (field manager
//! `plugboard-tests`) and awaited until Established; the request counter is unavailable, so
//! the assertions that need it are skipped with a message, not the whole test.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;
pub use testkube::RequestCounts;
use testkube::TestApiServer;

/// Names a kubeconfig to run against a real cluster instead of the test server.
pub const KUBECONFIG_ENV: &str = "PLUGBOARD_TEST_KUBECONFIG";

/// The field manager the tests install CRDs with.
pub const FIELD_MANAGER: &str = "plugboard-tests";

pub struct TestCluster {
    client: Client,
    namespace: String,
    server: Option<TestApiServer>,
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
        let server = TestApiServer::start(plugboard::crd::all()).await;
        Self::with_namespace(server.client(), Some(server)).await
    }

    /// A cluster reached through a kubeconfig, treated as a real one: CRDs applied and
    /// awaited, no request counter.
    pub async fn real(kubeconfig: &Path) -> Self {
        let kubeconfig = Kubeconfig::read_from(kubeconfig)
            .expect("PLUGBOARD_TEST_KUBECONFIG names a readable kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("the kubeconfig is usable");
        let client = Client::try_from(config).expect("a client builds");
        install_crds(&client).await;
        Self::with_namespace(client, None).await
    }

    async fn with_namespace(client: Client, server: Option<TestApiServer>) -> Self {
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
                let path = dir.join("testkube.kubeconfig");
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
        self.server.as_ref().map(TestApiServer::requests)
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

    /// Asserts that no write happened since `before`; on a real cluster this one assertion
    /// is skipped, and says so.
    pub fn assert_no_writes_since(&self, before: Option<&RequestCounts>, what: &str) {
        match (before, self.requests()) {
            (Some(before), Some(now)) => {
                let writes = now.writes_since(before);
                assert!(writes.is_empty(), "{what} made API writes: {writes:?}");
            }
            _ => eprintln!("skipped on a real cluster: request counter unavailable ({what})"),
        }
    }

    /// Deletes the test namespace, and so everything in it.
    pub async fn cleanup(self) {
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

//! The one way whole-loop tests get a cluster: the in-process test API server, or a real
//! cluster when `PLUGBOARD_TEST_KUBECONFIG` names a kubeconfig. Either way each test works in
//! a fresh namespace of its own.
#![allow(dead_code)] // each test crate uses its own subset

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

pub struct TestCluster {
    client: Client,
    namespace: String,
    server: Option<TestApiServer>,
}

fn fresh_namespace() -> String {
    format!("plugboard-test-{:08x}", rand::random::<u32>())
}

impl TestCluster {
    pub async fn start() -> Self {
        let namespace = fresh_namespace();
        let (client, server) = match std::env::var("PLUGBOARD_TEST_KUBECONFIG") {
            Ok(path) => (real_cluster(&path).await, None),
            Err(_) => {
                let server = TestApiServer::start(plugboard::crd::all()).await;
                (server.client(), Some(server))
            }
        };
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
        namespaces
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

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The test server's request counts; `None` on a real cluster, which has no counter.
    pub fn requests(&self) -> Option<RequestCounts> {
        self.server.as_ref().map(TestApiServer::requests)
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

    /// Deletes the test namespace (and so everything in it).
    pub async fn cleanup(self) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces
            .delete(&self.namespace, &DeleteParams::default())
            .await;
    }
}

async fn real_cluster(path: &str) -> Client {
    let kubeconfig =
        Kubeconfig::read_from(path).expect("PLUGBOARD_TEST_KUBECONFIG is a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig is usable");
    let client = Client::try_from(config).expect("a client builds");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in plugboard::crd::all() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &name,
            &PatchParams::apply("plugboard-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("installs the CRDs");
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .expect("the CRD is established within a minute")
        .expect("waiting works");
    }
    client
}

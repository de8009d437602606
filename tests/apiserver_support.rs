//! The support helper's real-cluster path, taken against a test server reached only through
//! a kubeconfig file, as PLUGBOARD_TEST_KUBECONFIG would name one: the CRDs are applied with
//! the tests' field manager and awaited, a fresh namespace is made and cleaned up, and the
//! request counter is reported unavailable.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::Api;
use plugboard_apiserver::ApiServer;

#[tokio::test]
async fn the_real_cluster_path_installs_the_crds_and_works_in_a_fresh_namespace() {
    let server = ApiServer::start(Vec::new()).await;
    let path = std::env::temp_dir().join(format!(
        "plugboard-kubeconfig-{:08x}.yaml",
        rand::random::<u32>()
    ));
    server.write_kubeconfig(&path).unwrap();
    let cluster = support::TestCluster::real(&path).await;
    std::fs::remove_file(&path).unwrap();

    assert!(!cluster.is_test_server());
    assert!(
        cluster.requests().is_none(),
        "a real cluster has no request counter"
    );
    let mark = cluster.mark_writes().await;
    cluster.assert_no_writes_since(&mark, "nothing").await;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    for crd in plugboard::crd::all() {
        let installed = crds.get(&crd.name_any()).await.unwrap();
        let managers: Vec<String> = installed
            .managed_fields()
            .iter()
            .filter_map(|m| m.manager.clone())
            .collect();
        assert_eq!(managers, [support::FIELD_MANAGER]);
    }
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let ns = cluster.namespace().to_owned();
    assert!(namespaces.get_opt(&ns).await.unwrap().is_some());
    cluster.cleanup().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while namespaces.get_opt(&ns).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the test namespace was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        server
            .requests()
            .count("patch", "customresourcedefinitions")
            >= 4,
        "the CRDs were applied"
    );
}

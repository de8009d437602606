//! The operator as its users run it, a process of its own (`plugboard run`) against the
//! cluster of a kubeconfig, seen through what the API server records of it.

mod harness;
mod support;

use std::time::Duration;

use harness::*;
use plugboard::api::Connection;

/// Lets an administrator tell plugboard's requests from everyone else's: the API server
/// names a write that carries no field manager (kube-runtime's finalizer patch) after the
/// product of its User-Agent, and records the User-Agent in its audit log.
#[tokio::test]
async fn the_operator_names_itself_to_the_api_server() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let dir = std::env::temp_dir().join(format!("plugboard-process-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .args(["run", "--namespace", ns, "--listen", "127.0.0.1:0"])
        .args(["--log-level", "warn"])
        .env("KUBECONFIG", cluster.kubeconfig(&dir))
        .kill_on_drop(true)
        .spawn()
        .expect("the operator starts");
    let (connectors, tenants, connections, secrets) = apis(&client, ns);
    create(
        &connectors,
        static_connector("stripe", "https://api.stripe.com"),
    )
    .await;
    create(&tenants, tenant("acme")).await;
    create(
        &secrets,
        input_secret("acme-stripe", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
    )
    .await;
    create(&connections, connection("acme-stripe", "acme", "stripe")).await;

    let finalized = wait_for(
        &connections,
        "acme-stripe",
        "the finalizer",
        |c: &Connection| !c.metadata.finalizers.clone().unwrap_or_default().is_empty(),
    )
    .await;
    let managers: Vec<String> = finalized
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0["f:metadata"].get("f:finalizers").is_some())
        })
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["plugboard"], "who wrote the finalizer");
    operator.kill().await.ok();
    let _ = tokio::time::timeout(Duration::from_secs(5), operator.wait()).await;
    std::fs::remove_dir_all(&dir).ok();
    cluster.cleanup().await;
}

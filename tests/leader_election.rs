//! Leader election through a real Lease on the (test) API server: with two replicas exactly
//! one reconciles; when it dies without releasing the lease, the other takes over within the
//! lease duration.

mod harness;
mod support;

use std::sync::Arc;
use std::time::Duration;

use harness::*;
use plugboard::controller::Settings;
use plugboard::leader::Election;
use plugboard::metrics::Metrics;

/// Short, so the failover happens within a test; the operator's default is 15 s.
const LEASE: Duration = Duration::from_secs(3);

fn replica(
    cluster: &support::TestCluster,
    name: &str,
) -> (tokio::task::JoinHandle<()>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let settings = Settings {
        namespace: Some(cluster.namespace().to_owned()),
        allow_private_networks: true,
        provider_timeout: Some(PROVIDER_TIMEOUT),
        metrics: metrics.clone(),
        ..Settings::default()
    };
    let election = Election {
        lease: "plugboard-leader".into(),
        namespace: cluster.namespace().to_owned(),
        identity: name.into(),
        duration: LEASE,
        grace: Duration::from_secs(1),
    };
    let client = cluster.client();
    let first = plugboard::controller::prepare(client.clone(), settings.clone());
    let task = tokio::spawn(async move {
        let _ = plugboard::leader::run(
            client,
            settings,
            election,
            first,
            std::future::pending::<()>(),
        )
        .await;
    });
    (task, metrics)
}

fn reconciled(metrics: &Metrics) -> bool {
    metrics.render().lines().any(|l| {
        l.starts_with("plugboard_reconciles_total{kind=\"Connection\"") && !l.ends_with(" 0")
    })
}

/// The `plugboard_connections` gauge's figure for Connected.
fn connected(metrics: &Metrics) -> Option<u64> {
    metrics.render().lines().find_map(|l| {
        l.strip_prefix(r#"plugboard_connections{state="Connected"} "#)?
            .parse()
            .ok()
    })
}

/// Waits until the gauge shows `want` Connected: it counts the replica's cache, which sees a
/// status a moment after the API server has it.
async fn wait_for_connected(metrics: &Metrics, want: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while connected(metrics) != Some(want) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "plugboard_connections shows {:?} Connected, not {want}",
            connected(metrics)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_replica_reconciles_and_the_other_takes_over_when_it_dies() {
    init_logging();
    let cluster = support::TestCluster::start().await;
    let provider = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&provider)
        .await;
    let all = apis(&cluster.client(), cluster.namespace());
    let (a, metrics_a) = replica(&cluster, "replica-a");
    let (b, metrics_b) = replica(&cluster, "replica-b");
    connect_stripe(&all, &provider.uri(), "sk_test_4eC39HqLyjWDarjtT1zdp7dc").await;
    let (leader, leader_metrics, follower_metrics, follower) =
        match (reconciled(&metrics_a), reconciled(&metrics_b)) {
            (true, false) => (a, &metrics_a, &metrics_b, b),
            (false, true) => (b, &metrics_b, &metrics_a, a),
            other => panic!(
                "exactly one replica must reconcile, saw {other:?}:\n{}\n{}",
                metrics_a.render(),
                metrics_b.render()
            ),
        };
    assert!(reconciled(leader_metrics));
    wait_for_connected(leader_metrics, 1).await;
    assert_eq!(
        connected(follower_metrics),
        Some(0),
        "a follower counts nothing"
    );

    // The leader dies without releasing the lease; the follower waits it out and takes over.
    leader.abort();
    let started = tokio::time::Instant::now();
    let (_, _, connections, secrets) = &all;
    harness::create(
        secrets,
        input_secret("second", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
    )
    .await;
    harness::create(connections, connection("second", "acme", "stripe")).await;
    wait_for(connections, "second", "Connected by the new leader", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let took = started.elapsed();
    assert!(reconciled(follower_metrics), "the follower reconciled");
    wait_for_connected(follower_metrics, 2).await;
    assert!(took < LEASE * 4, "took over in {took:?}");
    follower.abort();
    cluster.cleanup().await;
}

#[tokio::test]
async fn the_connect_endpoint_answers_on_a_replica_that_does_not_lead() {
    init_logging();
    let cluster = support::TestCluster::start().await;
    let all = apis(&cluster.client(), cluster.namespace());
    // This replica never leads: another identity holds the lease for the whole test.
    let (leader, _) = replica(&cluster, "the-leader");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let settings = Settings {
        namespace: Some(cluster.namespace().to_owned()),
        allow_private_networks: true,
        public_url: Some(base.clone()),
        state_key: Some(Arc::new(
            plugboard::auth::state::StateKey::new(vec![9; 32]).unwrap(),
        )),
        ..Settings::default()
    };
    let (ctx, watches) = plugboard::controller::prepare(cluster.client(), settings.clone());
    let router = plugboard::web::connect::router(ctx.clone());
    let linking = ctx.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let election = Election {
        lease: "plugboard-leader".into(),
        namespace: cluster.namespace().to_owned(),
        identity: "the-follower".into(),
        duration: LEASE,
        grace: Duration::from_secs(1),
    };
    let follower = tokio::spawn(plugboard::leader::run(
        cluster.client(),
        settings,
        election,
        (ctx, watches),
        std::future::pending::<()>(),
    ));

    let (connectors, tenants, connections, secrets) = &all;
    harness::create(
        secrets,
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "oauth-app"},
        "stringData": {"clientId": "plugboard-tests", "clientSecret": "app-secret-0123456789"}}),
    )
    .await;
    harness::create(connectors, serde_json::json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connector", "metadata": {"name": "hubspot"},
        "spec": {"auth": {"type": "oauth2", "authorizeUri": "https://app.hubspot.com/oauth/authorize", "tokenUri": "https://api.hubapi.com/oauth/v1/token",
                          "scopes": ["contacts"], "clientSecretRef": {"name": "oauth-app"}}}})).await;
    harness::create(tenants, tenant("acme")).await;
    harness::create(connections, serde_json::json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": "acme-hubspot"},
        "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"}}})).await;

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The link the Connection's status shows, signed with the replicas' shared state key;
    // the leader here has no public URL, so the test signs it as a leading replica would.
    let conn = connections.get("acme-hubspot").await.unwrap();
    let link = plugboard::auth::link::connect_link(
        linking.config.public_url.as_deref(),
        linking.config.state_key.as_deref(),
        &conn,
    )
    .expect("a public URL and a state key make a link");
    assert!(link.starts_with(&format!("{base}/connect/")), "{link}");
    let answer = browser.get(link).send().await.unwrap();
    assert_eq!(answer.status(), 303, "{:?}", answer.text().await);
    let location = answer.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://app.hubspot.com/oauth/authorize?"),
        "{location}"
    );
    server.abort();
    follower.abort();
    leader.abort();
    cluster.cleanup().await;
}

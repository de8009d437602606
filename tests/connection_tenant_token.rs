//! `tenant-token` Connections: the operator mints a JWT for the tenant, stores it, tests with
//! it, mints a new one when the tenant changes or a refresh is requested, and names the field
//! when the signing key is missing or unusable.

mod harness;
mod support;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use wiremock::matchers::{header_regex, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use harness::*;

const HS256_KEY: &str = "tenant-token-signing-key-0123456789abcdef";

fn connector(provider: &str, algorithm: &str) -> Value {
    json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connector", "metadata": {"name": "membrane"}, "spec": {
        "auth": {"type": "tenant-token", "issuer": "ws-plugboard", "algorithm": algorithm,
                 "signingKeyRef": {"name": "signing-key", "key": "key"}, "tokenLifetime": "1h"},
        "apiClient": {"baseUri": provider, "headers": {"Authorization": "Bearer {{ credentials.token }}"}},
        "test": {"path": "/me"}}})
}

fn key_secret(key: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "signing-key"}, "stringData": {"key": key}})
}

fn plain_connection() -> Value {
    json!({"apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection", "metadata": {"name": "acme-membrane"},
        "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "membrane"}}})
}

async fn provider() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header_regex(
            "authorization",
            r"^Bearer eyJ[\w-]+\.[\w-]+\.[\w-]+$",
        ))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

fn decode(token: &str) -> Value {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["ws-plugboard"]);
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(HS256_KEY.as_bytes()),
        &validation,
    )
    .expect("the stored token verifies with the connector's key")
    .claims
}

async fn stored_token(apis: &Apis) -> String {
    let secret = apis.3.get("acme-membrane-credentials").await.unwrap();
    secret_text(&secret, "token").expect("a token is stored")
}

#[tokio::test]
async fn a_tenant_token_is_minted_for_the_tenant_tested_and_minted_anew_on_change() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let apis = apis(&client, ns);
    let _operator = Operator::start(client.clone(), ns);
    create(&apis.3, key_secret(HS256_KEY)).await;
    create(&apis.0, connector(&provider.uri(), "HS256")).await;
    create(&apis.1, tenant("acme")).await;
    let before = cluster.requests();
    create(&apis.2, plain_connection()).await;

    let conn = wait_for(&apis.2, "acme-membrane", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    assert_minted_once_and_left_alone(&cluster, &apis, before.as_ref()).await;
    let first = stored_token(&apis).await;
    assert_first_token(&conn, &first);

    // The tenant's fields change: the token is minted again and carries them.
    apis.1
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"fields": {"plan": "pro"}}})),
        )
        .await
        .unwrap();
    wait_for(&apis.3, "acme-membrane-credentials", "a new token", |s| {
        secret_text(s, "token").is_some_and(|t| t != first)
    })
    .await;
    let second = stored_token(&apis).await;
    assert_eq!(decode(&second)["fields"], json!({"plan": "pro"}));

    // A requested refresh mints a new token too, and status echoes the request.
    let before = apis
        .2
        .get("acme-membrane")
        .await
        .unwrap()
        .status
        .unwrap()
        .last_refreshed_at;
    request_refresh(&apis.2, "acme-membrane", "2026-11-23T04:00:00Z").await;
    let after = wait_for(&apis.2, "acme-membrane", "refresh echoed", |c| {
        refresh_echoed(c, "2026-11-23T04:00:00Z")
    })
    .await
    .status
    .unwrap()
    .last_refreshed_at;
    assert!(
        after.is_some() && after != before,
        "{before:?} -> {after:?}"
    );
    let tests = provider
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/me")
        .count();
    assert!(tests >= 2, "each new token was tested: {tests}");
    cluster.cleanup().await;
}

/// The first token: minted for the tenant, valid for the connector's hour, with its expiry
/// in the status as the token's `exp` says, and never shown in the Connection.
fn assert_first_token(conn: &plugboard::api::Connection, token: &str) {
    let claims = decode(token);
    assert_eq!(claims["iss"], "ws-plugboard");
    assert_eq!(claims["sub"], "acme");
    assert_eq!(claims["id"], "acme");
    assert_eq!(claims["name"], "Acme Inc.");
    assert_eq!(claims["fields"], json!({"plan": "enterprise"}));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let status = conn.status.clone().unwrap();
    let (expires, next) = (
        status.credentials_expire_at.unwrap(),
        status.next_refresh_at.unwrap(),
    );
    let exp = k8s_openapi::jiff::Timestamp::from_second(claims["exp"].as_i64().unwrap());
    assert_eq!(
        Some(expires.clone()),
        exp.ok().map(|t| t.to_string()),
        "credentialsExpireAt is the token's exp"
    );
    assert!(
        next < expires,
        "minted anew before it expires: {next} < {expires}"
    );
    let text = serde_json::to_string(&conn.metadata).unwrap();
    assert!(!text.contains(token));
}

/// The first token is stored with one write of the credentials Secret, and a reconcile after
/// the Connection is Connected (woken by a change of the signing key Secret's metadata) makes
/// no API write. A token's expiry kept to the nanosecond at mint but read back from its `exp`
/// in whole seconds made every mint write the Secret and the status a second time.
async fn assert_minted_once_and_left_alone(
    cluster: &support::TestCluster,
    apis: &Apis,
    before: Option<&support::RequestCounts>,
) {
    // Let the reconcile that the operator's own Secret write wakes run.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let reads = cluster.requests().map(|r| r.count("get", "secrets"));
    apis.3
        .patch(
            "signing-key",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"example.com/owner": "ops"}}})),
        )
        .await
        .unwrap();
    let touched = cluster.mark_writes().await;
    cluster.wait_until_secrets_read_again(reads).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    cluster
        .assert_no_writes_since(&touched, "a reconcile of a Connected tenant-token")
        .await;
    match cluster.count_since(before, "patch", "secrets") {
        Some(writes) => assert_eq!(
            writes, 2,
            "the minted token stored once, and the test's own annotation"
        ),
        None => eprintln!("skipped on a real cluster: request counter unavailable (Secret writes)"),
    }
}

#[tokio::test]
async fn an_unusable_signing_key_is_named_in_the_status() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let apis = apis(&client, ns);
    let _operator = Operator::start(client.clone(), ns);
    create(&apis.0, connector(&provider.uri(), "HS512")).await;
    create(&apis.1, tenant("acme")).await;
    create(&apis.2, plain_connection()).await;
    let missing = wait_for(&apis.2, "acme-membrane", "SecretNotFound", |c| {
        is_ready_with(c, "False", "SecretNotFound")
    })
    .await;
    let message = &condition(&missing, "Ready").unwrap().message;
    assert!(message.contains("auth.signingKeyRef"), "{message}");

    // Too short for HS512 (32 bytes where 64 are needed).
    create(&apis.3, key_secret(HS256_KEY)).await;
    let short = wait_for(&apis.2, "acme-membrane", "InvalidConnector", |c| {
        is_ready_with(c, "False", "InvalidConnector")
    })
    .await;
    let message = &condition(&short, "Ready").unwrap().message;
    assert!(
        message.contains("auth.signingKeyRef") && message.contains("at least 64"),
        "{message}"
    );
    assert!(!message.contains(HS256_KEY), "{message}");

    // RS256 with a key that is no PEM.
    apis.0
        .patch(
            "membrane",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"auth": {"algorithm": "RS256"}}})),
        )
        .await
        .unwrap();
    let pem = wait_for(&apis.2, "acme-membrane", "not a PEM key", |c| {
        condition(c, "Ready").is_some_and(|r| r.message.contains("PEM"))
    })
    .await;
    assert_eq!(ready(&pem).unwrap().1, "InvalidConnector");
    cluster.cleanup().await;
}

#[tokio::test]
async fn an_rs256_token_is_signed_with_the_pem_key_and_verifies_with_its_public_key() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let apis = apis(&client, ns);
    let _operator = Operator::start(client.clone(), ns);
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let private = std::fs::read_to_string(fixtures.join("rs256-test-key.pem")).unwrap();
    let public = std::fs::read(fixtures.join("rs256-test-key.pub.pem")).unwrap();
    create(&apis.3, key_secret(&private)).await;
    create(&apis.0, connector(&provider.uri(), "RS256")).await;
    create(&apis.1, tenant("acme")).await;
    create(&apis.2, plain_connection()).await;
    wait_for(&apis.2, "acme-membrane", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let token = stored_token(&apis).await;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["ws-plugboard"]);
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_rsa_pem(&public).unwrap(),
        &validation,
    )
    .expect("verifies with the public key")
    .claims;
    assert_eq!(claims["sub"], "acme");
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_short_lived_token_is_replaced_halfway_through_its_life_not_every_second() {
    let cluster = support::TestCluster::start().await;
    let (client, ns) = (cluster.client(), cluster.namespace());
    let provider = provider().await;
    let apis = apis(&client, ns);
    let _operator = Operator::start(client.clone(), ns);
    create(&apis.3, key_secret(HS256_KEY)).await;
    let mut short = connector(&provider.uri(), "HS256");
    short["spec"]["auth"]["tokenLifetime"] = json!("10s");
    create(&apis.0, short).await;
    create(&apis.1, tenant("acme")).await;
    create(&apis.2, plain_connection()).await;
    wait_for(&apis.2, "acme-membrane", "Connected", |c| {
        is_ready_with(c, "True", "Connected")
    })
    .await;
    let first = decode(&stored_token(&apis).await);
    wait_for(&apis.3, "acme-membrane-credentials", "a new token", |s| {
        secret_text(s, "token").is_some_and(|t| decode(&t)["iat"] != first["iat"])
    })
    .await;
    let second = decode(&stored_token(&apis).await);
    let (iat1, iat2) = (
        first["iat"].as_i64().unwrap(),
        second["iat"].as_i64().unwrap(),
    );
    let exp1 = first["exp"].as_i64().unwrap();
    assert!(
        iat2 - iat1 >= 4 && iat2 < exp1,
        "minted again {} s after the first, before it expired (exp {exp1}, new iat {iat2})",
        iat2 - iat1
    );
    cluster.cleanup().await;
}

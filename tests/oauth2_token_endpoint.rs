//! The OAuth2 token client against scripted token endpoints (wiremock): what each answer
//! becomes, and that no token reaches an error message.

use std::time::Duration;

use plugboard::auth::oauth2::{self, App, Ask, Endpoints, TokenError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn app() -> App {
    App {
        client_id: "plugboard-app".into(),
        client_secret: SecretString::from("app-secret-value"),
    }
}

fn endpoints(server: &MockServer) -> (String, String) {
    (
        format!("{}/token", server.uri()),
        format!("{}/revoke", server.uri()),
    )
}

fn http() -> reqwest::Client {
    plugboard::provider::http::client(true, Some(Duration::from_secs(1)))
}

async fn refresh(server: &MockServer) -> Result<oauth2::Tokens, TokenError> {
    let (token, revoke) = endpoints(server);
    let e = Endpoints {
        authorize_uri: None,
        token_uri: Some(&token),
        revoke_uri: Some(&revoke),
        client_auth: None,
    };
    oauth2::refresh(&http(), &app(), &e, &SecretString::from("rt-old"), &[]).await
}

#[tokio::test]
async fn a_rotating_refresh_returns_the_new_refresh_token_and_expiry() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token")).and(body_string_contains("refresh_token=rt-old"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at-new", "refresh_token": "rt-new", "token_type": "Bearer", "expires_in": 3600, "scope": "contacts deals", "hub_id": 42
        })))
        .mount(&server).await;
    let tokens = refresh(&server).await.unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "at-new");
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "rt-new"
    );
    assert_eq!(tokens.scope.as_deref(), Some("contacts deals"));
    assert_eq!(
        tokens.response.0["hub_id"], 42,
        "extra fields are kept for mapping templates"
    );
    let left = tokens
        .expires_at
        .unwrap()
        .duration_since(k8s_openapi::jiff::Timestamp::now());
    assert!(left.as_secs() > 3500 && left.as_secs() <= 3600, "{left:?}");
    assert!(
        !format!("{tokens:?}").contains("at-new"),
        "Debug hides tokens"
    );
}

#[tokio::test]
async fn a_refresh_without_a_refresh_token_returns_none_so_the_old_one_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "at-new", "token_type": "bearer", "expires_in": 60}),
        ))
        .mount(&server)
        .await;
    assert!(refresh(&server).await.unwrap().refresh_token.is_none());
}

#[tokio::test]
async fn invalid_grant_is_told_apart() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(
                json!({"error": "invalid_grant", "error_description": "token revoked"}),
            ),
        )
        .mount(&server)
        .await;
    let refused = refresh(&server).await.unwrap_err();
    assert!(
        matches!(&refused, TokenError::InvalidGrant(Some(d)) if d == "token revoked"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn rate_limiting_is_unavailable_with_its_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "17")
                .set_body_string("slow down"),
        )
        .mount(&server)
        .await;
    match refresh(&server).await.unwrap_err() {
        TokenError::Unavailable {
            retry_after,
            message,
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(17)));
            assert!(message.contains("429"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn server_errors_timeouts_and_garbage_are_unavailable_and_quote_no_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(502).set_body_string("at-leaked"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("{\"access_token\": \"at-leaked\","),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    for expected in ["HTTP 502", "not a valid token response", "timed out"] {
        match refresh(&server).await.unwrap_err() {
            TokenError::Unavailable { message, .. } => {
                assert!(message.contains(expected), "{message}");
                assert!(!message.contains("at-leaked"), "{message}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn client_credentials_send_scopes_audience_and_body_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("scope=read%2Cwrite"))
        .and(body_string_contains(
            "audience=https%3A%2F%2Fapi.example.com",
        ))
        .and(body_string_contains("client_secret=app-secret-value"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "cc-token", "token_type": "bearer", "expires_in": 300}),
        ))
        .mount(&server)
        .await;
    let (token, _) = endpoints(&server);
    let e = Endpoints {
        authorize_uri: None,
        token_uri: Some(&token),
        revoke_uri: None,
        client_auth: Some(plugboard::api::ClientAuth::Body),
    };
    let ask = Ask {
        scopes: vec!["read".into(), "write".into()],
        separator: ",".into(),
        extra: vec![("audience".into(), "https://api.example.com".into())],
    };
    let tokens = oauth2::client_credentials(&http(), &app(), &e, &ask)
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "cc-token");
}

#[tokio::test]
async fn the_authorization_url_carries_pkce_state_scopes_and_extra_params() {
    let e = Endpoints {
        authorize_uri: Some("https://app.hubspot.com/oauth/authorize"),
        token_uri: Some("https://api.hubapi.com/oauth/v1/token"),
        revoke_uri: None,
        client_auth: None,
    };
    let ask = Ask {
        scopes: vec!["contacts".into(), "deals".into()],
        separator: " ".into(),
        extra: vec![("prompt".into(), "consent".into())],
    };
    let url = oauth2::authorize_url(
        &app(),
        &e,
        "https://plugboard.example.com/oauth/callback",
        &ask,
        "the-state".into(),
        "v".repeat(43),
    )
    .unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "plugboard-app");
    assert_eq!(
        q["redirect_uri"],
        "https://plugboard.example.com/oauth/callback"
    );
    assert_eq!(q["scope"], "contacts deals");
    assert_eq!(q["state"], "the-state");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["prompt"], "consent");
    assert!(!url.as_str().contains("app-secret-value"));
    assert_ne!(
        q["code_challenge"],
        "v".repeat(43),
        "the challenge is a hash, not the verifier"
    );
}

#[tokio::test]
async fn revocation_posts_the_token_with_its_hint() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .and(body_string_contains("token=rt-old"))
        .and(body_string_contains("token_type_hint=refresh_token"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let (token, revoke) = endpoints(&server);
    let e = Endpoints {
        authorize_uri: None,
        token_uri: Some(&token),
        revoke_uri: Some(&revoke),
        client_auth: None,
    };
    oauth2::revoke(&http(), &app(), &e, &SecretString::from("rt-old"), true)
        .await
        .unwrap();
}

/// Many Connections of one connector asking for tokens at once reach its token endpoint at
/// most `PER_HOST` at a time; the rest wait in the operator, not at the provider.
#[tokio::test]
async fn token_requests_to_one_host_are_limited() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use plugboard::provider::limit::PER_HOST;

    // (in flight now, most in flight at once)
    let seen = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let counted = seen.clone();
    let token = axum::routing::post(move || {
        let counted = counted.clone();
        async move {
            let now = counted.0.fetch_add(1, SeqCst) + 1;
            counted.1.fetch_max(now, SeqCst);
            // Long enough that requests the limit did not hold back would overlap here.
            tokio::time::sleep(Duration::from_millis(50)).await;
            counted.0.fetch_sub(1, SeqCst);
            axum::Json(json!({"access_token": "at", "token_type": "Bearer"}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/token", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/token", token);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let e = Endpoints {
        authorize_uri: None,
        token_uri: Some(&uri),
        revoke_uri: None,
        client_auth: None,
    };
    let (http, app, ask) = (http(), app(), Ask::default());
    let calls = (0..PER_HOST * 4).map(|_| oauth2::client_credentials(&http, &app, &e, &ask));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let most = seen.1.load(SeqCst);
    assert!(
        most <= PER_HOST,
        "{most} token requests reached one host at once; the limit is {PER_HOST}"
    );
}

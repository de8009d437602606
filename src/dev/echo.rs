//! The quickstart's provider: a tiny API on loopback that `plugboard dev` starts, so that a
//! first Connection can reach Ready with nothing from outside the machine. It plays an API
//! that takes a bearer key: `GET /me` answers 200 with who the key belongs to for any key
//! that starts with `demo_`, and 401 otherwise, so a wrong key shows as a failed test.

use std::net::SocketAddr;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The prefix of every key the echo provider accepts.
pub const KEY_PREFIX: &str = "demo_";

async fn me(headers: HeaderMap) -> (StatusCode, Json<Value>) {
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match key {
        Some(key) if key.starts_with(KEY_PREFIX) && key.len() > KEY_PREFIX.len() => (
            StatusCode::OK,
            Json(json!({"account": &key[KEY_PREFIX.len()..], "provider": "plugboard dev echo"})),
        ),
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": format!("send Authorization: Bearer {KEY_PREFIX}<anything>")})),
        ),
    }
}

/// Serves the echo provider until `stop` resolves.
pub async fn serve(
    addr: SocketAddr,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let router = Router::new().route("/me", get(me));
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await;
    }))
}

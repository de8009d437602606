//! The connect flow's endpoints: `GET /connect/{namespace}/{name}/{signature}` (a
//! Connection's `status.authorizationUrl`) sends a person to the provider's consent page,
//! `GET /oauth/callback` brings them back, stores the tokens and sends them on to an
//! allowlisted `redirectUri` or shows a page; `POST /connect` is the backend connection
//! method (`backend_connect`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::consent::{self, FlowError};
use super::page::page;
use crate::controller::Context;

pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/connect/{namespace}/{name}/{signature}", get(start))
        // The unsigned form of earlier releases: refused with a page that says where the
        // valid link is, rather than a bare 404.
        .route("/connect/{namespace}/{name}", get(unsigned))
        .route("/oauth/callback", get(callback))
        .route(
            "/connect",
            post(super::backend_connect::post).layer(axum::extract::DefaultBodyLimit::max(
                super::connect_api::MAX_BODY,
            )),
        )
        .with_state(ctx)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartQuery {
    redirect_uri: Option<String>,
}

async fn start(
    State(ctx): State<Arc<Context>>,
    Path((namespace, name, signature)): Path<(String, String, String)>,
    Query(query): Query<StartQuery>,
) -> Response {
    match consent::start_signed(&ctx, &namespace, &name, &signature, query.redirect_uri).await {
        Ok(url) => Redirect::to(url.as_str()).into_response(),
        Err(err) => failure(&err),
    }
}

async fn unsigned() -> Response {
    failure(&FlowError::LinkNotValid)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    /// OAuth 1.0a: the temporary token and the verifier the provider sends back.
    oauth_token: Option<String>,
    oauth_verifier: Option<String>,
    /// OAuth 1.0a: the token of a flow the person declined, as some providers report it.
    denied: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(State(ctx): State<Arc<Context>>, Query(query): Query<CallbackQuery>) -> Response {
    let result = match (&query.error, &query.code, &query.state) {
        (Some(error), _, _) => Err(FlowError::Denied(
            query
                .error_description
                .clone()
                .unwrap_or_else(|| error.clone()),
        )),
        (None, Some(code), Some(state)) => consent::complete(&ctx, state, code).await,
        _ if query.denied.is_some() => Err(FlowError::Denied(
            "the authorization was declined at the provider".to_owned(),
        )),
        (None, None, Some(state)) => match (&query.oauth_token, &query.oauth_verifier) {
            (Some(token), Some(verifier)) => {
                super::consent_oauth1::complete(&ctx, state, token, verifier).await
            }
            _ => Err(FlowError::State(crate::auth::state::StateError::Malformed)),
        },
        _ => Err(FlowError::State(crate::auth::state::StateError::Malformed)),
    };
    match result {
        Ok(claims) => match claims.redirect {
            Some(target) => {
                let mut url = match url::Url::parse(&target) {
                    Ok(url) => url,
                    Err(_) => return failure(&FlowError::RedirectNotAllowed),
                };
                url.query_pairs_mut()
                    .append_pair("connection", &format!("{}/{}", claims.ns, claims.name))
                    .append_pair("status", "connected");
                Redirect::to(url.as_str()).into_response()
            }
            None => page(
                StatusCode::OK,
                "Connected",
                &format!(
                    "Connection {}/{} is authorized. You can close this window.",
                    claims.ns, claims.name
                ),
            ),
        },
        Err(err) => failure(&err),
    }
}

fn failure(err: &FlowError) -> Response {
    let status = if matches!(err, FlowError::LinkNotValid) {
        StatusCode::FORBIDDEN
    } else if err.is_client_error() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::BAD_GATEWAY
    };
    tracing::info!(error = %err, "connect flow refused");
    page(status, "Not connected", &err.to_string())
}

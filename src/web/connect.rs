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

use super::connect_result::{self, Outcome};
use super::connect_views as views;
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
            "/connect/session/{token}",
            get(super::connect_page::show)
                .post(super::connect_page::submit)
                .layer(axum::extract::DefaultBodyLimit::max(
                    super::connect_api::MAX_BODY,
                )),
        )
        .route(
            "/connect.js",
            get(|| async { views::asset("text/javascript; charset=utf-8", views::CONNECT_JS) }),
        )
        .route(
            "/connect/assets/page.js",
            get(|| async { views::asset("text/javascript; charset=utf-8", views::PAGE_JS) }),
        )
        .route(
            "/connect/assets/page.css",
            get(|| async { views::asset("text/css; charset=utf-8", views::PAGE_CSS) }),
        )
        .route(
            "/connect",
            post(super::backend_connect::post).layer(axum::extract::DefaultBodyLimit::max(
                super::connect_api::MAX_BODY,
            )),
        )
        .route(
            "/connect/sessions",
            post(super::connect_sessions::post).layer(axum::extract::DefaultBodyLimit::max(
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
        Ok(claims) => match &claims.session {
            Some(mark) => session_consented(&ctx, &claims, mark).await,
            None => consented(&claims),
        },
        Err(err) => match session_of(&ctx, query.state.as_deref()) {
            // A flow begun on the connect page ends there: in a popup, the opener hears of it.
            Some(claims) => connect_result::failed(
                &ctx,
                &format!("{}/{}", claims.ns, claims.name),
                claims
                    .session
                    .as_ref()
                    .expect("session_of returns session flows"),
                claims.redirect.clone(),
                &err.to_string(),
            ),
            None => failure(&err),
        },
    }
}

/// The end of a consent flow begun outside the connect page.
fn consented(claims: &crate::auth::state::Claims) -> Response {
    match &claims.redirect {
        Some(target) => {
            let mut url = match url::Url::parse(target) {
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
    }
}

/// The end of a consent flow begun on the connect page: the session is spent.
async fn session_consented(
    ctx: &Context,
    claims: &crate::auth::state::Claims,
    mark: &crate::auth::state::SessionMark,
) -> Response {
    match super::consent_shared::connection(ctx, &claims.ns, &claims.name).await {
        Ok(conn) => {
            connect_result::finish(
                ctx,
                &conn,
                mark,
                claims.redirect.clone(),
                Outcome::Connected,
            )
            .await
        }
        Err(err) => failure(&err),
    }
}

/// The claims of a flow begun on the connect page, when `state` is one this operator signed
/// (expired or not: the page still tells its opener how it went).
fn session_of(ctx: &Context, state: Option<&str>) -> Option<crate::auth::state::Claims> {
    let key = ctx.config.state_key.as_ref()?;
    let claims = key.verify(state?, i64::MIN).ok()?;
    claims.session.is_some().then_some(claims)
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

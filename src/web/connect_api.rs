//! What `POST /connect` takes (the seed's backend payload) and how it refuses: a 4xx or 503
//! with a JSON body `{"error": <code>, "message": <what is wrong>}`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::ConnectorKind;
use crate::auth::access_token::TokenError;

/// The largest request body read: a payload is a few kilobytes of JSON.
pub const MAX_BODY: usize = 64 * 1024;

/// What the backend asks for, as the seed's `payload` describes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Payload {
    /// The connector's name (the seed's `integrationId`).
    #[serde(alias = "integrationId")]
    pub connector: String,
    /// `Connector` (in the workspace namespace) or `ClusterConnector`; the namespaced one
    /// first when unset.
    #[serde(default)]
    pub connector_kind: Option<ConnectorKind>,
    #[serde(default)]
    pub auth_option_key: Option<String>,
    #[serde(default)]
    pub input: Option<Map<String, Value>>,
    #[serde(default)]
    pub connector_parameters: Option<Map<String, Value>>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// Create a new Connection even if the tenant has one to this connector.
    #[serde(default)]
    pub allow_multiple_connections: bool,
}

/// A refusal: an HTTP status, a stable code and a message naming the problem.
#[derive(Debug)]
pub struct ConnectError {
    status: StatusCode,
    code: &'static str,
    pub(super) message: String,
}

impl ConnectError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl IntoResponse for ConnectError {
    fn into_response(self) -> Response {
        tracing::info!(code = self.code, message = %self.message, "POST /connect refused");
        let body = json!({"error": self.code, "message": self.message});
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(body),
        )
            .into_response()
    }
}

impl From<TokenError> for ConnectError {
    fn from(err: TokenError) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", err.to_string())
    }
}

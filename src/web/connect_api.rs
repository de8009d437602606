//! What `POST /connect` takes (the seed's backend payload) and how it refuses: a 4xx or 503
//! with a JSON body `{"error": <code>, "message": <what is wrong>}`.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
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
    /// The Connection to write, when the caller fixes it: a connect session's (reconnect, or
    /// one more Connection named after the session). Not part of the backend payload.
    #[serde(skip)]
    pub connection: Option<String>,
    /// The connect session this request comes from, for the consent callback.
    #[serde(skip)]
    pub session: Option<crate::auth::state::SessionMark>,
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
    pub fn status(&self) -> StatusCode {
        self.status
    }
    pub fn message(&self) -> &str {
        &self.message
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

/// Reads the JSON object `what` (`payload`, `body`) of `fields` (each with what it must be)
/// into `T`. A refusal names the field and what it must be, never the value given: serde's
/// own messages quote it, and it may be an API key sent in the wrong place (`"input":
/// "sk_live_..."`), which must reach neither the response nor the log. `base(field)` holds
/// what `T` requires besides `field`, so that each field can be tried alone when the whole
/// does not deserialize.
pub fn read_object<T: DeserializeOwned>(
    what: &str,
    text: &[u8],
    fields: &[(&str, &str)],
    base: impl Fn(&str) -> Map<String, Value>,
) -> Result<T, ConnectError> {
    let value: Value = serde_json::from_slice(text).map_err(|err| {
        ConnectError::bad_request(format!(
            "the {what} is not valid JSON (line {}, column {})",
            err.line(),
            err.column()
        ))
    })?;
    let Value::Object(given) = &value else {
        return Err(ConnectError::bad_request(format!(
            "the {what} must be a JSON object"
        )));
    };
    if let Some(unknown) = given.keys().find(|k| !fields.iter().any(|(f, _)| f == k)) {
        let known: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
        return Err(ConnectError::bad_request(format!(
            "the {what} has an unknown field {unknown:?}; its fields are {}",
            known.join(", ")
        )));
    }
    T::deserialize(&value).map_err(|_| {
        let wrong = given.iter().find(|(key, value)| {
            let mut alone = base(key);
            alone.insert((*key).clone(), (*value).clone());
            T::deserialize(&Value::Object(alone)).is_err()
        });
        let Some((key, _)) = wrong else {
            return ConnectError::bad_request(format!("the {what} is not valid"));
        };
        let expected = fields
            .iter()
            .find(|(f, _)| f == key)
            .map_or("something else", |(_, e)| e);
        ConnectError::bad_request(format!("the {what}'s field {key} must be {expected}"))
    })
}

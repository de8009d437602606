//! `POST /connect/sessions`: a SaaS backend asks for a connect session for one of its
//! tenants, with the same tenant access token as `POST /connect`, and gets back the address
//! of the hosted connect page to send the person to (or to open with `/connect.js`).
//!
//! What the session fixes is checked here, so that a mistake in the backend's request is a
//! 4xx to the backend rather than a broken page in front of a person: the connector (or the
//! Connection to reconnect, which must be the tenant's), the auth option, the merged
//! connector parameters against `parametersSchema`, and `redirectUri` against the allowlist.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::backend_connect::{find_connector, workspace};
use super::connect_api::{ConnectError, read_object};
use super::consent;
use crate::api::{Connection, ConnectorKind, Tenant};
use crate::auth::access_token::{TenantClaims, TokenError};
use crate::auth::connect_session::{DEFAULT_LIFETIME_SECS, MAX_LIFETIME_SECS, Session, Target};
use crate::controller::Context;
use crate::controller::connection::shared;

/// What the backend asks for.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Request {
    /// The connector to connect (its name); or `connection`, to reconnect one.
    #[serde(default)]
    connector: Option<String>,
    #[serde(default)]
    connector_kind: Option<ConnectorKind>,
    /// An existing Connection of the tenant: the person re-enters its input or consents
    /// again, and it keeps its name.
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    connector_parameters: Option<Map<String, Value>>,
    #[serde(default)]
    auth_option_key: Option<String>,
    #[serde(default)]
    allow_multiple_connections: bool,
    #[serde(default)]
    redirect_uri: Option<String>,
    /// Seconds the session lasts; `DEFAULT_LIFETIME_SECS` when unset.
    #[serde(default)]
    expires_in: Option<i64>,
}

const FIELDS: &[(&str, &str)] = &[
    ("connector", "a string"),
    ("connectorKind", "\"Connector\" or \"ClusterConnector\""),
    ("connection", "a string"),
    ("connectorParameters", "an object"),
    ("authOptionKey", "a string"),
    ("allowMultipleConnections", "true or false"),
    ("redirectUri", "a string"),
    ("expiresIn", "a whole number of seconds"),
];

pub async fn post(State(ctx): State<Arc<Context>>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&ctx, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle(ctx: &Context, headers: &HeaderMap, body: &[u8]) -> Result<Response, ConnectError> {
    let workspace = workspace(ctx)?;
    let (Some(key), Some(public)) = (&ctx.config.state_key, &ctx.config.public_url) else {
        return Err(ConnectError::new(
            StatusCode::NOT_FOUND,
            "not_enabled",
            "connect sessions need the operator's --public-url",
        ));
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(TokenError::Missing)?;
    let claims = workspace.verify(token.trim())?;
    let request: Request = read_object("body", body, FIELDS, |_| Map::new())?;
    let lifetime = lifetime(request.expires_in)?;
    if let Some(r) = &request.redirect_uri
        && !consent::redirect_allowed(r, &ctx.config.redirect_allowlist)
    {
        return Err(ConnectError::bad_request(
            "redirectUri is not in the operator's redirect allowlist (--redirect-allowlist)",
        ));
    }
    let ns = workspace.namespace.clone();
    let target = target(ctx, &ns, &claims, &request).await?;
    let now = Timestamp::now().as_second();
    let mut session = Session::new(ns, claims, target, now, lifetime);
    session.parameters = request.connector_parameters;
    session.option = request.auth_option_key;
    session.multiple = request.allow_multiple_connections;
    session.redirect = request.redirect_uri;
    let sealed = session.seal(key);
    let expires_at =
        Timestamp::from_second(session.exp).map_or_else(|_| String::new(), |t| t.to_string());
    let body = json!({
        "token": sealed,
        "url": format!("{public}/connect/session/{sealed}"),
        "expiresAt": expires_at,
    });
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response())
}

fn lifetime(asked: Option<i64>) -> Result<i64, ConnectError> {
    match asked {
        None => Ok(DEFAULT_LIFETIME_SECS),
        Some(secs) if (1..=MAX_LIFETIME_SECS).contains(&secs) => Ok(secs),
        Some(_) => Err(ConnectError::bad_request(format!(
            "expiresIn must be between 1 and {MAX_LIFETIME_SECS} seconds"
        ))),
    }
}

/// What the session connects, checked: the connector with the option and parameters it
/// fixes, or the tenant's own Connection.
async fn target(
    ctx: &Context,
    ns: &str,
    claims: &TenantClaims,
    request: &Request,
) -> Result<Target, ConnectError> {
    let (kind, name) = match (&request.connector, &request.connection) {
        (Some(connector), None) => (request.connector_kind, connector.clone()),
        (None, Some(connection)) => {
            let conn = tenants_connection(ctx, ns, claims, connection).await?;
            (
                Some(conn.connector_kind()),
                conn.spec.connector_ref.name.clone(),
            )
        }
        _ => {
            return Err(ConnectError::bad_request(
                "give connector (to connect one) or connection (to reconnect one), not both",
            ));
        }
    };
    let found = find_connector(ctx, ns, &name, kind).await?;
    let schemas = found.schemas(ctx, request.auth_option_key.as_deref());
    let refuse =
        |err: crate::error::Error| ConnectError::invalid("invalid_session", err.to_string());
    if let Some(option) = &request.auth_option_key {
        shared::auth_method(&found.spec, Some(option), "authOptionKey").map_err(refuse)?;
    }
    if request.connector_parameters.is_some() || request.connection.is_none() {
        let merged = shared::merge_parameters(&found.spec, request.connector_parameters.as_ref());
        schemas
            .parameters("connectorParameters", &merged)
            .map_err(refuse)?;
    }
    Ok(match &request.connection {
        Some(name) => Target::Connection { name: name.clone() },
        None => Target::Connector {
            kind: found.kind,
            name,
        },
    })
}

/// The Connection `name`, if it is the tenant's: another tenant's is answered as missing,
/// so that a session request tells nothing about other tenants.
pub async fn tenants_connection(
    ctx: &Context,
    ns: &str,
    claims: &TenantClaims,
    name: &str,
) -> Result<Connection, ConnectError> {
    let unavailable =
        |err: kube::Error| ConnectError::unavailable(format!("could not read Connections: {err}"));
    let missing = || {
        ConnectError::new(
            StatusCode::NOT_FOUND,
            "unknown_connection",
            format!("this tenant has no Connection {name:?}"),
        )
    };
    let conn = Api::<Connection>::namespaced(ctx.client.clone(), ns)
        .get_opt(name)
        .await
        .map_err(unavailable)?
        .ok_or_else(missing)?;
    let tenant = Api::<Tenant>::namespaced(ctx.client.clone(), ns)
        .get_opt(&conn.spec.tenant_ref.name)
        .await
        .map_err(unavailable)?;
    match tenant {
        Some(t) if t.tenant_id() == claims.id => Ok(conn),
        _ => Err(missing()),
    }
}

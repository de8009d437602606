//! `POST /connect`: a SaaS backend connects one of its tenants without a front-end SDK.
//!
//! The request carries a tenant access token (a JWT signed with the workspace secret) and a
//! payload naming the connector, the input and the connector parameters: as the form field
//! `payload` of an HTML form a browser posts (with the token as the form field `token`), or as
//! a JSON body (with `Authorization: Bearer <token>`). The endpoint creates the Tenant on first
//! sight of its id, creates or updates the Connection, and then sends the person on: to the
//! provider's consent for oauth2, else back to `redirectUri` once the Connection is ready.
//! Form posts get redirects and pages; JSON requests get JSON. Every refusal is a 4xx with a
//! JSON body `{"error": <code>, "message": <what is wrong>}`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value, json};

use super::connect_api::{ConnectError, Payload, read_object};
use super::consent::{self, FlowError};
use super::{page, provision};
use crate::api::{
    AuthType, ClusterConnector, Connection, ConnectionState, Connector, ConnectorKind,
    ConnectorSpec,
};
use crate::auth::access_token::{TenantClaims, TokenError, Workspace};
use crate::controller::Context;
use crate::controller::conditions::{self, READY};
use crate::controller::connection::shared;
use crate::error::Error;
use crate::meta::INPUT_UPDATED_AT;
use crate::schemas::{ConnectorSchemas, Owner};

/// How long a static Connection may take to connect before the person is sent on with
/// `status=pending`: a provider's test answers in well under this, and a person should not
/// stare at a blank page much longer.
const CONNECT_WAIT: Duration = Duration::from_secs(15);
/// How long a Tenant created here may take to reach the controller's cache before the
/// consent flow, which reads it from there, starts anyway.
const CACHE_WAIT: Duration = Duration::from_secs(5);
/// How often the endpoint looks at the Connection while it waits.
const POLL: Duration = Duration::from_millis(100);
/// The handler.
pub async fn post(State(ctx): State<Arc<Context>>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&ctx, &headers, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn handle(ctx: &Context, headers: &HeaderMap, body: &[u8]) -> Result<Response, ConnectError> {
    let workspace = workspace(ctx)?;
    let request = parse(headers, body)?;
    let token = request.token.as_deref().ok_or(TokenError::Missing)?;
    let claims = workspace.verify(token)?;
    let payload = request.payload;
    let done = connect(ctx, &workspace.namespace, &claims, &payload).await?;
    let reply = Reply {
        form: request.form,
        namespace: workspace.namespace.clone(),
        tenant: done.tenant,
        connection: done.connection.name_any(),
        redirect: payload.redirect_uri.clone(),
    };
    Ok(match done.next {
        Next::Consent(url) => reply.consent(url),
        Next::Settled(settled) => reply.settled(settled),
    })
}

/// The workspace whose tenants the connect endpoints serve, or why they are off.
pub fn workspace(ctx: &Context) -> Result<Arc<Workspace>, ConnectError> {
    ctx.config.workspace.clone().ok_or_else(|| {
        ConnectError::new(
            StatusCode::NOT_FOUND,
            "not_enabled",
            "the connect endpoints are not enabled: start the operator with --connect-namespace and a workspace Secret",
        )
    })
}

/// What a connect request led to.
pub struct Connected {
    /// The Tenant's object name.
    pub tenant: String,
    pub connection: Connection,
    pub next: Next,
}

/// Where the person goes next.
pub enum Next {
    /// To the provider's consent page (oauth2, oauth1).
    Consent(url::Url),
    /// Nowhere: the Connection connected, failed, or is still connecting.
    Settled(Settled),
}

/// Connects `claims`' tenant as `payload` asks, in the workspace namespace `ns`: checks the
/// payload against the connector with the reconcile's own functions, creates or updates the
/// Tenant and the Connection, then starts the consent or waits for the Connection's test.
/// `POST /connect` and the hosted connect page both go through here.
pub async fn connect(
    ctx: &Context,
    ns: &str,
    claims: &TenantClaims,
    payload: &Payload,
) -> Result<Connected, ConnectError> {
    if let Some(r) = &payload.redirect_uri
        && !consent::redirect_allowed(r, &ctx.config.redirect_allowlist)
    {
        return Err(ConnectError::bad_request(
            "redirectUri is not in the operator's redirect allowlist (--redirect-allowlist)",
        ));
    }
    let found = find_connector(ctx, ns, &payload.connector, payload.connector_kind).await?;
    let auth_type = check(
        &found.schemas(ctx, payload.auth_option_key.as_deref()),
        payload,
    )?;
    let tenant = provision::tenant(ctx, ns, claims).await?;
    let conn = provision::connection(ctx, ns, &tenant, found.kind, payload).await?;
    let tenant = tenant.name_any();
    let next = if matches!(auth_type, AuthType::Oauth2 | AuthType::Oauth1) {
        wait_cached(ctx, ns, &tenant).await;
        let redirect = payload.redirect_uri.clone();
        let url = consent::start(ctx, ns, &conn.name_any(), redirect, payload.session.clone())
            .await
            .map_err(flow_error)?;
        Next::Consent(url)
    } else {
        Next::Settled(wait_ready(ctx, &conn).await)
    };
    Ok(Connected {
        tenant,
        connection: conn,
        next,
    })
}

struct Request {
    form: bool,
    token: Option<String>,
    payload: Payload,
}

fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Request, ConnectError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let mut payload = None;
        let mut token = bearer;
        for (key, value) in url::form_urlencoded::parse(body) {
            match key.as_ref() {
                "payload" => payload = Some(value.into_owned()),
                "token" => token = Some(value.into_owned()),
                _ => {}
            }
        }
        let payload = payload.ok_or_else(|| {
            ConnectError::bad_request("the form has no field payload (the request as JSON)")
        })?;
        return Ok(Request {
            form: true,
            token,
            payload: read_payload(payload.as_bytes())?,
        });
    }
    if content_type.starts_with("application/json") {
        return Ok(Request {
            form: false,
            token: bearer,
            payload: read_payload(body)?,
        });
    }
    Err(ConnectError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send application/json, or a form (application/x-www-form-urlencoded) with the field payload",
    ))
}

/// The payload's fields and what each must be. A refusal names these, never the value
/// given: serde's own messages quote it, and it may be an API key sent in the wrong place
/// (`"input": "sk_live_..."`), which must reach neither the response nor the log.
const PAYLOAD_FIELDS: &[(&str, &str)] = &[
    ("connector", "a string"),
    ("integrationId", "a string"),
    ("connectorKind", "\"Connector\" or \"ClusterConnector\""),
    ("authOptionKey", "a string"),
    ("input", "an object"),
    ("connectorParameters", "an object"),
    ("redirectUri", "a string"),
    ("allowMultipleConnections", "true or false"),
];

fn read_payload(text: &[u8]) -> Result<Payload, ConnectError> {
    // The connector's name first: without it no field alone deserializes.
    if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(text) {
        match ["connector", "integrationId"].map(|f| fields.contains_key(f)) {
            [false, false] => {
                return Err(ConnectError::bad_request(
                    "the payload has no field connector (the connector's name)",
                ));
            }
            [true, true] => {
                return Err(ConnectError::bad_request(
                    "the payload has both connector and integrationId; give one",
                ));
            }
            _ => {}
        }
    }
    read_object("payload", text, PAYLOAD_FIELDS, |field| {
        let mut base = Map::new();
        if field != "connector" && field != "integrationId" {
            base.insert("connector".to_owned(), json!("any"));
        }
        base
    })
}

/// A connector as the connect endpoints found it.
pub struct FoundConnector {
    pub kind: ConnectorKind,
    pub name: String,
    pub spec: ConnectorSpec,
    owner: Option<Owner>,
    label: String,
}

impl FoundConnector {
    /// Its schemas, compiled once per generation as the reconcile's are.
    pub fn schemas<'a>(
        &'a self,
        ctx: &'a Context,
        option: Option<&'a str>,
    ) -> ConnectorSchemas<'a> {
        ConnectorSchemas {
            connector: &self.spec,
            label: &self.label,
            owner: self.owner.as_ref(),
            compiled: &ctx.schemas,
            option,
        }
    }
}

/// The connector `name` in the workspace namespace `ns` (a `Connector`) or cluster-wide (a
/// `ClusterConnector`); the namespaced one first when `kind` is not given.
pub async fn find_connector(
    ctx: &Context,
    ns: &str,
    name: &str,
    kind: Option<ConnectorKind>,
) -> Result<FoundConnector, ConnectError> {
    if !is_object_name(name) {
        return Err(ConnectError::bad_request(format!(
            "connector {name:?} is not a valid object name (lowercase letters, digits, '-' and '.')"
        )));
    }
    let unavailable = |err: kube::Error| {
        ConnectError::unavailable(format!("could not read the connector: {err}"))
    };
    let found = |kind: ConnectorKind, spec, meta: &kube::api::ObjectMeta| FoundConnector {
        kind,
        name: name.to_owned(),
        spec,
        owner: owner(meta),
        label: format!("{}/{name}", kind.as_str()),
    };
    if kind != Some(ConnectorKind::ClusterConnector) {
        let api: Api<Connector> = Api::namespaced(ctx.client.clone(), ns);
        if let Some(c) = api.get_opt(name).await.map_err(unavailable)? {
            return Ok(found(ConnectorKind::Connector, c.spec, &c.metadata));
        }
    }
    if kind != Some(ConnectorKind::Connector) {
        let api: Api<ClusterConnector> = Api::all(ctx.client.clone());
        if let Some(c) = api.get_opt(name).await.map_err(unavailable)? {
            return Ok(found(
                ConnectorKind::ClusterConnector,
                c.spec.0,
                &c.metadata,
            ));
        }
    }
    Err(ConnectError::new(
        StatusCode::NOT_FOUND,
        "unknown_connector",
        format!(
            "connector {name:?}: no Connector in namespace {ns:?} and no ClusterConnector of that name"
        ),
    ))
}

/// Whose compiled schemas a connector's are.
fn owner(meta: &kube::api::ObjectMeta) -> Option<Owner> {
    Some(Owner {
        uid: meta.uid.clone()?,
        generation: meta.generation,
    })
}

/// A DNS subdomain, as Kubernetes object names are.
fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Checks the auth option, the input and the merged parameters against the connector with
/// the reconcile's own functions, so that the caller hears now, in the same words and for
/// the same reasons, what the Connection's status would say. Returns the auth type.
pub fn check(schemas: &ConnectorSchemas<'_>, payload: &Payload) -> Result<AuthType, ConnectError> {
    let spec = schemas.connector;
    let key = payload.auth_option_key.as_deref();
    let method = shared::auth_method(spec, key, "authOptionKey").map_err(refusal)?;
    let input = payload.input.clone().unwrap_or_default();
    schemas.input("input", &input).map_err(refusal)?;
    let merged = shared::merge_parameters(spec, payload.connector_parameters.as_ref());
    schemas
        .parameters("connectorParameters", &merged)
        .map_err(refusal)?;
    Ok(method.type_)
}

/// A check's error as a refusal: its reason as the code, its message as the message.
fn refusal(err: Error) -> ConnectError {
    let code = match err.reason() {
        "InvalidInput" => "invalid_input",
        "InvalidParameters" => "invalid_parameters",
        _ => "invalid_connector",
    };
    ConnectError::invalid(code, err.to_string())
}

fn flow_error(err: FlowError) -> ConnectError {
    if err.is_client_error() {
        ConnectError::bad_request(err.to_string())
    } else {
        ConnectError::unavailable(err.to_string())
    }
}

/// Waits (briefly) until the controller's cache has the Tenant, which the consent flow reads.
async fn wait_cached(ctx: &Context, ns: &str, tenant: &str) {
    if !ctx.caches_live() {
        return;
    }
    let key = ObjectRef::new(tenant).within(ns);
    let deadline = tokio::time::Instant::now() + CACHE_WAIT;
    while ctx.tenants.get(&key).is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
}

/// Where a static Connection got to.
pub enum Settled {
    Connected,
    Failed { reason: String, message: String },
    Pending,
}

/// Waits until the controller has reconciled the Connection's current generation and input
/// to a verdict. A missing referenced object is not one: the input Secret is written just after
/// the Connection, and the first reconcile may not see it yet.
async fn wait_ready(ctx: &Context, conn: &Connection) -> Settled {
    let api: Api<Connection> =
        Api::namespaced(ctx.client.clone(), &conn.namespace().unwrap_or_default());
    let generation = conn.meta().generation;
    // The input as this request wrote it: a verdict on an earlier input is not the answer.
    let input_at = conn.annotations().get(INPUT_UPDATED_AT);
    let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(now)) = api.get_opt(&conn.name_any()).await
            && let Some(status) = &now.status
            && status.observed_generation >= generation
            && status.observed_input_at.as_ref() == input_at
            && let Some(ready) = conditions::find(&status.conditions, READY)
        {
            if conditions::is_true(&status.conditions, READY) == Some(true) {
                return Settled::Connected;
            }
            if status.state != Some(ConnectionState::Pending) {
                return Settled::Failed {
                    reason: ready.reason.to_string(),
                    message: ready.message.clone(),
                };
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Settled::Pending
}

/// Builds the answer, as a redirect or page for a form post and as JSON otherwise.
struct Reply {
    form: bool,
    namespace: String,
    tenant: String,
    connection: String,
    redirect: Option<String>,
}

impl Reply {
    fn json(&self, state: &str, extra: Value) -> Response {
        let mut body = json!({
            "namespace": self.namespace,
            "tenant": self.tenant,
            "connection": self.connection,
            "state": state,
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(body),
        )
            .into_response()
    }

    fn consent(&self, url: url::Url) -> Response {
        if self.form {
            return Redirect::to(url.as_str()).into_response();
        }
        self.json("AuthorizationRequired", json!({"location": url.as_str()}))
    }

    /// The redirect back to the caller's `redirectUri`, with where the Connection got to.
    fn back(&self, pairs: &[(&str, &str)]) -> Option<String> {
        let mut url = url::Url::parse(self.redirect.as_deref()?).ok()?;
        url.query_pairs_mut()
            .append_pair(
                "connection",
                &format!("{}/{}", self.namespace, self.connection),
            )
            .extend_pairs(pairs);
        Some(url.to_string())
    }

    fn settled(&self, settled: Settled) -> Response {
        let (state, pairs, title, message): (&str, Vec<(&str, &str)>, &str, String) = match &settled
        {
            Settled::Connected => (
                "Connected",
                vec![("status", "connected")],
                "Connected",
                format!("Connection {} is connected.", self.connection),
            ),
            Settled::Failed { reason, message } => (
                "Error",
                vec![("status", "error"), ("reason", reason.as_str())],
                "Not connected",
                message.clone(),
            ),
            Settled::Pending => (
                "Pending",
                vec![("status", "pending")],
                "Connecting",
                format!(
                    "Connection {} is still connecting; its status will tell.",
                    self.connection
                ),
            ),
        };
        let location = self.back(&pairs);
        if self.form {
            return match location {
                Some(to) => Redirect::to(&to).into_response(),
                None => page::page(StatusCode::OK, title, &message),
            };
        }
        let mut extra = json!({"ready": matches!(settled, Settled::Connected)});
        if let Settled::Failed { reason, message } = &settled {
            extra["reason"] = json!(reason);
            extra["message"] = json!(message);
        }
        if let Some(to) = location {
            extra["location"] = json!(to);
        }
        self.json(state, extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk_live_51HxSecretValue";

    fn refusal(payload: &Value) -> String {
        match read_payload(payload.to_string().as_bytes()) {
            Ok(_) => String::new(),
            Err(err) => err.message,
        }
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_by_field_and_type_never_quoted() {
        let message = refusal(&json!({"connector": "stripe", "input": SECRET}));
        assert_eq!(message, "the payload's field input must be an object");
        for (field, _) in PAYLOAD_FIELDS {
            let mut refused = 0;
            for wrong in [json!(SECRET), json!({"k": SECRET}), json!([SECRET])] {
                let mut payload = json!({"connector": "stripe"});
                if *field == "integrationId" {
                    payload = json!({});
                }
                payload[*field] = wrong;
                let message = refusal(&payload);
                if message.is_empty() {
                    continue;
                }
                refused += 1;
                assert!(
                    message.contains(field) && !message.contains("sk_live"),
                    "{field}: {message}"
                );
            }
            assert!(refused > 0, "{field} refuses some wrong type");
        }
    }

    #[test]
    fn every_field_of_the_payload_has_its_expected_type_described() {
        // serde lists the fields it knows when it meets an unknown one.
        let err = serde_json::from_value::<Payload>(json!({"connector": "x", "zz": 1}))
            .err()
            .unwrap()
            .to_string();
        let listed: Vec<&str> = err.split('`').skip(3).step_by(2).collect();
        assert!(listed.len() >= 7, "{err}");
        for field in listed {
            assert!(
                PAYLOAD_FIELDS.iter().any(|(f, _)| *f == field),
                "{field} is missing from PAYLOAD_FIELDS"
            );
        }
    }

    #[test]
    fn malformed_payloads_are_refused_without_quoting_them() {
        for (text, says) in [
            (format!("{{\"connector\": \"{SECRET}"), "not valid JSON"),
            (format!("\"{SECRET}\""), "must be a JSON object"),
            (
                format!("{{\"input\": {{\"apiKey\": \"{SECRET}\"}}}}"),
                "no field connector",
            ),
            (
                format!("{{\"connector\": \"stripe\", \"connectorKind\": \"{SECRET}\"}}"),
                "connectorKind must be",
            ),
        ] {
            let message = read_payload(text.as_bytes()).err().unwrap().message;
            assert!(
                message.contains(says) && !message.contains("sk_live"),
                "{text}: {message}"
            );
        }
        assert!(read_payload(b"{\"integrationId\": \"stripe\"}").is_ok());
    }
}

//! Step 3: obtain the credentials for the Connection's auth method, and render the API client
//! a workload uses with them.

use std::collections::BTreeMap;

use kube::ResourceExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::dereference::Resolved;
use crate::api::{ApiClient, AuthType, Connection};
use crate::controller::Context;
use crate::error::Error;
use crate::provider::hosts::AllowedHosts;
use crate::templates;

/// Credentials by key. Values print as `[REDACTED]` in `Debug`.
pub type Credentials = BTreeMap<String, SecretString>;

/// The API client with every template rendered: what `api-client.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedApiClient {
    pub base_uri: String,
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
}

/// The template context without credentials: `input`, `parameters`, `tenant`, `connection`.
pub fn context(conn: &Connection, resolved: &Resolved, parameters: &Map<String, Value>) -> Value {
    json!({
        "input": resolved.input.expose(),
        "parameters": parameters,
        "tenant": {
            "id": resolved.tenant.tenant_id(),
            "name": resolved.tenant.spec.display_name.clone().unwrap_or_else(|| resolved.tenant.name_any()),
            "fields": resolved.tenant_fields.expose(),
        },
        "connection": {"name": conn.name_any(), "namespace": conn.namespace()},
    })
}

/// The context with `credentials` added, for the API client and requests.
pub fn with_credentials(mut context: Value, credentials: &Credentials) -> Value {
    let exposed: Map<String, Value> = credentials
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.expose_secret().to_owned())))
        .collect();
    context["credentials"] = Value::Object(exposed);
    context
}

/// Credentials for the auth methods that need no provider call.
pub fn obtain(resolved: &Resolved, context: &Value, ctx: &Context) -> Result<Credentials, Error> {
    let auth = &resolved.auth;
    match auth.type_ {
        AuthType::Static => {
            let templates = auth.credentials.as_ref().ok_or_else(|| {
                Error::InvalidConnector(format!(
                    "{} auth type static has no credentials map",
                    resolved.connector_label
                ))
            })?;
            let value = templates::to_value(context);
            templates
                .iter()
                .map(|(key, source)| {
                    let rendered = ctx.templates.render(source, &value).map_err(|source| {
                        Error::InvalidTemplate {
                            field: format!("{} auth.credentials.{key}", resolved.connector_label),
                            source,
                        }
                    })?;
                    Ok((key.clone(), SecretString::from(rendered)))
                })
                .collect()
        }
        other => Err(Error::InvalidConnector(format!(
            "auth type {} is not supported by this version of plugboard",
            other.as_str()
        ))),
    }
}

/// Renders the API client and checks every URL it can produce against the host guard.
pub fn render_api_client(
    resolved: &Resolved,
    api_client: &ApiClient,
    context: &Value,
    ctx: &Context,
) -> Result<(RenderedApiClient, AllowedHosts), Error> {
    let label = &resolved.connector_label;
    let value = templates::to_value(context);
    let render = |field: String, source: &str| {
        ctx.templates
            .render(source, &value)
            .map_err(|source| Error::InvalidTemplate { field, source })
    };
    let render_map = |name: &str, map: &BTreeMap<String, String>| {
        map.iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    render(format!("{label} apiClient.{name}.{k}"), v)?,
                ))
            })
            .collect::<Result<BTreeMap<_, _>, Error>>()
    };
    let base_uri = render(format!("{label} apiClient.baseUri"), &api_client.base_uri)?;
    let rendered = RenderedApiClient {
        headers: render_map("headers", &api_client.headers)?,
        query: render_map("query", &api_client.query)?,
        base_uri,
    };
    let blocked = |source| Error::BlockedHost {
        field: format!("{label} apiClient"),
        source,
    };
    let allowed =
        AllowedHosts::new(&api_client.base_uri, &api_client.allowed_hosts).map_err(blocked)?;
    let url = Url::parse(&rendered.base_uri).map_err(|err| {
        Error::InvalidConnector(format!(
            "{label} apiClient.baseUri renders to an invalid URL: {err}"
        ))
    })?;
    allowed
        .check(&url, ctx.config.allow_private_networks)
        .map_err(blocked)?;
    Ok((rendered, allowed))
}

//! The API client a workload calls the provider with (the integration-engine model's
//! `makeApiClient`): the connector's `apiClient` with every template rendered over the
//! Connection's context and credentials, checked against the host guard.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use url::Url;

use super::Tools;
use super::hosts::AllowedHosts;
use crate::api::ApiClient;
use crate::error::Error;
use crate::templates;

/// The API client with every template rendered: what `api-client.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedApiClient {
    pub base_uri: String,
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    /// How each request must be signed, when the credentials are not headers (OAuth 1.0a).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing: Option<Signing>,
}

/// How a workload (or the credential proxy) must sign each request: the signature covers
/// the request, so no header in `api-client.json` can carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Signing {
    /// RFC 5849 signatures: the consumer key and secret are the connector's
    /// `clientSecretRef`; the token and its secret are `oauth_token` and
    /// `oauth_token_secret` in the credentials.
    #[serde(rename = "oauth1", rename_all = "camelCase")]
    OAuth1 { signature_method: &'static str },
}

impl RenderedApiClient {
    /// As `api-client.json` holds it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a map of strings always serializes")
    }
}

/// Renders the API client of the connector `label` and checks every URL it can produce
/// against the host guard.
pub fn render(
    label: &str,
    api_client: &ApiClient,
    context: &Value,
    tools: Tools<'_>,
) -> Result<(RenderedApiClient, AllowedHosts), Error> {
    let value = templates::to_value(context);
    let render = |field: String, source: &str| {
        tools
            .templates
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
        signing: None,
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
        .check(&url, tools.allow_private_networks)
        .map_err(blocked)?;
    Ok((rendered, allowed))
}

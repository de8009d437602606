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

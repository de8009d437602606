//! The Connector and ClusterConnector controller: checks that a connector is usable (its
//! schemas compile, its templates parse, its host patterns are valid) so that a mistake shows
//! on the connector itself, once, rather than only on each Connection that trips over it.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::Context;
use super::conditions::{self, Desired, READY, RECONCILING, STALLED};
use crate::api::{AuthMethod, ClusterConnector, Connector, ConnectorSpec, ConnectorStatus};
use crate::error::Error;
use crate::provider::hosts::AllowedHosts;
use crate::schemas;
use crate::templates::Templates;

/// Every problem with a connector's spec, each naming its field.
pub fn problems(spec: &ConnectorSpec, templates: &Templates) -> Vec<String> {
    let mut found = Vec::new();
    for (field, schema) in [
        ("spec.inputSchema", &spec.input_schema),
        ("spec.parametersSchema", &spec.parameters_schema),
        (
            "spec.customCredentialsSchema",
            &spec.custom_credentials_schema,
        ),
    ] {
        if let Some(schema) = schema
            && let Err(err) = schemas::compile(&schema.to_value())
        {
            found.push(format!("{field} does not compile: {err}"));
        }
    }
    // Every template of the connector with the field it sits in.
    let mut sources: Vec<(String, String)> = Vec::new();
    let mut check = |field: String, source: &str| sources.push((field, source.to_owned()));
    let methods: Vec<(String, &AuthMethod)> = match (&spec.auth, &spec.options) {
        (Some(auth), _) => vec![("spec.auth".to_owned(), auth)],
        (None, Some(options)) => options
            .iter()
            .map(|(k, m)| (format!("spec.options.{k}"), m))
            .collect(),
        (None, None) => Vec::new(),
    };
    for (at, method) in &methods {
        for (key, source) in method.credentials.iter().flatten() {
            check(format!("{at}.credentials.{key}"), source);
        }
    }
    if let Some(client) = &spec.api_client {
        check("spec.apiClient.baseUri".to_owned(), &client.base_uri);
        for (name, map) in [("headers", &client.headers), ("query", &client.query)] {
            for (key, source) in map {
                check(format!("spec.apiClient.{name}.{key}"), source);
            }
        }
    }
    for (at, request) in [
        ("spec.test", spec.test.as_ref().map(|t| &t.request)),
        (
            "spec.disconnect",
            spec.disconnect.as_ref().map(|d| &d.request),
        ),
    ] {
        let Some(request) = request else { continue };
        check(format!("{at}.path"), &request.path);
        for (key, source) in &request.headers {
            check(format!("{at}.headers.{key}"), source);
        }
        if let Some(body) = &request.body {
            check(format!("{at}.body"), body);
        }
    }
    for (field, source) in sources {
        if let Err(err) = templates.check(&source) {
            found.push(format!("{field}: {err}"));
        }
    }
    for (at, present) in [
        ("spec.test", spec.test.is_some()),
        ("spec.disconnect", spec.disconnect.is_some()),
    ] {
        if present && spec.api_client.is_none() {
            found.push(format!(
                "{at} needs spec.apiClient to send its request with"
            ));
        }
    }
    if let Some(client) = &spec.api_client
        && let Err(err) = AllowedHosts::new(&client.base_uri, &client.allowed_hosts)
    {
        found.push(format!("spec.apiClient.allowedHosts: {err}"));
    }
    found
}

fn desired(problems: &[String]) -> Vec<Desired> {
    if problems.is_empty() {
        return vec![
            Desired::new(
                READY,
                true,
                "Valid",
                "the connector's schemas and templates are valid",
            ),
            Desired::new(RECONCILING, false, "Valid", ""),
            Desired::new(STALLED, false, "Valid", ""),
        ];
    }
    let message = problems.join("; ");
    vec![
        Desired::new(READY, false, "InvalidConnector", message.clone()),
        Desired::new(RECONCILING, false, "InvalidConnector", ""),
        Desired::new(STALLED, true, "InvalidConnector", message),
    ]
}

/// The next status of a connector of either kind, or `None` when it would not change.
fn next_status<K: Resource>(
    object: &K,
    spec: &ConnectorSpec,
    current: Option<&ConnectorStatus>,
    ctx: &Context,
) -> Option<ConnectorStatus> {
    let current = current.cloned().unwrap_or_default();
    let generation = object.meta().generation;
    let now = Time(Timestamp::now());
    let next = ConnectorStatus {
        observed_generation: generation,
        conditions: conditions::merge(
            &current.conditions,
            &desired(&problems(spec, &ctx.templates)),
            generation,
            &now,
        ),
        ..current.clone()
    };
    (next != current).then_some(next)
}

pub async fn reconcile_namespaced(
    connector: Arc<Connector>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    ctx.metrics.reconciled("Connector", "success");
    if let Some(status) = next_status(
        connector.as_ref(),
        &connector.spec,
        connector.status.as_ref(),
        &ctx,
    ) {
        let api: Api<Connector> = Api::namespaced(
            ctx.client.clone(),
            &connector.namespace().unwrap_or_default(),
        );
        ctx.apply_status(api, connector.as_ref(), &status).await?;
    }
    Ok(Action::await_change())
}

pub async fn reconcile_cluster(
    connector: Arc<ClusterConnector>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    ctx.metrics.reconciled("ClusterConnector", "success");
    if let Some(status) = next_status(
        connector.as_ref(),
        &connector.spec.0,
        connector.status.as_ref(),
        &ctx,
    ) {
        let api: Api<ClusterConnector> = Api::all(ctx.client.clone());
        ctx.apply_status(api, connector.as_ref(), &status).await?;
    }
    Ok(Action::await_change())
}

pub fn error_policy<K>(_object: Arc<K>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(reason = err.reason(), error = %err, "connector reconcile failed");
    Action::requeue(std::time::Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ConnectorSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_sound_connector_has_no_problems() {
        let s = spec(
            "auth: {type: static, credentials: {apiKey: '{{ input.apiKey }}'}}\n\
             inputSchema: {type: object, required: [apiKey]}\n\
             apiClient: {baseUri: 'https://api.stripe.com', headers: {Authorization: 'Bearer {{ credentials.apiKey }}'}}\n\
             test: {path: /v1/account}\n",
        );
        assert_eq!(problems(&s, &Templates::default()), Vec::<String>::new());
    }

    #[test]
    fn each_problem_names_its_field() {
        let s = spec(
            "options: {key: {type: static, credentials: {apiKey: '{{ input.apiKey '}}}\n\
             inputSchema: {type: strnig}\n\
             test: {path: /v1/account}\n",
        );
        let found = problems(&s, &Templates::default());
        let text = found.join("\n");
        assert!(text.contains("spec.inputSchema does not compile"), "{text}");
        assert!(
            text.contains("spec.options.key.credentials.apiKey: syntax error"),
            "{text}"
        );
        assert!(text.contains("spec.test needs spec.apiClient"), "{text}");
        assert_eq!(found.len(), 3, "{text}");
    }
}

//! Templates (minijinja, undefined variables are errors, as plugboard renders them).

use minijinja::{Environment, UndefinedBehavior};
use plugboard::api::{Connection, ConnectorSpec, HttpRequest};
use serde_json::{Map, Value, json};

use super::examples::{Doc, Examples, connector_spec};

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// Every template a connector holds, with where it sits.
fn all(spec: &ConnectorSpec) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (at, method) in super::refs::auth_methods(spec) {
        for (key, source) in method.credentials.iter().flatten() {
            found.push((format!("{at}.credentials.{key}"), source.clone()));
        }
    }
    if let Some(client) = &spec.api_client {
        found.push(("spec.apiClient.baseUri".into(), client.base_uri.clone()));
        for (key, source) in &client.headers {
            found.push((format!("spec.apiClient.headers.{key}"), source.clone()));
        }
        for (key, source) in &client.query {
            found.push((format!("spec.apiClient.query.{key}"), source.clone()));
        }
    }
    let requests = [
        ("spec.test", spec.test.as_ref().map(|t| &t.request)),
        (
            "spec.disconnect",
            spec.disconnect.as_ref().map(|d| &d.request),
        ),
    ];
    for (at, request) in requests {
        found.extend(request.into_iter().flat_map(|r| request_templates(at, r)));
    }
    found
}

fn request_templates(at: &str, request: &HttpRequest) -> Vec<(String, String)> {
    let mut found = vec![(format!("{at}.path"), request.path.clone())];
    for (key, source) in &request.headers {
        found.push((format!("{at}.headers.{key}"), source.clone()));
    }
    if let Some(body) = &request.body {
        found.push((format!("{at}.body"), body.clone()));
    }
    found
}

/// Problems with one connector's templates (unlabelled).
pub fn check(doc: &Doc) -> Vec<String> {
    let env = environment();
    all(&connector_spec(doc))
        .into_iter()
        .filter_map(|(at, source)| {
            let err = env.template_from_str(&source).err()?;
            Some(format!("{at} is not a valid template: {err}"))
        })
        .collect()
}

/// A Connection's `apiClient.baseUri` rendered with its merged parameters (or with
/// `overrides` in place of its `connectorParameters`), and the connector's allowedHosts.
pub fn base_uri(ex: &Examples, doc: &Doc, overrides: Option<Value>) -> (String, Vec<String>) {
    let connection: Connection = doc.typed();
    let name = &connection.spec.connector_ref.name;
    let connector = ex.find("Connector", doc.namespace(), name);
    let spec = connector_spec(connector.expect("the connection's connector exists"));
    let mut parameters: Map<String, Value> = spec
        .parameters
        .as_ref()
        .map(|p| p.0.clone())
        .unwrap_or_default();
    let given = connection.spec.connector_parameters.map(|p| p.to_value());
    if let Some(Value::Object(given)) = overrides.or(given) {
        parameters.extend(given);
    }
    let client = spec.api_client.expect("the connector has an apiClient");
    let context = json!({ "parameters": parameters });
    let uri = environment()
        .render_str(&client.base_uri, minijinja::value::Serde(&context))
        .unwrap_or_else(|err| panic!("{}: baseUri does not render: {err}", doc.label()));
    (uri, client.allowed_hosts)
}

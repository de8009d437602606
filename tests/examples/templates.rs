//! A Connection's API base URI, rendered as plugboard renders it (minijinja, undefined
//! variables are errors).

use minijinja::{Environment, UndefinedBehavior};
use plugboard::api::Connection;
use serde_json::{Map, Value, json};

use super::examples::{Doc, Examples, connector_spec};

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
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

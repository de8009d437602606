//! (d) The JSON Schemas a connector embeds, and what Connections give them.

use std::collections::BTreeSet;

use plugboard::api::{Connection, ConnectorKind, ConnectorSpec};
use serde_json::{Map, Value};

use super::examples::{Doc, Examples, connector_spec};

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Compiles a draft 2020-12 schema, or says why it does not.
fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    if let Some(declared) = schema.get("$schema")
        && declared != DRAFT
    {
        return Err(format!("declares $schema {declared}, not {DRAFT}"));
    }
    jsonschema::draft202012::new(schema).map_err(|err| err.to_string())
}

/// What `instance` breaks, as `pointer: message`, with values masked (input may hold
/// a key).
fn violations(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|err| {
            let at = err.instance_path().as_str().to_owned();
            let at = if at.is_empty() { "/".to_owned() } else { at };
            format!("{at}: {}", err.masked())
        })
        .collect()
}

/// The schemas a Connector or ClusterConnector embeds compile, and the OAuth app
/// Secrets it names satisfy its `customCredentialsSchema`.
pub fn check_connector(ex: &Examples, doc: &Doc) -> Vec<String> {
    let spec = connector_spec(doc);
    let mut problems = Vec::new();
    for (field, schema) in [
        ("inputSchema", &spec.input_schema),
        ("parametersSchema", &spec.parameters_schema),
        ("customCredentialsSchema", &spec.custom_credentials_schema),
    ] {
        if let Some(schema) = schema
            && let Err(err) = compile(&schema.to_value())
        {
            problems.push(format!(
                "spec.{field} does not compile as draft 2020-12: {err}"
            ));
        }
    }
    problems.extend(client_secrets(ex, doc, &spec));
    problems
}

fn client_secrets(ex: &Examples, doc: &Doc, spec: &ConnectorSpec) -> Vec<String> {
    let Some(schema) = &spec.custom_credentials_schema else {
        return Vec::new();
    };
    let Ok(validator) = compile(&schema.to_value()) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    for (at, method) in super::refs::auth_methods(spec) {
        let Some(secret) = &method.client_secret_ref else {
            continue;
        };
        let namespace = secret.namespace.as_deref().or(doc.namespace());
        if let Some(values) = ex.secret_values(namespace, &secret.name) {
            for v in violations(&validator, &values) {
                problems.push(format!(
                    "{at}.clientSecretRef: Secret {} breaks \
                     spec.customCredentialsSchema at {v}",
                    secret.name
                ));
            }
        }
    }
    problems
}

/// A Connection's merged parameters and inline input satisfy its connector's schemas.
pub fn check_connection(ex: &Examples, doc: &Doc) -> Vec<String> {
    let connection: Connection = doc.typed();
    let r = &connection.spec.connector_ref;
    let found = match connection.connector_kind() {
        ConnectorKind::Connector => ex.find("Connector", doc.namespace(), &r.name),
        ConnectorKind::ClusterConnector => ex.find("ClusterConnector", None, &r.name),
    };
    // A dangling connectorRef is the reference check's to report.
    let Some(connector) = found else {
        return Vec::new();
    };
    let spec = connector_spec(connector);
    let mut problems = parameters(&connection, &spec, &connector.label());
    problems.extend(input(&connection, &spec, &connector.label()));
    problems
}

/// `parameters` < `connectorParameters`, key by key at the top level.
fn parameters(connection: &Connection, spec: &ConnectorSpec, connector: &str) -> Vec<String> {
    let mut merged: Map<String, Value> = spec
        .parameters
        .as_ref()
        .map(|p| p.0.clone())
        .unwrap_or_default();
    if let Some(overrides) = &connection.spec.connector_parameters {
        merged.extend(overrides.0.clone());
    }
    let Some(schema) = &spec.parameters_schema else {
        return match &connection.spec.connector_parameters {
            Some(_) => vec![format!(
                "spec.connectorParameters is set but {connector} has no parametersSchema \
                 to check it"
            )],
            None => Vec::new(),
        };
    };
    let Ok(validator) = compile(&schema.to_value()) else {
        return Vec::new(); // reported on the connector
    };
    violations(&validator, &Value::Object(merged))
        .into_iter()
        .map(|v| {
            format!("merged connector parameters break the parametersSchema of {connector} at {v}")
        })
        .collect()
}

/// Inline `input` against `inputSchema`; keys that come from `inputFrom` are not
/// required inline, but must be declared by the schema.
fn input(connection: &Connection, spec: &ConnectorSpec, connector: &str) -> Vec<String> {
    let Some(schema) = &spec.input_schema else {
        return Vec::new();
    };
    let from: BTreeSet<&str> = connection
        .spec
        .input_from
        .iter()
        .map(|f| f.field.as_str())
        .collect();
    let mut schema = schema.to_value();
    let mut problems = Vec::new();
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for field in from.iter().filter(|f| !properties.contains_key(**f)) {
            problems.push(format!(
                "spec.inputFrom gives `{field}`, which the inputSchema of {connector} \
                 does not declare"
            ));
        }
    }
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|key| !key.as_str().is_some_and(|k| from.contains(k)));
    }
    let Ok(validator) = compile(&schema) else {
        return problems; // reported on the connector
    };
    let inline = connection.spec.input.as_ref().map(|i| i.to_value());
    let inline = inline.unwrap_or_else(|| Value::Object(Map::new()));
    for v in violations(&validator, &inline) {
        problems.push(format!(
            "spec.input breaks the inputSchema of {connector} at {v}"
        ));
    }
    problems
}

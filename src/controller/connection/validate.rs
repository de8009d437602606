//! Step 2: check the input and the connector parameters against the connector's schemas.

use serde_json::{Map, Value};

use super::dereference::Resolved;
use crate::api::Connection;
use crate::error::Error;
use crate::schemas;

/// The connector's `parameters` overridden key by key, at the top level, by the
/// Connection's `connectorParameters`, as the integration-engine model defines them.
pub fn merged_parameters(resolved: &Resolved, conn: &Connection) -> Map<String, Value> {
    let mut merged = resolved
        .connector
        .parameters
        .as_ref()
        .map(|p| p.0.clone())
        .unwrap_or_default();
    if let Some(overrides) = &conn.spec.connector_parameters {
        for (key, value) in &overrides.0 {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

/// Validates the merged input against `inputSchema` and the merged parameters against
/// `parametersSchema`. A schema that does not compile is the connector's fault, and says so.
pub fn check(resolved: &Resolved, parameters: &Map<String, Value>) -> Result<(), Error> {
    let connector = &resolved.connector;
    let label = &resolved.connector_label;
    if let Some(schema) = &connector.input_schema {
        let validator = schemas::compile(&schema.to_value()).map_err(|err| {
            Error::InvalidConnector(format!("{label} spec.inputSchema does not compile: {err}"))
        })?;
        let found =
            schemas::violations(&validator, &Value::Object(resolved.input.expose().clone()));
        if !found.is_empty() {
            return Err(Error::InvalidInput(format!(
                "input (spec.input with spec.inputFrom) does not match {label} spec.inputSchema: {}",
                schemas::describe(&found)
            )));
        }
    }
    if let Some(schema) = &connector.parameters_schema {
        let validator = schemas::compile(&schema.to_value()).map_err(|err| {
            Error::InvalidConnector(format!(
                "{label} spec.parametersSchema does not compile: {err}"
            ))
        })?;
        let found = schemas::violations(&validator, &Value::Object(parameters.clone()));
        if !found.is_empty() {
            return Err(Error::InvalidParameters(format!(
                "connector parameters ({label} spec.parameters with spec.connectorParameters) do not match spec.parametersSchema: {}",
                schemas::describe(&found)
            )));
        }
    }
    Ok(())
}

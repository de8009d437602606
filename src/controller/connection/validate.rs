//! Validate: check what gather read against what the connector demands — the input and the
//! connector parameters against its schemas, the OAuth app against
//! `customCredentialsSchema`, the signing key's presence, and what the auth method itself
//! requires (its endpoints past the host guard). Pure: no I/O.

use secrecy::{ExposeSecret, SecretSlice};
use serde_json::{Map, Value};

use super::dereference::Resolved;
use super::gather::Observed;
use crate::api::ConnectorSpec;
use crate::auth::method::{ConnectorSecrets, SigningKey};
use crate::auth::oauth2_app;
use crate::error::Error;
use crate::schemas;

/// Everything validate checks, in order; the connector Secrets as the method uses them.
pub fn all(obs: &Observed<'_>, allow_private_networks: bool) -> Result<ConnectorSecrets, Error> {
    check(&obs.resolved, &obs.parameters)?;
    let secrets = connector_secrets(obs)?;
    obs.method
        .check(&obs.inputs(&secrets), allow_private_networks)?;
    Ok(secrets)
}

/// The OAuth app and signing key from the Secrets gather read, checked.
pub fn connector_secrets(obs: &Observed<'_>) -> Result<ConnectorSecrets, Error> {
    let label = &obs.resolved.connector_label;
    let needs = obs.method.needs();
    let mut secrets = ConnectorSecrets::default();
    if needs.app {
        let read = obs.referenced.app.as_ref().ok_or_else(|| {
            Error::InvalidConnector(format!("{label} auth needs clientSecretRef"))
        })?;
        let values: Map<String, Value> = read
            .data
            .iter()
            .map(|(k, v)| {
                let text = String::from_utf8_lossy(v.expose_secret()).into_owned();
                (k.clone(), Value::String(text))
            })
            .collect();
        if let Some(schema) = &obs.resolved.connector.custom_credentials_schema {
            let validator = schemas::compile(&schema.to_value()).map_err(|err| {
                Error::InvalidConnector(format!(
                    "{label} spec.customCredentialsSchema does not compile: {err}"
                ))
            })?;
            let found = schemas::violations(&validator, &Value::Object(values.clone()));
            if !found.is_empty() {
                return Err(Error::InvalidConnector(format!(
                    "Secret {:?} ({}) does not match spec.customCredentialsSchema: {}",
                    read.name,
                    read.field,
                    schemas::describe(&found)
                )));
            }
        }
        secrets.app = Some(oauth2_app::app(&read.name, &read.field, &values)?);
    }
    if needs.signing_key {
        let field = format!("{label} auth.signingKeyRef");
        let reference = obs.resolved.auth.signing_key_ref.as_ref();
        let (Some(read), Some(reference)) = (&obs.referenced.signing_key, reference) else {
            return Err(Error::InvalidConnector(format!(
                "{field} is required for tenant-token"
            )));
        };
        let key = read
            .data
            .get(&reference.key)
            .ok_or_else(|| Error::SecretKeyNotFound {
                name: read.name.clone(),
                key: reference.key.clone(),
                field: field.clone(),
            })?;
        secrets.signing_key = Some(SigningKey {
            bytes: SecretSlice::from(key.expose_secret().to_vec()),
            field,
        });
    }
    Ok(secrets)
}

/// Validates the merged input against `inputSchema` and the merged parameters against
/// `parametersSchema`. A schema that does not compile is the connector's fault, and says so.
pub fn check(resolved: &Resolved, parameters: &Map<String, Value>) -> Result<(), Error> {
    let (connector, label) = (&resolved.connector, &resolved.connector_label);
    let what = "input (spec.input with spec.inputFrom)";
    input(connector, label, what, resolved.input.expose())?;
    let what =
        format!("connector parameters ({label} spec.parameters with spec.connectorParameters)");
    self::parameters(connector, label, &what, parameters)
}

/// Checks `input` (described as `what`) against the connector `label`'s `inputSchema`.
pub fn input(
    connector: &ConnectorSpec,
    label: &str,
    what: &str,
    input: &Map<String, Value>,
) -> Result<(), Error> {
    let Some(schema) = &connector.input_schema else {
        return Ok(());
    };
    let validator = schemas::compile(&schema.to_value()).map_err(|err| {
        Error::InvalidConnector(format!("{label} spec.inputSchema does not compile: {err}"))
    })?;
    let found = schemas::violations(&validator, &Value::Object(input.clone()));
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidInput(format!(
        "{what} does not match {label} spec.inputSchema: {}",
        schemas::describe(&found)
    )))
}

/// Checks merged connector parameters (described as `what`) against the connector
/// `label`'s `parametersSchema`.
pub fn parameters(
    connector: &ConnectorSpec,
    label: &str,
    what: &str,
    parameters: &Map<String, Value>,
) -> Result<(), Error> {
    let Some(schema) = &connector.parameters_schema else {
        return Ok(());
    };
    let validator = schemas::compile(&schema.to_value()).map_err(|err| {
        Error::InvalidConnector(format!(
            "{label} spec.parametersSchema does not compile: {err}"
        ))
    })?;
    let found = schemas::violations(&validator, &Value::Object(parameters.clone()));
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidParameters(format!(
        "{what} do not match spec.parametersSchema: {}",
        schemas::describe(&found)
    )))
}

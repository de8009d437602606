//! Validate: check what gather read against what the connector demands — the input and the
//! connector parameters against its schemas, the OAuth app against
//! `customCredentialsSchema`, the signing key's presence, and what the auth method itself
//! requires (its endpoints past the host guard). Pure: no I/O. Schemas compile once per
//! connector generation ([`schemas::Compiled`]).

use secrecy::{ExposeSecret, SecretSlice};
use serde_json::{Map, Value};

use super::gather::Observed;
use crate::api::ConnectorSpec;
use crate::auth::method::{ConnectorSecrets, SigningKey};
use crate::auth::oauth2_app;
use crate::error::Error;
use crate::schemas::{self, Compiled, Owner};

/// A connector's schemas, as a check sees them.
pub struct Schemas<'a> {
    pub connector: &'a ConnectorSpec,
    /// `Connector/name` or `ClusterConnector/name`, for messages.
    pub label: &'a str,
    pub owner: Option<&'a Owner>,
    pub compiled: &'a Compiled,
}

impl Schemas<'_> {
    /// Checks `instance` against the connector's schema `which`: the violations, described
    /// as one line; a schema that does not compile is the connector's fault, and says so.
    fn violations(
        &self,
        which: &'static str,
        schema: Option<&Value>,
        instance: &Map<String, Value>,
    ) -> Result<Option<String>, Error> {
        let Some(schema) = schema else {
            return Ok(None);
        };
        let validator = self
            .compiled
            .get(self.owner, which, schema)
            .map_err(|err| {
                Error::InvalidConnector(format!(
                    "{} spec.{which} does not compile: {err}",
                    self.label
                ))
            })?;
        let found = schemas::violations(&validator, &Value::Object(instance.clone()));
        Ok((!found.is_empty()).then(|| schemas::describe(&found)))
    }

    /// Checks `input` (described as `what`) against `inputSchema`.
    pub fn input(&self, what: &str, input: &Map<String, Value>) -> Result<(), Error> {
        let schema = self.connector.input_schema.as_ref().map(|s| s.to_value());
        match self.violations("inputSchema", schema.as_ref(), input)? {
            None => Ok(()),
            Some(found) => Err(Error::InvalidInput(format!(
                "{what} does not match {} spec.inputSchema: {found}",
                self.label
            ))),
        }
    }

    /// Checks merged connector parameters (described as `what`) against `parametersSchema`.
    pub fn parameters(&self, what: &str, parameters: &Map<String, Value>) -> Result<(), Error> {
        let schema = self
            .connector
            .parameters_schema
            .as_ref()
            .map(|s| s.to_value());
        match self.violations("parametersSchema", schema.as_ref(), parameters)? {
            None => Ok(()),
            Some(found) => Err(Error::InvalidParameters(format!(
                "{what} do not match spec.parametersSchema: {found}"
            ))),
        }
    }

    /// Checks the OAuth app's values, from the Secret `name` named by `field`, against
    /// `customCredentialsSchema`.
    fn app(&self, name: &str, field: &str, values: &Map<String, Value>) -> Result<(), Error> {
        let schema = self
            .connector
            .custom_credentials_schema
            .as_ref()
            .map(|s| s.to_value());
        match self.violations("customCredentialsSchema", schema.as_ref(), values)? {
            None => Ok(()),
            Some(found) => Err(Error::InvalidConnector(format!(
                "Secret {name:?} ({field}) does not match spec.customCredentialsSchema: {found}"
            ))),
        }
    }
}

/// Everything validate checks, in order; the connector Secrets as the method uses them.
pub fn all(obs: &Observed<'_>, allow_private_networks: bool) -> Result<ConnectorSecrets, Error> {
    let schemas = obs.schemas();
    schemas.input(
        "input (spec.input with spec.inputFrom)",
        obs.resolved.input.expose(),
    )?;
    let what = format!(
        "connector parameters ({} spec.parameters with spec.connectorParameters)",
        schemas.label
    );
    schemas.parameters(&what, &obs.parameters)?;
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
        obs.schemas().app(&read.name, &read.field, &values)?;
        let at = (read.namespace.as_deref(), read.name.as_str());
        secrets.app = Some(oauth2_app::app(at, &read.field, &values)?);
    }
    if needs.signing_key {
        secrets.signing_key = Some(signing_key(obs)?);
    }
    Ok(secrets)
}

fn signing_key(obs: &Observed<'_>) -> Result<SigningKey, Error> {
    let field = format!("{} auth.signingKeyRef", obs.resolved.connector_label);
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
            namespace: read.namespace.clone(),
            name: read.name.clone(),
            key: reference.key.clone(),
            field: field.clone(),
        })?;
    Ok(SigningKey {
        bytes: SecretSlice::from(key.expose_secret().to_vec()),
        field,
    })
}

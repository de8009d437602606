//! Validate: check what gather read against what the connector demands — the input and the
//! connector parameters against its schemas, the OAuth app against
//! `customCredentialsSchema`, the signing key's presence, and what the auth method itself
//! requires (its endpoints past the host guard). Pure: no I/O. Schemas compile once per
//! connector generation ([`crate::schemas::Compiled`]).

use secrecy::{ExposeSecret, SecretSlice};
use serde_json::{Map, Value};

use super::gather::Observed;
use crate::auth::method::{ConnectorSecrets, SigningKey};
use crate::auth::oauth2_app;
use crate::error::Error;

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
        secrets.signing_key = Some(signing_key_of(obs)?);
    }
    Ok(secrets)
}

fn signing_key_of(obs: &Observed<'_>) -> Result<SigningKey, Error> {
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

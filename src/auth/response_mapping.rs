//! A connector's mapping from a provider's answer to stored credentials: a map from
//! credential key to a template over `response` (`credentialsFromTokenResponse`,
//! `credentialsFromRefreshResponse`).

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::provider::Tools;
use crate::store::Credentials;
use crate::templates;

/// Adds to `credentials` the keys `mapping` renders from `response`; `field` names the
/// mapping in errors (`Connector/x auth.credentialsFromTokenResponse`).
pub fn apply(
    credentials: &mut Credentials,
    response: &Map<String, Value>,
    mapping: Option<&BTreeMap<String, String>>,
    tools: Tools<'_>,
    field: &str,
) -> Result<(), Error> {
    let Some(map) = mapping else {
        return Ok(());
    };
    let context = templates::to_value(&serde_json::json!({ "response": response }));
    for (key, source) in map {
        let rendered =
            tools
                .templates
                .render(source, &context)
                .map_err(|source| Error::InvalidTemplate {
                    field: format!("{field}.{key}"),
                    source,
                })?;
        credentials.insert(key.clone(), SecretString::from(rendered));
    }
    Ok(())
}

//! The `static` auth method: the person's input is the credential (an API key, a user and
//! password). The connector's `credentials` map of templates turns the input into it, the
//! integration-engine model's `getCredentialsFromConnectionParameters`.

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use secrecy::SecretString;

use super::method::{Fresh, Held, Inputs, Method, Reread};
use crate::error::Error;
use crate::provider::Tools;
use crate::store::Credentials;
use crate::templates;

pub struct Static;

/// The credentials the connector's `credentials` templates render from the input.
pub fn render(inputs: &Inputs<'_>) -> Result<Credentials, Error> {
    let templates = inputs.auth.credentials.as_ref().ok_or_else(|| {
        Error::InvalidConnector(format!(
            "{} auth type static has no credentials map",
            inputs.label
        ))
    })?;
    let value = templates::to_value(inputs.context);
    templates
        .iter()
        .map(|(key, source)| {
            let rendered = inputs.templates.render(source, &value).map_err(|source| {
                Error::InvalidTemplate {
                    field: format!("{} auth.credentials.{key}", inputs.label),
                    source,
                }
            })?;
            Ok((key.clone(), SecretString::from(rendered)))
        })
        .collect()
}

impl Method for Static {
    /// Nothing is kept: the credentials are rendered from the input on every reconcile, and
    /// the store compares them with what it holds.
    fn inspect(&self, _inputs: &Inputs<'_>) -> Result<Option<Held>, Error> {
        Ok(None)
    }

    fn obtain<'a>(
        &'a self,
        inputs: &'a Inputs<'a>,
        _tools: Tools<'a>,
        _reread: &'a dyn Reread,
        _now: Timestamp,
    ) -> BoxFuture<'a, Result<Fresh, Error>> {
        let rendered = render(inputs).map(|credentials| Fresh {
            credentials,
            ..Fresh::default()
        });
        async move { rendered }.boxed()
    }
}

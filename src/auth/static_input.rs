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
use crate::templates;

pub struct Static;

impl Static {
    fn render(inputs: &Inputs<'_>, tools: Tools<'_>) -> Result<Fresh, Error> {
        let templates = inputs.auth.credentials.as_ref().ok_or_else(|| {
            Error::InvalidConnector(format!(
                "{} auth type static has no credentials map",
                inputs.label
            ))
        })?;
        let value = templates::to_value(inputs.context);
        let credentials = templates
            .iter()
            .map(|(key, source)| {
                let rendered = tools.templates.render(source, &value).map_err(|source| {
                    Error::InvalidTemplate {
                        field: format!("{} auth.credentials.{key}", inputs.label),
                        source,
                    }
                })?;
                Ok((key.clone(), SecretString::from(rendered)))
            })
            .collect::<Result<_, Error>>()?;
        Ok(Fresh {
            credentials,
            ..Fresh::default()
        })
    }
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
        tools: Tools<'a>,
        _reread: &'a dyn Reread,
        _now: Timestamp,
    ) -> BoxFuture<'a, Result<Fresh, Error>> {
        let rendered = Self::render(inputs, tools);
        async move { rendered }.boxed()
    }
}

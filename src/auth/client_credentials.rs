//! The `client-credentials` auth method: the OAuth 2.0 client-credentials grant, asked again
//! ahead of expiry. No person is involved, so no consent is ever needed.

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;

use super::method::{Fresh, Held, Inputs, Method, Needs, Reread};
use super::oauth2 as flow;
use super::oauth2_app::{self as app, app_of};
use crate::api::AuthMethod;
use crate::error::Error;
use crate::provider::Tools;

pub struct ClientCredentials;

impl Method for ClientCredentials {
    fn needs(&self) -> Needs {
        app::NEEDS
    }

    fn check(&self, inputs: &Inputs<'_>, allow_private: bool) -> Result<(), Error> {
        app::guard_endpoints(inputs.label, inputs.auth, allow_private)
    }

    fn inspect(&self, inputs: &Inputs<'_>) -> Result<Option<Held>, Error> {
        // The grant needs no person and no refresh token: always renewable.
        Ok(Some(app::held(inputs.stored, true, false)))
    }

    fn obtain<'a>(
        &'a self,
        inputs: &'a Inputs<'a>,
        tools: Tools<'a>,
        _reread: &'a dyn Reread,
        _now: Timestamp,
    ) -> BoxFuture<'a, Result<Fresh, Error>> {
        grant(inputs, tools).boxed()
    }

    fn revokes(&self, auth: &AuthMethod) -> bool {
        auth.revoke_uri.is_some()
    }

    fn revoke<'a>(
        &'a self,
        inputs: &'a Inputs<'a>,
        tools: Tools<'a>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        app::revoke(inputs, tools)
    }
}

async fn grant(inputs: &Inputs<'_>, tools: Tools<'_>) -> Result<Fresh, Error> {
    let app = app_of(inputs)?;
    let ask = app::ask(
        inputs.auth,
        inputs.parameters,
        inputs.auth.extra_token_params.as_ref(),
    );
    let started = std::time::Instant::now();
    let result = flow::client_credentials(tools.http, app, &app::endpoints(inputs.auth), &ask)
        .await
        .map_err(|err| app::without_client_secret(err, app));
    app::count(tools, &result, started.elapsed());
    let tokens = result.map_err(app::token_error)?;
    let mut credentials = app::with_tokens(inputs.stored.clone(), &tokens);
    let mapping = inputs.auth.credentials_from_token_response.as_ref();
    let unusable = app::map_response(&mut credentials, &tokens, mapping, tools, inputs.label).err();
    Ok(Fresh {
        credentials,
        expires_at: tokens.expires_at,
        issued: true,
        unusable,
    })
}

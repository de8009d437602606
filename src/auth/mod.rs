//! Auth methods: how each `type` obtains, refreshes and revokes credentials, behind the
//! [`method::Method`] trait, and the signed values the connect flow hands out.

pub mod access_token;
pub mod authorization_code;
pub mod client_credentials;
pub mod connect_session;
pub mod jwt;
pub mod link;
pub mod method;
pub mod oauth1;
pub mod oauth2;
pub mod oauth2_app;
pub mod refresh;
pub mod response_mapping;
pub mod state;
pub mod static_input;
pub mod tenant_token;
pub mod token_response;

use crate::api::{AuthMethod, AuthType};
use crate::error::Error;

/// The auth method `auth` describes, or why this build has none: the method of its type,
/// with its credentials exchanged by the connector's `refresh` when it defines one. A new
/// `type` is one file that implements [`method::Method`], and a line in each list here.
pub fn method_of(auth: &AuthMethod) -> Result<&'static dyn method::Method, Error> {
    use refresh::Refreshing;
    static STATIC: Refreshing = Refreshing(&static_input::Static);
    static OAUTH2: Refreshing = Refreshing(&authorization_code::AuthorizationCode);
    static OAUTH1: Refreshing = Refreshing(&oauth1::OAuth1);
    static CLIENT_CREDENTIALS: Refreshing = Refreshing(&client_credentials::ClientCredentials);
    static TENANT_TOKEN: Refreshing = Refreshing(&tenant_token::TenantToken);
    let plain = of_type(auth.type_)?;
    if auth.refresh.is_none() {
        return Ok(plain);
    }
    Ok(match auth.type_ {
        AuthType::Static => &STATIC,
        AuthType::Oauth2 => &OAUTH2,
        AuthType::Oauth1 => &OAUTH1,
        AuthType::ClientCredentials => &CLIENT_CREDENTIALS,
        AuthType::TenantToken => &TENANT_TOKEN,
        AuthType::Proxy => plain,
    })
}

fn of_type(type_: AuthType) -> Result<&'static dyn method::Method, Error> {
    match type_ {
        AuthType::Static => Ok(&static_input::Static),
        AuthType::Oauth2 => Ok(&authorization_code::AuthorizationCode),
        AuthType::Oauth1 => Ok(&oauth1::OAuth1),
        AuthType::ClientCredentials => Ok(&client_credentials::ClientCredentials),
        AuthType::TenantToken => Ok(&tenant_token::TenantToken),
        other => Err(Error::InvalidConnector(format!(
            "auth type {} is not supported by this version of plugboard",
            other.as_str()
        ))),
    }
}

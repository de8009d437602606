//! Auth methods: how each `type` obtains, refreshes and revokes credentials, behind the
//! [`method::Method`] trait, and the signed values the connect flow hands out.

pub mod access_token;
pub mod authorization_code;
pub mod client_credentials;
pub mod jwt;
pub mod link;
pub mod method;
pub mod oauth1;
pub mod oauth2;
pub mod oauth2_app;
pub mod response_mapping;
pub mod state;
pub mod static_input;
pub mod tenant_token;
pub mod token_response;

use crate::api::AuthType;
use crate::error::Error;

/// The auth method of `type_`, or why this build has none. A new `type` is one file that
/// implements [`method::Method`], and one line here.
pub fn method_of(type_: AuthType) -> Result<&'static dyn method::Method, Error> {
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

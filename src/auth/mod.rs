//! Auth methods: how each `type` obtains, refreshes and revokes credentials, behind the
//! [`method::Method`] trait, and the signed values the connect flow hands out.

pub mod access_token;
pub mod authorization_code;
pub mod client_credentials;
pub mod jwt;
pub mod link;
pub mod method;
pub mod oauth2;
pub mod oauth2_app;
pub mod state;
pub mod static_input;
pub mod tenant_token;

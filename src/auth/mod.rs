//! Auth methods: how each `type` obtains, refreshes and revokes credentials.

pub mod access_token;
pub mod oauth2;
pub mod state;
pub mod tenant_token;

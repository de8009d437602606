//! Calls to the providers' APIs: the HTTP client every auth method and test uses, the guard
//! that decides which hosts it may reach, the limit on concurrent requests per host, the
//! rendered API client and the connector's own requests (test, disconnect) sent through it.

pub mod api_client;
pub mod hosts;
pub mod http;
pub mod limit;
pub mod request;
pub mod signed;

/// What a call to a provider needs, lent by the operator for the length of a reconcile.
#[derive(Clone, Copy)]
pub struct Tools<'a> {
    pub http: &'a reqwest::Client,
    pub templates: &'a crate::templates::Templates,
    pub metrics: &'a crate::metrics::Metrics,
    /// Whether provider URLs may reach loopback and private addresses.
    pub allow_private_networks: bool,
}

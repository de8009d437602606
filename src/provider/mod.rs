//! Calls to the providers' APIs: the HTTP client every auth method and test uses, and the
//! guard that decides which hosts it may reach, and the limit on concurrent requests per host.

pub mod hosts;
pub mod http;
pub mod limit;

//! The HTTP client for provider calls (tests, disconnects, token endpoints).

use std::sync::Arc;
use std::time::Duration;

use super::hosts::GuardedResolver;

/// A provider that has not accepted a TCP connection by then is down or unreachable; waiting
/// longer only delays the retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest one provider call may take, start to end. Test and token endpoints answer in
/// well under a second; this bounds a slow or stalled one so a reconcile cannot hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of a provider's answer a status message may quote: enough to see an error code,
/// too little to carry a payload.
pub const EXCERPT_CHARS: usize = 200;

/// A provider's answer, reduced to what plugboard reads.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Builds the client every provider call goes through: rustls, bounded time, no redirects
/// (a redirect could lead past the host guard), and the guarded resolver.
pub fn client(allow_private_networks: bool, timeout: Option<Duration>) -> reqwest::Client {
    let timeout = timeout.unwrap_or(REQUEST_TIMEOUT);
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: allow_private_networks,
        }))
        .user_agent(concat!("plugboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with these static settings always builds")
}

/// The first characters of a body, on one line, for messages.
pub fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// Describes a transport failure without the URL (whose query may carry a key) and with the
/// cause that matters to a person: timeout, refused, or a name that would not resolve.
pub fn describe_transport_error(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "failed while reading the answer"
    } else {
        "failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_short_and_on_one_line() {
        let body = format!("{{\n  \"error\": \"{}\"\n}}", "x".repeat(500));
        let text = excerpt(&body);
        assert!(!text.contains('\n'));
        assert_eq!(text.chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(excerpt("  short\n body "), "short body");
    }
}

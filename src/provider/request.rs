//! The connector's own requests to its provider: the test that proves the credentials work,
//! and the disconnect request that revokes them. Both go through the rendered API client.

use serde_json::Value;
use url::Url;

use super::Tools;
use super::api_client::RenderedApiClient;
use super::hosts::AllowedHosts;
use super::http::{describe_transport_error, excerpt};
use super::signed::{self, Answer, RequestSigner, SendError};
use crate::api::HttpRequest;
use crate::auth::oauth1::client::Problem;
use crate::error::Error;
use crate::templates;

/// What a request is for, for messages and the error it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Test,
    Disconnect,
}

impl Purpose {
    fn field(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Disconnect => "disconnect",
        }
    }

    fn failed(self, message: String) -> Error {
        match self {
            Self::Test => Error::TestFailed(message),
            Self::Disconnect => Error::DisconnectFailed(message),
        }
    }
}

/// Where a request goes and how: the rendered API client, the hosts it may reach, and the
/// signer of a method that signs each request.
pub struct Via<'a> {
    pub client: &'a RenderedApiClient,
    pub allowed: &'a AllowedHosts,
    pub signer: Option<&'a dyn RequestSigner>,
}

/// Sends a connector request through the API client and checks its status.
pub async fn send(
    purpose: Purpose,
    request: &HttpRequest,
    via: Via<'_>,
    context: &Value,
    tools: Tools<'_>,
) -> Result<(), Error> {
    let Via {
        client,
        allowed,
        signer,
    } = via;
    let field = purpose.field();
    let value = templates::to_value(context);
    let render = |name: String, source: &str| {
        tools
            .templates
            .render(source, &value)
            .map_err(|source| Error::InvalidTemplate {
                field: name,
                source,
            })
    };
    let path = render(format!("{field}.path"), &request.path)?;
    let url = join(&client.base_uri, &path).map_err(|err| {
        Error::InvalidConnector(format!(
            "{field}.path does not form a valid URL with apiClient.baseUri: {err}"
        ))
    })?;
    allowed
        .check(&url, tools.allow_private_networks)
        .map_err(|source| Error::BlockedHost {
            field: format!("{field}.path"),
            source,
        })?;
    let method = request
        .method
        .as_deref()
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| {
        Error::InvalidConnector(format!("{field}.method {method:?} is not an HTTP method"))
    })?;
    // Held until the answer is read: the provider is busy with the request until then.
    let _permit = crate::provider::limit::global().acquire(&url).await;
    let mut builder = tools.http.request(method, url).query(&client.query);
    for (name, value) in &client.headers {
        builder = builder.header(name, value);
    }
    for (name, source) in &request.headers {
        builder = builder.header(name, render(format!("{field}.headers.{name}"), source)?);
    }
    if let Some(body) = &request.body {
        builder = builder.body(render(format!("{field}.body"), body)?);
    }
    let built = builder.build().map_err(|err| {
        Error::InvalidConnector(format!("{field} request could not be built: {err}"))
    })?;
    let started = std::time::Instant::now();
    let sent = signed::execute(tools.http, signer, built).await;
    tools.metrics.provider_call(field, started.elapsed());
    let Answer { status, body, .. } = sent.map_err(|err| match err {
        SendError::Transport(err) => Error::unavailable(format!(
            "{field} request {}",
            describe_transport_error(&err)
        )),
        SendError::Signing(err) => err,
    })?;
    verdict(purpose, request, signer.is_some(), status, &body)
}

/// What the answer `status`, `body` to `request` means: success, or the error it maps to.
fn verdict(
    purpose: Purpose,
    request: &HttpRequest,
    signed: bool,
    status: u16,
    body: &str,
) -> Result<(), Error> {
    let field = purpose.field();
    let expected = if request.expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        request.expect_status.contains(&status)
    };
    if expected {
        return Ok(());
    }
    if signed && let Some(problem) = Problem::of(status, body) {
        return Err(signed_refusal(purpose, status, &problem));
    }
    let message = format!("{field} request answered HTTP {status}: {}", excerpt(body));
    if status >= 500 || status == 429 {
        return Err(Error::unavailable(message));
    }
    if purpose == Purpose::Test && status == 401 {
        return Err(Error::TestRefused(message));
    }
    Err(purpose.failed(message))
}

/// A signed request's refusal in the provider's own words: a refused token needs a person,
/// a refused clock is transient, anything else is the request's failure.
fn signed_refusal(purpose: Purpose, status: u16, problem: &Problem) -> Error {
    let message = format!(
        "{} request answered HTTP {status}: {}",
        purpose.field(),
        problem.describe()
    );
    if problem.refuses_token() {
        Error::TokenRevoked(format!("{message}: a person must authorize again"))
    } else if problem.word == "timestamp_refused" {
        Error::unavailable(format!(
            "{message}: the operator's clock and the provider's disagree"
        ))
    } else {
        purpose.failed(message)
    }
}

/// `base` with `path` appended, keeping the base's own path (`https://api.x.com/v1` + `/me`
/// is `https://api.x.com/v1/me`, not `https://api.x.com/me` as URL joining would give).
fn join(base: &str, path: &str) -> Result<Url, url::ParseError> {
    if path.starts_with("http://") || path.starts_with("https://") {
        return Url::parse(path);
    }
    let base = base.trim_end_matches('/');
    let path = path.trim_start_matches('/');
    Url::parse(&format!("{base}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn paths_are_appended_to_the_base_path() {
        assert_eq!(
            join("https://api.x.com/v1", "/me").unwrap().as_str(),
            "https://api.x.com/v1/me"
        );
        assert_eq!(
            join("https://api.x.com/v1/", "me").unwrap().as_str(),
            "https://api.x.com/v1/me"
        );
        assert_eq!(
            join("https://api.x.com", "https://other.x.com/a")
                .unwrap()
                .host_str(),
            Some("other.x.com")
        );
    }
}

//! Requests a method must sign per request (OAuth 1.0a): the signature covers the method,
//! the URL with its query and a form body, so it is made on the finished request, with a
//! fresh nonce and timestamp each time it is sent.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use url::Url;

use crate::error::Error;

/// Signs requests with a Connection's credentials.
pub trait RequestSigner: Send + Sync {
    /// The `Authorization` header for a request to `url` with `method` and, for a form body,
    /// its decoded parameters.
    fn authorization(
        &self,
        method: &str,
        url: &Url,
        form: &[(String, String)],
    ) -> Result<String, Error>;

    /// Whether the provider's refusal (`status`, `body`) says that the same request signed
    /// again will pass: a provider that refused the timestamp and sent its own clock. The
    /// signer learns that clock for the requests after.
    fn learn(&self, _url: &Url, _status: u16, _body: &str) -> bool {
        false
    }
}

/// A provider's answer, read whole.
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// The provider's Retry-After, for a 429 or 503.
    pub retry_after: Option<std::time::Duration>,
}

/// Sends `request`, signed by `signer` when there is one; signed again and sent once more
/// when the signer learns from the refusal that a second try will pass.
pub async fn execute(
    http: &reqwest::Client,
    signer: Option<&dyn RequestSigner>,
    request: reqwest::Request,
) -> Result<Answer, SendError> {
    let Some(signer) = signer else {
        return read(http.execute(request).await?).await;
    };
    let again = request.try_clone();
    let answer = read(http.execute(sign(signer, request)?).await?).await?;
    match again {
        Some(again) if signer.learn(again.url(), answer.status, &answer.body) => {
            read(http.execute(sign(signer, again)?).await?).await
        }
        _ => Ok(answer),
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    #[error(transparent)]
    Signing(Error),
}

async fn read(response: reqwest::Response) -> Result<Answer, SendError> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::auth::oauth2::retry_after(v, k8s_openapi::jiff::Timestamp::now()));
    Ok(Answer {
        status,
        body: response.text().await.unwrap_or_default(),
        retry_after,
    })
}

fn sign(
    signer: &dyn RequestSigner,
    mut request: reqwest::Request,
) -> Result<reqwest::Request, SendError> {
    let form = form_parameters(&request);
    let header = signer
        .authorization(request.method().as_str(), request.url(), &form)
        .map_err(SendError::Signing)?;
    let value = HeaderValue::from_str(&header).map_err(|_| {
        SendError::Signing(Error::InvalidConnector(
            "the OAuth 1.0a Authorization header holds a character HTTP headers cannot carry"
                .to_owned(),
        ))
    })?;
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(request)
}

/// A form body's parameters, which RFC 5849 section 3.4.1.3.1 signs; any other body is not
/// signed.
fn form_parameters(request: &reqwest::Request) -> Vec<(String, String)> {
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let bytes = request.body().and_then(reqwest::Body::as_bytes);
    match (is_form, bytes) {
        (true, Some(bytes)) => url::form_urlencoded::parse(bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        _ => Vec::new(),
    }
}

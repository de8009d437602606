//! OAuth 2.0 against a provider's endpoints: the authorization URL (with PKCE S256), code
//! exchange, refresh, client credentials and RFC 7009 revocation, through the oauth2 crate
//! and plugboard's guarded HTTP client.
//!
//! Failures are sorted the way the reconcile needs them: `invalid_grant` (the refresh token
//! is dead — unless someone else rotated it), other OAuth errors (a configuration problem),
//! and unavailability (5xx, 429 with its Retry-After, timeouts, malformed answers), which is
//! retried while the still-valid access token is kept.

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, HttpRequest, HttpResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, RevocationUrl, Scope,
    StandardRevocableToken, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use url::Url;

use crate::api::ClientAuth;
use crate::provider::http::describe_transport_error;

type Response = super::token_response::LenientResponse;
type Client = oauth2::Client<
    BasicErrorResponse,
    Response,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointMaybeSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The OAuth app: client id and secret from the connector's `clientSecretRef`.
pub struct App {
    pub client_id: String,
    pub client_secret: SecretString,
}

/// The provider's endpoints and how the client authenticates at them.
pub struct Endpoints<'a> {
    pub authorize_uri: Option<&'a str>,
    pub token_uri: Option<&'a str>,
    pub revoke_uri: Option<&'a str>,
    pub client_auth: Option<ClientAuth>,
}

/// Tokens from a token response. Secret parts print as `[REDACTED]`.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub token_type: String,
    pub expires_at: Option<Timestamp>,
    pub scope: Option<String>,
    /// The whole response as JSON, for mapping templates. Holds secrets.
    pub response: SecretJson,
}

/// A JSON object that prints as `[redacted]`.
pub struct SecretJson(pub Map<String, Value>);

impl std::fmt::Debug for SecretJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a token endpoint call failed. Messages never include a token or the response body
/// (which may carry one); OAuth error descriptions are the provider's words about the error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error("the provider refused the grant (invalid_grant{})", describe(.0))]
    InvalidGrant(Option<String>),
    #[error("the provider answered {code}{}", describe(.description))]
    Rejected {
        code: String,
        description: Option<String>,
    },
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Misconfigured(String),
    /// A 2xx answer that is no valid token response; the refresh token it held, if any, is
    /// the only copy of a rotated one.
    #[error("{message}")]
    Unreadable {
        message: String,
        refresh_token: Option<SecretString>,
    },
}

fn describe(description: &Option<String>) -> String {
    description
        .as_ref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

impl<'a> Endpoints<'a> {
    fn client(&self, app: &App, redirect_uri: Option<&str>) -> Result<Client, TokenError> {
        let bad = |field: &str, err: url::ParseError| {
            TokenError::Misconfigured(format!("{field} is not a valid URL: {err}"))
        };
        let mut client = oauth2::Client::new(ClientId::new(app.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                app.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_type(match self.client_auth.unwrap_or(ClientAuth::Basic) {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::Body => AuthType::RequestBody,
            })
            .set_auth_uri_option(
                self.authorize_uri
                    .map(|u| AuthUrl::new(u.to_owned()))
                    .transpose()
                    .map_err(|e| bad("authorizeUri", e))?,
            )
            .set_token_uri_option(
                self.token_uri
                    .map(|u| TokenUrl::new(u.to_owned()))
                    .transpose()
                    .map_err(|e| bad("tokenUri", e))?,
            )
            .set_revocation_url_option(
                self.revoke_uri
                    .map(|u| RevocationUrl::new(u.to_owned()))
                    .transpose()
                    .map_err(|e| bad("revokeUri", e))?,
            );
        if let Some(redirect) = redirect_uri {
            client = client.set_redirect_uri(
                RedirectUrl::new(redirect.to_owned()).map_err(|e| bad("the callback URL", e))?,
            );
        }
        Ok(client)
    }
}

/// What a request asks for beyond the grant itself.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub scopes: Vec<String>,
    /// Between scopes; a space (RFC 6749) unless the connector says otherwise.
    pub separator: String,
    pub extra: Vec<(String, String)>,
}

impl Ask {
    /// The scopes as one pre-joined scope, so that providers wanting commas get commas.
    fn scope(&self) -> Option<Scope> {
        (!self.scopes.is_empty()).then(|| Scope::new(self.scopes.join(&self.separator)))
    }
}

/// The provider's consent URL for one flow.
pub fn authorize_url(
    app: &App,
    endpoints: &Endpoints<'_>,
    redirect_uri: &str,
    ask: &Ask,
    state: String,
    verifier: String,
) -> Result<Url, TokenError> {
    let client = endpoints.client(app, Some(redirect_uri))?;
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier));
    let mut request = client
        .authorize_url(move || CsrfToken::new(state))
        .map_err(|e| TokenError::Misconfigured(e.to_string()))?
        .set_pkce_challenge(challenge);
    if let Some(scope) = ask.scope() {
        request = request.add_scope(scope);
    }
    for (name, value) in &ask.extra {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    Ok(request.url().0)
}

/// Records the status and Retry-After of the last answer, which the oauth2 crate does not
/// pass on, so that 429 and 5xx can be told from configuration errors.
struct Recording<'h> {
    http: &'h reqwest::Client,
    last: Mutex<Option<(u16, Option<Duration>)>>,
}

impl<'c> AsyncHttpClient<'c> for Recording<'_> {
    type Error = <reqwest::Client as AsyncHttpClient<'c>>::Error;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + Sync + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            // Every token request (code, refresh, client credentials) passes here.
            let url = Url::parse(&request.uri().to_string());
            let _permit = match &url {
                Ok(url) => Some(crate::provider::limit::global().acquire(url).await),
                // The oauth2 crate built this URI from a parsed URL; it always parses.
                Err(_) => None,
            };
            let response = self.http.call(request).await?;
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, Timestamp::now()));
            *self.last.lock().expect("not poisoned") =
                Some((response.status().as_u16(), retry_after));
            Ok(response)
        })
    }
}

/// A Retry-After value, which HTTP allows as seconds or as a date (RFC 9110, 10.2.3): how
/// long from `now` to wait. A date already past means no wait.
pub fn retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    static HTTP_DATE: k8s_openapi::jiff::fmt::rfc2822::DateTimeParser =
        k8s_openapi::jiff::fmt::rfc2822::DateTimeParser::new();
    let at = HTTP_DATE.parse_timestamp(value).ok()?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or_default())
}

impl Recording<'_> {
    fn classify(
        &self,
        err: RequestTokenError<<reqwest::Client as AsyncHttpClient<'_>>::Error, BasicErrorResponse>,
    ) -> TokenError {
        let (status, retry_after) = self.last.lock().expect("not poisoned").unwrap_or((0, None));
        let unavailable = |message: String| TokenError::Unavailable {
            message,
            retry_after,
        };
        match err {
            _ if status == 429 => {
                unavailable("the token endpoint is rate limiting (HTTP 429)".to_owned())
            }
            _ if status >= 500 => unavailable(format!("the token endpoint answered HTTP {status}")),
            RequestTokenError::ServerResponse(response) => {
                let code = response.error().to_string();
                let description = response.error_description().cloned();
                if code == "invalid_grant" {
                    TokenError::InvalidGrant(description)
                } else {
                    TokenError::Rejected { code, description }
                }
            }
            RequestTokenError::Request(err) => {
                unavailable(format!("the token request {}", transport(&err)))
            }
            // Neither the body nor the crate's description of it is quoted: the body of a
            // half-broken answer may hold a token.
            RequestTokenError::Parse(_, body) => {
                let message = format!(
                    "the token endpoint answered HTTP {status} with a body that is not a valid token response"
                );
                match super::token_response::salvage_refresh_token(&body) {
                    Some(token) => TokenError::Unreadable {
                        message,
                        refresh_token: Some(SecretString::from(token)),
                    },
                    None => unavailable(message),
                }
            }
            RequestTokenError::Other(_) => unavailable(format!(
                "the token endpoint answered HTTP {status} with a body that is not a valid token response"
            )),
        }
    }
}

fn transport(err: &oauth2::HttpClientError<reqwest::Error>) -> String {
    match err {
        oauth2::HttpClientError::Reqwest(inner) => describe_transport_error(inner),
        other => other.to_string(),
    }
}

fn tokens(response: Response, now: Timestamp) -> Tokens {
    let mut raw = response.extra.clone();
    raw.insert(
        "access_token".into(),
        response.access_token().secret().clone().into(),
    );
    if let Some(rt) = response.refresh_token() {
        raw.insert("refresh_token".into(), rt.secret().clone().into());
    }
    let expires_at = response
        .expires_in()
        .and_then(|d| SignedDuration::try_from(d).ok())
        .and_then(|d| now.checked_add(d).ok());
    Tokens {
        access_token: SecretString::from(response.access_token().secret().clone()),
        refresh_token: response
            .refresh_token()
            .map(|t| SecretString::from(t.secret().clone())),
        token_type: serde_json::to_value(response.token_type())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "bearer".into()),
        expires_at,
        scope: response.scopes().map(|s| {
            s.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }),
        response: SecretJson(raw),
    }
}

/// Exchanges an authorization code (with its PKCE verifier) for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    app: &App,
    endpoints: &Endpoints<'_>,
    redirect_uri: &str,
    code: &str,
    verifier: String,
) -> Result<Tokens, TokenError> {
    let client = endpoints.client(app, Some(redirect_uri))?;
    let recording = Recording {
        http,
        last: Mutex::new(None),
    };
    let request = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| TokenError::Misconfigured(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier));
    let response = request
        .request_async(&recording)
        .await
        .map_err(|e| recording.classify(e))?;
    Ok(tokens(response, Timestamp::now()))
}

/// Uses a refresh token.
pub async fn refresh(
    http: &reqwest::Client,
    app: &App,
    endpoints: &Endpoints<'_>,
    refresh_token: &SecretString,
    extra: &[(String, String)],
) -> Result<Tokens, TokenError> {
    let client = endpoints.client(app, None)?;
    let recording = Recording {
        http,
        last: Mutex::new(None),
    };
    let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
    let mut request = client
        .exchange_refresh_token(&token)
        .map_err(|e| TokenError::Misconfigured(e.to_string()))?;
    for (name, value) in extra {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    let response = request
        .request_async(&recording)
        .await
        .map_err(|e| recording.classify(e))?;
    Ok(tokens(response, Timestamp::now()))
}

/// The client-credentials grant.
pub async fn client_credentials(
    http: &reqwest::Client,
    app: &App,
    endpoints: &Endpoints<'_>,
    ask: &Ask,
) -> Result<Tokens, TokenError> {
    let client = endpoints.client(app, None)?;
    let recording = Recording {
        http,
        last: Mutex::new(None),
    };
    let mut request = client
        .exchange_client_credentials()
        .map_err(|e| TokenError::Misconfigured(e.to_string()))?;
    if let Some(scope) = ask.scope() {
        request = request.add_scope(scope);
    }
    for (name, value) in &ask.extra {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    let response = request
        .request_async(&recording)
        .await
        .map_err(|e| recording.classify(e))?;
    Ok(tokens(response, Timestamp::now()))
}

/// Revokes a token (RFC 7009); `refresh` says which kind it is.
///
/// Sent directly rather than through the oauth2 crate, which refuses plain-HTTP revocation
/// endpoints outright; plugboard's host guard already decides which endpoints are reachable,
/// and tests run providers on plain HTTP on loopback.
pub async fn revoke(
    http: &reqwest::Client,
    app: &App,
    endpoints: &Endpoints<'_>,
    token: &SecretString,
    refresh: bool,
) -> Result<(), TokenError> {
    let uri = endpoints
        .revoke_uri
        .ok_or_else(|| TokenError::Misconfigured("no revokeUri".to_owned()))?;
    let hint = if refresh {
        "refresh_token"
    } else {
        "access_token"
    };
    let mut form = vec![("token", token.expose_secret()), ("token_type_hint", hint)];
    let url = Url::parse(uri)
        .map_err(|err| TokenError::Misconfigured(format!("revokeUri is not a valid URL: {err}")))?;
    let _permit = crate::provider::limit::global().acquire(&url).await;
    let mut request = http.post(url);
    match endpoints.client_auth.unwrap_or(ClientAuth::Basic) {
        ClientAuth::Basic => {
            request = request.basic_auth(&app.client_id, Some(app.client_secret.expose_secret()));
        }
        ClientAuth::Body => {
            form.push(("client_id", &app.client_id));
            form.push(("client_secret", app.client_secret.expose_secret()));
        }
    }
    let response = request
        .form(&form)
        .send()
        .await
        .map_err(|err| TokenError::Unavailable {
            message: format!("the revocation request {}", describe_transport_error(&err)),
            retry_after: None,
        })?;
    let status = response.status().as_u16();
    match status {
        // RFC 7009 section 2.2: 200 whether or not the token was still valid.
        200..=299 => Ok(()),
        429 | 500.. => Err(TokenError::Unavailable {
            message: format!("the revocation endpoint answered HTTP {status}"),
            retry_after: None,
        }),
        _ => Err(TokenError::Rejected {
            code: format!("HTTP {status}"),
            description: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now: Timestamp = "2026-10-21T07:27:30Z".parse().unwrap();
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date already past: no wait"
        );
        assert_eq!(retry_after("soon", now), None);
    }
}

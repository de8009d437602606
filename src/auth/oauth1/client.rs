//! The OAuth 1.0a client: the consumer, a signer per request, and the two token requests of
//! the three-legged flow (RFC 5849 sections 2.1 and 2.3).

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};

use k8s_openapi::jiff::Timestamp;
use rsa::RsaPrivateKey;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::signature::{self, Key};
use crate::api::SignatureMethod;
use crate::auth::oauth2::App;
use crate::error::Error;
use crate::provider::http::excerpt;
use crate::provider::signed::{self, Answer, RequestSigner, SendError};

/// The consumer (the OAuth app): its key, and its shared secret or RSA private key.
pub struct Consumer {
    pub key: String,
    secret: ConsumerSecret,
}

enum ConsumerSecret {
    Shared(SecretString),
    Rsa(Box<RsaPrivateKey>),
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// The consumer of the app in `clientSecretRef`: for RSA-SHA1 its `clientSecret` is the
    /// PEM private key. The error says what is wrong with the secret, never its value.
    pub fn of(app: &App, method: SignatureMethod) -> Result<Self, String> {
        let secret = match method {
            SignatureMethod::RsaSha1 => ConsumerSecret::Rsa(Box::new(signature::rsa_key(
                app.client_secret.expose_secret(),
            )?)),
            _ => ConsumerSecret::Shared(app.client_secret.clone()),
        };
        Ok(Self {
            key: app.client_id.clone(),
            secret,
        })
    }
}

/// A token and its secret: temporary credentials, or token credentials.
#[derive(Clone)]
pub struct Token {
    pub token: String,
    pub secret: SecretString,
}

/// Signs requests as `consumer`, with `token` when there is one.
pub struct Signer<'a> {
    pub consumer: &'a Consumer,
    pub method: SignatureMethod,
    pub token: Option<&'a Token>,
    /// Protocol parameters of this request beside the standard ones (`oauth_callback`,
    /// `oauth_verifier`).
    pub extra: Vec<(String, String)>,
}

impl Signer<'_> {
    /// The `Authorization` header with `timestamp` and `nonce`: pure, for tests.
    pub fn header_at(
        &self,
        method: &str,
        url: &Url,
        form: &[(String, String)],
        timestamp: i64,
        nonce: &str,
    ) -> Result<String, signature::SignError> {
        let mut protocol = vec![
            ("oauth_consumer_key".to_owned(), self.consumer.key.clone()),
            ("oauth_nonce".to_owned(), nonce.to_owned()),
            (
                "oauth_signature_method".to_owned(),
                signature::method_name(self.method).to_owned(),
            ),
            ("oauth_timestamp".to_owned(), timestamp.to_string()),
            ("oauth_version".to_owned(), "1.0".to_owned()),
        ];
        if let Some(token) = self.token {
            protocol.push(("oauth_token".to_owned(), token.token.clone()));
        }
        protocol.extend(self.extra.iter().cloned());
        let token_secret = self.token.map(|t| t.secret.expose_secret()).unwrap_or("");
        let key = match &self.consumer.secret {
            ConsumerSecret::Shared(secret) => Key::Shared {
                consumer_secret: secret.expose_secret(),
                token_secret,
            },
            ConsumerSecret::Rsa(private) => Key::Rsa(private),
        };
        let base = signature::base_string(method, url, &protocol, form);
        let signed = signature::sign(self.method, &base, &key)?;
        protocol.push(("oauth_signature".to_owned(), signed));
        Ok(signature::authorization_header(&protocol))
    }
}

impl RequestSigner for Signer<'_> {
    fn authorization(
        &self,
        method: &str,
        url: &Url,
        form: &[(String, String)],
    ) -> Result<String, Error> {
        let timestamp = Timestamp::now().as_second() + clock::offset(url);
        self.header_at(method, url, form, timestamp, &crate::auth::state::nonce())
            .map_err(|err| Error::InvalidConnector(format!("signing the request failed: {err}")))
    }

    fn learn(&self, url: &Url, status: u16, body: &str) -> bool {
        let Some(problem) = Problem::of(status, body) else {
            return false;
        };
        match (problem.word.as_str(), problem.acceptable) {
            ("timestamp_refused", Some((low, high))) => {
                clock::learn(url, low, high);
                true
            }
            _ => false,
        }
    }
}

/// The provider clocks learned from `timestamp_refused`: an offset per host, so that every
/// request after the first refusal is signed with a time the provider accepts. Bounded by
/// the number of provider hosts.
mod clock {
    use super::*;

    static OFFSETS: LazyLock<Mutex<HashMap<String, i64>>> = LazyLock::new(Default::default);

    /// Keyed by origin: two providers on one host (ports of one machine) keep two clocks.
    fn host(url: &Url) -> String {
        url.origin().ascii_serialization()
    }

    pub fn offset(url: &Url) -> i64 {
        OFFSETS
            .lock()
            .map(|o| o.get(&host(url)).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// The middle of the provider's acceptable window, as an offset from this clock.
    pub fn learn(url: &Url, low: i64, high: i64) {
        let offset = low / 2 + high / 2 - Timestamp::now().as_second();
        if let Ok(mut offsets) = OFFSETS.lock() {
            offsets.insert(host(url), offset);
        }
    }
}

/// A refusal in the words of the OAuth Problem Reporting extension: `oauth_problem` (a
/// word), `oauth_problem_advice`, and for `timestamp_refused` the acceptable range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub word: String,
    pub advice: Option<String>,
    pub acceptable: Option<(i64, i64)>,
}

/// Longest problem word passed on: the extension's words are short; anything longer is not
/// one and is not repeated.
const MAX_PROBLEM_WORD: usize = 64;

impl Problem {
    /// The problem a 4xx answer reports, if it reports one.
    pub fn of(status: u16, body: &str) -> Option<Self> {
        if !(400..500).contains(&status) {
            return None;
        }
        let fields: BTreeMap<String, String> = url::form_urlencoded::parse(body.trim().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let word = fields.get("oauth_problem")?;
        let is_word = word.len() <= MAX_PROBLEM_WORD
            && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_word {
            return None;
        }
        let acceptable = fields
            .get("oauth_acceptable_timestamps")
            .and_then(|r| r.split_once('-'))
            .and_then(|(l, h)| Some((l.trim().parse().ok()?, h.trim().parse().ok()?)));
        Some(Self {
            word: word.clone(),
            advice: fields.get("oauth_problem_advice").map(|a| excerpt(a)),
            acceptable,
        })
    }

    /// `oauth_problem=<word>` and the advice, for messages.
    pub fn describe(&self) -> String {
        match &self.advice {
            Some(advice) => format!("oauth_problem={} ({advice})", self.word),
            None => format!("oauth_problem={}", self.word),
        }
    }

    /// Whether the token itself was refused: a person must authorize again.
    pub fn refuses_token(&self) -> bool {
        matches!(
            self.word.as_str(),
            "token_rejected" | "token_revoked" | "token_expired" | "permission_denied"
        )
    }
}

/// Why a token request failed, in words a person can act on.
pub fn refused(what: &str, answer: &Answer) -> Error {
    if let Some(problem) = Problem::of(answer.status, &answer.body) {
        let message = format!(
            "the provider refused the {what} request: {}",
            problem.describe()
        );
        return match problem.word.as_str() {
            "timestamp_refused" => Error::unavailable(format!(
                "{message}; the operator's clock and the provider's disagree"
            )),
            _ if problem.refuses_token() => Error::TokenRevoked(message),
            _ => Error::AuthorizationRequired(message),
        };
    }
    let message = format!(
        "the {what} request answered HTTP {}: {}",
        answer.status,
        excerpt(&answer.body)
    );
    if answer.status >= 500 || answer.status == 429 {
        Error::unavailable(message)
    } else {
        Error::AuthorizationRequired(message)
    }
}

/// Sends a signed, empty-bodied POST to a token endpoint and reads the form it answers.
async fn token_request(
    http: &reqwest::Client,
    signer: &Signer<'_>,
    uri: &str,
    what: &str,
) -> Result<BTreeMap<String, SecretString>, Error> {
    let url = Url::parse(uri)
        .map_err(|err| Error::InvalidConnector(format!("the {what} URI is not a URL: {err}")))?;
    let request = http
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .build()
        .map_err(|err| {
            Error::unavailable(format!("the {what} request could not be built: {err}"))
        })?;
    let answer = match signed::execute(http, Some(signer), request).await {
        Ok(answer) => answer,
        Err(SendError::Signing(err)) => return Err(err),
        Err(SendError::Transport(err)) => {
            return Err(Error::unavailable(format!(
                "the {what} request {}",
                crate::provider::http::describe_transport_error(&err)
            )));
        }
    };
    if !(200..300).contains(&answer.status) {
        return Err(refused(what, &answer));
    }
    Ok(url::form_urlencoded::parse(answer.body.trim().as_bytes())
        .map(|(k, v)| (k.into_owned(), SecretString::from(v.into_owned())))
        .collect())
}

/// The token and secret of a token response, or which one it lacks.
fn token_of(fields: &BTreeMap<String, SecretString>, what: &str) -> Result<Token, Error> {
    let field = |key: &str| {
        fields
            .get(key)
            .cloned()
            .ok_or_else(|| Error::unavailable(format!("the provider's {what} answer has no {key}")))
    };
    Ok(Token {
        token: field("oauth_token")?.expose_secret().to_owned(),
        secret: field("oauth_token_secret")?,
    })
}

/// Section 2.1: temporary credentials, with the callback the provider sends the person to.
pub async fn temporary_credentials(
    http: &reqwest::Client,
    consumer: &Consumer,
    method: SignatureMethod,
    uri: &str,
    callback: &str,
) -> Result<Token, Error> {
    let signer = Signer {
        consumer,
        method,
        token: None,
        extra: vec![("oauth_callback".to_owned(), callback.to_owned())],
    };
    let fields = token_request(http, &signer, uri, "temporary credentials").await?;
    // 1.0a's fix of session fixation: a provider that did not take the callback is a 1.0
    // provider, whose flow this client does not follow.
    let confirmed = fields
        .get("oauth_callback_confirmed")
        .is_some_and(|c| c.expose_secret() == "true");
    if !confirmed {
        return Err(Error::InvalidConnector(
            "the provider did not confirm the callback (oauth_callback_confirmed): it speaks OAuth 1.0, not 1.0a".to_owned(),
        ));
    }
    token_of(&fields, "temporary credentials")
}

/// Section 2.3: the token credentials for the verifier the person brought back, and every
/// other field of the answer (`user_id`, `screen_name`, ...).
pub async fn token_credentials(
    http: &reqwest::Client,
    consumer: &Consumer,
    method: SignatureMethod,
    uri: &str,
    temporary: &Token,
    verifier: &str,
) -> Result<(Token, BTreeMap<String, SecretString>), Error> {
    let signer = Signer {
        consumer,
        method,
        token: Some(temporary),
        extra: vec![("oauth_verifier".to_owned(), verifier.to_owned())],
    };
    let fields = token_request(http, &signer, uri, "token credentials").await?;
    Ok((token_of(&fields, "token credentials")?, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_read_from_4xx_form_bodies_only() {
        let p = Problem::of(
            401,
            "oauth_problem=timestamp_refused&oauth_acceptable_timestamps=100-700",
        )
        .unwrap();
        assert_eq!(p.word, "timestamp_refused");
        assert_eq!(p.acceptable, Some((100, 700)));
        assert_eq!(Problem::of(500, "oauth_problem=x"), None);
        assert_eq!(Problem::of(401, "{\"error\": \"x\"}"), None);
        // Free text is not a problem word and is not repeated.
        assert_eq!(
            Problem::of(401, "oauth_problem=<script>alert(1)</script>"),
            None
        );
        let p = Problem::of(
            401,
            "oauth_problem=token_revoked&oauth_problem_advice=ask+again",
        )
        .unwrap();
        assert!(p.refuses_token());
        assert_eq!(p.describe(), "oauth_problem=token_revoked (ask again)");
    }

    #[test]
    fn a_refused_timestamp_is_transient_and_a_refused_consumer_is_not() {
        let answer = |body: &str| Answer {
            status: 401,
            body: body.to_owned(),
            retry_after: None,
        };
        let skew = refused("x", &answer("oauth_problem=timestamp_refused"));
        assert!(skew.is_transient(), "{skew}");
        let consumer = refused("x", &answer("oauth_problem=consumer_key_refused"));
        assert!(!consumer.is_transient());
        assert!(consumer.to_string().contains("consumer_key_refused"));
        let revoked = refused("x", &answer("oauth_problem=token_revoked"));
        assert_eq!(revoked.reason(), "TokenRevoked");
    }
}

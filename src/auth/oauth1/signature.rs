//! RFC 5849 section 3.4: the signature base string, and the four signature methods over it.
//!
//! Pure: a request (method, URL, the form body's parameters) and the protocol parameters go
//! in, the `Authorization` header comes out. The nonce and timestamp are the caller's, so
//! the RFC's worked examples can be checked byte for byte.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer as _};
use url::Url;

use crate::api::SignatureMethod;

/// RFC 5849 section 3.6: everything but the unreserved characters of RFC 3986 is encoded,
/// with upper-case hex digits. Stricter than URL encoding (`+`, `*`, `!` are encoded), so a
/// general-purpose encoder would sign a different string than the provider checks.
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `value` as section 3.6 says.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, RESERVED).to_string()
}

/// What signs: the consumer's secret (or RSA key) and the token's secret.
pub enum Key<'a> {
    /// HMAC-SHA1, HMAC-SHA256 and PLAINTEXT: the two shared secrets.
    Shared {
        consumer_secret: &'a str,
        token_secret: &'a str,
    },
    /// RSA-SHA1: the consumer's private key; the token secret takes no part.
    Rsa(&'a RsaPrivateKey),
}

/// Reads a PEM RSA private key, PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE
/// KEY`), the two forms key tools write.
pub fn rsa_key(pem: &str) -> Result<RsaPrivateKey, String> {
    RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| {
            "is not a PEM RSA private key (PKCS#8 \"BEGIN PRIVATE KEY\" or PKCS#1 \"BEGIN RSA PRIVATE KEY\")"
                .to_owned()
        })
}

/// Section 3.4.1.2: scheme and host in lower case, the port only when it is not the
/// scheme's default, the path; no query, no fragment.
fn base_uri(url: &Url) -> String {
    let scheme = url.scheme().to_ascii_lowercase();
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    // `Url` already drops a port equal to the scheme's default, so any port left is shown.
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{scheme}://{host}{port}{}", url.path())
}

/// Section 3.4.1.3: the query's parameters, the protocol parameters (without
/// `oauth_signature` and `realm`) and the form body's, each encoded, sorted by name then
/// value, joined with `&`.
pub fn normalized_parameters(
    url: &Url,
    protocol: &[(String, String)],
    form: &[(String, String)],
) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (encode(&k), encode(&v)))
        .chain(
            protocol
                .iter()
                .filter(|(k, _)| k != "oauth_signature" && k != "realm")
                .map(|(k, v)| (encode(k), encode(v))),
        )
        .chain(form.iter().map(|(k, v)| (encode(k), encode(v))))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Section 3.4.1.1: the signature base string.
pub fn base_string(
    method: &str,
    url: &Url,
    protocol: &[(String, String)],
    form: &[(String, String)],
) -> String {
    format!(
        "{}&{}&{}",
        encode(&method.to_ascii_uppercase()),
        encode(&base_uri(url)),
        encode(&normalized_parameters(url, protocol, form))
    )
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("RSA-SHA1 needs an RSA private key in clientSecret, not a shared secret")]
    NeedsRsaKey,
    #[error("{0} signs with a shared secret; clientSecret holds an RSA key")]
    NeedsSharedSecret(&'static str),
    #[error("the RSA key could not sign: {0}")]
    Rsa(String),
}

/// The signature of `base` under `key` with `method` (sections 3.4.2 to 3.4.4; HMAC-SHA256
/// is HMAC-SHA1's construction with SHA-256, as providers that offer it define it).
pub fn sign(method: SignatureMethod, base: &str, key: &Key<'_>) -> Result<String, SignError> {
    let shared = |name| match key {
        Key::Shared {
            consumer_secret,
            token_secret,
        } => Ok(format!(
            "{}&{}",
            encode(consumer_secret),
            encode(token_secret)
        )),
        Key::Rsa(_) => Err(SignError::NeedsSharedSecret(name)),
    };
    let hmac = |algorithm, secret: String| {
        let key = ring::hmac::Key::new(algorithm, secret.as_bytes());
        STANDARD.encode(ring::hmac::sign(&key, base.as_bytes()).as_ref())
    };
    match method {
        SignatureMethod::HmacSha1 => Ok(hmac(
            ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            shared("HMAC-SHA1")?,
        )),
        SignatureMethod::HmacSha256 => Ok(hmac(ring::hmac::HMAC_SHA256, shared("HMAC-SHA256")?)),
        SignatureMethod::Plaintext => shared("PLAINTEXT"),
        SignatureMethod::RsaSha1 => {
            let Key::Rsa(private) = key else {
                return Err(SignError::NeedsRsaKey);
            };
            let signer = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new((*private).clone());
            let signature = signer
                .try_sign(base.as_bytes())
                .map_err(|err| SignError::Rsa(err.to_string()))?;
            Ok(STANDARD.encode(signature.to_bytes()))
        }
    }
}

/// The name a method goes by in `oauth_signature_method`.
pub fn method_name(method: SignatureMethod) -> &'static str {
    match method {
        SignatureMethod::HmacSha1 => "HMAC-SHA1",
        SignatureMethod::HmacSha256 => "HMAC-SHA256",
        SignatureMethod::RsaSha1 => "RSA-SHA1",
        SignatureMethod::Plaintext => "PLAINTEXT",
    }
}

/// Section 3.5.1: the `Authorization` header carrying the protocol parameters.
pub fn authorization_header(protocol: &[(String, String)]) -> String {
    let fields: Vec<String> = protocol
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", encode(k), encode(v)))
        .collect();
    format!("OAuth {}", fields.join(", "))
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;

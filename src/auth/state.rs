//! The OAuth `state` parameter: a signed, short-lived token that binds a consent flow to one
//! Connection, and from which the PKCE verifier is derived.
//!
//! Nothing about a pending flow is kept in memory: the state carries the Connection
//! (namespace, name, uid), an expiry and a random nonce, signed with HMAC-SHA256 under a key
//! every replica reads from the same Secret. The PKCE verifier is an HMAC of the nonce under
//! that key, so any replica — or the same one after a restart — can finish the flow, and the
//! verifier never travels through the browser.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How long a person has between opening the authorization link and coming back: enough to
/// log in at the provider and approve, short enough that a leaked link soon stops working.
pub const STATE_LIFETIME_SECS: i64 = 600;

/// Keys shorter than this are refused: HMAC-SHA256 wants at least its output size.
pub const MIN_KEY_BYTES: usize = 32;

/// What a state binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Namespace of the Connection.
    pub ns: String,
    /// Name of the Connection.
    pub name: String,
    /// UID of the Connection, so a state for a deleted and re-created namesake is refused.
    pub uid: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: i64,
    /// Random, unique per flow; the PKCE verifier is derived from it and it is consumed once.
    pub nonce: String,
    /// Where to send the person afterwards (already checked against the allowlist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// The connect session the flow was started from, so the callback can finish it as the
    /// session's page does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionMark>,
}

/// What the consent callback needs of the connect session a flow began in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMark {
    /// The session's spent marker ([`consumed_marker`] of its nonce), recorded on the
    /// Connection once the session has connected it.
    pub marker: String,
    /// Opened as a popup: the result is posted to the opener rather than redirected to.
    #[serde(default)]
    pub popup: bool,
}

/// Why a state was refused. Messages are safe to show to the person in the browser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the authorization link is malformed")]
    Malformed,
    #[error("the authorization link was not issued by this operator")]
    BadSignature,
    #[error(
        "the authorization link has expired; start again from the Connection's authorizationUrl"
    )]
    Expired,
}

/// The signing key, shared by every replica.
pub struct StateKey(SecretSlice<u8>);

impl StateKey {
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the state signing key has {} bytes; it needs at least {MIN_KEY_BYTES}",
                bytes.len()
            ));
        }
        Ok(Self(SecretSlice::from(bytes)))
    }

    fn mac(&self, domain: &[u8], data: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes keys of any length");
        // Domain separation: a signature over a state can never double as a PKCE verifier.
        mac.update(domain);
        mac.update(b"\0");
        mac.update(data);
        mac
    }

    /// The MAC of a Connection's consent link over `parts` (its namespace, name and uid),
    /// each length-prefixed so that no two lists of parts make the same message. Its own
    /// domain: a link signature can stand in for neither a state nor a PKCE verifier.
    pub fn link_mac(&self, parts: &[&str]) -> Hmac<Sha256> {
        let mut data = Vec::new();
        for part in parts {
            data.extend((part.len() as u64).to_be_bytes());
            data.extend(part.as_bytes());
        }
        self.mac(b"link", &data)
    }

    /// Signs claims into a URL-safe state string.
    pub fn sign(&self, claims: &Claims) -> String {
        self.seal(b"state", claims)
    }

    /// Verifies a state string and its expiry at `now` (seconds since the epoch).
    pub fn verify(&self, state: &str, now: i64) -> Result<Claims, StateError> {
        let claims: Claims = self.open(b"state", state)?;
        if now >= claims.exp {
            return Err(StateError::Expired);
        }
        Ok(claims)
    }

    /// `value` as JSON, base64url, and its MAC under `domain`: `<payload>.<mac>`. Each kind
    /// of signed value has its own domain, so that one can never be passed off as another.
    pub(crate) fn seal(&self, domain: &[u8], value: &impl Serialize) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("claims serialize"));
        let signature = self.mac(domain, payload.as_bytes()).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The value [`seal`](Self::seal) sealed under `domain`, once its MAC verifies.
    pub(crate) fn open<T: DeserializeOwned>(
        &self,
        domain: &[u8],
        sealed: &str,
    ) -> Result<T, StateError> {
        let (payload, signature) = sealed.split_once('.').ok_or(StateError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| StateError::Malformed)?;
        self.mac(domain, payload.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| StateError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| StateError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| StateError::Malformed)
    }

    /// A MAC of `data` under `domain`, base64url: for values bound to a signed one (the
    /// connect page's CSRF token).
    pub(crate) fn tag(&self, domain: &[u8], data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(domain, data).finalize().into_bytes())
    }

    /// Whether `tag` is [`tag`](Self::tag) of `data` under `domain`, compared in constant time.
    pub(crate) fn tag_matches(&self, domain: &[u8], data: &[u8], tag: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(tag)
            .is_ok_and(|bytes| self.mac(domain, data).verify_slice(&bytes).is_ok())
    }

    /// The PKCE code verifier for a flow: 43 URL-safe characters (RFC 7636 allows 43–128).
    pub fn pkce_verifier(&self, nonce: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(b"pkce", nonce.as_bytes()).finalize().into_bytes())
    }
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey([redacted])")
    }
}

/// A digest of a nonce, recorded once its flow completed so that the same state is not
/// accepted twice; the nonce itself (from which the PKCE verifier derives) is not stored.
pub fn consumed_marker(nonce: &str) -> String {
    use sha2::Digest as _;
    URL_SAFE_NO_PAD.encode(Sha256::digest(nonce.as_bytes()))
}

/// A fresh random nonce.
pub fn nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StateKey {
        StateKey::new(vec![7; 32]).unwrap()
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            ns: "acme".into(),
            name: "hubspot".into(),
            uid: "u-1".into(),
            exp,
            nonce: nonce(),
            redirect: None,
            session: None,
        }
    }

    #[test]
    fn a_signed_state_verifies_until_it_expires() {
        let c = claims(1_000);
        let state = key().sign(&c);
        assert_eq!(key().verify(&state, 999), Ok(c));
        assert_eq!(key().verify(&state, 1_000), Err(StateError::Expired));
    }

    #[test]
    fn a_tampered_or_foreign_state_is_refused() {
        let state = key().sign(&claims(1_000));
        let (payload, sig) = state.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                name: "other".into(),
                ..claims(1_000)
            })
            .unwrap(),
        );
        assert_eq!(
            key().verify(&format!("{forged_payload}.{sig}"), 0),
            Err(StateError::BadSignature)
        );
        let other = StateKey::new(vec![8; 32]).unwrap();
        assert_eq!(other.verify(&state, 0), Err(StateError::BadSignature));
        assert_eq!(key().verify(payload, 0), Err(StateError::Malformed));
        assert_eq!(key().verify("!!!.???", 0), Err(StateError::Malformed));
    }

    #[test]
    fn the_verifier_is_stable_per_nonce_and_valid_for_pkce() {
        let v = key().pkce_verifier("n1");
        assert_eq!(
            v,
            key().pkce_verifier("n1"),
            "any replica derives the same verifier"
        );
        assert_ne!(v, key().pkce_verifier("n2"));
        assert_eq!(v.len(), 43);
        assert!(
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn short_keys_are_refused_and_keys_never_print() {
        assert!(StateKey::new(vec![1; 16]).is_err());
        assert_eq!(format!("{:?}", key()), "StateKey([redacted])");
    }
}

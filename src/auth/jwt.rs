//! Tenant JWTs for the `tenant-token` auth method (the seed's membrane token): their claims,
//! minted and signed with the connector's key, and read back to see whether one still fits.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::api::SigningAlgorithm;

/// The shortest HMAC keys accepted: a key shorter than the hash's output weakens the
/// signature below the hash's strength.
const MIN_HS256_KEY: usize = 32;
const MIN_HS512_KEY: usize = 64;

/// What the tenant's token says, apart from when it was issued and expires.
pub fn claims(
    issuer: &str,
    tenant_id: &str,
    name: Option<&str>,
    fields: &Map<String, Value>,
) -> Value {
    let mut claims = json!({"iss": issuer, "sub": tenant_id, "id": tenant_id, "fields": fields});
    if let Some(name) = name {
        claims["name"] = json!(name);
    }
    claims
}

/// Identifies the key and algorithm a token was signed with (the JWT header's `kid`), so a
/// changed key mints a new token. A digest prefix: it names the key without revealing it.
pub fn key_id(algorithm: SigningAlgorithm, key: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(format!("{algorithm:?}").as_bytes());
    digest.update(key);
    digest
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Signs `claims` with `iat` and `exp` added. The error says what is wrong with the key,
/// never what the key is.
pub fn mint(
    claims: &Value,
    algorithm: SigningAlgorithm,
    key: &[u8],
    issued_at: i64,
    expires_at: i64,
) -> Result<String, String> {
    let (alg, encoding) = match algorithm {
        SigningAlgorithm::HS256 | SigningAlgorithm::HS512 => {
            let (alg, min) = if algorithm == SigningAlgorithm::HS256 {
                (Algorithm::HS256, MIN_HS256_KEY)
            } else {
                (Algorithm::HS512, MIN_HS512_KEY)
            };
            if key.len() < min {
                return Err(format!(
                    "the {algorithm:?} key has {} bytes; use at least {min}",
                    key.len()
                ));
            }
            (alg, EncodingKey::from_secret(key))
        }
        SigningAlgorithm::RS256 => {
            let encoding = EncodingKey::from_rsa_pem(key)
                .map_err(|_| "the RS256 key is not a PEM RSA private key".to_owned())?;
            (Algorithm::RS256, encoding)
        }
    };
    let mut header = Header::new(alg);
    header.kid = Some(key_id(algorithm, key));
    let mut claims = claims.clone();
    claims["iat"] = json!(issued_at);
    claims["exp"] = json!(expires_at);
    jsonwebtoken::encode(&header, &claims, &encoding)
        .map_err(|_| format!("the {algorithm:?} key could not sign"))
}

/// What a stored token was minted from: its key id and claims (without `iat`/`exp`), and
/// its expiry. Read without verifying the signature: it is the operator's own token, read
/// back from its own Secret, only to decide whether to mint a new one.
pub fn inspect(token: &str) -> Option<(Option<String>, Value, i64)> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let mut claims: Value = serde_json::from_slice(&bytes).ok()?;
    let object = claims.as_object_mut()?;
    object.remove("iat");
    let exp = object.remove("exp")?.as_i64()?;
    Some((header.kid, claims, exp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const KEY: &[u8] = b"a-tenant-token-signing-key-of-32-bytes!";

    #[test]
    fn a_minted_token_verifies_and_reads_back_as_minted() {
        let fields: Map<String, Value> = json!({"plan": "pro"}).as_object().unwrap().clone();
        let want = claims("ws-1", "cust-42", Some("Globex"), &fields);
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let token = mint(&want, SigningAlgorithm::HS256, KEY, now, now + 3600).unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["ws-1"]);
        let data =
            jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(KEY), &validation)
                .unwrap();
        assert_eq!(data.claims["sub"], "cust-42");
        assert_eq!(data.claims["id"], "cust-42");
        assert_eq!(data.claims["name"], "Globex");
        assert_eq!(data.claims["fields"]["plan"], "pro");
        assert_eq!(data.claims["exp"], now + 3600);
        let (kid, read, exp) = inspect(&token).unwrap();
        assert_eq!(kid, Some(key_id(SigningAlgorithm::HS256, KEY)));
        assert_eq!((read, exp), (want, now + 3600));
    }

    #[test]
    fn weak_or_unreadable_keys_are_refused_without_showing_them() {
        let c = claims("ws", "t", None, &Map::new());
        let short = mint(&c, SigningAlgorithm::HS512, KEY, 0, 1).unwrap_err();
        assert!(short.contains("at least 64"), "{short}");
        let pem = mint(&c, SigningAlgorithm::RS256, KEY, 0, 1).unwrap_err();
        assert!(pem.contains("PEM") && !pem.contains("signing-key"), "{pem}");
        assert_ne!(
            key_id(SigningAlgorithm::HS256, KEY),
            key_id(SigningAlgorithm::HS512, KEY)
        );
    }
}

//! Tenant access tokens: the JWTs a SaaS backend signs with its workspace secret to act for
//! one of its tenants at `POST /connect` (claims `id`, `name`, `fields`).

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The shortest workspace secret accepted: HS256 keys shorter than its 256-bit output make
/// the signature easier to forge than the hash is to break.
pub const MIN_SECRET_BYTES: usize = 32;
/// Clock skew tolerated between the backend that signed a token and the operator.
const LEEWAY_SECS: u64 = 30;

/// One workspace: where its tenants live and the secret that signs their access tokens.
pub struct Workspace {
    /// The namespace where `POST /connect` creates Tenants and Connections.
    pub namespace: String,
    /// The workspace key: tokens must carry it as `iss`.
    pub key: String,
    secret: SecretBox<Vec<u8>>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("namespace", &self.namespace)
            .field("key", &self.key)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// What a verified token says about its tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantClaims {
    /// The tenant's id in the SaaS product (`id`, or `sub` when `id` is absent).
    pub id: String,
    pub name: Option<String>,
    pub fields: Option<Map<String, Value>>,
}

/// Why a token was refused. The messages name the problem, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "no tenant access token: send it as `Authorization: Bearer <token>` or as the form field `token`"
    )]
    Missing,
    #[error("the tenant access token has expired (exp)")]
    Expired,
    #[error(
        "the tenant access token was not issued for this workspace (iss must be the workspace key)"
    )]
    WrongIssuer,
    #[error("the tenant access token's signature does not verify with the workspace secret")]
    BadSignature,
    #[error("the tenant access token is not valid: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
struct RawClaims {
    id: Option<Value>,
    sub: Option<String>,
    name: Option<String>,
    fields: Option<Value>,
}

impl Workspace {
    /// A workspace, or a message naming what is wrong with its secret.
    pub fn new(namespace: String, key: String, secret: Vec<u8>) -> Result<Self, String> {
        if key.trim().is_empty() {
            return Err("the workspace key is empty".to_owned());
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the workspace secret has {} bytes; use at least {MIN_SECRET_BYTES}",
                secret.len()
            ));
        }
        Ok(Self {
            namespace,
            key,
            secret: SecretBox::new(Box::new(secret)),
        })
    }

    /// Verifies a token (HS256 or HS512, `exp` required, `iss` the workspace key) and returns
    /// its tenant.
    pub fn verify(&self, token: &str) -> Result<TenantClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError::Invalid("not a JWT".into()))?;
        if !matches!(header.alg, Algorithm::HS256 | Algorithm::HS512) {
            return Err(TokenError::Invalid(format!(
                "alg {:?} is not accepted; sign with HS256 or HS512",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[&self.key]);
        validation.validate_aud = false;
        let key = DecodingKey::from_secret(self.secret.expose_secret());
        let data = jsonwebtoken::decode::<RawClaims>(token, &key, &validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::MissingRequiredClaim(claim) => {
                    TokenError::Invalid(format!("the claim {claim} is required"))
                }
                _ => TokenError::Invalid("its claims could not be read".into()),
            }
        })?;
        claims(data.claims)
    }
}

fn claims(raw: RawClaims) -> Result<TenantClaims, TokenError> {
    let id = match raw.id {
        Some(Value::String(id)) => Some(id),
        // Numeric ids are common in SaaS databases; they name the tenant as their digits.
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(TokenError::Invalid("the claim id must be a string".into())),
        None => raw.sub,
    };
    let id = id
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| TokenError::Invalid("the claim id (the tenant's id) is required".into()))?;
    let fields = match raw.fields {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            return Err(TokenError::Invalid(
                "the claim fields must be an object".into(),
            ));
        }
    };
    Ok(TenantClaims {
        id,
        name: raw.name,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"workspace-secret-0123456789abcdef";

    fn workspace() -> Workspace {
        Workspace::new("acme".into(), "ws-key".into(), SECRET.to_vec()).unwrap()
    }

    fn sign(alg: Algorithm, claims: Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn now() -> i64 {
        k8s_openapi::jiff::Timestamp::now().as_second()
    }

    #[test]
    fn a_good_token_gives_its_tenant() {
        for alg in [Algorithm::HS256, Algorithm::HS512] {
            let token = sign(
                alg,
                json!({"iss": "ws-key", "id": "cust-42", "name": "Globex", "fields": {"plan": "pro"}, "exp": now() + 60}),
                SECRET,
            );
            assert_eq!(
                workspace().verify(&token).unwrap(),
                TenantClaims {
                    id: "cust-42".into(),
                    name: Some("Globex".into()),
                    fields: Some(json!({"plan": "pro"}).as_object().unwrap().clone()),
                }
            );
        }
    }

    #[test]
    fn forged_expired_foreign_and_incomplete_tokens_are_refused_for_what_they_are() {
        let ws = workspace();
        let good = json!({"iss": "ws-key", "id": "cust-42", "exp": now() + 60});
        let forged = sign(
            Algorithm::HS256,
            good.clone(),
            b"another-secret-0123456789abcdefgh",
        );
        assert_eq!(ws.verify(&forged), Err(TokenError::BadSignature));
        let expired = sign(
            Algorithm::HS256,
            json!({"iss": "ws-key", "id": "cust-42", "exp": now() - 3600}),
            SECRET,
        );
        assert_eq!(ws.verify(&expired), Err(TokenError::Expired));
        let foreign = sign(
            Algorithm::HS256,
            json!({"iss": "other", "id": "cust-42", "exp": now() + 60}),
            SECRET,
        );
        assert_eq!(ws.verify(&foreign), Err(TokenError::WrongIssuer));
        let no_exp = sign(
            Algorithm::HS256,
            json!({"iss": "ws-key", "id": "x"}),
            SECRET,
        );
        assert!(matches!(ws.verify(&no_exp), Err(TokenError::Invalid(m)) if m.contains("exp")));
        let no_id = sign(
            Algorithm::HS256,
            json!({"iss": "ws-key", "exp": now() + 60}),
            SECRET,
        );
        assert!(matches!(ws.verify(&no_id), Err(TokenError::Invalid(m)) if m.contains("id")));
        assert!(matches!(ws.verify("garbage"), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn a_short_secret_is_refused_and_debug_never_shows_it() {
        assert!(Workspace::new("acme".into(), "k".into(), b"short".to_vec()).is_err());
        let shown = format!("{:?}", workspace());
        assert!(!shown.contains("workspace-secret"), "{shown}");
    }
}

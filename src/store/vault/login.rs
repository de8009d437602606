//! How the operator proves itself to OpenBao/Vault: a token given to it (development), or
//! the Kubernetes auth method, which trades the operator's projected ServiceAccount token for
//! a Vault token of a role. A login token is renewed (by logging in again) before its lease
//! runs out, and obtained again after a 403 — the token may have been revoked.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::fault::{KvError, messages};

/// Where the projected ServiceAccount token is mounted in every pod.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// How the operator authenticates.
pub enum Auth {
    /// A token, as given (read from a Secret through the environment).
    Token(SecretString),
    /// The Kubernetes auth method at `auth/<mount>`, logging in as `role` with the JWT read
    /// from `jwt_file` at each login (the kubelet rotates it).
    Kubernetes {
        role: String,
        mount: String,
        jwt_file: PathBuf,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token([REDACTED])"),
            Self::Kubernetes { role, mount, .. } => f
                .debug_struct("Kubernetes")
                .field("role", role)
                .field("mount", mount)
                .finish_non_exhaustive(),
        }
    }
}

/// A login token and when to renew it.
struct Session {
    token: SecretString,
    renew_at: Option<Instant>,
}

/// The operator's current Vault token, obtained on first use.
pub struct Login {
    auth: Auth,
    session: Mutex<Option<Session>>,
}

impl Login {
    pub fn new(auth: Auth) -> Self {
        Self {
            auth,
            session: Mutex::new(None),
        }
    }

    /// Whether a refused token can be replaced by logging in again.
    pub fn renewable(&self) -> bool {
        matches!(self.auth, Auth::Kubernetes { .. })
    }

    /// The token to send, logging in first when there is none or it is due for renewal.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        address: &str,
    ) -> Result<SecretString, KvError> {
        let mut session = self.session.lock().await;
        let due = session
            .as_ref()
            .is_none_or(|s| s.renew_at.is_some_and(|at| Instant::now() >= at));
        if due {
            *session = Some(self.login(http, address).await?);
        }
        Ok(session
            .as_ref()
            .map(|s| s.token.clone())
            .unwrap_or_else(|| SecretString::from(String::new())))
    }

    /// Drops the current token, after the store refused it.
    pub async fn forget(&self) {
        if self.renewable() {
            *self.session.lock().await = None;
        }
    }

    async fn login(&self, http: &reqwest::Client, address: &str) -> Result<Session, KvError> {
        let (role, mount, jwt_file) = match &self.auth {
            Auth::Token(token) => {
                return Ok(Session {
                    token: token.clone(),
                    renew_at: None,
                });
            }
            Auth::Kubernetes {
                role,
                mount,
                jwt_file,
            } => (role, mount, jwt_file),
        };
        // A small file on a tmpfs the kubelet keeps: read at once, no blocking worth a thread.
        let jwt = std::fs::read_to_string(jwt_file).map_err(|err| {
            KvError::Misconfigured(format!(
                "cannot read the ServiceAccount token at {} for the Kubernetes auth login: {err}",
                jwt_file.display()
            ))
        })?;
        let url = format!("{address}/v1/auth/{mount}/login");
        let body = json!({"role": role, "jwt": jwt.trim()});
        let response = http
            .post(&url)
            .header("X-Vault-Request", "true")
            .json(&body)
            .send()
            .await
            .map_err(|err| KvError::unreachable(address, &err))?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            200 => {}
            400 | 403 => {
                return Err(KvError::Forbidden(format!(
                    "the Kubernetes auth login as role {role:?} at auth/{mount} was refused ({}); check the role's bound ServiceAccount and namespace",
                    messages(&answer)
                )));
            }
            404 => {
                return Err(KvError::Misconfigured(format!(
                    "no Kubernetes auth method is enabled at auth/{mount} (set --vault-auth-mount)"
                )));
            }
            code => return Err(KvError::status(code, &answer)),
        }
        let token = answer
            .pointer("/auth/client_token")
            .and_then(Value::as_str)
            .ok_or_else(|| KvError::Unavailable("the login answer has no client_token".into()))?;
        let lease = answer
            .pointer("/auth/lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(Session {
            token: SecretString::from(token.to_owned()),
            renew_at: renew_at(Duration::from_secs(lease)),
        })
    }
}

/// When to log in again for a lease of `lease`: two thirds through it, so that a slow login
/// still lands before the token expires. A lease of 0 never expires.
fn renew_at(lease: Duration) -> Option<Instant> {
    (!lease.is_zero()).then(|| Instant::now() + lease.mul_f64(2.0 / 3.0))
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_renewed_two_thirds_through_and_an_endless_one_never() {
        let at = renew_at(Duration::from_secs(3600)).unwrap();
        let left = at.duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(2390) && left <= Duration::from_secs(2400),
            "{left:?}"
        );
        assert!(renew_at(Duration::ZERO).is_none());
    }

    #[test]
    fn debug_never_prints_the_token() {
        let auth = Auth::Token(SecretString::from("s.hunter2".to_owned()));
        assert!(!format!("{auth:?}").contains("hunter2"));
        let login = Login::new(auth);
        assert!(!format!("{login:?}").contains("hunter2"));
    }
}

//! Connect sessions: what a SaaS backend hands its frontend so that a person can connect an
//! account on the operator's hosted page without the tenant access token ever reaching a
//! browser URL.
//!
//! A session is signed, not stored: it carries everything it fixes (the tenant, the connector
//! or the Connection to reconnect, the connector parameters, the auth option, where to go
//! afterwards) under the operator's state key, in its own signing domain, so any replica can
//! serve it and the browser cannot change any of it. A session is spent once it has
//! connected: its marker is recorded on the Connection, and the page refuses it after that.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::access_token::TenantClaims;
use super::state::{StateError, StateKey, consumed_marker, nonce};
use crate::api::ConnectorKind;

/// How long a session lasts unless its creator asks otherwise: long enough for a person to
/// find an API key in another tab, short enough that a leaked link soon stops working.
pub const DEFAULT_LIFETIME_SECS: i64 = 30 * 60;
/// The longest session that may be asked for: a day covers an invitation sent by mail.
pub const MAX_LIFETIME_SECS: i64 = 24 * 60 * 60;

/// The signing domain of sessions: a session can stand in for no other signed value.
const DOMAIN: &[u8] = b"connect-session";
/// The domain of the page's CSRF tokens.
const CSRF_DOMAIN: &[u8] = b"connect-csrf";

/// What a session connects: a connector (a new Connection, or the tenant's existing one to
/// it) or one existing Connection, to re-enter its input or consent again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    Connector { kind: ConnectorKind, name: String },
    Connection { name: String },
}

/// What a session fixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The workspace namespace, where the Tenant and Connection live.
    pub ns: String,
    pub tenant: TenantClaims,
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    /// The auth option, when the backend chose it; else the person chooses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<String>,
    /// A new Connection even when the tenant has one to this connector.
    #[serde(default)]
    pub multiple: bool,
    /// Where the person goes afterwards (already checked against the allowlist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: i64,
    pub nonce: String,
}

/// Why a session was refused; the messages are shown on the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("this connect link is not valid; ask the application for a new one")]
    NotValid,
    #[error("this connect link has expired; go back to the application and start again")]
    Expired,
}

impl SessionError {
    /// The name the page and `/connect.js` report it by.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotValid => "session_invalid",
            Self::Expired => "session_expired",
        }
    }
}

impl Session {
    /// A session for `tenant` lasting `lifetime` seconds from `now`.
    pub fn new(ns: String, tenant: TenantClaims, target: Target, now: i64, lifetime: i64) -> Self {
        Self {
            ns,
            tenant,
            target,
            parameters: None,
            option: None,
            multiple: false,
            redirect: None,
            exp: now + lifetime,
            nonce: nonce(),
        }
    }

    pub fn seal(&self, key: &StateKey) -> String {
        key.seal(DOMAIN, self)
    }

    /// The session `token` carries, if this operator signed it and it has not expired at
    /// `now`.
    pub fn open(key: &StateKey, token: &str, now: i64) -> Result<Self, SessionError> {
        let session: Self = key.open(DOMAIN, token).map_err(|err| match err {
            StateError::Malformed | StateError::BadSignature | StateError::Expired => {
                SessionError::NotValid
            }
        })?;
        if now >= session.exp {
            return Err(SessionError::Expired);
        }
        Ok(session)
    }

    /// What is recorded on the Connection once the session connected it.
    pub fn marker(&self) -> String {
        consumed_marker(&self.nonce)
    }

    /// The CSRF token of the session's form in the browser holding `cookie`: a form posted
    /// from anywhere but the page that browser loaded does not carry it.
    pub fn csrf(&self, key: &StateKey, cookie: &str) -> String {
        key.tag(CSRF_DOMAIN, &self.csrf_data(cookie))
    }

    /// Whether `token` is the CSRF token of this session's form for `cookie`.
    pub fn csrf_matches(&self, key: &StateKey, cookie: &str, token: &str) -> bool {
        key.tag_matches(CSRF_DOMAIN, &self.csrf_data(cookie), token)
    }

    fn csrf_data(&self, cookie: &str) -> Vec<u8> {
        // The nonce has a fixed alphabet without NUL, so the pair reads back one way only.
        let mut data = Vec::with_capacity(self.nonce.len() + cookie.len() + 1);
        data.extend(self.nonce.as_bytes());
        data.push(0);
        data.extend(cookie.as_bytes());
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StateKey {
        StateKey::new(vec![3; 32]).unwrap()
    }

    fn session(now: i64) -> Session {
        let tenant = TenantClaims {
            id: "globex".into(),
            name: None,
            fields: None,
        };
        let target = Target::Connector {
            kind: ConnectorKind::Connector,
            name: "stripe".into(),
        };
        Session::new("acme".into(), tenant, target, now, 60)
    }

    #[test]
    fn a_session_opens_until_it_expires_and_only_with_its_key() {
        let s = session(1_000);
        let token = s.seal(&key());
        assert_eq!(Session::open(&key(), &token, 1_059), Ok(s));
        assert_eq!(
            Session::open(&key(), &token, 1_060),
            Err(SessionError::Expired)
        );
        let other = StateKey::new(vec![4; 32]).unwrap();
        assert_eq!(
            Session::open(&other, &token, 1_000),
            Err(SessionError::NotValid)
        );
        assert_eq!(
            Session::open(&key(), "garbage", 1_000),
            Err(SessionError::NotValid)
        );
    }

    #[test]
    fn a_session_is_no_oauth_state_and_no_state_is_a_session() {
        let s = session(1_000);
        let token = s.seal(&key());
        assert!(key().verify(&token, 1_000).is_err());
        let state = key().sign(&crate::auth::state::Claims {
            ns: "acme".into(),
            name: "x".into(),
            uid: "u".into(),
            exp: 2_000,
            nonce: nonce(),
            redirect: None,
            session: None,
        });
        assert_eq!(
            Session::open(&key(), &state, 1_000),
            Err(SessionError::NotValid)
        );
    }

    #[test]
    fn the_csrf_token_is_bound_to_the_session_and_the_browser() {
        let (a, b) = (session(1_000), session(1_000));
        let token = a.csrf(&key(), "cookie-1");
        assert!(a.csrf_matches(&key(), "cookie-1", &token));
        assert!(
            !a.csrf_matches(&key(), "cookie-2", &token),
            "another browser"
        );
        assert!(
            !b.csrf_matches(&key(), "cookie-1", &token),
            "another session"
        );
        assert!(!a.csrf_matches(&key(), "cookie-1", "forged"));
    }
}

//! Tokens a reconcile obtained from a provider but could not store.
//!
//! A provider that rotates refresh tokens invalidates the old one the moment it issues the
//! new one, so tokens that were obtained and then not stored (the API server refused the
//! write, or timed out) are the only copy of a working refresh token. They are kept here, by
//! the Connection's uid, until a reconcile stores them instead of asking the provider again.
//! Memory holds them across reconciles, not across a restart: a crash between the token
//! response and the write still loses them, which no store can prevent.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::jiff::Timestamp;
use kube::Resource;

use crate::api::Connection;
use crate::store::Credentials;

/// New tokens waiting to be stored, with the schedule status records for them.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    pub credentials: Credentials,
    pub expires_at: Option<Timestamp>,
    pub next_refresh_at: Option<Timestamp>,
    pub refreshed_at: Option<Timestamp>,
    /// The refresh request annotation they answered, echoed once they are stored.
    pub refresh_requested_at: Option<String>,
}

#[derive(Default)]
pub struct Unsaved(Mutex<HashMap<String, Kept>>);

impl Unsaved {
    /// Keeps `tokens` for the next reconcile of `conn`, replacing older ones: these are newer.
    pub fn keep(&self, conn: &Connection, tokens: Kept) {
        let Some(uid) = conn.meta().uid.clone() else {
            return;
        };
        tracing::warn!(
            "new tokens could not be stored; they are kept in memory and stored by the next attempt"
        );
        self.lock().insert(uid, tokens);
    }

    /// The tokens kept for `conn`, left in place until [`Unsaved::stored`] says they are safe.
    pub fn peek(&self, conn: &Connection) -> Option<Kept> {
        let uid = conn.meta().uid.as_deref()?;
        self.lock().get(uid).cloned()
    }

    /// The tokens kept for `conn` reached the store.
    pub fn stored(&self, conn: &Connection) {
        if let Some(uid) = conn.meta().uid.as_deref() {
            self.lock().remove(uid);
        }
    }

    /// The tokens kept for `conn`, which the caller now owns (a deleted Connection's, to
    /// revoke).
    pub fn take(&self, conn: &Connection) -> Option<Kept> {
        let uid = conn.meta().uid.as_deref()?;
        self.lock().remove(uid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kept>> {
        // A panic while holding the lock cannot leave the map half-changed (insert and
        // remove are single calls), so a poisoned lock is still good to use.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};

    use super::*;

    fn connection(uid: &str) -> Connection {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "acme-hubspot", "namespace": "default", "uid": uid},
            "spec": {"tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"}},
        }))
        .unwrap()
    }

    fn tokens(refresh_token: &str) -> Kept {
        Kept {
            credentials: [(
                "refresh_token".to_owned(),
                SecretString::from(refresh_token.to_owned()),
            )]
            .into(),
            ..Kept::default()
        }
    }

    #[test]
    fn kept_tokens_stay_for_their_connection_only_until_they_are_stored() {
        let unsaved = Unsaved::default();
        let (a, b) = (connection("uid-a"), connection("uid-b"));
        unsaved.keep(&a, tokens("rt-2"));
        unsaved.keep(&a, tokens("rt-3"));
        assert!(
            unsaved.peek(&b).is_none(),
            "another Connection gets nothing"
        );
        let kept = unsaved.peek(&a).expect("kept for its Connection");
        assert_eq!(kept.credentials["refresh_token"].expose_secret(), "rt-3");
        assert!(unsaved.peek(&a).is_some(), "still there until stored");
        unsaved.stored(&a);
        assert!(unsaved.peek(&a).is_none(), "gone once stored");
        unsaved.keep(&a, tokens("rt-4"));
        assert!(unsaved.take(&a).is_some() && unsaved.take(&a).is_none());
    }
}

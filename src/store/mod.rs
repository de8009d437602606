//! Credential stores: where a Connection's credentials and rendered API client are kept for
//! the workloads that use them.
//!
//! A store is a [`CredentialStore`]: it reads what it holds for a Connection, writes what
//! should be there (optimistically, against the version it read, when new tokens replace
//! old ones), deletes it, and says in status where it lives. Everything else (what to
//! store, whether a write is needed) is decided above it, the same way for every store.

pub mod kubernetes;
pub mod vault;

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

use crate::api::{Connection, CredentialsReference, CredentialsStoreKind, DeletionPolicy};
use crate::error::Error;
use crate::provider::api_client::RenderedApiClient;

/// Credentials by key. Values print as `[REDACTED]` in `Debug`.
pub type Credentials = BTreeMap<String, SecretString>;

/// The key of the rendered API client beside the credentials.
pub const API_CLIENT_KEY: &str = "api-client.json";

/// What a store holds for one Connection, as read a moment ago.
#[derive(Clone)]
pub struct Stored {
    /// Every key, the rendered API client's among them.
    pub data: Credentials,
    /// The store's version of this content, for an optimistic write over it.
    pub version: String,
    /// The keys plugboard wrote before: a key among them that is no longer wanted is stale.
    /// Keys someone else added are theirs and left alone.
    pub owned: Vec<String>,
    /// Whether what the store keeps beside the data (labels, owner, not being deleted) is as
    /// plugboard writes it.
    pub in_order: bool,
    /// The consent flows completed for this Connection whose states have not expired, as the
    /// consent callback recorded them (`<marker>@<expiry>` separated by spaces).
    pub consumed_states: Option<String>,
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Stored {
    /// The credentials: everything but the rendered API client.
    pub fn credentials(&self) -> Credentials {
        self.data
            .iter()
            .filter(|(k, _)| k.as_str() != API_CLIENT_KEY)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The stored API client as written, the last good one when a new one cannot be rendered.
    pub fn api_client(&self) -> Option<&SecretString> {
        self.data.get(API_CLIENT_KEY)
    }
}

/// What a store should hold for a Connection.
pub struct Want {
    pub data: Credentials,
}

impl Want {
    /// The credentials and, when there is one, the rendered API client beside them.
    pub fn new(credentials: &Credentials, api_client: Option<&RenderedApiClient>) -> Self {
        let mut data = credentials.clone();
        if let Some(client) = api_client {
            data.insert(API_CLIENT_KEY.to_owned(), client.to_json().into());
        }
        Self { data }
    }

    /// `self` with the API client `stored` holds, for new tokens whose API client cannot be
    /// rendered: the stored one is the last good one.
    pub fn keeping_api_client(mut self, stored: Option<&Stored>) -> Self {
        if let Some(client) = stored.and_then(Stored::api_client) {
            self.data.insert(API_CLIENT_KEY.to_owned(), client.clone());
        }
        self
    }
}

/// Whether `stored` already is what writing `want` would make it: every wanted key with its
/// value, no key plugboard wrote before and no longer wants, and the store's own metadata in
/// order. Keys someone else added do not count: a write would leave them anyway, so they
/// must not make every reconcile write.
pub fn up_to_date(stored: &Stored, want: &Want) -> bool {
    let values_ok = want.data.iter().all(|(k, v)| {
        stored
            .data
            .get(k)
            .is_some_and(|have| have.expose_secret() == v.expose_secret())
    });
    let nothing_stale = stored.owned.iter().all(|k| want.data.contains_key(k));
    values_ok && nothing_stale && stored.in_order
}

/// Who writes, which decides what the write owns beside the data.
pub enum Writer<'a> {
    /// The reconcile: the whole content, its own keys only.
    Controller,
    /// The consent callback: tokens it obtained, and the states now spent.
    Consent { consumed_states: &'a str },
}

/// One place credentials are kept.
pub trait CredentialStore: Send + Sync {
    /// Where `conn`'s credentials live, as status shows it; `version` is the store's version
    /// of them, as read or written.
    fn reference(&self, conn: &Connection, version: Option<&str>) -> CredentialsReference;

    /// What the store holds for `conn` now, read from the store itself (never a cached copy:
    /// a refresh token rotated a moment ago is what a reconcile must see).
    fn read<'a>(&'a self, conn: &'a Connection) -> BoxFuture<'a, Result<Option<Stored>, Error>>;

    /// Writes `want` for `conn`; returns the version now stored. With `over`, only over that
    /// version: if the content changed meanwhile the store refuses, and the write is
    /// repeated over the newest version, because tokens just obtained are newer than
    /// anything stored and must not be lost.
    fn write<'a>(
        &'a self,
        conn: &'a Connection,
        want: &'a Want,
        writer: Writer<'a>,
        over: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, Error>>;

    /// Deletes what the store holds for `conn`; whether there was anything.
    fn delete<'a>(&'a self, conn: &'a Connection) -> BoxFuture<'a, Result<bool, Error>>;

    /// Whether the store keeps a Connection's credentials as a Kubernetes object it owns: then
    /// the garbage collector deletes them with the Connection, operator or not, and the
    /// operator's watches see every write. A store outside the cluster needs the Connection's
    /// finalizer to be emptied, and its writers must wake the reconcile themselves.
    fn in_cluster(&self) -> bool;
}

/// Every store this build has.
pub struct Stores {
    pub kubernetes: kubernetes::SecretStore,
    /// Configured by the operator's `--vault-*` settings; absent without them.
    pub vault: Option<std::sync::Arc<vault::VaultStore>>,
    /// The store of a Connection whose `spec.credentials.store` is unset.
    pub default: CredentialsStoreKind,
}

impl Stores {
    pub fn new(client: kube::Client, vault: Option<std::sync::Arc<vault::VaultStore>>) -> Self {
        let default = if vault.as_ref().is_some_and(|v| v.is_default()) {
            CredentialsStoreKind::Vault
        } else {
            CredentialsStoreKind::Kubernetes
        };
        Self {
            kubernetes: kubernetes::SecretStore::new(client),
            vault,
            default,
        }
    }

    /// The store `conn` keeps its credentials in, or why it cannot have it.
    pub fn of(&self, conn: &Connection) -> Result<&dyn CredentialStore, Error> {
        let wanted = conn.spec.credentials.as_ref();
        match wanted.and_then(|c| c.store).unwrap_or(self.default) {
            CredentialsStoreKind::Kubernetes => {
                if wanted.and_then(|c| c.deletion_policy) == Some(DeletionPolicy::Retain) {
                    return Err(Error::InvalidInput(
                        "spec.credentials.deletionPolicy Retain needs store vault: a credentials Secret is owned by its Connection and always goes with it".to_owned(),
                    ));
                }
                Ok(&self.kubernetes)
            }
            CredentialsStoreKind::Vault => match &self.vault {
                Some(vault) => Ok(vault.as_ref()),
                None => Err(Error::StoreMisconfigured(
                    "spec.credentials.store is vault, but this operator has no vault store: start it with --vault-address (chart: vault.address)".to_owned(),
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(data: &[(&str, &str)], owned: &[&str]) -> Stored {
        Stored {
            data: data
                .iter()
                .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
                .collect(),
            version: "1".to_owned(),
            owned: owned.iter().map(|k| k.to_string()).collect(),
            in_order: true,
            consumed_states: None,
        }
    }

    fn want(data: &[(&str, &str)]) -> Want {
        Want {
            data: stored(data, &[]).data,
        }
    }

    #[test]
    fn a_key_someone_else_added_does_not_make_it_stale() {
        let have = stored(&[("apiKey", "k"), ("note", "theirs")], &["apiKey"]);
        assert!(up_to_date(&have, &want(&[("apiKey", "k")])));
    }

    #[test]
    fn a_changed_value_a_key_no_longer_wanted_or_metadata_out_of_order_is_stale() {
        let want_new = want(&[("apiKey", "new")]);
        assert!(!up_to_date(
            &stored(&[("apiKey", "old")], &["apiKey"]),
            &want_new
        ));
        let have = stored(&[("apiKey", "k"), ("token", "t")], &["apiKey", "token"]);
        assert!(!up_to_date(&have, &want(&[("apiKey", "k")])));
        let mut relabelled = stored(&[("apiKey", "k")], &["apiKey"]);
        relabelled.in_order = false;
        assert!(!up_to_date(&relabelled, &want(&[("apiKey", "k")])));
    }
}

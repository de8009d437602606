//! The OpenBao/Vault store: a Connection's credentials and rendered API client as one secret
//! of a KV version 2 mount, at `<mount>/data/<prefix>/<path>`.
//!
//! Every write carries check-and-set: new tokens are written over the version read, and a
//! write that meets a newer version reads it again and writes over it (the tokens just
//! obtained are the newest there are). The secret at the path is the operator's alone, so
//! every key in it is one plugboard wrote. The consent callback's spent states go in the
//! secret's custom metadata, where workloads reading the data do not see them.

mod fault;
mod kv;
mod login;
pub mod path;

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures::FutureExt;
use futures::future::BoxFuture;
use secrecy::SecretString;

pub use self::fault::KvError;
use self::kv::{Entry, Kv};
pub use self::login::{Auth, SERVICE_ACCOUNT_TOKEN};
use super::{CredentialStore, Stored, Want, Writer};
use crate::api::{Connection, CredentialsReference, CredentialsStoreKind};
use crate::error::Error;

/// The custom-metadata key of the consent flows completed on the secret (as the Secret
/// store's annotation).
const CONSUMED_STATES: &str = "plugboard.dev/authorized-state";

/// How often a write is repeated over a version that moved under it: each retry reads the
/// current version, and a third concurrent writer within milliseconds means something is wrong.
const CAS_RETRIES: usize = 3;

/// The operator's settings for the store.
#[derive(Debug)]
pub struct Config {
    /// For example `https://openbao.example.com:8200`.
    pub address: String,
    /// The KV version 2 mount, `secret` by default.
    pub mount: String,
    /// Every Connection's path goes under this one, which the operator's policy grants.
    pub prefix: String,
    /// PEM certificates to trust for the server, beside the system's.
    pub ca_file: Option<PathBuf>,
    pub auth: Auth,
    /// Whether Connections without `spec.credentials.store` use this store.
    pub default: bool,
}

/// Why a store's settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--vault-ca-file {path}: {reason}")]
    Ca { path: String, reason: String },
    #[error("--vault-address {0:?}: use an http(s) URL such as https://openbao.example.com:8200")]
    Address(String),
}

/// Credentials in a KV version 2 mount.
/// `Debug` shows where it is, never the token.
#[derive(Debug)]
pub struct VaultStore {
    kv: Kv,
    prefix: String,
    default: bool,
}

impl VaultStore {
    /// The store as `config` describes it; `timeout` bounds each request.
    pub fn new(config: Config, timeout: std::time::Duration) -> Result<Self, ConfigError> {
        let url = url::Url::parse(&config.address)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| ConfigError::Address(config.address.clone()))?;
        let mut http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(crate::meta::USER_AGENT)
            // The store is the operator's own; a redirect elsewhere would carry its token.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_file {
            let ca = |reason: String| ConfigError::Ca {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca(e.to_string()))?;
            for cert in
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca(e.to_string()))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .build()
            .map_err(|e| ConfigError::Address(e.to_string()))?;
        let address = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            kv: Kv::new(
                http,
                &address,
                &config.mount,
                login::Login::new(config.auth),
            ),
            prefix: config.prefix.trim_matches('/').to_owned(),
            default: config.default,
        })
    }

    pub fn is_default(&self) -> bool {
        self.default
    }

    fn path(&self, conn: &Connection) -> Result<String, Error> {
        path::resolve(conn, &self.prefix)
    }

    async fn read_entry(&self, conn: &Connection) -> Result<Option<Stored>, Error> {
        let path = self.path(conn)?;
        let entry = self.kv.read(&path).await.map_err(store_error)?;
        Ok(entry.map(stored))
    }

    async fn write_entry(
        &self,
        conn: &Connection,
        want: &Want,
        writer: Writer<'_>,
        over: Option<&str>,
    ) -> Result<String, Error> {
        let path = self.path(conn)?;
        let mut cas = match over.map(str::parse::<u64>) {
            Some(Ok(version)) => version,
            // Over nothing: only if there is nothing.
            Some(Err(_)) if over == Some("") => 0,
            _ => self.kv.current_version(&path).await.map_err(store_error)?,
        };
        for _ in 0..CAS_RETRIES {
            match self.kv.write(&path, &want.data, cas).await {
                Ok(version) => {
                    if let Writer::Consent { consumed_states } = writer {
                        let metadata = BTreeMap::from([(
                            CONSUMED_STATES.to_owned(),
                            consumed_states.to_owned(),
                        )]);
                        self.kv
                            .set_custom_metadata(&path, &metadata)
                            .await
                            .map_err(store_error)?;
                    }
                    return Ok(version.to_string());
                }
                Err(KvError::CasMismatch) => {
                    tracing::info!(
                        "the stored credentials changed while new ones were written; writing them over the new version"
                    );
                    cas = self.kv.current_version(&path).await.map_err(store_error)?;
                }
                Err(err) => return Err(store_error(err)),
            }
        }
        Err(Error::StoreUnavailable(format!(
            "{}/data/{path} kept changing while new credentials were written; retrying",
            self.kv.mount()
        )))
    }

    async fn delete_entry(&self, conn: &Connection) -> Result<bool, Error> {
        let path = self.path(conn)?;
        self.kv.delete(&path).await.map_err(store_error)
    }
}

impl CredentialStore for VaultStore {
    fn reference(&self, conn: &Connection, version: Option<&str>) -> CredentialsReference {
        CredentialsReference {
            store: CredentialsStoreKind::Vault,
            mount: Some(self.kv.mount().to_owned()),
            path: self.path(conn).ok(),
            version: version.and_then(|v| v.parse().ok()),
            ..CredentialsReference::default()
        }
    }

    fn read<'a>(&'a self, conn: &'a Connection) -> BoxFuture<'a, Result<Option<Stored>, Error>> {
        self.read_entry(conn).boxed()
    }

    fn write<'a>(
        &'a self,
        conn: &'a Connection,
        want: &'a Want,
        writer: Writer<'a>,
        over: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, Error>> {
        self.write_entry(conn, want, writer, over).boxed()
    }

    fn delete<'a>(&'a self, conn: &'a Connection) -> BoxFuture<'a, Result<bool, Error>> {
        self.delete_entry(conn).boxed()
    }

    /// Outside the cluster: only the operator, behind the Connection's finalizer, deletes
    /// it, and no watch sees it change.
    fn in_cluster(&self) -> bool {
        false
    }
}

fn stored(entry: Entry) -> Stored {
    let owned = entry.data.keys().cloned().collect();
    Stored {
        data: entry.data,
        version: entry.version.to_string(),
        owned,
        in_order: true,
        consumed_states: entry.custom_metadata.get(CONSUMED_STATES).cloned(),
    }
}

fn store_error(err: KvError) -> Error {
    match err {
        KvError::Unavailable(message) => Error::StoreUnavailable(message),
        KvError::Forbidden(message) => Error::StoreForbidden(message),
        KvError::Misconfigured(message) => Error::StoreMisconfigured(message),
        KvError::CasMismatch => Error::StoreUnavailable(
            "the stored credentials changed while they were written; retrying".to_owned(),
        ),
    }
}

/// A token for [`Auth::Token`], kept out of `Debug`.
pub fn token(value: String) -> Auth {
    Auth::Token(SecretString::from(value))
}

//! The `--vault-*` settings of `plugboard run`: where the OpenBao/Vault store is and how the
//! operator logs in to it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::store::vault::{self, Auth, SERVICE_ACCOUNT_TOKEN, VaultStore};

/// How long one store request may take: the store is the operator's own dependency, close
/// by; past this it counts as unavailable and the reconcile is retried at its backoff.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Args, Debug, Clone)]
pub struct VaultArgs {
    /// The OpenBao/Vault server, such as https://openbao.openbao.svc:8200. Without it, no
    /// Connection can use `store: vault`.
    #[arg(long, env = "PLUGBOARD_VAULT_ADDRESS")]
    pub vault_address: Option<String>,
    /// The KV version 2 mount the credentials go to.
    #[arg(long, env = "PLUGBOARD_VAULT_MOUNT", default_value = "secret")]
    pub vault_mount: String,
    /// The path, inside the mount, every Connection's path goes under: the operator's policy
    /// needs to grant only this subtree.
    #[arg(long, env = "PLUGBOARD_VAULT_PATH_PREFIX", default_value = "plugboard")]
    pub vault_path_prefix: String,
    /// PEM certificates to trust for the server, beside the system's.
    #[arg(long, env = "PLUGBOARD_VAULT_CA_FILE")]
    pub vault_ca_file: Option<PathBuf>,
    /// `kubernetes` (log in with the pod's ServiceAccount token) or `token`.
    #[arg(long, env = "PLUGBOARD_VAULT_AUTH", value_enum, default_value_t = VaultAuth::Kubernetes)]
    pub vault_auth: VaultAuth,
    /// The role to log in as with `--vault-auth kubernetes`.
    #[arg(long, env = "PLUGBOARD_VAULT_ROLE", default_value = "plugboard")]
    pub vault_role: String,
    /// Where the Kubernetes auth method is enabled.
    #[arg(long, env = "PLUGBOARD_VAULT_AUTH_MOUNT", default_value = "kubernetes")]
    pub vault_auth_mount: String,
    /// The ServiceAccount token to log in with.
    #[arg(long, env = "PLUGBOARD_VAULT_JWT_FILE", default_value = SERVICE_ACCOUNT_TOKEN)]
    pub vault_jwt_file: PathBuf,
    /// The token for `--vault-auth token` (development; the chart reads it from a Secret).
    #[arg(long, env = "PLUGBOARD_VAULT_TOKEN", hide_env_values = true)]
    pub vault_token: Option<String>,
}

/// How the operator logs in to the store.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultAuth {
    /// The Kubernetes auth method, with the pod's projected ServiceAccount token.
    Kubernetes,
    /// A token given in PLUGBOARD_VAULT_TOKEN.
    Token,
}

impl VaultArgs {
    /// The store these settings describe, or none without `--vault-address`; `default` when
    /// `--default-store vault`. The error is the one line to print.
    pub fn store(&self, default: bool) -> Result<Option<VaultStore>, String> {
        let Some(address) = &self.vault_address else {
            if default {
                return Err(
                    "--default-store vault needs --vault-address (chart: vault.address)".into(),
                );
            }
            return Ok(None);
        };
        let auth = match (self.vault_auth, &self.vault_token) {
            (VaultAuth::Token, Some(token)) if !token.is_empty() => vault::token(token.clone()),
            (VaultAuth::Token, _) => {
                return Err(
                    "--vault-auth token needs PLUGBOARD_VAULT_TOKEN (chart: vault.tokenSecret)"
                        .into(),
                );
            }
            (VaultAuth::Kubernetes, _) => Auth::Kubernetes {
                role: self.vault_role.clone(),
                mount: self.vault_auth_mount.trim_matches('/').to_owned(),
                jwt_file: self.vault_jwt_file.clone(),
            },
        };
        let config = vault::Config {
            address: address.clone(),
            mount: self.vault_mount.clone(),
            prefix: self.vault_path_prefix.clone(),
            ca_file: self.vault_ca_file.clone(),
            auth,
            default,
        };
        VaultStore::new(config, REQUEST_TIMEOUT)
            .map(Some)
            .map_err(|err| err.to_string())
    }
}

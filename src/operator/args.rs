//! What `plugboard run` takes: its flags and their environment variables, with defaults and
//! the help `plugboard run --help` shows.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::telemetry::LogFormat;

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Address of the HTTP server for /healthz, /readyz and the connect endpoints.
    #[arg(long, env = "PLUGBOARD_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "PLUGBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter in tracing's EnvFilter syntax (for example `info` or
    /// `plugboard=debug,kube=info`).
    #[arg(long, env = "PLUGBOARD_LOG", default_value = "info")]
    pub log_level: String,
    /// Only watch this namespace (all namespaces when unset). ClusterConnectors are always
    /// watched cluster-wide.
    #[arg(long, env = "PLUGBOARD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Let provider URLs reach loopback, link-local and private addresses. Off by default:
    /// connector templates put user input into URLs, and this guard keeps them away from the
    /// cloud metadata service and in-cluster services. Turn it on only for tests or a
    /// provider that really lives on a private network.
    #[arg(long, env = "PLUGBOARD_ALLOW_PRIVATE_NETWORKS")]
    pub allow_private_networks: bool,
    /// The public base URL of this operator's HTTP server (for example
    /// `https://plugboard.example.com`), where people open authorization links and providers
    /// send them back to `/oauth/callback`. Without it, oauth2 Connections cannot show an
    /// authorizationUrl.
    #[arg(long, env = "PLUGBOARD_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Addresses a finished consent flow may redirect to, as URL prefixes (comma-separated,
    /// for example `https://app.example.com/integrations`). Any other `redirectUri` is refused.
    #[arg(long, env = "PLUGBOARD_REDIRECT_ALLOWLIST", value_delimiter = ',')]
    pub redirect_allowlist: Vec<String>,
    /// Origins that may embed the hosted connect page in a frame (comma-separated, for
    /// example `https://app.example.com`); by default no page may frame it.
    #[arg(long, env = "PLUGBOARD_CONNECT_FRAME_ANCESTORS", value_delimiter = ',', value_parser = parse_origin)]
    pub connect_frame_ancestors: Vec<String>,
    /// A JSON Schema file (draft 2020-12) that every Tenant's fields must satisfy; any object
    /// when unset. A Tenant whose fields do not match is Ready=False, reason InvalidFields.
    #[arg(long, env = "PLUGBOARD_TENANT_FIELDS_SCHEMA", value_name = "FILE")]
    pub tenant_fields_schema: Option<PathBuf>,
    /// Run the controllers only while holding a Lease, so that with several replicas exactly
    /// one reconciles; every replica serves the HTTP endpoints.
    #[arg(long, env = "PLUGBOARD_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Name of the Lease used for leader election, in the operator's namespace.
    #[arg(long, env = "PLUGBOARD_LEASE_NAME", default_value = "plugboard-leader")]
    pub lease_name: String,
    /// This replica's identity in the Lease (the pod name, from the downward API); random
    /// when unset.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// The namespace the operator runs in, where it keeps the OAuth state signing key.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub operator_namespace: String,
    /// Name of the Secret holding the OAuth state signing key (key `key`, at least 32 bytes).
    /// Created with a random key when missing, so every replica signs and verifies alike.
    #[arg(
        long,
        env = "PLUGBOARD_STATE_KEY_SECRET",
        default_value = "plugboard-state-key"
    )]
    pub state_key_secret: String,
    /// Where a Connection stores its credentials when its `spec.credentials.store` is unset.
    /// `vault` needs --vault-address.
    #[arg(long, env = "PLUGBOARD_DEFAULT_STORE", value_enum, default_value_t = DefaultStore::Kubernetes)]
    pub default_store: DefaultStore,
    /// Turns on `POST /connect` (the backend connection method) and names the namespace
    /// where it creates Tenants and Connections. Needs --public-url for oauth2 connectors.
    #[arg(long, env = "PLUGBOARD_CONNECT_NAMESPACE")]
    pub connect_namespace: Option<String>,
    /// The Secret, in the operator's namespace, holding the workspace that signs tenant
    /// access tokens for `POST /connect`: key `key` (the tokens' `iss`) and key `secret`
    /// (the HS256/HS512 signing secret, at least 32 bytes).
    #[arg(
        long,
        env = "PLUGBOARD_WORKSPACE_SECRET",
        default_value = "plugboard-workspace"
    )]
    pub workspace_secret: String,
    /// How many Connections are reconciled at the same time (0: no limit). Provider requests
    /// are limited separately, to a few at a time per host.
    #[arg(long, env = "PLUGBOARD_CONCURRENCY", default_value_t = crate::controller::DEFAULT_CONCURRENCY)]
    pub concurrency: u16,
    #[command(flatten)]
    pub vault: super::vault_args::VaultArgs,
}

/// The credential stores a default may name.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultStore {
    /// A Kubernetes Secret in the Connection's namespace.
    Kubernetes,
    /// OpenBao or Vault KV version 2 (the `--vault-*` settings).
    Vault,
}

fn parse_origin(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|err| format!("not a URL: {err}"))?;
    let origin = url.origin();
    if !matches!(url.scheme(), "https" | "http") || !origin.is_tuple() {
        return Err("use an origin such as https://app.example.com".into());
    }
    Ok(origin.ascii_serialization())
}

fn parse_public_url(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|err| format!("not a URL: {err}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("use an http(s) URL with a host, such as https://plugboard.example.com".into());
    }
    Ok(value.trim_end_matches('/').to_owned())
}

//! `plugboard run`: connect to the cluster, check it is usable, then serve and reconcile
//! until told to stop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client, Config};

use self::args::{DefaultStore, RunArgs};
use crate::api::Connection;
use crate::auth::access_token::Workspace;
use crate::auth::state::StateKey;
use crate::{telemetry, web};

pub mod args;
mod vault_args;

/// How long to wait for the API server at start. Long enough for a slow control plane, short
/// enough that a wrong kubeconfig fails fast instead of hanging a terminal or a rollout.
const STARTUP_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the operator could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("{0}")]
    Logging(String),
    #[error("no Kubernetes configuration found ({0}); set KUBECONFIG or run inside a cluster")]
    NoConfig(String),
    #[error("cannot reach the Kubernetes API server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the plugboard CRDs are not installed in the cluster at {url}; install them with `plugboard crd | kubectl apply --server-side -f -`"
    )]
    CrdsMissing { url: String },
    #[error("{0}")]
    Vault(String),
    #[error("cannot use the workspace Secret {secret} for POST /connect: {reason}")]
    Workspace { secret: String, reason: String },
    #[error(transparent)]
    Election(crate::leader::ElectionError),
    #[error("--tenant-fields-schema {path}: {reason}")]
    TenantFieldsSchema { path: String, reason: String },
    #[error("cannot use the OAuth state key Secret {secret}: {reason}")]
    StateKey { secret: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The settings read from files and flags alone, checked before anything is contacted.
fn local_settings(args: &RunArgs) -> Result<LocalSettings, OperatorError> {
    let schema = tenant_fields_schema(args.tenant_fields_schema.as_deref())?;
    let vault = args
        .vault
        .store(args.default_store == DefaultStore::Vault)
        .map_err(OperatorError::Vault)?
        .map(Arc::new);
    Ok((schema, vault))
}

type LocalSettings = (
    Option<Arc<serde_json::Value>>,
    Option<Arc<crate::store::vault::VaultStore>>,
);

/// Runs the operator against the cluster of the current kubeconfig (or in-cluster) until
/// SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> Result<(), OperatorError> {
    // Flags are checked before the cluster is looked for: a typo is the one line shown.
    telemetry::parse(args.log_format, &args.log_level).map_err(OperatorError::Logging)?;
    local_settings(&args)?;
    let config = Config::infer()
        .await
        .map_err(|err| OperatorError::NoConfig(one_line(&err)))?;
    run_against(args, config).await
}

/// Runs the operator against the API server `config` names (`plugboard dev` gives its
/// embedded one) until SIGTERM or Ctrl-C.
pub async fn run_against(args: RunArgs, config: Config) -> Result<(), OperatorError> {
    let logging =
        telemetry::parse(args.log_format, &args.log_level).map_err(OperatorError::Logging)?;
    let (tenant_fields_schema, vault) = local_settings(&args)?;
    let url = config.cluster_url.to_string();
    let client = Client::try_from(crate::meta::identified(config)).map_err(|err| {
        OperatorError::Unreachable {
            url: url.clone(),
            reason: one_line(&err),
        }
    })?;
    // Logging starts after the probe: until then a failure is the one line the caller prints,
    // not that line plus the client library's own error log of the same failure.
    probe(&client, &url).await?;
    telemetry::init(logging);

    let state_key = match &args.public_url {
        Some(_) => Some(Arc::new(state_key(&client, &args).await?)),
        None => None,
    };
    let workspace = match &args.connect_namespace {
        Some(ns) => Some(Arc::new(workspace(&client, &args, ns).await?)),
        None => None,
    };
    let settings = crate::controller::Settings {
        namespace: args.namespace.clone(),
        allow_private_networks: args.allow_private_networks,
        provider_timeout: None,
        disconnect_grace: None,
        public_url: args.public_url.clone(),
        state_key,
        redirect_allowlist: args.redirect_allowlist.clone(),
        frame_ancestors: args.connect_frame_ancestors.clone(),
        metrics: Arc::default(),
        tenant_fields_schema,
        workspace,
        concurrency: Some(args.concurrency),
        vault,
    };
    let (ctx, watches) = crate::controller::prepare(client.clone(), settings.clone());
    let readiness = web::Readiness::default();
    let shutdown = shutdown_signal();
    let router = web::router(readiness.clone())
        .merge(web::connect::router(ctx.clone()))
        .merge(web::metrics_router(ctx.metrics.clone()));
    let server = web::serve(args.listen, router, shutdown.clone())
        .await
        .map_err(|source| OperatorError::Listen {
            addr: args.listen,
            source,
        })?;
    tracing::info!(listen = %args.listen, cluster = %url, "plugboard started");
    readiness.set_ready();
    let controllers = async {
        if !args.leader_election {
            crate::controller::run_prepared(ctx, watches, shutdown).await;
            return Ok(());
        }
        let election = crate::leader::Election {
            lease: args.lease_name.clone(),
            namespace: args.operator_namespace.clone(),
            identity: args.pod_name.clone().unwrap_or_else(random_identity),
            duration: LEASE_DURATION,
            grace: LEASE_GRACE,
        };
        crate::leader::run(client, settings, election, (ctx, watches), shutdown).await
    };
    let (served, elected) = tokio::join!(server, controllers);
    if let Err(err) = served {
        tracing::error!(error = %err, "HTTP server stopped");
    }
    if let Err(err) = elected {
        tracing::error!(error = %err, "leader election failed");
        return Err(OperatorError::Election(err));
    }
    tracing::info!("plugboard stopped");
    Ok(())
}

/// Reads and checks the tenant-fields schema, so a bad file is one line at start.
fn tenant_fields_schema(
    path: Option<&std::path::Path>,
) -> Result<Option<Arc<serde_json::Value>>, OperatorError> {
    let Some(path) = path else { return Ok(None) };
    let bad = |reason: String| OperatorError::TenantFieldsSchema {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|err| bad(err.to_string()))?;
    let schema: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| bad(format!("not JSON: {err}")))?;
    crate::schemas::compile(&schema)
        .map_err(|err| bad(format!("not a valid JSON Schema: {err}")))?;
    Ok(Some(Arc::new(schema)))
}

/// How long a lease outlives its holder: the longest a dead leader's successor waits. Short
/// enough that refreshes due meanwhile are barely late; long enough that an API server
/// hiccup does not flip leadership.
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// The holder renews this long before the lease would expire.
const LEASE_GRACE: Duration = Duration::from_secs(5);

fn random_identity() -> String {
    format!("plugboard-{:016x}", rand::random::<u64>())
}

/// The Secret key under which the state signing key is kept.
const STATE_KEY_FIELD: &str = "key";
/// 32 random bytes: the HMAC-SHA256 output size, the strength the signature can have.
const STATE_KEY_BYTES: usize = 32;

/// The OAuth state signing key, shared by every replica through a Secret in the operator's
/// namespace. The first replica to start creates it; the others (and later restarts) read it,
/// so links issued by one replica complete on any other.
/// Reads the workspace Secret that `POST /connect` verifies tenant tokens with.
async fn workspace(
    client: &Client,
    args: &RunArgs,
    connect_namespace: &str,
) -> Result<Workspace, OperatorError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &args.operator_namespace);
    let failed = |reason: String| OperatorError::Workspace {
        secret: format!("{}/{}", args.operator_namespace, args.workspace_secret),
        reason,
    };
    let secret = api
        .get_opt(&args.workspace_secret)
        .await
        .map_err(|err| failed(one_line(&err)))?
        .ok_or_else(|| {
            failed("it does not exist; create it with keys `key` and `secret`".into())
        })?;
    let mut data = secret.data.unwrap_or_default();
    let mut take = |field: &str| {
        data.remove(field)
            .map(|b| b.0)
            .ok_or_else(|| failed(format!("it has no `{field}` key")))
    };
    let key =
        String::from_utf8(take("key")?).map_err(|_| failed("its `key` is not text".into()))?;
    let secret = take("secret")?;
    Workspace::new(connect_namespace.to_owned(), key, secret).map_err(failed)
}

async fn state_key(client: &Client, args: &RunArgs) -> Result<StateKey, OperatorError> {
    let namespace = args.operator_namespace.clone();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let failed = |reason: String| OperatorError::StateKey {
        secret: format!("{namespace}/{}", args.state_key_secret),
        reason,
    };
    let existing = match api.get_opt(&args.state_key_secret).await {
        Ok(found) => found,
        Err(err) => return Err(failed(one_line(&err))),
    };
    let secret = match existing {
        Some(secret) => secret,
        None => {
            let bytes: [u8; STATE_KEY_BYTES] = rand::random();
            let fresh = Secret {
                metadata: ObjectMeta {
                    name: Some(args.state_key_secret.clone()),
                    labels: Some(BTreeMap::from([(
                        crate::controller::MANAGED_BY_LABEL.to_owned(),
                        crate::controller::MANAGED_BY_VALUE.to_owned(),
                    )])),
                    ..ObjectMeta::default()
                },
                data: Some(BTreeMap::from([(
                    STATE_KEY_FIELD.to_owned(),
                    ByteString(bytes.to_vec()),
                )])),
                ..Secret::default()
            };
            match api.create(&PostParams::default(), &fresh).await {
                Ok(created) => created,
                // Another replica created it first: use theirs.
                Err(kube::Error::Api(status)) if status.code == 409 => api
                    .get(&args.state_key_secret)
                    .await
                    .map_err(|err| failed(one_line(&err)))?,
                Err(err) => return Err(failed(one_line(&err))),
            }
        }
    };
    let bytes = secret
        .data
        .and_then(|mut d| d.remove(STATE_KEY_FIELD))
        .ok_or_else(|| failed(format!("it has no `{STATE_KEY_FIELD}` key")))?;
    StateKey::new(bytes.0).map_err(failed)
}

/// Checks that the API server answers and serves the plugboard kinds, so a wrong context or
/// missing CRDs are one clear line at start instead of endless watch errors.
async fn probe(client: &Client, url: &str) -> Result<(), OperatorError> {
    let unreachable = |reason: String| OperatorError::Unreachable {
        url: url.to_owned(),
        reason,
    };
    let version = tokio::time::timeout(STARTUP_PROBE_TIMEOUT, client.apiserver_version())
        .await
        .map_err(|_| unreachable(format!("no answer within {STARTUP_PROBE_TIMEOUT:?}")))?;
    version.map_err(|err| unreachable(one_line(&err)))?;
    let connections: Api<Connection> = Api::all(client.clone());
    match connections
        .list_metadata(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(OperatorError::CrdsMissing {
            url: url.to_owned(),
        }),
        Err(err) => Err(unreachable(one_line(&err))),
    }
}

/// An error and its causes on one line, for the one-line exit message.
fn one_line(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        // Many errors repeat their source in their own message; say each thing once.
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}

/// Resolves on SIGTERM (a pod being stopped) or Ctrl-C. Cloneable so that the HTTP server and
/// every controller stop on the same signal.
fn shutdown_signal() -> futures::future::Shared<futures::future::BoxFuture<'static, ()>> {
    use futures::FutureExt;
    async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing a SIGTERM handler only fails outside a tokio runtime");
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
    .boxed()
    .shared()
}

//! The controllers: Connections run the reconcile pipeline; Connectors and ClusterConnectors
//! report whether they compile; Tenants check their fields, count their Connections and
//! take them along when deleted. Every kind is also watched for what it changes in the
//! Connections that use it.

mod apply_status;
pub mod conditions;
pub mod connection;
pub mod connector;
mod finalizers;
mod input_readers;
pub mod own_writes;
mod readiness;
mod secret_readers;
pub mod tenant;
mod triggers;

use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, future};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::{ClusterConnector, Connection, Connector, ConnectorKind, Tenant};
use crate::templates::Templates;
use triggers::Change;

pub use crate::meta::{FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// Operator settings a reconcile needs.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Namespace to watch; all when unset.
    pub namespace: Option<String>,
    /// Let provider URLs reach loopback and private addresses (for tests and in-cluster fakes).
    pub allow_private_networks: bool,
    /// The longest one provider call may take; the client's default when unset.
    pub provider_timeout: Option<std::time::Duration>,
    /// How long a provider that keeps refusing to revoke may hold a deleted Connection;
    /// `DISCONNECT_GRACE` when unset.
    pub disconnect_grace: Option<std::time::Duration>,
    /// The operator's public base URL, where people reach `/connect` and `/oauth/callback`.
    pub public_url: Option<String>,
    /// Signs OAuth state; shared by every replica.
    pub state_key: Option<Arc<crate::auth::state::StateKey>>,
    /// Where a finished consent flow may send the person (URL prefixes).
    pub redirect_allowlist: Vec<String>,
    /// Origins that may show the hosted connect page in a frame; none when empty.
    pub frame_ancestors: Vec<String>,
    /// Shared by every context this process builds, so `/metrics` survives leadership terms.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The JSON Schema every Tenant's fields must satisfy; any object when unset.
    pub tenant_fields_schema: Option<Arc<serde_json::Value>>,
    /// The workspace whose tenant access tokens `POST /connect` accepts; the endpoint is off
    /// when unset.
    pub workspace: Option<Arc<crate::auth::access_token::Workspace>>,
    /// Connections reconciled at the same time; `DEFAULT_CONCURRENCY` when unset, and 0 for
    /// no limit.
    pub concurrency: Option<u16>,
    /// The OpenBao/Vault store, when the operator is given one (`--vault-address`).
    pub vault: Option<Arc<crate::store::vault::VaultStore>>,
}

/// Connections reconciled at the same time unless `--concurrency` says otherwise. A reconcile
/// mostly waits (on the API server, on a provider), so enough of them run to keep several
/// providers busy up to their per-host limit (`provider::limit::PER_HOST`); bounded, so a
/// start with thousands of Connections does not hold thousands of half-done reconciles (and
/// their resolved specs) in memory at once.
pub const DEFAULT_CONCURRENCY: u16 = 64;

/// What every reconcile can reach.
pub struct Context {
    pub client: Client,
    pub config: Settings,
    pub http: reqwest::Client,
    pub templates: Templates,
    /// Who records events; see [`Context::recorder`].
    reporter: Reporter,
    pub connectors: Store<Connector>,
    pub cluster_connectors: Store<ClusterConnector>,
    pub tenants: Store<Tenant>,
    /// Every Connection in scope: the Connection controller's own cache, which the Tenant
    /// controller counts from.
    pub connections: Store<Connection>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Whether the caches above are being filled. Off on a replica that does not lead, whose
    /// HTTP endpoints then read from the API instead.
    pub caches_live: std::sync::atomic::AtomicBool,
    /// This process's writes the caches may not show yet.
    pub own_writes: own_writes::OwnWrites,
    /// New tokens a reconcile could not store, for the next one to store.
    pub unsaved: connection::Unsaved,
    /// Where credentials are kept.
    pub stores: crate::store::Stores,
    /// Connectors' schemas, compiled once per generation.
    pub schemas: Arc<crate::schemas::Compiled>,
    /// Whether each cache above has its first full list (`readiness` says why not the
    /// stores' own `wait_until_ready`).
    ready: [readiness::Ready; 4],
    /// When this replica began reconciling: a refresh token refused soon after may be one
    /// whose rotation the replica before it did not live to store.
    pub started: k8s_openapi::jiff::Timestamp,
}

impl Context {
    /// What a call to a provider needs.
    pub fn tools(&self) -> crate::provider::Tools<'_> {
        crate::provider::Tools {
            http: &self.http,
            templates: &self.templates,
            metrics: &self.metrics,
            allow_private_networks: self.config.allow_private_networks,
        }
    }

    pub fn caches_live(&self) -> bool {
        self.caches_live.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until every cache has its first full list. A reconcile waits for this, so that
    /// right after a start a connector or tenant is not reported missing while the cache
    /// is still filling. False if a cache's watch ended first.
    pub async fn caches_ready(&self) -> bool {
        let [a, b, c, d] = &self.ready;
        let (a, b, c, d) = future::join4(a.wait(), b.wait(), c.wait(), d.wait()).await;
        a && b && c && d
    }
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// What every cached kind needs to be watched and stored.
pub trait Cached:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
}
impl<K> Cached for K where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// Objects per page of a watch's list. kube's default is client-go's 500; a page is held
/// three times over while it is read (the response body, the decoded list, the cached
/// copies), and at 10,000 Connections those bursts, not the objects kept, set how much memory
/// the allocator holds on to. 100 objects cost a list of 10,000 a hundred requests.
const LIST_PAGE_SIZE: u32 = 100;

/// The watch settings every cache and controller uses.
fn watch_config() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE_SIZE)
}

/// A cache the reconciles read: the store, and whether it has its first full list.
struct Cache<K: Cached> {
    store: Store<K>,
    ready: readiness::Ready,
}

/// A reflector: the cache the reconcile reads, and the watch events that fill it.
fn reflect_events<K: Cached>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Cache<K>,
    impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
) {
    let (store, writer) = reflector::store();
    let (raiser, ready) = readiness::flag();
    let events = raiser.on(reflector::reflector(
        writer,
        watcher(api, config).default_backoff().modify(slim),
    ));
    (Cache { store, ready }, events)
}

/// The prefix of the annotations plugboard reads (`plugboard.dev/refresh-requested-at`).
const OWN_ANNOTATIONS: &str = "plugboard.dev/";

/// Drops from a cached object what no reconcile reads: labels, annotations other than
/// plugboard's own (kubectl's copy of the applied object among them, as large as the rest),
/// and the managed fields (a JSON tree per object: 14 of 33 MiB of heap at 2,000
/// Connections, by heaptrack). Even one label costs a map node of half a kilobyte, and the
/// tools that apply Connections (Helm, Argo CD, Flux) each add a few. Reconciles read the
/// spec, the status and the identity of an object, and write only status and finalizers.
fn slim<K: Resource<DynamicType = ()>>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.labels = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|key, _| key.starts_with(OWN_ANNOTATIONS));
    }
    meta.managed_fields = None;
}

/// A reflector whose spec changes and deletions trigger the Connections that use an object
/// (`triggers::spec_changes`).
fn reflect_specs<K: Cached>(
    api: Api<K>,
) -> (
    Cache<K>,
    impl futures::Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>>,
) {
    let (cache, events) = reflect_events(api, watch_config());
    (cache, triggers::spec_changes(events))
}

/// The watch streams the controllers consume, prepared with the caches they feed.
pub struct Watches {
    connectors: BoxStream<'static, Result<PartialObjectMeta<Connector>, watcher::Error>>,
    cluster_connectors:
        BoxStream<'static, Result<PartialObjectMeta<ClusterConnector>, watcher::Error>>,
    tenants: BoxStream<'static, Result<PartialObjectMeta<Tenant>, watcher::Error>>,
    connections: BoxStream<'static, Result<watcher::Event<Connection>, watcher::Error>>,
    secrets: BoxStream<'static, Result<PartialObjectMeta<Secret>, watcher::Error>>,
    /// A signal each time the Secret watch relisted after it broke.
    secrets_relisted: futures::channel::mpsc::UnboundedReceiver<()>,
}

/// Builds the shared context (caches, HTTP client, event recorder) and the watches that fill
/// it. The web endpoints share the context; `run` consumes the watches.
pub fn prepare(client: Client, settings: Settings) -> (Arc<Context>, Watches) {
    let ns = settings.namespace.clone();
    let (connectors, connector_events) = reflect_specs(scoped::<Connector>(&client, ns.as_deref()));
    let (cluster_connectors, cluster_connector_events) =
        reflect_specs(Api::<ClusterConnector>::all(client.clone()));
    let (tenants, tenant_events) = reflect_specs(scoped::<Tenant>(&client, ns.as_deref()));
    let (connections, connection_events) =
        reflect_events(scoped::<Connection>(&client, ns.as_deref()), watch_config());
    // No Secret is cached: a reconcile reads the Secrets it needs (`connection::store::read`,
    // `dereference`). Their metadata is watched, and nothing of it kept, to map each change to
    // the Connections it concerns: the owner of a credentials Secret, and the Connections
    // that read a Secret (inputFrom, fieldsFrom, clientSecretRef, signingKeyRef). Keeping
    // nothing means a relist after a broken watch cannot tell which Secrets went meanwhile,
    // so then every Connection is checked again (`secrets_relisted`); the relist's own events
    // used to wake as many, through their credentials Secrets, and a relist is rare.
    let secret_metadata: Api<PartialObjectMeta<Secret>> = match ns.as_deref() {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (relisted, secrets_relisted) = futures::channel::mpsc::unbounded();
    let secret_events = triggers::objects_and_relists(
        watcher(secret_metadata, watch_config()).default_backoff(),
        relisted,
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        http: crate::provider::http::client(
            settings.allow_private_networks,
            settings.provider_timeout,
        ),
        templates: Templates::default(),
        reporter: Reporter {
            controller: "plugboard".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
        ready: [
            connectors.ready,
            cluster_connectors.ready,
            tenants.ready,
            connections.ready,
        ],
        connectors: connectors.store,
        cluster_connectors: cluster_connectors.store,
        tenants: tenants.store,
        connections: connections.store,
        metrics: settings.metrics.clone(),
        caches_live: std::sync::atomic::AtomicBool::new(false),
        own_writes: own_writes::OwnWrites::default(),
        unsaved: connection::Unsaved::default(),
        stores: crate::store::Stores::new(client.clone(), settings.vault.clone()),
        schemas: Arc::default(),
        started: k8s_openapi::jiff::Timestamp::now(),
        config: settings,
    });
    let watches = Watches {
        connectors: connector_events.boxed(),
        cluster_connectors: cluster_connector_events.boxed(),
        tenants: tenant_events.boxed(),
        connections: connection_events.boxed(),
        secrets: secret_events.boxed(),
        secrets_relisted,
    };
    (ctx, watches)
}

impl Context {
    /// An event recorder for one event. kube-runtime's `Recorder` keeps every event it
    /// published for six minutes (to count repeats as a series) and prunes only when it
    /// publishes again: 10,000 Connections becoming Ready left 34 MiB of events in memory,
    /// a third of the operator, with nothing to free them if no further event came. plugboard
    /// records events on transitions only, where a repeat is news, so it gives up series.
    pub fn recorder(&self) -> Recorder {
        Recorder::new(self.client.clone(), self.reporter.clone())
    }
}

/// Prepares and runs the controllers until `shutdown` resolves.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (ctx, watches) = prepare(client, settings);
    run_prepared(ctx, watches, shutdown).await;
}

/// Runs the controllers over prepared watches until `shutdown` resolves.
pub async fn run_prepared(
    ctx: Arc<Context>,
    watches: Watches,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let ns = ctx.config.namespace.clone();
    // Every change of a Connection, its status included, re-counts its Tenant; a change of a
    // Secret its `fieldsFrom` names re-checks it.
    let (recount, recounts) = futures::channel::mpsc::unbounded::<ObjectRef<Tenant>>();
    let concurrency = ctx.config.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    let controller = connection_controller(&ctx, watches, recount)
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    // The caches fill as the controllers below poll their watches; mark them live then.
    let marker = ctx.clone();
    let live = tokio::spawn(async move {
        if marker.caches_ready().await {
            marker
                .caches_live
                .store(true, std::sync::atomic::Ordering::Release);
        }
    });
    ctx.metrics.count_connections(Some(ctx.connections.clone()));
    let shutdown = shutdown.shared();
    let connections = controller
        .graceful_shutdown_on(shutdown.clone())
        .run(connection::reconcile, connection::error_policy, ctx.clone())
        .for_each(log_queue_error);
    let namespaced = Controller::new(scoped::<Connector>(&client, ns.as_deref()), watch_config())
        .graceful_shutdown_on(shutdown.clone())
        .run(
            connector::reconcile_namespaced,
            connector::error_policy,
            ctx.clone(),
        )
        .for_each(log_queue_error);
    let cluster = Controller::new(Api::<ClusterConnector>::all(client.clone()), watch_config())
        .graceful_shutdown_on(shutdown.clone())
        .run(
            connector::reconcile_cluster,
            connector::error_policy,
            ctx.clone(),
        )
        .for_each(log_queue_error);
    let tenants = Controller::new(scoped::<Tenant>(&client, ns.as_deref()), watch_config())
        .reconcile_on(recounts)
        .graceful_shutdown_on(shutdown.clone())
        .run(tenant::reconcile, tenant::error_policy, ctx.clone())
        .for_each(log_queue_error);
    future::join4(connections, namespaced, cluster, tenants).await;
    // The watches are gone with the controllers: the caches stop here.
    live.abort();
    ctx.metrics.count_connections(None);
    ctx.caches_live
        .store(false, std::sync::atomic::Ordering::Release);
}

/// The Connection controller, triggered by its own spec changes and by every object a
/// Connection refers to.
fn connection_controller(
    ctx: &Context,
    watches: Watches,
    recount: futures::channel::mpsc::UnboundedSender<ObjectRef<Tenant>>,
) -> Controller<Connection> {
    let Watches {
        connectors: connector_events,
        cluster_connectors: cluster_connector_events,
        tenants: tenant_events,
        connections: connection_events,
        secrets: secret_events,
        secrets_relisted,
    } = watches;
    let recheck = recount.clone();
    let inputs = Arc::new(input_readers::InputReaders::default());
    let changes = connection_changes(connection_events, inputs.clone(), recount);
    let controller = Controller::for_stream(changes, ctx.connections.clone());
    let conns = controller.store();
    let readers = SecretMapper {
        connections: conns.clone(),
        connectors: ctx.connectors.clone(),
        cluster_connectors: ctx.cluster_connectors.clone(),
        tenants: ctx.tenants.clone(),
        inputs,
        recheck,
    };
    controller
        .watches_stream(
            connector_events,
            using_connector(conns.clone(), ctx.schemas.clone()),
        )
        .watches_stream(
            cluster_connector_events,
            using_cluster_connector(conns.clone(), ctx.schemas.clone()),
        )
        .watches_stream(tenant_events, using_tenant(conns))
        .watches_stream(secret_events, move |s| readers.affected(&s))
        .reconcile_all_on(secrets_relisted)
}

type Affected = Vec<ObjectRef<Connection>>;

/// The Connections using a Connector. Its compiled schemas are dropped: it changed or
/// went away.
fn using_connector(
    conns: Store<Connection>,
    schemas: Arc<crate::schemas::Compiled>,
) -> impl Fn(PartialObjectMeta<Connector>) -> Affected + Send + Sync + 'static {
    move |c| {
        if let Some(uid) = c.uid() {
            schemas.forget(&uid);
        }
        let (ns, name) = (c.namespace(), c.name_any());
        connection::referencing(&conns, |conn| {
            conn.connector_kind() == ConnectorKind::Connector
                && conn.namespace() == ns
                && conn.spec.connector_ref.name == name
        })
    }
}

/// The Connections using a ClusterConnector; its compiled schemas are dropped.
fn using_cluster_connector(
    conns: Store<Connection>,
    schemas: Arc<crate::schemas::Compiled>,
) -> impl Fn(PartialObjectMeta<ClusterConnector>) -> Affected + Send + Sync + 'static {
    move |c| {
        if let Some(uid) = c.uid() {
            schemas.forget(&uid);
        }
        let name = c.name_any();
        connection::referencing(&conns, |conn| {
            conn.connector_kind() == ConnectorKind::ClusterConnector
                && conn.spec.connector_ref.name == name
        })
    }
}

/// The Connections of a Tenant.
fn using_tenant(
    conns: Store<Connection>,
) -> impl Fn(PartialObjectMeta<Tenant>) -> Affected + Send + Sync + 'static {
    move |t| {
        let (ns, name) = (t.namespace(), t.name_any());
        connection::referencing(&conns, |conn| {
            conn.namespace() == ns && conn.spec.tenant_ref.name == name
        })
    }
}

/// Maps a Secret's change to the Connections it concerns.
struct SecretMapper {
    connections: Store<Connection>,
    connectors: Store<Connector>,
    cluster_connectors: Store<ClusterConnector>,
    tenants: Store<Tenant>,
    inputs: Arc<input_readers::InputReaders>,
    /// A Tenant's fields come from Secrets too: the Tenant controller re-checks them.
    recheck: futures::channel::mpsc::UnboundedSender<ObjectRef<Tenant>>,
}

impl SecretMapper {
    /// The Connection whose credentials the Secret holds, and the Connections that read it.
    fn affected(&self, s: &PartialObjectMeta<Secret>) -> Affected {
        let (ns, name) = (
            s.metadata.namespace.as_deref().unwrap_or_default(),
            s.metadata.name.as_deref().unwrap_or_default(),
        );
        let owner = connection::owner_of(&s.metadata);
        let readers = secret_readers::SecretReaders::of(
            ns,
            name,
            &self.connectors,
            &self.cluster_connectors,
            &self.tenants,
        );
        for tenant in readers.tenants() {
            // Gone only when the Tenant controller is, and then nobody needs telling.
            let _ = self.recheck.unbounded_send(tenant);
        }
        let mut affected = if readers.through_connectors_or_tenants() {
            connection::referencing(&self.connections, |conn| readers.include(conn))
        } else {
            self.inputs.of(ns, name)
        };
        affected.extend(owner);
        affected
    }
}

/// The Connection events that call for a reconcile. Every event on the way also feeds the
/// InputReaders index and has the Connection's Tenant recount its Connections.
fn connection_changes(
    events: BoxStream<'static, Result<watcher::Event<Connection>, watcher::Error>>,
    inputs: Arc<input_readers::InputReaders>,
    recount: futures::channel::mpsc::UnboundedSender<ObjectRef<Tenant>>,
) -> impl futures::Stream<Item = Result<Connection, watcher::Error>> + Send + 'static {
    let counted = events.inspect(move |event| {
        if let Ok(event) = event {
            inputs.observe(event);
        }
        if let Ok(
            watcher::Event::Apply(conn)
            | watcher::Event::InitApply(conn)
            | watcher::Event::Delete(conn),
        ) = event
            && let Some(ns) = conn.namespace()
        {
            // The receiver lives as long as the Tenant controller; once it is gone there is
            // nobody left to count for.
            let _ = recount.unbounded_send(ObjectRef::new(&conn.spec.tenant_ref.name).within(&ns));
        }
    });
    // A Connection's own status writes must not trigger its next reconcile: that would turn
    // every backoff into an immediate retry. Only what a person or the API server changes
    // does: the spec (generation), annotations (refresh requests), finalizers and deletion.
    // A Connection a relist found gone needs no reconcile: there is nothing left to do for it.
    triggers::changes(counted, |conn: &Connection| {
        let meta = &conn.metadata;
        // The cache keeps only plugboard's annotations (`slim`): a refresh request.
        triggers::fingerprint(&(
            meta.generation,
            &meta.annotations,
            &meta.finalizers,
            meta.deletion_timestamp.is_some(),
        ))
    })
    .filter_map(|change| future::ready(change.map(Change::into_object).transpose()))
}

fn log_queue_error<T, E: std::fmt::Display>(result: Result<T, E>) -> future::Ready<()> {
    if let Err(err) = result {
        tracing::debug!(error = %err, "reconcile queue");
    }
    future::ready(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
    use kube::api::ObjectMeta;
    use kube::core::PartialObjectMetaExt;
    use serde_json::json;

    use super::*;

    fn meta(fields: serde_json::Value) -> ObjectMeta {
        ObjectMeta {
            name: Some("x".to_owned()),
            labels: Some([("app.kubernetes.io/instance".to_owned(), "crm".to_owned())].into()),
            annotations: Some(
                [
                    (
                        "kubectl.kubernetes.io/last-applied-configuration".to_owned(),
                        "{}".to_owned(),
                    ),
                    (
                        "plugboard.dev/refresh-requested-at".to_owned(),
                        "now".to_owned(),
                    ),
                ]
                .into(),
            ),
            managed_fields: Some(vec![ManagedFieldsEntry {
                manager: Some(FIELD_MANAGER.to_owned()),
                operation: Some("Apply".to_owned()),
                fields_v1: Some(FieldsV1(fields)),
                ..ManagedFieldsEntry::default()
            }]),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn cached_objects_keep_their_spec_status_and_own_annotations_only() {
        let spec = json!({"connectorRef": {"name": "c"}, "tenantRef": {"name": "t"}});
        let mut conn = Connection::new("x", serde_json::from_value(spec).expect("a spec"));
        conn.metadata = meta(json!({"f:status": {}}));
        let before = conn.spec.clone();
        slim(&mut conn);
        assert_eq!(conn.metadata.managed_fields, None);
        assert!(conn.labels().is_empty());
        let kept: Vec<&String> = conn.annotations().keys().collect();
        assert_eq!(kept, ["plugboard.dev/refresh-requested-at"]);
        assert_eq!(conn.name_any(), "x");
        assert_eq!(conn.spec, before);
    }

    fn store<K>(objects: Vec<serde_json::Value>) -> Store<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + 'static,
    {
        let mut writer = reflector::store::Writer::<K>::default();
        for o in objects {
            let obj: K = serde_json::from_value(o).expect("a valid object");
            writer.apply_watcher_event(&watcher::Event::Apply(obj));
        }
        writer.as_reader()
    }

    /// `acme/stripe`: reads its API key from `stripe-input`, and is connected, its
    /// credentials in `stripe-credentials`.
    fn stripe() -> serde_json::Value {
        json!({
            "apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "stripe", "namespace": "acme", "uid": "u-1"},
            "spec": {
                "tenantRef": {"name": "acme"}, "connectorRef": {"name": "stripe"},
                "inputFrom": [{"field": "apiKey", "secretKeyRef": {"name": "stripe-input", "key": "k"}}],
            },
            "status": {"credentialsRef": {"store": "kubernetes", "secretName": "stripe-credentials"}},
        })
    }

    /// The events of a first list, then of a relist after the watch broke, which no longer
    /// has any of `objects`.
    fn listed_then_gone<K>(objects: Vec<K>) -> Vec<Result<watcher::Event<K>, watcher::Error>> {
        let mut events = vec![watcher::Event::Init];
        events.extend(objects.into_iter().map(watcher::Event::InitApply));
        events.extend([
            watcher::Event::InitDone,
            watcher::Event::Init,
            watcher::Event::InitDone,
        ]);
        events.into_iter().map(Ok).collect()
    }

    #[test]
    fn a_connector_deleted_while_the_watch_was_down_wakes_its_connections() {
        let conns = store::<Connection>(vec![stripe()]);
        let connector: Connector = serde_json::from_value(json!({
            "apiVersion": "plugboard.dev/v1alpha1", "kind": "Connector",
            "metadata": {"name": "stripe", "namespace": "acme", "generation": 1, "uid": "c-1"},
            "spec": {"auth": {"type": "static", "credentials": {}}},
        }))
        .expect("a valid Connector");
        let events = futures::stream::iter(listed_then_gone(vec![connector]));
        let schemas = Arc::new(crate::schemas::Compiled::default());
        let owner = crate::schemas::Owner {
            uid: "c-1".to_owned(),
            generation: Some(1),
        };
        schemas
            .get(Some(&owner), "inputSchema", &json!({"type": "object"}))
            .expect("a schema that compiles");
        let mapper = using_connector(conns, schemas.clone());
        let woken: Vec<Affected> = futures::executor::block_on(
            triggers::spec_changes(events)
                .map(|c| mapper(c.expect("no watch errors")))
                .collect(),
        );
        let stripe = ObjectRef::new("stripe").within("acme");
        assert_eq!(
            woken,
            [vec![stripe.clone()], vec![stripe]],
            "woken when first seen, and when the relist no longer has it"
        );
        assert_eq!(schemas.owners(), 0, "its compiled schemas are gone with it");
    }

    #[test]
    fn a_secret_wakes_its_owner_and_its_readers_and_no_one_else() {
        let conn: Connection = serde_json::from_value(stripe()).expect("a valid Connection");
        let inputs = Arc::new(input_readers::InputReaders::default());
        inputs.observe(&watcher::Event::Apply(conn.clone()));
        let (recheck, _rechecks) = futures::channel::mpsc::unbounded();
        let mapper = SecretMapper {
            connections: store(vec![stripe()]),
            connectors: store(Vec::new()),
            cluster_connectors: store(Vec::new()),
            tenants: store(Vec::new()),
            inputs,
            recheck,
        };
        let secret = |name: &str, owned: bool| {
            ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("acme".to_owned()),
                owner_references: owned
                    .then(|| conn.controller_owner_ref(&()).into_iter().collect()),
                ..ObjectMeta::default()
            }
            .into_response_partial::<Secret>()
        };
        let stripe = vec![ObjectRef::new("stripe").within("acme")];
        assert_eq!(mapper.affected(&secret("stripe-credentials", true)), stripe);
        assert_eq!(mapper.affected(&secret("stripe-input", false)), stripe);
        assert_eq!(mapper.affected(&secret("unrelated", false)), Vec::new());
    }
}

//! Who reads a Secret: which Connections and Tenants a change of it concerns.
//!
//! Every change of any Secret in scope, and every Secret of the first list after a start,
//! is looked up here. The few connectors and Tenants are looked at once per Secret; only
//! when one of them reads it are the Connections scanned (every Connection using that
//! connector or Tenant reads it too). A Secret read only as input is looked up in
//! [`super::input_readers`], so an unrelated Secret costs no pass over the Connections.

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::{ClusterConnector, Connection, Connector, ConnectorKind, ConnectorSpec, Tenant};

/// The readers of the Secret `namespace/name`.
#[derive(Debug, Default)]
pub struct SecretReaders<'a> {
    namespace: &'a str,
    name: &'a str,
    /// Namespaced Connectors naming it as their OAuth app or signing key, as (namespace,
    /// name): every Connection using one reads it.
    connectors: Vec<(String, String)>,
    /// ClusterConnectors naming it with its namespace: every Connection using one reads it.
    cluster_anywhere: Vec<String>,
    /// ClusterConnectors naming it without a namespace, which means the Connection's own:
    /// the Connections in its namespace using one read it.
    cluster_local: Vec<String>,
    /// Tenants in its namespace whose `fieldsFrom` names it.
    tenants: Vec<String>,
}

impl<'a> SecretReaders<'a> {
    pub fn of(
        namespace: &'a str,
        name: &'a str,
        connectors: &Store<Connector>,
        cluster_connectors: &Store<ClusterConnector>,
        tenants: &Store<Tenant>,
    ) -> Self {
        let mut readers = Self {
            namespace,
            name,
            ..Self::default()
        };
        for c in connectors.state() {
            let own = c.namespace().unwrap_or_default();
            let reads = secret_refs(&c.spec, name).any(|ns| ns.unwrap_or(&own) == namespace);
            if reads {
                readers.connectors.push((own, c.name_any()));
            }
        }
        for c in cluster_connectors.state() {
            for ns in secret_refs(&c.spec.0, name) {
                match ns {
                    Some(ns) if ns == namespace => readers.cluster_anywhere.push(c.name_any()),
                    Some(_) => {}
                    None => readers.cluster_local.push(c.name_any()),
                }
            }
        }
        readers.tenants = tenants
            .state()
            .iter()
            .filter(|t| t.metadata.namespace.as_deref() == Some(namespace))
            .filter(|t| {
                t.spec
                    .fields_from
                    .iter()
                    .any(|f| f.secret_key_ref.name == name)
            })
            .map(|t| t.name_any())
            .collect();
        readers
    }

    /// Whether the Connection reads the Secret: as input, through its Tenant's fields, or
    /// through its connector.
    pub fn include(&self, conn: &Connection) -> bool {
        let conn_ns = conn.metadata.namespace.as_deref().unwrap_or_default();
        let same_ns = conn_ns == self.namespace;
        let connector = conn.spec.connector_ref.name.as_str();
        let by_connector = match conn.connector_kind() {
            ConnectorKind::Connector => self
                .connectors
                .iter()
                .any(|(ns, n)| ns == conn_ns && n == connector),
            ConnectorKind::ClusterConnector => {
                self.cluster_anywhere.iter().any(|n| n == connector)
                    || (same_ns && self.cluster_local.iter().any(|n| n == connector))
            }
        };
        by_connector
            || (same_ns
                && (self.tenants.contains(&conn.spec.tenant_ref.name)
                    || conn
                        .spec
                        .input_from
                        .iter()
                        .any(|f| f.secret_key_ref.name == self.name)))
    }

    /// Whether a connector or a Tenant reads the Secret: then any Connection using one does,
    /// and finding them takes a pass over all. Otherwise only its `inputFrom` readers do.
    pub fn through_connectors_or_tenants(&self) -> bool {
        !(self.connectors.is_empty()
            && self.cluster_anywhere.is_empty()
            && self.cluster_local.is_empty()
            && self.tenants.is_empty())
    }

    /// The Tenants whose fields come from the Secret.
    pub fn tenants(&self) -> impl Iterator<Item = ObjectRef<Tenant>> + '_ {
        self.tenants
            .iter()
            .map(|t| ObjectRef::new(t).within(self.namespace))
    }
}

/// The namespaces (none: the reader's own) of the connector's references to Secret `name`:
/// OAuth apps and tenant-token signing keys, of the auth method and of every option.
fn secret_refs<'s>(
    spec: &'s ConnectorSpec,
    name: &'s str,
) -> impl Iterator<Item = Option<&'s str>> {
    spec.auth
        .iter()
        .chain(spec.options.iter().flat_map(|o| o.values()))
        .flat_map(|m| {
            let app = m
                .client_secret_ref
                .as_ref()
                .map(|r| (&r.name, &r.namespace));
            let key = m.signing_key_ref.as_ref().map(|r| (&r.name, &r.namespace));
            app.into_iter().chain(key)
        })
        .filter(move |(secret, _)| *secret == name)
        .map(|(_, ns)| ns.as_deref())
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use super::*;

    fn store<K>(objects: Vec<Value>) -> Store<K>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned + Clone + 'static,
    {
        let mut writer = Writer::<K>::default();
        for o in objects {
            let obj: K = serde_json::from_value(o).expect("a valid object");
            writer.apply_watcher_event(&Event::Apply(obj));
        }
        writer.as_reader()
    }

    fn connection(ns: &str, connector: (&str, &str), tenant: &str, input: &[&str]) -> Connection {
        let input_from: Vec<Value> = input
            .iter()
            .map(|s| json!({"field": "apiKey", "secretKeyRef": {"name": s, "key": "k"}}))
            .collect();
        serde_json::from_value(json!({
            "apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "c", "namespace": ns},
            "spec": {
                "tenantRef": {"name": tenant},
                "connectorRef": {"kind": connector.0, "name": connector.1},
                "inputFrom": input_from,
            }
        }))
        .expect("a valid Connection")
    }

    fn connector(kind: &str, ns: Option<&str>, name: &str, app: Value) -> Value {
        json!({
            "apiVersion": "plugboard.dev/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": ns},
            "spec": {"auth": {"type": "client-credentials", "clientSecretRef": app}}
        })
    }

    struct World {
        connectors: Store<Connector>,
        cluster: Store<ClusterConnector>,
        tenants: Store<Tenant>,
    }

    impl World {
        fn new() -> Self {
            let tenant = json!({
                "apiVersion": "plugboard.dev/v1alpha1", "kind": "Tenant",
                "metadata": {"name": "globex", "namespace": "acme"},
                "spec": {"id": "g", "fieldsFrom": [
                    {"field": "region", "secretKeyRef": {"name": "globex-fields", "key": "r"}}
                ]}
            });
            let signing = json!({
                "apiVersion": "plugboard.dev/v1alpha1", "kind": "ClusterConnector",
                "metadata": {"name": "minted"},
                "spec": {"auth": {"type": "tenant-token",
                    "signingKeyRef": {"name": "key", "key": "pem", "namespace": "keys"}}}
            });
            Self {
                connectors: store(vec![connector(
                    "Connector",
                    Some("acme"),
                    "paypal",
                    json!({"name": "paypal-app"}),
                )]),
                cluster: store(vec![
                    connector(
                        "ClusterConnector",
                        None,
                        "shared",
                        json!({"name": "shared-app", "namespace": "apps"}),
                    ),
                    connector(
                        "ClusterConnector",
                        None,
                        "local",
                        json!({"name": "local-app"}),
                    ),
                    signing,
                ]),
                tenants: store(vec![tenant]),
            }
        }

        fn readers<'a>(&self, ns: &'a str, name: &'a str) -> SecretReaders<'a> {
            SecretReaders::of(ns, name, &self.connectors, &self.cluster, &self.tenants)
        }
    }

    #[test]
    fn input_and_tenant_fields_are_read_in_the_connections_namespace_only() {
        let world = World::new();
        let conn = connection("acme", ("Connector", "other"), "globex", &["key-1"]);
        assert!(world.readers("acme", "key-1").include(&conn));
        assert!(world.readers("acme", "globex-fields").include(&conn));
        assert!(!world.readers("elsewhere", "key-1").include(&conn));
        assert!(!world.readers("acme", "unrelated").include(&conn));
        let tenants: Vec<_> = world.readers("acme", "globex-fields").tenants().collect();
        assert_eq!(tenants, vec![ObjectRef::new("globex").within("acme")]);
        assert_eq!(world.readers("acme", "key-1").tenants().count(), 0);
    }

    #[test]
    fn a_connectors_app_and_signing_key_are_read_by_every_connection_using_it() {
        let world = World::new();
        let paypal = connection("acme", ("Connector", "paypal"), "globex", &[]);
        assert!(world.readers("acme", "paypal-app").include(&paypal));
        let shared = connection("tenant-ns", ("ClusterConnector", "shared"), "t", &[]);
        assert!(world.readers("apps", "shared-app").include(&shared));
        assert!(!world.readers("tenant-ns", "shared-app").include(&shared));
        let minted = connection("tenant-ns", ("ClusterConnector", "minted"), "t", &[]);
        assert!(world.readers("keys", "key").include(&minted));
        // Without a namespace, a ClusterConnector's Secret is the Connection's own.
        let local = connection("tenant-ns", ("ClusterConnector", "local"), "t", &[]);
        assert!(world.readers("tenant-ns", "local-app").include(&local));
        assert!(!world.readers("acme", "local-app").include(&local));
        assert!(!world.readers("acme", "paypal-app").include(&local));
    }
}

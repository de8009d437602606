//! The objects references may point at: those in the set being checked and, with
//! `--cluster`, those fetched read-only from the cluster.

use std::collections::BTreeMap;

use serde_json::Value;

use super::source::Document;

/// Where a referenced object was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Set,
    Cluster,
}

/// `(kind, namespace, name)`; cluster-scoped kinds have namespace `""`.
pub type Key = (String, String, String);

#[derive(Debug, Default)]
pub struct Catalog {
    objects: BTreeMap<Key, (Origin, Value)>,
    /// Whether the cluster was asked: a miss is then a real miss, not "not in this set".
    pub cluster: bool,
}

/// The namespace a namespaced object without one is applied to, as kubectl's default
/// context would.
pub const DEFAULT_NAMESPACE: &str = "default";

pub fn key(kind: &str, namespace: Option<&str>, name: &str) -> Key {
    let namespace = if cluster_scoped(kind) {
        ""
    } else {
        namespace.unwrap_or(DEFAULT_NAMESPACE)
    };
    (kind.to_owned(), namespace.to_owned(), name.to_owned())
}

pub fn cluster_scoped(kind: &str) -> bool {
    matches!(kind, "ClusterConnector" | "Namespace")
}

impl Catalog {
    pub fn of(documents: &[Document]) -> Self {
        let mut catalog = Catalog::default();
        for doc in documents {
            let k = key(doc.kind(), doc.namespace(), doc.name());
            catalog.objects.insert(k, (Origin::Set, doc.value.clone()));
        }
        catalog
    }

    pub fn add_from_cluster(&mut self, key: Key, value: Value) {
        self.objects.entry(key).or_insert((Origin::Cluster, value));
    }

    pub fn get(&self, key: &Key) -> Option<(Origin, &Value)> {
        self.objects.get(key).map(|(o, v)| (*o, v))
    }

    /// A Secret's keys and values (`data` decoded, `stringData` over it), as a cluster would
    /// store them. Values are for schema checks only and are never printed.
    pub fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<(Origin, BTreeMap<String, String>)> {
        let (origin, secret) = self.get(&key("Secret", Some(namespace), name))?;
        let mut values = BTreeMap::new();
        for (k, v) in secret["data"].as_object().into_iter().flatten() {
            let decoded = v.as_str().and_then(|s| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.decode(s).ok()
            });
            let text = decoded.map(|b| String::from_utf8_lossy(&b).into_owned());
            values.insert(k.clone(), text.unwrap_or_default());
        }
        for (k, v) in secret["stringData"].as_object().into_iter().flatten() {
            values.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
        }
        Some((origin, values))
    }
}

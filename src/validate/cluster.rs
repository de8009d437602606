//! `--cluster`: the objects a set refers to but does not hold, fetched read-only (GET only)
//! from the current kubeconfig's cluster.

use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::catalog::{Catalog, Key, key};
use super::source::Document;

/// The references of every document that the set does not hold.
pub fn wanted(documents: &[Document], catalog: &Catalog) -> Vec<Key> {
    let mut keys: Vec<Key> = Vec::new();
    for doc in documents {
        let ns = doc.namespace();
        let spec = &doc.value["spec"];
        let name = |v: &Value| v.as_str().map(str::to_owned);
        let mut add = |kind: &str, namespace: Option<&str>, n: Option<String>| {
            if let Some(n) = n {
                keys.push(key(kind, namespace, &n));
            }
        };
        match doc.kind() {
            "Connection" => {
                add("Tenant", ns, name(&spec["tenantRef"]["name"]));
                let kind = spec["connectorRef"]["kind"].as_str().unwrap_or("Connector");
                add(kind, ns, name(&spec["connectorRef"]["name"]));
                for from in spec["inputFrom"].as_array().into_iter().flatten() {
                    add("Secret", ns, name(&from["secretKeyRef"]["name"]));
                }
            }
            "Tenant" => {
                for from in spec["fieldsFrom"].as_array().into_iter().flatten() {
                    add("Secret", ns, name(&from["secretKeyRef"]["name"]));
                }
            }
            _ => {}
        }
    }
    keys.sort();
    keys.dedup();
    keys.retain(|k| catalog.get(k).is_none());
    keys
}

/// Fetches each wanted object into the catalog; an object that is not there stays missing.
/// Any other failure (unreachable, forbidden) is an error the run stops on, since every
/// reference would otherwise be reported missing.
pub async fn fetch(
    client: &kube::Client,
    wanted: Vec<Key>,
    catalog: &mut Catalog,
) -> Result<(), String> {
    catalog.cluster = true;
    for k in wanted {
        let (kind, namespace, name) = &k;
        let (group, version) = match kind.as_str() {
            "Secret" => ("", "v1"),
            _ => (super::schema::GROUP, "v1alpha1"),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let resource = ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> = if namespace.is_empty() {
            Api::all_with(client.clone(), &resource)
        } else {
            Api::namespaced_with(client.clone(), namespace, &resource)
        };
        match api.get_opt(name).await {
            Ok(Some(object)) => {
                let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
                catalog.add_from_cluster(k.clone(), value);
            }
            Ok(None) => {}
            Err(err) => return Err(format!("cannot read {kind} {name} from the cluster: {err}")),
        }
    }
    Ok(())
}

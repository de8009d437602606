//! `plugboard dev -f`: the manifests applied to the embedded API server as
//! `kubectl apply --server-side` would, in an order that creates what is referenced first.

use std::path::PathBuf;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use serde_json::Value;

use crate::validate::source;

/// The field manager of what `plugboard dev -f` applies.
const MANAGER: &str = "plugboard-dev";

/// Namespaces and Secrets before what refers to them; Connections last.
fn rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "Secret" | "ConfigMap" => 1,
        "Connector" | "ClusterConnector" => 2,
        "Tenant" => 3,
        "Connection" => 5,
        _ => 4,
    }
}

/// What one apply did, for the lines `plugboard dev` prints.
pub struct Applied {
    pub applied: Vec<String>,
    /// `file: Kind/name: why`, one per object the server refused.
    pub refused: Vec<String>,
}

/// Applies every object under `paths`. Objects the server refuses are reported, not fatal:
/// the rest still go in, as with `kubectl apply -f DIR`.
pub async fn apply(client: &kube::Client, paths: &[PathBuf]) -> Result<Applied, std::io::Error> {
    let read = source::read(paths)?;
    let mut documents = read.documents;
    documents.sort_by_key(|d| rank(d.kind()));
    let mut out = Applied {
        applied: Vec::new(),
        refused: read
            .unreadable
            .iter()
            .map(|u| format!("{}:{}: {}", u.file, u.line, u.message))
            .collect(),
    };
    for doc in documents {
        let label = match doc.namespace() {
            Some(ns) => format!("{}/{ns}/{}", doc.kind(), doc.name()),
            None => format!("{}/{}", doc.kind(), doc.name()),
        };
        match apply_one(client, &doc.value).await {
            Ok(()) => out.applied.push(label),
            Err(why) => out.refused.push(format!("{}: {label}: {why}", doc.file)),
        }
    }
    Ok(out)
}

async fn apply_one(client: &kube::Client, value: &Value) -> Result<(), String> {
    let object: DynamicObject =
        serde_json::from_value(value.clone()).map_err(|e| format!("not an object: {e}"))?;
    let types = object.types.as_ref().ok_or("no apiVersion or kind")?;
    let gvk = GroupVersionKind::try_from(types).map_err(|e| e.to_string())?;
    let (resource, capabilities) = discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("the server does not serve {}: {e}", types.kind))?;
    let name = object.metadata.name.clone().ok_or("no metadata.name")?;
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Cluster => Api::all_with(client.clone(), &resource),
        Scope::Namespaced => {
            let ns = object.metadata.namespace.as_deref().unwrap_or("default");
            Api::namespaced_with(client.clone(), ns, &resource)
        }
    };
    let params = PatchParams::apply(MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(&object))
        .await
        .map(drop)
        .map_err(|err| match err {
            kube::Error::Api(status) => status.message,
            other => other.to_string(),
        })
}

//! (a) Read each document into its Rust type and compare what the type writes back with
//! the original: whatever the type dropped is a field the API does not have.

use k8s_openapi::api::core::v1::{Namespace, Secret};
use plugboard::api::{ClusterConnector, Connection, Connector, Tenant};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::examples::Doc;

/// Problems with one document (unlabelled).
pub fn check(doc: &Doc) -> Vec<String> {
    let result = match doc.kind() {
        "Namespace" => through::<Namespace>(doc),
        "Secret" => through::<Secret>(doc),
        "Deployment" => through::<k8s_openapi::api::apps::v1::Deployment>(doc),
        "Connector" => through::<Connector>(doc),
        "ClusterConnector" => through::<ClusterConnector>(doc),
        "Tenant" => through::<Tenant>(doc),
        "Connection" => through::<Connection>(doc),
        other => Err(format!("kind {other} is not one the examples use")),
    };
    let mut problems = Vec::new();
    match result {
        Err(err) => problems.push(err),
        Ok(back) => dropped(&doc.json, &back, "", &mut problems),
    }
    problems
}

fn through<T>(doc: &Doc) -> Result<Value, String>
where
    T: kube::Resource<DynamicType = ()> + DeserializeOwned + Serialize,
{
    let want = T::api_version(&());
    if doc.json["apiVersion"].as_str() != Some(want.as_ref()) {
        return Err(format!(
            "apiVersion is {}, but {} is served as {want}",
            doc.json["apiVersion"],
            doc.kind()
        ));
    }
    let typed: T = serde_yaml::from_value(doc.yaml.clone())
        .map_err(|err| format!("does not read as {}: {err}", doc.kind()))?;
    serde_json::to_value(&typed).map_err(|err| format!("does not write back: {err}"))
}

/// Every field of `original` that `back` lacks or changed, as a dotted path.
fn dropped(original: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(have), Value::Object(kept)) => {
            for (key, value) in have {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match kept.get(key) {
                    Some(kept) => dropped(value, kept, &path, out),
                    None => out.push(format!(
                        "`{path}` is not a field of this kind (misspelt? the API server \
                         would silently drop it)"
                    )),
                }
            }
        }
        (Value::Array(have), Value::Array(kept)) if have.len() == kept.len() => {
            for (i, (value, kept)) in have.iter().zip(kept).enumerate() {
                dropped(value, kept, &format!("{path}[{i}]"), out);
            }
        }
        _ if same(original, back) => {}
        _ => out.push(format!(
            "`{path}` reads back as {back} instead of {original}"
        )),
    }
}

/// Equal, or the same number, or the same duration written differently (`1h`, `3600s`).
fn same(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return x == y;
    }
    let duration = |v: &Value| v.as_str()?.parse::<kube::core::Duration>().ok();
    matches!((duration(a), duration(b)), (Some(x), Some(y)) if x == y)
}
